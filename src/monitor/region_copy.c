/* SPDX-License-Identifier: MIT */
/* Copying a region out of a target that may be buggy or hostile, and
 * checking all of it; the I/O is the caller's (region_source.h). */
#define _GNU_SOURCE
#include "region_source.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int in_maps(const struct region_maps *m, uint64_t addr, uint64_t len)
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

/* Read the cap-map entries the array points at, in one call per batch. */
static void read_entries(const struct region_source *src, struct region_cap *c,
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
			    !in_maps(src->maps, rc->badge_ptr,
				     sizeof(rc->entry)))
				continue;
			local[k].iov_base = &rc->entry;
			local[k].iov_len = sizeof(rc->entry);
			remote[k].iov_base = (void *)(uintptr_t)rc->badge_ptr;
			remote[k].iov_len = sizeof(rc->entry);
			idx[k++] = base + i;
		}
		if (!k)
			continue;
		ssize_t got = src->readv(src, local, remote, k);
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

void region_copy(const struct region_source *src, int deadline_ms,
		 struct region_snapshot *s)
{
	struct capcr_cap_info *arr = NULL;
	int64_t deadline = now_ms() + deadline_ms;
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
			break;
		}
		if (attempt)
			usleep(attempt < 10 ? 100 : 2000);
		if (src->read(src, &h1, sizeof(h1), 0) != sizeof(h1)) {
			snprintf(s->problem, sizeof(s->problem),
				 "cannot read the region: %m");
			break;
		}
		s->header = h1;
		if (check_header(&h1, src->pid, s->problem,
				 sizeof(s->problem)) < 0)
			break;
		if (h1.seq & 1)
			continue;
		if (h1.count > have) {
			free(s->caps);
			free(arr);
			have = h1.count;
			s->caps = calloc(have, sizeof(*s->caps));
			arr = malloc(have * sizeof(*arr));
			if (!s->caps || !arr) {
				snprintf(s->problem, sizeof(s->problem),
					 "out of memory");
				break;
			}
		}
		size_t bytes = (size_t)h1.count * sizeof(*arr);
		if (bytes && src->read(src, arr, bytes, h1.header_size) !=
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
		read_entries(src, s->caps, s->ncaps);
		if (src->read(src, &h2, sizeof(h2), 0) != sizeof(h2))
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
	free(arr);
	if (!s->valid) {
		free(s->caps);
		s->caps = NULL;
		s->ncaps = 0;
	}
}
