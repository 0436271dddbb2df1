/* SPDX-License-Identifier: MIT */
/*
 * The lazy-pages server (lazy.h), a child of capcr restore that outlives
 * it when it must (-d, or capcr restore killed): it holds a copy of every
 * process's userfaultfd and of the pages files, and nothing else.
 *
 * A fault is served at once, with the run of pages after it (FAULT_RUN);
 * a page no run covers gets the zero page.  Once capcr restore says the
 * processes run (LAZY_GO, or its end), every area is copied in BG_RUN
 * pieces between faults; a page already there is skipped (EEXIST).  What
 * the process does to its memory meanwhile comes as events, each read
 * before any copy can go on (the kernel fails a copy with EAGAIN while
 * one is unread):
 *   - fork: the child's userfaultfd, served as its own process from then
 *     on, with what its parent had dropped;
 *   - madvise(DONTNEED)/munmap: the range reads as zero or is gone, so it
 *     is never filled from the image again ("gone");
 *   - mremap: the old range is gone; its saved pages still missing are
 *     put at the new one, first of all in the background, or at a fault
 *     there (a move: source and destination each checked against what
 *     was dropped before and after it).  Not the same move again at once:
 *     the kernel fails copies (EAGAIN) until the thread that moved runs
 *     again, and that thread may first unmap something, whose event must
 *     be read before anything else can go on.
 * A process is done when its areas are copied: its userfaultfd is closed,
 * which unregisters every range.  One that dies (pidfd, or ESRCH) is
 * dropped.  The server ends when every process is done and capcr restore
 * has said go or ended.  Every wait is bounded: poll for 100 ms at most
 * when idle, not at all while copying.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../pages/page_lazy.h"
#include "lazy.h"

#define PAGE 4096ULL
#define FAULT_RUN (16 * PAGE)
#define BG_RUN (4ULL << 20)

struct range {
	uint64_t s, e;
};

struct move {
	uint64_t from, to, len, done; /* done: bytes of it put */
	size_t gone_at;               /* its own entry in gone */
};

struct lproc {
	pid_t pid; /* 0: a child forked during the lazy phase */
	int uffd, pidfd;
	const struct page_read *pr;
	struct range *areas; /* registered, by address */
	size_t nareas;
	struct range *gone;  /* never to be filled from the image */
	size_t ngone, capgone;
	struct move *moves;  /* still being put, oldest first */
	size_t nmoves, capmoves;
	size_t ai;           /* the background copy: area, address */
	uint64_t at;
	int done;
};

struct server {
	struct restore_tree *t;
	struct lproc *p;
	size_t n, cap;
	int sock, go;
	char *buf;
	uint64_t faults, copied, zeroed;
	unsigned forks, events;
};

static int add_gone(struct lproc *p, uint64_t s, uint64_t e)
{
	if (p->ngone == p->capgone) {
		size_t cap = p->capgone ? 2 * p->capgone : 8;
		struct range *n = realloc(p->gone, cap * sizeof(*n));
		if (!n)
			return -1;
		p->gone = n;
		p->capgone = cap;
	}
	p->gone[p->ngone++] = (struct range){ s, e };
	return 0;
}

/* The end of the stretch from a that no gone range cuts (a itself when
 * a is in one), and in *skip the end of that gone range. */
static uint64_t clear_in(const struct lproc *p, uint64_t a, uint64_t e,
			 uint64_t *skip, size_t lo, size_t hi)
{
	*skip = 0;
	for (size_t i = lo; i < hi; i++) {
		const struct range *g = &p->gone[i];
		if (g->s <= a && a < g->e) {
			if (g->e > *skip)
				*skip = g->e;
			e = a;
		} else if (g->s > a && g->s < e) {
			e = g->s;
		}
	}
	return e;
}

static uint64_t clear_until(const struct lproc *p, uint64_t a, uint64_t e,
			    uint64_t *skip)
{
	return clear_in(p, a, e, skip, 0, p->ngone);
}

static const struct range *area_of(const struct lproc *p, uint64_t a)
{
	for (size_t i = 0; i < p->nareas; i++)
		if (p->areas[i].s <= a && a < p->areas[i].e)
			return &p->areas[i];
	return NULL;
}

static void drop(struct lproc *p)
{
	if (p->uffd >= 0)
		close(p->uffd);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->uffd = p->pidfd = -1;
	p->done = 1;
}

