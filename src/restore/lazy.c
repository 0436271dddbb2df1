/* SPDX-License-Identifier: MIT */
/*
 * capcr restore --lazy-pages, capcr restore's side (lazy.h): the server
 * started, each process's userfaultfd made and handed to it, the pages
 * capcr restore must write itself put in first.
 */
#define _GNU_SOURCE
#include "lazy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../dump/mm_flags.h"
#include "../pages/page_lazy.h"

int lazy_area(const Capcr__Vma *v)
{
	return v->kind == CAPCR__VMA_KIND__VMA_ANON_PRIVATE && v->n_pages &&
	       !v->has_sysv_shmid && !(v->flags & MAP_SHARED) &&
	       !(v->has_madv && (v->madv & (1u << MADV_WIPEONFORK)));
}

int lazy_start(struct restore_tree *t, char *why, size_t wl)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return snprintf(why, wl, "socketpair: %s", strerror(errno)), -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return snprintf(why, wl, "cannot fork the lazy-pages server: "
					 "%s", strerror(errno)), -1;
	}
	if (pid == 0) {
		close(sp[0]);
		lazy_serve(t, sp[1]);
	}
	close(sp[1]);
	t->lazy_pid = pid;
	t->lazy_sock = sp[0];
	return 0;
}

static int send_msg(int sock, int type, int idx, int fd)
{
	struct lazy_msg m = { LAZY_MAGIC, type, idx };
	struct iovec iov = { &m, sizeof(m) };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		h.msg_control = cbuf;
		h.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&h);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &h, MSG_NOSIGNAL) == sizeof(m) ? 0 : -1;
}

int lazy_arm(struct restore_ctx *ctx)
{
	/* Not UFFD_USER_MODE_ONLY: a page the kernel touches for the
	 * process (a read() into it) must wait for the server too, not fail
	 * with EFAULT.  The process is still root here, which a userfaultfd
	 * that takes kernel faults needs. */
	long fd = tracee_call(&ctx->t, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK,
			      0, 0, 0, 0, 0);
	if (fd < 0)
		return restore_fail(ctx, "--lazy-pages: cannot make a "
					 "userfaultfd in the process: %s",
				    strerror((int)-fd));
	int pidfd = (int)syscall(SYS_pidfd_open, ctx->pid, 0);
	ctx->uffd = pidfd < 0 ? -1
			      : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
	int e = errno;
	if (pidfd >= 0)
		close(pidfd);
	long c = tracee_call(&ctx->t, SYS_close, fd, 0, 0, 0, 0, 0);
	if (ctx->uffd < 0)
		return restore_fail(ctx, "--lazy-pages: cannot take the "
					 "process's userfaultfd: %s",
				    strerror(e));
	if (c < 0)
		return restore_fail(ctx, "--lazy-pages: cannot close the "
					 "userfaultfd in the process: %s",
				    strerror((int)-c));
	struct uffdio_api api = { .api = UFFD_API,
				  .features = PAGE_LAZY_FEATURES };
	if (ioctl(ctx->uffd, UFFDIO_API, &api) < 0)
		return restore_fail(ctx, "--lazy-pages: this kernel's "
					 "userfaultfd lacks fork, remap, remove "
					 "or unmap events: %s",
				    strerror(errno));
	/* Before any area is registered: the server serves every fault
	 * from then on, the kernel's own for our injected calls too. */
	if (send_msg(ctx->tree->lazy_sock, LAZY_ADD,
		     (int)(ctx - ctx->tree->procs), ctx->uffd) < 0)
		return restore_fail(ctx, "--lazy-pages: cannot hand the "
					 "userfaultfd to the server: %s",
				    strerror(errno));
	return 0;
}

int lazy_register(struct restore_ctx *ctx, uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {
		.range = { start, end - start },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	return ioctl(ctx->uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

void restore_lazy_fetch(struct restore_ctx *ctx, uint64_t addr, uint64_t len)
{
	static __thread char buf[65536];
	uint64_t a = addr & ~4095ULL, e = (addr + len + 4095) & ~4095ULL;

	/* Writing through /proc/PID/mem cannot wait for a missing page of
	 * a registered area (it fails): put the page in first, or the zero
	 * page where no run covers it.  Elsewhere this does nothing. */
	if (ctx->uffd >= 0 && len)
		page_lazy_copy(ctx->uffd, &ctx->pages, a, e, 0, 1, buf,
			       sizeof(buf), NULL);
}

void lazy_go(struct restore_tree *t)
{
	if (t->lazy_sock < 0)
		return;
	if (send_msg(t->lazy_sock, LAZY_GO, -1, -1) < 0)
		capcr_warn("--lazy-pages: cannot tell the server to go on (%s): "
			   "it copies the rest once it sees capcr restore's "
			   "end", strerror(errno));
	close(t->lazy_sock);
	t->lazy_sock = -1;
}

void lazy_stop(struct restore_tree *t)
{
	if (t->lazy_sock >= 0)
		close(t->lazy_sock);
	t->lazy_sock = -1;
	if (t->lazy_pid > 0) {
		kill(t->lazy_pid, SIGKILL);
		waitpid(t->lazy_pid, NULL, 0);
	}
	t->lazy_pid = 0;
}

void lazy_wait(pid_t server)
{
	int st;

	/* ECHILD: the monitor's loop reaped it already. */
	while (server > 0 && waitpid(server, &st, 0) < 0 && errno == EINTR)
		;
}
