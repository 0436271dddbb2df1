/* SPDX-License-Identifier: MIT */
/*
 * The monitor's reader of a region (region_snapshot), pointed at this very
 * process: a region made by region_create is mapped here the way a target
 * maps it, filled as a runtime would fill it -- and then as a broken or
 * hostile one would.  Under `make SAN=1` this runs with ASan/UBSan, so any
 * out-of-bounds read of what the "target" wrote is caught.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "capcr/capinfo.h"
#include "monitor/region.h"

#define DEADLINE 300

static struct capcr_capinfo_header *H;
static struct capcr_cap_info *A;
/* The "cap map": entries the array's badge pointers lead to, in one
 * anonymous mapping as the runtime keeps them (the reader accepts an entry
 * only if it lies inside one mapping; a static array could straddle the
 * boundary between .data and .bss). */
static struct capcr_cap_entry *ENT;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A fresh region, mapped here, with n well-formed entries (fds 3..). */
static int setup(void **state)
{
	(void)state;
	int fd = region_create(getpid(), 7ull << 32);
	if (fd < 0)
		return -1;
	H = mmap(NULL, CAPCR_CAPINFO_REGION_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	close(fd);
	if (H == MAP_FAILED)
		return -1;
	A = (struct capcr_cap_info *)(H + 1);
	if (!ENT) {
		ENT = mmap(NULL, 8 * sizeof(*ENT), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ENT == MAP_FAILED)
			return -1;
	}
	memset(ENT, 0, 8 * sizeof(*ENT));
	for (int i = 0; i < 4; i++) {
		ENT[i].badge = (7ull << 32) + 1 + (uint64_t)i;
		ENT[i].kcap = 3 + i;
		ENT[i].kind = CAPCR_KIND_FILE;
		ENT[i].origin = CAPCR_ORIGIN_OPEN;
		snprintf(ENT[i].path, sizeof(ENT[i].path), "/tmp/f%d", i);
		A[i].kcap = 3 + i;
		A[i].kind = CAPCR_KIND_FILE;
		A[i].badge_ptr = (uint64_t)(uintptr_t)&ENT[i].badge;
	}
	H->count = 4;
	H->seq = 2;
	H->flags = CAPCR_CAPINFO_F_COMPLETE;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (H && H != MAP_FAILED)
		munmap(H, CAPCR_CAPINFO_REGION_SIZE);
	H = NULL;
	return 0;
}

static void snap(struct region_snapshot *s)
{
	region_snapshot(getpid(), DEADLINE, s);
}

static void reads_a_good_region(void **state)
{
	(void)state;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.found);
	assert_true(s.valid);
	assert_string_equal(s.problem, "");
	assert_false(s.via_ipc);
	assert_true(s.addr == (uint64_t)(uintptr_t)H);
	assert_int_equal(s.ncaps, 4);
	assert_true(s.header.seq == 2);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(s.caps[i].fd, 3 + (int)i);
		assert_int_equal(s.caps[i].kind, CAPCR_KIND_FILE);
		assert_true(s.caps[i].have_entry);
		assert_true(s.caps[i].entry.badge == ENT[i].badge);
		assert_string_equal(s.caps[i].entry.path, ENT[i].path);
	}
	region_snapshot_free(&s);
}

static void empty_region(void **state)
{
	(void)state;
	H->count = 0;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.found && s.valid);
	assert_int_equal(s.ncaps, 0);
	region_snapshot_free(&s);
}

static void full_region(void **state)
{
	(void)state;
	/* Every slot used, all pointing at one entry: only the first
	 * matches its kcap. */
	for (uint32_t i = 0; i < CAPCR_CAPINFO_CAPACITY; i++) {
		A[i].kcap = (int32_t)(3 + i);
		A[i].kind = CAPCR_KIND_FILE;
		A[i].badge_ptr = (uint64_t)(uintptr_t)&ENT[0];
	}
	H->count = CAPCR_CAPINFO_CAPACITY;
	struct region_snapshot s;
	int64_t t0 = now_ms();
	snap(&s);
	assert_true(now_ms() - t0 < 1000);
	assert_true(s.found && s.valid);
	assert_int_equal(s.ncaps, CAPCR_CAPINFO_CAPACITY);
	assert_true(s.caps[0].have_entry);
	for (unsigned i = 1; i < s.ncaps; i++)
		assert_false(s.caps[i].have_entry);
	region_snapshot_free(&s);
}

/* Each broken header: found, not valid, a problem named, no caps. */
static void expect_untrusted(const char *needle)
{
	struct region_snapshot s;
	int64_t t0 = now_ms();
	snap(&s);
	int64_t took = now_ms() - t0;
	assert_true(s.found);
	assert_false(s.valid);
	assert_int_equal(s.ncaps, 0);
	assert_null(s.caps);
	if (!strstr(s.problem, needle))
		fail_msg("problem \"%s\" does not mention \"%s\"", s.problem,
			 needle);
	assert_true(took < DEADLINE + 500);
	region_snapshot_free(&s);
}

