/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "region.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/pd_proto.h"

int region_create(pid_t pid, uint64_t badge_base)
{
	struct capcr_capinfo_header *h;
	int fd = memfd_create(CAPCR_CAPINFO_MEMFD_NAME,
			      MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, CAPCR_CAPINFO_REGION_SIZE) < 0)
		goto fail;
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		goto fail;
	*h = (struct capcr_capinfo_header){
		.magic = CAPCR_CAPINFO_MAGIC,
		.abi_version = CAPCR_CAPINFO_ABI_VERSION,
		.header_size = sizeof(struct capcr_capinfo_header),
		.entry_size = sizeof(struct capcr_cap_info),
		.capmap_entry_size = sizeof(struct capcr_cap_entry),
		.region_size = CAPCR_CAPINFO_REGION_SIZE,
		.capacity = CAPCR_CAPINFO_CAPACITY,
		.badge_base = badge_base,
		.pid = pid,
	};
	munmap(h, sizeof(*h));
	/* The target must not be able to shrink the region under a reader
	 * (SIGBUS) or grow it. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* The target's mappings, to check that pointers stay inside them. */
struct maps {
	struct {
		uint64_t start, end;
	} *r;
	size_t n;
	uint64_t region_start, region_end;
	int nregions;
};

static int read_maps(pid_t pid, struct maps *m)
{
	char path[64], line[512];
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		uint64_t s, e;
		char perms[8];
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &s, &e, perms) !=
		    3)
			continue;
		if (strstr(line, "/memfd:" CAPCR_CAPINFO_MEMFD_NAME " ")) {
			if (!m->nregions++) {
				m->region_start = s;
				m->region_end = e;
			}
			continue;
		}
		if (perms[0] != 'r')
			continue;
		void *nr = realloc(m->r, (m->n + 1) * sizeof(*m->r));
		if (!nr)
			break;
		m->r = nr;
		m->r[m->n].start = s;
		m->r[m->n].end = e;
		m->n++;
	}
	fclose(f);
	return 0;
}

