/* SPDX-License-Identifier: MIT */
/*
 * Startup and attach: the runtime's side of cap_space_info().
 *
 * At load time the runtime looks for a PD channel (CAPCR_PD in the
 * environment).  None means "core": rt_monitored stays 0 and every wrapper
 * falls straight through.  Otherwise it opens a session, asks for its
 * region, maps it, and enters every descriptor the process already holds.
 *
 * A child made by fork asks again for its own region (pthread_atfork);
 * a child made any other way without CLONE_VM finds the wiped attach page
 * and asks on its first report.  An exec'd image asks from its constructor.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/pd_proto.h"
#include "rt.h"
#include "rt_real.h"

int rt_monitored;
struct rt_attach *rt_att;
/* The ipc session's number, outside the wiped page: a forked child must
 * close its parent's session, which it inherits. */
int rt_ipc_fd_any = -1;
char rt_pd_name[CAPCR_PD_NAME_MAX + 1];
__thread int rt_in_vfork;

/* Used while no attach page exists yet, so rt_att is never NULL. */
static struct rt_attach rt_att_fallback = { .ipc_fd = -1 };

static long pd_session(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(rt_pd_name);
	long fd = RT_SYS3(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
			  0);

	if (fd < 0)
		return fd;
	/* Abstract name: sun_path[0] = 0. */
	memcpy(sa.sun_path + 1, rt_pd_name, n);
	long r = RT_SYS3(SYS_connect, fd, &sa,
			 offsetof(struct sockaddr_un, sun_path) + 1 + n);
	if (r < 0) {
		RT_SYS1(SYS_close, fd);
		return r;
	}
	return fd;
}

