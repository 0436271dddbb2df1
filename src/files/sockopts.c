/* SPDX-License-Identifier: MIT */
/*
 * Socket options: what a program set on a socket with setsockopt, saved
 * from the dump's copy of the socket and set again on the restored one,
 * for every kind of socket capcr restores (Unix, TCP, UDP).  See
 * sockopts.h for the API and docs/architecture.md ("Socket options").
 *
 * One table lists the options: their level, name, field of the image's
 * SockOpts message, how the value is read (an int, a flag, a struct
 * timeval, a struct linger, a name, a filter), which sockets they apply
 * to, and the phase of the restore they belong to.  The dump reads each
 * one that applies from the socket and from a new socket of the same
 * domain, type and protocol, and keeps it when the two differ.  The
 * restore walks the same table in its order: SO_REUSEADDR before the
 * bind, IP_TOS before SO_PRIORITY (setting IP_TOS changes the priority),
 * the filter last.
 */
#define _GNU_SOURCE
#include "sockopts.h"

#include <errno.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/fsuid.h>
#include <sys/time.h>
#include <unistd.h>

#include "files.h"

#ifndef SO_TIMESTAMP_OLD
#define SO_TIMESTAMP_OLD 29
#define SO_TIMESTAMPNS_OLD 35
#define SO_TIMESTAMP_NEW 63
#define SO_TIMESTAMPNS_NEW 64
#endif
#ifndef TCP_CA_NAME_MAX
#define TCP_CA_NAME_MAX 16
#endif

/* Which sockets an option applies to. */
enum {
	A_ANY,  /* SOL_SOCKET: every socket */
	A_INET, /* IPv4 and IPv6 (level SOL_IP / SOL_IPV6 by family) */
	A_IP4,  /* IPv4 only */
	A_IP6,  /* IPv6 only */
	A_TCP,  /* TCP over IPv4 or IPv6 */
};

/* How its value is read and set. */
enum {
	K_BOOL,   /* int, 0 or 1 */
	K_INT,    /* int32 */
	K_UINT,   /* uint32 */
	K_BUF,    /* SO_SNDBUF/SO_RCVBUF: half of what is read; FORCE set */
	K_TIMEO,  /* struct timeval: sec (int64) and usec (uint32) fields */
	K_LINGER, /* struct linger: linger_on and linger_sec */
	K_TSTAMP, /* SO_TIMESTAMP*: which of the four is on */
	K_NAME,   /* a name: SO_BINDTODEVICE, TCP_CONGESTION */
	K_FILTER, /* SO_ATTACH_FILTER (read with SO_GET_FILTER) */
};

struct opt {
	const char *name;
	int applies;
	int level;   /* for A_INET: the IPv4 level (SOL_IP) */
	int opt;     /* for A_INET: the IPv4 name */
	int opt6;    /* A_INET: the IPv6 name; K_BUF: the FORCE name */
	int kind;
	unsigned phase;
	size_t has;  /* offsetof the has_ field (K_NAME: unused) */
	size_t val;  /* offsetof the value */
	size_t aux;  /* K_TIMEO: usec, K_LINGER: linger_sec */
};

#define OFF(f) offsetof(Capcr__SockOpts, f)
#define HV(f) OFF(has_##f), OFF(f)
#define B SOCKOPTS_BEFORE_BIND
#define L SOCKOPTS_AFTER_CONNECT

