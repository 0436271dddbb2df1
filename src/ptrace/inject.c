/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "inject.h"
#include "rescue.h"
#include "../common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif

/* Kernel-internal restart codes, as seen in rax of a thread stopped
 * inside a system call. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* A thread that can no longer stop: ended, or the leader of a group that
 * is dying (a zombie leader is reported only after every other thread,
 * and those may be tracees waiting for us to reap them). */
static int tracee_dead(pid_t tid)
{
	struct proc_stat st;

	/* Any other error: not known, the caller looks again. */
	if (proc_stat_read(tid, 0, &st) < 0)
		return errno == ENOENT || errno == ESRCH;
	return st.state == 'Z' || st.state == 'X';
}

void tracer_init(void)
{
	sigset_t chld;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, NULL);
}

/*
 * Wait for tid's next stop, never for ever: a tracee that is killed while
 * we wait for it may never be reported (see tracee_dead), so the wait
 * wakes on every SIGCHLD (tracer_init keeps it pending for us) and at
 * least every 100 ms to look.
 */
static __thread int wait_blocking;

void tracee_wait_blocking(int on)
{
	wait_blocking = on;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* tracee_wait, giving up with -ETIMEDOUT after ms milliseconds (none when
 * ms < 0): for a stop that only a request of ours brings. */
static int wait_within(pid_t tid, int *status, int ms)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	sigset_t chld, cur;
	uint64_t end = ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)ms;

	while (wait_blocking) {
		pid_t w = waitpid(tid, status, __WALL);
		if (w == tid)
			return WIFEXITED(*status) || WIFSIGNALED(*status) ? -ESRCH
									  : 0;
		if (w < 0 && errno != EINTR)
			return errno == ECHILD ? -ESRCH : -errno;
	}

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	int can_wait = sigismember(&cur, SIGCHLD);
	for (int idle = 0;;) {
		pid_t w = waitpid(tid, status, __WALL | WNOHANG);
		if (w == tid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
		if (w < 0)
			continue;
		if (idle++ && tracee_dead(tid))
			return -ESRCH;
		if (mono_ms() >= end)
			return -ETIMEDOUT;
		if (can_wait) {
			sigtimedwait(&chld, NULL, &tick);
		} else {
			struct timespec ts = { 0, 200 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status))
		return -ESRCH;
	return 0;
}

int tracee_wait(pid_t tid, int *status)
{
	return wait_within(tid, status, -1);
}

int tracee_reap(pid_t tid, int secs)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };
	sigset_t chld;
	int status;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (int ticks = 0; ticks < secs * 10;) {
		pid_t w = waitpid(tid, &status, __WALL | WNOHANG);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == ECHILD ? 0 : -errno;
		if (w == tid && (WIFEXITED(status) || WIFSIGNALED(status)))
			return 0;
		if (w == tid) {
			/* a stop on its way out (an exit event): on */
			ptrace(PTRACE_CONT, tid, 0, 0);
			continue;
		}
		if (sigtimedwait(&chld, NULL, &tick) < 0)
			ticks++;
	}
	return -ETIMEDOUT;
}

/*
 * A wait with no deadline or an absolute one, stopped by us: the kernel
 * would resume it through restart_syscall, and a thread left inside
 * restart_syscall cannot be checkpointed again (a new process has no
 * restart block to go on with).  Made again with its own arguments, it is
 * exactly the same wait.
 */
static int same_if_made_again(const struct user_regs_struct *r)
{
	if (-(long)r->rax != ERESTART_RESTARTBLOCK)
		return 0;
	switch (r->orig_rax) {
	case 7: /* poll: no timeout */
		return (int)r->rdx < 0;
	case 271: /* ppoll: no timeout */
		return r->rdx == 0;
	case 230: /* clock_nanosleep: TIMER_ABSTIME */
		return r->rsi & 1;
	case 202: /* futex: FUTEX_WAIT_BITSET has an absolute timeout */
		return (r->rsi & 0x7f) == 9;
	}
	return 0;
}

/* Point a thread found in such a wait at the wait itself, at once: if we
 * die, the kernel resumes it there, never in restart_syscall. */
