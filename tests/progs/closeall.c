/* SPDX-License-Identifier: MIT */
/*
 * A process that holds no descriptor at all: prints "ready pid=N", closes
 * every descriptor with close_range(0, ~0U, 0) (stdout included), and
 * waits for SIGUSR2.  Exit status 0 when the runtime, if any, kept up:
 * capcr_monitored() unchanged and the own region empty.
 */
#include "tprog.h"

int main(void)
{
	tp_init("closeall");
	int before = tp_monitored();
	tp_ready("monitored=%d", before);
	struct capcr_capinfo_header *r = tp_region(NULL);
	if (close_range(0, ~0U, 0) != 0)
		_exit(10);
	if (tp_monitored() != before)
		_exit(11);
	if (r && (__atomic_load_n(&r->count, __ATOMIC_ACQUIRE) != 0 ||
		  (r->seq & 1)))
		_exit(12);
	tp_wait_go();
	_exit(0);
}