/* In the order they are set. */
static const struct opt opts[] = {
	{ "SO_REUSEADDR", A_ANY, SOL_SOCKET, SO_REUSEADDR, 0, K_BOOL, B,
	  HV(reuseaddr), 0 },
	{ "SO_REUSEPORT", A_ANY, SOL_SOCKET, SO_REUSEPORT, 0, K_BOOL, B,
	  HV(reuseport), 0 },
	{ "IPV6_V6ONLY", A_IP6, SOL_IPV6, IPV6_V6ONLY, 0, K_BOOL, B,
	  HV(v6only), 0 },
	{ "IP_FREEBIND", A_INET, SOL_IP, IP_FREEBIND, IPV6_FREEBIND, K_BOOL, B,
	  HV(freebind), 0 },
	{ "IP_TRANSPARENT", A_INET, SOL_IP, IP_TRANSPARENT, IPV6_TRANSPARENT,
	  K_BOOL, B, HV(transparent), 0 },
	{ "SO_BINDTODEVICE", A_ANY, SOL_SOCKET, SO_BINDTODEVICE, 0, K_NAME, B,
	  0, OFF(bindtodevice), 0 },
	{ "SO_SNDBUF", A_ANY, SOL_SOCKET, SO_SNDBUF, SO_SNDBUFFORCE, K_BUF, B,
	  HV(sndbuf), 0 },
	{ "SO_RCVBUF", A_ANY, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, K_BUF, B,
	  HV(rcvbuf), 0 },
	{ "SO_MARK", A_ANY, SOL_SOCKET, SO_MARK, 0, K_UINT, B, HV(mark), 0 },
	{ "IP_TOS", A_IP4, SOL_IP, IP_TOS, 0, K_INT, B, HV(tos), 0 },
	{ "IPV6_TCLASS", A_IP6, SOL_IPV6, IPV6_TCLASS, 0, K_INT, B, HV(tclass),
	  0 },
	{ "SO_PRIORITY", A_ANY, SOL_SOCKET, SO_PRIORITY, 0, K_UINT, B,
	  HV(priority), 0 },
	{ "SO_DONTROUTE", A_ANY, SOL_SOCKET, SO_DONTROUTE, 0, K_BOOL, B,
	  HV(dontroute), 0 },
	{ "TCP_CONGESTION", A_TCP, SOL_TCP, TCP_CONGESTION, 0, K_NAME, B, 0,
	  OFF(congestion), 0 },
	{ "TCP_FASTOPEN", A_TCP, SOL_TCP, TCP_FASTOPEN, 0, K_INT, B,
	  HV(fastopen), 0 },
	{ "SO_RCVLOWAT", A_ANY, SOL_SOCKET, SO_RCVLOWAT, 0, K_INT, L,
	  HV(rcvlowat), 0 },
	{ "SO_RCVTIMEO", A_ANY, SOL_SOCKET, SO_RCVTIMEO, 0, K_TIMEO, L,
	  HV(rcvtimeo_sec), OFF(rcvtimeo_usec) },
	{ "SO_SNDTIMEO", A_ANY, SOL_SOCKET, SO_SNDTIMEO, 0, K_TIMEO, L,
	  HV(sndtimeo_sec), OFF(sndtimeo_usec) },
	{ "SO_KEEPALIVE", A_ANY, SOL_SOCKET, SO_KEEPALIVE, 0, K_BOOL, L,
	  HV(keepalive), 0 },
	{ "TCP_KEEPIDLE", A_TCP, SOL_TCP, TCP_KEEPIDLE, 0, K_INT, L,
	  HV(keepidle), 0 },
	{ "TCP_KEEPINTVL", A_TCP, SOL_TCP, TCP_KEEPINTVL, 0, K_INT, L,
	  HV(keepintvl), 0 },
	{ "TCP_KEEPCNT", A_TCP, SOL_TCP, TCP_KEEPCNT, 0, K_INT, L,
	  HV(keepcnt), 0 },
	{ "SO_LINGER", A_ANY, SOL_SOCKET, SO_LINGER, 0, K_LINGER, L,
	  HV(linger_on), OFF(linger_sec) },
	{ "SO_BROADCAST", A_ANY, SOL_SOCKET, SO_BROADCAST, 0, K_BOOL, L,
	  HV(broadcast), 0 },
	{ "SO_OOBINLINE", A_ANY, SOL_SOCKET, SO_OOBINLINE, 0, K_BOOL, L,
	  HV(oobinline), 0 },
	{ "SO_PASSCRED", A_ANY, SOL_SOCKET, SO_PASSCRED, 0, K_BOOL, L,
	  HV(passcred), 0 },
	{ "SO_PASSSEC", A_ANY, SOL_SOCKET, SO_PASSSEC, 0, K_BOOL, L,
	  HV(passsec), 0 },
	{ "SO_TIMESTAMP", A_ANY, SOL_SOCKET, 0, 0, K_TSTAMP, L, HV(timestamp),
	  0 },
	{ "SO_NO_CHECK", A_ANY, SOL_SOCKET, SO_NO_CHECK, 0, K_BOOL, L,
	  HV(no_check), 0 },
	{ "IP_TTL", A_IP4, SOL_IP, IP_TTL, 0, K_INT, L, HV(ttl), 0 },
	{ "IPV6_UNICAST_HOPS", A_IP6, SOL_IPV6, IPV6_UNICAST_HOPS, 0, K_INT, L,
	  HV(unicast_hops), 0 },
	{ "IP_PKTINFO", A_INET, SOL_IP, IP_PKTINFO, IPV6_RECVPKTINFO, K_BOOL, L,
	  HV(pktinfo), 0 },
	{ "IP_RECVERR", A_INET, SOL_IP, IP_RECVERR, IPV6_RECVERR, K_BOOL, L,
	  HV(recverr), 0 },
	{ "IP_MTU_DISCOVER", A_INET, SOL_IP, IP_MTU_DISCOVER, IPV6_MTU_DISCOVER,
	  K_INT, L, HV(mtu_discover), 0 },
	{ "TCP_NODELAY", A_TCP, SOL_TCP, TCP_NODELAY, 0, K_BOOL, L,
	  HV(nodelay), 0 },
	{ "TCP_CORK", A_TCP, SOL_TCP, TCP_CORK, 0, K_BOOL, L, HV(cork), 0 },
	{ "TCP_USER_TIMEOUT", A_TCP, SOL_TCP, TCP_USER_TIMEOUT, 0, K_UINT, L,
	  HV(user_timeout), 0 },
	{ "SO_ATTACH_FILTER", A_ANY, SOL_SOCKET, SO_ATTACH_FILTER, 0, K_FILTER,
	  SOCKOPTS_FILTER, HV(filter), 0 },
	{ "SO_LOCK_FILTER", A_ANY, SOL_SOCKET, SO_LOCK_FILTER, 0, K_BOOL,
	  SOCKOPTS_FILTER, HV(filter_locked), 0 },
};

