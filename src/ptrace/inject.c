/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "inject.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

static int wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t w = waitpid(tid, status, __WALL);
		if (w == tid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status))
		return -ESRCH;
	return 0;
}

int tracee_seize(struct tracee *t, pid_t tid, unsigned options)
{
	int status, r;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (ptrace(PTRACE_SEIZE, tid, 0, (unsigned long)options) < 0)
		return -errno;
	t->seized = 1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
		goto fail;
	for (;;) {
		if ((r = wait_stop(tid, &status)) < 0)
			return r;
		/* A signal that was on its way stops the thread first: keep
		 * it for the thread (re-inject on the next resume) and wait
		 * for our interrupt. */
		if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP)
			break;
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
	return 0;
fail:
	r = -errno;
	ptrace(PTRACE_DETACH, tid, 0, 0);
	t->seized = 0;
	return r;
}

uint64_t tracee_find_gadget(pid_t pid)
{
	char path[64], line[256];
	uint64_t start = 0, end = 0, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
	fclose(f);
	if (!start || end - start > (1 << 20))
		return 0;
	unsigned char buf[1 << 16];
	size_t len = end - start < sizeof(buf) ? end - start : sizeof(buf);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (pread(fd, buf, len, (off_t)start) == (ssize_t)len)
		for (size_t i = 0; i + 1 < len; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				found = start + i;
				break;
			}
	close(fd);
	return found;
}

long tracee_syscall(struct tracee *t, long nr, long a1, long a2, long a3,
		    long a4, long a5, long a6)
{
	struct user_regs_struct r = t->regs;
	uint64_t all = ~0ULL;
	int status;

	if (!t->gadget && !(t->gadget = tracee_find_gadget(t->tid)))
		return TRACEE_INJECT_FAILED;
	if (!t->regs_dirty) {
		/* No signal may be delivered while we borrow the thread. */
		if (ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(all), &all) < 0)
			return TRACEE_INJECT_FAILED;
		t->regs_dirty = 1;
	}
	r.rip = t->gadget;
	r.rax = (unsigned long)nr;
	r.orig_rax = (unsigned long)-1; /* no restart logic on resume */
	r.rdi = (unsigned long)a1;
	r.rsi = (unsigned long)a2;
	r.rdx = (unsigned long)a3;
	r.r10 = (unsigned long)a4;
	r.r8 = (unsigned long)a5;
	r.r9 = (unsigned long)a6;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0 ||
	    ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0)
		return TRACEE_INJECT_FAILED;
	for (;;) {
		if (wait_stop(t->tid, &status) < 0)
			return TRACEE_INJECT_FAILED;
		if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP &&
		    (status >> 16) == 0)
			break;
		/* Any other stop (an event such as PTRACE_EVENT_CLONE while
		 * an injected clone runs, a group stop): go on stepping. */
		if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0)
			return TRACEE_INJECT_FAILED;
	}
	if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
		return TRACEE_INJECT_FAILED;
	if (r.rip != t->gadget + 2)
		return TRACEE_INJECT_FAILED;
	return (long)r.rax;
}

int tracee_release(struct tracee *t)
{
	int r = 0;

	if (!t->seized)
		return 0;
	if (t->regs_dirty &&
	    (ptrace(PTRACE_SETREGS, t->tid, 0, &t->regs) < 0 ||
	     ptrace(PTRACE_SETSIGMASK, t->tid, sizeof(t->sigmask),
		    &t->sigmask) < 0))
		r = -errno;
	if (ptrace(PTRACE_DETACH, t->tid, 0, 0) < 0 && !r)
		r = -errno;
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
