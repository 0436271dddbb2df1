/* SPDX-License-Identifier: MIT */
/*
 * Descriptors in flight: sent on a Unix socket with SCM_RIGHTS and not yet
 * received, so held by no process, only by the message in the queue.
 *
 * Dump.  Reading a queue with MSG_PEEK (unix_sock.c) gives capcr copies
 * of what each message carries (MSG_CMSG_CLOEXEC).  inflight_note records
 * them per message (its record index, or for stream data the range of
 * bytes they came with).  Once every descriptor of the tree is a File,
 * fds.c makes each copy a File too: the tree's File when the kernel
 * (kcmp) says it is the same open file description, one already made for
 * an earlier copy when it is that one's, else a new File of its own,
 * which no Fd names; a socket in flight has its own queue read the same
 * way, to INFLIGHT_MAX_DEPTH.  Before all that, inflight_scan walks the
 * tree's queues once to learn what is in flight, so that a socket of the
 * tree whose peer is in flight, or a pipe whose other end is, is seen as
 * whole.  With --skip-in-flight they are dropped instead, with a warning
 * (CRIU's option).
 *
 * Restore.  inflight_order puts each File carried in flight before the
 * socket that carries it, so that when that socket's queue is written
 * (unix_sock.c), each message goes with its descriptors (inflight_send).
 * A File that only a queue held is closed in capcr with the others once
 * the processes are made.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "inflight.h"

#define SCM_MAX_FD 253
#define SCM_PIDFD_ 0x04
#define CBUF (CMSG_SPACE(sizeof(int) * SCM_MAX_FD) + CMSG_SPACE(256))

static int push_obj(struct inflight_dump *d, const struct stat *st, int acc)
{
	for (size_t i = 0; i < d->nobjs; i++)
		if (d->objs[i].dev == st->st_dev && d->objs[i].ino == st->st_ino &&
		    d->objs[i].acc == acc)
			return 0;
	if (d->nobjs == d->objs_cap) {
		size_t cap = d->objs_cap ? 2 * d->objs_cap : 16;
		struct inflight_obj *o = realloc(d->objs, cap * sizeof(*o));
		if (!o)
			return -1;
		d->objs = o;
		d->objs_cap = cap;
	}
	d->objs[d->nobjs++] = (struct inflight_obj){ st->st_dev, st->st_ino,
						     st->st_mode, acc };
	return 1;
}

/* The descriptors a received message carries (SCM_RIGHTS) into fds, max
 * at most; the rest, and pidfds (SCM_PIDFD), closed, and the SCM_RIGHTS
 * ones that did not fit counted in *over.  Their number. */
static size_t take_rights(struct msghdr *m, int *fds, size_t max,
			  size_t *over)
{
	size_t n = 0;

	*over = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm;
	     cm = CMSG_NXTHDR(m, cm)) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    (cm->cmsg_type != SCM_RIGHTS && cm->cmsg_type != SCM_PIDFD_))
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)CMSG_DATA(cm);
		for (size_t i = 0; i < k; i++) {
			if (cm->cmsg_type == SCM_RIGHTS && n < max) {
				fds[n++] = p[i];
				continue;
			}
			*over += cm->cmsg_type == SCM_RIGHTS;
			close(p[i]);
		}
	}
	return n;
}

/* A zero-length message met by the scan, with what it carries (kept:
 * closed only by inflight_dump_free or handed on by inflight_zero_at).
 * 1, or -1 with why (its descriptors closed). */
static int push_zero(struct inflight_dump *d, ino_t ino, uint64_t index,
		     const struct sockaddr_un *from, socklen_t fl,
		     struct msghdr *m, char *why, size_t wl)
{
	int fds[SCM_MAX_FD];
	size_t over, n = take_rights(m, fds, SCM_MAX_FD, &over);

