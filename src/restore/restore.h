/* SPDX-License-Identifier: MIT */
/* The restore engine's shared state. */
#ifndef CAPCR_RESTORE_H
#define CAPCR_RESTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "../image/image.h"
#include "../ptrace/inject.h"

/* Descriptors capcr restore hands the new process for the takeover; they
 * live at high numbers and are closed before it runs. */
struct service_fds {
	int pages;          /* pages-PID.img */
	int status;         /* the child reports errors here */
	int exe;            /* for PR_SET_MM_MAP */
	int *vma;           /* per VMA: file to map, or -1 */
	int keep[4096];     /* all of the above, for the child to keep */
	unsigned nkeep;
};

struct restore_ctx {
	struct image img;
	Capcr__Inventory *inv;
	Capcr__Task *task;
	Capcr__Mm *mm;
	Capcr__FdTable *fdt;
	Capcr__Files *files;
	pid_t pid;
	struct service_fds svc;
	int svc_base;        /* above every descriptor of the image */
	unsigned char *inherited; /* fds capcr restore was started with */
	int ninherited;
	struct tracee t;     /* the new process, stopped */
	struct tracee *threads; /* its other threads, stopped */
	size_t nthreads;
	uint64_t scratch;
	char why[512];
};

int restore_fail(struct restore_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* child.c: runs in the new process, before its memory is replaced:
 * descriptors, working directory, limits, session.  Never returns. */
void restore_child(struct restore_ctx *ctx) __attribute__((noreturn));

/* takeover.c: from capcr restore, with the new process stopped: replace
 * its memory and state by the image's.  0 or -1 with why. */
int restore_takeover(struct restore_ctx *ctx);

/* capspace.c: update the cap-map entries whose object changed. */
int restore_update_capspace(struct restore_ctx *ctx);

#endif