static int made_again(struct tracee *t)
{
	struct user_regs_struct again = t->regs;

	again.rax = again.orig_rax;
	again.orig_rax = (unsigned long)-1;
	again.rip -= 2;
	return ptrace(PTRACE_SETREGS, t->tid, 0, &again);
}

/*
 * A thread found inside restart_syscall: stopped once before (by a shell's
 * ^Z, a debugger, a capcr that died) in the middle of a wait that the
 * kernel then resumed from its restart block.  A new process has no
 * restart block, so restored that way the wait would fail with EINTR.  The
 * registers still hold the first call's arguments; its number is in the
 * `mov $NR, %eax` that libc's wrapper put just before the syscall
 * instruction.  Where that call, made again, is exactly the same wait
 * (same_if_made_again), the thread is taken to be in it.
 */
static void resumed_wait(struct tracee *t)
{
	struct user_regs_struct r = t->regs;
	unsigned char code[8];
	long word;

	if (r.orig_rax != 219 || -(long)r.rax != ERESTART_RESTARTBLOCK)
		return;
	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, t->tid, r.rip - 2 - 8, 0);
	if (errno)
		return;
	memcpy(code, &word, sizeof(code));
	if (code[3] != 0xb8 || code[6] || code[7])
		return;
	r.orig_rax = code[4] | (unsigned)code[5] << 8;
	if (same_if_made_again(&r))
		t->regs.orig_rax = r.orig_rax;
}

/*
 * A thread of ours that is not stopped yet, because a wait for its stop
 * failed: it stops soon.  Let it go then (within 200 ms), rather than
 * leave it ours and stopped until capcr ends: with the signal it stopped
 * for, if that was one on its way to it (after a call of ours a trap is
 * ours, not its), and after a call of ours with its own registers and mask
 * back.  0 once let go or ended, else -errno.
 */
static int put_back(struct tracee *t);

static int let_go_once_stopped(struct tracee *t, int after_call)
{
	for (int i = 0; i < 200; i++) {
		int st;
		pid_t w = waitpid(t->tid, &st, __WALL | WNOHANG);
		if (w < 0)
			return -errno;
		if (w == t->tid && !WIFSTOPPED(st))
			return 0; /* it ended */
		if (w == t->tid) {
			int sig = st >> 16 ? 0 : WSTOPSIG(st);
			if (after_call &&
			    (sig == SIGTRAP || sig == (SIGTRAP | 0x80)))
				sig = 0;
			if (after_call)
				put_back(t);
			return ptrace(PTRACE_DETACH, t->tid, 0, sig) < 0 ? -errno
									 : 0;
		}
		/* A stop already collected (the detach that brought us
		 * here failed for another reason): it can go now. */
		if (ptrace(PTRACE_DETACH, t->tid, 0, 0) == 0)
			return 0;
		usleep(1000);
	}
	return -ESRCH;
}

int tracee_seize(struct tracee *t, pid_t tid, unsigned options)
{
	int status, r;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	/* A tracee that dies with its tracer needs no rescue. */
	t->kill_safe = !(options & PTRACE_O_EXITKILL);
	if (ptrace(PTRACE_SEIZE, tid, 0,
		   (unsigned long)(options | TRACEE_OPTIONS)) < 0)
		return -errno;
	t->seized = 1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		goto fail;
	for (;;) {
		if ((r = tracee_wait(tid, &status)) < 0) {
			/* Seized but not seen to stop (the wait itself
			 * failed). */
			if (r != -ESRCH)
				let_go_once_stopped(t, 0);
			t->seized = 0;
			return r;
		}
		/* A signal that was on its way stops the thread first: keep
		 * it for the thread (re-inject on the next resume) and wait
		 * for our interrupt. */
		/* Our interrupt reports SIGTRAP; a thread already stopped
		 * by SIGSTOP or SIGTSTP (group-stop) reports that signal. */
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
			if (WSTOPSIG(status) != SIGTRAP)
				t->stop_sig = WSTOPSIG(status);
			break;
		}
		if (WIFSTOPPED(status)) {
			int sig = WSTOPSIG(status);
			if (ptrace(PTRACE_CONT, tid, 0, sig) < 0)
				goto fail;
			if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
				goto fail;
		}
	}
	if (ptrace(PTRACE_GETREGS, tid, 0, &t->regs) < 0 ||
	    ptrace(PTRACE_GETSIGMASK, tid, sizeof(t->sigmask), &t->sigmask) < 0)
		goto fail;
	resumed_wait(t);
	if (same_if_made_again(&t->regs) && made_again(t) < 0)
		goto fail;
	return 0;
