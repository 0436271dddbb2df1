/* SPDX-License-Identifier: MIT */
/*
 * capcr restore: bring a process tree back from an image directory alone,
 * with its PIDs, memory, registers and capabilities.
 *
 * Every check of the image (format, checksums, free PIDs) is done before
 * anything is made.  capcr restore makes every open file description of
 * the image itself, then the root process with clone3(set_tid); each new
 * process makes its own children the same way (they inherit the
 * descriptions, so sharing stays as it was), puts its descriptors in place
 * and waits (child.c).  Each is then taken over from outside (takeover.c).
 * On any failure every process made so far is killed: no stray process is
 * left.  Then capcr restore stays the root's parent and monitor, serving
 * the PD channel, or with --restore-detached returns.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../common/pd_proto.h"
#include "pool.h"
#include "../dump/dump.h"
#include "../files/files.h"
#include "../files/inflight.h"
#include "../files/locks.h"
#include "../files/sysvipc.h"
#include "../image/load.h"
#include "../pages/page_chain.h"
#include "../monitor/commands.h"
#include "../monitor/pd_service.h"
#include "../monitor/supervise.h"
#include "capcr/capinfo.h"
#include "../proc/attrs.h"
#include "../proc/cgroups.h"
#include "../files/tcp.h"
#include "../proc/creds.h"
#include "lazy.h"
#include "made.h"
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

/* Every file of the image, read and validated as a whole (image_set_load)
 * before anything is made from it.  The tree takes what was read, even on
 * failure: tree_free frees it. */
static int read_images(struct restore_tree *t, const char *dir, char *why,
		       size_t wl)
{
	struct image_set s;
	int r = image_set_load(&t->img, dir, &s, why, wl);

	/* An incremental image: its parents, as checked as it is. */
	if (!r)
		r = page_chain_open(&t->chain, &t->img, &s, why, wl);
	t->inv = s.inv;
	t->files = s.files;
	t->procs = calloc(s.nprocs + 1, sizeof(*t->procs));
	if (!t->procs) {
		t->inv = NULL;
		t->files = NULL;
		image_set_free(&s);
		return snprintf(why, wl, "out of memory"), -1;
	}
	t->nprocs = s.nprocs;
	for (size_t i = 0; i < s.nprocs; i++) {
		struct restore_ctx *c = &t->procs[i];
		c->tree = t;
		c->files = t->files;
		c->pid = s.inv->pids[i];
		c->task = s.procs[i].task;
		c->mm = s.procs[i].mm;
		c->fdt = s.procs[i].fdt;
		c->memfd = -1;
		c->uffd = -1;
	}
	free(s.procs);
	return r;
}

/* Who the processes will be: an image only root owns may say root. */
static int check_creds(struct restore_tree *t, char *why, size_t wl)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		const Capcr__Task *k = t->procs[i].task;
		char w[400];
		if (!k->zombie && !k->creds)
			return snprintf(why, wl, "core-%d.img records no "
						 "credentials",
					k->pid),
			       -1;
		if ((k->creds && creds_check(k->creds, t->img.owner_uid,
					     t->img.owner_gid, w, sizeof(w)) < 0) ||
		    attrs_check(k, t->img.owner_uid, w, sizeof(w)) < 0)
			return snprintf(why, wl, "process %d: %s", k->pid, w),
			       -1;
	}
	return 0;
}

/* A zombie holds its PID until its parent reaps it, which a just-dumped
 * process's parent does at once in the usual case: give it a moment. */
static int check_id_free(pid_t id, char *why, size_t wl)
{
	char path[64], comm[64] = "?";
	FILE *f;

	for (int i = 0; i < 200 && (proc_state(id, NULL) == 'Z' || proc_state(id, NULL) == 'X');
	     i++)
		usleep(10000);
	if (!proc_state(id, NULL))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", id);
	f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	if (proc_state(id, NULL) == 'Z')
		snprintf(why, wl, "PID %d is held by a zombie that its parent "
				  "has not reaped", id);
	else
		snprintf(why, wl,
			 "PID %d is taken by another process (%s): end it, or "
			 "restore once it has exited",
			 id, comm);
	return -1;
}

