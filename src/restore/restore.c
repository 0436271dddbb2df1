/* SPDX-License-Identifier: MIT */
/*
 * capcr restore: bring a process back from an image directory alone, with
 * its PID, memory, registers and capabilities.
 *
 * Every check of the image (format, checksums) is done before anything is
 * made.  The new process is created with clone3(set_tid) at the saved PID,
 * restores its own descriptors and attributes (child.c), stops, and is
 * taken over from outside (takeover.c).  On any failure it is killed, so
 * no stray process is left.  Then capcr restore stays its parent and
 * monitor, serving its PD channel, or with --restore-detached returns.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/pd_proto.h"
#include "../dump/dump.h"
#include "../monitor/commands.h"
#include "../monitor/pd_service.h"
#include "../monitor/supervise.h"
#include "capcr/capinfo.h"
#include "restore.h"

int restore_fail(struct restore_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->why[0]) {
		va_start(ap, fmt);
		vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int read_images(struct restore_ctx *ctx, const char *dir)
{
	char name[64];

	if (image_open(&ctx->img, dir, &ctx->inv, ctx->why, sizeof(ctx->why)) <
	    0)
		return -1;
	if (ctx->inv->n_pids != 1)
		return restore_fail(ctx, "the image holds %zu processes; this "
					 "capcr restores one",
				    ctx->inv->n_pids);
	ctx->pid = ctx->inv->pids[0];
	snprintf(name, sizeof(name), "core-%d.img", ctx->pid);
	ctx->task = image_read_msg(&ctx->img, name, &capcr__task__descriptor,
				   ctx->why, sizeof(ctx->why));
	snprintf(name, sizeof(name), "mm-%d.img", ctx->pid);
	ctx->mm = image_read_msg(&ctx->img, name, &capcr__mm__descriptor,
				 ctx->why, sizeof(ctx->why));
	snprintf(name, sizeof(name), "fds-%d.img", ctx->pid);
	ctx->fdt = image_read_msg(&ctx->img, name, &capcr__fd_table__descriptor,
				  ctx->why, sizeof(ctx->why));
	ctx->files = image_read_msg(&ctx->img, "files.img",
				    &capcr__files__descriptor, ctx->why,
				    sizeof(ctx->why));
	if (!ctx->task || !ctx->mm || !ctx->fdt || !ctx->files)
		return -1;
	if (!ctx->task->n_threads || ctx->task->pid != ctx->pid ||
	    ctx->task->threads[0]->tid != ctx->pid)
		return restore_fail(ctx, "core-%d.img is inconsistent", ctx->pid);
	for (size_t i = 0; i < ctx->fdt->n_fds; i++)
		if (ctx->fdt->fds[i]->file >= ctx->files->n_files)
			return restore_fail(ctx, "fds-%d.img names a file that "
						 "is not in files.img",
					    ctx->pid);
	return 0;
}

/* A zombie holds its PID until its parent reaps it, which a just-dumped
 * process's parent does at once in the usual case: give it a moment. */
static int is_zombie(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	int z = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');
		z = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return z;
}

