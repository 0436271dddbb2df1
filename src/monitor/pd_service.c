/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "pd_service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/pd_proto.h"
#include "../common/proc.h"
#include "region.h"

int pd_service_start(struct pd_service *s, int mode, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t nonce = 0;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->next_serial = 1;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) < 0)
		nonce = (uint32_t)getpid() * 2654435761u;
	if (name)
		snprintf(s->name, sizeof(s->name), "%s", name);
	else
		snprintf(s->name, sizeof(s->name), "capcr-pd.%d.%08x",
			 getpid(), nonce);
	s->listen_fd = socket(AF_UNIX,
			      SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return -1;
	memcpy(sa.sun_path + 1, s->name, strlen(s->name));
	if (bind(s->listen_fd, (struct sockaddr *)&sa,
		 offsetof(struct sockaddr_un, sun_path) + 1 +
			 strlen(s->name)) < 0 ||
	    listen(s->listen_fd, 128) < 0) {
		int e = errno;
		close(s->listen_fd);
		errno = e;
		return -1;
	}
	return 0;
}

static void session_close(struct pd_service *s, unsigned i)
{
	struct pd_session *x = &s->sess[i];

	close(x->fd);
	if (x->region)
		munmap(x->region, CAPCR_CAPINFO_REGION_SIZE);
	if (x->memfd >= 0)
		close(x->memfd);
	s->sess[i] = s->sess[--s->nsess];
}

static void pending_drop(struct pd_service *s, unsigned i, int close_it)
{
	if (close_it)
		close(s->pend[i].fd);
	s->pend[i] = s->pend[--s->npend];
}

void pd_service_stop(struct pd_service *s)
{
	while (s->nsess)
		session_close(s, s->nsess - 1);
	while (s->npend)
		pending_drop(s, s->npend - 1, 1);
	free(s->pend);
	s->pend = NULL;
	free(s->sess);
	s->sess = NULL;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}

/* Is pid one of ours?  With the monitor as child subreaper, every process
 * of the tree has the monitor as an ancestor, orphans included. */
static int in_tree(pid_t pid)
{
	pid_t self = getpid();

	for (int depth = 0; pid > 1 && depth < 4096; depth++) {
		struct proc_stat st;
		if (proc_stat_read(pid, 0, &st) < 0 || st.nfields < 4)
			return 0;
		if (st.ppid == self)
			return 1;
		pid = st.ppid;
	}
	return 0;
}