static int check_ids_free(struct restore_tree *t, char *why, size_t wl)
{
	for (size_t i = 0; i < t->nprocs; i++) {
		const Capcr__Task *k = t->procs[i].task;
		if (check_id_free(k->pid, why, wl) < 0)
			return -1;
		for (size_t j = 1; j < k->n_threads; j++)
			if (check_id_free(k->threads[j]->tid, why, wl) < 0)
				return -1;
	}
	return 0;
}

/* Park a descriptor above every number of the image. */
static int park(struct restore_tree *t, int fd)
{
	int hi, e;

	if (fd < 0)
		return -1;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, t->fd_base);
	e = errno;
	close(fd);
	errno = e;
	return hi;
}

/* The same, saying why not: what names the descriptor. */
static int park_or_say(struct restore_tree *t, int fd, const char *what,
		       char *why, size_t wl)
{
	int hi = park(t, fd);

	if (hi < 0 && fd >= 0)
		snprintf(why, wl, "cannot move %s above descriptor %d: %s", what,
			 t->fd_base, strerror(errno));
	return hi;
}

static int keep(struct restore_ctx *c, int fd)
{
	int hi = park(c->tree, fd);

	if (hi < 0)
		return -1;
	/* Each kept one is closed in the process at its takeover: one not
	 * noted would stay in it. */
	if (c->svc.nkeep == c->svc.keep_cap) {
		unsigned cap = c->svc.keep_cap ? 2 * c->svc.keep_cap : 16;
		int *n = realloc(c->svc.keep, cap * sizeof(*n));

		if (!n) {
			close(hi);
			errno = ENOMEM;
			return -1;
		}
		c->svc.keep = n;
		c->svc.keep_cap = cap;
	}
	c->svc.keep[c->svc.nkeep++] = hi;
	return hi;
}

/* keep, for the page layer (a pages file of the image or a parent). */
static int keep_page_file(void *arg, int fd)
{
	return keep(arg, fd);
}

static int make_in_order(struct restore_tree *t, struct file_restore_env *env,
			 const size_t *order);

/* Each File in turn, kept above the image's numbers, with its status
 * flags and position.  -1 with env->why set at the first that fails. */
static int make_each_file(struct restore_tree *t, struct file_restore_env *env)
{
	char *why = env->why;
	size_t wl = env->whylen;
	/* What a queued message carries in flight first, so that it can
	 * be sent with it (src/files/inflight.c). */
	size_t *order = malloc((t->files->n_files + 1) * sizeof(size_t));

	if (!order)
		return snprintf(why, wl, "out of memory"), -1;
	if (inflight_order(t->files, order, why, wl) < 0) {
		free(order);
		return -1;
	}
	int r = make_in_order(t, env, order);
	free(order);
	return r;
}

static int make_in_order(struct restore_tree *t, struct file_restore_env *env,
			 const size_t *order)
{
	char *why = env->why;
	size_t wl = env->whylen;

	for (size_t k = 0; k < t->files->n_files; k++) {
		size_t i = order[k];
		const Capcr__File *f = t->files->files[i];
		const struct file_ops *ops = files_ops_for_kind(f->kind);
		if (!ops)
			return snprintf(why, wl, "image holds a file of "
						 "unknown kind %d", f->kind),
			       -1;
		/* A failed restore has said why. */
		int fd = park_or_say(t, ops->restore(env, f),
				     f->path ? f->path : "an open file", why, wl);
		if (fd < 0)
			return -1;
		t->file_fd[i] = fd;
		/* Status flags (O_NONBLOCK, O_APPEND, ...) and position; an
		 * O_PATH descriptor has neither. */
		if (f->flags & O_PATH)
			continue;
		fcntl(fd, F_SETFL, (int)f->flags);
		if (f->has_pos && lseek(fd, f->pos, SEEK_SET) < 0 &&
		    errno != ESPIPE)
			return snprintf(why, wl, "cannot seek %s to %lld: %s",
					f->path ? f->path : "a file",
					(long long)f->pos, strerror(errno)),
			       -1;
	}
	return 0;
}