static struct lproc *add_proc(struct server *s, pid_t pid, int uffd,
			      const struct page_read *pr)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct lproc *n = realloc(s->p, cap * sizeof(*n));
		if (!n)
			return NULL;
		s->p = n;
		s->cap = cap;
	}
	struct lproc *p = &s->p[s->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->uffd = uffd;
	p->pidfd = pid ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	p->pr = pr;
	return p;
}

static void on_add(struct server *s, int idx, int uffd)
{
	struct restore_tree *t = s->t;

	if (idx < 0 || (size_t)idx >= t->nprocs) {
		close(uffd);
		return;
	}
	struct restore_ctx *c = &t->procs[idx];
	struct lproc *p = add_proc(s, c->pid, uffd, &c->pages);
	if (!p || !(p->areas = calloc(c->mm->n_vmas + 1, sizeof(*p->areas)))) {
		capcr_err("lazy pages: out of memory");
		exit(1); /* the processes see zero pages: better not at all */
	}
	for (size_t v = 0; v < c->mm->n_vmas; v++)
		if (lazy_area(c->mm->vmas[v]))
			p->areas[p->nareas++] =
				(struct range){ c->mm->vmas[v]->start,
						c->mm->vmas[v]->end };
}

/* The first area of p starting after a, or end. */
static uint64_t next_area(const struct lproc *p, uint64_t a, uint64_t end)
{
	for (size_t i = 0; i < p->nareas; i++)
		if (p->areas[i].s > a && p->areas[i].s < end)
			end = p->areas[i].s;
	return end;
}

/* Put the saved pages of source [a, e) of move m at their new place:
 * only what is in an area, not dropped before the move (at the source)
 * nor since (at the destination).  0, or -errno. */
static int put_moved(struct server *s, struct lproc *p, const struct move *m,
		     uint64_t a, uint64_t e)
{
	uint64_t delta = m->to - m->from, skip;

	while (a < e) {
		const struct range *ar = area_of(p, a);
		if (!ar) {
			a = next_area(p, a, e);
			continue;
		}
		uint64_t b = ar->e < e ? ar->e : e;
		uint64_t c = clear_in(p, a, b, &skip, 0, m->gone_at);
		if (c == a) {
			a = skip < e ? skip : e;
			continue;
		}
		uint64_t d = clear_in(p, a + delta, c + delta, &skip,
				      m->gone_at + 1, p->ngone) - delta;
		if (d == a) {
			a = skip - delta < e ? skip - delta : e;
			continue;
		}
		int r = page_lazy_copy(p->uffd, p->pr, a, d, (int64_t)delta, 0,
				       s->buf, BG_RUN, &s->copied);
		if (r < 0)
			return r;
		a = d;
	}
	return 0;
}

static void on_remap(struct lproc *p, uint64_t from, uint64_t to,
		     uint64_t len)
{
	if (p->nmoves == p->capmoves) {
		size_t cap = p->capmoves ? 2 * p->capmoves : 4;
		struct move *n = realloc(p->moves, cap * sizeof(*n));
		if (!n)
			return;
		p->moves = n;
		p->capmoves = cap;
	}
	if (add_gone(p, from, from + len) < 0)
		return;
	p->moves[p->nmoves++] =
		(struct move){ from, to, len, 0, p->ngone - 1 };
}

/* A fault in the destination of a move still being put: 1 if so. */
static int fault_moved(struct server *s, struct lproc *p, uint64_t a,
		       int *r)
{
	for (size_t i = p->nmoves; i-- > 0;) {
		const struct move *m = &p->moves[i];
		if (a < m->to || a >= m->to + m->len)
			continue;
		uint64_t src = a - (m->to - m->from);
		uint64_t e = src + FAULT_RUN < m->from + m->len
				     ? src + FAULT_RUN
				     : m->from + m->len;
		*r = put_moved(s, p, m, src, e);
		return 1;
	}
	return 0;
}

static void wake(int uffd, uint64_t a)
{
	struct uffdio_range r = { a, PAGE };
	ioctl(uffd, UFFDIO_WAKE, &r);
}

