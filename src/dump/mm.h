/* SPDX-License-Identifier: MIT */
/*
 * What the memory dump (mm.c) and the live pre-copy (precopy.c) share:
 * reading the map of areas, finding the pages worth saving, and copying
 * them out of the target into a pages file.
 */
#ifndef CAPCR_DUMP_MM_H
#define CAPCR_DUMP_MM_H

#include "dump.h"
#include "pagemap.h"
#include "../pages/page_xfer.h"

#define PAGE 4096ULL

/* One area, from its line in /proc/PID/maps or smaps (and smaps' flags). */
struct smaps_vma {
	uint64_t start, end, pgoff, ino;
	char perms[8];
	char path[4096];
	uint32_t madv;
	int growsdown;
	int noreserve;
};

/* Parse the head line of an area into v (cleared first): 1 if line is
 * one, else 0 (an smaps field line). */
int mm_parse_head(const char *line, struct smaps_vma *v);
/* Read smaps' "VmFlags:" line into v. */
void mm_parse_vmflags(const char *line, struct smaps_vma *v);
/* What kind of area v is, and so how its pages are saved. */
Capcr__VmaKind mm_vma_kind(const struct smaps_vma *v);
/*
 * The runs of [start, end) worth saving for an area of this kind, merged
 * where adjacent.  With MM_SCAN_WRITTEN, each run's categories tell
 * whether it was written since it was write-protected (PAGE_IS_WRITTEN),
 * and runs that differ in that stay apart; with MM_SCAN_PROTECT, the runs
 * found are write-protected (userfaultfd async mode) by the same call, and
 * nothing else is.  0, or -1 with ctx->why set.
 */
#define MM_SCAN_WRITTEN 1
#define MM_SCAN_PROTECT 2
int mm_scan(struct dump_ctx *ctx, int pmfd, Capcr__VmaKind kind,
	    uint64_t start, uint64_t end, int how,
	    struct page_region **out, size_t *n);
/* Copy [start, end) of the target into the sink x: 0, -1 with ctx->why
 * set, or -2 when the sink failed (page_xfer_finish says why).  readable:
 * the target itself may read the area. */
int mm_copy(struct dump_ctx *ctx, struct page_xfer *x, uint64_t start,
	    uint64_t end, int readable);

/* A Vma of the image for area v (no runs yet). */
Capcr__Vma *mm_new_vma(struct dump_ctx *ctx, const struct smaps_vma *v);

/* Where the unwritten pages of an area may be found instead of copied
 * again (runs scanned with MM_SCAN_WRITTEN): the pre-copy of dump -R, or
 * the parent image's copy of the area (page_parent.h). */
struct precopy;
struct mm_from {
	struct precopy *pre;
	const Capcr__Vma *parent;
	int running; /* the process runs: a run unmapped meanwhile is left
		      * out (the next dump copies it) */
};
/* Save the runs of vma found by mm_scan into x (from: NULL, or where
 * unwritten pages are): 0, -1 with ctx->why set, -2 when x failed. */
int mm_save_runs(struct dump_ctx *ctx, struct page_xfer *x,
		 const struct mm_from *from, Capcr__Vma *vma,
		 const struct page_region *runs, size_t n);

#endif