/* Every open file description of the image, made once, here. */
static int make_files(struct restore_tree *t, char *why, size_t wl)
{
	size_t nf = t->files->n_files;

	if (shmem_restore_all(&t->img, t->files, &t->shmem_fd, why, wl) < 0)
		return -1;
	for (size_t i = 0; i < t->files->n_shmem; i++)
		if ((t->shmem_fd[i] = park_or_say(t, t->shmem_fd[i],
						  "a shared memory object", why,
						  wl)) < 0)
			return -1;
	if (sysv_restore_all(t->files, t->shmem_fd, &t->sysv_made, why, wl) <
	    0)
		return -1;
	struct file_restore_env env = { .img = &t->img, .why = why,
					.whylen = wl,
					.inherited = t->inherited,
					.ninherited = t->ninherited,
					.shmem_fd = t->shmem_fd };

	t->file_fd = calloc(nf + 1, sizeof(int));
	if (!t->file_fd)
		return snprintf(why, wl, "out of memory"), -1;
	for (size_t i = 0; i < nf; i++)
		t->file_fd[i] = -1;
	env.file_fd = t->file_fd;
	if (fault_at("restore-files"))
		return snprintf(why, wl, "injected failure at restore-files"),
		       -1;
	int r = make_each_file(t, &env);
	/* What the kinds kept while making them (pipe ends, ...) goes,
	 * whether or not all were made. */
	files_restore_end(&env);
	t->pd_ends = env.pd_ends;
	env.pd_ends = NULL;
	for (unsigned p = 0; p < env.npd_ends; p++) {
		if (r < 0) {
			close(t->pd_ends[p].fd);
			continue;
		}
		t->pd_ends[p].fd = park_or_say(t, t->pd_ends[p].fd,
					       "a PD session", why, wl);
		t->npd_ends = p + 1;
		if (t->pd_ends[p].fd < 0)
			r = -1;
	}
	return r;
}

/* Serve the ipc sessions of restored runtimes, each with the monitor's
 * copy of its region rebuilt from the image. */
static void adopt_sessions(struct restore_tree *t, struct pd_service *pd)
{
	for (unsigned k = 0; k < t->npd_ends; k++) {
		int fd = t->pd_ends[k].fd;
		t->pd_ends[k].fd = -1;
		for (size_t i = 0; fd >= 0 && i < t->nprocs; i++) {
			const struct restore_ctx *c = &t->procs[i];
			const Capcr__CapSpace *cs = c->fdt->capspace;
			int holds = 0;
			for (size_t d = 0; d < c->fdt->n_fds; d++)
				holds |= c->fdt->fds[d]->file == t->pd_ends[k].file;
			if (!holds)
				continue;
			size_t n = cs ? cs->n_caps : 0;
			struct capcr_cap_info *e = calloc(n + 1, sizeof(*e));
			for (size_t j = 0; e && j < n; j++) {
				struct capcr_cap_entry ce;
				memcpy(&ce, cs->caps[j]->entry.data, sizeof(ce));
				e[j].kcap = cs->caps[j]->fd;
				e[j].kind = ce.kind;
				e[j].badge_ptr = cs->caps[j]->badge_ptr;
			}
			if (e && pd_service_adopt(pd, fd, c->pid,
						  cs ? cs->badge_base : 0, e,
						  (unsigned)n) == 0)
				fd = -1;
			free(e);
		}
		if (fd >= 0)
			close(fd);
	}
}

