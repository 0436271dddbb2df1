/* SPDX-License-Identifier: MIT */
/*
 * A static binary: LD_PRELOAD cannot load the runtime into it, so under
 * `capcr run` it is not monitored and its descriptors are the kernel's only.
 * Prints "fd file N", "fd pipe_r N", "fd pipe_w N", "ready pid=N" and
 * waits for SIGUSR2.
 */
#include "tprog.h"

#include <fcntl.h>

int main(void)
{
	tp_init("behind-static");
	int f = open("/etc/hostname", O_RDONLY);
	int p[2];
	TP_CHECK(f >= 0 && pipe(p) == 0, "open/pipe");
	TP_CHECK(getenv("CAPCR_PD") != NULL, "CAPCR_PD not passed on");
	printf("fd file %d\nfd pipe_r %d\nfd pipe_w %d\n", f, p[0], p[1]);
	tp_ready("static=1");
	tp_wait_go();
	return tp_done();
}
