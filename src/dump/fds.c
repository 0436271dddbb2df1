/* SPDX-License-Identifier: MIT */
/*
 * Dumping the capability space of every process of the tree: the kernel's
 * descriptor tables (the truth), each open file description once however
 * many descriptors of however many processes share it, and the region and
 * cap map each runtime kept (the hint, with badges and provenance).  The
 * monitor takes its own copy of every descriptor with pidfd_getfd, so no
 * code runs in the targets for this.
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
#include "../files/inflight.h"
#include "../files/locks.h"
#include "../monitor/procfd.h"
#include "../monitor/region.h"
#include "dump.h"

/* One descriptor of one process of the tree. */
struct desc {
	size_t proc;
	const struct kfd *k;
	int copy;
	struct stat st;
	uint64_t badge; /* the runtime's name for its object, or 0 */
	const Capcr__CapEntry *cap; /* the runtime's entry for it, or NULL */
	Capcr__File *file;
	long next;      /* next description of the same object (index), -1 */
};

/*
 * Finding which descriptors share an open file description, in one pass:
 * the regions' badges name the candidates (the runtime gave a dup, a
 * fork's copy the same badge), and where there is none, or it is refuted,
 * the descriptions already met on the same object (device and inode) are.
 * The kernel (kcmp) has the last word on every candidate, so a lying or
 * stale region can neither merge two descriptions nor split one.
 */
struct share_index {
	long *by_badge;  /* hash of badge -> index of a described desc */
	long *by_obj;    /* hash of (dev, ino) -> first description's index */
	size_t size;     /* buckets, a power of two */
	unsigned refuted;
};

static size_t hash64(uint64_t x, size_t size)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (size - 1);
}

static int share_init(struct share_index *s, size_t n)
{
	s->size = 16;
	while (s->size < 2 * n)
		s->size *= 2;
	s->by_badge = malloc(s->size * sizeof(long));
	s->by_obj = malloc(s->size * sizeof(long));
	s->refuted = 0;
	if (!s->by_badge || !s->by_obj)
		return -1;
	for (size_t i = 0; i < s->size; i++)
		s->by_badge[i] = s->by_obj[i] = -1;
	return 0;
}

static void share_free(struct share_index *s)
{
	free(s->by_badge);
	free(s->by_obj);
}

static uint64_t obj_key(const struct desc *d)
{
	return (uint64_t)d->st.st_dev * 0x9e3779b97f4a7c15ULL ^
	       (uint64_t)d->st.st_ino;
}

static int same_description(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
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
	Capcr__CapSpace *cs = ARENA_NEW(ctx->arena, Capcr__CapSpace);
	capcr__cap_space__init(cs);
	cs->region_addr = s.addr;
	cs->badge_base = s.header.badge_base;
	cs->mode = arena_strdup(ctx->arena, s.via_ipc ? "ipc" : "shm");
	for (unsigned i = 0; i < s.ncaps; i++) {
		if (!s.caps[i].have_entry)
			continue;
		Capcr__CapEntry *e = ARENA_NEW(ctx->arena, Capcr__CapEntry);
		capcr__cap_entry__init(e);
		e->fd = s.caps[i].fd;
		e->badge = s.caps[i].entry.badge;
		e->badge_ptr = s.caps[i].badge_ptr;
		e->entry.len = sizeof(s.caps[i].entry);
		e->entry.data = arena_memdup(ctx->arena, &s.caps[i].entry,
					     sizeof(s.caps[i].entry));
		arena_push(ctx->arena, (void ***)&cs->caps, &cs->n_caps, e);
	}
	t->capspace = cs;
	ctx->task->has_monitored = 1;
	ctx->task->monitored = 1;
	region_snapshot_free(&s);
}

/* Copies of every descriptor of every living process. */
static int collect(struct dump_tree *t, struct kfd **kfds, int *nk,
		   struct desc **out, size_t *nout, size_t *failed)
{
	size_t n = 0, cap = 0;
	struct desc *d = NULL;

