/* SPDX-License-Identifier: MIT */
/*
 * The new process's own part of a restore, run in it right after capcr
 * restore made it with the saved PID and before its memory is replaced:
 * it makes every open file description again and puts each at its
 * descriptor numbers, and takes back working directory, umask, limits,
 * session and name.  Then it asks to be traced and stops; capcr restore
 * does the rest from outside (takeover.c).  Errors go to the status pipe.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../dump/dump.h"
#include "../files/files.h"
#include "restore.h"

static void die(struct restore_ctx *ctx, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));

static void die(struct restore_ctx *ctx, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0) {
		ssize_t w = write(ctx->svc.status, msg,
				  (size_t)n < sizeof(msg) ? (size_t)n
							  : sizeof(msg));
		(void)w; /* nothing more to do if even this fails */
	}
	_exit(1);
}

static int kept(struct restore_ctx *ctx, const int *tmp, size_t nt, int fd)
{
	for (unsigned i = 0; i < ctx->svc.nkeep; i++)
		if (ctx->svc.keep[i] == fd)
			return 1;
	for (size_t i = 0; i < nt; i++)
		if (tmp[i] == fd)
			return 1;
	return 0;
}

static void restore_files(struct restore_ctx *ctx)
{
	struct file_restore_env env = { .img = &ctx->img, .why = ctx->why,
					.whylen = sizeof(ctx->why),
					.inherited = ctx->inherited,
					.ninherited = ctx->ninherited };
	size_t nf = ctx->files->n_files;
	int *tmp = calloc(nf + 1, sizeof(int));
	int tmp_base = ctx->svc_base;

	if (!tmp)
		die(ctx, "out of memory");
	for (size_t i = 0; i < nf; i++)
		tmp[i] = -1;
	if (fault_at("restore-files"))
		die(ctx, "injected failure at restore-files");
	/* Make each object once, parked high where no target number is. */
	for (size_t i = 0; i < nf; i++) {
		const Capcr__File *f = ctx->files->files[i];
		const struct file_ops *ops = files_ops_for_kind(f->kind);
		if (!ops)
			die(ctx, "image holds a file of unknown kind %d",
			    f->kind);
		int fd = ops->restore(&env, f);
		if (fd < 0)
			die(ctx, "%s", ctx->why);
		tmp[i] = fcntl(fd, F_DUPFD_CLOEXEC, tmp_base);
		if (tmp[i] < 0)
			die(ctx, "cannot park descriptor: %s", strerror(errno));
		close(fd);
		/* Status flags (O_NONBLOCK, O_APPEND, ...) and position. */
		fcntl(tmp[i], F_SETFL, (int)f->flags);
		if (f->has_pos && lseek(tmp[i], f->pos, SEEK_SET) < 0 &&
		    errno != ESPIPE)
			die(ctx, "cannot seek %s to %lld: %s",
			    f->path ? f->path : "a file", (long long)f->pos,
			    strerror(errno));
	}
	/* Done with the image; its descriptor may hold a number the
	 * process needs. */
	close(ctx->img.dirfd);
	ctx->img.dirfd = -1;
	for (unsigned p = 0; p < env.npipes; p++)
		for (int e = 0; e < 2; e++)
			if (env.pipes[p].fd[e] >= 0)
				close(env.pipes[p].fd[e]);
	/* Close everything else we inherited from capcr restore. */
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		die(ctx, "cannot list /proc/self/fd: %s", strerror(errno));
	int self = dirfd(d);
	for (struct dirent *e; (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == self || kept(ctx, tmp, nf, fd))
			continue;
		close(fd);
	}
	closedir(d);
	for (size_t i = 0; i < ctx->fdt->n_fds; i++) {
		const Capcr__Fd *fd = ctx->fdt->fds[i];
		if (fd->fd >= ctx->svc_base)
			die(ctx, "descriptor %d collides with capcr's own",
			    fd->fd);
		if (dup3(tmp[fd->file], fd->fd, fd->cloexec ? O_CLOEXEC : 0) <
		    0)
			die(ctx, "cannot put descriptor %d back: %s", fd->fd,
			    strerror(errno));
	}
	for (size_t i = 0; i < nf; i++)
		close(tmp[i]);
	free(tmp);
}

static void restore_attrs(struct restore_ctx *ctx)
{
	const Capcr__Task *t = ctx->task;

	if (t->sid == t->pid) {
		if (setsid() < 0)
			die(ctx, "setsid: %s", strerror(errno));
	} else if (t->pgid == t->pid) {
		setpgid(0, 0);
	}
	if (chdir(t->cwd) < 0)
		die(ctx, "cannot enter the working directory %s: %s", t->cwd,
		    strerror(errno));
	umask((mode_t)t->umask);
	if (personality(t->personality) < 0)
		die(ctx, "cannot set personality %#x: %s", t->personality,
		    strerror(errno));
	for (size_t i = 0; i < t->n_rlimits; i++) {
		struct rlimit rl = { t->rlimits[i]->cur, t->rlimits[i]->max };
		if (setrlimit((int)t->rlimits[i]->resource, &rl) < 0)
			die(ctx,
			    "cannot restore resource limit %u (soft %llu, hard "
			    "%llu): %s; the hard limit cannot be raised here "
			    "(capcr lacks CAP_SYS_RESOURCE)",
			    t->rlimits[i]->resource,
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max, strerror(errno));
	}
	const char *comm = t->threads[0]->comm ? t->threads[0]->comm : t->comm;
	prctl(PR_SET_NAME, comm);
}

void restore_child(struct restore_ctx *ctx)
{
	/* If capcr restore dies before it lets go of us, so do we. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	restore_files(ctx);
	restore_attrs(ctx);
	if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
		die(ctx, "PTRACE_TRACEME: %s", strerror(errno));
	/* glibc's raise() would use the parent's cached thread id. */
	syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
	die(ctx, "was not taken over");
}
