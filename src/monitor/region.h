/* SPDX-License-Identifier: MIT */
/* The monitor's side of the region: handing one out, and reading one from a
 * target that may be buggy or hostile. */
#ifndef CAPCR_MONITOR_REGION_H
#define CAPCR_MONITOR_REGION_H

#include <stdint.h>
#include <sys/types.h>

#include "capcr/capinfo.h"

/* A new region for pid, as a sealed memfd; -1 with errno on failure. */
int region_create(pid_t pid, uint64_t badge_base);

/* One capability as the region reported it, validated. */
struct region_cap {
	int fd;
	unsigned kind;
	uint64_t badge_ptr;
	int have_entry;               /* the cap-map entry could be read */
	struct capcr_cap_entry entry; /* copied from the target */
};

struct region_snapshot {
	int found;           /* the process has a region */
	int valid;           /* ... and it could be read consistently */
	char problem[256];   /* why not, for the user */
	struct capcr_capinfo_header header;
	struct region_cap *caps;
	unsigned ncaps;
	uint64_t addr;       /* where the region is mapped in the target */
	int via_ipc;         /* read from the monitor's copy (ipc mode) */
};

/*
 * Read pid's region without stopping it or asking it anything: find the
 * mapping, copy it between two even, equal sequence numbers, validate every
 * field, follow each badge_ptr only into the target's own mappings.  Gives
 * up after deadline_ms.  Never fails hard: on any problem, found/valid and
 * problem say what happened and the caller lists the kernel's table.
 */
void region_snapshot(pid_t pid, int deadline_ms, struct region_snapshot *s);
void region_snapshot_free(struct region_snapshot *s);

#endif