fail:
	r = -errno;
	if (ptrace(PTRACE_DETACH, tid, 0, 0) < 0 && errno == ESRCH &&
	    !tracee_dead(tid)) {
		/* Ours but not stopped (our interrupt failed): only a
		 * stopped thread can be let go, so stop it first. */
		ptrace(PTRACE_INTERRUPT, tid, 0, 0);
		let_go_once_stopped(t, 0);
	}
	t->seized = 0;
	return r;
}

/* Registers stopped inside a system call that the kernel would restart
 * on the way out (rax holds one of its internal restart codes). */
static int restartable(const struct user_regs_struct *r)
{
	if ((long)r->orig_rax < 0)
		return 0;
	switch (-(long)r->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
	case ERESTART_RESTARTBLOCK:
		return 1;
	}
	return 0;
}

/*
 * The thread's own registers and mask, put back after every injected call.
 * At a syscall-exit stop the kernel's restart logic no longer runs, so a
 * thread found inside a restartable call gets it rewound by hand, the way
 * a checkpoint image holds it (tracee_restart_regs: a sleep or poll is
 * made again with its own arguments, not through restart_syscall, which
 * would leave the thread in a state no later restore can bring back).
 * Should capcr die now, the thread goes on correctly; tracee_release
 * later returns it to a stop where the kernel's own logic applies again.
 */
static int put_back(struct tracee *t)
{
	struct user_regs_struct r = t->regs;

	if (t->at_exit_stop && restartable(&r)) {
		tracee_restart_regs(t, &r);
		r.orig_rax = (unsigned long)-1;
	}
	/* The mask first: until the registers follow, the borrowed ones
	 * still lead into the rescue frame. */
	if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->sigmask),
		   &t->sigmask) < 0 ||
	    ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
		return -errno;
	return 0;
}

/*
 * From a syscall-exit stop back to a stop inside signal delivery (where
 * PTRACE_INTERRUPT stopped it first): the kernel then restarts the
 * interrupted call itself, or lets a pending signal interrupt it, exactly
 * as if we had never been there.
 */
static int back_to_signal_stop(struct tracee *t);

/* The registers and mask a kept-borrowed thread holds go back now. */
static int end_borrow(struct tracee *t)
{
	if (!t->borrowed)
		return 0;
	t->borrowed = 0;
	return put_back(t);
}

int tracee_to_signal_stop(struct tracee *t)
{
	int e = end_borrow(t);

	if (e < 0)
		return e;
	return t->at_exit_stop ? back_to_signal_stop(t) : 0;
}

void tracee_borrow_done(struct tracee *t)
{
	t->borrowed = 0;
}

static int back_to_signal_stop(struct tracee *t)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0 ||
	    ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
		return -errno;
	for (;;) {
		/* The trap comes at once (the thread runs no code of its
		 * own first); should it never come, the thread goes on
		 * as itself and capcr must not wait for it for ever. */
		int r = wait_within(t->tid, &status, 5000);
		if (r < 0)
			return r;
		if ((status >> 16) == PTRACE_EVENT_STOP)
			break;
		/* A signal on its way is dequeued only after the trap; any
		 * other event: go on. */
		if (ptrace(PTRACE_CONT, t->tid, 0,
			   (status >> 16) ? 0 : WSTOPSIG(status)) < 0)
			return -errno;
		if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0)
			return -errno;
	}
	t->at_exit_stop = 0;
	return 0;
}

/* The gadgets, and for a tracee that must survive our death the rescue
 * frame (rescue.c), before the first injected call. */
static int prepare(struct tracee *t)
{
	struct rescue_gadgets g;

	int r = rescue_gadgets(t->tid, t->kill_safe, &g);
	if (r < 0)
		return r;
	t->gadget = g.syscall;
	if (t->kill_safe && g.syscall_ret && g.restorer) {
		struct user_regs_struct own;
		tracee_restart_regs(t, &own);
		t->frame = rescue_frame_write(t->tid, &own, t->sigmask,
					      g.restorer);
		if (t->frame) {
			t->gadget = g.syscall_ret;
			t->scratch = t->frame - RESCUE_SCRATCH;
		}
	}
	return 0;
}

