/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the monitor's reader of a target's region
 * (region_copy, src/monitor/region_copy.c), which copies the region out of
 * the target and validates every field of it and of the cap-map entries
 * its badge pointers lead to.  The "target" is a pair of buffers read
 * through a region_source, as /proc/PID/mem and process_vm_readv read the
 * real one (tests/unit/test_region.c covers that I/O): the region, filled
 * with the input, and the cap-map entries, the target's one mapping.
 *
 * Input: a flags byte, a count byte, the 64-byte header, count array
 * entries (16 bytes each), then the bytes of up to 8 cap-map entries.
 * Flags: bit 0 keeps the input's magic, version and sizes (else they are
 * made right, so that the fuzzer gets past them), bit 1 keeps its pid,
 * bit 2 turns each badge pointer into an offset in the entries (else it
 * stays an arbitrary address), bit 3 keeps a count beyond the entries
 * given (else it is cut to them).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capcr/capinfo.h"
#include "monitor/region_source.h"

#define NENT 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static union {
	struct capcr_capinfo_header h;
	unsigned char bytes[CAPCR_CAPINFO_REGION_SIZE];
} R;
static struct capcr_cap_entry ENT[NENT];
static size_t used; /* bytes of the region the last input wrote */

static ssize_t read_region(const struct region_source *src, void *buf,
			   size_t len, uint64_t off)
{
	(void)src;
	if (off > sizeof(R) || len > sizeof(R) - off)
		return -1;
	memcpy(buf, R.bytes + off, len);
	return (ssize_t)len;
}

/* process_vm_readv's rules: pieces in order, stop at the first one that
 * is not mapped, -1 when none was copied. */
static ssize_t read_target(const struct region_source *src,
			   const struct iovec *local, const struct iovec *remote,
			   unsigned n)
{
	uintptr_t lo = (uintptr_t)ENT, hi = lo + sizeof(ENT);
	ssize_t got = 0;
	(void)src;
	for (unsigned i = 0; i < n; i++) {
		uintptr_t a = (uintptr_t)remote[i].iov_base;
		size_t len = remote[i].iov_len;
		if (a < lo || a > hi || len > hi - a ||
		    local[i].iov_len < len)
			break;
		memcpy(local[i].iov_base, (void *)a, len);
		got += (ssize_t)len;
	}
	return got ? got : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct region_snapshot s;
	struct region_maps m = { .n = 1 };
	typeof(*m.r) one = { (uintptr_t)ENT, (uintptr_t)ENT + sizeof(ENT) };
	struct region_source src = { .pid = getpid(), .maps = &m,
				     .read = read_region,
				     .readv = read_target };

	m.r = &one;
	if (size < 2 + sizeof(R.h))
		return 0;
	unsigned flags = data[0], n = data[1];
	struct capcr_capinfo_header h;
	memcpy(&h, data + 2, sizeof(h));
	data += 2 + sizeof(h);
	size -= 2 + sizeof(h);
	if (!(flags & 1)) {
		h.magic = CAPCR_CAPINFO_MAGIC;
		h.abi_version = CAPCR_CAPINFO_ABI_VERSION;
		h.header_size = sizeof(h);
		h.entry_size = sizeof(struct capcr_cap_info);
		h.capmap_entry_size = sizeof(struct capcr_cap_entry);
		h.region_size = CAPCR_CAPINFO_REGION_SIZE;
		h.capacity = CAPCR_CAPINFO_CAPACITY;
	}
	if (!(flags & 2))
		h.pid = getpid();
	/* A count up to the capacity costs megabytes of copies per run;
	 * most runs keep it to the entries the input gave. */
	if (!(flags & 8) && h.count > n)
		h.count = n;
	memset(R.bytes, 0, used);
	R.h = h;
	struct capcr_cap_info *a = (struct capcr_cap_info *)(&R.h + 1);
	size_t bytes = (size_t)n * sizeof(*a);
	if (bytes > size)
		bytes = size / sizeof(*a) * sizeof(*a);
	memcpy(a, data, bytes);
	used = sizeof(h) + bytes;
	data += bytes;
	size -= bytes;
	if (flags & 4)
		for (size_t i = 0; i < bytes / sizeof(*a); i++)
			a[i].badge_ptr = (uint64_t)(uintptr_t)ENT +
					 a[i].badge_ptr % (sizeof(ENT) + 64);
	memset(ENT, 0, sizeof(ENT));
	memcpy(ENT, data, size < sizeof(ENT) ? size : sizeof(ENT));
	memset(&s, 0, sizeof(s));
	/* Deadline 0: one attempt, no waiting on an odd sequence. */
	region_copy(&src, 0, &s);
	for (unsigned i = 0; s.valid && i < s.ncaps; i++) {
		const struct capcr_cap_entry *e = &s.caps[i].entry;
		/* What a reader of the snapshot relies on. */
		if (s.caps[i].fd < 0 || s.caps[i].kind >= CAPCR_KIND_MAX)
			abort();
		if (s.caps[i].have_entry &&
		    (strnlen(e->path, sizeof(e->path)) == sizeof(e->path) ||
		     e->local_len > CAPCR_ADDR_MAX ||
		     e->peer_len > CAPCR_ADDR_MAX))
			abort();
	}
	region_snapshot_free(&s);
	return 0;
}