static void bad_magic(void **state)
{
	(void)state;
	H->magic ^= 1;
	expect_untrusted("magic");
}

static void bad_version(void **state)
{
	(void)state;
	H->abi_version = 2;
	expect_untrusted("ABI version");
}

static void bad_sizes(void **state)
{
	(void)state;
	const size_t offs[] = {
		offsetof(struct capcr_capinfo_header, header_size),
		offsetof(struct capcr_capinfo_header, entry_size),
		offsetof(struct capcr_capinfo_header, capmap_entry_size),
	};
	for (size_t i = 0; i < 3; i++) {
		uint16_t *f = (uint16_t *)((char *)H + offs[i]);
		uint16_t old = *f;
		*f = (uint16_t)(old + 8);
		expect_untrusted("sizes");
		*f = old;
	}
	H->region_size = 1u << 30;
	expect_untrusted("sizes");
	H->region_size = CAPCR_CAPINFO_REGION_SIZE;
	H->capacity = 1u << 30;
	expect_untrusted("sizes");
}

static void count_beyond_capacity(void **state)
{
	(void)state;
	H->count = CAPCR_CAPINFO_CAPACITY + 1;
	expect_untrusted("capacity");
	H->count = 0xffffffffu;
	expect_untrusted("capacity");
}

static void other_pid(void **state)
{
	(void)state;
	H->pid = getpid() + 1;
	expect_untrusted("PID");
}

static void stuck_mid_update(void **state)
{
	(void)state;
	H->seq = 3;
	H->lock = 1;
	int64_t t0 = now_ms();
	expect_untrusted("");
	/* It waited for the deadline, not forever and not not at all. */
	assert_true(now_ms() - t0 >= DEADLINE - 20);
}

/* A writer that keeps changing the region: seq always even when read, but
 * never the same twice. */
static volatile int spin_on;
static void *spinner(void *arg)
{
	(void)arg;
	while (spin_on)
		__atomic_add_fetch(&H->seq, 2, __ATOMIC_RELEASE);
	return NULL;
}

static void never_settles(void **state)
{
	(void)state;
	pthread_t t;
	spin_on = 1;
	pthread_create(&t, NULL, spinner, NULL);
	struct region_snapshot s;
	int64_t t0 = now_ms();
	snap(&s);
	int64_t took = now_ms() - t0;
	spin_on = 0;
	pthread_join(t, NULL);
	assert_true(took < DEADLINE + 500);
	if (s.valid) /* got lucky: then it must be right */
		assert_int_equal(s.ncaps, 4);
	else
		assert_true(s.problem[0]);
	region_snapshot_free(&s);
}

/*
 * A writer following the protocol (odd seq around every change) that
 * rewrites the whole array each time: k entries, all with kcap 1000 + k.
 * Every snapshot the reader calls valid must be one of those states.
 */
static void *honest_writer(void *arg)
{
	(void)arg;
	for (uint32_t round = 0; spin_on; round++) {
		uint32_t k = 1 + round % 200;
		__atomic_store_n(&H->seq, H->seq + 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		for (uint32_t i = 0; i < k; i++) {
			A[i].kcap = (int32_t)(1000 + k);
			A[i].kind = CAPCR_KIND_PIPE;
			A[i].badge_ptr = 0;
		}
		H->count = k;
		__atomic_store_n(&H->seq, H->seq + 1, __ATOMIC_RELEASE);
		/* Quiet spells, so that readers get through sometimes. */
		if (round % 4 == 0)
			usleep(50);
	}
	return NULL;
}

static void consistent_under_writes(void **state)
{
	(void)state;
	pthread_t t;
	int valid = 0;
	/* Start from a state of the writer's own: 1 entry, fd 1001. */
	A[0].kcap = 1001;
	H->count = 1;
	spin_on = 1;
	pthread_create(&t, NULL, honest_writer, NULL);
	int64_t end = now_ms() + 3000;
	for (int n = 0; n < 100 && (n < 5 || now_ms() < end); n++) {
		struct region_snapshot s;
		region_snapshot(getpid(), DEADLINE, &s);
		if (s.valid) {
			valid++;
			assert_true(s.ncaps >= 1 && s.ncaps <= 200);
			for (unsigned i = 0; i < s.ncaps; i++)
				if (s.caps[i].fd != (int)(1000 + s.ncaps))
					fail_msg("torn snapshot: %u caps, "
						 "slot %u has fd %d",
						 s.ncaps, i, s.caps[i].fd);
		}
		region_snapshot_free(&s);
	}
	spin_on = 0;
	pthread_join(t, NULL);
	assert_true(valid > 0);
}

static void malformed_array_elements(void **state)
{
	(void)state;
	A[0].kcap = -1;
	A[1].kind = CAPCR_KIND_MAX;
	A[2].kind = 0xffff;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.found && s.valid);
	assert_int_equal(s.ncaps, 1);
	assert_int_equal(s.caps[0].fd, 6);
	assert_non_null(strstr(s.problem, "malformed"));
	region_snapshot_free(&s);
}

