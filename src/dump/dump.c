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
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../monitor/commands.h"
#include "../files/sysvipc.h"
#include "../files/tcp.h"
#include "dump.h"
#include "precopy.h"
#include "../pages/page_parent.h"

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
	return tracee_call(t, nr, a1, a2, a3, a4, a5, a6);
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
/*
 * A process made with CLONE_VM but not CLONE_THREAD shares its memory
 * with its parent (vfork's child before it execs, LeakSanitizer's
 * tracer at exit, some runtimes' helpers): a restore would give each a
 * copy of its own and the two would no longer see each other's writes.
 * Such a tree is refused, naming both.  Only the parent is compared: a
 * CLONE_VM child shares its maker's memory.
 */
static int shared_mm(struct dump_tree *t, size_t *failed)
{
	for (size_t i = 1; i < t->nprocs; i++) {
		struct dump_ctx *c = &t->procs[i];
		struct proc_stat st;

		if (c->zombie || proc_stat_read(c->pid, 0, &st) < 0)
			continue;
		long r = syscall(SYS_kcmp, c->pid, st.ppid, KCMP_VM, 0, 0);
		if (r == 0) {
			*failed = i;
			return DUMP_FAIL(c, "process %d shares its memory with "
					    "its parent %d (made with CLONE_VM, "
					    "as vfork does): capcr cannot "
					    "checkpoint processes that share "
					    "memory",
					 c->pid, st.ppid);
		}
	}
	return 0;
}

/* PTRACE_SEIZE says EPERM, not ESRCH, for a thread already on its way
 * out (PF_EXITING): one that is ending by itself, not one capcr may not
 * trace. */
static int exiting(pid_t pid, pid_t tid)
{
	struct proc_stat st;

	if (proc_stat_read(pid, tid, &st) < 0)
		return errno == ENOENT || errno == ESRCH;
	return (st.flags & 0x4 /* PF_EXITING */) || proc_gone(st.state);
}

