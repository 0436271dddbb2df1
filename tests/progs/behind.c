/* SPDX-License-Identifier: MIT */
/*
 * Descriptors made and closed behind the runtime's back.
 *
 *   behind
 *
 * raw:     openat by raw system call: the kernel has it, the region not.
 * stale:   open() (reported), then closed by raw system call: the region
 *          still names it, the kernel does not.
 * reused:  open() (reported), closed by raw system call, then open() again
 *          at the same number: the runtime must replace the stale entry,
 *          not list the number twice.
 * rawdup:  dup2 by raw system call onto a reported descriptor's number:
 *          the region says "open" for what is now another object.
 * Prints "fd NAME N" lines, "ready pid=N" and waits for SIGUSR2.
 */
#include "tprog.h"

#include <fcntl.h>

int main(void)
{
	tp_init("behind");
	TP_CHECK(tp_monitored() == 1, "not monitored");

	int raw = (int)syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
	TP_CHECK(raw >= 0, "raw openat");
	TP_CHECK(tp_badge(raw) == 0, "raw fd %d has a badge", raw);
	printf("fd raw %d\n", raw);

	/* Reported (a dup of stdin at 300), then closed by raw syscall. */
	int stale = fcntl(0, F_DUPFD, 300);
	TP_CHECK(stale == 300 && tp_badge(stale) != 0, "F_DUPFD 300: %d",
		 stale);
	TP_CHECK(syscall(SYS_close, stale) == 0, "raw close");
	printf("fd stale %d\n", stale);

	int a = open("/dev/null", O_RDONLY);
	uint64_t ab = tp_badge(a);
	syscall(SYS_close, a);
	int b = open("/dev/zero", O_RDONLY); /* the same number */
	TP_CHECK(a == b, "kernel gave %d, not %d", b, a);
	TP_CHECK(tp_badge(b) != 0 && tp_badge(b) != ab,
		 "reused fd %d: badge %#" PRIx64 " (old %#" PRIx64 ")", b,
		 tp_badge(b), ab);
	printf("fd reused %d\n", b);

	int victim = open("/etc/hostname", O_RDONLY);
	int other = (int)syscall(SYS_openat, AT_FDCWD, "/dev/zero", O_RDONLY);
	syscall(SYS_dup2, other, victim);
	syscall(SYS_close, other);
	printf("fd rawdup %d\n", victim);

	tp_ready("raw=%d", raw);
	tp_wait_go();
	return tp_done();
}
