/* SPDX-License-Identifier: MIT */
/*
 * crr_counter: a target for the checkpoint/restore tests (t_cr_robust.sh).
 *
 *   crr_counter [-i MS] [-n COUNT]
 *
 * Prints "count N" (N = 1, 2, ...) to stdout every MS milliseconds
 * (default 20), flushing each line, and exits 0 after COUNT lines (default
 * 3000).  A test can check that the lines stay consecutive across a failed
 * or a successful checkpoint: no gap, no repeat.  The sum of the numbers
 * printed so far is kept in memory and printed with each line ("sum S"),
 * so a restored process that lost its memory would show.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long ms = 20, n = 3000;
	int c;

	while ((c = getopt(argc, argv, "i:n:")) != -1) {
		switch (c) {
		case 'i':
			ms = strtol(optarg, NULL, 10);
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: crr_counter [-i MS] [-n COUNT]\n");
			return 2;
		}
	}
	unsigned long long sum = 0;
	for (long i = 1; i <= n; i++) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		sum += (unsigned long long)i;
		printf("count %ld sum %llu\n", i, sum);
		fflush(stdout);
	}
	return 0;
}
