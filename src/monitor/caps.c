/* SPDX-License-Identifier: MIT */
/*
 * capcr caps: the live capability space of a process, from its region,
 * reconciled with the kernel's table.  Reads without stopping the process
 * and without asking it anything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/json.h"
#include "../common/log.h"
#include "../common/proc.h"
#include "commands.h"
#include "procfd.h"
#include "region.h"

/* Under a second in all, as the protocol promises for a stuck region. */
#define CAPS_DEADLINE_MS 300

static const char *origin_name(unsigned o)
{
	static const char *const n[CAPCR_ORIGIN_MAX] = {
		"unknown", "inherited",  "open",   "dup",
		"pipe",    "socket",     "socketpair", "accept",
		"received", "create",    "opendir", "temp",
	};
	return o < CAPCR_ORIGIN_MAX ? n[o] : "unknown";
}

static void format_addr(const uint8_t *a, uint32_t len, char *out, size_t n)
{
	sa_family_t fam;

	out[0] = 0;
	if (len < sizeof(fam))
		return;
	memcpy(&fam, a, sizeof(fam));
	if (fam == AF_UNIX) {
		const char *p = (const char *)a + offsetof(struct sockaddr_un,
							   sun_path);
		size_t pl = len - offsetof(struct sockaddr_un, sun_path);
		if (!pl)
			snprintf(out, n, "unix:(unnamed)");
		else if (p[0] == 0)
			snprintf(out, n, "unix:@%.*s", (int)pl - 1, p + 1);
		else
			snprintf(out, n, "unix:%.*s", (int)strnlen(p, pl), p);
	} else if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		char ip[INET_ADDRSTRLEN];
		memcpy(&sin, a, sizeof(sin));
		inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, ntohs(sin.sin_port));
	} else if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 s6;
		char ip[INET6_ADDRSTRLEN];
		memcpy(&s6, a, sizeof(s6));
		inet_ntop(AF_INET6, &s6.sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, ntohs(s6.sin6_port));
	} else {
		snprintf(out, n, "family %u", fam);
	}
}

/* One row: a descriptor the kernel has, the region reported, or both. */
struct row {
	int fd;
	const struct kfd *k;
	const struct region_cap *r;
};

static int rows_build(const struct kfd *k, int nk,
		      const struct region_snapshot *s, struct row **out)
{
	struct row *rows = calloc((size_t)nk + s->ncaps + 1, sizeof(*rows));
	int n = 0;

	if (!rows)
		return -1;
	for (int i = 0; i < nk; i++)
		rows[n++] = (struct row){ k[i].fd, &k[i], NULL };
	for (unsigned j = 0; j < s->ncaps; j++) {
		const struct region_cap *rc = &s->caps[j];
		int found = 0;
		for (int i = 0; i < nk; i++)
			if (rows[i].fd == rc->fd && !rows[i].r) {
				rows[i].r = rc;
				found = 1;
				break;
			}
		if (!found)
			rows[n++] = (struct row){ rc->fd, NULL, rc };
	}
	*out = rows;
	return n;
}

static int row_cmp(const void *a, const void *b)
{
	return ((const struct row *)a)->fd - ((const struct row *)b)->fd;
}

static unsigned row_kind(const struct row *w)
{
	if (w->k)
		return w->k->kind;
	if (w->r && w->r->have_entry && w->r->entry.kind)
		return w->r->entry.kind;
	return w->r ? w->r->kind : CAPCR_KIND_OTHER;
}

static const struct capcr_cap_entry *row_entry(const struct row *w)
{
	return w->r && w->r->have_entry ? &w->r->entry : NULL;
}