int tracee_prepare(struct tracee *t)
{
	return t->gadget || prepare(t) == 0 ? 0 : -1;
}

long tracee_syscall(struct tracee *t, long nr, long a1, long a2, long a3,
		    long a4, long a5, long a6)
{
	struct user_regs_struct r = t->regs;
	uint64_t all = ~0ULL;
	int status, entered = 0, stops = 0;
	long ret;

	int e;

	if (t->lost) {
		errno = t->lost;
		return TRACEE_INJECT_FAILED;
	}
	if (!t->gadget && (e = prepare(t)) < 0) {
		errno = -e;
		return TRACEE_INJECT_FAILED;
	}
	if (t->frame)
		r.rsp = t->frame;
	r.rip = t->gadget;
	r.rax = (unsigned long)nr;
	r.orig_rax = (unsigned long)-1; /* no restart logic on resume */
	r.rdi = (unsigned long)a1;
	r.rsi = (unsigned long)a2;
	r.rdx = (unsigned long)a3;
	r.r10 = (unsigned long)a4;
	r.r8 = (unsigned long)a5;
	r.r9 = (unsigned long)a6;
	/* Registers first, then the mask that keeps signals out while we
	 * borrow the thread: at every moment in between, the rescue frame
	 * holds its own mask. */
	/* A thread that dies with capcr may be single-stepped over the
	 * call: one stop instead of the entry and exit stops (the trap flag
	 * that would outlive capcr's death cannot outlive the thread). */
	int step = t->keep_borrowed;
	enum __ptrace_request go = step ? PTRACE_SINGLESTEP : PTRACE_SYSCALL;
	t->regs_dirty = 1;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0 ||
	    (!t->borrowed &&
	     ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(all), &all) < 0) ||
	    ptrace(go, t->tid, 0, 0) < 0)
		goto broken;
	for (;;) {
		if ((e = tracee_wait(t->tid, &status)) < 0) {
			errno = t->lost = -e; /* it is gone */
			t->stop_unseen = e != -ESRCH;
			return TRACEE_INJECT_FAILED;
		}
		int sig = WSTOPSIG(status);
		if (WIFSTOPPED(status) && (status >> 16) == 0 &&
		    (sig == (SIGTRAP | 0x80) || sig == SIGTRAP)) {
			if (step || entered++)
				break; /* the exit stop, or the step's trap */
		}
		/* A fault of the call itself comes back at every resume:
		 * the call cannot be made here. */
		if (WIFSTOPPED(status) && (status >> 16) == 0 &&
		    (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
		     sig == SIGFPE)) {
			errno = EFAULT;
			goto broken;
		}
		if (++stops > 64) {
			errno = EPROTO; /* stops without end */
			goto broken;
		}
		/* The entry stop, or an event such as PTRACE_EVENT_CLONE
		 * while an injected clone runs, or a group stop: go on to
		 * the exit stop. */
		if (ptrace(go, t->tid, 0, 0) < 0)
			goto broken;
	}
	/* After a step the thread is in signal delivery (the trap's), as
	 * tracee_to_signal_stop would leave it. */
	t->at_exit_stop = !step;
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
		goto broken;
	if (r.rip != t->gadget + 2) {
		errno = EIO; /* stopped somewhere else than after our call */
		goto broken;
	}
	ret = (long)r.rax;
	/* A thread that dies with capcr keeps the call's state until it is
	 * let go: 4 ptrace requests a call instead of 8 (a restore of 100
	 * threads makes some 4500 calls). */
	if (t->keep_borrowed) {
		t->borrowed = 1;
		return ret;
	}
	/* Hand the thread its own state back at once, so that if we die
	 * now it goes on as it would have: no register and no mask of ours
	 * outlives the call (see put_back). */
	if ((e = put_back(t)) < 0) {
		errno = t->lost = -e;
		return TRACEE_INJECT_FAILED;
	}
	return ret;
