/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "region.h"
#include "region_source.h"

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

/* The target's readable mappings and where its region is mapped. */
int region_maps_read(pid_t pid, struct region_maps *m)
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

static ssize_t read_fd(const struct region_source *src, void *buf, size_t len,
		       uint64_t off)
{
	const int *fd = src->ctx;
	uint64_t base = src->maps->nregions ? src->maps->region_start : 0;
	return pread(*fd, buf, len, (off_t)(base + off));
}

static ssize_t read_target(const struct region_source *src,
			   const struct iovec *local, const struct iovec *remote,
			   unsigned n)
{
	return process_vm_readv(src->pid, local, n, remote, n, 0);
}

void region_snapshot(pid_t pid, int deadline_ms, struct region_snapshot *s)
{
	struct region_maps m;
	char path[64];
	int src = -1;

	memset(s, 0, sizeof(*s));
	if (region_maps_read(pid, &m) < 0) {
		snprintf(s->problem, sizeof(s->problem),
			 "cannot read /proc/%d/maps: %s", pid, strerror(errno));
		return;
	}
	if (m.nregions) {
		s->found = 1;
		s->addr = m.region_start;
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		src = open(path, O_RDONLY | O_CLOEXEC);
		if (src < 0) {
			snprintf(s->problem, sizeof(s->problem),
				 "cannot read /proc/%d/mem: %s (run as root "
				 "or as the target's user)",
				 pid, strerror(errno));
			goto out;
		}
		if (m.region_end - m.region_start < CAPCR_CAPINFO_REGION_SIZE) {
			snprintf(s->problem, sizeof(s->problem),
				 "region mapping is %" PRIu64 " bytes, not %u",
				 m.region_end - m.region_start,
				 CAPCR_CAPINFO_REGION_SIZE);
			goto out;
		}
	} else {
		src = query_monitor(pid, deadline_ms);
		if (src < 0)
			goto out; /* not monitored */
		s->found = 1;
		s->via_ipc = 1;
	}
	struct region_source rs = { .pid = pid, .maps = &m, .read = read_fd,
				    .readv = read_target, .ctx = &src };
	region_copy(&rs, deadline_ms, s);
out:
	free(m.r);
	if (src >= 0)
		close(src);
}

void region_snapshot_free(struct region_snapshot *s)
{
	free(s->caps);
	s->caps = NULL;
}