static int open_services(struct restore_tree *t, size_t i)
{
	struct restore_ctx *c = &t->procs[i];
	c->svc.exe = -1;
	c->svc.vma = calloc(c->mm->n_vmas + 1, sizeof(int));
	if (!c->svc.vma)
		return restore_fail(c, "out of memory");
	for (size_t v = 0; v < c->mm->n_vmas; v++)
		c->svc.vma[v] = -1;
	if (c->task->zombie)
		return 0;
	if (page_read_open(&c->pages, &t->img, c->mm, c->pid, t->chain,
			   keep_page_file, c, c->why, sizeof(c->why)) < 0)
		return -1;
	c->svc.exe = c->task->exe
			     ? keep(c, files_open_as(t->img.owner_uid,
						     t->img.owner_gid,
						     c->task->exe,
						     O_RDONLY | O_CLOEXEC))
			     : -1;
	for (size_t v = 0; v < c->mm->n_vmas; v++) {
		const Capcr__Vma *m = c->mm->vmas[v];
		int fd = -1;
		if (m->kind == CAPCR__VMA_KIND__VMA_FILE_PRIVATE ||
		    m->kind == CAPCR__VMA_KIND__VMA_FILE_SHARED) {
			int wr = m->kind == CAPCR__VMA_KIND__VMA_FILE_SHARED &&
				 (m->prot & 2);
			/* With the image owner's rights, as every file
			 * the image names (docs/security.md). */
			fd = m->path && m->path[0] == '/'
				     ? files_open_as(t->img.owner_uid,
						     t->img.owner_gid, m->path,
						     (wr ? O_RDWR : O_RDONLY) |
							     O_CLOEXEC)
				     : (errno = EINVAL, -1);
			if (fd < 0)
				return restore_fail(c, "cannot open %s, which "
						       "process %d had mapped: "
						       "%s",
						    m->path, c->pid,
						    strerror(errno));
		} else if (m->has_sysv_shmid) {
			fd = -1; /* attached with shmat at the takeover */
		} else if (m->kind == CAPCR__VMA_KIND__VMA_ANON_SHARED) {
			/* the one object, shared with every other mapping */
			if (!m->has_shmem || m->shmem < 0 ||
			    (size_t)m->shmem >= t->files->n_shmem)
				return restore_fail(c, "the image has no object "
						       "for shared memory at "
						       "%#llx",
						    (unsigned long long)m->start);
			fd = fcntl(t->shmem_fd[m->shmem], F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				return restore_fail(c, "dup: %s",
						    strerror(errno));
		}
		if (fd >= 0 && (c->svc.vma[v] = keep(c, fd)) < 0)
			return restore_fail(c, "cannot keep the file of the "
					       "area at %#llx: %s (process %d "
					       "maps more files than capcr "
					       "restore can hold for it)",
					    (unsigned long long)m->start,
					    strerror(errno), c->pid);
	}
	return 0;
}

/* The restored root's runtime asks its monitor by the name it kept; serve
 * it under the same name. */
static const char *pd_name_of(struct restore_ctx *c, char *buf, size_t n)
{
	char path[64], *env = NULL;
	size_t len = 0;
	FILE *f;
	const char *r = NULL;

	int monitored = 0;
	for (size_t i = 0; i < c->tree->nprocs; i++)
		monitored |= c->tree->procs[i].task->monitored;
	if (!monitored)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/environ", c->pid);
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
static void note_inherited(struct restore_tree *t)
{
	DIR *d = opendir("/proc/self/fd");

	if (!d)
		return;
	/* As many as the descriptor limit allows, not a fixed number. */
	long max = sysconf(_SC_OPEN_MAX);
	t->ninherited = max > 1024 && max < (1 << 20) ? (int)max : 1024;
	t->inherited = calloc((size_t)t->ninherited, 1);
	for (struct dirent *e; t->inherited && (e = readdir(d));) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    fd >= t->ninherited)
			continue;
		t->inherited[fd] = 1;
	}
	closedir(d);
}

/* Until every process of the image is ready, or one says why not. */
static int wait_ready(struct restore_tree *t, struct made *m, char *why,
		      size_t wl)
{
	size_t want = 0;

	for (size_t i = 0; i < t->nprocs; i++)
		want += !t->procs[i].task->zombie;
	while (m->ready < want) {
		struct pollfd p = { .fd = t->status_rd, .events = POLLIN };
		int r = poll(&p, 1, 100);
		/* No deadline: a big image takes its time.  But every
		 * process made must stay alive and running meanwhile. */
		if (r == 0) {
			if (made_check(m, why, wl) < 0)
				return -1;
			continue;
		}
		struct prelude_msg msg;
		if (r < 0 || read(t->status_rd, &msg, sizeof(msg)) !=
				     sizeof(msg))
			continue;
		msg.why[sizeof(msg.why) - 1] = 0;
		if (msg.ok == 1 && made_add(m, msg.pid) < 0)
			return snprintf(why, wl, "out of memory"), -1;
		else if (msg.ok == 2)
			m->ready++;
		else if (msg.ok == 0)
			return snprintf(why, wl, "process %d: %s", msg.pid,
					msg.why),
			       -1;
	}
	return 0;
}

static void close_made(struct restore_tree *t)
{
	for (size_t i = 0; t->file_fd && i < t->files->n_files; i++)
		if (t->file_fd[i] >= 0)
			close(t->file_fd[i]);
	free(t->file_fd);
	t->file_fd = NULL;
	for (size_t i = 0; t->shmem_fd && i < t->files->n_shmem; i++)
		if (t->shmem_fd[i] >= 0)
			close(t->shmem_fd[i]);
	free(t->shmem_fd);
	t->shmem_fd = NULL;
	for (size_t i = 0; i < t->nprocs; i++) {
		for (unsigned k = 0; k < t->procs[i].svc.nkeep; k++)
			close(t->procs[i].svc.keep[k]);
		t->procs[i].svc.nkeep = 0;
		if (t->procs[i].memfd >= 0)
			close(t->procs[i].memfd);
		t->procs[i].memfd = -1;
		/* The server's copy is the one that counts from now on. */
		if (t->procs[i].uffd >= 0)
			close(t->procs[i].uffd);
		t->procs[i].uffd = -1;
	}
	if (t->status_wr >= 0)
		close(t->status_wr);
	t->status_wr = -1;
	cgroups_close(t);
}

