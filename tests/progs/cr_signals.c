/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: signals.  See crtest.h for the protocol.
 *
 *   - the blocked mask;
 *   - pending blocked signals: SIGUSR1 raised at the thread, SIGRTMIN+2
 *     queued twice to the process with sigqueue (values 1234 and 5678, in
 *     that order), SIGRTMIN+5 queued to the thread with a value; still
 *     pending after the restore, delivered on unblock with their siginfo
 *     (si_code, si_pid, si_uid, si_value) and order;
 *   - handlers: SA_SIGINFO|SA_RESTART|SA_ONSTACK with an sa_mask,
 *     SA_RESETHAND|SA_NODEFER, an ignored signal, and a default one;
 *     sigaction() reads back the same, and they behave that way (the
 *     handler runs on the alternate stack with its mask blocked; the reset
 *     handler is reset after one delivery; the ignored signal is ignored);
 *   - the alternate signal stack still configured.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>

#include "crtest.h"

#define SIG_Q (SIGRTMIN + 2)
#define SIG_T (SIGRTMIN + 5)

static char altstack[64 * 1024] __attribute__((aligned(16)));

/* What handlers saw, in order. */
struct seen {
	int sig, code, pid, uid, value, on_altstack, mask_ok;
};
static volatile struct seen seen[32];
static volatile int nseen;

static int on_altstack(void *p)
{
	return (char *)p >= altstack && (char *)p < altstack + sizeof(altstack);
}

static void info_handler(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;
	int local;
	(void)uc;
	if (nseen >= 32)
		return;
	volatile struct seen *s = &seen[nseen++];
	s->sig = sig;
	s->code = si->si_code;
	s->pid = si->si_pid;
	s->uid = (int)si->si_uid;
	s->value = si->si_value.sival_int;
	s->on_altstack = on_altstack(&local);
	sigprocmask(SIG_BLOCK, NULL, &cur);
	/* sa_mask of SIGUSR2's handler is SIGINT and SIGTERM */
	s->mask_ok = sig != SIGUSR2 ||
		     (sigismember(&cur, SIGINT) && sigismember(&cur, SIGTERM) &&
		      sigismember(&cur, SIGUSR2));
}

static volatile int hup_count, hup_nodefer_ok;

static void hup_handler(int sig)
{
	sigset_t cur;
	(void)sig;
	hup_count++;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	hup_nodefer_ok = !sigismember(&cur, SIGHUP); /* SA_NODEFER */
}

static struct sigaction before[65];
static sigset_t mask_before;
static stack_t ss_before;

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	SETUP(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction USR2");
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	SETUP(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction USR1");
	SETUP(sigaction(SIG_Q, &sa, NULL) == 0, "sigaction Q");
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	SETUP(sigaction(SIG_T, &sa, NULL) == 0, "sigaction T");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hup_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGQUIT);
	SETUP(sigaction(SIGHUP, &sa, NULL) == 0, "sigaction HUP");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	SETUP(sigaction(SIGPIPE, &sa, NULL) == 0, "sigaction PIPE");
	SETUP(sigaction(SIGWINCH, &sa, NULL) == 0, "sigaction WINCH");

	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	SETUP(sigaltstack(&ss, NULL) == 0, "sigaltstack");
}

static int same_action(const struct sigaction *a, const struct sigaction *b)
{
	if ((void *)a->sa_sigaction != (void *)b->sa_sigaction ||
	    a->sa_flags != b->sa_flags ||
	    (void *)a->sa_restorer != (void *)b->sa_restorer)
		return 0;
	for (int s = 1; s < 65; s++)
		if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
			return 0;
	return 1;
}

static void mask_str(const sigset_t *m, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = 0;
	for (int s = 1; s < 65 && o + 8 < len; s++)
		if (sigismember(m, s))
			o += (size_t)snprintf(buf + o, len - o, "%d,", s);
}