static void json_row(struct json *j, const struct row *w)
{
	const struct capcr_cap_entry *e = row_entry(w);
	char addr[160];

	json_obj_open(j, NULL);
	json_int(j, "fd", w->fd);
	json_str(j, "kind", capcr_kind_name(row_kind(w)));
	if (e)
		json_uint(j, "badge", e->badge);
	else
		json_null(j, "badge");
	json_bool(j, "reported", w->r != NULL);
	json_bool(j, "kernel", w->k != NULL);
	if (w->k) {
		json_str(j, "object", w->k->target);
		json_int(j, "pos", w->k->pos);
		json_uint(j, "flags", w->k->flags);
		json_bool(j, "cloexec", (w->k->flags & O_CLOEXEC) != 0);
	}
	if (e) {
		json_obj_open(j, "provenance");
		json_str(j, "origin", origin_name(e->origin));
		if (e->path[0])
			json_str(j, "path", e->path);
		if (e->state & CAPCR_ENTRY_TRUNCATED)
			json_bool(j, "path_truncated", 1);
		json_int(j, "flags", e->flags);
		if (e->mode)
			json_uint(j, "mode", e->mode);
		if (e->dirfd != -100)
			json_int(j, "dirfd", e->dirfd);
		if (e->kind == CAPCR_KIND_SOCKET) {
			json_int(j, "domain", e->domain);
			json_int(j, "type", e->type);
			json_int(j, "protocol", e->protocol);
			json_bool(j, "listening",
				  (e->state & CAPCR_ENTRY_LISTENING) != 0);
		}
		if (e->local_len) {
			format_addr(e->local_addr, e->local_len, addr,
				    sizeof(addr));
			json_str(j, "local", addr);
		}
		if (e->peer_len) {
			format_addr(e->peer_addr, e->peer_len, addr,
				    sizeof(addr));
			json_str(j, "peer", addr);
		}
		if (e->peer_badge)
			json_uint(j, "peer_badge", e->peer_badge);
		if (e->origin == CAPCR_ORIGIN_CREATE ||
		    e->origin == CAPCR_ORIGIN_PIPE ||
		    e->origin == CAPCR_ORIGIN_SOCKETPAIR)
			json_int(j, "arg", e->arg[0]);
		json_bool(j, "stdio", (e->state & CAPCR_ENTRY_STDIO) != 0);
		json_obj_close(j);
	}
	json_obj_close(j);
}

/* Names come from the target and the file system: a control character in
 * one must not reach the terminal as itself. */
static void print_escaped(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
}

static void plain_row(const struct row *w)
{
	const struct capcr_cap_entry *e = row_entry(w);
	char badge[24] = "-", what[512], addr[160];

	if (e)
		snprintf(badge, sizeof(badge), "%#" PRIx64, e->badge);
	what[0] = 0;
	if (e && e->kind == CAPCR_KIND_SOCKET &&
	    (e->local_len || e->peer_len)) {
		char l[160] = "", p[160] = "";
		format_addr(e->local_addr, e->local_len, l, sizeof(l));
		format_addr(e->peer_addr, e->peer_len, p, sizeof(p));
		snprintf(addr, sizeof(addr), "%s%s%s", l, *p ? " -> " : "", p);
		snprintf(what, sizeof(what), "%s", addr);
	} else if (e && e->path[0]) {
		snprintf(what, sizeof(what), "%s", e->path);
	}
	if (w->k && strcmp(what, w->k->target))
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 "%s[%s]", *what ? "  " : "", w->k->target);
	printf("%4d  %-8s  %-14s  %-3s  %-3s  %-10s  ", w->fd,
	       capcr_kind_name(row_kind(w)), badge, w->r ? "yes" : "no",
	       w->k ? "yes" : "no", e ? origin_name(e->origin) : "-");
	print_escaped(what);
	putchar('\n');
}

static void usage_caps(FILE *out)
{
	fprintf(out, "usage: capcr caps [--json] PID\n"
		     "  Show the capability space of process PID: what its\n"
		     "  region reports, reconciled with the kernel's table.\n");
}