	for (size_t p = 0; p < t->nprocs; p++) {
		struct dump_ctx *c = &t->procs[p];
		*failed = p;
		if (c->zombie)
			continue;
		nk[p] = procfd_list(c->pid, &kfds[p]);
		if (nk[p] < 0)
			return DUMP_FAIL(c, "cannot list the descriptors of "
					    "process %d: %s",
					 c->pid, strerror(errno));
		for (int i = 0; i < nk[p]; i++) {
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				struct desc *nd = realloc(d, cap * sizeof(*d));
				if (!nd)
					return DUMP_FAIL(c, "out of memory");
				d = *out = nd;
			}
			struct desc *x = &d[n];
			memset(x, 0, sizeof(*x));
			x->proc = p;
			x->k = &kfds[p][i];
			x->copy = (int)syscall(SYS_pidfd_getfd, c->pidfd,
					       x->k->fd, 0);
			*nout = ++n;
			if (x->copy < 0 || fstat(x->copy, &x->st) < 0)
				return DUMP_FAIL(c, "cannot take a copy of "
						    "descriptor %d of process "
						    "%d: %s",
						 x->k->fd, c->pid,
						 strerror(errno));
		}
	}
	return 0;
}

static int same_object(const struct desc *a, const struct desc *b)
{
	return a->st.st_ino == b->st.st_ino && a->st.st_dev == b->st.st_dev;
}

/* Describe one open file description, the first time it is met: x, a
 * descriptor of the tree (one of all), or capcr's copy of one in flight
 * that no process holds (pid: capcr's own). */