static int check_pid_free(struct restore_ctx *ctx)
{
	char path[64], comm[64] = "?";
	FILE *f;

	for (int i = 0; i < 200 && is_zombie(ctx->pid); i++)
		usleep(10000);
	snprintf(path, sizeof(path), "/proc/%d/comm", ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (is_zombie(ctx->pid)) {
		fclose(f);
		return restore_fail(ctx, "PID %d is held by a zombie that its "
					 "parent has not reaped",
				    ctx->pid);
	}
	if (fgets(comm, sizeof(comm), f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
	return restore_fail(ctx,
			    "PID %d is taken by another process (%s): end it, "
			    "or restore once it has exited",
			    ctx->pid, comm);
}

/* Park a descriptor above every number of the image and remember it. */
static int keep(struct restore_ctx *ctx, int fd)
{
	int hi;

	if (fd < 0)
		return -1;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, ctx->svc_base);
	close(fd);
	if (hi >= 0 && ctx->svc.nkeep < sizeof(ctx->svc.keep) / sizeof(int))
		ctx->svc.keep[ctx->svc.nkeep++] = hi;
	return hi;
}

/* Shared anonymous memory and memfd mappings come back as a memfd of the
 * same name, mapped shared. */
static int shmem_fd(const Capcr__Vma *v)
{
	char name[256] = "capcr-shmem";
	const char *p = v->path ? v->path : v->name;

	if (p && !strncmp(p, "/memfd:", 7)) {
		snprintf(name, sizeof(name), "%s", p + 7);
		char *d = strstr(name, " (deleted)");
		if (d)
			*d = 0;
	}
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, (off_t)(v->end - v->start)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_services(struct restore_ctx *ctx)
{
	char name[64];
	int maxfd = 2;

	for (size_t i = 0; i < ctx->fdt->n_fds; i++)
		if (ctx->fdt->fds[i]->fd > maxfd)
			maxfd = ctx->fdt->fds[i]->fd;
	ctx->svc_base = maxfd + 1;
	snprintf(name, sizeof(name), "pages-%d.img", ctx->pid);
	ctx->svc.pages = keep(ctx, image_open_data(&ctx->img, name));
	if (ctx->svc.pages < 0)
		return restore_fail(ctx, "cannot open %s: %s", name,
				    strerror(errno));
	ctx->svc.exe = ctx->task->exe
			       ? keep(ctx, open(ctx->task->exe,
						O_RDONLY | O_CLOEXEC))
			       : -1;
	ctx->svc.vma = calloc(ctx->mm->n_vmas + 1, sizeof(int));
	if (!ctx->svc.vma)
		return restore_fail(ctx, "out of memory");
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const Capcr__Vma *v = ctx->mm->vmas[i];
		int fd = -1;
		if (v->kind == CAPCR__VMA_KIND__VMA_FILE_PRIVATE ||
		    v->kind == CAPCR__VMA_KIND__VMA_FILE_SHARED) {
			int wr = v->kind == CAPCR__VMA_KIND__VMA_FILE_SHARED &&
				 (v->prot & 2);
			fd = open(v->path, (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
			if (fd < 0)
				return restore_fail(ctx, "cannot open %s, which "
							 "the process had "
							 "mapped: %s",
						    v->path, strerror(errno));
		} else if (v->kind == CAPCR__VMA_KIND__VMA_ANON_SHARED) {
			fd = shmem_fd(v);
			if (fd < 0)
				return restore_fail(ctx, "memfd: %s",
						    strerror(errno));
		}
		ctx->svc.vma[i] = fd < 0 ? -1 : keep(ctx, fd);
	}
	return 0;
}

/* The region at restore: the runtime in the restored process asks its
 * monitor by the name it kept; serve it under the same name. */
static const char *pd_name_of(struct restore_ctx *ctx, char *buf, size_t n)
{
	char path[64], *env = NULL;
	size_t len = 0;
	FILE *f;
	const char *r = NULL;

	if (!ctx->task->monitored)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/environ", ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (getdelim(&env, &len, 0, f) > 0)
		if (!strncmp(env, CAPCR_PD_ENV "=", sizeof(CAPCR_PD_ENV))) {
			snprintf(buf, n, "%s", env + sizeof(CAPCR_PD_ENV));
			r = buf;
		}
	free(env);
	fclose(f);
	return r;
}

/* The descriptors we were started with: what an external capability may
 * be re-attached to (never one of capcr's own). */
static void note_inherited(struct restore_ctx *ctx)
{
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return;
	ctx->ninherited = 1024;
	ctx->inherited = calloc((size_t)ctx->ninherited, 1);
	for (struct dirent *e; ctx->inherited && (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    fd >= ctx->ninherited)
			continue;
		ctx->inherited[fd] = 1;
	}
	closedir(d);
}

static void usage_restore(FILE *out)
{
	fprintf(out,
		"usage: capcr restore -D DIR [-d] [--pidfile FILE]\n"
		"  Restore the process saved in image directory DIR, with its\n"
		"  PID.  capcr restore stays its parent and monitor and exits\n"
		"  with its exit status, unless -d is given.\n"
		"  -D, --images-dir DIR          the image\n"
		"  -d, --restore-detached        return once it runs\n"
		"      --pidfile FILE            write its PID to FILE\n");
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct restore_ctx ctx;
	const char *dir = NULL, *pidfile = NULL;
	int detach = 0, c, status_pipe[2] = { -1, -1 };
	pid_t child = -1;

	memset(&ctx, 0, sizeof(ctx));
	ctx.img.dirfd = -1;
	note_inherited(&ctx);
	optind = 1;
	while ((c = getopt_long(argc, argv, "D:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'd':
			detach = 1;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'h':
			usage_restore(stdout);
			return 0;
		default:
			usage_restore(stderr);
			return 2;
		}
	}
	if (!dir || optind != argc) {
		usage_restore(stderr);
		return 2;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (read_images(&ctx, dir) < 0 || check_pid_free(&ctx) < 0 ||
	    open_services(&ctx) < 0)
		goto fail;
	if (pipe2(status_pipe, O_CLOEXEC) < 0) {
		restore_fail(&ctx, "pipe: %s", strerror(errno));
		goto fail;
	}
	ctx.svc.status = keep(&ctx, status_pipe[1]);
	status_pipe[1] = -1;
	sigset_t orig;
	if (supervise_prepare(&orig) < 0) {
		restore_fail(&ctx, "signalfd: %s", strerror(errno));
		goto fail;
	}
	if (fault_at("restore-clone")) {
		restore_fail(&ctx, "injected failure at restore-clone");
		goto fail;
	}
	pid_t want = ctx.pid;
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};
	child = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (child < 0) {
		restore_fail(&ctx, "cannot create process %d: %s%s", ctx.pid,
			     strerror(errno),
			     errno == EEXIST ? " (the PID is taken)"
			     : errno == EPERM
				     ? " (needs root or CAP_CHECKPOINT_RESTORE)"
				     : "");
		goto fail;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &orig, NULL);
		restore_child(&ctx);
	}
	close(ctx.svc.status);
	/* Wait for the child to stop, or to tell why it could not. */
	int st;
	if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) {
		char msg[600] = "";
		ssize_t n = read(status_pipe[0], msg, sizeof(msg) - 1);
		msg[n > 0 ? n : 0] = 0;
		restore_fail(&ctx, "%s", msg[0] ? msg : "the new process died");
		child = -1; /* reaped */
		goto fail;
	}
	if (restore_takeover(&ctx) < 0 || restore_update_capspace(&ctx) < 0)
		goto fail;
	char pdbuf[CAPCR_PD_NAME_MAX + 1];
	const char *pdname = pd_name_of(&ctx, pdbuf, sizeof(pdbuf));
	struct pd_service pd;
	int have_pd = 0;
	if (pdname && !detach) {
		if (pd_service_start(&pd, CAPCR_PD_SHM, pdname) == 0)
			have_pd = 1;
		else
			capcr_warn("cannot serve the PD channel %s (%s): "
				   "children of the restored process will "
				   "run unmonitored",
				   pdname, strerror(errno));
	}
	for (size_t i = 0; i < ctx.nthreads; i++)
		ptrace(PTRACE_DETACH, ctx.threads[i].tid, 0, 0);
	if (ptrace(PTRACE_DETACH, child, 0, 0) < 0) {
		restore_fail(&ctx, "cannot let the process go: %s",
			     strerror(errno));
		goto fail;
	}
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	capcr_info("restored process %d (%s) in %.1f ms", ctx.pid,
		   ctx.task->comm,
		   (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	if (pidfile) {
		FILE *pf = fopen(pidfile, "we");
		if (!pf || fprintf(pf, "%d\n", child) < 0 || fclose(pf) != 0)
			capcr_warn("cannot write pidfile %s: %s", pidfile,
				   strerror(errno));
	}
	close(status_pipe[0]);
	image_close(&ctx.img);
	if (detach)
		return 0;
	return supervise(have_pd ? &pd : NULL, child);
fail:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	capcr_err("restore from %s failed: %s", dir, ctx.why);
	if (status_pipe[0] >= 0)
		close(status_pipe[0]);
	image_close(&ctx.img);
	return 1;
}