static void tree_free(struct restore_tree *t)
{
	close_made(t);
	/* PD sessions nobody adopted (detached, or no monitor) */
	for (unsigned k = 0; k < t->npd_ends; k++)
		if (t->pd_ends[k].fd >= 0)
			close(t->pd_ends[k].fd);
	t->npd_ends = 0;
	free(t->pd_ends);
	t->pd_ends = NULL;

	for (size_t i = 0; t->procs && i < t->nprocs; i++) {
		struct restore_ctx *c = &t->procs[i];
		if (c->task)
			capcr__task__free_unpacked(c->task, NULL);
		if (c->mm)
			capcr__mm__free_unpacked(c->mm, NULL);
		if (c->fdt)
			capcr__fd_table__free_unpacked(c->fdt, NULL);
		free(c->svc.vma);
		free(c->svc.keep);
		page_read_close(&c->pages);
		free(c->threads);
	}
	free(t->procs);
	t->procs = NULL;
	if (t->files)
		capcr__files__free_unpacked(t->files, NULL);
	t->files = NULL;
	if (t->inv)
		capcr__inventory__free_unpacked(t->inv, NULL);
	t->inv = NULL;
	free(t->inherited);
	t->inherited = NULL;
	cgroups_free(t);
	page_chain_close(t->chain);
	t->chain = NULL;
	if (t->status_rd >= 0)
		close(t->status_rd);
	t->status_rd = -1;
	image_close(&t->img);
}

static void release_files(struct restore_tree *t)
{
	Capcr__FdTable **fdts = calloc(t->nprocs + 1, sizeof(*fdts));
	pid_t *pids = calloc(t->nprocs + 1, sizeof(*pids));

	for (size_t i = 0; fdts && pids && i < t->nprocs; i++) {
		fdts[i] = t->procs[i].task->zombie ? NULL : t->procs[i].fdt;
		pids[i] = t->procs[i].pid;
	}
	if (fdts && pids)
		files_release(t->files, fdts, pids, t->nprocs);
	free(fdts);
	free(pids);
}

/* Locks are taken back only when asked (--file-locks, as CRIU): an image
 * that holds some is refused without it rather than restored without
 * them, which would let another process into what they guarded. */
static int check_locks(struct restore_tree *t, int file_locks, char *why,
		       size_t wl)
{
	char what[160];

	for (size_t i = 0; !file_locks && i < t->nprocs; i++) {
		const Capcr__FdTable *fdt = t->procs[i].fdt;
		if (!fdt->n_locks)
			continue;
		locks_describe(fdt->locks[0], what, sizeof(what));
		snprintf(why, wl,
			 "the image holds file locks (process %d held %s on "
			 "descriptor %d); use --file-locks to take them back",
			 t->procs[i].pid, what, fdt->locks[0]->fd);
		return -1;
	}
	return 0;
}

