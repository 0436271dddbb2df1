/* SPDX-License-Identifier: MIT */
/*
 * Running system calls inside a stopped thread of another process.
 *
 * What only a process can ask about itself (its signal handlers, alternate
 * stack, timers, clear-child-tid address) and what only it can set (its
 * memory layout, rseq, robust list) is done by making the thread execute one
 * system call: rip is pointed at a `syscall` instruction already mapped in
 * it (in its vDSO), the call's number and arguments go into the registers,
 * and the thread runs from its syscall-entry stop to its syscall-exit stop
 * (PTRACE_SYSCALL), where the result is read from rax.  Nothing is written
 * into the target for this, and signals are blocked for the duration, so
 * none is delivered (or lost) in the middle.
 *
 * capcr may be killed at any moment; the kernel then detaches its tracees
 * and resumes them with whatever registers they hold.  So the thread's own
 * registers and mask go back right after each call, not only when capcr
 * lets it go, and during a call a rescue frame on the thread's stack
 * returns it to its own state should it run on alone (rescue.c).  No
 * single-stepping is used: the trap flag would survive the tracer's death
 * and kill the thread with SIGTRAP.
 */
#ifndef CAPCR_INJECT_H
#define CAPCR_INJECT_H

#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>

struct tracee {
	pid_t tid;
	int seized;
	int regs_dirty;    /* registers or mask changed: put back on release */
	int at_exit_stop;  /* stopped at the exit of an injected call */
	int kill_safe;     /* must survive capcr's death (not EXITKILL) */
	int stop_sig;      /* stopped by this signal (group-stop) when seized */
	int lost;          /* an injected call broke off: its errno, and no
			    * further call is tried (where the thread stopped
			    * is not known) */
	int stop_unseen;   /* and the wait for its stop failed (not the
			    * thread): that stop is still to be collected */
	int keep_borrowed; /* a thread of a process capcr is making, killed
			    * if capcr dies (restore): its registers and mask
			    * are handed back only when it is let go or walked
			    * to a signal stop, not after every call */
	int borrowed;      /* keep_borrowed, and a call's state is in it */
	uint64_t gadget;   /* address of a syscall instruction in the tracee */
	uint64_t frame;    /* rescue frame: rsp of injected calls, or 0 */
	uint64_t scratch;  /* free stack room under the frame, or 0 */
	uint64_t sigmask;  /* blocked mask as found */
	struct user_regs_struct regs; /* registers as found */
};

/* Make the calling thread (and the threads it makes from now on) fit to
 * trace: SIGCHLD is kept pending for the waits here.  Called first by a
 * command that traces. */
void tracer_init(void);
/* Wait for tid's next stop (or its end: -ESRCH), in bounded steps, noticing
 * a thread group that dies while we wait. */
int tracee_wait(pid_t tid, int *status);
/* For the calling thread from now on: tracee_wait blocks in waitpid until
 * the tracee stops or ends, rather than waiting for SIGCHLD in bounded
 * ticks.  For a thread among several tracers (SIGCHLD is one for the
 * whole process, and another thread would take it); someone else must
 * then watch that no wait can last for ever (restore/pool.c). */
void tracee_wait_blocking(int on);
/* Reap tid, a thread of ours that was killed: wait (secs at most) until
 * its end is reported to us, as __WALL waits see it, or it is not ours to
 * wait for.  A zombie that is still traced is not reaped by anyone else,
 * and its thread group's leader (and the group's pidfd) waits for it, so
 * "a zombie" is not enough here.  0, or -errno (-ETIMEDOUT). */
int tracee_reap(pid_t tid, int secs);
/* Seize tid (PTRACE_SEIZE) and stop it (PTRACE_INTERRUPT) without sending
 * it a signal.  Returns 0, or -errno. */
int tracee_seize(struct tracee *t, pid_t tid, unsigned options);
/* Find what injected calls need, and write the rescue frame of a tracee
 * that must survive capcr's death (rescue.c), if not done yet: then
 * t->scratch is free room in the tracee for the answers of injected
 * calls.  0, or -1 if no call can be injected. */
int tracee_prepare(struct tracee *t);
/* Run one system call in the stopped tracee; returns its result (-errno on
 * failure, as the kernel returns it), or TRACEE_INJECT_FAILED if injecting
 * itself failed (then errno says why). */
long tracee_syscall(struct tracee *t, long nr, long a1, long a2, long a3,
		    long a4, long a5, long a6);
/* The same, with an injection failure as -errno of its cause: for callers
 * that only report, as a failed call of the tracee's would be. */
long tracee_call(struct tracee *t, long nr, long a1, long a2, long a3,
		 long a4, long a5, long a6);
/* Walk a thread stopped at the exit of an injected call to a stop inside
 * signal delivery, where registers of an interrupted call (orig_rax, a
 * -ERESTART* rax) make the kernel restart it or fail it with EINTR as a
 * signal handler requires, once let go.  0, or -errno. */
int tracee_to_signal_stop(struct tracee *t);
/* A kept-borrowed thread was given its final registers and mask by its
 * caller: nothing of a call's is left to hand back. */
void tracee_borrow_done(struct tracee *t);
/* Put back the registers and mask as found and detach: the thread goes on
 * exactly where it was.  Returns 0 or -errno. */
int tracee_release(struct tracee *t);
/* Registers as found, with a pending restartable system call rewound the
 * way the kernel would restart it (for a checkpoint image); a sleep or
 * poll is made again with its own arguments (see inject.c). */
void tracee_restart_regs(const struct tracee *t,
			 struct user_regs_struct *out);

#define TRACEE_INJECT_FAILED (-100000L)

/* Options every tracer of capcr's sets (syscall stops told apart). */
#define TRACEE_OPTIONS PTRACE_O_TRACESYSGOOD

#endif
