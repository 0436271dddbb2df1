/* SPDX-License-Identifier: MIT */
/*
 * Running system calls inside a stopped thread of another process.
 *
 * What only a process can ask about itself (its signal handlers, alternate
 * stack, timers, clear-child-tid address) and what only it can set (its
 * memory layout, rseq, robust list) is done by making the thread execute one
 * system call: its registers are saved, rip is pointed at a `syscall`
 * instruction already mapped in it (in its vDSO), the call's number and
 * arguments go into the registers, the thread single-steps over the
 * instruction, and the result is read from rax.  The target's memory is
 * never written for this, and every register goes back as it was, so a
 * thread that was inside a system call restarts it as the kernel would
 * have.  Signals are blocked for the duration, so none is delivered (or
 * lost) in the middle.
 */
#ifndef CAPCR_INJECT_H
#define CAPCR_INJECT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct tracee {
	pid_t tid;
	int seized;
	int regs_dirty;    /* registers or mask changed: put back on release */
	uint64_t gadget;   /* address of a syscall instruction in the tracee */
	uint64_t sigmask;  /* blocked mask as found */
	struct user_regs_struct regs; /* registers as found */
};

/* Seize tid (PTRACE_SEIZE) and stop it (PTRACE_INTERRUPT) without sending
 * it a signal.  Returns 0, or -errno. */
int tracee_seize(struct tracee *t, pid_t tid, unsigned options);
/* Find a syscall instruction in the vDSO of pid (0 on failure). */
uint64_t tracee_find_gadget(pid_t pid);
/* Run one system call in the stopped tracee; returns its result (-errno on
 * failure, as the kernel returns it), or a value < -4095 if injecting
 * itself failed (then *err says why). */
long tracee_syscall(struct tracee *t, long nr, long a1, long a2, long a3,
		    long a4, long a5, long a6);
/* Put back the registers and mask as found and detach: the thread goes on
 * exactly where it was.  Returns 0 or -errno. */
int tracee_release(struct tracee *t);
/* Registers as found, with a pending restartable system call rewound the
 * way the kernel would restart it (for a checkpoint image); a sleep or
 * poll is made again with its own arguments (see inject.c). */
void tracee_restart_regs(const struct tracee *t,
			 struct user_regs_struct *out);

#define TRACEE_INJECT_FAILED (-100000L)

#endif
