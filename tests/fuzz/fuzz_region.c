/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the monitor's reader of a target's region
 * (region_snapshot, src/monitor/region.c), which copies the region out of
 * the target and validates every field of it and of the cap-map entries
 * its badge pointers lead to.  The "target" is this process, as in
 * tests/unit/test_region.c: a region made by region_create is mapped here
 * and filled with the input; so are the cap-map entries.
 *
 * Input: a flags byte, a count byte, the 64-byte header, count array
 * entries (16 bytes each), then the bytes of up to 8 cap-map entries.
 * Flags: bit 0 keeps the input's magic, version and sizes (else they are
 * made right, so that the fuzzer gets past them), bit 1 keeps its pid,
 * bit 2 turns each badge pointer into an offset in the entries (else it
 * stays an arbitrary address).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capcr/capinfo.h"
#include "monitor/region.h"

#define NENT 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct capcr_capinfo_header *H;
static struct capcr_cap_entry *ENT;
static size_t used; /* bytes of the region the last input wrote */

static int setup(void)
{
	int fd = region_create(getpid(), 7ull << 32);

	if (fd < 0)
		return -1;
	H = mmap(NULL, CAPCR_CAPINFO_REGION_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	close(fd);
	ENT = mmap(NULL, NENT * sizeof(*ENT), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return H == MAP_FAILED || ENT == MAP_FAILED ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct region_snapshot s;

	if (!H && setup() < 0)
		abort();
	if (size < 2 + sizeof(*H))
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
	memset(H, 0, used);
	*H = h;
	struct capcr_cap_info *a = (struct capcr_cap_info *)(H + 1);
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
					 a[i].badge_ptr %
						 (NENT * sizeof(*ENT) + 64);
	memset(ENT, 0, NENT * sizeof(*ENT));
	memcpy(ENT, data, size < NENT * sizeof(*ENT) ? size
						     : NENT * sizeof(*ENT));
	/* Deadline 0: one attempt, no waiting on an odd sequence. */
	region_snapshot(getpid(), 0, &s);
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
