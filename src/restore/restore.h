/* SPDX-License-Identifier: MIT */
/* The restore engine's shared state. */
#ifndef CAPCR_RESTORE_H
#define CAPCR_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "../files/sysvipc.h"
#include "../image/image.h"
#include "../pages/page_read.h"
#include "../ptrace/inject.h"

/* Descriptors capcr restore hands one process for its takeover; they live
 * above every number of the image and are closed before it runs. */
struct service_fds {
	int exe;            /* for PR_SET_MM_MAP */
	int *vma;           /* per VMA: file or memfd to map, or -1 */
	int *keep;          /* all of the above */
	unsigned nkeep, keep_cap;
};

struct restore_tree;

/* One process of the image. */
struct restore_ctx {
	struct restore_tree *tree;
	Capcr__Files *files;  /* the tree's */
	pid_t pid;
	Capcr__Task *task;
	Capcr__Mm *mm;
	Capcr__FdTable *fdt;
	struct service_fds svc;
	struct page_read pages; /* where its pages come from */
	struct tracee t;        /* its leader, stopped */
	struct tracee *threads; /* its other threads, stopped */
	size_t nthreads;
	int seized;
	uint64_t scratch;
	int memfd;              /* its /proc/PID/mem, once opened, or -1 */
	int uffd;               /* --lazy-pages: capcr's copy of its
				 * userfaultfd, or -1 */
	char why[512];
};

struct restore_tree {
	struct image img;
	Capcr__Inventory *inv;
	Capcr__Files *files;
	struct page_chain *chain; /* the image's parents, or NULL */
	int *file_fd;          /* per File: the object, made by capcr restore */
	int *shmem_fd;         /* per Files.shmem: the object, made */
	struct restore_ctx *procs; /* procs[0] is the root */
	size_t nprocs;
	int fd_base;           /* above every descriptor number of the image */
	int detach;            /* --restore-detached */
	pid_t monitor;         /* capcr restore: the root's parent */
	int status_rd, status_wr; /* processes report here */
	struct pd_end *pd_ends; /* ipc PD sessions: the monitor's ends */
	unsigned npd_ends;
	struct sysv_made sysv_made; /* SysV objects made, undone on failure */
	struct cgroups_plan *cgroups; /* where each process goes (cgroups.c) */
	unsigned char *inherited; /* fds capcr restore was started with */
	int ninherited;
	int lazy;              /* --lazy-pages */
	pid_t lazy_pid;        /* its server (lazy.h), or 0 */
	int lazy_sock;         /* our end of the server's socket, or -1 */
};

int restore_fail(struct restore_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A message from a process being made to capcr restore. */
struct prelude_msg {
	int32_t pid;
	int32_t ok; /* 1 created, 2 ready, 0 failed */
	char why[504];
};

/* child.c: runs in each new process, before its memory is replaced: makes
 * its children, puts its descriptors in place, takes back its working
 * directory, limits, session, name; then waits to be taken over.  Never
 * returns. */
void restore_prelude(struct restore_tree *tree, size_t idx)
	__attribute__((noreturn));

/* takeover.c: from capcr restore, with the process stopped: replace its
 * memory and state by the image's.  0 or -1 with why. */
int restore_takeover(struct restore_ctx *ctx);
/* Write len bytes at addr in the process.  0, or -1 with errno. */
int restore_poke(struct restore_ctx *ctx, uint64_t addr, const void *buf,
		 size_t len);
/* The process's memory, opened once (read-write); -1 with errno. */
int restore_memfd(struct restore_ctx *ctx);
/* Before capcr writes [addr, addr + len) of a process restored with
 * --lazy-pages: the saved pages there put in now (lazy.c). */
void restore_lazy_fetch(struct restore_ctx *ctx, uint64_t addr, uint64_t len);

/* capspace.c: update the cap-map entries whose object changed. */
int restore_update_capspace(struct restore_ctx *ctx);

#endif