int cmd_caps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = 1;
		} else if (c == 'h') {
			usage_caps(stdout);
			return 0;
		} else {
			usage_caps(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage_caps(stderr);
		return 2;
	}
	char *end;
	long pid = strtol(argv[optind], &end, 10);
	if (*end || pid <= 0 || pid > 0x3fffffff) {
		capcr_err("'%s' is not a process ID", argv[optind]);
		return 2;
	}

	struct kfd *k = NULL;
	int nk = procfd_list((pid_t)pid, &k);
	if (nk < 0) {
		int e = errno;
		if (e == ENOENT)
			capcr_err("no process with PID %ld", pid);
		else
			capcr_err("cannot read the descriptors of PID %ld: %s%s",
				  pid, strerror(e),
				  e == EACCES ? " (run as root or as the "
						"process's user)"
					      : "");
		return 1;
	}

	char state = proc_state((pid_t)pid, NULL);
	if (state == 'Z' || state == 'X') {
		capcr_err("process %ld has exited (a zombie, not yet reaped by "
			  "its parent): it holds no capabilities any more",
			  pid);
		free(k);
		return 1;
	}

	struct region_snapshot s;
	region_snapshot((pid_t)pid, CAPS_DEADLINE_MS, &s);
	if (s.found && !s.valid)
		capcr_warn("PID %ld: the capability-space region cannot be "
			   "trusted (%s); listing the kernel's table only",
			   pid, s.problem);
	else if (s.valid && s.problem[0])
		capcr_warn("PID %ld: %s", pid, s.problem);
	unsigned unreadable = 0;
	for (unsigned i = 0; s.valid && i < s.ncaps; i++)
		unreadable += !s.caps[i].have_entry;
	if (unreadable)
		capcr_warn("PID %ld: %u region entr%s point%s outside the "
			   "process's memory or at no valid cap-map entry; "
			   "their badges and provenance are unknown",
			   pid, unreadable, unreadable == 1 ? "y" : "ies",
			   unreadable == 1 ? "s" : "");
	if (s.valid && (s.header.flags & (CAPCR_CAPINFO_F_OVERFLOW |
					  CAPCR_CAPINFO_F_LOST)))
		capcr_warn("PID %ld: the region is incomplete (%s)", pid,
			   s.header.flags & CAPCR_CAPINFO_F_OVERFLOW
				   ? "more capabilities than capacity"
				   : "updates were lost in signal handlers");

	struct row *rows;
	int n = rows_build(k, nk, &s, &rows);
	if (n < 0) {
		capcr_err("out of memory");
		return 1;
	}
	qsort(rows, (size_t)n, sizeof(*rows), row_cmp);

	char comm[64] = "?", path[64];
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}

	if (json) {
		struct json j;
		json_begin(&j, stdout);
		json_obj_open(&j, NULL);
		json_int(&j, "pid", pid);
		json_str(&j, "comm", comm);
		json_bool(&j, "monitored", s.valid);
		if (s.found)
			json_str(&j, "region",
				 s.valid ? (s.via_ipc ? "ipc" : "shm")
					 : "untrusted");
		if (s.valid) {
			json_uint(&j, "seq", s.header.seq);
			json_uint(&j, "updates", s.header.updates);
			json_uint(&j, "region_flags", s.header.flags);
		}
		if (s.problem[0])
			json_str(&j, "problem", s.problem);
		json_arr_open(&j, "caps");
		for (int i = 0; i < n; i++)
			json_row(&j, &rows[i]);
		json_arr_close(&j);
		json_obj_close(&j);
		json_end(&j);
	} else {
		printf("PID %ld (", pid);
		print_escaped(comm);
		printf("): %s\n",
		       s.valid ? (s.via_ipc ? "monitored, region held by the "
					      "monitor (ipc)"
					    : "monitored, shared region")
		       : s.found ? "monitored, region untrusted"
				 : "not monitored (kernel's table only)");
		printf("%4s  %-8s  %-14s  %-3s  %-3s  %-10s  %s\n", "FD",
		       "KIND", "BADGE", "REP", "KER", "ORIGIN",
		       "PROVENANCE [KERNEL OBJECT]");
		for (int i = 0; i < n; i++)
			plain_row(&rows[i]);
	}
	for (int i = 0; i < n; i++)
		if (rows[i].r && !rows[i].k)
			capcr_warn("PID %ld: the region reports fd %d, which "
				   "the kernel does not have",
				   pid, rows[i].fd);
	free(rows);
	free(k);
	region_snapshot_free(&s);
	return 0;
}
