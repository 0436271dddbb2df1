/* SPDX-License-Identifier: MIT */
/*
 * The rescue frame that returns a thread to its own state should capcr die
 * during an injected system call (rescue.c says how).
 */
#ifndef CAPCR_RESCUE_H
#define CAPCR_RESCUE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct rescue_gadgets {
	uint64_t syscall;     /* a `syscall` instruction in the vDSO */
	uint64_t syscall_ret; /* `syscall; xor...; ret` in the vDSO, or 0 */
	uint64_t restorer;    /* code calling rt_sigreturn, or 0 */
	uint64_t vdso_end;
};

/* The addresses above for the process of thread tid; with rescue 0, the
 * plain `syscall` only.  Kept for the process's other threads.  0, or
 * -errno. */
int rescue_gadgets(pid_t tid, int rescue, struct rescue_gadgets *g);

/* Write a signal frame below the stack pointer of the stopped thread tid
 * that returns it to regs (with its FPU state and sigmask) through
 * restorer.  Returns the frame's address, to be the stack pointer of
 * injected calls, or 0 where that cannot be done (no stack room). */
uint64_t rescue_frame_write(pid_t tid, const struct user_regs_struct *regs,
			    uint64_t sigmask, uint64_t restorer);

/* Free room the frame leaves under itself, for answers of injected calls. */
#define RESCUE_SCRATCH 512

#endif
