/* SPDX-License-Identifier: MIT */
/* The validator's part for Task.cgroups (validate_cgroups.c), and the one
 * list of cgroup property files capcr records and sets. */
#ifndef CAPCR_VALIDATE_CGROUPS_H
#define CAPCR_VALIDATE_CGROUPS_H

#include <stddef.h>

#include "capcr.pb-c.h"

/* The property files capcr keeps, in the order they are set at restore
 * (a v1 period before its quota): the cgroup v2 ones when v2, else v1's.
 * *n gets their number. */
const char *const *cgroup_props(int v2, size_t *n);

/* Task.cgroups of t, from file (for the message): each hierarchy once, a
 * plain absolute path, known properties with plain values, none on a root
 * cgroup.  0, or -1 with why. */
int validate_cgroups(const Capcr__Task *t, const char *file, char *why,
		     size_t wl);

#endif
