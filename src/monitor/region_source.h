/* SPDX-License-Identifier: MIT */
/*
 * What the monitor's region reader reads through.  region.c fills it from
 * the live target (/proc/PID/maps, /proc/PID/mem or the monitor's memfd,
 * process_vm_readv); the fuzzer (tests/fuzz/fuzz_region.c) fills it from
 * its own buffers, so that every check of region_copy runs at memory speed
 * and none of them can be skipped by the I/O around it.
 */
#ifndef CAPCR_MONITOR_REGION_SOURCE_H
#define CAPCR_MONITOR_REGION_SOURCE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "region.h"

/* The target's readable mappings, to keep badge pointers inside them. */
struct region_maps {
	struct {
		uint64_t start, end;
	} *r;
	size_t n;
	uint64_t region_start, region_end;
	int nregions;
};

struct region_source {
	pid_t pid;
	const struct region_maps *maps;
	/* Copy len bytes at offset off of the region; bytes copied or -1. */
	ssize_t (*read)(const struct region_source *src, void *buf, size_t len,
			uint64_t off);
	/* Copy n pieces of the target's memory, as process_vm_readv does. */
	ssize_t (*readv)(const struct region_source *src,
			 const struct iovec *local, const struct iovec *remote,
			 unsigned n);
	void *ctx;
};

int region_maps_read(pid_t pid, struct region_maps *m);

/*
 * Copy the table between two even, equal sequence numbers, validate every
 * field, follow each badge_ptr only into the target's own mappings.  Sets
 * s->valid, s->header, s->caps, s->ncaps and s->problem; gives up after
 * deadline_ms (0: one attempt).
 */
void region_copy(const struct region_source *src, int deadline_ms,
		 struct region_snapshot *s);

#endif
