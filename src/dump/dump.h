/* SPDX-License-Identifier: MIT */
/* The checkpoint engine's shared state. */
#ifndef CAPCR_DUMP_H
#define CAPCR_DUMP_H

#include <stdint.h>
#include <sys/types.h>

#include "../files/shmem.h"
#include "../monitor/procfd.h"

#include "../common/arena.h"
#include "../image/image.h"
#include "../ptrace/inject.h"

/* One process being dumped.  img, arena and files are the whole tree's. */
struct dump_ctx {
	struct image *img;
	struct arena *arena;
	Capcr__Files *files;    /* open file descriptions of the tree */
	struct dump_tree *tree;
	pid_t pid;
	int zombie;             /* exited, not reaped: only its status */
	int exit_code;
	int pidfd;
	int memfd;             /* /proc/PID/mem, read-only */
	struct tracee *threads; /* every thread, stopped; [0] the leader */
	size_t nthreads;
	Capcr__Task *task;
	Capcr__Mm *mm;
	Capcr__FdTable *fdt;
	uint64_t scratch;      /* room in the target for injected calls' answers */
	int scratch_mapped;    /* scratch is a page we mapped (no rescue frame) */
	uint64_t pages_bytes;  /* statistics */
	uint64_t parent_bytes; /* of them, unchanged since the parent image */
	char why[512];         /* the first error, for the user */
};

/* The tree: every process from the root down, parents before children. */
struct dump_tree {
	struct image img;
	struct arena arena;
	Capcr__Files *files;
	struct dump_ctx *procs;
	size_t nprocs;
	struct shmem_table shm; /* shared memory objects saved so far */
	int ext_closed;     /* --external-sockets=closed */
	int file_locks;     /* --file-locks: file locks saved, not refused */
	int skip_in_flight; /* --skip-in-flight: descriptors in flight dropped */
	uint64_t ghost_limit; /* --ghost-limit: most bytes of a deleted file
			       * kept, 0 for no limit */
	struct precopy_set *pre; /* -R: memory copied while running */
	struct page_parent *parent; /* --prev-images-dir: the image before */
	struct kfd **kfds;  /* per process: the kernel's descriptor table */
	int *nkfds;
};

/* Each returns 0 or -1 with ctx->why set. */
int dump_task(struct dump_ctx *ctx);
int dump_mm(struct dump_ctx *ctx);
/* The descriptors of every process of the tree, sharing found across
 * them; on failure tree->procs[i].why of the one that failed is set and
 * its index returned in *failed. */
int dump_fds(struct dump_tree *tree, size_t *failed);

/* Fault injection for tests: CAPCR_FAIL_AT=NAME makes the step called NAME
 * fail (dump and restore check it at each step). */
int fault_at(const char *step);

/* Read from the target's memory (through /proc/PID/mem). */
int dump_peek(struct dump_ctx *ctx, uint64_t addr, void *buf, size_t len);
/* Run a system call in the target (leader thread), with the scratch page
 * for calls that need memory.  Returns the call's result. */
long dump_syscall(struct dump_ctx *ctx, long nr, long a1, long a2, long a3,
		  long a4, long a5, long a6);
/* The same in a given thread. */
long dump_syscall_in(struct tracee *t, long nr, long a1, long a2, long a3,
		     long a4, long a5, long a6);

/* Record why the dump failed (the first reason wins); returns -1. */
int dump_fail(struct dump_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define DUMP_FAIL dump_fail

#endif