static int on_fault(struct server *s, struct lproc *p, uint64_t addr)
{
	uint64_t a = addr & ~(PAGE - 1), skip;
	const struct range *ar = area_of(p, a);
	long k = ar && clear_until(p, a, a + PAGE, &skip) > a
			 ? page_lazy_find(p->pr, a)
			 : -1;
	int r;

	s->faults++;
	if (fault_moved(s, p, a, &r)) {
		/* done below */
	} else if (k < 0) {
		/* Nothing saved there, or dropped since: zeros, as the
		 * kernel would have given without us. */
		struct uffdio_zeropage z = { .range = { a, PAGE } };
		r = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) < 0 ? -errno : 0;
		if (r == -EEXIST || r == -ENOENT)
			r = 0;
		s->zeroed += !r;
	} else {
		const struct page_seg *sg = &p->pr->segs[k];
		uint64_t e = a + FAULT_RUN;
		if (e > sg->vaddr + sg->len)
			e = sg->vaddr + sg->len;
		if (e > ar->e)
			e = ar->e;
		e = clear_until(p, a, e, &skip);
		r = page_lazy_copy(p->uffd, p->pr, a, e, 0, 0, s->buf, BG_RUN,
				   &s->copied);
	}
	/* A page our copy left missing (a hole of a move) reads as zeros,
	 * as without us; then the thread looks again. */
	if (r != -EAGAIN && r != -ESRCH) {
		struct uffdio_zeropage z = { .range = { a, PAGE } };
		ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
	}
	wake(p->uffd, a);
	return r == -EAGAIN ? 0 : r;
}