static int dump_file(struct dump_tree *t, struct desc *all, size_t n,
		     struct desc *x, pid_t pid, const ino_t *sinos,
		     size_t nsinos, struct inflight_dump *inf)
{
	struct dump_ctx *c = &t->procs[x->proc];
	struct file_dump_env env = { &t->img, &t->arena, c->why,
				     sizeof(c->why), t->files, &t->shm };
	struct file_dump_in in = {
		.pid = pid,
		.fd = x->k->fd,
		.copy = x->copy,
		.k = x->k,
		.st = x->st,
		.sock_inos = sinos,
		.nsock_inos = nsinos,
	};
	struct capcr_cap_entry cap;
	if (x->cap && x->cap->entry.len == sizeof(cap)) {
		memcpy(&cap, x->cap->entry.data, sizeof(cap));
		in.cap = &cap;
	}
	env.ext_closed = t->ext_closed;
	env.ghost_limit = t->ghost_limit;
	env.inflight = inf;
	inf->proc = x->proc;

	if (S_ISFIFO(x->st.st_mode) && !strncmp(x->k->target, "pipe:", 5)) {
		/* Both ends in the image, in any of its processes, or in
		 * flight? */
		for (size_t j = 0; j < n; j++)
			if (&all[j] != x && same_object(&all[j], x) &&
			    (all[j].k->flags & O_ACCMODE) !=
				    (x->k->flags & O_ACCMODE))
				in.both_pipe_ends = 1;
		if (inflight_has(inf, x->st.st_dev, x->st.st_ino,
				 (int)(x->k->flags & O_ACCMODE)))
			in.both_pipe_ends = 1;
		/* One end only: is the other in a process outside (a shell
		 * pipeline), or just closed? */
		if (!in.both_pipe_ends)
			in.held_outside =
				files_pipe_other_end_open(x->copy, x->k->flags);
	}
	/* A pty slave whose master a process of the image holds is the
	 * image's terminal (pty.c), not one outside. */
	for (size_t j = 0; j < n && pty_is_slave(&x->st) &&
			   !in.pty_master_here; j++)
		in.pty_master_here = pty_pair(&all[j].st, all[j].copy, &x->st);
	const struct file_ops *ops = files_ops_for_dump(&in);
	if (!ops)
		return DUMP_FAIL(c, "descriptor %d of process %d (%s) is of a "
				    "kind capcr cannot checkpoint yet",
				 x->k->fd, pid, x->k->target);
	/* Held by a queue alone: no process to re-attach it to, to settle
	 * it in, or whose descriptors it names. */
	if (pid != c->pid &&
	    (ops->kind == CAPCR__FILE_KIND__FILE_EXTERNAL ||
	     ops->kind == CAPCR__FILE_KIND__FILE_EPOLL ||
	     ops->kind == CAPCR__FILE_KIND__FILE_PIDFD ||
	     ops->kind == CAPCR__FILE_KIND__FILE_USERFAULTFD ||
	     ops->kind == CAPCR__FILE_KIND__FILE_PD_SESSION))
		return DUMP_FAIL(c, "a descriptor in flight in a queue of "
				    "process %d is %s (%s), held by no process "
				    "of the tree; capcr makes such a %s again "
				    "only in a process that holds it",
				 c->pid,
				 ops->kind == CAPCR__FILE_KIND__FILE_EXTERNAL
					 ? "outside the image"
					 : "not a plain file",
				 x->k->target, ops->name);
	Capcr__File *f = ARENA_NEW(&t->arena, Capcr__File);
	capcr__file__init(f);
	f->id = (uint32_t)t->files->n_files;
	f->kind = ops->kind;
	f->flags = x->k->flags & ~(unsigned)O_CLOEXEC;
	if (S_ISREG(x->st.st_mode) || S_ISDIR(x->st.st_mode) ||
	    S_ISBLK(x->st.st_mode)) {
		f->has_pos = 1;
		f->pos = x->k->pos;
	}
	/* Who gets SIGIO and SIGURG for it (F_SETOWN), and which signal
	 * (F_SETSIG): the description's own, read through our copy. */
	struct f_owner_ex own = { 0 };
	if (in.copy >= 0 && fcntl(in.copy, F_GETOWN_EX, &own) == 0 && own.pid) {
		f->has_owner_type = f->has_owner_pid = 1;
		f->owner_type = (uint32_t)own.type;
		f->owner_pid = own.pid;
	}
	int sig = in.copy >= 0 ? fcntl(in.copy, F_GETSIG) : -1;
	if (sig > 0) {
		f->has_owner_signal = 1;
		f->owner_signal = sig;
	}
	int r = ops->dump(&env, &in, f);
	/* Our copy shares the description's position with the process:
	 * reading the contents (a deleted file's extents by SEEK_DATA, a
	 * memfd's bytes) moved it, and with -R the process goes on with it.
	 * The kernel said where it was; it goes back there. */
	off_t at = lseek(x->copy, 0, SEEK_CUR);
	if (at >= 0 && x->k->pos >= 0 && at != (off_t)x->k->pos &&
	    lseek(x->copy, (off_t)x->k->pos, SEEK_SET) < 0 && r == 0)
		r = DUMP_FAIL(c, "cannot put the position of descriptor %d of "
				 "process %d back to %lld: %s",
			      x->k->fd, c->pid, (long long)x->k->pos,
			      strerror(errno));
	if (r < 0)
		return -1;
	arena_push(&t->arena, (void ***)&t->files->files, &t->files->n_files,
		   f);
	x->file = f;
	return 0;
}

static int cmp_ino_copy(const void *a, const void *b)
{
	const ino_t *x = a, *y = b;
	return *x < *y ? -1 : *x > *y;
}

/* Before anything is dumped: what is in flight in the queues of the
 * tree's sockets (inflight.c), so that a socket whose peer is in flight,
 * or a pipe whose other end is, is whole; the sockets in flight join
 * sinos (unless they are to be dropped).  Each socket once. */
static int scan_in_flight(struct dump_tree *t, struct desc *all, size_t n,
			  struct inflight_dump *inf, ino_t **sinos,
			  size_t *nsinos, size_t *failed)
{
	struct { ino_t ino; size_t i; } *socks = calloc(n + 1, sizeof(*socks));
	size_t ns = 0;

	if (!socks)
		return DUMP_FAIL(&t->procs[0], "out of memory");
	for (size_t i = 0; i < n; i++)
		if (S_ISSOCK(all[i].st.st_mode))
			socks[ns].ino = all[i].st.st_ino, socks[ns++].i = i;
	qsort(socks, ns, sizeof(*socks), cmp_ino_copy);
	for (size_t k = 0; k < ns; k++) {
		if (k && socks[k].ino == socks[k - 1].ino)
			continue;
		struct desc *x = &all[socks[k].i];
		*failed = x->proc;
		if (inflight_scan(inf, x->copy, t->procs[x->proc].why,
				  sizeof(t->procs[x->proc].why)) < 0) {
			free(socks);
			return -1;
		}
	}
	free(socks);
	if (inf->skip || !inf->nobjs)
		return 0;
	ino_t *more = realloc(*sinos, (*nsinos + inf->nobjs + 1) *
					      sizeof(ino_t));
	if (!more)
		return DUMP_FAIL(&t->procs[0], "out of memory");
	*sinos = more;
	for (size_t k = 0; k < inf->nobjs; k++)
		if (S_ISSOCK(inf->objs[k].mode))
			more[(*nsinos)++] = inf->objs[k].ino;
	return 0;
}