static int seize_all(struct dump_ctx *ctx)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", ctx->pid);
	for (int pass = 0; pass < 1000; pass++) {
		DIR *d = opendir(path);
		int added = 0;
		if (!d)
			return DUMP_FAIL(ctx, "process %d exited", ctx->pid);
		/* Every thread, however many: one left out would run on
		 * while the others are saved. */
		size_t n = 0, cap = 256;
		pid_t *tids = malloc(cap * sizeof(*tids));
		if (!tids) {
			closedir(d);
			return DUMP_FAIL(ctx, "out of memory");
		}
		tids[n++] = ctx->pid;
		for (struct dirent *e; (e = readdir(d));) {
			pid_t t = atoi(e->d_name);
			if (t <= 0 || t == ctx->pid)
				continue;
			if (n == cap) {
				pid_t *g = realloc(tids, 2 * cap * sizeof(*tids));
				if (!g) {
					free(tids);
					closedir(d);
					return DUMP_FAIL(ctx, "out of memory");
				}
				tids = g;
				cap *= 2;
			}
			tids[n++] = t;
		}
		closedir(d);
		for (size_t i = 0; i < n; i++) {
			if (seized(ctx, tids[i]))
				continue;
			struct tracee *nt = realloc(
				ctx->threads,
				(ctx->nthreads + 1) * sizeof(*ctx->threads));
			if (!nt) {
				free(tids);
				return DUMP_FAIL(ctx, "out of memory");
			}
			ctx->threads = nt;
			int r = tracee_seize(&ctx->threads[ctx->nthreads],
					     tids[i], 0);
			if (r == -EPERM && exiting(ctx->pid, tids[i]))
				r = -ESRCH;
			if (r == -ESRCH && tids[i] != ctx->pid)
				continue; /* it exited meanwhile */
			if (r < 0) {
				DUMP_FAIL(ctx,
					  "cannot stop %s %d with ptrace: %s%s",
					  tids[i] == ctx->pid ? "process"
							      : "thread",
					  tids[i], strerror(-r),
					  r == -EPERM ? " (is it traced already, "
							"or are you not root?)"
						      : "");
				free(tids);
				return -1;
			}
			ctx->nthreads++;
			added++;
		}
		free(tids);
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

static int check_target(pid_t pid, char *why, size_t wl)
{
	char st;

	if (pid == getpid() || pid == getppid()) {
		snprintf(why, wl, "capcr cannot checkpoint itself or its "
				  "parent");
		return -1;
	}
	st = proc_state(pid, NULL);
	if (!st) {
		snprintf(why, wl, "no process with PID %d", pid);
		return -1;
	}
	if (st == '?') {
		snprintf(why, wl, "cannot read the state of process %d "
				  "(/proc/%d/stat): %s", pid, pid,
			 strerror(errno));
		return -1;
	}
	if (st == 'Z' || st == 'X') {
		snprintf(why, wl, "process %d has exited (a zombie): there is "
				  "nothing left to checkpoint", pid);
		return -1;
	}
	return 0;
}

/* The memory a process's image holds, about: its anonymous pages (private
 * ones it wrote, file-backed or not) and the shared ones it maps, in KiB,
 * from /proc/PID/smaps_rollup; 0 when that cannot be read. */
static unsigned long long image_kib_of(pid_t pid)
{
	char path[64], text[4096];
	unsigned long long sum = 0, v;
	static const char *const keys[] = { "\nAnonymous:", "\nShmem:" };

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (proc_read_small(path, text, sizeof(text)) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *p = strstr(text, keys[i]);

		if (p && sscanf(p + strlen(keys[i]), "%llu", &v) == 1)
			sum += v;
	}
	return sum;
}

/* Append to why what the dump needed and what it found, for the message
 * of a dump that met a full disk (which already says how much was
 * written): the memory the tree's image holds, the bulk of what it
 * would have written, and the size and free space of the file system
 * holding dir. */
static void space_note(const struct dump_tree *t, const char *dir, char *why,
		       size_t wl)
{
	struct statvfs sv;
	unsigned long long mem = 0;
	size_t l = strlen(why);

	if (t->img.dirfd < 0 || fstatvfs(t->img.dirfd, &sv) < 0 || l >= wl)
		return;
	for (size_t i = 0; i < t->nprocs; i++)
		mem += image_kib_of(t->procs[i].pid);
	l += snprintf(why + l, wl - l,
		      " (the tree's memory alone needs about %llu KiB", mem);
	if (l >= wl)
		return;
	snprintf(why + l, wl - l,
		 "; the file system of %s: %llu KiB in all, %llu KiB free "
		 "for capcr once the partial image was removed)",
		 dir, (unsigned long long)sv.f_blocks * sv.f_frsize / 1024,
		 (unsigned long long)sv.f_bavail * sv.f_frsize / 1024);
}

static void remove_partial(struct image *img)
{
	for (size_t i = 0; i < img->nfiles; i++)
		unlinkat(img->dirfd, img->files[i]->name, 0);
}

static struct dump_ctx *add_proc(struct dump_tree *t, pid_t pid)
{
	struct dump_ctx *n = realloc(t->procs, (t->nprocs + 1) * sizeof(*n));

	if (!n)
		return NULL;
	t->procs = n;
	struct dump_ctx *c = &t->procs[t->nprocs++];
	memset(c, 0, sizeof(*c));
	c->img = &t->img;
	c->arena = &t->arena;
	c->files = t->files;
	c->tree = t;
	c->pid = pid;
	c->pidfd = c->memfd = -1;
	return c;
}

static int in_tree(const struct dump_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nprocs; i++)
		if (t->procs[i].pid == pid)
			return 1;
	return 0;
}

/* Children of every thread of c not yet in the tree; returns how many
 * were added, or -1. */
static int add_children(struct dump_tree *t, size_t ci)
{
	int added = 0;

	for (size_t k = 0; k < t->procs[ci].nthreads; k++) {
		char path[96], buf[8192];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 t->procs[ci].pid, t->procs[ci].threads[k].tid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		for (char *p = buf; *p;) {
			char *end;
			long child = strtol(p, &end, 10);
			if (end == p)
				break;
			p = end;
			if (child > 0 && !in_tree(t, (pid_t)child)) {
				if (!add_proc(t, (pid_t)child))
					return -1;
				added++;
			}
		}
	}
	return added;
}

