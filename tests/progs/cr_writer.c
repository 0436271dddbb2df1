/* SPDX-License-Identifier: MIT */
/*
 * cr_writer [MIB]: a process that writes its memory all the time, for a
 * dump taken while it runs (dump -R copies memory before the freeze, then
 * only what was written since).  Any page of the image older than the
 * instant of the freeze shows up here.
 *
 * Two threads, each going round its own area writing one word per page,
 * the step number, and checking first that the word holds what the same
 * word got one round ago: a page restored from before the freeze fails
 * that check on the first round after the restore.
 *   - thread 1: MIB MiB of private anonymous memory, pages touched for the
 *     first time during its first round;
 *   - thread 2: an array in the program's .data (a private file mapping,
 *     its pages copied on write), and a ring of 4 small areas mapped,
 *     filled, checked and unmapped again all the time (areas that appear
 *     and go between the pre-copy and the freeze).
 * After the go file: both stop, every word and area is checked once more,
 * and each thread must have gone on after the restore.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "crtest.h"

#define PG 4096
#define WORDS (PG / sizeof(uint64_t))
#define DATA_PAGES 64
#define RING 4
#define RING_PAGES 16

struct lane {
	volatile uint64_t *area; /* one word per page used */
	uint64_t pages;
	volatile uint64_t step; /* the next step */
	volatile uint64_t bad;
	uint64_t first_bad, first_got;
};

static struct lane lanes[2];
static uint64_t data_area[DATA_PAGES * WORDS]
	__attribute__((section(".data"), aligned(PG)));
static unsigned char *ring[RING];
static volatile uint64_t ring_gen[RING];
static volatile uint64_t ring_bad;
static volatile int stop;

static uint64_t expect(const struct lane *l, uint64_t s)
{
	return s >= l->pages ? s - l->pages : 0;
}

/* One step: check the word of this page, then write it. */
static void step(struct lane *l)
{
	uint64_t s = l->step, k = s % l->pages;
	uint64_t got = l->area[k * WORDS];

	if (got != expect(l, s) && !l->bad++) {
		l->first_bad = s;
		l->first_got = got;
	}
	l->area[k * WORDS] = s;
	l->step = s + 1;
}

static unsigned char ring_byte(uint64_t gen, size_t off)
{
	return (unsigned char)(gen * 131 + off / PG * 7 + off % 251);
}

static int ring_ok(int i)
{
	for (size_t off = 0; off < RING_PAGES * PG; off += 509)
		if (ring[i][off] != ring_byte(ring_gen[i], off))
			return 0;
	return 1;
}

/* Replace area i of the ring with a new one, after checking the old. */
static void ring_turn(int i)
{
	if (ring[i]) {
		if (!ring_ok(i))
			ring_bad++;
		munmap(ring[i], RING_PAGES * PG);
	}
	ring[i] = mmap(NULL, RING_PAGES * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ring[i] == MAP_FAILED) {
		ring[i] = NULL;
		ring_bad++;
		return;
	}
	uint64_t gen = ring_gen[i] + 1;
	for (size_t off = 0; off < RING_PAGES * PG; off++)
		ring[i][off] = ring_byte(gen, off);
	ring_gen[i] = gen;
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	int second = l == &lanes[1];

	while (!stop) {
		for (int i = 0; i < 4096; i++)
			step(l);
		if (second)
			ring_turn((int)(l->step / 4096 % RING));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 32;
	pthread_t th[2];

	cr_init("cr_writer");
	lanes[0].pages = mib * 1024 * 1024 / PG;
	lanes[0].area = mmap(NULL, lanes[0].pages * PG, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SETUP(lanes[0].area != MAP_FAILED, "mmap");
	lanes[1].pages = DATA_PAGES;
	lanes[1].area = data_area;
	for (int i = 0; i < RING; i++)
		ring_turn(i);
	for (int i = 0; i < 2; i++)
		SETUP(pthread_create(&th[i], NULL, lane_main, &lanes[i]) == 0,
		      "pthread_create");
	/* Some rounds done before anyone may dump. */
	while (lanes[0].step < 2 * lanes[0].pages ||
	       lanes[1].step < 2 * lanes[1].pages)
		cr_nap_ms(1);
	cr_info("areas: %llu MiB anonymous, %d pages of .data, a ring of %d",
		(unsigned long long)mib, DATA_PAGES, RING);
	cr_ready();
	uint64_t at_ready[2] = { lanes[0].step, lanes[1].step };
	cr_wait_go();
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);

	for (int i = 0; i < 2; i++) {
		struct lane *l = &lanes[i];
		CHECK(!l->bad, "lane %d: %llu words not as written one round "
			       "before (first at step %llu: %llu, want %llu)",
		      i + 1, (unsigned long long)l->bad,
		      (unsigned long long)l->first_bad,
		      (unsigned long long)l->first_got,
		      (unsigned long long)expect(l, l->first_bad));
		CHECK(l->step > at_ready[i] + l->pages,
		      "lane %d: only %llu steps after ready (want a round)",
		      i + 1, (unsigned long long)(l->step - at_ready[i]));
		/* every word, as the last round left it */
		uint64_t wrong = 0;
		for (uint64_t k = 0; k < l->pages; k++) {
			uint64_t s = l->step - 1 - (l->step - 1 - k) % l->pages;
			if (l->area[k * WORDS] != s)
				wrong++;
		}
		CHECK(!wrong, "lane %d: %llu words wrong at the end", i + 1,
		      (unsigned long long)wrong);
	}
	CHECK(!ring_bad, "ring: %llu areas not as filled",
	      (unsigned long long)ring_bad);
	for (int i = 0; i < RING; i++)
		CHECK(ring[i] && ring_ok(i), "ring area %d not as filled", i);
	return cr_done();
}