/* Ask for the region.  Returns the mode; *memfd gets the region in shm. */
static int cap_space_info(long fd, int *memfd, uint64_t *badge_base)
{
	struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
				       .op = CAPCR_PD_CAP_SPACE_INFO };
	struct capcr_pd_reply rp;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { &rp, sizeof(rp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	long n;

	*memfd = -1;
	rq.pid = (int32_t)RT_SYS0(SYS_getpid);
	do
		n = RT_SYS6(SYS_sendto, fd, &rq, sizeof(rq), MSG_NOSIGNAL, 0, 0);
	while (n == -EINTR);
	if (n != sizeof(rq))
		return CAPCR_PD_REFUSED;
	do
		n = RT_SYS3(SYS_recvmsg, fd, &mh, MSG_CMSG_CLOEXEC);
	while (n == -EINTR);
	if (n != sizeof(rp) || rp.magic != CAPCR_PD_MAGIC || rp.status != 0)
		return CAPCR_PD_REFUSED;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(memfd, CMSG_DATA(c), sizeof(int));
	*badge_base = rp.badge_base;
	if (rp.mode == CAPCR_PD_SHM && *memfd < 0)
		return CAPCR_PD_REFUSED;
	return (int)rp.mode;
}

static int map_region(int memfd)
{
	long p = RT_SYS6(SYS_mmap, 0, CAPCR_CAPINFO_REGION_SIZE,
			 PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	struct capcr_capinfo_header *h;

	RT_SYS1(SYS_close, memfd);
	if (p < 0 && p > -4096)
		return -1;
	h = (struct capcr_capinfo_header *)p;
	if (h->magic != CAPCR_CAPINFO_MAGIC ||
	    h->abi_version != CAPCR_CAPINFO_ABI_VERSION ||
	    h->region_size != CAPCR_CAPINFO_REGION_SIZE ||
	    h->capacity != CAPCR_CAPINFO_CAPACITY) {
		RT_SYS2(SYS_munmap, p, CAPCR_CAPINFO_REGION_SIZE);
		return -1;
	}
	/* A child must not write its parent's region. */
	RT_SYS3(SYS_madvise, p, CAPCR_CAPINFO_REGION_SIZE, MADV_DONTFORK);
	rt_att->region = h;
	rt_att->slots = (struct capcr_cap_info *)((char *)h + h->header_size);
	rt_att->lockw = &h->lock;
	return 0;
}

/* Enter every descriptor the process holds now.  Entries inherited from a
 * parent keep their badge (same object); the rest are "inherited". */
static void mark_unseen(struct capcr_cap_entry *e, void *arg)
{
	(void)arg;
	*rt_slot_of(e->kcap) = 0;
	e->state &= ~(1u << 31);
}

static void drop_unseen(struct capcr_cap_entry *e, void *arg)
{
	(void)arg;
	if (!(e->state & (1u << 31)))
		e->badge = 0;
	e->state &= ~(1u << 31);
}

static void enter_held_descriptors(void)
{
	char buf[4096];
	long dfd = RT_SYS4(SYS_openat, AT_FDCWD, "/proc/self/fd",
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	long n;

	rt_capmap_each(mark_unseen, NULL);
	if (dfd < 0)
		return;
	while ((n = RT_SYS3(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			int fd = atoi(d->d_name);
			if (fd == dfd || fd == rt_att->ipc_fd)
				continue;
			struct capcr_cap_entry *e = rt_entry(fd, 1);
			if (!e)
				continue;
			if (!e->badge || e->kcap != fd) {
				e = rt_new(fd, CAPCR_KIND_UNKNOWN,
					   CAPCR_ORIGIN_INHERITED);
				e->kind = (uint16_t)rt_kind_of_fd(
					fd, e->path, sizeof(e->path));
				e->badge = rt_badge_new();
			}
			e->state |= 1u << 31;
		}
	}
	RT_SYS1(SYS_close, dfd);
	rt_capmap_each(drop_unseen, NULL);
}

static void publish_one(struct capcr_cap_entry *e, void *arg)
{
	(void)arg;
	rt_sync_locked(e->kcap);
}

static int attach(void)
{
	uint64_t badge_base = 0;
	int memfd = -1, mode;
	long fd = pd_session();

	if (fd < 0)
		return 0;
	mode = cap_space_info(fd, &memfd, &badge_base);
	if (mode == CAPCR_PD_SHM && map_region(memfd) == 0) {
		RT_SYS1(SYS_close, fd);
	} else if (mode == CAPCR_PD_IPC) {
		/* Keep the session out of the application's way: high and
		 * close-on-exec.  The wrappers refuse to let it be closed. */
		long hi = RT_SYS3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 900);
		if (hi >= 0) {
			RT_SYS1(SYS_close, fd);
			fd = hi;
		}
		rt_att->ipc_fd = (int)fd;
		rt_ipc_fd_any = (int)fd;
		rt_att->lockw = &rt_att->ipc_lock;
	} else {
		RT_SYS1(SYS_close, fd);
		return 0;
	}
	rt_att->badge_base = badge_base;
	rt_att->badge_next = 0;
	rt_att->pid = (int)RT_SYS0(SYS_getpid);
	enter_held_descriptors();
	rt_modify_begin();
	rt_capmap_each(publish_one, NULL);
	if (rt_att->region)
		rt_att->region->flags |= CAPCR_CAPINFO_F_COMPLETE;
	rt_modify_end();
	rt_att->mode = mode;
	return 1;
}

/* A child made behind our back (raw clone, _Fork): attach now.  Returns
 * whether reporting is on. */
int rt_attach_slow(void)
{
	if (rt_att == &rt_att_fallback || rt_att->attaching)
		return 0;
	rt_att->attaching = 1;
	rt_att->ipc_fd = -1;
	if (rt_ipc_fd_any >= 0) {
		/* The parent's session, inherited: not ours to use. */
		RT_SYS1(SYS_close, rt_ipc_fd_any);
		rt_ipc_fd_any = -1;
	}
	int ok = attach();
	if (!ok)
		rt_monitored = 0; /* refused: this process runs as on core */
	rt_att->attaching = 0;
	return ok;
}

static void after_fork_child(void)
{
	if (!rt_monitored)
		return;
	/* The attach page is already zero (MADV_WIPEONFORK). */
	rt_attach_slow();
}

void rt_init(void)
{
	static int done;
	const char *name;
	long p;

	if (done)
		return;
	done = 1;
	rt_att = &rt_att_fallback;
	rt_real_resolve_all();
	name = getenv(CAPCR_PD_ENV);
	if (!name || !*name || strlen(name) > CAPCR_PD_NAME_MAX)
		return;
	memcpy(rt_pd_name, name, strlen(name) + 1);
	p = RT_SYS6(SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p < 0 && p > -4096)
		return;
	if (RT_SYS3(SYS_madvise, p, 4096, MADV_WIPEONFORK) < 0) {
		RT_SYS2(SYS_munmap, p, 4096);
		return;
	}
	rt_att = (struct rt_attach *)p;
	rt_att->ipc_fd = -1;
	pthread_atfork(NULL, NULL, after_fork_child);
	rt_monitored = 1;
	if (!rt_attach_slow())
		rt_monitored = 0;
}

__attribute__((constructor(101))) static void rt_constructor(void)
{
	rt_init();
}