/*
 * Freeze the whole tree at one instant: stop every thread of every
 * process, the root first, then each one's children, again and again
 * until a pass finds nothing new.  A process stopped cannot fork or make
 * threads, so when nothing is new, nothing can be.
 */
static int freeze_tree(struct dump_tree *t, size_t *failed)
{
	for (int pass = 0; pass < 1000; pass++) {
		int changed = 0;
		for (size_t i = 0; i < t->nprocs; i++) {
			struct dump_ctx *c = &t->procs[i];
			size_t before = c->nthreads;
			if (c->zombie)
				continue;
			char st = proc_state(c->pid, &c->exit_code);
			if ((st == 'Z' || st == 'X') && !c->nthreads) {
				/* exited, not yet reaped by its parent */
				c->zombie = 1;
				continue;
			}
			if (fault_at("seize")) {
				*failed = i;
				return DUMP_FAIL(c, "injected failure at seize");
			}
			if (seize_all(c) < 0) {
				/* A process (not the root) that ended before it
				 * could be stopped is a zombie, or gone. */
				st = proc_state(c->pid, &c->exit_code);
				if (i && !c->nthreads &&
				    proc_gone(st)) {
					c->why[0] = 0;
					if (st) {
						c->zombie = 1;
						continue;
					}
					t->procs[i--] = t->procs[--t->nprocs];
					changed = 1;
					continue;
				}
				*failed = i;
				return -1;
			}
			int a = add_children(t, i);
			if (a < 0) {
				*failed = i;
				return DUMP_FAIL(c, "out of memory");
			}
			if (a || c->nthreads != before)
				changed = 1;
		}
		if (!changed)
			return 0;
	}
	*failed = 0;
	return DUMP_FAIL(&t->procs[0], "the process tree keeps changing");
}

static int write_images(struct dump_tree *t, size_t *failed)
{
	char name[64];
	int r = 0;

	for (size_t i = 0; i < t->nprocs; i++) {
		struct dump_ctx *c = &t->procs[i];
		*failed = i;
		snprintf(name, sizeof(name), "core-%d.img", c->pid);
		if ((r = image_write_msg(&t->img, name, &c->task->base)) < 0)
			goto fail;
		snprintf(name, sizeof(name), "mm-%d.img", c->pid);
		if ((r = image_write_msg(&t->img, name, &c->mm->base)) < 0)
			goto fail;
		snprintf(name, sizeof(name), "fds-%d.img", c->pid);
		if ((r = image_write_msg(&t->img, name, &c->fdt->base)) < 0)
			goto fail;
	}
	*failed = 0;
	snprintf(name, sizeof(name), "files.img");
	if ((r = image_write_msg(&t->img, name, &t->files->base)) < 0)
		goto fail;
	if (fault_at("write-images"))
		return DUMP_FAIL(&t->procs[0], "injected failure at "
					       "write-images");
	return 0;
fail:
	return DUMP_FAIL(&t->procs[*failed], "cannot write %s: %s%s", name,
			 strerror(-r), r == -ENOSPC ? " (the disk is full)" : "");
}

