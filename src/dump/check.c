/* SPDX-License-Identifier: MIT */
/*
 * capcr check: which kernel features capcr relies on are present on this
 * machine, each tried for real where that is cheap, and what is missing
 * for which capcr feature.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../monitor/commands.h"
#include "pagemap.h"


static int failures;

static void row(const char *what, int ok, const char *needed_for,
		const char *fix)
{
	printf("  %-34s %-8s %s\n", what, ok ? "yes" : "MISSING", needed_for);
	if (!ok) {
		failures++;
		if (fix)
			printf("  %-34s          -> %s\n", "", fix);
	}
}

static int have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static int try_pagemap_scan(void)
{
	struct pm_scan_arg a = { .size = sizeof(a) };
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ok;

	if (p == MAP_FAILED || fd < 0)
		return 0;
	p[0] = 1;
	a.start = (uintptr_t)p;
	a.end = a.start + 4096;
	ok = ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
	close(fd);
	munmap(p, 4096);
	return ok;
}

/* What the live pre-copy of dump -R needs (precopy.c). */
static int try_uffd_wp_async(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC };
	int ok = fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* What incremental dumps need (pre-dump, --prev-images-dir: track.c):
 * a page write-protected by PAGEMAP_SCAN (PM_SCAN_WP_MATCHING) under async
 * write protection reads as unwritten, then as written once written. */
static int try_write_tracking(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), ok = 0;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC };
	struct page_region r;
	volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (fd < 0 || pm < 0 || p == MAP_FAILED ||
	    ioctl(fd, UFFDIO_API, &api) < 0)
		goto out;
	p[0] = 1;
	struct uffdio_register reg = { .range = { (uintptr_t)p, 4096 },
				       .mode = UFFDIO_REGISTER_MODE_WP };
	struct pm_scan_arg a = {
		.size = sizeof(a), .start = (uintptr_t)p,
		.end = (uintptr_t)p + 4096, .vec = (uintptr_t)&r, .vec_len = 1,
		.category_anyof_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_WRITTEN,
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
	};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ||
	    ioctl(pm, PAGEMAP_SCAN, &a) != 1)
		goto out;
	a.flags = 0;
	if (ioctl(pm, PAGEMAP_SCAN, &a) != 1 || (r.categories & PAGE_IS_WRITTEN))
		goto out;
	p[0] = 2;
	ok = ioctl(pm, PAGEMAP_SCAN, &a) == 1 &&
	     (r.categories & PAGE_IS_WRITTEN);
out:
	if (p != MAP_FAILED)
		munmap((void *)p, 4096);
	if (pm >= 0)
		close(pm);
	if (fd >= 0)
		close(fd);
	return ok;
}

static int try_pidfd_getfd(void)
{
	int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0), fd, ok;

	if (pfd < 0)
		return 0;
	fd = (int)syscall(SYS_pidfd_getfd, pfd, 0, 0);
	ok = fd >= 0;
	if (ok)
		close(fd);
	close(pfd);
	return ok;
}

static int try_wipeonfork(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok = p != MAP_FAILED && madvise(p, 4096, MADV_WIPEONFORK) == 0;

	if (p != MAP_FAILED)
		munmap(p, 4096);
	return ok;
}

static int has_vvar_vclock(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "re");
	int found = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vvar_vclock]"))
			found = 1;
	fclose(f);
	return found;
}

int cmd_check(int argc, char **argv)
{
	struct utsname u;
	int yama = -1;
	unsigned mm_map_size = 0;

	(void)argc;
	(void)argv;
	uname(&u);
	printf("capcr check on Linux %s (%s)\n\n", u.release, u.machine);
	printf("  %-34s %-8s %s\n", "feature", "present", "needed for");
	row("x86_64", !strcmp(u.machine, "x86_64"), "everything (registers, "
						     "injected calls)",
	    "capcr supports x86_64 only");
	row("pidfd_open, pidfd_getfd (5.6)", try_pidfd_getfd(),
	    "dump: copying descriptors", "Linux 5.6 or later");
	row("kcmp (KCMP_FILE)",
	    syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0,
	    "dump: shared open files", "CONFIG_KCMP=y");
	row("PAGEMAP_SCAN ioctl (6.7)", try_pagemap_scan(),
	    "dump: finding saved pages", "Linux 6.7 or later");
	row("PR_SET_MM_MAP",
	    prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &mm_map_size, 0, 0) == 0,
	    "restore: mm layout, exe link", "CONFIG_CHECKPOINT_RESTORE=y");
	row("clone3 set_tid (5.5), privileged",
	    have_cap(CAP_SYS_ADMIN) || have_cap(40 /* CHECKPOINT_RESTORE */),
	    "restore: the same PID", "run capcr as root");
	row("CAP_SYS_PTRACE", have_cap(CAP_SYS_PTRACE),
	    "dump and restore: ptrace", "run capcr as root");
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f) {
		if (fscanf(f, "%d", &yama) != 1)
			yama = -1;
		fclose(f);
	}
	row("ptrace allowed (Yama scope < 3)", yama < 3,
	    "dump: seizing processes", "echo 1 > /proc/sys/kernel/yama/ptrace_scope");
	row("MADV_WIPEONFORK (4.14)", try_wipeonfork(),
	    "runtime: per-process region across fork", "Linux 4.14 or later");
	int mfd = memfd_create("check", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	row("memfd_create with sealing", mfd >= 0,
	    "runtime regions, memfd images", NULL);
	if (mfd >= 0)
		close(mfd);
	row("PR_TIMER_CREATE_RESTORE_IDS (6.15)",
	    prctl(77, 2 /* _GET */, 0, 0, 0) >= 0,
	    "restore: POSIX timers with their ids",
	    "Linux 6.15 or later (other features work without it)");
	printf("\n  vvar layout: %s\n",
	       has_vvar_vclock() ? "[vvar] + [vvar_vclock] (Linux 6.13+): "
				   "images restore on 6.13+ kernels"
				 : "single [vvar]: images restore on kernels "
				   "before 6.13");
	printf("  live pre-copy of dump -R: %s\n",
	       try_uffd_wp_async()
		       ? "yes (userfaultfd with async write protection)"
		       : "no (userfaultfd with UFFD_FEATURE_WP_ASYNC, Linux "
			 "6.7): dump -R copies all memory while frozen");
	printf("  incremental dumps (pre-dump, --prev-images-dir): %s\n",
	       try_write_tracking()
		       ? "yes (write tracking by async write protection and "
			 "PAGEMAP_SCAN)"
		       : "no (userfaultfd with UFFD_FEATURE_WP_ASYNC and "
			 "PAGEMAP_SCAN, Linux 6.7): every dump is full");
	printf("  CAP_SYS_RESOURCE: %s\n",
	       have_cap(CAP_SYS_RESOURCE)
		       ? "present"
		       : "absent: a restore fails clearly where a resource "
			 "limit would have to rise above capcr's own");
	printf("\n%s\n", failures ? "some features are missing (see above)"
				  : "everything capcr needs is here");
	return failures ? 1 : 0;
}