/* A descriptor in flight that no process holds: the kernel's view of
 * capcr's copy of it, as procfd_list would give it. */
static void kfd_of_copy(int copy, const struct stat *st, struct kfd *k)
{
	char path[64];
	uint64_t v;
	ssize_t l;

	memset(k, 0, sizeof(*k));
	k->fd = copy;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", copy);
	l = readlink(path, k->target, sizeof(k->target) - 1);
	k->target[l > 0 ? l : 0] = 0;
	if (files_fdinfo_u64(getpid(), copy, "pos", 10, &v) == 0)
		k->pos = (int64_t)v;
	if (files_fdinfo_u64(getpid(), copy, "flags", 8, &v) == 0)
		k->flags = (unsigned)v;
	k->ino = st->st_ino;
	k->kind = procfd_kind(k->target, st->st_mode);
}

/* Every descriptor in flight the queues held (inflight.c): the File of
 * the tree that is the same open file description, or the one made for
 * an earlier copy, or a File of its own, which no Fd names (and whose
 * own queue, a socket's, may add more).  Then each message's list of
 * Files, in order, on the socket whose queue holds it. */
static int dump_in_flight(struct dump_tree *t, struct desc *all, size_t n,
			  struct share_index *share, struct inflight_dump *inf,
			  const ino_t *sinos, size_t nsinos, size_t *failed)
{
	pid_t self = getpid();
	struct desc *own = NULL;
	size_t nown = 0, cap = 0;
	int r = 0;

	for (size_t m = 0; m < inf->nmsgs && !r; m++) {
		size_t cnt = inf->msgs[m].n;
		struct dump_ctx *c = &t->procs[inf->msgs[m].proc];
		Capcr__InFlight *e = ARENA_NEW(&t->arena, Capcr__InFlight);
		capcr__in_flight__init(e);
		if (inf->msgs[m].stream) {
			e->has_offset = e->has_len = 1;
			e->offset = inf->msgs[m].where;
			e->len = inf->msgs[m].len;
		} else {
			e->has_msg = 1;
			e->msg = inf->msgs[m].where;
		}
		e->files = arena_alloc(&t->arena, cnt * sizeof(uint32_t));
		e->n_files = cnt;
		*failed = inf->msgs[m].proc;
		for (size_t k = 0; k < cnt && !r; k++) {
			/* inf->msgs moves as sockets in flight add theirs */
			int copy = inf->msgs[m].copies[k];
			struct desc x = { .proc = inf->msgs[m].proc, .copy = copy,
					  .st = inf->msgs[m].st[k], .next = -1 };
			Capcr__File *f = NULL;
			size_t ho = hash64(obj_key(&x), share->size);
			while (share->by_obj[ho] >= 0 &&
			       !same_object(&all[share->by_obj[ho]], &x))
				ho = (ho + 1) & (share->size - 1);
			for (long j = share->by_obj[ho]; j >= 0 && !f;
			     j = all[j].next)
				if (syscall(SYS_kcmp, self,
					    t->procs[all[j].proc].pid, KCMP_FILE,
					    copy, all[j].k->fd) == 0)
					f = all[j].file;
			for (size_t o = 0; o < nown && !f; o++)
				if (same_object(&own[o], &x) &&
				    syscall(SYS_kcmp, self, self, KCMP_FILE,
					    copy, own[o].copy) == 0)
					f = own[o].file;
			if (!f) {
				if (nown == cap) {
					cap = cap ? 2 * cap : 16;
					struct desc *no =
						realloc(own, cap * sizeof(*own));
					if (!no) {
						r = DUMP_FAIL(c, "out of memory");
						break;
					}
					own = no;
				}
				struct kfd *kf = ARENA_NEW(&t->arena, struct kfd);
				kfd_of_copy(copy, &x.st, kf);
				x.k = kf;
				inf->depth = inf->msgs[m].depth;
				r = dump_file(t, all, n, &x, self, sinos, nsinos,
					      inf);
				inf->depth = 0;
				if (r < 0)
					break;
				own[nown++] = x;
				f = x.file;
			}
			e->files[k] = f->id;
		}
		if (!r)
			arena_push(&t->arena,
				   (void ***)&inf->msgs[m].carrier->socket_inflight,
				   &inf->msgs[m].carrier->n_socket_inflight, e);
	}
	free(own);
	if (r < 0)
		return -1;
	/* A socket carried in its own queue, directly or not, could not be
	 * made again: the restore's order, tried now. */
	if (inf->nmsgs) {
		size_t *order = malloc((t->files->n_files + 1) * sizeof(size_t));
		if (!order)
			return DUMP_FAIL(&t->procs[0], "out of memory");
		*failed = 0;
		r = inflight_order(t->files, order, t->procs[0].why,
				   sizeof(t->procs[0].why));
		free(order);
	}
	if (inf->dropped)
		capcr_warn("%lu descriptor%s in flight dropped "
			   "(--skip-in-flight): the messages carrying them "
			   "come back without them",
			   inf->dropped, inf->dropped == 1 ? "" : "s");
	return r;
}

