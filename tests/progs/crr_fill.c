/* SPDX-License-Identifier: MIT */
/*
 * crr_fill: a target with much memory (t_cr_robust.sh).
 *
 *   crr_fill MIB
 *
 * Maps MIB MiB of private anonymous memory, fills every byte with
 * pseudo-random data (incompressible, no zero page), prints
 * "ready sum=HEX" and then, on each SIGUSR1, checks the memory against
 * what it wrote and prints "check sum=HEX ok" or "check ... BAD".  Exits
 * on its own after 40 s.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t want_check;

static void on_usr1(int sig)
{
	(void)sig;
	want_check = 1;
}

static uint64_t fill_or_sum(uint64_t *p, size_t words, int fill)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL, sum = 0;
	size_t bad = 0;

	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (fill)
			p[i] = x;
		else if (p[i] != x)
			bad++;
		sum += x * (i | 1);
	}
	return bad ? 0 : sum;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: crr_fill MIB\n");
		return 2;
	}
	size_t len = (size_t)strtoul(argv[1], NULL, 10) << 20;
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	uint64_t sum = fill_or_sum(p, len / 8, 1);
	printf("ready sum=%llx\n", (unsigned long long)sum);
	fflush(stdout);
	for (int i = 0; i < 4000; i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
		if (want_check) {
			want_check = 0;
			uint64_t s = fill_or_sum(p, len / 8, 0);
			printf("check sum=%llx %s\n", (unsigned long long)s,
			       s == sum ? "ok" : "BAD");
			fflush(stdout);
		}
	}
	return 0;
}
