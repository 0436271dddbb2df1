/* SPDX-License-Identifier: MIT */
/*
 * Live pre-copy for `capcr dump -R`: most of each process's memory is
 * copied while it runs; the freeze then copies only what was written
 * since (precopy.c says how).
 */
#ifndef CAPCR_PRECOPY_H
#define CAPCR_PRECOPY_H

#include <stdint.h>
#include <sys/types.h>

#include "../image/image.h"
#include "../pages/page_xfer.h"

struct precopy;     /* one process's */
struct precopy_set; /* the tree's */

/* Copy the memory of the tree under root into its pages files in img
 * while it runs.  Best effort: a process that cannot be tracked (another
 * tracer, a seccomp filter, an old kernel) is left to the frozen dump, and
 * the reason is logged with -v.  NULL only without memory. */
struct precopy_set *precopy_run(struct image *img, pid_t root);
/* pid's pre-copy, if it has one that the final dump can go on from. */
struct precopy *precopy_find(struct precopy_set *s, pid_t pid);
/* The final dump takes over the sink the pre-copy wrote into: it
 * finishes it itself. */
struct page_xfer *precopy_claim(struct precopy *p);
/* Was the page at addr copied?  1: at *off in the pages file, the copy
 * going on up to *upto; 0: not, and *upto is where the next copied run
 * begins (UINT64_MAX if none). */
int precopy_lookup(const struct precopy *p, uint64_t addr, uint64_t *off,
		   uint64_t *upto);
struct smaps_vma;
/* The freeze reads /proc/PID/maps, not smaps, when the pre-copy knows the
 * areas: an area whose maps line is as it was then gets the flags smaps
 * showed then (1); 0 for an area not known, and then the freeze reads
 * smaps after all. */
int precopy_knows_areas(const struct precopy *p);
int precopy_area_flags(const struct precopy *p, const char *line,
		       struct smaps_vma *v);
/* Bytes copied while running, and how long that took. */
void precopy_stats(const struct precopy_set *s, uint64_t *bytes,
		   double *ms);
/* The processes of the tree under root as they are now, the root first
 * (the tree may change until a freeze finds it exactly): at most max. */
size_t precopy_tree(pid_t root, pid_t *out, size_t max);
/* Under a seccomp filter (or its status unreadable): an injected call
 * could kill it, so it is not armed for tracking. */
int precopy_filtered(pid_t pid);
/* Stop tracking writes (the kernel clears the protection of every page),
 * drop the sinks no final dump took, free everything. */
void precopy_end(struct precopy_set *s);

#endif