int dump_fds(struct dump_tree *t, size_t *failed)
{
	struct kfd **kfds = calloc(t->nprocs + 1, sizeof(*kfds));
	int *nk = calloc(t->nprocs + 1, sizeof(int));
	struct desc *all = NULL;
	struct share_index share = { 0 };
	struct locks_dump locks = { 0 };
	long *lock_mark = NULL; /* per File: the last process whose locks on it were read */
	size_t n = 0, nsinos = 0;
	ino_t *sinos = NULL;
	struct inflight_dump inflight = { .skip = t->skip_in_flight };
	int r = -1;

	if (!kfds || !nk) {
		*failed = 0;
		DUMP_FAIL(&t->procs[0], "out of memory");
		goto out;
	}
	for (size_t p = 0; p < t->nprocs; p++) {
		struct dump_ctx *c = &t->procs[p];
		c->fdt = ARENA_NEW(&t->arena, Capcr__FdTable);
		capcr__fd_table__init(c->fdt);
	}
	if (collect(t, kfds, nk, &all, &n, failed) < 0)
		goto out;
	/* The regions first: a kind may want the runtime's provenance. */
	for (size_t p = 0; p < t->nprocs; p++)
		if (!t->procs[p].zombie)
			dump_capspace(&t->procs[p], t->procs[p].fdt);
	/* Which sockets the image holds: a connected one's peer must be. */
	sinos = calloc(n + 1, sizeof(*sinos));
	if (!sinos) {
		DUMP_FAIL(&t->procs[0], "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (S_ISSOCK(all[i].st.st_mode))
			sinos[nsinos++] = all[i].st.st_ino;
	*failed = 0;
	if (scan_in_flight(t, all, n, &inflight, &sinos, &nsinos, failed) < 0)
		goto out;
	if (share_init(&share, n) < 0 ||
	    !(lock_mark = malloc((n + 1) * sizeof(*lock_mark)))) {
		DUMP_FAIL(&t->procs[0], "out of memory");
		goto out;
	}
	for (size_t i = 0; i <= n; i++)
		lock_mark[i] = -1;
	locks.enabled = t->file_locks;
	for (size_t i = 0; i < n; i++) {
		struct desc *x = &all[i];
		const Capcr__CapSpace *cs = t->procs[x->proc].fdt->capspace;
		x->next = -1;
		for (size_t k = 0; cs && k < cs->n_caps; k++)
			if (cs->caps[k]->fd == x->k->fd) {
				x->badge = cs->caps[k]->badge;
				x->cap = cs->caps[k];
			}
	}
	for (size_t i = 0; i < n; i++) {
		struct desc *x = &all[i];
		struct dump_ctx *c = &t->procs[x->proc];
		*failed = x->proc;
		/* One open file description, many descriptors (dup, fork,
		 * SCM_RIGHTS).  First the badge's candidate... */
		size_t hb = hash64(x->badge, share.size);
		while (x->badge && share.by_badge[hb] >= 0 &&
		       all[share.by_badge[hb]].badge != x->badge)
			hb = (hb + 1) & (share.size - 1);
		long cand = x->badge ? share.by_badge[hb] : -1;
		if (cand >= 0) {
			if (same_object(&all[cand], x) &&
			    same_description(t->procs[all[cand].proc].pid,
					     all[cand].k->fd, c->pid, x->k->fd))
				x->file = all[cand].file;
			else
				share.refuted++;
		}
		/* ... then every description of the same object. */
		size_t ho = hash64(obj_key(x), share.size);
		while (share.by_obj[ho] >= 0 &&
		       !same_object(&all[share.by_obj[ho]], x))
			ho = (ho + 1) & (share.size - 1);
		for (long j = share.by_obj[ho]; j >= 0 && !x->file;
		     j = all[j].next)
			if (same_description(t->procs[all[j].proc].pid,
					     all[j].k->fd, c->pid, x->k->fd))
				x->file = all[j].file;
		int new_file = !x->file;
		if (new_file) {
			if (dump_file(t, all, n, x, c->pid, sinos, nsinos,
				      &inflight) < 0)
				goto out;
			x->next = share.by_obj[ho]; /* a new description */
			share.by_obj[ho] = (long)i;
		}
		/* Its locks: the process's POSIX ones on the first of its
		 * descriptors of this description (collect lists each
		 * process's together), the description's own once. */
		int first_here = lock_mark[x->file->id] != (long)x->proc;
		lock_mark[x->file->id] = (long)x->proc;
		if (locks_dump_fd(&locks, &t->arena, c->fdt, c->pid, x->k->fd,
				  x->k->locked, x->k->target,
				  first_here, new_file, c->why,
				  sizeof(c->why)) < 0)
			goto out;
		if (x->badge && cand < 0)
			share.by_badge[hb] = (long)i;
		Capcr__Fd *fd = ARENA_NEW(&t->arena, Capcr__Fd);
		capcr__fd__init(fd);
		fd->fd = x->k->fd;
		fd->cloexec = (x->k->flags & O_CLOEXEC) != 0;
		fd->file = x->file->id;
		arena_push(&t->arena, (void ***)&c->fdt->fds, &c->fdt->n_fds,
			   fd);
	}
	if (dump_in_flight(t, all, n, &share, &inflight, sinos, nsinos,
			   failed) < 0)
		goto out;
	*failed = 0;
	if (share.refuted)
		capcr_warn("%u descriptor%s shared a badge with another that the "
			   "kernel says is a different open file; the "
			   "kernel's word was taken",
			   share.refuted, share.refuted == 1 ? "" : "s");
	if (fault_at("fds")) {
		DUMP_FAIL(&t->procs[0], "injected failure at fds");
		goto out;
	}
	/* Badges name the objects: keep each file's, from the region. */
	for (size_t p = 0; p < t->nprocs; p++) {
		const Capcr__CapSpace *cs = t->procs[p].fdt->capspace;
		for (size_t c = 0; cs && c < cs->n_caps; c++)
			for (size_t d = 0; d < t->procs[p].fdt->n_fds; d++)
				if (t->procs[p].fdt->fds[d]->fd ==
				    cs->caps[c]->fd) {
					Capcr__File *f = t->files->files
						[t->procs[p].fdt->fds[d]->file];
					f->has_badge = 1;
					f->badge = cs->caps[c]->badge;
				}
	}
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		if (all[i].copy >= 0)
			close(all[i].copy);
	free(all);
	free(sinos);
	inflight_dump_free(&inflight);
	free(lock_mark);
	share_free(&share);
	for (size_t p = 0; kfds && p < t->nprocs; p++)
		free(kfds[p]);
	free(kfds);
	free(nk);
	return r;
}
