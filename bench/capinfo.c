/* SPDX-License-Identifier: MIT */
/*
 * bench/capinfo: the cost of reporting the capability space.
 *
 * Times open("/dev/null") + close() pairs: every pair is one insertion into
 * and one removal from the target's cap map, so under `capcr run` it is two
 * region updates (--capinfo=shm) or two request/reply round trips with the
 * monitor (--capinfo=ipc).  Run it bare, with libcapcr preloaded but no
 * monitor, and under capcr run; bench/run.sh does all of that.
 *
 *   capinfo [-n PAIRS] [-r REPS] [-t THREADS] [-w WARMUP]
 *
 * Phase "single": one thread does PAIRS pairs, REPS times (after WARMUP
 * untimed repetitions).  Phase "multi": THREADS threads start together and
 * each does PAIRS/THREADS pairs; the figure is the wall time from the first
 * thread's start to the last one's end divided by all pairs done (aggregate
 * ns per pair).  -t 0 skips it.
 *
 * Output, one line per phase, for scripts:
 *   capinfo phase=single threads=1 pairs=N reps=R median=X min=X ns=X,X,...
 * plus one line saying what the runtime reported about itself:
 *   capinfo state runtime=yes|no monitored=yes|no region=shm|none
 * All figures are nanoseconds per pair, measured, never adjusted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 100
#define MAX_THREADS 64

static const char *const target = "/dev/null";

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The loop measured: nothing but the pair.  Returns 0, or -1 on a failed
 * open (reported: a benchmark of failing calls means nothing). */
static int pairs(long n)
{
	for (long i = 0; i < n; i++) {
		int fd = open(target, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "capinfo: open %s: %s\n", target,
				strerror(errno));
			return -1;
		}
		close(fd);
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];

	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void report(const char *phase, int threads, long n, const double *v,
		   int reps)
{
	double lo = v[0];

	for (int i = 1; i < reps; i++)
		if (v[i] < lo)
			lo = v[i];
	printf("capinfo phase=%s threads=%d pairs=%ld reps=%d median=%.1f "
	       "min=%.1f ns=",
	       phase, threads, n, reps, median(v, reps), lo);
	for (int i = 0; i < reps; i++)
		printf("%s%.1f", i ? "," : "", v[i]);
	printf("\n");
	fflush(stdout);
}

/* Multi-threaded phase: all threads wait at a barrier, then run their
 * share; each records its own end time. */
struct worker {
	pthread_t tid;
	long n;
	double start, end;
	int failed;
};

static pthread_barrier_t start_line;

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&start_line);
	w->start = now_ns();
	w->failed = pairs(w->n) < 0;
	w->end = now_ns();
	return NULL;
}

static int run_multi(int threads, long n, double *ns_per_pair)
{
	struct worker w[MAX_THREADS];
	long share = n / threads;
	double start = 0, end = 0;
	int failed = 0;

	if (pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1))
		return -1;
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .n = share };
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			fprintf(stderr, "capinfo: pthread_create failed\n");
			exit(1);
		}
	}
	/* From the first thread's start to the last one's end: the main
	 * thread may get a CPU back only after the workers have begun. */
	pthread_barrier_wait(&start_line);
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		failed |= w[i].failed;
		if (!i || w[i].start < start)
			start = w[i].start;
		if (w[i].end > end)
			end = w[i].end;
	}
	pthread_barrier_destroy(&start_line);
	*ns_per_pair = (end - start) / (double)(share * threads);
	return failed ? -1 : 0;
}

/* What the runtime says about this process, so a run that silently fell
 * back (no runtime, not attached, wrong mode) shows in the output. */
static void report_state(void)
{
	int (*monitored)(void) =
		(int (*)(void))dlsym(RTLD_DEFAULT, "capcr_monitored");
	char line[512];
	int region = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strstr(line, "/memfd:capcr-capinfo"))
				region = 1;
		fclose(f);
	}
	printf("capinfo state runtime=%s monitored=%s region=%s\n",
	       monitored ? "yes" : "no",
	       monitored && monitored() ? "yes" : "no",
	       region ? "shm" : "none");
}

static long arg_long(const char *s, long lo, long hi, char opt)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "capinfo: -%c %s: expected %ld..%ld\n", opt, s,
			lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long n = 200000;
	int reps = 5, threads = 4, warmup = 1, c;
	double v[MAX_REPS];

	while ((c = getopt(argc, argv, "n:r:t:w:h")) != -1) {
		switch (c) {
		case 'n':
			n = arg_long(optarg, 1, 1L << 40, 'n');
			break;
		case 'r':
			reps = (int)arg_long(optarg, 1, MAX_REPS, 'r');
			break;
		case 't':
			threads = (int)arg_long(optarg, 0, MAX_THREADS, 't');
			break;
		case 'w':
			warmup = (int)arg_long(optarg, 0, 100, 'w');
			break;
		default:
			fprintf(stderr,
				"usage: capinfo [-n PAIRS] [-r REPS] "
				"[-t THREADS] [-w WARMUP]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (threads && n < threads) {
		fprintf(stderr, "capinfo: -n must be at least -t\n");
		return 2;
	}
	report_state();

	for (int i = 0; i < warmup; i++)
		if (pairs(n) < 0)
			return 1;
	for (int i = 0; i < reps; i++) {
		double t0 = now_ns();
		if (pairs(n) < 0)
			return 1;
		v[i] = (now_ns() - t0) / (double)n;
	}
	report("single", 1, n, v, reps);

	if (!threads)
		return 0;
	for (int i = 0; i < warmup + reps; i++) {
		double x;
		if (run_multi(threads, n, &x) < 0)
			return 1;
		if (i >= warmup)
			v[i - warmup] = x;
	}
	report("multi", threads, n / threads * threads, v, reps);
	return 0;
}