static void bad_badge_pointers(void **state)
{
	(void)state;
	static char here[1024] __attribute__((aligned(8)));
	const uint64_t ptrs[] = {
		0,
		(uint64_t)(uintptr_t)&ENT[0] + 4,      /* misaligned */
		(uint64_t)(uintptr_t)H + 4096,         /* into the region */
		0xdead0000ull,                         /* unmapped */
		0xffffffffff600000ull,                 /* vsyscall/kernel */
		0xfffffffffffffff8ull,                 /* wraps around */
		(uint64_t)(uintptr_t)here,             /* garbage, kcap 0 */
	};
	const unsigned n = sizeof(ptrs) / sizeof(ptrs[0]);
	for (unsigned i = 0; i < n; i++) {
		A[i].kcap = 10 + (int)i;
		A[i].kind = CAPCR_KIND_FILE;
		A[i].badge_ptr = ptrs[i];
	}
	H->count = n;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.found && s.valid);
	assert_int_equal(s.ncaps, n);
	for (unsigned i = 0; i < n; i++)
		if (s.caps[i].have_entry)
			fail_msg("entry read through bad pointer %#llx",
				 (unsigned long long)ptrs[i]);
	region_snapshot_free(&s);
}

static void bad_entries(void **state)
{
	(void)state;
	ENT[0].kcap = 99;         /* does not match its slot */
	ENT[1].badge = 0;         /* "being written" */
	memset(ENT[2].path, 'x', sizeof(ENT[2].path)); /* no NUL */
	ENT[2].local_len = 0xffffffffu;
	ENT[2].peer_len = CAPCR_ADDR_MAX + 1;
	ENT[3].local_len = CAPCR_ADDR_MAX;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.found && s.valid);
	assert_int_equal(s.ncaps, 4);
	assert_false(s.caps[0].have_entry);
	assert_false(s.caps[1].have_entry);
	assert_true(s.caps[2].have_entry);
	assert_int_equal(strlen(s.caps[2].entry.path), CAPCR_ENTRY_PATH_MAX - 1);
	assert_int_equal(s.caps[2].entry.local_len, 0);
	assert_int_equal(s.caps[2].entry.peer_len, 0);
	assert_true(s.caps[3].have_entry);
	assert_int_equal(s.caps[3].entry.local_len, CAPCR_ADDR_MAX);
	region_snapshot_free(&s);
}

static void entry_at_the_end_of_a_mapping(void **state)
{
	(void)state;
	/* The 512 bytes behind the pointer run off a mapping: not read. */
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	munmap(m + pg, (size_t)pg);
	struct capcr_cap_entry *e =
		(struct capcr_cap_entry *)(m + pg - 256);
	e->badge = 1;
	e->kcap = 3;
	A[0].badge_ptr = (uint64_t)(uintptr_t)e;
	struct region_snapshot s;
	snap(&s);
	assert_true(s.valid);
	assert_false(s.caps[0].have_entry);
	assert_true(s.caps[1].have_entry);
	region_snapshot_free(&s);
	munmap(m, (size_t)pg);
}

static void no_region(void **state)
{
	(void)state;
	munmap(H, CAPCR_CAPINFO_REGION_SIZE);
	H = NULL;
	unsetenv("CAPCR_PD");
	struct region_snapshot s;
	snap(&s);
	assert_false(s.found);
	assert_false(s.valid);
	assert_int_equal(s.ncaps, 0);
	region_snapshot_free(&s);
}

static void region_too_small(void **state)
{
	(void)state;
	munmap(H, CAPCR_CAPINFO_REGION_SIZE);
	H = NULL;
	long fd = syscall(SYS_memfd_create, CAPCR_CAPINFO_MEMFD_NAME, 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate((int)fd, 4096), 0);
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		       (int)fd, 0);
	close((int)fd);
	assert_true(m != MAP_FAILED);
	expect_untrusted("bytes");
	munmap(m, 4096);
}

static void dead_process(void **state)
{
	(void)state;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	int st;
	waitpid(p, &st, 0);
	struct region_snapshot s;
	region_snapshot(p, DEADLINE, &s);
	assert_false(s.found);
	assert_false(s.valid);
	assert_true(s.problem[0]); /* says it cannot read the process */
	region_snapshot_free(&s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(reads_a_good_region),
		T(empty_region),
		T(full_region),
		T(bad_magic),
		T(bad_version),
		T(bad_sizes),
		T(count_beyond_capacity),
		T(other_pid),
		T(stuck_mid_update),
		T(never_settles),
		T(consistent_under_writes),
		T(malformed_array_elements),
		T(bad_badge_pointers),
		T(bad_entries),
		T(entry_at_the_end_of_a_mapping),
		T(no_region),
		T(region_too_small),
		T(dead_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