static int commit(struct dump_tree *t)
{
	Capcr__Inventory inv;
	struct utsname u;
	struct timespec ts;
	int32_t *pids = calloc(t->nprocs, sizeof(int32_t));

	if (!pids)
		return DUMP_FAIL(&t->procs[0], "out of memory");
	capcr__inventory__init(&inv);
	inv.format_version =
		t->img.format ? t->img.format : CAPCR_IMAGE_FORMAT_FULL;
	inv.capcr_version = CAPCR_VERSION;
	inv.arch = "x86_64";
	inv.root_pid = t->procs[0].pid;
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.created_unix_ns =
		(uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	if (uname(&u) == 0)
		inv.kernel = u.release;
	for (size_t i = 0; i < t->nprocs; i++)
		pids[i] = t->procs[i].pid;
	inv.n_pids = t->nprocs;
	inv.pids = pids;
	if (t->parent) {
		inv.parent = t->parent->name;
		inv.has_parent_inventory_xxh3 = 1;
		inv.parent_inventory_xxh3 = t->parent->lv.img.inv_xxh3;
	}
	int r = fault_at("commit") ? -EIO : image_commit(&t->img, &inv);
	free(pids);
	return r < 0 ? DUMP_FAIL(&t->procs[0], "cannot write the inventory: "
					       "%s", strerror(-r))
		     : 0;
}

/* A zombie keeps only who it was and how it ended. */
static int dump_zombie(struct dump_ctx *c)
{
	Capcr__Task *t = ARENA_NEW(c->arena, Capcr__Task);
	Capcr__MmLayout *m = ARENA_NEW(c->arena, Capcr__MmLayout);
	struct proc_stat st;

	capcr__task__init(t);
	capcr__mm_layout__init(m);
	if (proc_stat_read(c->pid, 0, &st) < 0 && errno != EBADMSG) {
		int e = errno;
		if (e == ENOENT || e == ESRCH)
			return DUMP_FAIL(c, "zombie %d vanished", c->pid);
		return DUMP_FAIL(c, "cannot read /proc/%d/stat of zombie %d: %s",
				 c->pid, c->pid, strerror(e));
	}
	t->pid = c->pid;
	t->ppid = st.ppid;
	t->pgid = st.pgrp;
	t->sid = st.session;
	t->comm = arena_strdup(c->arena, "zombie");
	t->cwd = arena_strdup(c->arena, "/");
	t->mm = m;
	t->has_zombie = t->zombie = 1;
	t->has_exit_code = 1;
	t->exit_code = c->exit_code;
	c->task = t;
	c->mm = ARENA_NEW(c->arena, Capcr__Mm);
	capcr__mm__init(c->mm);
	return 0;
}

/* Everything of one living process but its descriptors. */
static int dump_proc(struct dump_ctx *c)
{
	char path[64];

	if (c->zombie)
		return dump_zombie(c);
	snprintf(path, sizeof(path), "/proc/%d/mem", c->pid);
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	c->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->pidfd < 0 || c->memfd < 0)
		return DUMP_FAIL(c, "cannot open process %d: %s", c->pid,
				 strerror(errno));
	/* Answers of injected calls go to the room under the leader's
	 * rescue frame, on its own stack.  Without one, to a page mapped for
	 * it: shared, so the kernel never merges it into a neighbouring
	 * private mapping and the memory dump can leave it out. */
	errno = 0;
	if (tracee_prepare(&c->threads[0]) < 0) {
		/* Reading its memory failed (errno), or it has no vDSO. */
		int e = errno;
		return DUMP_FAIL(c, "cannot find a system call instruction in "
				    "the vDSO of process %d%s%s", c->pid,
				 e ? ": " : "", e ? strerror(e) : "");
	}
	if (c->threads[0].scratch) {
		c->scratch = c->threads[0].scratch;
		return dump_task(c);
	}
	long s = dump_syscall(c, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s < 0 && s > -4096)
		return DUMP_FAIL(c, "cannot borrow a page in process %d (%s)",
				 c->pid, strerror((int)-s));
	c->scratch = (uint64_t)s;
	c->scratch_mapped = 1;
	return dump_task(c);
}

/*
 * The memory of every process, on both cores: one process's pages are
 * independent of another's, and reading them needs no ptrace (only
 * /proc/PID/mem, pagemap, map_files), so worker threads share the work
 * while the tracer thread waits.
 */
struct mm_work {
	struct dump_tree *t;
	size_t next; /* the next process to take, atomically */
	int failed;  /* index + 1 of the first that failed */
};

