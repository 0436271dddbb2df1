/* SPDX-License-Identifier: MIT */
/*
 * The capability-space ABI (include/capcr/capinfo.h): sizes, offsets and
 * constants a monitor built apart from its target relies on, and the region
 * the monitor hands out (region_create): a sealed memfd of the predefined
 * size whose header validates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "capcr/capinfo.h"
#include "monitor/region.h"

#define OFF(type, field, off) assert_int_equal(offsetof(type, field), off)

static void header_layout(void **state)
{
	(void)state;
	typedef struct capcr_capinfo_header H;
	assert_int_equal(sizeof(H), 64);
	OFF(H, magic, 0);
	OFF(H, abi_version, 8);
	OFF(H, header_size, 10);
	OFF(H, entry_size, 12);
	OFF(H, capmap_entry_size, 14);
	OFF(H, region_size, 16);
	OFF(H, capacity, 20);
	OFF(H, lock, 24);
	OFF(H, count, 28);
	OFF(H, seq, 32);
	OFF(H, badge_base, 40);
	OFF(H, pid, 48);
	OFF(H, flags, 52);
	OFF(H, updates, 56);
	H h;
	assert_int_equal(sizeof(h.magic), 8);
	assert_int_equal(sizeof(h.abi_version), 2);
	assert_int_equal(sizeof(h.lock), 4);
	assert_int_equal(sizeof(h.count), 4);
	assert_int_equal(sizeof(h.seq), 8);
	assert_int_equal(sizeof(h.pid), 4);
}

static void cap_info_layout(void **state)
{
	(void)state;
	typedef struct capcr_cap_info C;
	assert_int_equal(sizeof(C), 16);
	OFF(C, kcap, 0);
	OFF(C, kind, 4);
	OFF(C, reserved, 6);
	OFF(C, badge_ptr, 8);
	C c;
	assert_int_equal(sizeof(c.badge_ptr), 8);
	assert_int_equal(sizeof(c.kcap), 4);
}

static void cap_entry_layout(void **state)
{
	(void)state;
	typedef struct capcr_cap_entry E;
	assert_int_equal(sizeof(E), 512);
	OFF(E, badge, 0);
	OFF(E, peer_badge, 8);
	OFF(E, kcap, 16);
	OFF(E, kind, 20);
	OFF(E, origin, 22);
	OFF(E, flags, 24);
	OFF(E, mode, 28);
	OFF(E, domain, 32);
	OFF(E, type, 36);
	OFF(E, protocol, 40);
	OFF(E, dirfd, 44);
	OFF(E, arg, 48);
	OFF(E, state, 64);
	OFF(E, reserved, 68);
	OFF(E, local_len, 72);
	OFF(E, peer_len, 76);
	OFF(E, local_addr, 80);
	OFF(E, peer_addr, 208);
	OFF(E, path, 336);
	E e;
	assert_int_equal(sizeof(e.local_addr), CAPCR_ADDR_MAX);
	assert_int_equal(sizeof(e.peer_addr), CAPCR_ADDR_MAX);
	assert_int_equal(sizeof(e.path), CAPCR_ENTRY_PATH_MAX);
	assert_int_equal(CAPCR_ADDR_MAX, 128);
	assert_int_equal(CAPCR_ENTRY_PATH_MAX, 176);
	/* A badge is read with one aligned 8-byte load. */
	assert_int_equal(_Alignof(E) % 8, 0);
}

static void constants(void **state)
{
	(void)state;
	assert_int_equal(CAPCR_CAPINFO_REGION_SIZE, 256 * 1024);
	assert_int_equal(CAPCR_CAPINFO_CAPACITY, 16380);
	assert_int_equal(CAPCR_CAPINFO_CAPACITY,
			 (CAPCR_CAPINFO_REGION_SIZE - 64) / 16);
	/* The array fills the region exactly, header included. */
	assert_true(64 + CAPCR_CAPINFO_CAPACITY * 16 <=
		    CAPCR_CAPINFO_REGION_SIZE);
	assert_true(64 + (CAPCR_CAPINFO_CAPACITY + 1) * 16 >
		    CAPCR_CAPINFO_REGION_SIZE);
	assert_int_equal(CAPCR_CAPINFO_ABI_VERSION, 1);
	uint64_t m = CAPCR_CAPINFO_MAGIC;
	assert_memory_equal(&m, "CCAPINFO", 8); /* little-endian machine */
	assert_string_equal(CAPCR_CAPINFO_MEMFD_NAME, "capcr-capinfo");
	assert_int_equal(CAPCR_CAPINFO_F_COMPLETE, 1);
	assert_int_equal(CAPCR_CAPINFO_F_OVERFLOW, 2);
	assert_int_equal(CAPCR_CAPINFO_F_LOST, 4);
	assert_int_equal(CAPCR_KIND_MAX, 16);
	assert_int_equal(CAPCR_ORIGIN_MAX, 12);
	assert_int_equal(CAPCR_KIND_PIDFD, 13);
	assert_int_equal(CAPCR_ORIGIN_RECEIVED, 8);
	assert_int_equal(CAPCR_ENTRY_BOUND, 1);
	assert_int_equal(CAPCR_ENTRY_STDIO, 16);
}