/* Every message the userfaultfd of s->p[i] holds: -1 once it is gone. */
static int drain(struct server *s, size_t i)
{
	struct uffd_msg m[32];

	for (;;) {
		ssize_t n = read(s->p[i].uffd, m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		for (size_t k = 0; k < (size_t)n / sizeof(m[0]); k++) {
			struct lproc *p = &s->p[i]; /* add_proc moves them */
			int r = 0;
			switch (m[k].event) {
			case UFFD_EVENT_PAGEFAULT:
				r = on_fault(s, p, m[k].arg.pagefault.address);
				break;
			case UFFD_EVENT_FORK: {
				int fd = (int)m[k].arg.fork.ufd;
				struct lproc *c = add_proc(s, 0, fd, p->pr);
				p = &s->p[i];
				if (!c)
					break;
				/* Its memory is its parent's as of now:
				 * same areas, same drops. */
				c->areas = malloc((p->nareas + 1) *
						  sizeof(*c->areas));
				if (c->areas) {
					memcpy(c->areas, p->areas,
					       p->nareas * sizeof(*c->areas));
					c->nareas = p->nareas;
				}
				for (size_t g = 0; g < p->ngone; g++)
					add_gone(c, p->gone[g].s, p->gone[g].e);
				for (size_t v = 0; v < p->nmoves; v++) {
					const struct move *mv = &p->moves[v];
					on_remap(c, mv->from, mv->to, mv->len);
					/* same place in the same list */
					c->ngone--;
					c->moves[c->nmoves - 1] = *mv;
				}
				s->forks++;
				break;
			}
			case UFFD_EVENT_REMAP:
				s->events++;
				on_remap(p, m[k].arg.remap.from,
					 m[k].arg.remap.to, m[k].arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				s->events++;
				add_gone(p, m[k].arg.remove.start,
					 m[k].arg.remove.end);
				break;
			}
			if (r == -ESRCH)
				return -1;
		}
	}
}

/* One piece of the background copy of s->p[i]: 1 while there is more. */
static int bg_step(struct server *s, size_t i)
{
	struct lproc *p = &s->p[i];

	/* Moves first: a fault in one costs more. */
	while (p->nmoves) {
		struct move *m = &p->moves[0];
		uint64_t n = m->len - m->done < BG_RUN ? m->len - m->done
						       : BG_RUN;
		int r = put_moved(s, p, m, m->from + m->done,
				  m->from + m->done + n);
		if (r == -EAGAIN)
			return 1;
		if (r == -ESRCH) {
			drop(p);
			return 0;
		}
		m->done += n;
		if (m->done == m->len)
			memmove(m, m + 1, --p->nmoves * sizeof(*m));
		return 1;
	}
	while (p->ai < p->nareas) {
		const struct range *a = &p->areas[p->ai];
		uint64_t skip;
		if (p->at < a->s)
			p->at = a->s;
		if (p->at >= a->e) {
			p->ai++;
			continue;
		}
		uint64_t e = p->at + BG_RUN < a->e ? p->at + BG_RUN : a->e;
		e = clear_until(p, p->at, e, &skip);
		if (e == p->at) {
			p->at = skip;
			continue;
		}
		int r = page_lazy_copy(p->uffd, p->pr, p->at, e, 0, 0, s->buf,
				       BG_RUN, &s->copied);
		if (r == -EAGAIN)
			return 1; /* an event first */
		if (r == -ESRCH) {
			drop(p);
			return 0;
		}
		if (r < 0)
			capcr_warn("lazy pages: process %d: %#llx-%#llx left "
				   "unfilled: %s", p->pid,
				   (unsigned long long)p->at,
				   (unsigned long long)e, strerror(-r));
		p->at = e;
		return 1;
	}
	/* All in: what came meanwhile first (a fork's child), then the
	 * userfaultfd goes and with it every registration. */
	drain(s, i);
	drop(&s->p[i]);
	return 0;
}

static void on_sock(struct server *s)
{
	struct lazy_msg m;
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(s->sock, &h, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	int fd = -1;
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&h) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (n <= 0) {
		/* capcr restore ended: what it made runs, or was killed. */
		close(s->sock);
		s->sock = -1;
		s->go = 1;
		return;
	}
	if (n != sizeof(m) || m.magic != LAZY_MAGIC) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (m.type == LAZY_ADD && fd >= 0) {
		fcntl(fd, F_SETFL, O_NONBLOCK);
		on_add(s, m.idx, fd);
	} else {
		if (fd >= 0)
			close(fd);
		if (m.type == LAZY_GO)
			s->go = 1;
	}
}

/* Only the socket, the pages files and (unless detached) stderr stay. */
static void close_others(struct restore_tree *t, int sock)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int keep_err = !t->detach;

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (!keep_err)
			dup2(null, 2);
	}
	int max = (int)sysconf(_SC_OPEN_MAX);
	for (int fd = 3; fd < max && fd < 1 << 20; fd++) {
		int keep = fd == sock;
		for (size_t i = 0; !keep && i < t->nprocs; i++)
			for (size_t l = 0; !keep && l < t->procs[i].pages.nlevels;
			     l++)
				keep = t->procs[i].pages.fd &&
				       t->procs[i].pages.fd[l] == fd;
		if (!keep)
			close(fd);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void lazy_serve(struct restore_tree *t, int sock)
{
	struct server s = { .t = t, .sock = sock };
	sigset_t none;
	size_t rr = 0;
	double t0 = now_ms(), t_go = 0;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Out of the terminal's reach: a ^C meant for the restored
	 * processes must not end their pages. */
	setsid();
	prctl(PR_SET_NAME, "capcr-lazy", 0, 0, 0);
	close_others(t, sock);
	s.buf = malloc(BG_RUN);
	if (!s.buf)
		_exit(1);
	for (;;) {
		size_t live = 0, np = 0;
		for (size_t i = 0; i < s.n; i++)
			live += !s.p[i].done;
		if (s.sock < 0 && !live)
			break;
		struct pollfd *pf = calloc(2 * s.n + 1, sizeof(*pf));
		size_t *who = calloc(2 * s.n + 1, sizeof(*who));
		if (!pf || !who)
			_exit(1);
		if (s.sock >= 0)
			pf[np++] = (struct pollfd){ s.sock, POLLIN, 0 };
		for (size_t i = 0; i < s.n; i++) {
			if (s.p[i].done)
				continue;
			who[np] = i;
			pf[np++] = (struct pollfd){ s.p[i].uffd, POLLIN, 0 };
			if (s.p[i].pidfd >= 0) {
				who[np] = i;
				pf[np++] = (struct pollfd){ s.p[i].pidfd,
							    POLLIN, 0 };
			}
		}
		int busy = s.go && live;
		if (s.go && !t_go)
			t_go = now_ms();
		if (poll(pf, np, busy ? 0 : 100) > 0) {
			for (size_t k = 0; k < np; k++) {
				if (!pf[k].revents)
					continue;
				if (pf[k].fd == s.sock) {
					on_sock(&s);
					continue;
				}
				size_t i = who[k];
				if (s.p[i].done)
					continue;
				if (pf[k].fd == s.p[i].pidfd ||
				    (pf[k].revents & (POLLERR | POLLHUP)) ||
				    drain(&s, i) < 0)
					drop(&s.p[i]);
			}
		}
		free(pf);
		free(who);
		/* One piece of one process's copy, in turn. */
		for (size_t k = 0; busy && k < s.n; k++) {
			size_t i = (rr + k) % s.n;
			if (s.p[i].done)
				continue;
			bg_step(&s, i);
			rr = i + 1;
			break;
		}
	}
	capcr_info("lazy pages: %zu process%s, %.1f MiB put (%llu faults, "
		    "%llu zero pages), %u forks, %u remaps/drops; all in "
		    "%.1f ms after the processes ran (%.1f ms in all)",
		    s.n, s.n == 1 ? "" : "es", (double)s.copied / 1048576.0,
		    (unsigned long long)s.faults,
		    (unsigned long long)s.zeroed, s.forks, s.events,
		    t_go ? now_ms() - t_go : 0.0, now_ms() - t0);
	_exit(0);
}