static void *mm_worker(void *arg)
{
	struct mm_work *w = arg;

	for (;;) {
		size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
		if (i >= w->t->nprocs ||
		    __atomic_load_n(&w->failed, __ATOMIC_RELAXED))
			return NULL;
		if (w->t->procs[i].zombie)
			continue;
		if (dump_mm(&w->t->procs[i]) < 0) {
			int none = 0;
			__atomic_compare_exchange_n(&w->failed, &none, (int)i + 1,
						    0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		}
	}
}

static int dump_all_mm(struct dump_tree *t, size_t *failed)
{
	struct mm_work w = { t, 0, 0 };
	pthread_t helper;
	int two = t->nprocs > 1 &&
		  pthread_create(&helper, NULL, mm_worker, &w) == 0;

	mm_worker(&w);
	if (two)
		pthread_join(helper, NULL);
	if (w.failed) {
		*failed = (size_t)w.failed - 1;
		return -1;
	}
	return 0;
}

/* The SysV IPC objects the tree used (src/files/sysvipc.h). */
static int dump_sysv(struct dump_tree *t, size_t *failed)
{
	pid_t *pids = calloc(t->nprocs + 1, sizeof(pid_t));
	int *att = NULL;
	size_t natt = 0;
	int r;

	*failed = 0;
	if (!pids)
		return DUMP_FAIL(&t->procs[0], "out of memory");
	for (size_t i = 0; i < t->nprocs; i++) {
		pids[i] = t->procs[i].pid;
		const Capcr__Mm *mm = t->procs[i].mm;
		for (size_t v = 0; mm && v < mm->n_vmas; v++) {
			if (!mm->vmas[v]->has_sysv_shmid)
				continue;
			int *n = realloc(att, (natt + 1) * sizeof(int));
			if (!n)
				break;
			att = n;
			att[natt++] = mm->vmas[v]->sysv_shmid;
		}
	}
	r = sysv_dump(&t->img, &t->arena, t->files, &t->shm, pids, t->nprocs,
		      att, natt, t->procs[0].why, sizeof(t->procs[0].why));
	free(pids);
	free(att);
	return r;
}

/* Nothing but SIGKILL can end a stopped tracee; one that got it while we
 * worked must not go into the image as if it were alive. */
static int still_stopped(struct dump_tree *t, size_t *failed)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		struct dump_ctx *c = &t->procs[i];
		struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
		char st;
		if (c->zombie)
			continue;
		st = proc_state(c->pid, NULL);
		if (proc_gone(st) ||
		    (c->pidfd >= 0 && poll(&p, 1, 0) > 0)) {
			*failed = i;
			return DUMP_FAIL(c, "process %d exited (was killed) "
					    "during the dump", c->pid);
		}
	}
	return 0;
}

/* Every process of the tree but the root lost its parent with it and went
 * to init (or a subreaper), which reaps it soon but not at once (this
 * machine's init: up to 2 s).  Their PIDs should be free when the dump
 * returns, so that a restore right after finds them so: wait for that, a
 * bounded time.  The root's PID is for its own parent to reap. */
static void wait_orphans_reaped(struct dump_tree *t)
{
	uint64_t until = now_ns() + 3000000000ull;

	for (size_t i = 1; i < t->nprocs; i++)
		while (proc_state(t->procs[i].pid, NULL) && now_ns() < until)
			usleep(2000);
}

static void drop_scratch(struct dump_ctx *c)
{
	if (c->scratch_mapped)
		dump_syscall(c, SYS_munmap, (long)c->scratch, 4096, 0, 0, 0, 0);
	c->scratch = 0;
	c->scratch_mapped = 0;
}