static void kind_names(void **state)
{
	(void)state;
	static const char *want[] = {
		"other",    "file",    "file",   "dir",   "pipe",    "fifo",
		"socket",   "eventfd", "epoll",  "timerfd", "signalfd",
		"inotify",  "memfd",   "pidfd",  "chardev", "other",
	};
	for (unsigned k = 0; k < CAPCR_KIND_MAX; k++)
		assert_string_equal(capcr_kind_name(k), want[k]);
	assert_string_equal(capcr_kind_name(CAPCR_KIND_MAX), "other");
	assert_string_equal(capcr_kind_name(0xffffu), "other");
	assert_string_equal(capcr_kind_name(~0u), "other");
}

static void region_is_sealed_and_valid(void **state)
{
	(void)state;
	const uint64_t base = 0x1234ull << 32;
	int fd = region_create(4242, base);
	assert_true(fd >= 0);

	/* A memfd of the predefined size, named as the ABI says. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, CAPCR_CAPINFO_REGION_SIZE);
	char link[64], target[256];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = 0;
	assert_non_null(strstr(target, "/memfd:" CAPCR_CAPINFO_MEMFD_NAME));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* Sealed against shrinking, growing and further sealing. */
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals >= 0);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_true(seals & F_SEAL_SEAL);
	assert_false(seals & F_SEAL_WRITE); /* the target must write it */
	errno = 0;
	assert_int_equal(ftruncate(fd, 4096), -1);
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_int_equal(ftruncate(fd, 2 * CAPCR_CAPINFO_REGION_SIZE), -1);
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, CAPCR_CAPINFO_REGION_SIZE);

	/* The header the monitor wrote validates; the rest is zero. */
	struct capcr_capinfo_header *h =
		mmap(NULL, CAPCR_CAPINFO_REGION_SIZE, PROT_READ | PROT_WRITE,
		     MAP_SHARED, fd, 0);
	assert_true(h != MAP_FAILED);
	assert_true(h->magic == CAPCR_CAPINFO_MAGIC);
	assert_int_equal(h->abi_version, CAPCR_CAPINFO_ABI_VERSION);
	assert_int_equal(h->header_size, sizeof(struct capcr_capinfo_header));
	assert_int_equal(h->entry_size, sizeof(struct capcr_cap_info));
	assert_int_equal(h->capmap_entry_size, sizeof(struct capcr_cap_entry));
	assert_int_equal(h->region_size, CAPCR_CAPINFO_REGION_SIZE);
	assert_int_equal(h->capacity, CAPCR_CAPINFO_CAPACITY);
	assert_true(h->badge_base == base);
	assert_int_equal(h->pid, 4242);
	assert_int_equal(h->lock, 0);
	assert_int_equal(h->count, 0);
	assert_true(h->seq == 0);
	assert_int_equal(h->flags, 0);
	assert_true(h->updates == 0);
	const unsigned char *b = (const unsigned char *)h;
	for (size_t i = sizeof(*h); i < CAPCR_CAPINFO_REGION_SIZE; i++)
		if (b[i])
			fail_msg("byte %zu of a fresh region is %#x", i, b[i]);

	/* Writable through the mapping, and the write is shared. */
	h->count = 3;
	struct capcr_capinfo_header copy;
	assert_int_equal(pread(fd, &copy, sizeof(copy), 0), sizeof(copy));
	assert_int_equal(copy.count, 3);
	munmap(h, CAPCR_CAPINFO_REGION_SIZE);
	close(fd);
}

static void regions_are_separate(void **state)
{
	(void)state;
	int a = region_create(1, 1ull << 32), b = region_create(2, 2ull << 32);
	assert_true(a >= 0 && b >= 0 && a != b);
	struct capcr_capinfo_header ha, hb;
	assert_int_equal(pread(a, &ha, sizeof(ha), 0), sizeof(ha));
	assert_int_equal(pread(b, &hb, sizeof(hb), 0), sizeof(hb));
	assert_int_equal(ha.pid, 1);
	assert_int_equal(hb.pid, 2);
	assert_true(ha.badge_base != hb.badge_base);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_layout),
		cmocka_unit_test(cap_info_layout),
		cmocka_unit_test(cap_entry_layout),
		cmocka_unit_test(constants),
		cmocka_unit_test(kind_names),
		cmocka_unit_test(region_is_sealed_and_valid),
		cmocka_unit_test(regions_are_separate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
