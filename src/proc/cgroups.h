/* SPDX-License-Identifier: MIT */
/* Cgroups: where each process was, recorded at dump, put back at restore
 * (cgroups.c). */
#ifndef CAPCR_CGROUPS_H
#define CAPCR_CGROUPS_H

#include <stddef.h>
#include <sys/types.h>

#include "capcr.pb-c.h"

struct dump_ctx;
struct restore_tree;

/* What restore does with them: --manage-cgroups[=MODE], CRIU's modes. */
enum cgroups_mode {
	CGROUPS_DEFAULT, /* no option: join existing ones, fail on a missing one */
	CGROUPS_IGNORE,  /* none, ignore: leave the processes where they are made */
	CGROUPS_SOFT,    /* create missing ones with their properties */
	CGROUPS_FULL,    /* and set the properties of existing ones too */
	CGROUPS_STRICT,  /* props, strict: properties of all, none created */
};

/* The process's cgroup on every hierarchy and, for those not the root of
 * theirs, the properties present; fails when one of its threads is not in
 * its leader's cgroups.  0, or -1 with the context's reason. */
int cgroups_dump(struct dump_ctx *ctx, Capcr__Task *t);

/* MODE of --manage-cgroups (NULL: soft, CRIU's default).  0, or -1. */
int cgroups_parse_mode(const char *arg, enum cgroups_mode *mode);

/* Before any process is made: find every recorded cgroup here, create
 * the missing ones and set properties as the mode says, check an image
 * owned by anyone but root may place its processes there, and open each
 * cgroup.procs a process must join (above t->fd_base).  0, or -1 with
 * why; t->cgroups then holds what was created, for cgroups_undo. */
int cgroups_prepare(struct restore_tree *t, enum cgroups_mode mode, char *why,
		    size_t wl);
/* In process idx of the image, first thing in its prelude: join its
 * recorded cgroups.  0, or -1 with why. */
int cgroups_join(const struct restore_tree *t, size_t idx, char *why,
		 size_t wl);
/* capcr restore's copies of the cgroup.procs files, once every process
 * has joined. */
void cgroups_close(struct restore_tree *t);
/* A failed restore, its processes reaped: remove every cgroup it created,
 * deepest first. */
void cgroups_undo(struct restore_tree *t);
/* Free what prepare kept (a successful restore keeps its cgroups). */
void cgroups_free(struct restore_tree *t);

#endif