int main(void)
{
	sigset_t block, pend;
	union sigval v;
	int me;

	cr_init("cr_signals");
	install();

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIG_Q);
	sigaddset(&block, SIG_T);
	sigaddset(&block, SIGINT); /* blocked, never raised */
	sigaddset(&block, SIGRTMAX);
	SETUP(sigprocmask(SIG_BLOCK, &block, NULL) == 0, "sigprocmask");

	/* pending, blocked */
	SETUP(raise(SIGUSR1) == 0, "raise");
	v.sival_int = 1234;
	SETUP(sigqueue(getpid(), SIG_Q, v) == 0, "sigqueue 1");
	v.sival_int = 5678;
	SETUP(sigqueue(getpid(), SIG_Q, v) == 0, "sigqueue 2");
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = SIG_T;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = 4321;
	SETUP(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIG_T, &si) ==
		      0,
	      "rt_tgsigqueueinfo");

	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP && !(s >= 32 && s < SIGRTMIN))
			sigaction(s, NULL, &before[s]);
	sigprocmask(SIG_BLOCK, NULL, &mask_before);
	sigaltstack(NULL, &ss_before);
	me = getpid();

	cr_info("set up: mask, 4 pending, 6 handlers, altstack");
	cr_ready();
	cr_wait_go();

	/* The state as it is now. */
	sigset_t mask_now;
	char a[256], b[256];
	sigprocmask(SIG_BLOCK, NULL, &mask_now);
	mask_str(&mask_before, a, sizeof(a));
	mask_str(&mask_now, b, sizeof(b));
	CHECK(!strcmp(a, b), "blocked mask: {%s}, was {%s}", b, a);

	for (int s = 1; s < 65; s++) {
		struct sigaction now;
		if (s == SIGKILL || s == SIGSTOP || (s >= 32 && s < SIGRTMIN))
			continue;
		sigaction(s, NULL, &now);
		CHECK(same_action(&now, &before[s]),
		      "signal %d: handler %p flags %#x restorer %p, was %p "
		      "flags %#x restorer %p",
		      s, (void *)now.sa_sigaction, now.sa_flags,
		      (void *)now.sa_restorer, (void *)before[s].sa_sigaction,
		      before[s].sa_flags, (void *)before[s].sa_restorer);
	}

	stack_t ss;
	sigaltstack(NULL, &ss);
	CHECK(ss.ss_sp == ss_before.ss_sp && ss.ss_size == ss_before.ss_size &&
		      ss.ss_flags == ss_before.ss_flags,
	      "sigaltstack: %p size %zu flags %d, was %p size %zu flags %d",
	      ss.ss_sp, ss.ss_size, ss.ss_flags, ss_before.ss_sp,
	      ss_before.ss_size, ss_before.ss_flags);

	sigpending(&pend);
	mask_str(&pend, a, sizeof(a));
	CHECK(sigismember(&pend, SIGUSR1) && sigismember(&pend, SIG_Q) &&
		      sigismember(&pend, SIG_T),
	      "pending: {%s}, want SIGUSR1, SIGRTMIN+2, SIGRTMIN+5", a);
	CHECK(nseen == 0, "%d handlers ran while their signals were blocked",
	      nseen);

	/* Deliver them: one at a time, in a known order. */
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	sigemptyset(&one);
	sigaddset(&one, SIG_Q);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	sigemptyset(&one);
	sigaddset(&one, SIG_T);
	sigprocmask(SIG_UNBLOCK, &one, NULL);

	struct {
		int sig, code, value;
	} want[] = {
		{ SIGUSR1, SI_TKILL, 0 },
		{ SIG_Q, SI_QUEUE, 1234 },
		{ SIG_Q, SI_QUEUE, 5678 },
		{ SIG_T, SI_QUEUE, 4321 },
	};
	CHECK(nseen == 4, "%d signals delivered on unblock, want 4", nseen);
	for (int i = 0; i < 4 && i < nseen; i++) {
		volatile struct seen *s = &seen[i];
		CHECK(s->sig == want[i].sig && s->code == want[i].code &&
			      s->pid == me && s->uid == (int)getuid() &&
			      (want[i].sig == SIGUSR1 ||
			       s->value == want[i].value),
		      "delivery %d: signal %d code %d pid %d uid %d value %d; "
		      "want signal %d code %d pid %d value %d",
		      i, s->sig, s->code, s->pid, s->uid, s->value, want[i].sig,
		      want[i].code, me, want[i].value);
	}
	CHECK(nseen < 4 || seen[3].on_altstack,
	      "SIGRTMIN+5 (SA_ONSTACK) did not run on the alternate stack");
	CHECK(nseen < 1 || !seen[0].on_altstack,
	      "SIGUSR1 (no SA_ONSTACK) ran on the alternate stack");

	/* SIGUSR2: SA_ONSTACK, sa_mask */
	nseen = 0;
	raise(SIGUSR2);
	CHECK(nseen == 1 && seen[0].on_altstack && seen[0].mask_ok,
	      "SIGUSR2: ran %d times, on the alternate stack: %d, with its "
	      "sa_mask: %d",
	      nseen, nseen ? seen[0].on_altstack : -1,
	      nseen ? seen[0].mask_ok : -1);

	/* SIGHUP: SA_NODEFER, then SA_RESETHAND */
	raise(SIGHUP);
	CHECK(hup_count == 1 && hup_nodefer_ok,
	      "SIGHUP: ran %d times, not blocked inside: %d", hup_count,
	      hup_nodefer_ok);
	struct sigaction now;
	sigaction(SIGHUP, NULL, &now);
	CHECK(now.sa_handler == SIG_DFL,
	      "SIGHUP: SA_RESETHAND did not reset the handler");

	/* SIGPIPE ignored: survives */
	raise(SIGPIPE);
	raise(SIGWINCH);

	/* SIGINT and SIGRTMAX still blocked */
	sigprocmask(SIG_BLOCK, NULL, &mask_now);
	CHECK(sigismember(&mask_now, SIGINT) &&
		      sigismember(&mask_now, SIGRTMAX),
	      "SIGINT/SIGRTMAX no longer blocked");
	sigpending(&pend);
	mask_str(&pend, a, sizeof(a));
	CHECK(!a[0], "still pending after delivery: {%s}", a);

	return cr_done();
}
