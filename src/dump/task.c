/* SPDX-License-Identifier: MIT */
/*
 * Dumping a process's own state: identity, registers, signals, timers,
 * limits, the mm layout.  What /proc and ptrace show is read from outside;
 * what only the process can ask (handlers, alternate stack, interval
 * timers, POSIX timer values, clear-child-tid) is asked by system calls run
 * inside it (src/ptrace/inject.h).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/user.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../proc/attrs.h"
#include "../proc/cgroups.h"
#include "../proc/creds.h"
#include "dump.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
/* struct ptrace_rseq_configuration, which glibc's headers lack */
struct rseq_config {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};
#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
struct ptrace_peeksiginfo_args {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};
#endif

/* The kernel's struct sigaction for rt_sigaction (not libc's). */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

static char *read_link(struct dump_ctx *ctx, const char *what)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", ctx->pid, what);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	if (n == sizeof(buf) - 1) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	buf[n] = 0;
	return arena_strdup(ctx->arena, buf);
}

/* /proc/PID/stat: identity and the mm layout fields. */
static int dump_stat(struct dump_ctx *ctx, Capcr__Task *t)
{
	struct proc_stat st;

	if (proc_stat_read(ctx->pid, 0, &st) < 0)
		return errno == EBADMSG
			       ? DUMP_FAIL(ctx, "cannot parse /proc/%d/stat",
					   ctx->pid)
			       : DUMP_FAIL(ctx, "process %d exited during the "
						"dump", ctx->pid);
	t->pid = ctx->pid;
	t->ppid = st.ppid;
	t->pgid = st.pgrp;
	t->sid = st.session;
	t->comm = arena_strdup(ctx->arena, st.comm);
	t->has_exit_signal = 1;
	t->exit_signal = (uint32_t)st.exit_signal;
	Capcr__MmLayout *m = ARENA_NEW(ctx->arena, Capcr__MmLayout);
	capcr__mm_layout__init(m);
	m->start_code = st.start_code;
	m->end_code = st.end_code;
	m->start_stack = st.start_stack;
	m->start_data = st.start_data;
	m->end_data = st.end_data;
	m->start_brk = st.start_brk;
	m->arg_start = st.arg_start;
	m->arg_end = st.arg_end;
	m->env_start = st.env_start;
	m->env_end = st.env_end;
	t->mm = m;
	return 0;
}

static int dump_status(struct dump_ctx *ctx, Capcr__Task *t)
{
	char path[64], buf[8192];

	snprintf(path, sizeof(path), "/proc/%d/status", ctx->pid);
	if (proc_read_small(path, buf, sizeof(buf)) < 0)
		return DUMP_FAIL(ctx, "process %d exited during the dump",
				 ctx->pid);
	if (creds_dump(ctx, t, buf) < 0 || attrs_dump(ctx, t, buf) < 0)
		return -1;
	char *u = strstr(buf, "\nUmask:");
	t->umask = u ? (uint32_t)strtoul(u + 7, NULL, 8) : 022;
	snprintf(path, sizeof(path), "/proc/%d/personality", ctx->pid);
	if (proc_read_small(path, buf, sizeof(buf)) > 0)
		t->personality = (uint32_t)strtoul(buf, NULL, 16);
	if (!(t->cwd = read_link(ctx, "cwd")))
		return DUMP_FAIL(ctx, "cannot read the working directory of "
				      "process %d (/proc/%d/cwd): %s",
				 ctx->pid, ctx->pid, strerror(errno));
	t->root = read_link(ctx, "root");
	t->exe = read_link(ctx, "exe");
	/* auxv, for PR_SET_MM_MAP at restore */
	char av[4096];
	snprintf(path, sizeof(path), "/proc/%d/auxv", ctx->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, av, sizeof(av));
		close(fd);
		if (n > 0) {
			t->has_auxv = 1;
			t->auxv.len = (size_t)n;
			t->auxv.data = arena_memdup(ctx->arena, av, (size_t)n);
		}
	}
	return 0;
}

static int dump_rlimits(struct dump_ctx *ctx, Capcr__Task *t)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit rl;
		/* Another user's limits need CAP_SYS_RESOURCE, which root
		 * may lack; the process itself may always read its own. */
		long e = prlimit(ctx->pid, r, NULL, &rl) < 0 ? -errno : 0;
		if (e == -EPERM &&
		    (e = dump_syscall(ctx, SYS_prlimit64, 0, r, 0,
				      (long)ctx->scratch, 0, 0)) == 0 &&
		    dump_peek(ctx, ctx->scratch, &rl, sizeof(rl)) < 0)
			e = -EIO;
		if (e < 0)
			return DUMP_FAIL(ctx, "cannot read limit %d of process "
					      "%d: %s",
					 r, ctx->pid, strerror((int)-e));
		Capcr__Rlimit *x = ARENA_NEW(ctx->arena, Capcr__Rlimit);
		capcr__rlimit__init(x);
		x->resource = (uint32_t)r;
		x->cur = rl.rlim_cur;
		x->max = rl.rlim_max;
		arena_push(ctx->arena, (void ***)&t->rlimits, &t->n_rlimits, x);
	}
	return 0;
}