static void usage_restore(FILE *out)
{
	fprintf(out,
		"usage: capcr restore -D DIR [-d] [--pidfile FILE] "
		"[--file-locks] [--lazy-pages]\n"
		"  Restore the processes saved in image directory DIR, with\n"
		"  their PIDs.  capcr restore stays the root's parent and\n"
		"  monitor and exits with its exit status, unless -d is given.\n"
		"  -D, --images-dir DIR          the image\n"
		"  -d, --restore-detached        return once it runs\n"
		"      --pidfile FILE            write the root's PID to FILE\n"
		"  -j, --shell-job               accepted, as CRIU's: a terminal\n"
		"                                or pipe from outside the image\n"
		"                                is always re-attached to the same\n"
		"                                descriptor of capcr restore, and a\n"
		"                                job of a shell comes back in capcr\n"
		"                                restore's (foreground) group\n"
		"  -l, --file-locks              take back the file locks the\n"
		"                                image holds (dumped with\n"
		"                                --file-locks); an image with\n"
		"                                locks is refused without it\n"
		"      --manage-cgroups[=MODE]   what to do with the cgroups the\n"
		"                                processes were in; without it,\n"
		"                                each joins its own, and a\n"
		"                                missing one fails the restore.\n"
		"                                MODE (CRIU's): soft (the default)\n"
		"                                creates missing ones with their\n"
		"                                recorded properties; full sets\n"
		"                                those on existing ones too;\n"
		"                                strict (props) sets them on all\n"
		"                                and creates none; ignore (none)\n"
		"                                leaves the processes in capcr\n"
		"                                restore's cgroups\n"
		"      --tcp-established         restore the TCP connections to\n"
		"                                peers outside the image (dumped\n"
		"                                with --tcp-established) and lift\n"
		"                                their nftables block\n"
		"      --lazy-pages              let the processes run before\n"
		"                                their private anonymous memory\n"
		"                                is in: a server (capcr-lazy, a\n"
		"                                child of capcr restore that\n"
		"                                outlives it with -d) puts each\n"
		"                                page in at its first touch and\n"
		"                                copies the rest meanwhile, then\n"
		"                                ends.  If it is killed before,\n"
		"                                the pages not in yet read as\n"
		"                                zeros (docs/architecture.md)\n"
		"      --" IMAGE_UNTRUSTED_OPT "         restore an image another user owns\n"
		"                                or may write (docs/security.md)\n");
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "detach", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "file-locks", no_argument, NULL, 'l' },
		{ "tcp-established", no_argument, NULL, 'e' },
		{ "manage-cgroups", optional_argument, NULL, 'G' },
		{ "lazy-pages", no_argument, NULL, 'L' },
		{ IMAGE_UNTRUSTED_OPT, no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct made made = { 0 };
	struct takeover_pool *pool = NULL;
	struct restore_tree t;
	const char *dir = NULL, *pidfile = NULL;
	int pidfile_made = 0; /* ours to remove if the restore fails */
	int detach = 0, file_locks = 0, c, sp[2] = { -1, -1 };
	enum cgroups_mode cg_mode = CGROUPS_DEFAULT;
	pid_t root = -1;
	char why[600] = "";

	tracer_init();
	/* capcr restore holds a descriptor per mapped file of every process
	 * until each is taken over: as many as the hard limit allows (the
	 * processes get their own limits back from the image). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
	    nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	memset(&t, 0, sizeof(t));
	t.img.dirfd = t.status_rd = t.status_wr = t.lazy_sock = -1;
	note_inherited(&t);
	optind = 1;
	while ((c = getopt_long(argc, argv, "D:djlh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			break; /* what capcr always does: see usage */
		case 'l':
			file_locks = 1;
			break;
		case 'e':
			tcp_restore_allow_external(1);
			break;
		case 'G':
			if (cgroups_parse_mode(optarg, &cg_mode) < 0) {
				capcr_err("--manage-cgroups=%s: the modes are "
					  "soft, full, strict, props, ignore "
					  "and none", optarg);
				return 2;
			}
			break;
		case 'D':
			dir = optarg;
			break;
		case 'd':
			detach = 1;
			break;
		case 'p':
			pidfile = optarg;
			break;
		case 'U':
			image_allow_untrusted(1);
			break;
		case 'L':
			t.lazy = 1;
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
	t.detach = detach;
	t.monitor = getpid();
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (read_images(&t, dir, why, sizeof(why)) < 0 ||
	    check_locks(&t, file_locks, why, sizeof(why)) < 0 ||
	    check_creds(&t, why, sizeof(why)) < 0 ||
	    check_ids_free(&t, why, sizeof(why)) < 0)
		goto fail;
	/* Everything capcr hands the processes lives above their numbers. */
	int maxfd = 2;
	pid_t maxfd_pid = t.procs[0].pid;
	for (size_t i = 0; i < t.nprocs; i++)
		for (size_t k = 0; k < t.procs[i].fdt->n_fds; k++)
			if (t.procs[i].fdt->fds[k]->fd > maxfd) {
				maxfd = t.procs[i].fdt->fds[k]->fd;
				maxfd_pid = t.procs[i].task->pid;
			}
	t.fd_base = maxfd + 1;
	/* capcr's own descriptors go above that number, one per file and a
	 * few per process: beyond the limit they could not, and the restore
	 * would fail for no reason it could name. */
	unsigned long long need = (unsigned long long)maxfd + 1 +
				  t.files->n_files + t.files->n_shmem +
				  8 * t.nprocs + 16;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && need > nofile.rlim_cur) {
		snprintf(why, sizeof(why),
			 "process %d has descriptor %d: to bring it back, "
			 "capcr restore needs a descriptor limit of about "
			 "%llu, and its limit is %llu (raise it: ulimit -n "
			 "%llu)",
			 maxfd_pid, maxfd, need,
			 (unsigned long long)nofile.rlim_cur, need);
		goto fail;
	}
	/* Cgroups made before anything is put in them; a failure from here
	 * on removes those made. */
	if (cgroups_prepare(&t, cg_mode, why, sizeof(why)) < 0)
		goto fail;
	struct timespec t_read;
	clock_gettime(CLOCK_MONOTONIC, &t_read);
	if (make_files(&t, why, sizeof(why)) < 0)
		goto fail;
	for (size_t i = 0; i < t.nprocs; i++)
		if (open_services(&t, i) < 0) {
			snprintf(why, sizeof(why), "%s", t.procs[i].why);
			goto fail;
		}
	/* Before any process is made: it serves their faults from the
	 * takeover on, and holds nothing of theirs. */
	if (t.lazy && lazy_start(&t, why, sizeof(why)) < 0)
		goto fail;
	if (pipe2(sp, O_CLOEXEC | O_DIRECT) < 0) {
		snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
		goto fail;
	}
	t.status_rd = sp[0];
	t.status_wr = park_or_say(&t, sp[1], "the status pipe", why,
				  sizeof(why));
	if (t.status_wr < 0)
		goto fail;
	sigset_t orig;
	if (supervise_prepare(&orig) < 0) {
		snprintf(why, sizeof(why), "signalfd: %s", strerror(errno));
		goto fail;
	}
	if (fault_at("restore-clone")) {
		snprintf(why, sizeof(why), "injected failure at restore-clone");
		goto fail;
	}
	if (made_become_reaper() < 0) {
		snprintf(why, sizeof(why), "cannot become the child subreaper "
					   "of the restored processes: %s",
			 strerror(errno));
		goto fail;
	}
	pid_t want = t.procs[0].pid;
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};
	root = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (root < 0) {
		snprintf(why, sizeof(why), "cannot create process %d: %s%s",
			 want, strerror(errno),
			 errno == EEXIST ? " (the PID is taken)"
			 : errno == EPERM
				 ? " (needs root or CAP_CHECKPOINT_RESTORE)"
				 : "");
		goto fail;
	}
	if (root == 0) {
		sigprocmask(SIG_SETMASK, &orig, NULL);
		restore_prelude(&t, 0);
	}
	if (made_add(&made, root) < 0) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	struct timespec t_files, t_made, t_taken;
	clock_gettime(CLOCK_MONOTONIC, &t_files);
	if (wait_ready(&t, &made, why, sizeof(why)) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &t_made);
	/* Take each one over, on as many threads as there are processors
	 * (pool.c); the root's children first need nothing. */
	if (pool_takeover(&pool, &t, &made, why, sizeof(why)) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &t_taken);
	/* The processes hold what they need now; an open file description
	 * kept here would hold a pipe open for ever. */
	close_made(&t);
	char pdbuf[CAPCR_PD_NAME_MAX + 1];
	const char *pdname = pd_name_of(&t.procs[0], pdbuf, sizeof(pdbuf));
	struct pd_service pd;
	int have_pd = 0;
	if (pdname && !detach) {
		const Capcr__CapSpace *rcs = t.procs[0].fdt->capspace;
		int mode = rcs && rcs->mode && !strcmp(rcs->mode, "ipc")
				   ? CAPCR_PD_IPC
				   : CAPCR_PD_SHM;
		if (pd_service_start(&pd, mode, pdname) == 0) {
			have_pd = 1;
			adopt_sessions(&t, &pd);
		}
		else
			capcr_warn("cannot serve the PD channel %s (%s): "
				   "children of the restored processes will "
				   "run unmonitored",
				   pdname, strerror(errno));
	}
	sysv_finish(t.files);
	/* Every checksum must hold before any of them runs; with
	 * --lazy-pages they run at once, and the pages' checksums end the
	 * tree if they do not hold (below). */
	if (!t.lazy && (image_verify_finish(&t.img, why, sizeof(why)) < 0 ||
			page_chain_verify(t.chain, why, sizeof(why)) < 0))
		goto fail;
	/* Scheduling last: a process that ran at idle priority must not
	 * slow its own restore. */
	for (size_t i = 0; i < t.nprocs; i++)
		if (!t.procs[i].task->zombie &&
		    attrs_restore_threads(t.procs[i].task, why, sizeof(why)) < 0)
			goto fail;
	/* Whoever waits for the pidfile must find it once they run: a
	 * pidfile that cannot be written fails the restore, before anything
	 * runs; written as late as that allows, and removed again if the
	 * restore fails after all, so that it never names a process that
	 * is not there. */
	if (pidfile) {
		FILE *pf = fopen(pidfile, "we");
		pidfile_made = pf != NULL;
		if (!pf || fprintf(pf, "%d\n", root) < 0 || fclose(pf) != 0) {
			snprintf(why, sizeof(why), "cannot write the pidfile %s: "
				 "%s", pidfile, strerror(errno));
			goto fail;
		}
	}
	if (fault_at("restore-letgo")) {
		snprintf(why, sizeof(why), "injected failure at restore-letgo");
		goto fail;
	}
	/* What the kinds change outside the image (a terminal's settings),
	 * now that nothing can fail any more. */
	release_files(&t);
	/* Let them all go, children first, so a parent never runs while
	 * its children are still held. */
	for (size_t i = t.nprocs; i-- > 0;) {
		int e = pool_let_go(pool, i);
		if (e < 0) {
			if (made_check(&made, why, sizeof(why)) == 0)
				snprintf(why, sizeof(why),
					 "cannot let process %d go: %s",
					 t.procs[i].pid, strerror(-e));
			goto fail;
		}
	}
	pool_end(pool);
	pool = NULL;
	/* They run: the rest of their pages comes in the background. */
	lazy_go(&t);
	/* Waiting for the pages files' checksums was most of a lazy
	 * restore's time before the processes ran; they are checked now,
	 * while the processes run, and a file that does not hold ends
	 * the tree (it ran for that long on pages the image cannot vouch
	 * for, which is why eager restores wait). */
	if (t.lazy && (image_verify_finish(&t.img, why, sizeof(why)) < 0 ||
		       page_chain_verify(t.chain, why, sizeof(why)) < 0)) {
		size_t l = strlen(why);
		snprintf(why + l, sizeof(why) - l,
			 " (found while the processes ran with --lazy-pages)");
		goto fail;
	}
	pid_t lazy_server = t.lazy_pid;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	capcr_debug("restore: %.1f ms reading and checking the image, %.1f ms "
		    "making its files, %.1f ms making the processes, %.1f ms "
		    "taking them over, %.1f ms letting them go",
		    ms_between(&t0, &t_read), ms_between(&t_read, &t_files),
		    ms_between(&t_files, &t_made), ms_between(&t_made, &t_taken),
		    ms_between(&t_taken, &t1));
	capcr_info("restored %zu process%s from %d (%s) in %.1f ms", t.nprocs,
		   t.nprocs == 1 ? "" : "es", root, t.procs[0].task->comm,
		   (t1.tv_sec - t0.tv_sec) * 1e3 +
			   (t1.tv_nsec - t0.tv_nsec) / 1e6);
	tree_free(&t);
	made_free(&made);
	if (detach)
		return 0;
	int st = supervise(have_pd ? &pd : NULL, root);
	/* Until the tree's last pages are in, or it is gone. */
	lazy_wait(lazy_server);
	return st;
fail:;
	if (pidfile_made)
		unlink(pidfile);
	/* First, or a process waiting for a page it will never get holds
	 * its wait until it is killed anyway. */
	lazy_stop(&t);
	size_t left = made_kill_all(&made, 10.0);
	/* Its threads' waits end with what they waited for. */
	pool_end(pool);
	sysv_remove_made(&t.sysv_made);
	/* Empty now that every process made is reaped. */
	cgroups_undo(&t);
	capcr_err("restore from %s failed: %s%s", dir,
		  why[0] ? why : "unknown error",
		  made.n && !left ? "; every process it made was ended" : "");
	if (left)
		capcr_err("%zu of the processes the restore made could not be "
			  "ended", left);
	made_free(&made);
	tree_free(&t);
	return 1;
}
