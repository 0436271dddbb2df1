/* SPDX-License-Identifier: MIT */
/*
 * Dumping the capability space: the kernel's descriptor table (the truth),
 * each open file description once however many descriptors share it, and
 * the region and cap map the runtime kept (the hint, with badges and
 * provenance).  The monitor takes its own copy of every descriptor with
 * pidfd_getfd, so no code runs in the target for this.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/log.h"
#include "../files/files.h"
#include "../monitor/procfd.h"
#include "../monitor/region.h"
#include "dump.h"

struct seen {
	int fd, copy;
	struct stat st;
	Capcr__File *file;
};

static int same_description(pid_t pid, int a, int b)
{
	return syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

static void dump_capspace(struct dump_ctx *ctx, Capcr__FdTable *t)
{
	struct region_snapshot s;

	region_snapshot(ctx->pid, 300, &s);
	if (!s.found)
		return;
	if (!s.valid) {
		capcr_warn("process %d: its capability-space region cannot be "
			   "trusted (%s); the image keeps the kernel's table "
			   "only", ctx->pid, s.problem);
		return;
	}
	Capcr__CapSpace *cs = ARENA_NEW(&ctx->arena, Capcr__CapSpace);
	capcr__cap_space__init(cs);
	cs->region_addr = s.addr;
	cs->badge_base = s.header.badge_base;
	cs->mode = arena_strdup(&ctx->arena, s.via_ipc ? "ipc" : "shm");
	for (unsigned i = 0; i < s.ncaps; i++) {
		if (!s.caps[i].have_entry)
			continue;
		Capcr__CapEntry *e = ARENA_NEW(&ctx->arena, Capcr__CapEntry);
		capcr__cap_entry__init(e);
		e->fd = s.caps[i].fd;
		e->badge = s.caps[i].entry.badge;
		e->badge_ptr = s.caps[i].badge_ptr;
		e->entry.len = sizeof(s.caps[i].entry);
		e->entry.data = arena_memdup(&ctx->arena, &s.caps[i].entry,
					     sizeof(s.caps[i].entry));
		arena_push(&ctx->arena, (void ***)&cs->caps, &cs->n_caps, e);
	}
	t->capspace = cs;
	ctx->task->has_monitored = 1;
	ctx->task->monitored = 1;
	region_snapshot_free(&s);
}

int dump_fds(struct dump_ctx *ctx)
{
	struct kfd *k = NULL;
	struct seen *seen = NULL;
	int n = procfd_list(ctx->pid, &k), r = 0;
	Capcr__FdTable *t = ARENA_NEW(&ctx->arena, Capcr__FdTable);
	Capcr__Files *files = ARENA_NEW(&ctx->arena, Capcr__Files);
	struct file_dump_env env = { &ctx->img, &ctx->arena, ctx->why,
				     sizeof(ctx->why) };

	capcr__fd_table__init(t);
	capcr__files__init(files);
	ctx->fdt = t;
	ctx->files = files;
	if (n < 0)
		return DUMP_FAIL(ctx, "cannot list the descriptors of process "
				      "%d: %s", ctx->pid, strerror(errno));
	seen = calloc((size_t)n + 1, sizeof(*seen));
	if (!seen) {
		free(k);
		return DUMP_FAIL(ctx, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		seen[i].fd = k[i].fd;
		seen[i].copy = (int)syscall(SYS_pidfd_getfd, ctx->pidfd,
					    k[i].fd, 0);
		if (seen[i].copy < 0 || fstat(seen[i].copy, &seen[i].st) < 0) {
			r = DUMP_FAIL(ctx, "cannot take a copy of descriptor "
					   "%d of process %d: %s",
				      k[i].fd, ctx->pid, strerror(errno));
			goto out;
		}
	}
	for (int i = 0; i < n && !r; i++) {
		Capcr__Fd *fd = ARENA_NEW(&ctx->arena, Capcr__Fd);
		capcr__fd__init(fd);
		fd->fd = k[i].fd;
		fd->cloexec = (k[i].flags & O_CLOEXEC) != 0;
		/* One open file description, many descriptors (dup). */
		for (int j = 0; j < i; j++)
			if (seen[j].st.st_ino == seen[i].st.st_ino &&
			    seen[j].st.st_dev == seen[i].st.st_dev &&
			    same_description(ctx->pid, k[j].fd, k[i].fd)) {
				seen[i].file = seen[j].file;
				break;
			}
		if (!seen[i].file) {
			struct file_dump_in in = {
				.pid = ctx->pid,
				.fd = k[i].fd,
				.copy = seen[i].copy,
				.k = &k[i],
				.st = seen[i].st,
			};
			/* Both ends of a pipe in the image? */
			for (int j = 0; j < n; j++)
				if (j != i && S_ISFIFO(seen[i].st.st_mode) &&
				    seen[j].st.st_ino == seen[i].st.st_ino &&
				    seen[j].st.st_dev == seen[i].st.st_dev &&
				    (k[j].flags & O_ACCMODE) !=
					    (k[i].flags & O_ACCMODE))
					in.both_pipe_ends = 1;
			/* One end only: is the other in a process outside
			 * (a shell pipeline), or just closed? */
			if (S_ISFIFO(seen[i].st.st_mode) && !in.both_pipe_ends &&
			    !strncmp(k[i].target, "pipe:", 5))
				in.held_outside =
					files_held_elsewhere(ctx->pid, k[i].target);
			const struct file_ops *ops = files_ops_for_dump(&in);
			if (!ops) {
				r = DUMP_FAIL(ctx,
					      "descriptor %d (%s) is of a kind "
					      "capcr cannot checkpoint yet",
					      k[i].fd, k[i].target);
				break;
			}
			Capcr__File *f = ARENA_NEW(&ctx->arena, Capcr__File);
			capcr__file__init(f);
			f->id = (uint32_t)files->n_files;
			f->kind = ops->kind;
			f->flags = k[i].flags & ~(unsigned)O_CLOEXEC;
			if (S_ISREG(seen[i].st.st_mode) ||
			    S_ISDIR(seen[i].st.st_mode) ||
			    S_ISBLK(seen[i].st.st_mode)) {
				f->has_pos = 1;
				f->pos = k[i].pos;
			}
			if (ops->dump(&env, &in, f) < 0) {
				r = -1;
				break;
			}
			arena_push(&ctx->arena, (void ***)&files->files,
				   &files->n_files, f);
			seen[i].file = f;
		}
		fd->file = seen[i].file->id;
		arena_push(&ctx->arena, (void ***)&t->fds, &t->n_fds, fd);
	}
	if (!r && fault_at("fds"))
		r = DUMP_FAIL(ctx, "injected failure at fds");
	if (!r)
		dump_capspace(ctx, t);
out:
	for (int i = 0; i < n; i++)
		if (seen[i].copy > 0)
			close(seen[i].copy);
	free(seen);
	free(k);
	return r;
}
