/* SPDX-License-Identifier: MIT */
/*
 * The one validator between reading an image and acting on it.  Whatever
 * restore or show uses as an index, a length, a count, a name to open or a
 * number to hand the kernel is bounded here, so the code that acts may
 * trust the messages.  Bounds are the kernel's own where it has one (so a
 * real image is never refused), capcr's own fixed buffers otherwise.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/user.h>

#include "capcr/capinfo.h"
#include "load.h"
#include "validate_cgroups.h"

/* x86_64 with 4-level page tables: the end of user space (TASK_SIZE). */
#define USER_END 0x800000000000ull
#define VSYSCALL_START 0xffffffffff600000ull
#define PAGE 4096ull
/* PID_MAX_LIMIT on 64-bit: no PID or TID reaches it. */
#define PID_LIMIT 4194304
/* fs.nr_open's maximum: no descriptor number reaches it. */
#define FD_LIMIT (1 << 20)
/* More than vm.max_map_count allows by default (65530) many times over. */
#define VMAS_MAX (1 << 20)
#define FILES_MAX (1 << 22)
/* Threads of one process, pending signals of one queue, timers, watches,
 * epoll targets: each far above what a process can have at its limits. */
#define LIST_MAX (1 << 20)
#define SIGINFO_SIZE 128
/* The dump's buffer for NT_X86_XSTATE. */
#define XSTATE_MAX (64 * 1024)
/* More than the kernel's saved_auxv (416 bytes on 6.x); restore writes
 * auxv into its scratch page at 1024, which holds 7168 bytes. */
#define AUXV_MAX 1024
/* TASK_COMM_LEN is 16 with the NUL. */
#define COMM_MAX 15
/* MFD_NAME_MAX_LEN */
#define MEMFD_NAME_MAX 249
#define SEMMSL 32000
#define SEMVMX 32767
/* A SysV message: above any msgmax a system would set. */
#define MSG_MAX (1 << 20)
/* A TCP queue: at most this many bytes (tcp.c refuses more at the dump). */
#define TCP_QUEUE_LIMIT (1u << 30)

struct id_ref {
	int32_t id;
	uint32_t proc;
	uint32_t thread; /* 0: the process itself */
};

/* Sorted copies, so that no check is quadratic in what the attacker
 * chose to repeat. */
struct vctx {
	const struct image_set *s;
	char *why;
	size_t wl;
	Capcr__ImageFile **names; /* the inventory's files, by name */
	struct id_ref *pids;  /* the processes by PID */
	int32_t **fds;        /* per process: its descriptor numbers, sorted */
	int mem_only;         /* a pre-dump or a parent: inventory and mm */
};

static int bad(struct vctx *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(struct vctx *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, v->wl, fmt, ap);
	va_end(ap);
	return -1;
}

/* NULL or shorter than max bytes; required strings pass need = 1. */
static int str_ok(const char *s, size_t max, int need)
{
	if (!s)
		return !need;
	return strnlen(s, max + 1) <= max;
}

static int sig_ok(uint64_t sig)
{
	return sig >= 1 && sig <= 64;
}

