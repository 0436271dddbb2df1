/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore test: a counter that keeps working while it is dumped
 * and restored (or dumped and left running) again and again.  See
 * crtest.h for the protocol; here the program does not sit still between
 * "ready" and the go file: it computes, writes, spins on the clock (vDSO)
 * and sleeps in small steps, so the dumps catch it anywhere.
 *
 * Each step n: the counter goes up in memory, in a register kept across
 * the step, in a file (a record appended through a descriptor), in a pipe
 * (a byte through it and back), in the heap (a chain of malloc'd nodes)
 * and in a chained hash.  At the end (go file, and at least MIN_STEPS) it
 * checks every representation against the others and against a
 * recomputation from scratch, and prints the hash of the first MIN_STEPS
 * steps, which does not depend on when it was dumped.
 */
#define _GNU_SOURCE
#include "crtest.h"

#define MIN_STEPS 300

struct node {
	struct node *prev;
	uint64_t n, h;
};

static uint64_t step_hash(uint64_t h, uint64_t n)
{
	h ^= n + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
	for (int i = 0; i < 200; i++) {
		h ^= h >> 31;
		h *= 0x7fb5d329728ea185ULL;
		h ^= h >> 27;
	}
	return h;
}

int main(void)
{
	uint64_t n = 0, h = 0, h_min = 0;
	volatile uint64_t spins = 0;
	double f = 0;
	struct node *top = NULL;
	int p[2];

	cr_init("cr_counter");
	int log = open(cr_path("log"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0600);
	SETUP(log >= 0, "open log");
	SETUP(pipe2(p, O_CLOEXEC) == 0, "pipe");

	cr_info("counting");
	cr_ready();
	for (;;) {
		/* the step, with the counter held in a register across it */
		register uint64_t r = n;
		uint64_t nh = step_hash(h, n);
		__asm__ volatile("" : "+r"(r));
		f += 0.5;
		struct node *x = malloc(sizeof(*x));
		SETUP(x != NULL, "malloc");
		x->prev = top;
		x->n = n;
		x->h = nh;
		top = x;
		struct {
			uint64_t n, h;
		} rec = { n, nh };
		SETUP(write(log, &rec, sizeof(rec)) == sizeof(rec), "write log");
		unsigned char b = (unsigned char)n, c = 0;
		SETUP(write(p[1], &b, 1) == 1 && read(p[0], &c, 1) == 1,
		      "pipe round trip");
		if (!CHECK(c == b && r == n, "step %" PRIu64 ": pipe gave %u "
					     "for %u, register %" PRIu64,
			   n, c, b, (uint64_t)r))
			break;
		h = nh;
		n++;
		if (n == MIN_STEPS)
			h_min = h;
		if (n >= MIN_STEPS && cr_go_here(cr_go))
			break;
		if (n > 100000) {
			CHECK(0, "nobody created the go file");
			break;
		}
		/* busy for a while (in user code and the vDSO), then asleep */
		for (double t = cr_now(); cr_now() < t + 0.0003;)
			spins++;
		cr_nap_ms(1);
	}

	/* Everything agrees? */
	CHECK(f == 0.5 * (double)n, "float counter %.1f for %" PRIu64 " steps",
	      f, n);
	uint64_t k = n;
	CHECK(top && top->h == h, "heap chain: the last node is not the last "
				  "step's");
	for (struct node *x = top; x; x = x->prev) {
		k--;
		if (!CHECK(x->n == k && x->h == step_hash(x->prev ? x->prev->h
								 : 0,
							 x->n),
			   "heap chain: node for step %" PRIu64 " holds %" PRIu64,
			   k, x->n))
			break;
	}
	CHECK(k == 0, "heap chain: %" PRIu64 " nodes missing", k);
	off_t end = lseek(log, 0, SEEK_CUR);
	CHECK(end == (off_t)(n * 16), "log: position %lld for %" PRIu64
				      " steps",
	      (long long)end, n);
	uint64_t rh = 0;
	for (uint64_t i = 0; i < n; i++) {
		struct {
			uint64_t n, h;
		} rec;
		rh = step_hash(rh, i);
		if (!CHECK(pread(log, &rec, 16, (off_t)(i * 16)) == 16 &&
				   rec.n == i && rec.h == rh,
			   "log: record %" PRIu64 " is wrong", i))
			break;
	}
	CHECK(rh == h, "the chained hash differs from a recomputation");
	cr_info("hash after %d steps: %016" PRIx64, MIN_STEPS, h_min);
	while (top) { /* freed: LeakSanitizer would count it lost */
		struct node *x = top->prev;
		free(top);
		top = x;
	}
	return cr_done();
}
