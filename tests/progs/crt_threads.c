/* SPDX-License-Identifier: MIT */
/*
 * crt_threads: threads in different blocking states (t_cr_tree.sh).
 *
 *   CR_GO=FILE crt_threads
 *
 * Six threads besides the main one, each with a name of its own
 * (pthread_setname_np), a signal mask of its own and an alternate signal
 * stack of its own, each stopped somewhere else:
 *
 *   crt-cond     pthread_cond_wait        (futex)
 *   crt-sleep    nanosleep of 10 s times the runner's time scale, so
 *                that it is still asleep after the dump and restore
 *                however loaded the machine (clock_nanosleep)
 *   crt-read     read on an empty pipe    (read)
 *   crt-busy     a busy loop              (running, in user mode)
 *   crt-sigwait  sigwaitinfo on SIGUSR1   (rt_sigtimedwait)
 *   crt-join     pthread_join of crt-busy (futex on its clear-child-tid)
 *   crt-poll     poll on an empty pipe with a 20 s timeout
 *
 * It prints "ready pid=N" once every thread is inside its call (as
 * /proc/self/task/TID/syscall says), then waits for the go file (a dump
 * and restore may happen meanwhile).  Then it checks that the set of
 * threads is the one it made (same TIDs), wakes each thread the way it
 * waits (the cond signalled, the pipe written, the flag set, SIGUSR1 sent),
 * and each thread checks that it resumed properly (the call returned what
 * it should, not EINTR), that gettid() is the same, that its name, its
 * mask and its alternate stack are as it set them, and that a signal
 * handler with SA_ONSTACK runs on that stack.  Ends with "PASS
 * crt_threads" (exit 0) or "FAIL crt_threads (N failures)".
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

enum { T_COND, T_SLEEP, T_READ, T_BUSY, T_SIGWAIT, T_JOIN, T_POLL, NT };

static const char *const tname[NT] = { "crt-cond",  "crt-sleep",
				       "crt-read",  "crt-busy",
				       "crt-sigwait", "crt-join", "crt-poll" };
/* The system call each thread is in when it is ready (-1: running). */
static const long tsys[NT] = { SYS_futex, SYS_clock_nanosleep, SYS_read,
			       -1,        SYS_rt_sigtimedwait, SYS_futex,
			       SYS_poll };

struct th {
	int idx;
	pthread_t pt;
	pid_t tid;
	sigset_t mask;
	void *alt;
	size_t altsz;
	stack_t old_alt; /* the one it replaced, given back at exit */
	atomic_int ready, returned;
	int fails;
	char why[8][160];
};

static struct th th[NT];
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_cond;
static atomic_int go_busy, may_exit;
static int pfd[2], pfd2[2];
static unsigned long long busy_spins;

static __thread void *my_alt;
static __thread size_t my_altsz;
static __thread volatile int got_urg, urg_on_alt;

static void on_urg(int sig, siginfo_t *si, void *uc)
{
	char here;
	(void)sig;
	(void)si;
	(void)uc;
	got_urg = 1;
	urg_on_alt = my_alt && (char *)&here >= (char *)my_alt &&
		     (char *)&here < (char *)my_alt + my_altsz;
}

__attribute__((format(printf, 2, 3))) static void tfail(struct th *t,
							 const char *fmt, ...)
{
	va_list ap;
	if (t->fails < 8) {
		va_start(ap, fmt);
		vsnprintf(t->why[t->fails], sizeof(t->why[0]), fmt, ap);
		va_end(ap);
	}
	t->fails++;
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Name, mask and alternate stack of the calling thread. */
static void setup_self(struct th *t, const char *name, int idx)
{
	sigset_t m;

	t->tid = my_tid();
	if (name)
		pthread_setname_np(pthread_self(), name);
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 1 + idx);
	sigaddset(&m, (idx & 1) ? SIGHUP : SIGQUIT);
	if (idx == T_SIGWAIT)
		sigaddset(&m, SIGUSR1);
	if (idx == T_READ)
		sigaddset(&m, SIGPIPE);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &t->mask);
	t->altsz = 65536 + (size_t)idx * 8192;
	t->alt = malloc(t->altsz);
	stack_t ss = { .ss_sp = t->alt, .ss_size = t->altsz, .ss_flags = 0 };
	if (!t->alt || sigaltstack(&ss, &t->old_alt) < 0) {
		printf("FAIL: %s: setup: sigaltstack: %s\n", cr_name,
		       strerror(errno));
		fflush(stdout);
		exit(2);
	}
	my_alt = t->alt;
	my_altsz = t->altsz;
}