#undef B
#undef L

static const int tstamps[] = { SO_TIMESTAMP_OLD, SO_TIMESTAMPNS_OLD,
			       SO_TIMESTAMP_NEW, SO_TIMESTAMPNS_NEW };

static int applies(const struct opt *o, int family, int type, int protocol)
{
	int inet = family == AF_INET || family == AF_INET6;

	switch (o->applies) {
	case A_ANY:
		return 1;
	case A_INET:
		return inet;
	case A_IP4:
		return family == AF_INET;
	case A_IP6:
		return family == AF_INET6;
	case A_TCP:
		return inet && type == SOCK_STREAM &&
		       (protocol == 0 || protocol == IPPROTO_TCP);
	}
	return 0;
}

static int level_of(const struct opt *o, int family)
{
	return o->applies == A_INET && family == AF_INET6 ? SOL_IPV6 : o->level;
}

static int name_of(const struct opt *o, int family)
{
	return o->applies == A_INET && family == AF_INET6 ? o->opt6 : o->opt;
}

/* Field access in a Capcr__SockOpts. */
#define FLD(m, off, type) ((type *)((char *)(m) + (off)))
#define CFLD(m, off, type) ((const type *)((const char *)(m) + (off)))

/* An option's value, read: ints in v[0..1], names and filters in blob
 * (malloc'd, len bytes). */
struct val {
	int64_t v[2];
	char *blob;
	size_t len;
};

/* Read o from sock into *x.  0; 1 when the option does not apply to
 * this socket (the kernel says so); -1 with errno. */