static int in_maps(const struct maps *m, uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (addr >= m->r[i].start && addr + len <= m->r[i].end &&
		    addr + len > addr)
			return 1;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int check_header(const struct capcr_capinfo_header *h, pid_t pid,
			char *why, size_t n)
{
	if (h->magic != CAPCR_CAPINFO_MAGIC)
		snprintf(why, n, "bad magic %#" PRIx64, h->magic);
	else if (h->abi_version != CAPCR_CAPINFO_ABI_VERSION)
		snprintf(why, n, "ABI version %u, this capcr reads %u",
			 h->abi_version, CAPCR_CAPINFO_ABI_VERSION);
	else if (h->header_size != sizeof(*h) ||
		 h->entry_size != sizeof(struct capcr_cap_info) ||
		 h->capmap_entry_size != sizeof(struct capcr_cap_entry) ||
		 h->region_size != CAPCR_CAPINFO_REGION_SIZE ||
		 h->capacity != CAPCR_CAPINFO_CAPACITY)
		snprintf(why, n, "sizes in the header do not match the ABI");
	else if (h->count > h->capacity)
		snprintf(why, n, "count %u is beyond capacity %u", h->count,
			 h->capacity);
	else if (h->pid != pid)
		snprintf(why, n, "region was handed to PID %d, not %d", h->pid,
			 pid);
	else
		return 0;
	return -1;
}

/* Read the cap-map entries the array points at, in one system call. */
static void read_entries(pid_t pid, const struct maps *m, struct region_cap *c,
			 unsigned n)
{
	const unsigned batch = 512; /* below IOV_MAX */
	for (unsigned base = 0; base < n; base += batch) {
		unsigned cnt = n - base < batch ? n - base : batch;
		struct iovec local[batch], remote[batch];
		unsigned k = 0, idx[batch];
		for (unsigned i = 0; i < cnt; i++) {
			struct region_cap *rc = &c[base + i];
			rc->have_entry = 0;
			if (!rc->badge_ptr || rc->badge_ptr % 8 ||
			    !in_maps(m, rc->badge_ptr, sizeof(rc->entry)))
				continue;
			local[k].iov_base = &rc->entry;
			local[k].iov_len = sizeof(rc->entry);
			remote[k].iov_base = (void *)(uintptr_t)rc->badge_ptr;
			remote[k].iov_len = sizeof(rc->entry);
			idx[k++] = base + i;
		}
		if (!k)
			continue;
		ssize_t got = process_vm_readv(pid, local, k, remote, k, 0);
		/* Partial reads stop at the first fault: count whole ones. */
		for (unsigned i = 0; got > 0 && i < k;
		     i++, got -= (ssize_t)sizeof(c->entry))
			if (got >= (ssize_t)sizeof(c->entry))
				c[idx[i]].have_entry = 1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct capcr_cap_entry *e = &c[i].entry;
		if (!c[i].have_entry)
			continue;
		/* Entries the target wrote are as untrusted as the rest. */
		if (!e->badge || e->kcap != c[i].fd) {
			c[i].have_entry = 0;
			continue;
		}
		e->path[sizeof(e->path) - 1] = 0;
		if (e->local_len > CAPCR_ADDR_MAX)
			e->local_len = 0;
		if (e->peer_len > CAPCR_ADDR_MAX)
			e->peer_len = 0;
	}
}

/* ipc mode: the monitor holds the region; ask it for a copy. */
static int query_monitor(pid_t pid, int deadline_ms)
{
	char path[64], *env = NULL, *name = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (getdelim(&env, &len, 0, f) > 0)
		if (!strncmp(env, CAPCR_PD_ENV "=", sizeof(CAPCR_PD_ENV))) {
			name = strdup(env + sizeof(CAPCR_PD_ENV));
			break;
		}
	free(env);
	fclose(f);
	if (!name)
		return -1;
	int ret = -1, fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strnlen(name, CAPCR_PD_NAME_MAX);
	memcpy(sa.sun_path + 1, name, n);
	free(name);
	struct timeval tv = { .tv_sec = deadline_ms / 1000,
			      .tv_usec = (deadline_ms % 1000) * 1000 };
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa,
		    offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0)
		goto out;
	struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
				       .op = CAPCR_PD_QUERY, .pid = pid };
	if (send(fd, &rq, sizeof(rq), MSG_NOSIGNAL) != sizeof(rq))
		goto out;
	struct capcr_pd_reply rp;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cm;
	struct iovec iov = { &rp, sizeof(rp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	if (recvmsg(fd, &mh, MSG_CMSG_CLOEXEC) != sizeof(rp) ||
	    rp.status != 0)
		goto out;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		goto out;
	memcpy(&ret, CMSG_DATA(c), sizeof(int));
out:
	close(fd);
	return ret;
}

void region_snapshot(pid_t pid, int deadline_ms, struct region_snapshot *s)
{
	struct capcr_cap_info *arr = NULL;
	struct maps m;
	char path[64];
	int memfd = -1, src = -1;
	uint64_t base = 0;
	int64_t deadline = now_ms() + deadline_ms;

	memset(s, 0, sizeof(*s));
	if (read_maps(pid, &m) < 0) {
		snprintf(s->problem, sizeof(s->problem),
			 "cannot read /proc/%d/maps: %s", pid, strerror(errno));
		return;
	}
	if (m.nregions) {
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		src = open(path, O_RDONLY | O_CLOEXEC);
		base = m.region_start;
		s->addr = base;
		if (src < 0) {
			s->found = 1;
			snprintf(s->problem, sizeof(s->problem),
				 "cannot read /proc/%d/mem: %s (run as root "
				 "or as the target's user)",
				 pid, strerror(errno));
			goto out;
		}
		if (m.region_end - m.region_start < CAPCR_CAPINFO_REGION_SIZE) {
			s->found = 1;
			snprintf(s->problem, sizeof(s->problem),
				 "region mapping is %" PRIu64 " bytes, not %u",
				 m.region_end - m.region_start,
				 CAPCR_CAPINFO_REGION_SIZE);
			goto out;
		}
	} else {
		memfd = query_monitor(pid, deadline_ms);
		if (memfd < 0)
			goto out; /* not monitored */
		src = memfd;
		s->via_ipc = 1;
	}
	s->found = 1;
	arr = malloc(CAPCR_CAPINFO_REGION_SIZE);
	if (!arr) {
		snprintf(s->problem, sizeof(s->problem), "out of memory");
		goto out;
	}
	/* The table as large as the region says, not its capacity: a
	 * snapshot is taken per process of every dump and `caps`. */
	size_t have = 0;
	for (unsigned attempt = 0;; attempt++) {
		struct capcr_capinfo_header h1, h2;
		if (attempt && now_ms() >= deadline) {
			snprintf(s->problem, sizeof(s->problem),
				 "region did not hold still for %d ms (sequence "
				 "%" PRIu64 "%s): the target may be stopped or "
				 "have died inside an update, or be updating "
				 "without pause",
				 deadline_ms, s->header.seq,
				 s->header.seq & 1 ? ", mid-update" : "");
			goto out;
		}
		if (attempt)
			usleep(attempt < 10 ? 100 : 2000);
		if (pread(src, &h1, sizeof(h1), (off_t)base) != sizeof(h1)) {
			snprintf(s->problem, sizeof(s->problem),
				 "cannot read the region: %s",
				 strerror(errno));
			goto out;
		}
		s->header = h1;
		if (check_header(&h1, pid, s->problem, sizeof(s->problem)) < 0)
			goto out;
		if (h1.seq & 1)
			continue;
		if (h1.count > have) {
			free(s->caps);
			have = h1.count;
			if (!(s->caps = calloc(have, sizeof(*s->caps)))) {
				snprintf(s->problem, sizeof(s->problem),
					 "out of memory");
				goto out;
			}
		}
		size_t bytes = (size_t)h1.count * sizeof(*arr);
		if (pread(src, arr, bytes, (off_t)(base + h1.header_size)) !=
		    (ssize_t)bytes)
			continue;
		s->ncaps = 0;
		for (unsigned i = 0; i < h1.count; i++) {
			if (arr[i].kcap < 0 || arr[i].kind >= CAPCR_KIND_MAX)
				continue; /* garbage: the kernel tells */
			struct region_cap *rc = &s->caps[s->ncaps++];
			rc->fd = arr[i].kcap;
			rc->kind = arr[i].kind;
			rc->badge_ptr = arr[i].badge_ptr;
		}
		read_entries(pid, &m, s->caps, s->ncaps);
		if (pread(src, &h2, sizeof(h2), (off_t)base) != sizeof(h2))
			continue;
		if (h2.seq == h1.seq) {
			s->valid = 1;
			s->problem[0] = 0;
			if (s->ncaps != h1.count)
				snprintf(s->problem, sizeof(s->problem),
					 "%u of %u entries were malformed",
					 h1.count - s->ncaps, h1.count);
			break;
		}
	}
out:
	free(arr);
	free(m.r);
	if (src >= 0)
		close(src);
	if (!s->valid) {
		free(s->caps);
		s->caps = NULL;
		s->ncaps = 0;
	}
}

void region_snapshot_free(struct region_snapshot *s)
{
	free(s->caps);
	s->caps = NULL;
}