/* "4096", "64K", "1M", "2G": bytes.  0, or -1 when it is not a size. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	if (end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static void usage_dump(FILE *out)
{
	fprintf(out,
		"usage: capcr dump -t PID -D DIR [-R] [--file-locks]\n"
		"  Checkpoint process PID and all its descendants into image\n"
		"  directory DIR (which must exist).  They are killed once the\n"
		"  image is safely written, unless -R/--leave-running is given.\n"
		"  -t, --tree PID           the root of the tree\n"
		"  -D, --images-dir DIR     where the image goes\n"
		"  -R, --leave-running      let the processes go on afterwards;\n"
		"                           their memory is copied while they\n"
		"                           run first, so the freeze copies\n"
		"                           only what they write meanwhile\n"
		"      --no-pre-copy        with -R, copy all memory while\n"
		"                           frozen instead\n"
		"      --external-sockets=refuse|closed\n"
		"                           a connection whose peer is outside:\n"
		"                           refuse the dump (default), or bring\n"
		"                           it back closed (also --tcp-close);\n"
		"                           one the application allowed with\n"
		"                           capcr_allow_reconnect() is connected\n"
		"                           again\n"
		"      --tcp-established    dump a TCP connection whose peer is\n"
		"                           outside too, blocking it (nftables)\n"
		"                           until its restore (give the option\n"
		"                           to restore as well)\n"
		"  -j, --shell-job          accepted, as CRIU's: a terminal or\n"
		"                           pipe from outside the tree is always\n"
		"                           saved as outside, to be re-attached\n"
		"  -l, --file-locks         save the file locks the processes\n"
		"                           hold (flock, POSIX, OFD); without it\n"
		"                           a process holding one is refused\n"
		"      --skip-in-flight     drop descriptors in flight (sent\n"
		"                           with SCM_RIGHTS, not yet received)\n"
		"                           with a warning instead of keeping\n"
		"                           them (as CRIU's option)\n"
		"      --ghost-limit SIZE   refuse a deleted file still open\n"
		"                           with more than SIZE bytes of data\n"
		"                           (K, M, G; default: no limit)\n"
		"      --prev-images-dir DIR\n"
		"                           write only the pages written since\n"
		"                           the image in DIR (capcr pre-dump;\n"
		"                           relative to -D), the others are\n"
		"                           taken from it at restore; without\n"
		"                           its write tracking, a full dump\n"
		"      --track-mem          accepted, as CRIU's (pre-dump always\n"
		"                           tracks)\n"
		"      --link-remap         accepted, as CRIU's: a deleted\n"
		"                           file's contents are always saved\n"
		"      --manage-cgroups[=MODE]  accepted, as CRIU's: every\n"
		"                           process's cgroups are always saved\n"
		"      --" IMAGE_UNTRUSTED_OPT "\n"
		"                           write into DIR even if another\n"
		"                           user owns it or may write it\n");
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "leave-running", no_argument, NULL, 'R' },
		{ "external-sockets", required_argument, NULL, 'x' },
		{ "tcp-close", no_argument, NULL, 'c' },
		{ "tcp-established", no_argument, NULL, 'e' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "file-locks", no_argument, NULL, 'l' },
		{ "no-pre-copy", no_argument, NULL, 'P' },
		{ "skip-in-flight", no_argument, NULL, 'S' },
		{ "ghost-limit", required_argument, NULL, 'G' },
		{ "link-remap", no_argument, NULL, 'L' },
		{ "manage-cgroups", optional_argument, NULL, 'M' },
		{ "prev-images-dir", required_argument, NULL, 'p' },
		{ "track-mem", no_argument, NULL, 'k' },
		{ IMAGE_UNTRUSTED_OPT, no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump_tree t;
	const char *dir = NULL;
	int leave = 0, precopy = 1, c, ok = 0;
	const char *prev = NULL;
	long pid = 0;
	size_t failed = 0;
	char why[1100];

	tracer_init();
	memset(&t, 0, sizeof(t));
	t.img.dirfd = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:D:Rjlh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			break; /* what capcr always does: see usage */
		case 'l':
			t.file_locks = 1;
			break;
		case 't':
			pid = strtol(optarg, NULL, 10);
			break;
		case 'D':
			dir = optarg;
			break;
		case 'R':
			leave = 1;
			break;
		case 'x':
			if (!strcmp(optarg, "closed")) {
				t.ext_closed = 1;
			} else if (strcmp(optarg, "refuse")) {
				capcr_err("--external-sockets=%s: expected "
					  "refuse or closed", optarg);
				return 2;
			}
			break;
		case 'c':
			t.ext_closed = 1;
			break;
		case 'e':
			tcp_dump_allow_external(1);
			break;
		case 'P':
			precopy = 0;
			break;
		case 'G':
			if (parse_size(optarg, &t.ghost_limit) < 0) {
				capcr_err("--ghost-limit %s: expected a size "
					  "(bytes, or with K, M or G)",
					  optarg);
				return 2;
			}
			break;
		case 'p':
			prev = optarg;
			break;
		case 'k':
			break; /* see usage */
		case 'L':
		case 'M':
			break; /* what capcr always does: see usage */
		case 'S':
			t.skip_in_flight = 1;
			break;
		case 'U':
			image_allow_untrusted(1);
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
	if (check_target((pid_t)pid, why, sizeof(why)) < 0) {
		capcr_err("%s", why);
		return 1;
	}
	int r = image_create(&t.img, dir);
	if (r < 0 && t.img.why[0]) {
		capcr_err("%s", t.img.why);
		return 1;
	}
	if (r < 0) {
		capcr_err("cannot use image directory %s: %s%s", dir,
			  strerror(-r),
			  r == -ENOENT ? " (create it first)" : "");
		return 1;
	}
	t.files = ARENA_NEW(&t.arena, Capcr__Files);
	capcr__files__init(t.files);
	uint64_t t0 = now_ns(), t_frozen = 0, t_released = 0;
	/* After a pre-dump, only what was written since it is copied (the
	 * freeze scans for it): no pre-copy.  Without its tracking, a full
	 * dump, never one that might take a stale page. */
	if (prev && !(t.parent = page_parent_open(dir, prev, why,
						  sizeof(why))))
		capcr_warn("%s: a full dump instead", why);
	if (t.parent)
		t.img.format = CAPCR_IMAGE_FORMAT;
	if (leave && precopy && !t.parent)
		t.pre = precopy_run(&t.img, (pid_t)pid);
	uint64_t t_seize = now_ns();
	if (!add_proc(&t, (pid_t)pid) || freeze_tree(&t, &failed) < 0 ||
	    shared_mm(&t, &failed) < 0)
		goto fail;
	t_frozen = now_ns();
	for (size_t i = 0; i < t.nprocs; i++)
		if (dump_proc(&t.procs[i]) < 0) {
			failed = i;
			goto fail;
		}
	uint64_t t_tasks = now_ns();
	if (dump_all_mm(&t, &failed) < 0)
		goto fail;
	uint64_t t_mm = now_ns();
	if (dump_fds(&t, &failed) < 0 || dump_sysv(&t, &failed) < 0)
		goto fail;
	for (size_t i = 0; i < t.nprocs; i++)
		drop_scratch(&t.procs[i]);
	capcr_debug("frozen: %.1f ms seizing, %.1f ms tasks, %.1f ms memory, "
		    "%.1f ms descriptors and the rest",
		    (t_frozen - t_seize) / 1e6,
		    (t_tasks - t_frozen) / 1e6, (t_mm - t_tasks) / 1e6,
		    (now_ns() - t_mm) / 1e6);
	/* With -R, whether all were still there is asked before they go:
	 * once let go, a process may end by itself (a shell loop's child),
	 * which says nothing of the image. */
	if (leave) {
		if (still_stopped(&t, &failed) < 0)
			goto fail;
		/* TCP sockets out of repair mode before anyone uses them. */
		tcp_dump_end(TCP_DUMP_LEFT_RUNNING);
		for (size_t i = 0; i < t.nprocs; i++)
			release_all(&t.procs[i]);
		t_released = now_ns();
	}
	if (write_images(&t, &failed) < 0 ||
	    (!leave && still_stopped(&t, &failed) < 0) || commit(&t) < 0)
		goto fail;
	ok = 1;
	if (!leave) {
		int unkilled = 0;
		for (size_t i = 0; i < t.nprocs; i++) {
			struct dump_ctx *d = &t.procs[i];
			if (d->zombie ||
			    syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL,
				    NULL, 0) == 0)
				continue;
			/* It cannot be ended: let it go on rather than wait
			 * for an end that will not come. */
			capcr_err("cannot end process %d after the dump: %s; "
				  "it goes on, and the image is complete",
				  d->pid, strerror(errno));
			release_all(d);
			unkilled = 1;
		}
		t_released = now_ns();
		/* Their threads are our tracees: their exit waits for us.
		 * A leader is reported after all its threads.  Then each is
		 * gone for good before we return, so the PIDs can be reused
		 * as soon as their parents reap them. */
		for (size_t i = 0; i < t.nprocs; i++) {
			struct dump_ctx *d = &t.procs[i];
			for (size_t k = d->nthreads; k-- > 0;)
				if (tracee_reap(d->threads[k].tid, 5) < 0)
					capcr_warn("thread %d of process %d was "
						   "killed but its end was not "
						   "reported within 5 s",
						   d->threads[k].tid, d->pid);
			d->nthreads = 0;
			struct pollfd p = { .fd = d->pidfd, .events = POLLIN };
			if (d->pidfd >= 0)
				poll(&p, 1, 5000);
		}
		wait_orphans_reaped(&t);
		/* Their TCP sockets, closed in repair mode, go silently (one
		 * that goes on gets its socket back out of repair mode). */
		tcp_dump_end(unkilled ? TCP_DUMP_LEFT_RUNNING : TCP_DUMP_KILLED);
		if (unkilled)
			ok = 0;
	}
	uint64_t bytes = 0, pbytes = 0;
	size_t threads = 0, fds = 0;
	for (size_t i = 0; i < t.nprocs; i++) {
		bytes += t.procs[i].pages_bytes + t.procs[i].parent_bytes;
		pbytes += t.procs[i].parent_bytes;
		threads += t.procs[i].task->n_threads;
		fds += t.procs[i].fdt->n_fds;
	}
	uint64_t pre_bytes;
	double pre_ms;
	precopy_stats(t.pre, &pre_bytes, &pre_ms);
	capcr_info("dumped %zu process%s from %ld (%s): %.1f MiB of memory, "
		   "%zu descriptors, %zu threads; %.1f ms in all, frozen "
		   "%.1f ms; %.1f MiB copied while running (%.1f ms)",
		   t.nprocs, t.nprocs == 1 ? "" : "es", pid,
		   t.procs[0].task->comm, bytes / 1048576.0, fds, threads,
		   (now_ns() - t0) / 1e6, (t_released - t_frozen) / 1e6,
		   pre_bytes / 1048576.0, pre_ms);
	if (t.parent)
		capcr_info("incremental: %.1f MiB of the memory unchanged "
			   "since %s, left in it; %.1f MiB written to the "
			   "image in all", pbytes / 1048576.0, t.parent->name,
			   t.img.written / 1048576.0);
	goto out;