	struct inflight_zero z = { .sock = ino, .index = index,
				   .fromlen = fl <= sizeof(*from) ? fl : 0 };
	memcpy(&z.from, from, z.fromlen);
	if (n) {
		z.copies = malloc(n * sizeof(int));
		z.st = calloc(n, sizeof(*z.st));
	}
	if (d->nzeros == d->zeros_cap) {
		size_t cap = d->zeros_cap ? 2 * d->zeros_cap : 8;
		struct inflight_zero *x = realloc(d->zeros, cap * sizeof(*x));
		if (x) {
			d->zeros = x;
			d->zeros_cap = cap;
		}
	}
	if ((n && (!z.copies || !z.st)) || d->nzeros == d->zeros_cap) {
		free(z.copies);
		free(z.st);
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return files_fail(why, wl, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		z.copies[i] = fds[i];
		fstat(fds[i], &z.st[i]);
		int acc = fcntl(fds[i], F_GETFL);
		push_obj(d, &z.st[i], acc < 0 ? 0 : acc & O_ACCMODE);
	}
	z.n = n;
	d->zeros[d->nzeros++] = z;
	return 1;
}

int inflight_zero_at(struct file_dump_env *env, ino_t ino, uint64_t index,
		     Capcr__File *carrier, struct sockaddr_un *from,
		     socklen_t *fromlen, const char *what)
{
	struct inflight_dump *d = env->inflight;

	for (size_t i = 0; d && i < d->nzeros; i++) {
		struct inflight_zero *z = &d->zeros[i];
		if (z->sock != ino || z->index != index)
			continue;
		memcpy(from, &z->from, z->fromlen);
		*fromlen = z->fromlen;
		if (!z->n)
			return 1;
		/* what it carries, as a control message for inflight_note */
		char cbuf[CMSG_SPACE(sizeof(int) * SCM_MAX_FD)];
		struct msghdr m = { .msg_control = cbuf,
				    .msg_controllen =
					    CMSG_SPACE(sizeof(int) * z->n) };
		memset(cbuf, 0, sizeof(cbuf));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * z->n);
		memcpy(CMSG_DATA(cm), z->copies, sizeof(int) * z->n);
		free(z->copies);
		free(z->st);
		z->copies = NULL;
		z->st = NULL;
		z->n = 0;
		return inflight_note(env, &m, carrier, 0, index, 0, what) < 0
			       ? -1
			       : 1;
	}
	return 0;
}

static int scan_rec(struct inflight_dump *d, int fd, unsigned depth,
		    char *why, size_t wl)
{
	static char buf[1 << 16];
	char cbuf[CBUF];
	int dom = 0, type = 0, orig = -1, zero = 0, r = 0;
	unsigned zeros = 0;
	socklen_t l = sizeof(dom);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 ||
	    dom != AF_UNIX)
		return 0;
	l = sizeof(type);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
	l = sizeof(orig);
	/* A queue that cannot be walked: the dump's own read says why. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return 0;
	struct stat self;
	uint64_t index = 0, rest = 0;
	if (fstat(fd, &self) < 0)
		self.st_ino = 0;
	while (!r) {
		struct sockaddr_un from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr m = { .msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT |
						    MSG_CMSG_CLOEXEC |
						    (type == SOCK_STREAM
							     ? 0
							     : MSG_TRUNC));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		/* the end of a stream; a seqpacket socket shut down answers
		 * 0 for ever */
		if (n == 0 && type == SOCK_STREAM)
			break;
		if (n == 0 && type == SOCK_SEQPACKET) {
			struct pollfd p = { .fd = fd, .events = POLLRDHUP };
			if (poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP))
				break;
		}
		if (++zeros > 1u << 20)
			break;
		int empty = 0;
		if (type != SOCK_STREAM) {
			/* a message longer than buf comes in several peeks */
			if (rest)
				rest -= (uint64_t)n < rest ? (uint64_t)n : rest;
			else {
				empty = n == 0;
				if ((size_t)n > sizeof(buf))
					rest = (uint64_t)n - sizeof(buf);
				index++;
			}
		}
		if (empty && self.st_ino &&
		    (r = push_zero(d, self.st_ino, index - 1, &from,
				   m.msg_namelen, &m, why, wl)) != 0) {
			if (r > 0)
				r = 0;
			continue; /* its descriptors are the record's now */
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm;
		     cm = CMSG_NXTHDR(&m, cm)) {
			if (cm->cmsg_level != SOL_SOCKET ||
			    (cm->cmsg_type != SCM_RIGHTS &&
			     cm->cmsg_type != SCM_PIDFD_))
				continue;
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)CMSG_DATA(cm);
			for (size_t i = 0; i < k; i++) {
				struct stat st;
				int acc = fcntl(fds[i], F_GETFL);
				if (cm->cmsg_type == SCM_RIGHTS && !r &&
				    fstat(fds[i], &st) == 0) {
					int added = push_obj(
						d, &st, acc < 0 ? 0 : acc & O_ACCMODE);
					if (added < 0)
						r = files_fail(why, wl,
							       "out of memory");
					else if (added && S_ISSOCK(st.st_mode) &&
						 depth <= INFLIGHT_MAX_DEPTH)
						r = scan_rec(d, fds[i], depth + 1,
							     why, wl);
				}
				close(fds[i]);
			}
		}
	}
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig));
	return r;
}