static int reply(int fd, int status, int mode, uint64_t badge_base, int pass)
{
	struct capcr_pd_reply rp = { .magic = CAPCR_PD_MAGIC,
				     .status = status,
				     .mode = (uint32_t)mode,
				     .badge_base = badge_base };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cm;
	struct iovec iov = { &rp, sizeof(rp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (pass >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass, sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == sizeof(rp) ? 0 : -1;
}

/* ipc mode: apply one insert or remove to the monitor's copy. */
static void ipc_update(struct pd_session *x, const struct capcr_pd_request *rq)
{
	struct capcr_capinfo_header *h = x->region;
	struct capcr_cap_info *a = (struct capcr_cap_info *)(h + 1);

	h->seq++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (rq->op == CAPCR_PD_REMOVE) {
		for (unsigned i = 0; i < h->count; i++)
			if (a[i].kcap == rq->kcap) {
				a[i] = a[--h->count];
				break;
			}
	} else if (h->count < h->capacity) {
		a[h->count++] = (struct capcr_cap_info){
			.kcap = rq->kcap,
			.kind = rq->kind < CAPCR_KIND_MAX ? rq->kind : 0,
			.badge_ptr = rq->badge_ptr,
		};
	} else {
		h->flags |= CAPCR_CAPINFO_F_OVERFLOW;
	}
	h->updates++;
	h->flags |= CAPCR_CAPINFO_F_COMPLETE;
	__atomic_store_n(&h->seq, h->seq + 1, __ATOMIC_RELEASE);
}

static void add_session(struct pd_service *s, int fd, pid_t pid, int memfd,
			struct capcr_capinfo_header *h)
{
	struct pd_session *n =
		realloc(s->sess, (s->nsess + 1) * sizeof(*s->sess));
	if (!n) {
		close(fd);
		if (h)
			munmap(h, CAPCR_CAPINFO_REGION_SIZE);
		if (memfd >= 0)
			close(memfd);
		return;
	}
	s->sess = n;
	s->sess[s->nsess++] = (struct pd_session){ fd, pid, memfd, h };
}

static int64_t now_ms(void);

/* One warning a second at most, however many are turned away: a flood
 * of refused requests must not flood the log. */
static void refused(struct pd_service *s, pid_t pid, const char *what)
{
	int64_t now = now_ms();

	s->refused++;
	if (s->warned_ms && now - s->warned_ms < 1000)
		return;
	if (s->refused - s->refused_said > 1)
		capcr_warn("%s from PID %d, which is not in the monitored "
			   "tree: refused (%llu turned away since the last "
			   "warning)",
			   what, pid,
			   (unsigned long long)(s->refused - s->refused_said));
	else
		capcr_warn("%s from PID %d, which is not in the monitored "
			   "tree: refused",
			   what, pid);
	s->refused_said = s->refused;
	s->warned_ms = now;
}

static void cap_space_info(struct pd_service *s, int fd, pid_t pid)
{
	uint64_t badge_base = s->next_serial++ << 32;
	int memfd;

	if (s->mode == CAPCR_PD_REFUSED || !in_tree(pid)) {
		if (s->mode != CAPCR_PD_REFUSED)
			refused(s, pid, "a PD request");
		reply(fd, 0, CAPCR_PD_REFUSED, 0, -1);
		close(fd);
		return;
	}
	memfd = region_create(pid, badge_base);
	if (memfd < 0) {
		capcr_warn("cannot make a region for PID %d: %s", pid,
			   strerror(errno));
		reply(fd, 0, CAPCR_PD_REFUSED, 0, -1);
		close(fd);
		return;
	}
	s->served++;
	if (s->mode == CAPCR_PD_SHM) {
		reply(fd, 0, CAPCR_PD_SHM, badge_base, memfd);
		close(memfd);
		close(fd);
		return;
	}
	/* ipc: the region stays with the monitor, updated per request. */
	struct capcr_capinfo_header *h =
		mmap(NULL, CAPCR_CAPINFO_REGION_SIZE, PROT_READ | PROT_WRITE,
		     MAP_SHARED, memfd, 0);
	if (h == MAP_FAILED || reply(fd, 0, CAPCR_PD_IPC, badge_base, -1) < 0) {
		if (h != MAP_FAILED)
			munmap(h, CAPCR_CAPINFO_REGION_SIZE);
		close(memfd);
		close(fd);
		return;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	add_session(s, fd, pid, memfd, h);
}

static void query(struct pd_service *s, int fd, const struct ucred *cr,
		  pid_t pid)
{
	if (cr->uid != 0 && cr->uid != geteuid()) {
		reply(fd, -EPERM, 0, 0, -1);
		return;
	}
	for (unsigned i = 0; i < s->nsess; i++)
		if (s->sess[i].pid == pid && s->sess[i].memfd >= 0) {
			/* A description of its own, read-only: whoever asks
			 * may look at the region, never write it. */
			char path[64];
			snprintf(path, sizeof(path), "/proc/self/fd/%d",
				 s->sess[i].memfd);
			int ro = open(path, O_RDONLY | O_CLOEXEC);
			if (ro < 0) {
				reply(fd, -errno, 0, 0, -1);
				return;
			}
			reply(fd, 0, CAPCR_PD_IPC, 0, ro);
			close(ro);
			return;
		}
	reply(fd, -ESRCH, 0, 0, -1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void accept_one(struct pd_service *s)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	int fd = accept4(s->listen_fd, NULL, NULL,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
		close(fd);
		return;
	}
	/* Only the tree's processes get a session, and only root or our
	 * own user may query: anyone else is turned away at once. */
	int member = in_tree(cr.pid);
	if (!member && cr.uid != 0 && cr.uid != geteuid()) {
		refused(s, cr.pid, "a PD connection");
		close(fd);
		return;
	}
	/* A flood of silent connections from outside the tree costs the
	 * oldest of them, never a slot of the tree's own processes. */
	unsigned outsiders = 0, oldest = s->npend;
	for (unsigned i = 0; i < s->npend; i++)
		if (!s->pend[i].member) {
			outsiders++;
			if (oldest == s->npend)
				oldest = i;
		}
	if (!member && outsiders >= 32) {
		refused(s, s->pend[oldest].pid, "a silent PD connection");
		pending_drop(s, oldest, 1);
	}
	if (s->npend >= 4096) {
		close(fd);
		return;
	}
	void *n = realloc(s->pend, (s->npend + 1) * sizeof(*s->pend));
	if (!n) {
		close(fd);
		return;
	}
	s->pend = n;
	s->pend[s->npend++] = (struct pd_pending){ fd, cr.pid, cr.uid,
						   now_ms() + 1000, member };
}

/* The first request of a connection, once it has come. */
static void pending_io(struct pd_service *s, unsigned i)
{
	struct capcr_pd_request rq;
	struct pd_pending p = s->pend[i];
	ssize_t r = recv(p.fd, &rq, sizeof(rq), MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	pending_drop(s, i, 0);
	if (r != sizeof(rq) || rq.magic != CAPCR_PD_MAGIC) {
		close(p.fd);
		return;
	}
	if (rq.op == CAPCR_PD_CAP_SPACE_INFO) {
		cap_space_info(s, p.fd, p.pid);
		return;
	}
	if (rq.op == CAPCR_PD_QUERY) {
		struct ucred cr = { p.pid, p.uid, 0 };
		query(s, p.fd, &cr, rq.pid);
	}
	close(p.fd);
}

int pd_service_timeout(const struct pd_service *s)
{
	return s->npend ? 250 : -1;
}

int pd_service_adopt(struct pd_service *s, int fd, pid_t pid,
		     uint64_t badge_base, const struct capcr_cap_info *entries,
		     unsigned n)
{
	int memfd = region_create(pid, badge_base);
	struct capcr_capinfo_header *h;

	if (memfd < 0)
		return -1;
	h = mmap(NULL, CAPCR_CAPINFO_REGION_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, memfd, 0);
	if (h == MAP_FAILED) {
		close(memfd);
		return -1;
	}
	if (n > h->capacity)
		n = h->capacity;
	memcpy(h + 1, entries, n * sizeof(*entries));
	h->count = n;
	h->flags = CAPCR_CAPINFO_F_COMPLETE;
	if (s->next_serial <= badge_base >> 32)
		s->next_serial = (badge_base >> 32) + 1;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	add_session(s, fd, pid, memfd, h);
	return 0;
}

unsigned pd_service_pollfds(struct pd_service *s, struct pollfd *p,
			    unsigned max)
{
	unsigned n = 0;

	if (max && s->listen_fd >= 0)
		p[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
	for (unsigned i = 0; i < s->nsess && n < max; i++)
		p[n++] = (struct pollfd){ .fd = s->sess[i].fd, .events = POLLIN };
	for (unsigned i = 0; i < s->npend && n < max; i++)
		p[n++] = (struct pollfd){ .fd = s->pend[i].fd, .events = POLLIN };
	return n;
}

static void session_io(struct pd_service *s, unsigned i)
{
	struct capcr_pd_request rq;

	for (;;) {
		ssize_t r = recv(s->sess[i].fd, &rq, sizeof(rq), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r != sizeof(rq) || rq.magic != CAPCR_PD_MAGIC ||
		    (rq.op != CAPCR_PD_INSERT && rq.op != CAPCR_PD_REMOVE)) {
			session_close(s, i); /* gone, or talking nonsense */
			return;
		}
		ipc_update(&s->sess[i], &rq);
		if (reply(s->sess[i].fd, 0, CAPCR_PD_IPC, 0, -1) < 0) {
			session_close(s, i);
			return;
		}
	}
}

void pd_service_handle(struct pd_service *s, const struct pollfd *p,
		       unsigned n)
{
	/* Sessions and pending connections first, from the back: closing
	 * one moves the last. */
	for (unsigned k = n; k-- > 1;) {
		int found = 0;
		if (!p[k].revents)
			continue;
		for (unsigned i = 0; i < s->nsess && !found; i++)
			if (s->sess[i].fd == p[k].fd) {
				session_io(s, i);
				found = 1;
			}
		for (unsigned i = 0; i < s->npend && !found; i++)
			if (s->pend[i].fd == p[k].fd) {
				pending_io(s, i);
				found = 1;
			}
	}
	int64_t now = now_ms();
	for (unsigned i = s->npend; i-- > 0;)
		if (s->pend[i].deadline_ms <= now)
			pending_drop(s, i, 1); /* it never asked */
	if (n && p[0].revents & POLLIN)
		for (int i = 0; i < 64; i++) { /* a burst of forks */
			struct pollfd q = { .fd = s->listen_fd, .events = POLLIN };
			if (poll(&q, 1, 0) <= 0)
				break;
			accept_one(s);
		}
}
