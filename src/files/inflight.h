/* SPDX-License-Identifier: MIT */
/* Descriptors in flight (SCM_RIGHTS) on Unix socket queues: inflight.c. */
#ifndef CAPCR_INFLIGHT_H
#define CAPCR_INFLIGHT_H

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "files.h"

/* How deep sockets in flight may nest: a descriptor in the queue of a
 * socket of the tree is 1 deep, one in the queue of a socket in flight
 * one deeper, ... */
#define INFLIGHT_MAX_DEPTH 4

/* An object met in flight by the scan before the dump (inflight_scan). */
struct inflight_obj {
	dev_t dev;
	ino_t ino;
	mode_t mode;
	int acc; /* O_ACCMODE of the description */
};

/* One queued message carrying descriptors, met while its queue was read. */
struct inflight_msg {
	Capcr__File *carrier; /* the socket whose queue holds it */
	size_t proc;          /* the dump's index of the process it was met in */
	unsigned depth;       /* of what it carries: 1 in a queue of the tree */
	int stream;
	uint64_t where;       /* datagram: record index; stream: offset */
	uint64_t len;         /* stream: length of its range */
	int *copies;          /* capcr's copies of what it carries, in order */
	struct stat *st;
	size_t n;
};

/* A zero-length datagram or seqpacket message the scan met: once peeked,
 * the kernel's peek walk (SO_PEEK_OFF) skips it for ever, so the queue's
 * own read puts it back in its place from here. */
struct inflight_zero {
	ino_t sock;         /* the socket whose queue holds it */
	uint64_t index;     /* its place among the queue's messages */
	struct sockaddr_un from;
	socklen_t fromlen;
	int *copies;        /* what it carries in flight, or NULL */
	struct stat *st;
	size_t n;
};

/* The dump's: owned by fds.c, filled by unix_sock.c's queue reads. */
struct inflight_dump {
	int skip;             /* --skip-in-flight: dropped, with a warning */
	unsigned depth;       /* of the File being dumped: 0 one of the tree */
	size_t proc;          /* the process it was met in (fds.c's index) */
	unsigned long dropped;
	struct inflight_msg *msgs;
	size_t nmsgs, msgs_cap;
	struct inflight_obj *objs; /* the scan's */
	size_t nobjs, objs_cap;
	struct inflight_zero *zeros; /* the scan's */
	size_t nzeros, zeros_cap;
};

/* Before the dump: what the queue of the Unix socket copy carries in
 * flight (and, for sockets in flight, their queues, to the depth bound)
 * into d->objs.  0, or -1 with why. */
int inflight_scan(struct inflight_dump *d, int copy, char *why, size_t wl);
/* Is the object (dev, ino) in flight somewhere (after the scan)?  acc >= 0:
 * only a description open with another access mode (the other end of a
 * pipe). */
int inflight_has(const struct inflight_dump *d, dev_t dev, ino_t ino,
		 int other_acc);
/* The control messages of one peeked message of carrier's queue: the
 * descriptors in flight recorded (skip: closed, counted), a pidfd closed.
 * what names the socket for messages.  0, or -1 with env->why. */
int inflight_note(struct file_dump_env *env, struct msghdr *m,
		  Capcr__File *carrier, int stream, uint64_t where,
		  uint64_t len, const char *what);
/* The zero-length message the scan met at place index of the queue of
 * socket ino, if any: its sender's address into from, *fromlen, and what
 * it carries recorded as inflight_note does.  1 (there is one), 0, or -1
 * with env->why. */
int inflight_zero_at(struct file_dump_env *env, ino_t ino, uint64_t index,
		     Capcr__File *carrier, struct sockaddr_un *from,
		     socklen_t *fromlen, const char *what);
void inflight_dump_free(struct inflight_dump *d);

/* Restore: the order to make the Files in, each File carried in flight
 * before the socket whose queue carries it.  order: n_files entries.
 * 0, or -1 with why (a loop: a socket carrying itself). */
int inflight_order(const Capcr__Files *files, size_t *order, char *why,
		   size_t wl);
/* The entry of f for datagram record k, or for the stream range that
 * starts at offset k; NULL when none. */
const Capcr__InFlight *inflight_at(const Capcr__File *f, uint64_t k);
/* Send len bytes of buf on s (to: a datagram's address, or NULL) with
 * the Files of e as SCM_RIGHTS (e may be NULL).  Bytes sent, or -1 with
 * errno; why set when a File is not made. */
ssize_t inflight_send(struct file_restore_env *env, int s, const void *buf,
		      size_t len, const Capcr__InFlight *e, const void *to,
		      size_t tl);

#endif
