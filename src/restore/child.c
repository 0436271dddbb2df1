/* SPDX-License-Identifier: MIT */
/*
 * Each new process's own part of a restore, run in it right after it was
 * made with its saved PID and before its memory is replaced (the
 * prelude).  It makes its own children first, so they inherit every open
 * file description capcr restore made and sharing between processes stays
 * as it was; then it puts its descriptors at their numbers and takes back
 * working directory, umask, personality, limits and name.  Then it reports
 * ready and waits to be taken over from outside (takeover.c).  Errors go
 * to the status pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../dump/dump.h"
#include "../files/files.h"
#include "../proc/attrs.h"
#include "../proc/cgroups.h"
#include "restore.h"

static void say(struct restore_tree *t, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct restore_tree *t, int ok, const char *fmt, ...)
{
	struct prelude_msg m = { .pid = (int32_t)syscall(SYS_getpid),
				 .ok = ok };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m.why, sizeof(m.why), fmt, ap);
	va_end(ap);
	/* One write of less than PIPE_BUF: never mixed with another's. */
	ssize_t w = write(t->status_wr, &m, sizeof(m));
	(void)w;
}

#define DIE(t, ...)                                                          \
	do {                                                                 \
		say(t, 0, __VA_ARGS__);                                      \
		_exit(1);                                                    \
	} while (0)

/* The processes of the image whose parent is pid, in PID order. */
static void make_children(struct restore_tree *t, const struct restore_ctx *me)
{
	for (size_t i = 1; i < t->nprocs; i++) {
		const struct restore_ctx *c = &t->procs[i];
		if (c->task->ppid != me->pid)
			continue;
		pid_t want = c->pid;
		struct clone_args ca = {
			.exit_signal = c->task->has_exit_signal
					       ? c->task->exit_signal
					       : SIGCHLD,
			.set_tid = (uintptr_t)&want,
			.set_tid_size = 1,
		};
		pid_t got = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		if (got < 0)
			DIE(t, "cannot make process %d: %s%s", want,
			    strerror(errno),
			    errno == EEXIST ? " (the PID is taken)" : "");
		if (got == 0)
			restore_prelude(t, i);
		if (c->task->zombie) {
			/* Until it has ended, without reaping it. */
			siginfo_t si;
			waitid(P_PID, (id_t)got, &si, WEXITED | WNOWAIT);
		}
		/* Process groups led by a child: set from both sides, as
		 * shells do, so neither order of running loses. */
		if (c->task->sid != c->pid) {
			if (c->task->pgid == c->pid)
				setpgid(got, got);
			else if (c->task->pgid != me->task->pgid)
				setpgid(got, c->task->pgid);
		}
	}
}

static int by_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Close every descriptor but the image's and this process's own services
 * (close_range, Linux 5.9).  0, or -1 with errno. */