static int read_opt(int sock, const struct opt *o, int family, struct val *x)
{
	int lvl = level_of(o, family), nm = name_of(o, family), i = 0;
	socklen_t l = sizeof(i);

	memset(x, 0, sizeof(*x));
	switch (o->kind) {
	case K_TIMEO: {
		struct timeval tv;
		l = sizeof(tv);
		if (getsockopt(sock, lvl, nm, &tv, &l) < 0)
			break;
		x->v[0] = tv.tv_sec;
		x->v[1] = tv.tv_usec;
		return 0;
	}
	case K_LINGER: {
		struct linger lg;
		l = sizeof(lg);
		if (getsockopt(sock, lvl, nm, &lg, &l) < 0)
			break;
		x->v[0] = !!lg.l_onoff;
		x->v[1] = lg.l_linger;
		return 0;
	}
	case K_TSTAMP:
		for (size_t k = 0; k < sizeof(tstamps) / sizeof(tstamps[0]);
		     k++) {
			l = sizeof(i);
			i = 0;
			if (getsockopt(sock, lvl, tstamps[k], &i, &l) < 0)
				return errno == ENOPROTOOPT ? 1 : -1;
			if (i) {
				x->v[0] = tstamps[k];
				break;
			}
		}
		return 0;
	case K_NAME: {
		char name[64];
		l = sizeof(name) - 1;
		memset(name, 0, sizeof(name));
		if (getsockopt(sock, lvl, nm, name, &l) < 0)
			break;
		name[l < sizeof(name) ? l : sizeof(name) - 1] = 0;
		x->blob = strdup(name);
		if (!x->blob)
			return -1;
		x->len = strlen(name);
		return 0;
	}
	case K_FILTER: {
		/* The length first, in instructions. */
		l = 0;
		if (getsockopt(sock, lvl, SO_GET_FILTER, NULL, &l) < 0)
			break;
		if (!l)
			return 0;
		x->len = (size_t)l * sizeof(struct sock_filter);
		x->blob = calloc(1, x->len);
		if (!x->blob)
			return -1;
		if (getsockopt(sock, lvl, SO_GET_FILTER, x->blob, &l) < 0)
			break;
		x->len = (size_t)l * sizeof(struct sock_filter);
		return 0;
	}
	default:
		if (getsockopt(sock, lvl, nm, &i, &l) < 0)
			break;
		x->v[0] = o->kind == K_BOOL ? !!i
			  : o->kind == K_UINT ? (int64_t)(uint32_t)i
			  : o->kind == K_BUF  ? i / 2
					       : i;
		return 0;
	}
	free(x->blob);
	x->blob = NULL;
	/* Not an option of this socket's family, type or protocol. */
	if (errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EINVAL)
		return 1;
	return -1;
}

static int same(const struct opt *o, const struct val *a, const struct val *b)
{
	if (o->kind == K_NAME || o->kind == K_FILTER)
		return a->len == b->len &&
		       (!a->len || !memcmp(a->blob, b->blob, a->len));
	return a->v[0] == b->v[0] && a->v[1] == b->v[1];
}

static void keep(const struct opt *o, const struct val *x, struct arena *a,
		 Capcr__SockOpts *m)
{
	switch (o->kind) {
	case K_NAME:
		*FLD(m, o->val, char *) = arena_strdup(a, x->blob ? x->blob : "");
		return;
	case K_FILTER:
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		FLD(m, o->val, ProtobufCBinaryData)->len = x->len;
		FLD(m, o->val, ProtobufCBinaryData)->data =
			arena_memdup(a, x->blob, x->len);
		return;
	case K_TIMEO:
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		*FLD(m, o->val, int64_t) = x->v[0];
		*FLD(m, o->aux, uint32_t) = (uint32_t)x->v[1];
		/* the microseconds' has_ field goes with the seconds' */
		if (o->aux == OFF(rcvtimeo_usec))
			m->has_rcvtimeo_usec = 1;
		else
			m->has_sndtimeo_usec = 1;
		return;
	case K_LINGER:
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		*FLD(m, o->val, protobuf_c_boolean) = (protobuf_c_boolean)x->v[0];
		*FLD(m, o->aux, int32_t) = (int32_t)x->v[1];
		/* has_linger_sec goes with has_linger_on */
		m->has_linger_sec = 1;
		return;
	case K_BOOL:
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		*FLD(m, o->val, protobuf_c_boolean) = (protobuf_c_boolean)x->v[0];
		return;
	case K_INT:
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		*FLD(m, o->val, int32_t) = (int32_t)x->v[0];
		return;
	default: /* K_UINT, K_BUF, K_TSTAMP */
		*FLD(m, o->has, protobuf_c_boolean) = 1;
		*FLD(m, o->val, uint32_t) = (uint32_t)x->v[0];
		return;
	}
}

