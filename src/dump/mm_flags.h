/* SPDX-License-Identifier: MIT */
/* Mapping advice that /proc/PID/smaps shows in VmFlags and madvise() puts
 * back: the image's Vma.madv has bit n set when MADV_n was in effect. */
#ifndef CAPCR_MM_FLAGS_H
#define CAPCR_MM_FLAGS_H

#include <sys/mman.h>

static const struct {
	const char *vmflag;
	int bit; /* MADV_* */
} mm_madv_flags[] = {
	{ "dc", MADV_DONTFORK },  { "dd", MADV_DONTDUMP },
	{ "wf", MADV_WIPEONFORK }, { "hg", MADV_HUGEPAGE },
	{ "nh", MADV_NOHUGEPAGE }, { "mg", MADV_MERGEABLE },
};

#endif
