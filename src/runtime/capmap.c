/* SPDX-License-Identifier: MIT */
/*
 * The cap map: the target's private table of what each descriptor is, one
 * struct capcr_cap_entry per descriptor number.
 *
 * Descriptor numbers can reach the hard RLIMIT_NOFILE (up to 2^20 by
 * default), so the map is two-level: a fixed directory of chunk pointers in
 * .bss and chunks of RT_CHUNK entries mapped on first use.  Chunks come from
 * mmap, not malloc, because entries are created from signal handlers and
 * from children forked by threaded parents.  A chunk is installed with a
 * compare-and-swap so two threads racing for it need no lock.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "rt.h"

#define RT_CHUNK 64 /* entries per chunk: 32 KiB */
#define RT_FD_LIMIT (1 << 20)
#define RT_DIR_SIZE (RT_FD_LIMIT / RT_CHUNK)
/* Each chunk: the entries, then each one's region index + 1 (0: not in
 * the region), kept apart so that rewriting an entry never touches the
 * index, which only the lock holder changes. */
#define RT_CHUNK_BYTES                                                       \
	(RT_CHUNK * sizeof(struct capcr_cap_entry) + RT_CHUNK * sizeof(uint32_t))

static struct capcr_cap_entry *rt_dir[RT_DIR_SIZE];

struct capcr_cap_entry *rt_entry(int fd, int create)
{
	struct capcr_cap_entry *chunk, *fresh = NULL;
	unsigned idx;

	if (fd < 0 || fd >= RT_FD_LIMIT)
		return NULL;
	idx = (unsigned)fd / RT_CHUNK;
	chunk = __atomic_load_n(&rt_dir[idx], __ATOMIC_ACQUIRE);
	if (RT_LIKELY(chunk))
		return &chunk[fd % RT_CHUNK];
	if (!create)
		return NULL;
	long p = RT_SYS6(SYS_mmap, 0, RT_CHUNK_BYTES,
			 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (p < 0 && p > -4096)
		return NULL;
	fresh = (struct capcr_cap_entry *)p;
	if (!__atomic_compare_exchange_n(&rt_dir[idx], &chunk, fresh, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		RT_SYS2(SYS_munmap, fresh, RT_CHUNK_BYTES);
		fresh = chunk;
	}
	return &fresh[fd % RT_CHUNK];
}

uint32_t *rt_slot_of(int fd)
{
	struct capcr_cap_entry *c;

	if (fd < 0 || fd >= RT_FD_LIMIT ||
	    !(c = __atomic_load_n(&rt_dir[fd / RT_CHUNK], __ATOMIC_ACQUIRE)))
		return NULL;
	return (uint32_t *)(c + RT_CHUNK) + fd % RT_CHUNK;
}

/*
 * Badges: badge_base (from the monitor, unique per region it hands out)
 * plus a per-process counter.  A dup or a fork keeps the badge of the
 * object it shares; only a new kernel object gets a new one.
 */
uint64_t rt_badge_new(void)
{
	uint64_t n = __atomic_add_fetch(&rt_att->badge_next, 1,
					__ATOMIC_RELAXED);
	return rt_att->badge_base + n;
}

void rt_capmap_each(rt_entry_fn fn, void *arg)
{
	for (unsigned i = 0; i < RT_DIR_SIZE; i++) {
		struct capcr_cap_entry *chunk =
			__atomic_load_n(&rt_dir[i], __ATOMIC_ACQUIRE);
		if (!chunk)
			continue;
		for (unsigned j = 0; j < RT_CHUNK; j++)
			if (chunk[j].badge)
				fn(&chunk[j], arg);
	}
}

static void clear_one(struct capcr_cap_entry *e, void *arg)
{
	(void)arg;
	e->badge = 0;
	*rt_slot_of(e->kcap) = 0;
}

void rt_capmap_clear_all(void)
{
	rt_capmap_each(clear_one, NULL);
}