int sockopts_dump(int sock, int family, int type, int protocol,
		  unsigned flags, struct arena *a, Capcr__SockOpts **out,
		  const char *what, char *why, size_t wl)
{
	/* Always a message, empty when nothing differs: it says that the
	 * options were saved (an older image has none), so that what the
	 * restore does for its own sake (SO_REUSEADDR for the bind) is
	 * undone. */
	Capcr__SockOpts *m = ARENA_NEW(a, Capcr__SockOpts);
	int fresh, r = 0;

	*out = NULL;
	capcr__sock_opts__init(m);
	/* What a socket nobody touched has: the kernel's defaults, which
	 * differ by kind (TCP's buffers are not UDP's) and by sysctl. */
	fresh = socket(family, type | SOCK_CLOEXEC,
		       family == AF_UNIX ? 0 : protocol);
	if (fresh < 0)
		return files_fail(why, wl, "cannot make a socket like %s to "
					   "compare its options with: %s",
				  what, strerror(errno));
	for (size_t i = 0; !r && i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		struct val x, d;
		int k;

		if (!applies(o, family, type, protocol) ||
		    (o->kind == K_BUF && (flags & SOCKOPTS_DUMP_NO_BUFS)))
			continue;
		k = read_opt(sock, o, family, &x);
		if (k < 0) {
			if (o->kind == K_FILTER && errno == EACCES)
				r = files_fail(why, wl,
					       "%s has an eBPF socket filter "
					       "(SO_ATTACH_BPF), which capcr "
					       "cannot save",
					       what);
			else
				r = files_fail(why, wl,
					       "cannot read %s of %s: %s",
					       o->name, what, strerror(errno));
			break;
		}
		if (k > 0)
			continue;
		if (read_opt(fresh, o, family, &d) != 0)
			memset(&d, 0, sizeof(d));
		if (!same(o, &x, &d))
			keep(o, &x, a, m);
		free(x.blob);
		free(d.blob);
	}
	close(fresh);
	if (!r)
		*out = m;
	return r;
}

/* ---- restore ---- */

int sockopts_rights_drop(uid_t owner, gid_t group, struct sockopts_rights *r)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct none[2];

	r->dropped = 0;
	if (!owner)
		return 0;
	if (syscall(SYS_capget, &h, r->caps) < 0)
		return -1;
	/* The thread's own, not the process's: setfsuid and capset act on
	 * the calling thread only. */
	r->fsuid = setfsuid(owner);
	r->fsgid = setfsgid(group);
	for (int i = 0; i < 2; i++) {
		none[i].effective = 0;
		none[i].permitted = r->caps[i].permitted;
		none[i].inheritable = r->caps[i].inheritable;
	}
	if (syscall(SYS_capset, &h, none) < 0) {
		int e = errno;
		setfsgid((gid_t)r->fsgid);
		setfsuid((uid_t)r->fsuid);
		errno = e;
		return -1;
	}
	r->dropped = 1;
	return 0;
}

void sockopts_rights_back(struct sockopts_rights *r)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (!r->dropped)
		return;
	syscall(SYS_capset, &h, r->caps);
	setfsgid((gid_t)r->fsgid);
	setfsuid((uid_t)r->fsuid);
	r->dropped = 0;
}

/* The value of o in m for messages. */
static void describe(const struct opt *o, const Capcr__SockOpts *m,
		     char *out, size_t n)
{
	switch (o->kind) {
	case K_NAME:
		snprintf(out, n, "'%s'", *CFLD(m, o->val, char *const));
		return;
	case K_FILTER:
		snprintf(out, n, "of %zu instructions",
			 CFLD(m, o->val, ProtobufCBinaryData)->len /
				 sizeof(struct sock_filter));
		return;
	case K_TIMEO:
		snprintf(out, n, "%lld.%06u s",
			 (long long)*CFLD(m, o->val, int64_t),
			 *CFLD(m, o->aux, uint32_t));
		return;
	case K_LINGER:
		snprintf(out, n, "%s, %d s",
			 *CFLD(m, o->val, protobuf_c_boolean) ? "on" : "off",
			 *CFLD(m, o->aux, int32_t));
		return;
	case K_INT:
		snprintf(out, n, "%d", *CFLD(m, o->val, int32_t));
		return;
	case K_BOOL:
		snprintf(out, n, "%d", !!*CFLD(m, o->val, protobuf_c_boolean));
		return;
	default:
		snprintf(out, n, "%u", *CFLD(m, o->val, uint32_t));
	}
}

