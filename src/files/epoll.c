/* SPDX-License-Identifier: MIT */
/*
 * epoll instances: the interest list, one EpollTarget per registration
 * (the descriptor number it was registered under, its events and data),
 * from the "tfd:" lines of fdinfo.
 *
 * The kernel keys a registration by (file, descriptor number), and the
 * number is the registering process's: EPOLL_CTL_MOD and EPOLL_CTL_DEL
 * name it.  So the instance is made empty in capcr restore, and the
 * registrations are made again in settle, inside the process whose
 * numbers they are, once all its descriptors are back at their numbers.
 * That process is the one the instance was dumped from (kept in File.pid;
 * the dump checks with kcmp(KCMP_EPOLL_TFD) that each number still names
 * the registered file there).  Other processes sharing the instance add
 * nothing: their numbers may name other files.
 *
 * Limits:
 *   - a registration whose descriptor was closed (or reused) while the
 *     file stays open elsewhere is refused at dump: it cannot be named;
 *   - an EPOLLONESHOT registration that has fired (disarmed) comes back
 *     armed for EPOLLERR | EPOLLHUP only, which the kernel always adds;
 *   - readiness is evaluated afresh at restore: an edge-triggered
 *     (EPOLLET) target that is ready reports one more edge.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"

/* The events epoll_ctl takes back. */
#define EPOLL_USER_BITS                                                         \
	(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM |    \
	 EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP |     \
	 EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET)
/* With EPOLLEXCLUSIVE, only these (fs/eventpoll.c EPOLLEXCLUSIVE_OK_BITS). */
#define EPOLL_EXCL_BITS                                                         \
	(EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM |         \
	 EPOLLWRBAND | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET |           \
	 EPOLLEXCLUSIVE)

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[eventpoll]");
}

static uint32_t acceptable(uint32_t ev)
{
	ev &= EPOLL_USER_BITS;
	if (ev & EPOLLEXCLUSIVE)
		ev &= EPOLL_EXCL_BITS;
	return ev;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *fi;
	int r = 0;

	fi = files_fdinfo_open(in->pid, in->fd, env->why, env->whylen);
	if (!fi)
		return -1;
	f->has_pid = 1;
	f->pid = in->pid;
	while (r == 0 && getline(&line, &cap, fi) > 0) {
		int tfd;
		unsigned ev;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &ev,
			   &data) != 3)
			continue;
		/* Several registrations may share a number (a descriptor
		 * closed and the number reused): kcmp counts them in the
		 * order fdinfo lists them. */
		uint32_t toff = 0;
		for (size_t i = 0; i < f->n_epoll; i++)
			toff += f->epoll[i]->tfd == tfd;
		struct kcmp_epoll_slot slot = { (uint32_t)in->fd,
						(uint32_t)tfd, toff };
		long same = syscall(SYS_kcmp, in->pid, in->pid, KCMP_EPOLL_TFD,
				    tfd, &slot);
		if (same < 0 && errno != EBADF && errno != ENOENT) {
			r = FILE_FAIL(env,
				      "epoll descriptor %d of process %d: "
				      "cannot check what descriptor %d it "
				      "watches is (kcmp): %s",
				      in->fd, in->pid, tfd, strerror(errno));
			break;
		}
		if (same != 0) {
			r = FILE_FAIL(env,
				      "epoll descriptor %d of process %d "
				      "watches a file registered as "
				      "descriptor %d, which that process has "
				      "since closed or reused for another "
				      "file; such a registration cannot be "
				      "restored",
				      in->fd, in->pid, tfd);
			break;
		}
		Capcr__EpollTarget *t = ARENA_NEW(env->arena,
						  Capcr__EpollTarget);
		capcr__epoll_target__init(t);
		t->tfd = tfd;
		t->events = ev;
		t->data = data;
		arena_push(env->arena, (void ***)&f->epoll, &f->n_epoll, t);
	}
	free(line);
	fclose(fi);
	return r;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	(void)f;
	if (fd < 0)
		return FILE_FAIL(env, "epoll_create1: %s", strerror(errno));
	return fd;
}

static int settle(struct file_restore_env *env, const Capcr__File *f, int fd,
		  int first)
{
	pid_t me = (pid_t)syscall(SYS_getpid);

	/* Once, in the process whose numbers the interest list uses. */
	if ((f->has_pid && f->pid != me) || fd != first)
		return 0;
	for (size_t i = 0; i < f->n_epoll; i++) {
		const Capcr__EpollTarget *t = f->epoll[i];
		struct epoll_event ev = { .events = acceptable(t->events),
					  .data.u64 = t->data };
		if (fcntl(t->tfd, F_GETFD) < 0)
			return FILE_FAIL(env,
					 "epoll descriptor %d of process %d "
					 "watches descriptor %d, which is not "
					 "open in the restored process",
					 fd, me, t->tfd);
		if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev) < 0 &&
		    errno != EEXIST)
			return FILE_FAIL(env,
					 "epoll descriptor %d of process %d: "
					 "cannot watch descriptor %d again "
					 "(events %#x): %s",
					 fd, me, t->tfd, ev.events,
					 strerror(errno));
	}
	return 0;
}

const struct file_ops file_epoll = {
	.kind = CAPCR__FILE_KIND__FILE_EPOLL,
	.name = "epoll",
	.match = match,
	.dump = dump,
	.restore = restore,
	.settle = settle,
};
