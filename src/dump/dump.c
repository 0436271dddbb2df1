/* SPDX-License-Identifier: MIT */
/*
 * capcr dump: checkpoint a process into an image directory.
 *
 * The process is seized and stopped with ptrace (no signal is sent), its
 * state is read, the image is written and committed, and only then is the
 * process killed (or, with --leave-running, let go as it was).  Whatever
 * fails, the process is let go exactly as it was found: the scratch page is
 * unmapped, its registers and signal mask are put back, and the partial
 * image is removed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../monitor/commands.h"
#include "dump.h"

#ifndef CAPCR_VERSION
#define CAPCR_VERSION "0.1.0"
#endif

int fault_at(const char *step)
{
	const char *f = getenv("CAPCR_FAIL_AT");
	return f && !strcmp(f, step);
}

int dump_fail(struct dump_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->why[0]) {
		va_start(ap, fmt);
		vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

int dump_peek(struct dump_ctx *ctx, uint64_t addr, void *buf, size_t len)
{
	return pread(ctx->memfd, buf, len, (off_t)addr) == (ssize_t)len ? 0
									: -1;
}

long dump_syscall_in(struct tracee *t, long nr, long a1, long a2, long a3,
		     long a4, long a5, long a6)
{
	long r = tracee_syscall(t, nr, a1, a2, a3, a4, a5, a6);
	return r <= TRACEE_INJECT_FAILED ? -EIO : r;
}

long dump_syscall(struct dump_ctx *ctx, long nr, long a1, long a2, long a3,
		  long a4, long a5, long a6)
{
	return dump_syscall_in(&ctx->threads[0], nr, a1, a2, a3, a4, a5, a6);
}

static int seized(const struct dump_ctx *ctx, pid_t tid)
{
	for (size_t i = 0; i < ctx->nthreads; i++)
		if (ctx->threads[i].tid == tid)
			return 1;
	return 0;
}

/*
 * Stop every thread, the leader first.  A thread not yet stopped may make
 * another, so the task list is read again until a pass finds nothing new:
 * then every thread is stopped and none can appear.
 */
static int seize_all(struct dump_ctx *ctx)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", ctx->pid);
	for (int pass = 0; pass < 1000; pass++) {
		DIR *d = opendir(path);
		int added = 0;
		if (!d)
			return DUMP_FAIL(ctx, "process %d exited", ctx->pid);
		pid_t tids[4096];
		size_t n = 0;
		tids[n++] = ctx->pid;
		for (struct dirent *e; n < 4096 && (e = readdir(d));) {
			pid_t t = atoi(e->d_name);
			if (t > 0 && t != ctx->pid)
				tids[n++] = t;
		}
		closedir(d);
		for (size_t i = 0; i < n; i++) {
			if (seized(ctx, tids[i]))
				continue;
			struct tracee *nt = realloc(
				ctx->threads,
				(ctx->nthreads + 1) * sizeof(*ctx->threads));
			if (!nt)
				return DUMP_FAIL(ctx, "out of memory");
			ctx->threads = nt;
			int r = tracee_seize(&ctx->threads[ctx->nthreads],
					     tids[i], 0);
			if (r == -ESRCH && tids[i] != ctx->pid)
				continue; /* it exited meanwhile */
			if (r < 0)
				return DUMP_FAIL(
					ctx,
					"cannot stop %s %d with ptrace: %s%s",
					tids[i] == ctx->pid ? "process"
							    : "thread",
					tids[i], strerror(-r),
					r == -EPERM ? " (is it traced already, "
						      "or are you not root?)"
						    : "");
			ctx->nthreads++;
			added++;
		}
		if (!added)
			return 0;
	}
	return DUMP_FAIL(ctx, "process %d keeps making threads", ctx->pid);
}

static void release_all(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nthreads; i++)
		tracee_release(&ctx->threads[i]);
	ctx->nthreads = 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* What this engine can take: one process, one thread. */
static int check_target(pid_t pid, char *why, size_t wl)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;

	if (pid == getpid() || pid == getppid()) {
		snprintf(why, wl, "capcr cannot checkpoint itself or its "
				  "parent");
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (count_entries(path) < 0) {
		snprintf(why, wl, "no process with PID %d", pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			snprintf(why, wl,
				 "process %d has children (%s); this capcr "
				 "checkpoints single processes only",
				 pid, buf);
			return -1;
		}
	}
	return 0;
}

static void remove_partial(struct image *img)
{
	for (size_t i = 0; i < img->nfiles; i++)
		unlinkat(img->dirfd, img->files[i]->name, 0);
}

static int write_images(struct dump_ctx *ctx)
{
	char name[64];
	int r;

	snprintf(name, sizeof(name), "core-%d.img", ctx->pid);
	if ((r = image_write_msg(&ctx->img, name, &ctx->task->base)) < 0)
		goto fail;
	snprintf(name, sizeof(name), "mm-%d.img", ctx->pid);
	if ((r = image_write_msg(&ctx->img, name, &ctx->mm->base)) < 0)
		goto fail;
	snprintf(name, sizeof(name), "fds-%d.img", ctx->pid);
	if ((r = image_write_msg(&ctx->img, name, &ctx->fdt->base)) < 0)
		goto fail;
	if ((r = image_write_msg(&ctx->img, "files.img", &ctx->files->base)) <
	    0)
		goto fail;
	if (fault_at("write-images"))
		return DUMP_FAIL(ctx, "injected failure at write-images");
	return 0;
fail:
	return DUMP_FAIL(ctx, "cannot write %s: %s%s", name, strerror(-r),
			 r == -ENOSPC ? " (the disk is full)" : "");
}