/* Set o from m on sock.  0 or -1 with errno. */
static int set_opt(int sock, const struct opt *o, const Capcr__SockOpts *m,
		   int family)
{
	int lvl = level_of(o, family), nm = name_of(o, family), i;

	switch (o->kind) {
	case K_NAME: {
		const char *s = *CFLD(m, o->val, char *const);
		return setsockopt(sock, lvl, nm, s, (socklen_t)strlen(s));
	}
	case K_FILTER: {
		const ProtobufCBinaryData *b = CFLD(m, o->val,
						    ProtobufCBinaryData);
		struct sock_fprog p = {
			.len = (unsigned short)(b->len /
						sizeof(struct sock_filter)),
			.filter = (struct sock_filter *)b->data,
		};
		return setsockopt(sock, lvl, nm, &p, sizeof(p));
	}
	case K_TIMEO: {
		struct timeval tv = {
			.tv_sec = (time_t)*CFLD(m, o->val, int64_t),
			.tv_usec = (suseconds_t)*CFLD(m, o->aux, uint32_t),
		};
		return setsockopt(sock, lvl, nm, &tv, sizeof(tv));
	}
	case K_LINGER: {
		struct linger lg = {
			.l_onoff = !!*CFLD(m, o->val, protobuf_c_boolean),
			.l_linger = m->has_linger_sec
					    ? *CFLD(m, o->aux, int32_t)
					    : 0,
		};
		return setsockopt(sock, lvl, nm, &lg, sizeof(lg));
	}
	case K_TSTAMP:
		i = 1;
		return setsockopt(sock, lvl,
				  (int)*CFLD(m, o->val, uint32_t), &i,
				  sizeof(i));
	case K_BUF:
		/* As CRIU: forced past the sysctl maximum, as root; with the
		 * owner's rights the kernel refuses, and the plain option
		 * caps the size as it did for the program. */
		i = (int)*CFLD(m, o->val, uint32_t);
		if (setsockopt(sock, lvl, o->opt6, &i, sizeof(i)) == 0)
			return 0;
		return setsockopt(sock, lvl, nm, &i, sizeof(i));
	case K_BOOL:
		i = !!*CFLD(m, o->val, protobuf_c_boolean);
		return setsockopt(sock, lvl, nm, &i, sizeof(i));
	default:
		i = *CFLD(m, o->val, int32_t);
		return setsockopt(sock, lvl, nm, &i, sizeof(i));
	}
}

static int present(const struct opt *o, const Capcr__SockOpts *m)
{
	if (o->kind == K_NAME)
		return *CFLD(m, o->val, char *const) != NULL;
	return *CFLD(m, o->has, protobuf_c_boolean) != 0;
}

int sockopts_restore(int sock, const Capcr__SockOpts *o, unsigned phases,
		     uid_t owner, const char *what, char *why, size_t wl)
{
	struct sockopts_rights rights;
	int family = 0, type = 0, protocol = 0, r = 0;
	socklen_t l = sizeof(int);

	if (!o)
		return 0;
	if (getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &family, &l) < 0 ||
	    (l = sizeof(int), getsockopt(sock, SOL_SOCKET, SO_TYPE, &type,
					 &l)) < 0 ||
	    (l = sizeof(int), getsockopt(sock, SOL_SOCKET, SO_PROTOCOL,
					 &protocol, &l)) < 0)
		return files_fail(why, wl, "cannot tell the kind of %s: %s",
				  what, strerror(errno));
	/* setsockopt does not look at the file-system ids: the group
	 * is left alone (-1) */
	if (sockopts_rights_drop(owner, (gid_t)-1, &rights) < 0)
		return files_fail(why, wl, "cannot take the rights of uid %u "
					   "to set the options of %s: %s",
				  (unsigned)owner, what, strerror(errno));
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *p = &opts[i];
		unsigned ph = p->phase;
		if (p->opt == SO_BINDTODEVICE && p->level == SOL_SOCKET &&
		    (phases & SOCKOPTS_DEVICE_LATE))
			ph = SOCKOPTS_AFTER_CONNECT;
		if (!(phases & ph) || !present(p, o) ||
		    !applies(p, family, type, protocol))
			continue;
		if (set_opt(sock, p, o, family) == 0)
			continue;
		int e = errno;
		char v[64], by[96] = "";
		describe(p, o, v, sizeof(v));
		if (owner)
			snprintf(by, sizeof(by),
				 " (set with the rights of uid %u, who owns "
				 "the image)",
				 (unsigned)owner);
		r = files_fail(why, wl, "cannot set %s %s on %s again: %s%s",
			       p->name, v, what, strerror(e), by);
		break;
	}
	sockopts_rights_back(&rights);
	return r;
}