/* After waking: is everything still as the thread set it? */
static void verify_self(struct th *t, const char *name)
{
	char nm[32] = "";
	sigset_t cur;
	stack_t ss;

	if (my_tid() != t->tid)
		tfail(t, "gettid() is %d, was %d", my_tid(), t->tid);
	if (name) {
		pthread_getname_np(pthread_self(), nm, sizeof(nm));
		if (strcmp(nm, name))
			tfail(t, "name is \"%s\", was \"%s\"", nm, name);
	}
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	for (int s = 1; s < 65; s++) {
		if (s == 32 || s == 33) /* glibc's own */
			continue;
		if (sigismember(&cur, s) != sigismember(&t->mask, s))
			tfail(t, "signal %d is %sblocked, was %sblocked", s,
			      sigismember(&cur, s) ? "" : "not ",
			      sigismember(&t->mask, s) ? "" : "not ");
	}
	if (sigaltstack(NULL, &ss) < 0)
		tfail(t, "sigaltstack: %s", strerror(errno));
	else if (ss.ss_sp != t->alt || ss.ss_size != t->altsz ||
		 ss.ss_flags != 0)
		tfail(t, "alternate stack %p+%zu flags %d, was %p+%zu flags 0",
		      ss.ss_sp, ss.ss_size, ss.ss_flags, t->alt, t->altsz);
	got_urg = urg_on_alt = 0;
	pthread_kill(pthread_self(), SIGURG);
	if (!got_urg)
		tfail(t, "the SIGURG handler did not run");
	else if (!urg_on_alt)
		tfail(t, "the SIGURG handler did not run on the alternate "
			 "stack");
}

static double now(void)
{
	return cr_now();
}

static void *thread_main(void *arg)
{
	struct th *t = arg;
	int idx = t->idx;

	setup_self(t, tname[idx], idx);
	switch (idx) {
	case T_COND:
		pthread_mutex_lock(&mx);
		atomic_store(&t->ready, 1);
		while (!go_cond)
			pthread_cond_wait(&cv, &mx);
		pthread_mutex_unlock(&mx);
		break;
	case T_SLEEP: {
		double want = 10 * cr_scale();
		struct timespec ts = { (time_t)want, 0 }, rem = { 0, 0 };
		atomic_store(&t->ready, 1);
		double t0 = now();
		int r = nanosleep(&ts, &rem);
		int e = errno;
		double dt = now() - t0;
		if (r != 0)
			tfail(t, "nanosleep returned %d (%s), %ld.%09ld s left",
			      r, strerror(e), (long)rem.tv_sec, rem.tv_nsec);
		else if (dt < (double)ts.tv_sec - 0.01)
			tfail(t, "nanosleep of %ld s returned after %.3f s",
			      (long)ts.tv_sec, dt);
		break;
	}
	case T_READ: {
		char c = 0;
		atomic_store(&t->ready, 1);
		ssize_t n = read(pfd[0], &c, 1);
		if (n != 1 || c != 'x')
			tfail(t, "read on the pipe returned %zd (%s), byte %d",
			      n, n < 0 ? strerror(errno) : "-", c);
		break;
	}
	case T_BUSY: {
		unsigned long long x = 1, spins = 0;
		atomic_store(&t->ready, 1);
		while (!atomic_load_explicit(&go_busy, memory_order_relaxed)) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			spins++;
		}
		busy_spins = spins + (x & 0);
		if (!spins)
			tfail(t, "the busy loop never ran");
		break;
	}
	case T_SIGWAIT: {
		sigset_t w;
		siginfo_t si;
		sigemptyset(&w);
		sigaddset(&w, SIGUSR1);
		memset(&si, 0, sizeof(si));
		atomic_store(&t->ready, 1);
		int r;
		/* A stop (SIGSTOP or a ptrace stop) makes sigwaitinfo fail
		 * with EINTR on Linux (signal(7)): wait again. */
		while ((r = sigwaitinfo(&w, &si)) < 0 && errno == EINTR)
			;
		if (r != SIGUSR1)
			tfail(t, "sigwaitinfo returned %d (%s)", r,
			      r < 0 ? strerror(errno) : "-");
		else if (si.si_pid != getpid())
			tfail(t, "SIGUSR1 from %d, expected from %d",
			      si.si_pid, getpid());
		break;
	}
	case T_POLL: {
		struct pollfd p = { .fd = pfd2[0], .events = POLLIN };
		atomic_store(&t->ready, 1);
		int r = poll(&p, 1, 20000);
		if (r != 1 || !(p.revents & POLLIN))
			tfail(t, "poll returned %d (%s), revents %#x", r,
			      r < 0 ? strerror(errno) : "-", p.revents);
		break;
	}
	case T_JOIN: {
		atomic_store(&t->ready, 1);
		int r = pthread_join(th[T_BUSY].pt, NULL);
		if (r)
			tfail(t, "pthread_join of crt-busy: %s", strerror(r));
		break;
	}
	}
	atomic_store(&t->returned, 1);
	verify_self(t, tname[idx]);
	/* Stay until main has counted the threads (crt-busy must end for
	 * crt-join). */
	while (idx != T_BUSY && !atomic_load(&may_exit))
		cr_nap_ms(1);
	/* The alternate stack given back: a library that set one up for the
	 * thread may free it at the thread's exit (ASan unmaps whatever
	 * stack is current then, and dies on our malloc'd one). */
	sigaltstack(&t->old_alt, NULL);
	return NULL;
}