static int commit(struct dump_ctx *ctx)
{
	Capcr__Inventory inv;
	struct utsname u;
	struct timespec ts;
	int32_t pids[1] = { ctx->pid };

	capcr__inventory__init(&inv);
	inv.format_version = CAPCR_IMAGE_FORMAT;
	inv.capcr_version = CAPCR_VERSION;
	inv.arch = "x86_64";
	inv.root_pid = ctx->pid;
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.created_unix_ns =
		(uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	if (uname(&u) == 0)
		inv.kernel = u.release;
	inv.n_pids = 1;
	inv.pids = pids;
	if (fault_at("commit"))
		return DUMP_FAIL(ctx, "injected failure at commit");
	int r = image_commit(&ctx->img, &inv);
	return r < 0 ? DUMP_FAIL(ctx, "cannot write the inventory: %s",
				 strerror(-r))
		     : 0;
}

static void usage_dump(FILE *out)
{
	fprintf(out,
		"usage: capcr dump -t PID -D DIR [-R]\n"
		"  Checkpoint process PID into image directory DIR (which\n"
		"  must exist).  The process is killed once the image is\n"
		"  safely written, unless -R/--leave-running is given.\n"
		"  -t, --tree PID           the process\n"
		"  -D, --images-dir DIR     where the image goes\n"
		"  -R, --leave-running      let the process go on afterwards\n");
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump_ctx ctx;
	const char *dir = NULL;
	int leave = 0, c, ok = 0;
	long pid = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.memfd = ctx.pidfd = -1;
	ctx.img.dirfd = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:D:Rh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			pid = strtol(optarg, NULL, 10);
			break;
		case 'D':
			dir = optarg;
			break;
		case 'R':
			leave = 1;
			break;
		case 'h':
			usage_dump(stdout);
			return 0;
		default:
			usage_dump(stderr);
			return 2;
		}
	}
	if (pid <= 0 || !dir || optind != argc) {
		usage_dump(stderr);
		return 2;
	}
	ctx.pid = (pid_t)pid;
	if (check_target(ctx.pid, ctx.why, sizeof(ctx.why)) < 0) {
		capcr_err("%s", ctx.why);
		return 1;
	}
	int r = image_create(&ctx.img, dir);
	if (r < 0) {
		capcr_err("cannot use image directory %s: %s%s", dir,
			  strerror(-r),
			  r == -ENOENT ? " (create it first)" : "");
		return 1;
	}
	uint64_t t0 = now_ns(), t_frozen = 0, t_released = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", ctx.pid);
	ctx.pidfd = (int)syscall(SYS_pidfd_open, ctx.pid, 0);
	ctx.memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (ctx.pidfd < 0 || ctx.memfd < 0) {
		DUMP_FAIL(&ctx, "cannot open process %d: %s", ctx.pid,
			  strerror(errno));
		goto fail;
	}
	if (seize_all(&ctx) < 0)
		goto fail;
	t_frozen = now_ns();
	/* Shared, so the kernel never merges it into a neighbouring private
	 * mapping of the process: it stays an area of its own that the
	 * memory dump can leave out. */
	long s = dump_syscall(&ctx, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s < 0 && s > -4096) {
		DUMP_FAIL(&ctx, "cannot borrow a page in process %d (%s)",
			  ctx.pid, strerror((int)-s));
		goto fail;
	}
	ctx.scratch = (uint64_t)s;
	if (fault_at("seize") ||
	    dump_task(&ctx) < 0 || dump_mm(&ctx) < 0 || dump_fds(&ctx) < 0) {
		DUMP_FAIL(&ctx, "injected failure at seize");
		goto fail;
	}
	dump_syscall(&ctx, SYS_munmap, (long)ctx.scratch, 4096, 0, 0, 0, 0);
	ctx.scratch = 0;
	if (leave) {
		release_all(&ctx);
		t_released = now_ns();
	}
	if (write_images(&ctx) < 0 || commit(&ctx) < 0)
		goto fail;
	ok = 1;
	if (!leave) {
		/* Gone for good before we return, so the PID can be reused
		 * as soon as its parent reaps it. */
		struct pollfd p = { .fd = ctx.pidfd, .events = POLLIN };
		kill(ctx.pid, SIGKILL);
		t_released = now_ns();
		/* Its threads are our tracees: their exit waits for us.  The
		 * leader is reported last, after all of them. */
		for (size_t i = ctx.nthreads; i-- > 0;)
			waitpid(ctx.threads[i].tid, NULL, __WALL);
		ctx.nthreads = 0;
		poll(&p, 1, 5000);
	}
	capcr_info("dumped process %d (%s): %.1f MiB of memory in %zu "
		   "mappings, %zu descriptors, %zu threads; %.1f ms in all, "
		   "frozen %.1f ms",
		   ctx.pid, ctx.task->comm, ctx.pages_bytes / 1048576.0,
		   ctx.mm->n_vmas, ctx.fdt->n_fds, ctx.task->n_threads,
		   (now_ns() - t0) / 1e6,
		   (t_released - t_frozen) / 1e6);
	goto out;
fail:
	if (ctx.scratch)
		dump_syscall(&ctx, SYS_munmap, (long)ctx.scratch, 4096, 0, 0,
			     0, 0);
	release_all(&ctx);
	remove_partial(&ctx.img);
	capcr_err("dump of process %d failed: %s; the process goes on "
		  "untouched",
		  ctx.pid, ctx.why);
out:
	if (ctx.memfd >= 0)
		close(ctx.memfd);
	if (ctx.pidfd >= 0)
		close(ctx.pidfd);
	image_close(&ctx.img);
	arena_free(&ctx.arena);
	free(ctx.threads);
	return ok ? 0 : 1;
}