static int close_unwanted(const struct restore_tree *t,
			  const struct restore_ctx *me)
{
	size_t n = 0, cap = me->fdt->n_fds + me->svc.nkeep + 1;
	int *keep = malloc(cap * sizeof(*keep));

	if (!keep)
		return -1;
	for (size_t i = 0; i < me->fdt->n_fds; i++)
		keep[n++] = me->fdt->fds[i]->fd;
	for (unsigned i = 0; i < me->svc.nkeep; i++)
		keep[n++] = me->svc.keep[i];
	keep[n++] = t->status_wr;
	qsort(keep, n, sizeof(*keep), by_int);
	unsigned from = 0;
	int r = 0;
	for (size_t i = 0; i < n && !r; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < from)
			continue;
		if ((unsigned)keep[i] > from)
			r = (int)syscall(SYS_close_range, from,
					 (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	if (!r)
		r = (int)syscall(SYS_close_range, from, ~0U, 0);
	free(keep);
	return r;
}

static void place_descriptors(struct restore_tree *t, struct restore_ctx *me)
{
	if (fault_at("restore-files"))
		DIE(t, "injected failure at restore-files");
	for (size_t i = 0; i < me->fdt->n_fds; i++) {
		const Capcr__Fd *fd = me->fdt->fds[i];
		if (fd->fd >= t->fd_base)
			DIE(t, "descriptor %d collides with capcr's own", fd->fd);
		if (dup3(t->file_fd[fd->file], fd->fd,
			 fd->cloexec ? O_CLOEXEC : 0) < 0)
			DIE(t, "cannot put descriptor %d back: %s", fd->fd,
			    strerror(errno));
	}
	/* Everything else inherited from capcr restore goes: every service
	 * descriptor of every process of the image (a thousand for 50
	 * processes), so by close_range over the gaps between the numbers
	 * kept, not by listing /proc/self/fd (which made a /proc inode for
	 * each, half the time of making a 50-process tree). */
	if (close_unwanted(t, me) < 0)
		DIE(t, "cannot close the descriptors of capcr restore: %s",
		    strerror(errno));
}

/* Who gets the description's SIGIO/SIGURG, and as which signal.  Every
 * process holding it sets it: the owner may be made after some of them
 * (ESRCH there), never after itself. */
static void set_owner(struct restore_tree *t, const Capcr__File *f, int fd)
{
	if (f->has_owner_pid) {
		struct f_owner_ex own = { .type = (int)f->owner_type,
					  .pid = f->owner_pid };
		if (fcntl(fd, F_SETOWN_EX, &own) < 0 && errno != ESRCH)
			DIE(t, "cannot give descriptor %d its owner %d: %s", fd,
			    f->owner_pid, strerror(errno));
	}
	if (f->has_owner_signal && fcntl(fd, F_SETSIG, f->owner_signal) < 0)
		DIE(t, "cannot give descriptor %d its signal %d: %s", fd,
		    f->owner_signal, strerror(errno));
}

/* What each kind does once every descriptor is in place. */
static void settle_files(struct restore_tree *t, struct restore_ctx *me)
{
	char why[512] = "";
	struct file_restore_env env = { .img = &t->img, .why = why,
					.whylen = sizeof(why),
					.shmem_fd = t->shmem_fd };

	for (size_t i = 0; i < me->fdt->n_fds; i++) {
		const Capcr__Fd *fd = me->fdt->fds[i];
		const Capcr__File *f = t->files->files[fd->file];
		const struct file_ops *ops = files_ops_for_kind(f->kind);
		int first = fd->fd;
		for (size_t j = 0; j < me->fdt->n_fds; j++)
			if (me->fdt->fds[j]->file == fd->file &&
			    me->fdt->fds[j]->fd < first)
				first = me->fdt->fds[j]->fd;
		if (ops && ops->settle && ops->settle(&env, f, fd->fd, first) < 0)
			DIE(t, "%s", why);
		if (fd->fd == first)
			set_owner(t, f, first);
	}
}

/* A working directory removed while the process was in it: made again
 * where it was (or, if that name is taken now, beside it), entered and
 * removed, so the process is again in a deleted directory.  Made with the
 * image owner's rights, as every path of the image. */
static int enter_deleted(struct restore_tree *t, const char *cwd)
{
	static const char tag[] = " (deleted)";
	size_t n = strlen(cwd), tl = sizeof(tag) - 1;
	char path[PATH_MAX];
	int r = -1, e = ENOENT;

	if (n <= tl || n - tl >= sizeof(path) - 16 ||
	    strcmp(cwd + n - tl, tag) || cwd[0] != '/')
		return errno = ENOENT, -1;
	memcpy(path, cwd, n - tl);
	path[n - tl] = 0;
	uid_t ou = (uid_t)setfsuid(t->img.owner_uid);
	gid_t og = (gid_t)setfsgid(t->img.owner_gid);
	if (mkdir(path, 0700) == 0 ||
	    (errno == EEXIST && (strcat(path, ".capcr-XXXXXX"), mkdtemp(path)))) {
		r = chdir(path);
		e = errno;
		rmdir(path);
	} else {
		e = errno;
	}
	setfsuid(ou);
	setfsgid(og);
	errno = e;
	return r;
}

static void restore_attrs(struct restore_tree *t, const Capcr__Task *k)
{
	/* Both paths are as capcr sees them: enter the directory first,
	 * then the root, which leaves the working directory alone. */
	if (chdir(k->cwd) < 0 && enter_deleted(t, k->cwd) < 0)
		DIE(t, "cannot enter the working directory %s: %s", k->cwd,
		    strerror(errno));
	if (k->root && strcmp(k->root, "/") && chroot(k->root) < 0)
		DIE(t, "cannot enter the root directory %s: %s", k->root,
		    strerror(errno));
	char w[256];
	if (attrs_restore_prelude(k, w, sizeof(w)) < 0)
		DIE(t, "%s", w);
	umask((mode_t)k->umask);
	if (personality(k->personality) < 0)
		DIE(t, "cannot set personality %#x: %s", k->personality,
		    strerror(errno));
	for (size_t i = 0; i < k->n_rlimits; i++) {
		struct rlimit rl = { k->rlimits[i]->cur, k->rlimits[i]->max };
		if (setrlimit((int)k->rlimits[i]->resource, &rl) < 0)
			DIE(t,
			    "cannot restore resource limit %u (soft %llu, hard "
			    "%llu): %s; the hard limit cannot be raised here "
			    "(capcr lacks CAP_SYS_RESOURCE)",
			    k->rlimits[i]->resource,
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max, strerror(errno));
	}
	const char *comm = k->n_threads && k->threads[0]->comm
				   ? k->threads[0]->comm
				   : k->comm;
	prctl(PR_SET_NAME, comm);
}

/* A zombie comes back by ending the same way again. */
static void become_zombie(const Capcr__Task *k)
{
	int st = k->exit_code;

	if (st & 0x7f) {
		signal(st & 0x7f, SIG_DFL);
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		prctl(PR_SET_DUMPABLE, 0);
		syscall(SYS_kill, syscall(SYS_getpid), st & 0x7f);
	}
	_exit((st >> 8) & 0xff);
}

static int in_image(const struct restore_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nprocs; i++)
		if (t->procs[i].pid == pid)
			return 1;
	return 0;
}

void restore_prelude(struct restore_tree *t, size_t idx)
{
	struct restore_ctx *me = &t->procs[idx];
	sigset_t chld;

	/* If its parent dies before it is let go, so does it; and if it died
	 * already, the orphan has another parent now (init, or a subreaper
	 * above capcr). */
	pid_t parent = idx ? me->task->ppid : t->monitor;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	say(t, 1, "made");
	/* Into its cgroups before anything else: its children are born
	 * there, and its memory is charged there (cgroups.c). */
	char cw[400];
	if (cgroups_join(t, idx, cw, sizeof(cw)) < 0)
		DIE(t, "%s", cw);
	if (me->task->sid == me->pid && setsid() < 0)
		DIE(t, "setsid: %s", strerror(errno));
	else if (me->task->sid != me->pid && me->task->pgid == me->pid &&
		 !(idx == 0 && !in_image(t, me->task->sid)))
		setpgid(0, 0);
	/* A root that led a job of a shell outside the image (CRIU's shell
	 * job) stays in the group of capcr restore, the foreground job of
	 * the shell it runs in now: a group of its own would be a
	 * background job of that terminal, stopped at its first read. */
	/* A pty of the image: its session leader takes it back as its
	 * controlling terminal before making its children (they inherit
	 * it), its foreground group's leader makes its group the
	 * foreground once in it (pty.c). */
	char pwhy[256] = "";
	if (pty_prelude(t->files, t->file_fd, me->pid, pwhy, sizeof(pwhy)) < 0)
		DIE(t, "%s", pwhy);
	if (me->task->zombie)
		become_zombie(me->task);
	/* Children's deaths (zombies of the image) must not leave a SIGCHLD
	 * behind that the image did not have. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	make_children(t, me);
	place_descriptors(t, me);
	settle_files(t, me);
	restore_attrs(t, me->task);
	/* Opening files with the image owner's rights (setfsuid) changed
	 * the credentials, which clears the parent-death signal: set it
	 * again, and look again whether the parent is still there. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&chld, NULL, &zero) > 0)
		;
	say(t, 2, "ready");
	for (;;)
		pause();
}