/* Pending signals (per thread, or shared with flags) as raw siginfo. */
static int peek_pending(struct dump_ctx *ctx, pid_t tid, int shared,
			ProtobufCBinaryData **out, size_t *n)
{
	siginfo_t si[32];

	for (uint64_t off = 0;;) {
		struct ptrace_peeksiginfo_args a = {
			.off = off,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = 32,
		};
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &a, si);
		if (got < 0)
			return DUMP_FAIL(ctx, "cannot read pending signals of "
					      "%d: %s", tid, strerror(errno));
		if (got == 0)
			return 0;
		for (long i = 0; i < got; i++) {
			size_t k = *n;
			*out = k ? *out : NULL;
			ProtobufCBinaryData *nv = arena_alloc(
				ctx->arena, (k + 1) * sizeof(*nv));
			if (k)
				memcpy(nv, *out, k * sizeof(*nv));
			nv[k].len = sizeof(siginfo_t);
			nv[k].data = arena_memdup(ctx->arena, &si[i],
						  sizeof(siginfo_t));
			*out = nv;
			*n = k + 1;
		}
		off += (uint64_t)got;
	}
}

static int dump_thread_regs(struct dump_ctx *ctx, struct tracee *tr,
			    Capcr__Thread *th)
{
	struct user_regs_struct regs;
	static char xstate[64 * 1024];
	struct iovec iov = { xstate, sizeof(xstate) };
	struct rseq_config rc;

	th->tid = tr->tid;
	tracee_restart_regs(tr, &regs);
	if ((long)tr->regs.orig_rax >= 0 && -(long)tr->regs.rax >= 512 &&
	    -(long)tr->regs.rax <= 514) {
		th->has_restart = 1;
		th->restart = (uint32_t)-(long)tr->regs.rax;
	}
	th->regs.len = sizeof(regs);
	th->regs.data = arena_memdup(ctx->arena, &regs, sizeof(regs));
	if (ptrace(PTRACE_GETREGSET, tr->tid, NT_X86_XSTATE, &iov) == 0) {
		th->has_xstate = 1;
		th->xstate.len = iov.iov_len;
		th->xstate.data = arena_memdup(ctx->arena, xstate, iov.iov_len);
	}
	th->sigmask = tr->sigmask;
	if (peek_pending(ctx, tr->tid, 0, &th->pending, &th->n_pending) < 0)
		return -1;
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tr->tid, sizeof(rc), &rc) <= 0)
		return DUMP_FAIL(ctx, "cannot read the rseq registration of "
				      "thread %d: %s",
				 tr->tid, strerror(errno));
	if (rc.rseq_abi_pointer) {
		th->has_rseq_addr = th->has_rseq_len = th->has_rseq_sig = 1;
		th->rseq_addr = rc.rseq_abi_pointer;
		th->rseq_len = rc.rseq_abi_size;
		th->rseq_sig = rc.signature;
	}
	uint64_t head = 0;
	size_t len = 0;
	if (syscall(SYS_get_robust_list, tr->tid, &head, &len) == 0) {
		th->has_robust_list = th->has_robust_list_len = 1;
		th->robust_list = head;
		th->robust_list_len = len;
	}
	return 0;
}

/* What only the thread can tell: asked through injected system calls,
 * the answers written to the scratch page and read back. */
static int dump_thread_inside(struct dump_ctx *ctx, struct tracee *tr,
			      Capcr__Thread *th)
{
	uint64_t s = ctx->scratch;
	long r;

	stack_t ss;
	r = dump_syscall_in(tr, SYS_sigaltstack, 0, (long)s, 0, 0, 0, 0);
	if (r < 0 || dump_peek(ctx, s, &ss, sizeof(ss)) < 0)
		return DUMP_FAIL(ctx, "cannot read the alternate signal stack "
				      "of thread %d: %s",
				 tr->tid, strerror(r < 0 ? (int)-r : errno));
	if (!(ss.ss_flags & SS_DISABLE)) {
		th->has_altstack_sp = th->has_altstack_size = 1;
		th->has_altstack_flags = 1;
		th->altstack_sp = (uintptr_t)ss.ss_sp;
		th->altstack_size = ss.ss_size;
		th->altstack_flags = ss.ss_flags & ~SS_ONSTACK;
	}
	uint64_t ctid = 0;
	r = dump_syscall_in(tr, SYS_prctl, PR_GET_TID_ADDRESS, (long)s, 0, 0,
			    0, 0);
	if (r == 0 && dump_peek(ctx, s, &ctid, sizeof(ctid)) == 0) {
		th->has_clear_child_tid = 1;
		th->clear_child_tid = ctid;
	}
	char comm[17] = { 0 };
	r = dump_syscall_in(tr, SYS_prctl, PR_GET_NAME, (long)s, 0, 0, 0, 0);
	if (r == 0 && dump_peek(ctx, s, comm, 16) == 0)
		th->comm = arena_strdup(ctx->arena, comm);
	return 0;
}