fail:
	snprintf(why, sizeof(why), "%s",
		 t.nprocs ? t.procs[failed].why : "out of memory");
	/* The image's own account (a full disk, a name in the way) says
	 * more than the step that met it. */
	if (t.img.why[0])
		snprintf(why, sizeof(why), "%s", t.img.why);
	tcp_dump_end(TCP_DUMP_FAILED);
	for (size_t i = 0; i < t.nprocs; i++) {
		drop_scratch(&t.procs[i]);
		release_all(&t.procs[i]);
	}
	remove_partial(&t.img);
	/* A full disk: what the dump needs, how big the image's file
	 * system is and what it has free without the partial image. */
	if (strstr(why, strerror(ENOSPC)) || strstr(why, strerror(EDQUOT)))
		space_note(&t, dir, why, sizeof(why));
	/* Say what became of them: a process that died meanwhile is what
	 * made the dump fail, and goes on nowhere. */
	size_t gone = 0;
	/* Let go already (-R): what ended since ended by itself. */
	for (size_t i = 0; !(leave && t_released) && i < t.nprocs; i++) {
		struct pollfd pf = { .fd = t.procs[i].pidfd, .events = POLLIN };
		char st = proc_state(t.procs[i].pid, NULL);
		/* A process killed meanwhile may still be on its way out. */
		if (proc_gone(st) ||
		    (pf.fd >= 0 && poll(&pf, 1, 200) > 0))
			gone++;
	}
	if (gone)
		capcr_err("dump of process %ld failed: %s; %s exited or was "
			  "killed during the dump%s",
			  pid, why[0] ? why : "unknown error",
			  gone == t.nprocs ? (t.nprocs > 1 ? "they" : "it")
					   : "some of the processes",
			  gone == t.nprocs ? "" : "; the others go on untouched");
	else
		capcr_err("dump of process %ld failed: %s; the process%s go%s "
			  "on untouched",
			  pid, why[0] ? why : "unknown error",
			  t.nprocs > 1 ? "es" : "", t.nprocs > 1 ? "" : "es");
out:
	precopy_end(t.pre);
	/* The tracking taken from the holder ends: the kernel clears the
	 * protection of every page (with -R the processes go on as before). */
	page_parent_close(t.parent);
	for (size_t i = 0; i < t.nprocs; i++) {
		if (t.procs[i].memfd >= 0)
			close(t.procs[i].memfd);
		if (t.procs[i].pidfd >= 0)
			close(t.procs[i].pidfd);
		free(t.procs[i].threads);
	}
	free(t.procs);
	image_close(&t.img);
	shmem_table_free(&t.shm);
	arena_free(&t.arena);
	return ok ? 0 : 1;
}