/* The system call a thread of ours is in, -1 when running, -2 unknown. */
static long in_syscall(pid_t tid)
{
	char path[96], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -2;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -2;
	buf[n] = 0;
	if (!strncmp(buf, "running", 7))
		return -1;
	return strtol(buf, NULL, 10);
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

/* Sorted TIDs of /proc/self/task; returns how many. */
static int list_tasks(pid_t *out, int max)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && n < max)
			out[n++] = atoi(e->d_name);
	closedir(d);
	qsort(out, (size_t)n, sizeof(pid_t), cmp_pid);
	return n;
}

int main(void)
{
	struct sigaction sa;
	struct th mainth;

	cr_init("crt_threads");
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_urg;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	SETUP(sigaction(SIGURG, &sa, NULL) == 0, "sigaction");
	SETUP(pipe(pfd) == 0 && pipe(pfd2) == 0, "pipe");
	memset(&mainth, 0, sizeof(mainth));
	/* main: no name change, a mask and an alternate stack of its own */
	setup_self(&mainth, NULL, 9);

	for (int i = 0; i < NT; i++) {
		th[i].idx = i;
		/* crt-join joins crt-busy: crt-busy must exist first */
		SETUP(pthread_create(&th[i].pt, NULL, thread_main, &th[i]) == 0,
		      "pthread_create");
	}
	/* Every thread inside its call. */
	double end = cr_now() + 10;
	for (int i = 0; i < NT; i++) {
		for (;;) {
			if (atomic_load(&th[i].ready)) {
				long s = in_syscall(th[i].tid);
				if (s == tsys[i])
					break;
			}
			if (cr_now() > end) {
				printf("FAIL: %s: setup: thread %s not in system "
				       "call %ld (it is in %ld)\n",
				       cr_name, tname[i], tsys[i],
				       in_syscall(th[i].tid));
				exit(2);
			}
			cr_nap_ms(1);
		}
	}
	pid_t before[NT + 1], after[NT + 8];
	before[0] = getpid();
	for (int i = 0; i < NT; i++)
		before[i + 1] = th[i].tid;
	qsort(before, NT + 1, sizeof(pid_t), cmp_pid);

	cr_ready();
	cr_wait_go();

	/* The same threads, with the same TIDs. */
	int n = list_tasks(after, NT + 8);
	int same = n == NT + 1;
	for (int i = 0; same && i < n; i++)
		same = after[i] == before[i];
	CHECK(same, "the threads are not the ones made (%d of them now, %d "
		    "before)",
	      n, NT + 1);
	for (int i = 0; i < NT; i++) {
		long s = in_syscall(th[i].tid);
		if (atomic_load(&th[i].returned)) {
			CHECK(0, "thread %s came out of its call before it was "
				 "woken (why: below)",
			      tname[i]);
			continue;
		}
		/* a sleep or poll stopped and resumed goes on in
		 * restart_syscall */
		if (s != tsys[i] && !((i == T_SLEEP || i == T_POLL) &&
				      s == SYS_restart_syscall))
			CHECK(0, "after the restore, thread %s is in system "
				 "call %ld, not %ld",
			      tname[i], s, tsys[i]);
	}

	/* Wake each the way it waits. */
	pthread_mutex_lock(&mx);
	go_cond = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mx);
	SETUP(write(pfd[1], "x", 1) == 1, "write");
	SETUP(write(pfd2[1], "y", 1) == 1, "write");
	atomic_store(&go_busy, 1);
	pthread_kill(th[T_SIGWAIT].pt, SIGUSR1);
	atomic_store(&may_exit, 1);

	for (int i = 0; i < NT; i++) {
		if (i == T_BUSY)
			continue; /* crt-join joins it */
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 15 + (time_t)(10 * cr_scale()); /* crt-sleep's */
		int r = pthread_timedjoin_np(th[i].pt, NULL, &dl);
		if (r) {
			printf("FAIL: %s: thread %s did not end: %s\n", cr_name,
			       tname[i], strerror(r));
			printf("FAIL %s\n", cr_name);
			fflush(stdout);
			_exit(1);
		}
	}
	for (int i = 0; i < NT; i++) {
		for (int k = 0; k < th[i].fails && k < 8; k++)
			CHECK(0, "thread %s: %s", tname[i], th[i].why[k]);
		if (!th[i].fails)
			cr_info("thread %s resumed; same TID, name, mask and "
				"alternate stack",
				tname[i]);
	}
	verify_self(&mainth, NULL);
	for (int k = 0; k < mainth.fails && k < 8; k++)
		CHECK(0, "main thread: %s", mainth.why[k]);
	CHECK(mainth.tid == getpid(), "main thread TID %d", mainth.tid);
	n = list_tasks(after, NT + 8);
	CHECK(n == 1, "%d threads left after joining them all", n);
	return cr_done();
}