static int by_name(const void *a, const void *b)
{
	const Capcr__ImageFile *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* The inventory's entry for name, or NULL. */
static const Capcr__ImageFile *listed(const struct vctx *v, const char *name)
{
	Capcr__ImageFile key = { .name = (char *)name };
	const Capcr__ImageFile *kp = &key;
	Capcr__ImageFile *const *hit = bsearch(&kp, v->names,
					       v->s->inv->n_files,
					       sizeof(*v->names), by_name);

	return hit ? *hit : NULL;
}

/* A data file a message names: opened in the image directory, so it must
 * be a plain name, and one the inventory checksummed. */
static int data_file_ok(struct vctx *v, const char *file, const char *field,
			const char *name, uint64_t *size)
{
	if (!name)
		return 0;
	if (!image_name_ok(name))
		return bad(v, "%s: %s names a bad file", file, field);
	const Capcr__ImageFile *f = listed(v, name);
	if (!f)
		return bad(v, "%s: %s names %s, which is not in inventory.img",
			   file, field, name);
	if (size)
		*size = f->size;
	return 0;
}

/* ---- inventory, identities, the tree ---- */

static int by_int(const void *a, const void *b)
{
	const int32_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

static int by_id(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int check_inventory(struct vctx *v)
{
	const Capcr__Inventory *inv = v->s->inv;

	if (!inv)
		return bad(v, "inventory.img is missing");
	if (!v->s->files && !v->mem_only)
		return bad(v, "files.img is missing");
	if (!str_ok(inv->parent, PATH_MAX - 1, 0) ||
	    (inv->parent && !inv->parent[0]))
		return bad(v, "inventory.img: parent is empty or longer than "
			      "PATH_MAX");
	if (inv->parent && !inv->has_parent_inventory_xxh3)
		return bad(v, "inventory.img: a parent without the checksum "
			      "of its inventory");
	/* sun_path of an abstract name, without its leading NUL */
	if (!str_ok(inv->track_socket, 100, 0))
		return bad(v, "inventory.img: track_socket is longer than "
			      "100 bytes");
	if (!inv->n_pids || !v->s->nprocs)
		return bad(v, "inventory.img: pids: the image holds no process");
	if (inv->n_pids > IMAGE_PROCS_MAX)
		return bad(v, "inventory.img: pids: %zu processes, at most %d",
			   inv->n_pids, IMAGE_PROCS_MAX);
	if (v->s->nprocs != inv->n_pids || !v->s->procs)
		return bad(v, "inventory.img: pids: %zu processes, %zu read",
			   inv->n_pids, v->s->nprocs);
	if (inv->root_pid != inv->pids[0])
		return bad(v, "inventory.img: root_pid %d is not the first of "
			      "pids (%d)", inv->root_pid, inv->pids[0]);
	for (size_t i = 0; i < inv->n_pids; i++)
		if (inv->pids[i] <= 0 || inv->pids[i] >= PID_LIMIT)
			return bad(v, "inventory.img: pids[%zu] %d is not a "
				      "PID", i, inv->pids[i]);
	for (size_t i = 0; i < inv->n_files; i++) {
		const char *n = inv->files[i]->name;
		if (!image_name_ok(n))
			return bad(v, "inventory.img: files[%zu] has a bad name",
				   i);
	}
	v->names = malloc((inv->n_files + 1) * sizeof(*v->names));
	if (!v->names)
		return bad(v, "out of memory");
	/* An inventory of no files has no array at all (fuzz_image). */
	if (inv->n_files)
		memcpy(v->names, inv->files, inv->n_files * sizeof(*v->names));
	qsort(v->names, inv->n_files, sizeof(*v->names), by_name);
	for (size_t i = 1; i < inv->n_files; i++)
		if (!strcmp(v->names[i]->name, v->names[i - 1]->name))
			return bad(v, "inventory.img: files: %s twice",
				   v->names[i]->name);
	return 0;
}

/* Every PID and TID once in the whole image. */
static int check_ids(struct vctx *v)
{
	const struct image_set *s = v->s;
	size_t n = 0;

	for (size_t i = 0; i < s->nprocs; i++)
		n += 1 + (s->procs[i].task->n_threads
				  ? s->procs[i].task->n_threads - 1
				  : 0);
	struct id_ref *ids = calloc(n, sizeof(*ids));
	if (!ids)
		return bad(v, "out of memory");
	n = 0;
	for (size_t i = 0; i < s->nprocs; i++) {
		const Capcr__Task *t = s->procs[i].task;
		ids[n++] = (struct id_ref){ t->pid, (uint32_t)i, 0 };
		for (size_t j = 1; j < t->n_threads; j++)
			ids[n++] = (struct id_ref){ t->threads[j]->tid,
						    (uint32_t)i, (uint32_t)j };
	}
	qsort(ids, n, sizeof(*ids), by_id);
	int r = 0;
	for (size_t k = 1; k < n && !r; k++)
		if (ids[k].id == ids[k - 1].id) {
			const struct id_ref *a = &ids[k - 1], *b = &ids[k];
			r = bad(v, "core-%d.img (pids[%u]): %s %d is also %s "
				   "of core-%d.img (pids[%u])",
				s->inv->pids[b->proc], b->proc,
				b->thread ? "a thread's tid" : "pid", b->id,
				a->thread ? "a thread's tid" : "the pid",
				s->inv->pids[a->proc], a->proc);
		}
	free(ids);
	return r;
}

/* Index of the process with PID pid, or -1; by binary search in map. */
static long find_proc(const struct id_ref *map, size_t n, int32_t pid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (map[mid].id == pid)
			return map[mid].proc;
		if (map[mid].id < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The processes form one tree rooted at procs[0], whose parent is outside
 * the image; a zombie has no children (restore would wait for ever for a
 * child nobody makes). */
static int check_tree(struct vctx *v)
{
	const struct image_set *s = v->s;
	size_t n = s->nprocs;
	const struct id_ref *map = v->pids;
	unsigned char *state = calloc(n, 1); /* 1 on the walk, 2 reaches root */
	long *parent = calloc(n, sizeof(*parent));
	int r = 0;

	if (!state || !parent) {
		r = bad(v, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && !r; i++) {
		const Capcr__Task *t = s->procs[i].task;
		parent[i] = find_proc(map, n, t->ppid);
		if (i == 0 && parent[i] >= 0)
			r = bad(v, "core-%d.img: ppid %d: the root's parent is "
				   "in the image", t->pid, t->ppid);
		else if (i && parent[i] < 0)
			r = bad(v, "core-%d.img: ppid %d is not a process of "
				   "the image", t->pid, t->ppid);
		else if (i && s->procs[parent[i]].task->zombie)
			r = bad(v, "core-%d.img: ppid %d is a zombie, which "
				   "has no children", t->pid, t->ppid);
	}
	state[0] = 2;
	for (size_t i = 1; i < n && !r; i++) {
		size_t k = i;
		while (state[k] == 0) {
			state[k] = 1;
			k = (size_t)parent[k];
		}
		if (state[k] == 1) {
			r = bad(v, "core-%d.img: ppid %d: the parents form a "
				   "cycle", s->procs[k].task->pid,
				s->procs[k].task->ppid);
			break;
		}
		for (k = i; state[k] == 1; k = (size_t)parent[k])
			state[k] = 2;
	}
out:
	free(state);
	free(parent);
	return r;
}

/* ---- core-PID.img ---- */

static int siginfo_ok(const ProtobufCBinaryData *b)
{
	int32_t signo;

	if (b->len != SIGINFO_SIZE || !b->data)
		return 0;
	memcpy(&signo, b->data, sizeof(signo));
	return signo >= 1 && signo <= 64;
}

static int check_thread(struct vctx *v, const char *file,
			const Capcr__Thread *th, size_t j)
{
	if (th->tid <= 0 || th->tid >= PID_LIMIT)
		return bad(v, "%s: threads[%zu].tid %d is not a TID", file, j,
			   th->tid);
	if (th->has_restart && (th->restart < 512 || th->restart > 514))
		return bad(v, "%s: threads[%zu].restart %u is no restart code",
			   file, j, th->restart);
	if (th->regs.len != sizeof(struct user_regs_struct) || !th->regs.data)
		return bad(v, "%s: threads[%zu].regs is %zu bytes, not %zu",
			   file, j, th->regs.len,
			   sizeof(struct user_regs_struct));
	if (th->has_xstate && (th->xstate.len > XSTATE_MAX || !th->xstate.data))
		return bad(v, "%s: threads[%zu].xstate is %zu bytes, at most "
			      "%d", file, j, th->xstate.len, XSTATE_MAX);
	if (th->n_pending > LIST_MAX)
		return bad(v, "%s: threads[%zu].pending: %zu signals", file, j,
			   th->n_pending);
	for (size_t k = 0; k < th->n_pending; k++)
		if (!siginfo_ok(&th->pending[k]))
			return bad(v, "%s: threads[%zu].pending[%zu] is not a "
				      "siginfo of a signal 1..64", file, j, k);
	if (!str_ok(th->comm, COMM_MAX, 0))
		return bad(v, "%s: threads[%zu].comm is longer than %d bytes",
			   file, j, COMM_MAX);
	return 0;
}

static int check_task(struct vctx *v, size_t i)
{
	const Capcr__Task *t = v->s->procs[i].task;
	int32_t pid = v->s->inv->pids[i];
	char file[64];

	snprintf(file, sizeof(file), "core-%d.img", pid);
	if (t->pid != pid)
		return bad(v, "%s: pid %d, the inventory says %d", file, t->pid,
			   pid);
	if (t->ppid < 0 || t->ppid >= PID_LIMIT || t->pgid < 0 ||
	    t->pgid >= PID_LIMIT || t->sid < 0 || t->sid >= PID_LIMIT)
		return bad(v, "%s: ppid %d, pgid %d, sid %d: not PIDs", file,
			   t->ppid, t->pgid, t->sid);
	if (!str_ok(t->comm, COMM_MAX, 1))
		return bad(v, "%s: comm is longer than %d bytes", file,
			   COMM_MAX);
	if (!str_ok(t->cwd, PATH_MAX - 1, 1) ||
	    !str_ok(t->root, PATH_MAX - 1, 0) ||
	    !str_ok(t->exe, PATH_MAX - 1, 0))
		return bad(v, "%s: cwd, root or exe is longer than PATH_MAX",
			   file);
	if (t->zombie) {
		if (i == 0)
			return bad(v, "%s: zombie: the root process is a zombie",
				   file);
		if (t->n_threads)
			return bad(v, "%s: a zombie with %zu threads", file,
				   t->n_threads);
		if ((uint32_t)t->exit_code > 0xffff ||
		    (t->exit_code & 0x7f) > 64)
			return bad(v, "%s: exit_code %#x is not a wait status",
				   file, (unsigned)t->exit_code);
	} else {
		if (!t->n_threads)
			return bad(v, "%s: threads: a live process without a "
				      "thread", file);
		if (t->n_threads > LIST_MAX)
			return bad(v, "%s: threads: %zu threads", file,
				   t->n_threads);
		if (t->threads[0]->tid != t->pid)
			return bad(v, "%s: threads[0].tid %d is not the pid",
				   file, t->threads[0]->tid);
		for (size_t j = 0; j < t->n_threads; j++)
			if (check_thread(v, file, t->threads[j], j) < 0)
				return -1;
	}
	if (t->has_exit_signal && t->exit_signal > 64)
		return bad(v, "%s: exit_signal %u is not a signal", file,
			   t->exit_signal);
	if (t->has_pdeathsig && (t->pdeathsig < 0 || t->pdeathsig > 64))
		return bad(v, "%s: pdeathsig %d is not a signal", file,
			   t->pdeathsig);
	if (t->has_stop_signal && t->stop_signal != SIGSTOP &&
	    t->stop_signal != SIGTSTP && t->stop_signal != SIGTTIN &&
	    t->stop_signal != SIGTTOU)
		return bad(v, "%s: stop_signal %u is not a signal that stops",
			   file, t->stop_signal);
	if (t->umask > 0777)
		return bad(v, "%s: umask %#o", file, t->umask);
	if (t->n_sigactions > 64)
		return bad(v, "%s: sigactions: %zu handlers", file,
			   t->n_sigactions);
	uint64_t seen = 0;
	for (size_t k = 0; k < t->n_sigactions; k++) {
		uint32_t sig = t->sigactions[k]->sig;
		if (!sig_ok(sig) || sig == SIGKILL || sig == SIGSTOP ||
		    seen & (1ull << (sig - 1)))
			return bad(v, "%s: sigactions[%zu].sig %u", file, k, sig);
		seen |= 1ull << (sig - 1);
	}
	if (t->n_shared_pending > LIST_MAX)
		return bad(v, "%s: shared_pending: %zu signals", file,
			   t->n_shared_pending);
	for (size_t k = 0; k < t->n_shared_pending; k++)
		if (!siginfo_ok(&t->shared_pending[k]))
			return bad(v, "%s: shared_pending[%zu] is not a siginfo "
				      "of a signal 1..64", file, k);
	if (t->n_rlimits > RLIM_NLIMITS)
		return bad(v, "%s: rlimits: %zu limits", file, t->n_rlimits);
	seen = 0;
	for (size_t k = 0; k < t->n_rlimits; k++) {
		const Capcr__Rlimit *l = t->rlimits[k];
		if (l->resource >= RLIM_NLIMITS || seen & (1ull << l->resource) ||
		    l->cur > l->max)
			return bad(v, "%s: rlimits[%zu] (resource %u)", file, k,
				   l->resource);
		seen |= 1ull << l->resource;
	}
	if (t->n_itimers > 3)
		return bad(v, "%s: itimers: %zu timers", file, t->n_itimers);
	seen = 0;
	for (size_t k = 0; k < t->n_itimers; k++) {
		uint32_t w = t->itimers[k]->which;
		if (w > 2 || seen & (1u << w))
			return bad(v, "%s: itimers[%zu].which %u", file, k, w);
		seen |= 1u << w;
	}
	if (t->n_posix_timers > LIST_MAX)
		return bad(v, "%s: posix_timers: %zu timers", file,
			   t->n_posix_timers);
	for (size_t k = 0; k < t->n_posix_timers; k++) {
		const Capcr__PosixTimer *p = t->posix_timers[k];
		if (p->id < 0 || p->signo < 0 || p->signo > 64 ||
		    (p->notify != 0 && p->notify != 1 && p->notify != 2 &&
		     p->notify != 4))
			return bad(v, "%s: posix_timers[%zu]: id %d, signo %d, "
				      "notify %d", file, k, p->id, p->signo,
				   p->notify);
	}
	if (t->n_posix_timers > 1) {
		int32_t *ids = malloc(t->n_posix_timers * sizeof(*ids));
		if (!ids)
			return bad(v, "out of memory");
		for (size_t k = 0; k < t->n_posix_timers; k++)
			ids[k] = t->posix_timers[k]->id;
		qsort(ids, t->n_posix_timers, sizeof(*ids), by_int);
		int32_t dup = -1;
		for (size_t k = 1; k < t->n_posix_timers && dup < 0; k++)
			if (ids[k] == ids[k - 1])
				dup = ids[k];
		free(ids);
		if (dup >= 0)
			return bad(v, "%s: posix_timers: id %d twice", file,
				   dup);
	}
	if (!t->mm)
		return bad(v, "%s: mm is missing", file);
	const uint64_t lay[] = { t->mm->start_code,  t->mm->end_code,
				 t->mm->start_data,  t->mm->end_data,
				 t->mm->start_brk,   t->mm->brk,
				 t->mm->start_stack, t->mm->arg_start,
				 t->mm->arg_end,     t->mm->env_start,
				 t->mm->env_end };
	for (size_t k = 0; k < sizeof(lay) / sizeof(lay[0]); k++)
		if (lay[k] >= USER_END)
			return bad(v, "%s: mm: field %zu (%#llx) is outside user "
				      "space", file, k + 1,
				   (unsigned long long)lay[k]);
	if (t->has_auxv &&
	    (t->auxv.len > AUXV_MAX || t->auxv.len % 8 ||
	     (t->auxv.len && !t->auxv.data)))
		return bad(v, "%s: auxv is %zu bytes (at most %d, whole words)",
			   file, t->auxv.len, AUXV_MAX);
	return validate_cgroups(t, file, v->why, v->wl);
}

/* ---- mm-PID.img ---- */

/* Page runs: inside their range [start, end), in order, not overlapping,
 * in the data file, or (parent_ok: an area of an incremental image) said
 * to be in the parent image, which validate_parent.c checks against it.
 * Overflow-free: every product is bounded first. */
static int check_runs(struct vctx *v, const char *file, const char *what,
		      size_t idx, Capcr__PageRun *const *runs, size_t n,
		      uint64_t start, uint64_t end, uint64_t data_size,
		      int parent_ok)
{
	uint64_t prev = start;

	if (n > (end - start) / PAGE)
		return bad(v, "%s: %s[%zu]: %zu page runs in %llu pages", file,
			   what, idx, n,
			   (unsigned long long)((end - start) / PAGE));
	for (size_t p = 0; p < n; p++) {
		const Capcr__PageRun *r = runs[p];
		if (r->vaddr % PAGE || r->offset % PAGE || !r->npages ||
		    r->vaddr < prev || r->vaddr >= end ||
		    r->npages > (end - r->vaddr) / PAGE)
			return bad(v, "%s: %s[%zu].pages[%zu]: %llu pages at "
				      "%#llx are not inside %#llx-%#llx after "
				      "the run before", file, what, idx, p,
				   (unsigned long long)r->npages,
				   (unsigned long long)r->vaddr,
				   (unsigned long long)start,
				   (unsigned long long)end);
		uint64_t len = r->npages * PAGE;
		if (r->in_parent && !parent_ok)
			return bad(v, "%s: %s[%zu].pages[%zu] is in the parent "
				      "image, but %s", file, what, idx, p,
				   v->s->inv->parent ? "such runs are only of "
						       "private areas"
						     : "inventory.img names "
						       "none");
		if (r->in_parent && r->offset)
			return bad(v, "%s: %s[%zu].pages[%zu]: in the parent "
				      "image, at offset %llu", file, what, idx,
				   p, (unsigned long long)r->offset);
		if (r->in_parent) {
			prev = r->vaddr + len;
			continue;
		}
		if (r->offset > data_size || len > data_size - r->offset)
			return bad(v, "%s: %s[%zu].pages[%zu]: %llu bytes at "
				      "offset %llu are beyond the end of its "
				      "data file (%llu bytes)", file, what, idx,
				   p, (unsigned long long)len,
				   (unsigned long long)r->offset,
				   (unsigned long long)data_size);
		prev = r->vaddr + len;
	}
	return 0;
}

static int check_mm(struct vctx *v, size_t i)
{
	const Capcr__Mm *mm = v->s->procs[i].mm;
	const Capcr__Files *files = v->s->files;
	int32_t pid = v->s->inv->pids[i];
	char file[64], pages[64];
	uint64_t prev_end = 0, pages_size = 0;
	int have_pages;

	snprintf(file, sizeof(file), "mm-%d.img", pid);
	snprintf(pages, sizeof(pages), "pages-%d.img", pid);
	const Capcr__ImageFile *pf = listed(v, pages);
	have_pages = pf != NULL;
	if (pf)
		pages_size = pf->size;
	if (mm->n_vmas > VMAS_MAX)
		return bad(v, "%s: vmas: %zu areas, at most %d", file,
			   mm->n_vmas, VMAS_MAX);
	for (size_t k = 0; k < mm->n_vmas; k++) {
		const Capcr__Vma *a = mm->vmas[k];
		/* The vsyscall page is the one area above user space. */
		uint64_t top = a->kind == CAPCR__VMA_KIND__VMA_VSYSCALL
				       ? UINT64_MAX
				       : USER_END;
		if (a->start % PAGE || a->end % PAGE || a->start >= a->end ||
		    a->end > top)
			return bad(v, "%s: vmas[%zu]: %#llx-%#llx is not a page "
				      "aligned range of user space", file, k,
				   (unsigned long long)a->start,
				   (unsigned long long)a->end);
		if (k && a->start < prev_end)
			return bad(v, "%s: vmas[%zu]: %#llx-%#llx overlaps or "
				      "precedes the area before", file, k,
				   (unsigned long long)a->start,
				   (unsigned long long)a->end);
		prev_end = a->end;
		if ((unsigned)a->kind > CAPCR__VMA_KIND__VMA_VSYSCALL)
			return bad(v, "%s: vmas[%zu].kind %d", file, k, a->kind);
		if (a->prot & ~(unsigned)(PROT_READ | PROT_WRITE | PROT_EXEC))
			return bad(v, "%s: vmas[%zu].prot %#x", file, k, a->prot);
		if ((a->kind == CAPCR__VMA_KIND__VMA_FILE_PRIVATE ||
		     a->kind == CAPCR__VMA_KIND__VMA_FILE_SHARED) &&
		    !a->path)
			return bad(v, "%s: vmas[%zu]: a file mapping without a "
				      "path", file, k);
		if (!str_ok(a->path, PATH_MAX - 1, 0) ||
		    !str_ok(a->name, PATH_MAX - 1, 0))
			return bad(v, "%s: vmas[%zu]: path or name is longer "
				      "than PATH_MAX", file, k);
		if (a->has_pgoff && (a->pgoff % PAGE || a->pgoff > INT64_MAX))
			return bad(v, "%s: vmas[%zu].pgoff %#llx", file, k,
				   (unsigned long long)a->pgoff);
		/* A memory-only image has no files.img: its shared
		 * memory is not read from it. */
		if (a->has_shmem && files &&
		    (a->shmem < 0 || (size_t)a->shmem >= files->n_shmem))
			return bad(v, "%s: vmas[%zu].shmem %d: files.img has %zu "
				      "shared memory objects", file, k,
				   a->shmem, files->n_shmem);
		if (a->has_sysv_shmid && a->sysv_shmid < 0)
			return bad(v, "%s: vmas[%zu].sysv_shmid %d", file, k,
				   a->sysv_shmid);
		if (a->n_pages && !have_pages)
			return bad(v, "%s: vmas[%zu] has pages, but %s is not "
				      "in inventory.img", file, k, pages);
		if (a->n_pages && (a->kind == CAPCR__VMA_KIND__VMA_VSYSCALL ||
				   a->end > USER_END))
			return bad(v, "%s: vmas[%zu]: pages outside user space",
				   file, k);
		if (check_runs(v, file, "vmas", k, a->pages, a->n_pages,
			       a->start, a->end, pages_size,
			       v->s->inv->parent &&
				       (a->kind == CAPCR__VMA_KIND__VMA_ANON_PRIVATE ||
					a->kind == CAPCR__VMA_KIND__VMA_FILE_PRIVATE)) < 0)
			return -1;
	}
	return 0;
}

/* ---- fds-PID.img ---- */

static int check_fdt(struct vctx *v, size_t i)
{
	const Capcr__FdTable *t = v->s->procs[i].fdt;
	int32_t pid = v->s->inv->pids[i];
	char file[64];

	snprintf(file, sizeof(file), "fds-%d.img", pid);
	if (t->n_fds > FD_LIMIT)
		return bad(v, "%s: fds: %zu descriptors, at most %d", file,
			   t->n_fds, FD_LIMIT);
	for (size_t k = 0; k < t->n_fds; k++) {
		const Capcr__Fd *d = t->fds[k];
		if (d->fd < 0 || d->fd >= FD_LIMIT)
			return bad(v, "%s: fds[%zu].fd %d is not a descriptor "
				      "number (0..%d)", file, k, d->fd,
				   FD_LIMIT - 1);
		if (d->file >= v->s->files->n_files)
			return bad(v, "%s: fds[%zu].file %u: files.img has %zu "
				      "files", file, k, d->file,
				   v->s->files->n_files);
	}
	int32_t *nums = malloc((t->n_fds + 1) * sizeof(*nums));
	if (!nums)
		return bad(v, "out of memory");
	v->fds[i] = nums;
	for (size_t k = 0; k < t->n_fds; k++)
		nums[k] = t->fds[k]->fd;
	qsort(nums, t->n_fds, sizeof(*nums), by_int);
	for (size_t k = 1; k < t->n_fds; k++)
		if (nums[k] == nums[k - 1])
			return bad(v, "%s: fds: descriptor %d twice", file,
				   nums[k]);
	const Capcr__CapSpace *cs = t->capspace;
	if (!cs)
		return 0;
	if (cs->n_caps > CAPCR_CAPINFO_CAPACITY)
		return bad(v, "%s: capspace.caps: %zu entries, at most %zu", file,
			   cs->n_caps, (size_t)CAPCR_CAPINFO_CAPACITY);
	if (cs->mode && strcmp(cs->mode, "shm") && strcmp(cs->mode, "ipc"))
		return bad(v, "%s: capspace.mode is neither shm nor ipc", file);
	for (size_t k = 0; k < cs->n_caps; k++) {
		const Capcr__CapEntry *c = cs->caps[k];
		if (c->fd < 0 || c->fd >= FD_LIMIT)
			return bad(v, "%s: capspace.caps[%zu].fd %d", file, k,
				   c->fd);
		if (c->entry.len != sizeof(struct capcr_cap_entry) ||
		    !c->entry.data)
			return bad(v, "%s: capspace.caps[%zu].entry is %zu "
				      "bytes, not %zu", file, k, c->entry.len,
				   sizeof(struct capcr_cap_entry));
	}
	return 0;
}

/* ---- file locks (fds-PID.img) ---- */

static int by_fd_ptr(const void *a, const void *b)
{
	const Capcr__Fd *const *x = a, *const *y = b;

	return ((*x)->fd > (*y)->fd) - ((*x)->fd < (*y)->fd);
}

/* Each lock of a known kind and type, on a descriptor of its process
 * open for what it locks (fcntl locks: a write lock needs it open for
 * writing, a read lock for reading), over a range the kernel can hold:
 * start >= 0, len >= 0 (0: to the end), the last byte <= INT64_MAX.
 * Runs after check_fdt (files validated or not, their indexes are). */
static int check_locks(struct vctx *v, size_t i)
{
	const Capcr__FdTable *t = v->s->procs[i].fdt;
	const Capcr__Files *files = v->s->files;
	int32_t pid = v->s->inv->pids[i];
	char file[64];

	if (!t->n_locks)
		return 0;
	snprintf(file, sizeof(file), "fds-%d.img", pid);
	if (t->n_locks > LIST_MAX)
		return bad(v, "%s: locks: %zu locks", file, t->n_locks);
	if (v->s->procs[i].task->zombie)
		return bad(v, "%s: locks: a zombie holds no lock", file);
	Capcr__Fd **by_fd = malloc((t->n_fds + 1) * sizeof(*by_fd));
	if (!by_fd)
		return bad(v, "out of memory");
	if (t->n_fds)
		memcpy(by_fd, t->fds, t->n_fds * sizeof(*by_fd));
	qsort(by_fd, t->n_fds, sizeof(*by_fd), by_fd_ptr);
	int r = 0;
	for (size_t k = 0; k < t->n_locks && !r; k++) {
		const Capcr__FileLock *l = t->locks[k];
		int fcntl_lock = l->kind == CAPCR__LOCK_KIND__LOCK_POSIX ||
				 l->kind == CAPCR__LOCK_KIND__LOCK_OFD;
		Capcr__Fd key = { .fd = l->fd }, *kp = &key;
		Capcr__Fd **hit = bsearch(&kp, by_fd, t->n_fds, sizeof(*by_fd),
					  by_fd_ptr);
		if ((unsigned)l->kind > CAPCR__LOCK_KIND__LOCK_LEASE)
			r = bad(v, "%s: locks[%zu].kind %d", file, k, l->kind);
		else if (l->type != F_RDLCK && l->type != F_WRLCK)
			r = bad(v, "%s: locks[%zu].type %u is neither F_RDLCK "
				   "nor F_WRLCK", file, k, l->type);
		else if (!hit)
			r = bad(v, "%s: locks[%zu].fd %d is not a descriptor of "
				   "process %d", file, k, l->fd, pid);
		else if (fcntl_lock && (!l->has_start || !l->has_len ||
					l->start < 0 || l->len < 0 ||
					(l->len && l->start - 1 >
							   INT64_MAX - l->len)))
			r = bad(v, "%s: locks[%zu]: start %lld, length %lld is "
				   "not a range of a file", file, k,
				(long long)l->start, (long long)l->len);
		else if (!fcntl_lock && ((l->has_start && l->start) ||
					 (l->has_len && l->len)))
			r = bad(v, "%s: locks[%zu]: a flock lock or lease has "
				   "no range", file, k);
		if (!r && l->kind == CAPCR__LOCK_KIND__LOCK_LEASE &&
		    l->type == F_RDLCK &&
		    (files->files[(*hit)->file]->flags & O_ACCMODE) != O_RDONLY)
			/* the kernel's rule: a read lease is taken through a
			 * description open for reading only */
			r = bad(v, "%s: locks[%zu]: a read lease on descriptor "
				   "%d, whose file is not open read-only",
				file, k, l->fd);
		if (r || !fcntl_lock)
			continue;
		/* index validated by check_fdt */
		uint32_t acc = files->files[(*hit)->file]->flags & O_ACCMODE;
		if (acc == O_ACCMODE ||
		    (l->type == F_WRLCK && acc == O_RDONLY) ||
		    (l->type == F_RDLCK && acc == O_WRONLY))
			r = bad(v, "%s: locks[%zu]: a %s lock on descriptor %d, "
				   "whose file is not open for %s", file, k,
				l->type == F_WRLCK ? "write" : "read", l->fd,
				l->type == F_WRLCK ? "writing" : "reading");
	}
	free(by_fd);
	return r;
}

/* ---- files.img ---- */

static int holds_fd(const struct vctx *v, long p, int32_t fd)
{
	return bsearch(&fd, v->fds[p], v->s->procs[p].fdt->n_fds,
		       sizeof(int32_t), by_int) != NULL;
}

/* An established TCP connection (src/files/tcp.c): addresses of its
 * family, queues within bounds and exactly in its queue file, options the
 * kernel takes. */
static int check_tcp(struct vctx *v, size_t k)
{
	const Capcr__File *f = v->s->files->files[k];
	const Capcr__Tcp *t = f->tcp;
	const char *fn = "files.img";
	int d = f->socket_domain;
	size_t al = d == AF_INET ? sizeof(struct sockaddr_in)
				 : sizeof(struct sockaddr_in6);
	sa_family_t fam;
	uint64_t qsize = 0;

	if (!f->has_socket_domain || (d != AF_INET && d != AF_INET6) ||
	    f->socket_type != SOCK_STREAM || f->socket_protocol != IPPROTO_TCP)
		return bad(v, "%s: files[%zu]: a TCP connection of domain %d, "
			      "type %d, protocol %d",
			   fn, k, d, f->socket_type, f->socket_protocol);
	if (!f->has_socket_addr || !f->has_socket_peer_addr ||
	    f->socket_addr.len != al || f->socket_peer_addr.len != al)
		return bad(v, "%s: files[%zu]: a TCP connection needs both "
			      "addresses, %zu bytes each",
			   fn, k, al);
	memcpy(&fam, f->socket_addr.data, sizeof(fam));
	if (fam == (sa_family_t)d)
		memcpy(&fam, f->socket_peer_addr.data, sizeof(fam));
	if (fam != (sa_family_t)d)
		return bad(v, "%s: files[%zu]: an address of family %u on a "
			      "socket of family %d",
			   fn, k, fam, d);
	if (t->state != 1 /* TCP_ESTABLISHED */)
		return bad(v, "%s: files[%zu].tcp.state %u is not "
			      "ESTABLISHED",
			   fn, k, t->state);
	if (t->inq_len > TCP_QUEUE_LIMIT || t->outq_len > TCP_QUEUE_LIMIT ||
	    t->unsq_len > t->outq_len)
		return bad(v, "%s: files[%zu].tcp: queues of %u and %u bytes "
			      "(%u never sent)",
			   fn, k, t->inq_len, t->outq_len, t->unsq_len);
	if (data_file_ok(v, fn, "a TCP connection's socket_queue_file",
			 f->socket_queue_file, &qsize) < 0)
		return -1;
	if (qsize != (uint64_t)t->inq_len + t->outq_len)
		return bad(v, "%s: files[%zu].tcp: queues of %llu bytes, and "
			      "%s holds %llu",
			   fn, k,
			   (unsigned long long)t->inq_len + t->outq_len,
			   f->socket_queue_file ? f->socket_queue_file
						: "no queue file",
			   (unsigned long long)qsize);
	if (!t->mss_clamp || t->mss_clamp > 65535 || t->opt_mask > 0xff)
		return bad(v, "%s: files[%zu].tcp: MSS %u, options 0x%x", fn,
			   k, t->mss_clamp, t->opt_mask);
	if ((t->opt_mask & 4 /* TCPI_OPT_WSCALE */) &&
	    (!t->has_snd_wscale || !t->has_rcv_wscale || t->snd_wscale > 14 ||
	     t->rcv_wscale > 14))
		return bad(v, "%s: files[%zu].tcp: window scales %u and %u "
			      "(at most 14, both present)",
			   fn, k, t->snd_wscale, t->rcv_wscale);
	if ((t->opt_mask & 1 /* TCPI_OPT_TIMESTAMPS */) && !t->has_timestamp)
		return bad(v, "%s: files[%zu].tcp: timestamps without a "
			      "timestamp",
			   fn, k);
	int nw = t->has_snd_wl1 + t->has_snd_wnd + t->has_max_window +
		 t->has_rcv_wnd + t->has_rcv_wup;
	if (nw != 0 && nw != 5)
		return bad(v, "%s: files[%zu].tcp: %d of the 5 window fields",
			   fn, k, nw);
	/* The kernel's bounds (MAX_TCP_KEEPIDLE, _KEEPINTVL, _KEEPCNT);
	 * 0: not set. */
	if ((t->has_keepidle && t->keepidle > 32767) ||
	    (t->has_keepintvl && t->keepintvl > 32767) ||
	    (t->has_keepcnt && t->keepcnt > 127) ||
	    (t->has_user_timeout && t->user_timeout > INT32_MAX))
		return bad(v, "%s: files[%zu].tcp: keepalive %u/%u/%u or user "
			      "timeout %u out of range",
			   fn, k, t->keepidle, t->keepintvl, t->keepcnt,
			   t->user_timeout);
	if (t->external && t->has_peer_ino)
		return bad(v, "%s: files[%zu].tcp: a peer both outside and "
			      "inside the image",
			   fn, k);
	return 0;
}

/* An interface or congestion control name: 1..max printable characters,
 * none of them blank, '/' or ':' (no NUL inside: a string's length is up
 * to its first NUL, so the name is all there is). */
static int ifname_ok(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return 1;
	n = strnlen(s, max + 1);
	if (!n || n > max || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return 0;
	return 1;
}

/* A socket's options (src/files/sockopts.c): the kernel's ranges, so
 * that restore hands it nothing it would not have given the program.
 * What needs privilege is not refused here: restore sets it with the
 * image owner's rights, and the kernel decides. */
static int check_sockopts(struct vctx *v, size_t k)
{
	const Capcr__File *f = v->s->files->files[k];
	const Capcr__SockOpts *o = f->sockopts;
	const char *fn = "files.img";
	/* The kernel keeps a timeout in jiffies (HZ >= 100) in a long:
	 * a longer one than this is infinite, which reads back as 0. */
	const int64_t timeo_max = INT64_MAX / 100;

	if (!f->has_socket_domain)
		return bad(v, "%s: files[%zu]: socket options on a file that is "
			      "not a socket",
			   fn, k);
	if ((o->has_sndbuf && o->sndbuf > INT_MAX) ||
	    (o->has_rcvbuf && o->rcvbuf > INT_MAX))
		return bad(v, "%s: files[%zu].sockopts: buffer sizes %u and %u "
			      "(at most %d)",
			   fn, k, o->sndbuf, o->rcvbuf, INT_MAX);
	if (o->has_rcvlowat && o->rcvlowat < 1)
		return bad(v, "%s: files[%zu].sockopts.rcvlowat %d (at least 1)",
			   fn, k, o->rcvlowat);
	if ((o->has_rcvtimeo_sec &&
	     (o->rcvtimeo_sec < 0 || o->rcvtimeo_sec > timeo_max)) ||
	    (o->has_rcvtimeo_usec && o->rcvtimeo_usec > 999999) ||
	    (o->has_sndtimeo_sec &&
	     (o->sndtimeo_sec < 0 || o->sndtimeo_sec > timeo_max)) ||
	    (o->has_sndtimeo_usec && o->sndtimeo_usec > 999999))
		return bad(v, "%s: files[%zu].sockopts: a timeout of %lld.%06u "
			      "or %lld.%06u s (0 to %lld s, microseconds "
			      "below 1000000)",
			   fn, k, (long long)o->rcvtimeo_sec, o->rcvtimeo_usec,
			   (long long)o->sndtimeo_sec, o->sndtimeo_usec,
			   (long long)timeo_max);
	/* MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT */
	if ((o->has_keepidle && (o->keepidle < 1 || o->keepidle > 32767)) ||
	    (o->has_keepintvl && (o->keepintvl < 1 || o->keepintvl > 32767)) ||
	    (o->has_keepcnt && (o->keepcnt < 1 || o->keepcnt > 127)))
		return bad(v, "%s: files[%zu].sockopts: keepalive %d/%d/%d out "
			      "of range",
			   fn, k, o->keepidle, o->keepintvl, o->keepcnt);
	if (o->has_timestamp && o->timestamp != 29 && o->timestamp != 35 &&
	    o->timestamp != 63 && o->timestamp != 64)
		return bad(v, "%s: files[%zu].sockopts.timestamp %u is not "
			      "SO_TIMESTAMP(NS)_OLD or _NEW",
			   fn, k, o->timestamp);
	if (!ifname_ok(o->bindtodevice, 15))
		return bad(v, "%s: files[%zu].sockopts.bindtodevice is not an "
			      "interface name (1 to 15 printable characters)",
			   fn, k);
	if (!ifname_ok(o->congestion, 15))
		return bad(v, "%s: files[%zu].sockopts.congestion is not a "
			      "congestion control name (1 to 15 printable "
			      "characters)",
			   fn, k);
	if ((o->has_tos && o->tos > 255) || (o->has_tclass && o->tclass > 255) ||
	    (o->has_ttl && (o->ttl < 1 || o->ttl > 255)) ||
	    (o->has_unicast_hops &&
	     (o->unicast_hops < -1 || o->unicast_hops > 255)) ||
	    (o->has_mtu_discover &&
	     (o->mtu_discover < 0 || o->mtu_discover > 5)))
		return bad(v, "%s: files[%zu].sockopts: TOS %u, traffic class "
			      "%u, TTL %u, hops %d or PMTU discovery %d out of "
			      "range",
			   fn, k, o->tos, o->tclass, o->ttl, o->unicast_hops,
			   o->mtu_discover);
	if ((o->has_user_timeout && o->user_timeout > INT_MAX) ||
	    (o->has_fastopen && o->fastopen < 0))
		return bad(v, "%s: files[%zu].sockopts: TCP user timeout %u or "
			      "fast open queue %d out of range",
			   fn, k, o->user_timeout, o->fastopen);
	/* BPF_MAXINSNS instructions of 8 bytes (struct sock_filter) */
	if (o->has_filter &&
	    (!o->filter.len || o->filter.len % 8 || o->filter.len > 4096 * 8 ||
	     !o->filter.data))
		return bad(v, "%s: files[%zu].sockopts.filter of %zu bytes is "
			      "not 1 to 4096 classic BPF instructions",
			   fn, k, o->filter.len);
	return 0;
}

/* SCM_MAX_FD: what one message may carry; and unix_sock.c's read of a
 * queue, which a stream range carrying descriptors never exceeds. */
#define INFLIGHT_FDS_MAX 253
#define INFLIGHT_RANGE_MAX (1u << 20)

/* Descriptors in flight on the messages queued on a Unix socket: each
 * message's Files exist (a File only a queue holds is named by no Fd),
 * 1 to 253 of them; datagram records named in increasing order; stream
 * ranges in order, disjoint, inside the queue file. */
static int check_inflight(struct vctx *v, size_t k)
{
	const Capcr__Files *files = v->s->files;
	const Capcr__File *f = files->files[k];
	const char *fn = "files.img";
	uint64_t qsize = 0, next = 0;
	int stream = f->socket_type == SOCK_STREAM;

	if (f->n_socket_inflight > LIST_MAX)
		return bad(v, "%s: files[%zu].socket_inflight: %zu messages", fn,
			   k, f->n_socket_inflight);
	if (f->kind != CAPCR__FILE_KIND__FILE_SOCKET ||
	    f->socket_domain != AF_UNIX || !f->socket_queue_file)
		return bad(v, "%s: files[%zu]: descriptors in flight on what is "
			      "not a Unix socket with a queue", fn, k);
	if (data_file_ok(v, fn, "a socket's socket_queue_file",
			 f->socket_queue_file, &qsize) < 0)
		return -1;
	for (size_t e = 0; e < f->n_socket_inflight; e++) {
		const Capcr__InFlight *m = f->socket_inflight[e];
		if (!m->n_files || m->n_files > INFLIGHT_FDS_MAX)
			return bad(v, "%s: files[%zu].socket_inflight[%zu] "
				      "carries %zu descriptors (1 to %d)",
				   fn, k, e, m->n_files, INFLIGHT_FDS_MAX);
		for (size_t i = 0; i < m->n_files; i++)
			if (m->files[i] >= files->n_files)
				return bad(v, "%s: files[%zu].socket_inflight"
					      "[%zu].files[%zu] is %u: there "
					      "are %zu files",
					   fn, k, e, i, m->files[i],
					   files->n_files);
		if (stream) {
			if (!m->has_offset || !m->has_len || !m->len ||
			    m->len > INFLIGHT_RANGE_MAX || m->offset < next ||
			    m->offset > qsize || m->len > qsize - m->offset)
				return bad(v, "%s: files[%zu].socket_inflight"
					      "[%zu]: the range %llu+%llu is "
					      "not after the one before and "
					      "inside the %llu bytes queued "
					      "(at most %u bytes)",
					   fn, k, e,
					   (unsigned long long)m->offset,
					   (unsigned long long)m->len,
					   (unsigned long long)qsize,
					   INFLIGHT_RANGE_MAX);
			next = m->offset + m->len;
		} else {
			if (!m->has_msg || m->msg < next || m->has_len ||
			    m->has_offset)
				return bad(v, "%s: files[%zu].socket_inflight"
					      "[%zu]: message %llu is not "
					      "after the one before",
					   fn, k, e,
					   (unsigned long long)m->msg);
			next = m->msg + 1;
		}
	}
	return 0;
}

/* pty.c: struct termios2; each queue at most this (pty.c refuses more at
 * the dump); NR_UNIX98_PTY_MAX. */
#define PTY_TERMIOS2_SIZE 44
#define PTY_QUEUE_MAX (1u << 20)
#define PTY_INDEX_MAX (1u << 20)

/* A pty (src/files/pty.c): a slave's File has its index only; a master's
 * the settings of its size, a window size the kernel keeps (16 bits),
 * queues within bounds and exactly in the queue file, a session and
 * foreground group that are PIDs.  Which master a slave names: check_ptys. */
static int check_pty(struct vctx *v, size_t k)
{
	const Capcr__File *f = v->s->files->files[k];
	const Capcr__Pty *p = f->pty;
	const char *fn = "files.img";
	uint64_t qsize = 0;

	if (p->index >= PTY_INDEX_MAX)
		return bad(v, "%s: files[%zu].pty.index %u, at most %u", fn, k,
			   p->index, PTY_INDEX_MAX - 1);
	if (f->kind == CAPCR__FILE_KIND__FILE_PTY_SLAVE) {
		if (p->has_termios || p->has_rows || p->has_cols ||
		    p->has_xpixel || p->has_ypixel || p->has_packet ||
		    p->has_locked || p->has_exclusive || p->has_in_len ||
		    p->has_out_len || p->queue_file || p->has_sid ||
		    p->has_fg_pgrp)
			return bad(v, "%s: files[%zu].pty: a slave with the "
				      "state of its master", fn, k);
		return 0;
	}
	if (!p->has_termios || p->termios.len != PTY_TERMIOS2_SIZE)
		return bad(v, "%s: files[%zu].pty holds %zu bytes of termios2, "
			      "not %d", fn, k,
			   p->has_termios ? p->termios.len : 0,
			   PTY_TERMIOS2_SIZE);
	if (p->rows > 0xffff || p->cols > 0xffff || p->xpixel > 0xffff ||
	    p->ypixel > 0xffff)
		return bad(v, "%s: files[%zu].pty: window size %ux%u (%ux%u "
			      "pixels)", fn, k, p->rows, p->cols, p->xpixel,
			   p->ypixel);
	if (p->in_len > PTY_QUEUE_MAX || p->out_len > PTY_QUEUE_MAX)
		return bad(v, "%s: files[%zu].pty: queues of %u and %u bytes, "
			      "at most %u each", fn, k, p->in_len, p->out_len,
			   PTY_QUEUE_MAX);
	if (data_file_ok(v, fn, "a pty's queue_file", p->queue_file, &qsize) <
	    0)
		return -1;
	if (qsize != (uint64_t)p->in_len + p->out_len ||
	    (!p->queue_file && (p->in_len || p->out_len)))
		return bad(v, "%s: files[%zu].pty: queues of %llu bytes, and "
			      "%s holds %llu", fn, k,
			   (unsigned long long)p->in_len + p->out_len,
			   p->queue_file ? p->queue_file : "no queue file",
			   (unsigned long long)qsize);
	if ((p->has_sid && (p->sid <= 0 || p->sid >= PID_LIMIT)) ||
	    (p->has_fg_pgrp &&
	     (!p->has_sid || p->fg_pgrp <= 0 || p->fg_pgrp >= PID_LIMIT)))
		return bad(v, "%s: files[%zu].pty: session %d, foreground "
			      "group %d", fn, k, p->sid, p->fg_pgrp);
	return 0;
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* One master per pty index; every slave names one. */
static int check_ptys(struct vctx *v)
{
	const Capcr__Files *files = v->s->files;
	size_t n = 0;
	uint32_t *idx = malloc((files->n_files + 1) * sizeof(*idx));
	int r = 0;

	if (!idx)
		return bad(v, "out of memory");
	for (size_t k = 0; k < files->n_files; k++)
		if (files->files[k]->kind == CAPCR__FILE_KIND__FILE_PTY_MASTER)
			idx[n++] = files->files[k]->pty->index;
	qsort(idx, n, sizeof(*idx), by_u32);
	for (size_t i = 1; i < n && !r; i++)
		if (idx[i] == idx[i - 1])
			r = bad(v, "files.img: two pty masters numbered %u",
				idx[i]);
	for (size_t k = 0; k < files->n_files && !r; k++) {
		const Capcr__File *f = files->files[k];
		if (f->kind == CAPCR__FILE_KIND__FILE_PTY_SLAVE &&
		    !bsearch(&f->pty->index, idx, n, sizeof(*idx), by_u32))
			r = bad(v, "files.img: files[%zu] is the slave of pty "
				   "%u, whose master is not in the image",
				k, f->pty->index);
	}
	free(idx);
	return r;
}

static int check_file(struct vctx *v, size_t k)
{
	const Capcr__Files *files = v->s->files;
	const Capcr__File *f = files->files[k];
	const char *fn = "files.img";

	if (f->id != k)
		return bad(v, "%s: files[%zu].id is %u", fn, k, f->id);
	if ((unsigned)f->kind > CAPCR__FILE_KIND__FILE_PTY_SLAVE)
		return bad(v, "%s: files[%zu].kind %d", fn, k, f->kind);
	if ((f->kind == CAPCR__FILE_KIND__FILE_PTY_MASTER ||
	     f->kind == CAPCR__FILE_KIND__FILE_PTY_SLAVE) != (f->pty != NULL))
		return bad(v, "%s: files[%zu]: %s", fn, k,
			   f->pty ? "pty state on a file that is not a pty"
				  : "a pty without its state");
	if (f->pty && check_pty(v, k) < 0)
		return -1;
	if ((f->kind == CAPCR__FILE_KIND__FILE_TCP) != (f->tcp != NULL))
		return bad(v, "%s: files[%zu]: %s", fn, k,
			   f->tcp ? "TCP state on a file that is not a TCP "
				    "connection"
				  : "a TCP connection without its state");
	if (f->tcp && check_tcp(v, k) < 0)
		return -1;
	if (f->sockopts && check_sockopts(v, k) < 0)
		return -1;
	if (!str_ok(f->path, PATH_MAX - 1, 0))
		return bad(v, "%s: files[%zu].path is longer than PATH_MAX", fn,
			   k);
	if (!str_ok(f->link_target, PATH_MAX - 1, 0))
		return bad(v, "%s: files[%zu].link_target is longer than "
			      "PATH_MAX", fn, k);
	if (f->tty && f->tty->termios.len != sizeof(struct termios))
		return bad(v, "%s: files[%zu].tty holds %zu bytes of termios, "
			      "not %zu", fn, k, f->tty->termios.len,
			   sizeof(struct termios));
	uint64_t data = 0;
	if (data_file_ok(v, fn, "a file's data_file", f->data_file, &data) < 0 ||
	    data_file_ok(v, fn, "a socket's socket_queue_file",
			 f->socket_queue_file, NULL) < 0)
		return -1;
	/* A deleted file's extents: inside its size and its data file. */
	if (f->n_data_runs && (!f->data_file || !f->size || f->size > USER_END))
		return bad(v, "%s: files[%zu] has data runs but no data_file "
			      "or no size", fn, k);
	if (f->n_data_runs &&
	    check_runs(v, fn, "files", k, f->data_runs, f->n_data_runs, 0,
		       (f->size + PAGE - 1) / PAGE * PAGE, data, 0) < 0)
		return -1;
	if ((f->has_owner_type && f->owner_type > 2) ||
	    (f->has_owner_pid && (f->owner_pid <= 0 || f->owner_pid >= PID_LIMIT)) ||
	    (f->has_owner_signal && (f->owner_signal < 0 || f->owner_signal > 64)))
		return bad(v, "%s: files[%zu]: owner %u/%d or signal %d is not "
			      "one", fn, k, f->owner_type, f->owner_pid,
			   f->owner_signal);
	if (f->has_pid && (f->pid < -1 || !f->pid || f->pid >= PID_LIMIT))
		return bad(v, "%s: files[%zu].pid %d is not a PID (or -1: "
			      "gone)", fn, k, f->pid);
	if (f->has_external_fd &&
	    (f->external_fd < 0 || f->external_fd >= FD_LIMIT))
		return bad(v, "%s: files[%zu].external_fd %d", fn, k,
			   f->external_fd);
	if (f->has_shmem &&
	    (f->shmem < 0 || (size_t)f->shmem >= files->n_shmem))
		return bad(v, "%s: files[%zu].shmem %d: there are %zu shared "
			      "memory objects", fn, k, f->shmem,
			   files->n_shmem);
	if ((f->has_socket_addr &&
	     (f->socket_addr.len > sizeof(struct sockaddr_storage) ||
	      (f->socket_addr.len && !f->socket_addr.data))) ||
	    (f->has_socket_peer_addr &&
	     (f->socket_peer_addr.len > sizeof(struct sockaddr_storage) ||
	      (f->socket_peer_addr.len && !f->socket_peer_addr.data))))
		return bad(v, "%s: files[%zu]: a socket address longer than "
			      "%zu bytes", fn, k,
			   sizeof(struct sockaddr_storage));
	/* 0..4: unix_sock.c's kinds; 100, 101: ext_conn.h's */
	if (f->has_socket_conn && f->socket_conn > 4 &&
	    f->socket_conn != 100 && f->socket_conn != 101)
		return bad(v, "%s: files[%zu].socket_conn %u", fn, k,
			   f->socket_conn);
	if (f->has_socket_accepted && f->socket_accepted > 2)
		return bad(v, "%s: files[%zu].socket_accepted %u", fn, k,
			   f->socket_accepted);
	if (f->n_socket_pending > LIST_MAX || f->n_socket_conns > LIST_MAX ||
	    f->n_socket_conns % 2)
		return bad(v, "%s: files[%zu]: %zu pending, %zu in conns (pairs)",
			   fn, k, f->n_socket_pending, f->n_socket_conns);
	if (f->n_socket_inflight && check_inflight(v, k) < 0)
		return -1;
	if (f->n_epoll > LIST_MAX)
		return bad(v, "%s: files[%zu].epoll: %zu targets", fn, k,
			   f->n_epoll);
	for (size_t e = 0; e < f->n_epoll; e++)
		if (f->epoll[e]->tfd < 0 || f->epoll[e]->tfd >= FD_LIMIT)
			return bad(v, "%s: files[%zu].epoll[%zu].tfd %d", fn, k,
				   e, f->epoll[e]->tfd);
	/* The process whose descriptor numbers the interest list uses must
	 * be in the image and hold every target. */
	if (f->kind == CAPCR__FILE_KIND__FILE_EPOLL && f->has_pid &&
	    f->n_epoll) {
		long p = find_proc(v->pids, v->s->nprocs, f->pid);
		if (p < 0)
			return bad(v, "%s: files[%zu].pid %d: the epoll's "
				      "process is not in the image", fn, k,
				   f->pid);
		for (size_t e = 0; e < f->n_epoll; e++)
			if (!holds_fd(v, p, f->epoll[e]->tfd))
				return bad(v, "%s: files[%zu].epoll[%zu].tfd "
					      "%d is not a descriptor of "
					      "process %d", fn, k, e,
					   f->epoll[e]->tfd, f->pid);
	}
	if (f->n_watches > LIST_MAX)
		return bad(v, "%s: files[%zu].watches: %zu watches", fn, k,
			   f->n_watches);
	for (size_t w = 0; w < f->n_watches; w++)
		if (f->watches[w]->wd <= 0 ||
		    !str_ok(f->watches[w]->path, PATH_MAX - 1, 1))
			return bad(v, "%s: files[%zu].watches[%zu]: wd %d or "
				      "its path", fn, k, w, f->watches[w]->wd);
	return 0;
}

static int check_shmem(struct vctx *v, size_t k)
{
	const Capcr__Shmem *sh = v->s->files->shmem[k];
	const char *fn = "files.img";
	uint64_t data = 0;

	/* No object is larger than the address space it is mapped in. */
	if (sh->size > USER_END)
		return bad(v, "%s: shmem[%zu].size %llu", fn, k,
			   (unsigned long long)sh->size);
	if (!str_ok(sh->name, MEMFD_NAME_MAX, 0))
		return bad(v, "%s: shmem[%zu].name is longer than %d bytes", fn,
			   k, MEMFD_NAME_MAX);
	if (data_file_ok(v, fn, "a shared memory object's data_file",
			 sh->data_file, &data) < 0)
		return -1;
	if (sh->n_runs && !sh->data_file)
		return bad(v, "%s: shmem[%zu] has runs but no data_file", fn, k);
	uint64_t end = (sh->size + PAGE - 1) / PAGE * PAGE;
	if (sh->n_runs && !end)
		return bad(v, "%s: shmem[%zu]: runs in an empty object", fn, k);
	return sh->n_runs ? check_runs(v, fn, "shmem", k, sh->runs, sh->n_runs,
				       0, end, data, 0)
			  : 0;
}

static int check_sysv(struct vctx *v, size_t k)
{
	const Capcr__SysvObject *o = v->s->files->sysv[k];
	const char *fn = "files.img";

	if (o->type < 1 || o->type > 3)
		return bad(v, "%s: sysv[%zu].type %u", fn, k, o->type);
	if (o->id < 0 || o->mode > 0777)
		return bad(v, "%s: sysv[%zu]: id %d, mode %#o", fn, k, o->id,
			   o->mode);
	if (o->has_shmem &&
	    (o->shmem < 0 || (size_t)o->shmem >= v->s->files->n_shmem))
		return bad(v, "%s: sysv[%zu].shmem %d: there are %zu shared "
			      "memory objects", fn, k, o->shmem,
			   v->s->files->n_shmem);
	if (o->type == 1 && o->size > USER_END)
		return bad(v, "%s: sysv[%zu].size %llu", fn, k,
			   (unsigned long long)o->size);
	if (o->type == 2 &&
	    (o->size > SEMMSL || o->n_semvals != o->size))
		return bad(v, "%s: sysv[%zu]: %llu semaphores, %zu values", fn,
			   k, (unsigned long long)o->size, o->n_semvals);
	for (size_t s = 0; s < o->n_semvals; s++)
		if (o->semvals[s] > SEMVMX)
			return bad(v, "%s: sysv[%zu].semvals[%zu] %u", fn, k, s,
				   o->semvals[s]);
	if (o->n_msgs > LIST_MAX)
		return bad(v, "%s: sysv[%zu].msgs: %zu messages", fn, k,
			   o->n_msgs);
	for (size_t m = 0; m < o->n_msgs; m++)
		if (o->msgs[m]->mtype <= 0 || o->msgs[m]->text.len > MSG_MAX ||
		    (o->msgs[m]->text.len && !o->msgs[m]->text.data))
			return bad(v, "%s: sysv[%zu].msgs[%zu]: type %lld, %zu "
				      "bytes", fn, k, m,
				   (long long)o->msgs[m]->mtype,
				   o->msgs[m]->text.len);
	return 0;
}

static int validate_all(struct vctx *v)
{
	const struct image_set *s = v->s;

	if (check_inventory(v) < 0)
		return -1;
	for (size_t i = 0; i < s->nprocs; i++) {
		int32_t pid = s->inv->pids[i];
		if (!s->procs[i].task)
			return bad(v, "core-%d.img is missing", pid);
		if (!s->procs[i].mm)
			return bad(v, "mm-%d.img is missing", pid);
		if (!s->procs[i].fdt)
			return bad(v, "fds-%d.img is missing", pid);
	}
	if (s->files->n_files > FILES_MAX)
		return bad(v, "files.img: files: %zu files, at most %d",
			   s->files->n_files, FILES_MAX);
	for (size_t i = 0; i < s->nprocs; i++)
		if (check_task(v, i) < 0)
			return -1;
	v->pids = calloc(s->nprocs, sizeof(*v->pids));
	v->fds = calloc(s->nprocs, sizeof(*v->fds));
	if (!v->pids || !v->fds)
		return bad(v, "out of memory");
	for (size_t i = 0; i < s->nprocs; i++)
		v->pids[i] = (struct id_ref){ s->procs[i].task->pid,
					      (uint32_t)i, 0 };
	qsort(v->pids, s->nprocs, sizeof(*v->pids), by_id);
	if (check_ids(v) < 0 || check_tree(v) < 0)
		return -1;
	for (size_t i = 0; i < s->nprocs; i++)
		if (check_mm(v, i) < 0 || check_fdt(v, i) < 0 ||
		    check_locks(v, i) < 0)
			return -1;
	for (size_t k = 0; k < s->files->n_files; k++)
		if (check_file(v, k) < 0)
			return -1;
	if (check_ptys(v) < 0)
		return -1;
	for (size_t k = 0; k < s->files->n_shmem; k++)
		if (check_shmem(v, k) < 0)
			return -1;
	if (s->files->n_sysv > LIST_MAX)
		return bad(v, "files.img: sysv: %zu objects", s->files->n_sysv);
	for (size_t k = 0; k < s->files->n_sysv; k++)
		if (check_sysv(v, k) < 0)
			return -1;
	return 0;
}

int image_set_validate(const struct image_set *s, char *why, size_t wl)
{
	struct vctx v = { s, why, wl, NULL, NULL, NULL };
	int r = validate_all(&v);

	free(v.names);
	free(v.pids);
	for (size_t i = 0; v.fds && i < s->nprocs; i++)
		free(v.fds[i]);
	free(v.fds);
	return r;
}

int image_mem_validate(const struct image_set *s, char *why, size_t wl)
{
	struct vctx v = { s, why, wl, NULL, NULL, NULL, 1 };
	int32_t *pids = NULL;
	int r = check_inventory(&v);

	if (!r && !(pids = malloc(s->nprocs * sizeof(*pids) + 1)))
		r = bad(&v, "out of memory");
	if (!r) {
		memcpy(pids, s->inv->pids, s->nprocs * sizeof(*pids));
		qsort(pids, s->nprocs, sizeof(*pids), by_int);
		for (size_t i = 1; i < s->nprocs; i++)
			if (pids[i] == pids[i - 1])
				r = bad(&v, "inventory.img: pids: %d twice",
					pids[i]);
	}
	for (size_t i = 0; !r && i < s->nprocs; i++)
		if (s->procs[i].mm)
			r = check_mm(&v, i);
	free(pids);
	free(v.names);
	return r;
}