int inflight_scan(struct inflight_dump *d, int copy, char *why, size_t wl)
{
	return scan_rec(d, copy, 1, why, wl);
}

int inflight_has(const struct inflight_dump *d, dev_t dev, ino_t ino,
		 int other_acc)
{
	for (size_t i = 0; d && i < d->nobjs; i++)
		if (d->objs[i].dev == dev && d->objs[i].ino == ino &&
		    (other_acc < 0 || d->objs[i].acc != other_acc))
			return 1;
	return 0;
}

int inflight_note(struct file_dump_env *env, struct msghdr *m,
		  Capcr__File *carrier, int stream, uint64_t where,
		  uint64_t len, const char *what)
{
	struct inflight_dump *d = env->inflight;
	int fds[SCM_MAX_FD * 2];
	size_t over, n = take_rights(m, fds, sizeof(fds) / sizeof(fds[0]),
				     &over);
	int r = 0;
	if ((m->msg_flags & MSG_CTRUNC) || over || n > SCM_MAX_FD)
		r = FILE_FAIL(env,
			      "%s has a queued message whose control data "
			      "(descriptors in flight, SCM_RIGHTS) does not "
			      "fit in the %d descriptors a message may carry",
			      what, SCM_MAX_FD);
	else if (n && !d)
		r = FILE_FAIL(env,
			      "%s has descriptors in flight in its queue "
			      "(SCM_RIGHTS); capcr cannot checkpoint those "
			      "here",
			      what);
	else if (n && d->skip) {
		capcr_warn("%s: %zu descriptor%s in flight on a queued "
			   "message %s dropped (--skip-in-flight)",
			   what, n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
		d->dropped += n;
	} else if (n && d->depth + 1 > INFLIGHT_MAX_DEPTH)
		r = FILE_FAIL(env,
			      "%s, itself in flight, has descriptors in flight "
			      "in its own queue: sockets in flight nested more "
			      "than %d deep; capcr keeps them only to that "
			      "depth",
			      what, INFLIGHT_MAX_DEPTH);
	else if (n) {
		if (d->nmsgs == d->msgs_cap) {
			size_t cap = d->msgs_cap ? 2 * d->msgs_cap : 16;
			struct inflight_msg *x =
				realloc(d->msgs, cap * sizeof(*x));
			if (!x)
				r = FILE_FAIL(env, "out of memory");
			else {
				d->msgs = x;
				d->msgs_cap = cap;
			}
		}
		int *c = r ? NULL : malloc(n * sizeof(int));
		struct stat *st = r ? NULL : calloc(n, sizeof(*st));
		if (!r && (!c || !st)) {
			r = FILE_FAIL(env, "out of memory");
		}
		for (size_t i = 0; !r && i < n; i++)
			if (fstat(fds[i], &st[i]) < 0)
				r = FILE_FAIL(env,
					      "cannot tell what %s carries in "
					      "flight: %s",
					      what, strerror(errno));
		if (!r) {
			memcpy(c, fds, n * sizeof(int));
			d->msgs[d->nmsgs++] = (struct inflight_msg){
				.carrier = carrier, .proc = d->proc,
				.depth = d->depth + 1,
				.stream = stream, .where = where, .len = len,
				.copies = c, .st = st, .n = n
			};
			return 0;
		}
		free(c);
		free(st);
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	return r;
}

void inflight_dump_free(struct inflight_dump *d)
{
	for (size_t i = 0; i < d->nmsgs; i++) {
		for (size_t k = 0; k < d->msgs[i].n; k++)
			if (d->msgs[i].copies[k] >= 0)
				close(d->msgs[i].copies[k]);
		free(d->msgs[i].copies);
		free(d->msgs[i].st);
	}
	for (size_t i = 0; i < d->nzeros; i++) {
		for (size_t k = 0; k < d->zeros[i].n; k++)
			close(d->zeros[i].copies[k]);
		free(d->zeros[i].copies);
		free(d->zeros[i].st);
	}
	free(d->zeros);
	d->zeros = NULL;
	d->nzeros = d->zeros_cap = 0;
	free(d->msgs);
	free(d->objs);
	d->msgs = NULL;
	d->objs = NULL;
	d->nmsgs = d->msgs_cap = d->nobjs = d->objs_cap = 0;
}

/* ---- restore ---- */

int inflight_order(const Capcr__Files *files, size_t *order, char *why,
		   size_t wl)
{
	size_t n = files->n_files, k = 0, sp = 0;
	unsigned char *state = calloc(n + 1, 1); /* 1 on the stack, 2 done */
	struct frame {
		size_t file, e, i;
	} *stack = calloc(n + 1, sizeof(*stack));

	if (!state || !stack) {
		free(state);
		free(stack);
		return files_fail(why, wl, "out of memory");
	}
	for (size_t s = 0; s < n; s++) {
		if (state[s])
			continue;
		stack[sp++] = (struct frame){ s, 0, 0 };
		state[s] = 1;
		while (sp) {
			struct frame *fr = &stack[sp - 1];
			const Capcr__File *f = files->files[fr->file];
			if (fr->e >= f->n_socket_inflight) {
				state[fr->file] = 2;
				order[k++] = fr->file;
				sp--;
				continue;
			}
			const Capcr__InFlight *e = f->socket_inflight[fr->e];
			if (fr->i >= e->n_files) {
				fr->e++;
				fr->i = 0;
				continue;
			}
			uint32_t c = e->files[fr->i++];
			if (c >= n) {
				size_t bad = fr->file;
				free(state);
				free(stack);
				return files_fail(why, wl,
						  "files[%zu] carries files[%u] "
						  "in flight, which does not "
						  "exist",
						  bad, c);
			}
			if (state[c] == 1) {
				free(state);
				free(stack);
				return files_fail(
					why, wl,
					"the socket %s (files[%zu]) is in flight "
					"in its own queue (directly or through "
					"other sockets in flight); capcr cannot "
					"make that again",
					files->files[c]->path
						? files->files[c]->path
						: "?",
					(size_t)c);
			}
			if (!state[c]) {
				state[c] = 1;
				stack[sp++] = (struct frame){ c, 0, 0 };
			}
		}
	}
	free(state);
	free(stack);
	return 0;
}

const Capcr__InFlight *inflight_at(const Capcr__File *f, uint64_t k)
{
	/* Entries are in queue order, so a sorted search would do; queues
	 * carrying descriptors are short. */
	for (size_t i = 0; i < f->n_socket_inflight; i++) {
		const Capcr__InFlight *e = f->socket_inflight[i];
		if (f->socket_type == SOCK_STREAM ? e->offset == k
						  : e->msg == k)
			return e;
	}
	return NULL;
}

ssize_t inflight_send(struct file_restore_env *env, int s, const void *buf,
		      size_t len, const Capcr__InFlight *e, const void *to,
		      size_t tl)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SCM_MAX_FD)];
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = (socklen_t)tl,
			    .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (e && e->n_files) {
		int fds[SCM_MAX_FD];
		if (e->n_files > SCM_MAX_FD)
			return errno = EINVAL, -1;
		for (size_t i = 0; i < e->n_files; i++) {
			int fd = env->file_fd ? env->file_fd[e->files[i]] : -1;
			if (fd < 0) {
				FILE_FAIL(env, "files[%u], carried in flight, "
					       "is not made yet",
					  e->files[i]);
				return errno = EINVAL, -1;
			}
			fds[i] = fd;
		}
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * e->n_files);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * e->n_files);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * e->n_files);
	}
	do
		w = sendmsg(s, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w;
}