/*
 * The signals whose action is not the default, from SigCgt and SigIgn of
 * /proc/PID/status, and SIGCHLD (its SA_NOCLDWAIT, SA_NOCLDSTOP change
 * what the kernel does even with SIG_DFL): only those are asked, each an
 * injected call, 2 stops.  A default action's sa_flags and sa_mask change
 * nothing the kernel does, and are left out.  All 64 when status cannot
 * be read.
 */
static uint64_t not_default(pid_t pid)
{
	char path[64], st[4096];
	uint64_t cgt, ign;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (proc_read_small(path, st, sizeof(st)) < 0 ||
	    proc_status_hex(st, "\nSigCgt:", &cgt) < 0 ||
	    proc_status_hex(st, "\nSigIgn:", &ign) < 0)
		return ~0ULL;
	return cgt | ign | 1ULL << (SIGCHLD - 1);
}

static int dump_sigactions(struct dump_ctx *ctx, Capcr__Task *t)
{
	uint64_t ask = not_default(ctx->pid);

	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction ka;
		if (sig == SIGKILL || sig == SIGSTOP ||
		    !(ask & (1ULL << (sig - 1))))
			continue;
		long r = dump_syscall(ctx, SYS_rt_sigaction, sig, 0,
				      (long)ctx->scratch, 8, 0, 0);
		if (r < 0 || dump_peek(ctx, ctx->scratch, &ka, sizeof(ka)) < 0)
			return DUMP_FAIL(ctx, "cannot read the handler of "
					      "signal %d of process %d: %s",
					 sig, ctx->pid,
					 strerror(r < 0 ? (int)-r : errno));
		if (!ka.handler && !ka.flags && !ka.mask)
			continue; /* SIG_DFL, nothing to restore */
		Capcr__SigAction *a = ARENA_NEW(ctx->arena, Capcr__SigAction);
		capcr__sig_action__init(a);
		a->sig = (uint32_t)sig;
		a->handler = ka.handler;
		a->flags = ka.flags;
		a->restorer = ka.restorer;
		a->mask = ka.mask;
		arena_push(ctx->arena, (void ***)&t->sigactions,
			   &t->n_sigactions, a);
	}
	return 0;
}

static int dump_itimers(struct dump_ctx *ctx, Capcr__Task *t)
{
	for (int w = 0; w < 3; w++) {
		struct itimerval it;
		long r = dump_syscall(ctx, SYS_getitimer, w,
				      (long)ctx->scratch, 0, 0, 0, 0);
		if (r < 0 || dump_peek(ctx, ctx->scratch, &it, sizeof(it)) < 0)
			return DUMP_FAIL(ctx, "cannot read interval timer %d of "
					      "process %d: %s",
					 w, ctx->pid,
					 strerror(r < 0 ? (int)-r : errno));
		if (!it.it_value.tv_sec && !it.it_value.tv_usec &&
		    !it.it_interval.tv_sec && !it.it_interval.tv_usec)
			continue;
		Capcr__Itimer *x = ARENA_NEW(ctx->arena, Capcr__Itimer);
		capcr__itimer__init(x);
		x->which = (uint32_t)w;
		x->interval_us = (uint64_t)it.it_interval.tv_sec * 1000000 +
				 (uint64_t)it.it_interval.tv_usec;
		x->value_us = (uint64_t)it.it_value.tv_sec * 1000000 +
			      (uint64_t)it.it_value.tv_usec;
		arena_push(ctx->arena, (void ***)&t->itimers, &t->n_itimers,
			   x);
	}
	return 0;
}

/* /proc/PID/timers lists ids and how each notifies; the values come from
 * timer_gettime inside. */
