/* SPDX-License-Identifier: MIT */
/*
 * Task.cgroups, checked before restore acts on them.  A path is joined to
 * a cgroup mount and written to as root (cgroup.procs, property files,
 * mkdir), so it must stay inside its hierarchy: absolute, no empty, "."
 * or ".." component, no control character.  A property name is one of a
 * fixed list (never a file name the image chooses) and its value plain
 * digits, letters, blanks and '-', as the kernel shows them ("max 100000",
 * "-1").  Pure, as the rest of the validator.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate_cgroups.h"

/* More hierarchies than a kernel has controllers (about 14), with room
 * for named v1 hierarchies. */
#define CGROUPS_MAX 64
#define CONTROLLERS_MAX 255
#define PROPS_MAX 16
#define VALUE_MAX 64

static const char *const props_v2[] = { "memory.max", "memory.high",
					"pids.max", "cpu.max", "cpu.weight" };
static const char *const props_v1[] = { "memory.limit_in_bytes", "pids.max",
					"cpu.shares", "cpu.cfs_period_us",
					"cpu.cfs_quota_us" };

const char *const *cgroup_props(int v2, size_t *n)
{
	*n = v2 ? sizeof(props_v2) / sizeof(props_v2[0])
		: sizeof(props_v1) / sizeof(props_v1[0]);
	return v2 ? props_v2 : props_v1;
}

static int path_ok(const char *p)
{
	size_t n = strnlen(p, PATH_MAX);

	if (n >= PATH_MAX || p[0] != '/')
		return 0;
	if (n == 1)
		return 1;
	for (const char *c = p + 1;;) {
		size_t l = strcspn(c, "/");
		if (!l || (l == 1 && c[0] == '.') ||
		    (l == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		for (size_t k = 0; k < l; k++)
			if ((unsigned char)c[k] < 0x20 || c[k] == 0x7f)
				return 0;
		if (!c[l])
			return 1;
		c += l + 1;
	}
}

static int controllers_ok(const char *s)
{
	size_t n = strnlen(s, CONTROLLERS_MAX + 1);

	if (n > CONTROLLERS_MAX)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (!((s[k] >= 'a' && s[k] <= 'z') ||
		      (s[k] >= 'A' && s[k] <= 'Z') ||
		      (s[k] >= '0' && s[k] <= '9') || strchr("_=,.-", s[k])))
			return 0;
	return 1;
}

static int value_ok(const char *s)
{
	size_t n = strnlen(s, VALUE_MAX + 1);

	if (!n || n > VALUE_MAX)
		return 0;
	for (size_t k = 0; k < n; k++)
		if (!((s[k] >= 'a' && s[k] <= 'z') ||
		      (s[k] >= '0' && s[k] <= '9') || s[k] == ' ' ||
		      s[k] == '-'))
			return 0;
	return 1;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Each hierarchy once (restore would move the process twice), by id and
 * by controllers; sorted, not quadratic. */
static int each_once(const Capcr__Task *t, const char *file, char *why,
		     size_t wl)
{
	const char *names[CGROUPS_MAX];
	uint32_t ids[CGROUPS_MAX];
	size_t n = t->n_cgroups;

	for (size_t i = 0; i < n; i++) {
		names[i] = t->cgroups[i]->controllers;
		ids[i] = t->cgroups[i]->hierarchy;
	}
	qsort(names, n, sizeof(names[0]), by_str);
	qsort(ids, n, sizeof(ids[0]), by_u32);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(names[i], names[i - 1]) || ids[i] == ids[i - 1])
			return snprintf(why, wl, "%s: cgroups: hierarchy %u "
						 "(\"%s\") twice",
					file, ids[i], names[i]),
			       -1;
	return 0;
}

int validate_cgroups(const Capcr__Task *t, const char *file, char *why,
		     size_t wl)
{
	if (t->n_cgroups > CGROUPS_MAX)
		return snprintf(why, wl, "%s: cgroups: %zu hierarchies", file,
				t->n_cgroups),
		       -1;
	for (size_t i = 0; i < t->n_cgroups; i++) {
		const Capcr__Cgroup *g = t->cgroups[i];
		if (!g->controllers || !g->path)
			return snprintf(why, wl, "%s: cgroups[%zu]: no path",
					file, i),
			       -1;
		int v2 = !g->controllers[0];
		if (!controllers_ok(g->controllers) || g->hierarchy > 65535 ||
		    (g->hierarchy == 0) != v2)
			return snprintf(why, wl, "%s: cgroups[%zu]: hierarchy "
						 "%u with controllers \"%.64s\"",
					file, i, g->hierarchy, g->controllers),
			       -1;
		if (!path_ok(g->path))
			return snprintf(why, wl, "%s: cgroups[%zu]: path \"%.200s"
						 "\" is not a plain absolute "
						 "path",
					file, i, g->path),
			       -1;
		if (g->n_props > PROPS_MAX || (g->n_props && !g->path[1]))
			return snprintf(why, wl, "%s: cgroups[%zu]: %zu "
						 "properties of %s",
					file, i, g->n_props, g->path),
			       -1;
		size_t nk;
		const char *const *known = cgroup_props(v2, &nk);
		unsigned seen = 0;
		for (size_t k = 0; k < g->n_props; k++) {
			const Capcr__CgroupProp *p = g->props[k];
			size_t j = 0;
			if (!p->name || !p->value)
				return snprintf(why, wl, "%s: cgroups[%zu]."
							 "props[%zu]: empty",
						file, i, k),
				       -1;
			while (j < nk && strcmp(known[j], p->name))
				j++;
			if (j == nk || (seen & (1u << j)) || !value_ok(p->value))
				return snprintf(why, wl, "%s: cgroups[%zu]."
							 "props[%zu]: %.40s "
							 "\"%.80s\"",
						file, i, k, p->name, p->value),
				       -1;
			seen |= 1u << j;
		}
	}
	return each_once(t, file, why, wl);
}