broken:
	e = errno ? errno : EIO;
	put_back(t);
	errno = t->lost = e;
	return TRACEE_INJECT_FAILED;
}

long tracee_call(struct tracee *t, long nr, long a1, long a2, long a3,
		 long a4, long a5, long a6)
{
	long r = tracee_syscall(t, nr, a1, a2, a3, a4, a5, a6);
	return r <= TRACEE_INJECT_FAILED ? -(errno ? errno : EIO) : r;
}

/*
 * A wait for the stops of a call of ours failed, not the thread: the
 * thread still reaches them.  Collect them up to the call's end, so that
 * the thread is released from a stop it was seen in (a resume from one
 * never collected was seen to run on without the stop
 * PTRACE_INTERRUPT asks for, and a wait for it never ended).  0, or
 * -errno when the thread is not seen to get there within seconds.
 */
static int finish_call(struct tracee *t)
{
	int step = t->keep_borrowed;

	for (int k = 0; k < 16; k++) {
		struct __ptrace_syscall_info si;
		int st, r = wait_within(t->tid, &st, 5000);

		if (r < 0)
			return r;
		int sig = WSTOPSIG(st);
		if ((st >> 16) == 0 && sig == SIGTRAP && step) {
			t->at_exit_stop = 0;
			break;
		}
		if ((st >> 16) == 0 && sig == (SIGTRAP | 0x80) &&
		    ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, sizeof(si), &si) > 0 &&
		    si.op == PTRACE_SYSCALL_INFO_EXIT) {
			t->at_exit_stop = 1;
			break;
		}
		/* The call's entry, or an event on the way: on to its end. */
		if (ptrace(step ? PTRACE_SINGLESTEP : PTRACE_SYSCALL, t->tid,
			   0, 0) < 0)
			return -errno;
	}
	t->stop_unseen = 0;
	return 0;
}

int tracee_release(struct tracee *t)
{
	int r = 0;

	if (!t->seized)
		return 0;
	t->borrowed = 0; /* what follows sets both */
	if (t->stop_unseen && (r = finish_call(t)) < 0) {
		/* Never seen to stop: it stays ours until capcr ends (the
		 * kernel then lets it go), its rescue frame leading it back
		 * to its own state. */
		t->seized = 0;
		return r;
	}
	if (same_if_made_again(&t->regs)) {
		if (made_again(t) < 0 ||
		    ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->sigmask),
			   &t->sigmask) < 0)
			r = -errno;
	} else if (t->regs_dirty) {
		if (t->at_exit_stop && restartable(&t->regs))
			r = back_to_signal_stop(t);
		/* Gone, or only a request that failed: then it is still
		 * ours and must be let go all the same. */
		if (r == -ESRCH && tracee_dead(t->tid))
			goto out;
		/* On failure the rewound registers put_back left stand. */
		if (!r && (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0 ||
			   ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->sigmask),
				  &t->sigmask) < 0))
			r = -errno;
	}
	if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0) {
		/* Not stopped yet (a wait for its stop failed). */
		int e = errno == ESRCH ? let_go_once_stopped(t, 1) : -errno;
		if (e && !r)
			r = e;
	}
out:
	t->seized = 0;
	return r;
}

void tracee_restart_regs(const struct tracee *t, struct user_regs_struct *out)
{
	*out = t->regs;
	if ((long)out->orig_rax < 0)
		return;
	switch (-(long)out->rax) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		out->rax = out->orig_rax;
		out->rip -= 2;
		break;
	case ERESTART_RESTARTBLOCK:
		/* The kernel would go on with restart_syscall and the state
		 * it kept in the thread's restart block, which a new process
		 * does not have (restart_syscall there fails with EINTR).
		 * The waits that use it are made again with their own
		 * arguments instead: an absolute deadline is kept exactly, a
		 * relative timeout starts over in full.  Anything else gets
		 * restart_syscall, and EINTR. */
		switch (out->orig_rax) {
		case 7:   /* poll */
		case 35:  /* nanosleep */
		case 202: /* futex */
		case 230: /* clock_nanosleep */
		case 271: /* ppoll */
			out->rax = out->orig_rax;
			break;
		default:
			out->rax = 219; /* __NR_restart_syscall */
		}
		out->rip -= 2;
		break;
	}
}