static int dump_posix_timers(struct dump_ctx *ctx, Capcr__Task *t)
{
	char path[64], line[256];
	FILE *f;
	Capcr__PosixTimer *cur = NULL;

	snprintf(path, sizeof(path), "/proc/%d/timers", ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		int v, tid;
		char how[32], who[4];
		unsigned long long sv;
		if (sscanf(line, "ID: %d", &v) == 1) {
			cur = ARENA_NEW(ctx->arena, Capcr__PosixTimer);
			capcr__posix_timer__init(cur);
			cur->id = v;
			arena_push(ctx->arena, (void ***)&t->posix_timers,
				   &t->n_posix_timers, cur);
		} else if (cur && sscanf(line, "signal: %d/%llx", &v, &sv) == 2) {
			cur->signo = v;
			cur->has_sigval = 1;
			cur->sigval = sv;
		} else if (cur && sscanf(line, "notify: %31[^/]/%3[a-z].%d", how,
					 who, &tid) == 3) {
			cur->notify = !strcmp(how, "signal")   ? SIGEV_SIGNAL
				      : !strcmp(how, "thread") ? SIGEV_THREAD
							       : SIGEV_NONE;
			if (!strcmp(who, "tid"))
				cur->notify |= SIGEV_THREAD_ID;
			cur->has_notify_tid = 1;
			cur->notify_tid = tid;
		} else if (cur && sscanf(line, "ClockID: %d", &v) == 1) {
			cur->clockid = v;
		}
	}
	fclose(f);
	for (size_t i = 0; i < t->n_posix_timers; i++) {
		struct itimerspec its;
		Capcr__PosixTimer *x = t->posix_timers[i];
		long r = dump_syscall(ctx, SYS_timer_gettime, x->id,
				      (long)ctx->scratch, 0, 0, 0, 0);
		if (r < 0 || dump_peek(ctx, ctx->scratch, &its, sizeof(its)) < 0)
			return DUMP_FAIL(ctx, "cannot read POSIX timer %d", x->id);
		x->interval_ns = (uint64_t)its.it_interval.tv_sec * 1000000000 +
				 (uint64_t)its.it_interval.tv_nsec;
		x->value_ns = (uint64_t)its.it_value.tv_sec * 1000000000 +
			      (uint64_t)its.it_value.tv_nsec;
		r = dump_syscall(ctx, SYS_timer_getoverrun, x->id, 0, 0, 0, 0,
				 0);
		if (r >= 0) {
			x->has_overrun = 1;
			x->overrun = (int32_t)r;
		}
	}
	return 0;
}

int dump_task(struct dump_ctx *ctx)
{
	Capcr__Task *t = ARENA_NEW(ctx->arena, Capcr__Task);

	capcr__task__init(t);
	ctx->task = t;
	/* Stopped by a signal (a shell's ^Z, SIGSTOP): it comes back so. */
	if (ctx->nthreads && ctx->threads[0].stop_sig) {
		t->has_stop_signal = 1;
		t->stop_signal = (uint32_t)ctx->threads[0].stop_sig;
	}
	if (dump_stat(ctx, t) < 0 || dump_status(ctx, t) < 0 ||
	    dump_rlimits(ctx, t) < 0 || cgroups_dump(ctx, t) < 0)
		return -1;
	for (size_t i = 0; i < ctx->nthreads; i++) {
		Capcr__Thread *th = ARENA_NEW(ctx->arena, Capcr__Thread);
		capcr__thread__init(th);
		if (fault_at("task-regs") ||
		    dump_thread_regs(ctx, &ctx->threads[i], th) < 0)
			return DUMP_FAIL(ctx, "injected failure at task-regs");
		if (fault_at("task-inside") ||
		    dump_thread_inside(ctx, &ctx->threads[i], th) < 0)
			return DUMP_FAIL(ctx, "injected failure at task-inside");
		attrs_dump_thread(ctx->threads[i].tid, th);
		arena_push(ctx->arena, (void ***)&t->threads, &t->n_threads,
			   th);
	}
	if (peek_pending(ctx, ctx->pid, 1, &t->shared_pending,
			 &t->n_shared_pending) < 0)
		return -1;
	if (dump_sigactions(ctx, t) < 0 || dump_itimers(ctx, t) < 0 ||
	    dump_posix_timers(ctx, t) < 0)
		return -1;
	int32_t pds = 0;
	if (dump_syscall(ctx, SYS_prctl, PR_GET_PDEATHSIG, (long)ctx->scratch,
			 0, 0, 0, 0) == 0 &&
	    dump_peek(ctx, ctx->scratch, &pds, sizeof(pds)) == 0 && pds) {
		t->has_pdeathsig = 1;
		t->pdeathsig = pds;
	}
	/* The exact brk, which the heap's end only rounds. */
	long brk = dump_syscall(ctx, SYS_brk, 0, 0, 0, 0, 0, 0);
	t->mm->brk = brk > 0 ? (uint64_t)brk : t->mm->start_brk;
	return 0;
}
