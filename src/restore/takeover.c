/* SPDX-License-Identifier: MIT */
/*
 * The takeover: with the new process stopped under ptrace, capcr restore
 * replaces its address space and state by the image's, one injected system
 * call at a time (src/ptrace/inject.h).  No restorer code is loaded into
 * the process: every call runs at a `syscall` instruction of its vDSO,
 * which is moved to the image's vDSO address first, so nothing of capcr's
 * own is left in the process when it resumes.
 *
 * Order: drop the child's rseq (its area is about to vanish), unmap
 * everything but the vDSO and vvar, move those to the image's addresses,
 * map every area and fill its pages straight from the pages file (pread in
 * the process: one copy, at kernel speed), set protections and advice, the
 * mm layout, handlers, alternate stack, timers, robust list, clear-child-tid,
 * rseq, pending signals, close the service descriptors, and last the
 * registers and the signal mask.
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../dump/dump.h"
#include "../dump/mm_flags.h"
#include "../files/locks.h"
#include "../proc/creds.h"
#include "lazy.h"
#include "restore.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PTRACE_SETSIGMASK
#define PTRACE_SETSIGMASK 0x420b
#define PTRACE_GETSIGMASK 0x420a
#endif
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif
/* Runs this long or longer are faulted in at once (MADV_POPULATE_WRITE,
 * 5.14) before they are filled: the pread then copies into present pages
 * instead of taking a fault every 4 KiB. */
#define POPULATE_MIN (64 * 4096)

struct rseq_config {
	uint64_t ptr;
	uint32_t size, sig, flags, pad;
};

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

/* One injected call; an injection failure comes back as -errno of its
 * cause.  A failure leaves errno set too, for the "%m" of the message. */
static long sys_in(struct tracee *t, long nr, long a1, long a2, long a3,
		   long a4, long a5, long a6)
{
	long r = tracee_call(t, nr, a1, a2, a3, a4, a5, a6);
	if (r < 0 && r > -4096)
		errno = (int)-r;
	return r;
}

/* The same in the leader. */
static long sys(struct restore_ctx *ctx, long nr, long a1, long a2, long a3,
		long a4, long a5, long a6)
{
	return sys_in(&ctx->t, nr, a1, a2, a3, a4, a5, a6);
}


int restore_poke(struct restore_ctx *ctx, uint64_t addr, const void *buf,
		 size_t len)
{
	int fd = restore_memfd(ctx);
	ssize_t n;

	if (fd < 0)
		return -1;
	restore_lazy_fetch(ctx, addr, len);
	n = pwrite(fd, buf, len, (off_t)addr);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO; /* an address the process does not map */
	return -1;
}

int restore_memfd(struct restore_ctx *ctx)
{
	char path[64];

	if (ctx->memfd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", ctx->pid);
		ctx->memfd = open(path, O_RDWR | O_CLOEXEC);
	}
	return ctx->memfd;
}

struct area {
	uint64_t start, end;
	char name[64];
};

static int child_maps(pid_t pid, struct area *a, int max)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (n < max && fgets(line, sizeof(line), f)) {
		int pos = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %*s %*s %*s%n",
			   &a[n].start, &a[n].end, &pos) < 2)
			continue;
		char *p = line + pos;
		while (*p == ' ')
			p++;
		p[strcspn(p, "\n")] = 0;
		snprintf(a[n].name, sizeof(a[n].name), "%s", p);
		n++;
	}
	if (ferror(f)) {
		int e = errno;
		fclose(f);
		errno = e;
		return -1;
	}
	fclose(f);
	return n;
}

static const char *special_name(Capcr__VmaKind k)
{
	switch (k) {
	case CAPCR__VMA_KIND__VMA_VDSO:
		return "[vdso]";
	case CAPCR__VMA_KIND__VMA_VVAR:
		return "[vvar]";
	case CAPCR__VMA_KIND__VMA_VVAR_VCLOCK:
		return "[vvar_vclock]";
	default:
		return NULL;
	}
}

/* Unmap all of the child but its vDSO and vvar areas, then move those to
 * where the image had them. */
static int replace_specials(struct restore_ctx *ctx)
{
	struct area a[512];
	int n = child_maps(ctx->pid, a, 512);

	if (n < 0)
		return restore_fail(ctx, "cannot read the new process's map: %m");
	/* One call for each stretch between the areas that stay (the map is
	 * in address order; a gap inside a stretch is nothing to munmap):
	 * some 3 calls instead of one per area of capcr's own layout. */
	for (int i = 0; i < n;) {
		if (!strcmp(a[i].name, "[vdso]") || !strcmp(a[i].name, "[vvar]") ||
		    !strcmp(a[i].name, "[vvar_vclock]") ||
		    !strcmp(a[i].name, "[vsyscall]")) {
			i++;
			continue;
		}
		int j = i;
		while (j + 1 < n && strcmp(a[j + 1].name, "[vdso]") &&
		       strcmp(a[j + 1].name, "[vvar]") &&
		       strcmp(a[j + 1].name, "[vvar_vclock]") &&
		       strcmp(a[j + 1].name, "[vsyscall]"))
			j++;
		long r = sys(ctx, SYS_munmap, (long)a[i].start,
			     (long)(a[j].end - a[i].start), 0, 0, 0, 0);
		if (r < 0)
			return restore_fail(ctx, "cannot clear the new process's "
						 "memory (%s)", strerror((int)-r));
		i = j + 1;
	}
	/* vvar areas first: the calls run in the vDSO, which moves last. */
	static const Capcr__VmaKind order[] = {
		CAPCR__VMA_KIND__VMA_VVAR, CAPCR__VMA_KIND__VMA_VVAR_VCLOCK,
		CAPCR__VMA_KIND__VMA_VDSO
	};
	for (size_t o = 0; o < 3; o++) {
		const char *name = special_name(order[o]);
		const Capcr__Vma *want = NULL;
		struct area *have = NULL;
		for (size_t v = 0; v < ctx->mm->n_vmas; v++)
			if (ctx->mm->vmas[v]->kind == order[o])
				want = ctx->mm->vmas[v];
		for (int i = 0; i < n; i++)
			if (!strcmp(a[i].name, name))
				have = &a[i];
		if (!want && !have)
			continue;
		if (!want || !have ||
		    want->end - want->start != have->end - have->start)
			return restore_fail(
				ctx,
				"the image's %s area (%" PRIu64 " bytes) does not "
				"match this kernel's (%" PRIu64 " bytes): restore "
				"on a kernel like the one the image was made on",
				name, want ? want->end - want->start : 0,
				have ? have->end - have->start : 0);
		if (want->start == have->start)
			continue;
		for (int i = 0; i < n; i++)
			if (&a[i] != have &&
			    (!strcmp(a[i].name, "[vdso]") ||
			     !strncmp(a[i].name, "[vvar", 5)) &&
			    a[i].start < want->end && want->start < a[i].end)
				return restore_fail(ctx, "the image's %s overlaps "
							 "this process's %s; "
							 "try again", name,
						    a[i].name);
		long r = sys(ctx, SYS_mremap, (long)have->start,
			     (long)(have->end - have->start),
			     (long)(want->end - want->start),
			     MREMAP_MAYMOVE | MREMAP_FIXED, (long)want->start, 0);
		if (r != (long)want->start)
			return restore_fail(ctx, "cannot move %s: %s", name,
					    strerror((int)-r));
		if (order[o] == CAPCR__VMA_KIND__VMA_VDSO)
			ctx->t.gadget = ctx->t.gadget - have->start + want->start;
		have->start = want->start;
		have->end = want->end;
	}
	return 0;
}

/* The process reads len bytes at off of its descriptor fd into vaddr:
 * one copy, at kernel speed, in pieces of at most 1 GiB. */
static int fill_pread(void *arg, int fd, uint64_t vaddr, uint64_t len,
		      uint64_t off)
{
	struct restore_ctx *ctx = arg;

	while (len) {
		long chunk = len > (1UL << 30) ? (1L << 30) : (long)len;
		long got = sys(ctx, SYS_pread64, fd, (long)vaddr, chunk,
			       (long)off, 0, 0);
		if (got <= 0)
			return restore_fail(ctx, "cannot fill memory at %#" PRIx64
						 ": %s",
					    vaddr,
					    got ? strerror((int)-got)
						: "pages image too short");
		vaddr += (uint64_t)got;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	return 0;
}

static int map_areas(struct restore_ctx *ctx)
{
	if (ctx->tree->lazy && lazy_arm(ctx) < 0)
		return -1;
	for (size_t i = 0; i < ctx->mm->n_vmas; i++) {
		const Capcr__Vma *v = ctx->mm->vmas[i];
		long flags = MAP_FIXED | (v->flags & (MAP_SHARED | MAP_PRIVATE |
						      MAP_GROWSDOWN |
						      MAP_NORESERVE));
		long prot = v->prot | (v->n_pages ? PROT_WRITE : 0);
		int fd = ctx->svc.vma[i];
		long off = 0;

		if (special_name(v->kind) ||
		    v->kind == CAPCR__VMA_KIND__VMA_VSYSCALL)
			continue;
		if (v->has_sysv_shmid) {
			/* The segment itself, contents and all. */
			long r = sys(ctx, SYS_shmat, v->sysv_shmid, (long)v->start,
				     (v->prot & PROT_WRITE ? 0 : SHM_RDONLY) |
					     (v->prot & PROT_EXEC ? SHM_EXEC : 0),
				     0, 0, 0);
			if (r != (long)v->start)
				return restore_fail(ctx, "cannot attach SysV "
							 "segment %d at %#" PRIx64
							 ": %s",
						    v->sysv_shmid, v->start,
						    strerror(r < 0 ? (int)-r
								   : EFAULT));
			continue;
		}
		if (fd < 0)
			flags |= MAP_ANONYMOUS;
		else
			off = (long)v->pgoff;
		/* A shared area maps its object, at its offset in it. */
		if (v->kind == CAPCR__VMA_KIND__VMA_ANON_SHARED) {
			off = (long)v->pgoff;
			flags &= ~MAP_ANONYMOUS;
		}
		long r = sys(ctx, SYS_mmap, (long)v->start,
			     (long)(v->end - v->start), prot, flags, fd, off);
		if (r != (long)v->start)
			return restore_fail(ctx, "cannot map %#" PRIx64 "-%#" PRIx64
						 " %s: %s", v->start, v->end,
					    v->path ? v->path : v->name ? v->name : "",
					    strerror(r < 0 ? (int)-r : EFAULT));
		/* --lazy-pages: left empty, the server fills it; an area
		 * that cannot be registered is filled now. */
		int lazy = ctx->uffd >= 0 && lazy_area(v) &&
			   lazy_register(ctx, v->start, v->end) == 0;
		/* Fill: straight from the pages files into the area. */
		for (size_t p = 0; !lazy && p < v->n_pages; p++) {
			uint64_t addr = v->pages[p]->vaddr;
			uint64_t len = v->pages[p]->npages * 4096;
			if (len >= POPULATE_MIN)
				sys(ctx, SYS_madvise, (long)addr, (long)len,
				    23 /* MADV_POPULATE_WRITE */, 0, 0, 0);
			if (page_read_fill(&ctx->pages, addr, addr + len,
					   fill_pread, ctx) < 0)
				return -1;
		}
		if (prot != (long)v->prot &&
		    (r = sys(ctx, SYS_mprotect, (long)v->start,
			     (long)(v->end - v->start), v->prot, 0, 0, 0)) < 0)
			return restore_fail(ctx, "mprotect: %s", strerror((int)-r));
		for (size_t m = 0; v->has_madv &&
				   m < sizeof(mm_madv_flags) / sizeof(mm_madv_flags[0]);
		     m++)
			if (v->madv & (1u << mm_madv_flags[m].bit))
				sys(ctx, SYS_madvise, (long)v->start,
				    (long)(v->end - v->start),
				    mm_madv_flags[m].bit, 0, 0, 0);
	}
	return fault_at("restore-mm") ? restore_fail(ctx, "injected failure "
							  "at restore-mm")
				      : 0;
}

static int set_mm_layout(struct restore_ctx *ctx)
{
	const Capcr__MmLayout *m = ctx->task->mm;
	struct prctl_mm_map map = {
		.start_code = m->start_code,
		.end_code = m->end_code,
		.start_data = m->start_data,
		.end_data = m->end_data,
		.start_brk = m->start_brk,
		.brk = m->brk,
		.start_stack = m->start_stack,
		.arg_start = m->arg_start,
		.arg_end = m->arg_end,
		.env_start = m->env_start,
		.env_end = m->env_end,
		.exe_fd = (uint32_t)ctx->svc.exe,
	};
	uint64_t s = ctx->scratch;

	if (ctx->task->has_auxv) {
		if (restore_poke(ctx, s + 1024, ctx->task->auxv.data,
			 ctx->task->auxv.len) < 0)
			return restore_fail(ctx, "cannot write auxv: %m");
		map.auxv = (__u64 *)(uintptr_t)(s + 1024);
		map.auxv_size = (uint32_t)ctx->task->auxv.len;
	}
	if (ctx->svc.exe < 0)
		map.exe_fd = (uint32_t)-1;
	if (restore_poke(ctx, s, &map, sizeof(map)) < 0)
		return restore_fail(ctx, "cannot write the mm layout: %m");
	long r = sys(ctx, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, (long)s,
		     sizeof(map), 0, 0);
	if (r < 0)
		return restore_fail(ctx, "cannot set the mm layout "
					 "(PR_SET_MM_MAP): %s",
				    strerror((int)-r));
	return 0;
}

/* The signals the new process ignores or catches now: what it inherited
 * from capcr restore (a shell ignores SIGINT and SIGQUIT in what it runs
 * in the background).  A bit per signal, bit n for signal n + 1. */
static uint64_t inherited_dispositions(pid_t pid)
{
	char path[64], line[256];
	uint64_t m = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return ~0ULL; /* reset them all */
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigIgn:", 7) || !strncmp(line, "SigCgt:", 7))
			m |= strtoull(line + 7, NULL, 16);
	if (ferror(f))
		m = ~0ULL; /* not known: reset them all */
	fclose(f);
	return m;
}

static int restore_signals_timers(struct restore_ctx *ctx)
{
	const Capcr__Task *t = ctx->task;
	uint64_t s = ctx->scratch;
	long r;

	/* The image lists only the signals that were not SIG_DFL: every
	 * other one goes back to SIG_DFL first. */
	uint64_t inherited = inherited_dispositions(ctx->pid);
	struct ksigaction dfl = { 0, 0, 0, 0 };
	if (inherited && restore_poke(ctx, s, &dfl, sizeof(dfl)) < 0)
		return restore_fail(ctx, "cannot write a signal action: %m");
	for (int sig = 1; sig <= 64; sig++)
		if ((inherited >> (sig - 1) & 1) && sig != SIGKILL &&
		    sig != SIGSTOP &&
		    (r = sys(ctx, SYS_rt_sigaction, sig, (long)s, 0, 8, 0, 0)) <
			    0 &&
		    r != -EINVAL)
			return restore_fail(ctx, "cannot reset the handler of "
						 "signal %d: %s",
					    sig, strerror((int)-r));
	for (size_t i = 0; i < t->n_sigactions; i++) {
		const Capcr__SigAction *a = t->sigactions[i];
		struct ksigaction ka = { a->handler, a->flags, a->restorer,
					 a->mask };
		if (restore_poke(ctx, s, &ka, sizeof(ka)) < 0 ||
		    (r = sys(ctx, SYS_rt_sigaction, a->sig, (long)s, 0, 8, 0,
			     0)) < 0)
			return restore_fail(ctx, "cannot restore the handler of "
						 "signal %u: %m", a->sig);
	}
	for (size_t i = 0; i < t->n_itimers; i++) {
		const Capcr__Itimer *it = t->itimers[i];
		struct itimerval v = {
			{ (time_t)(it->interval_us / 1000000),
			  (suseconds_t)(it->interval_us % 1000000) },
			{ (time_t)(it->value_us / 1000000),
			  (suseconds_t)(it->value_us % 1000000) },
		};
		if (!v.it_value.tv_sec && !v.it_value.tv_usec)
			v.it_value.tv_usec = 1; /* expired: fire at once */
		if (restore_poke(ctx, s, &v, sizeof(v)) < 0 ||
		    sys(ctx, SYS_setitimer, it->which, (long)s, 0, 0, 0, 0) < 0)
			return restore_fail(ctx, "cannot restore interval timer "
						 "%u: %m", it->which);
	}
	return 0;
}

/* After the threads: a timer that signals one thread (SIGEV_THREAD_ID, as
 * glibc's SIGEV_THREAD timers do, to their helper thread) can be made
 * only once that thread is there. */
static int restore_posix_timers(struct restore_ctx *ctx)
{
	const Capcr__Task *t = ctx->task;
	uint64_t s = ctx->scratch;
	long r;

	if (t->n_posix_timers &&
	    sys(ctx, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0, 0) < 0)
		return restore_fail(ctx, "POSIX timers cannot be restored with "
					 "their ids on this kernel (needs "
					 "Linux 6.15)");
	for (size_t i = 0; i < t->n_posix_timers; i++) {
		const Capcr__PosixTimer *pt = t->posix_timers[i];
		struct {
			uint64_t value;
			int32_t signo, notify, tid, pad[11];
		} sev = { pt->sigval, pt->signo, pt->notify, pt->notify_tid };
		int32_t id = pt->id;
		struct itimerspec its = {
			{ (time_t)(pt->interval_ns / 1000000000),
			  (long)(pt->interval_ns % 1000000000) },
			{ (time_t)(pt->value_ns / 1000000000),
			  (long)(pt->value_ns % 1000000000) },
		};
		if (restore_poke(ctx, s, &sev, sizeof(sev)) < 0 ||
		    restore_poke(ctx, s + 256, &id, sizeof(id)) < 0 ||
		    restore_poke(ctx, s + 512, &its, sizeof(its)) < 0)
			return restore_fail(ctx, "cannot write timer data: %m");
		r = sys(ctx, SYS_timer_create, pt->clockid, (long)s,
			(long)(s + 256), 0, 0, 0);
		if (r < 0)
			return restore_fail(ctx, "cannot re-create POSIX timer "
						 "%d: %s", pt->id,
					    strerror((int)-r));
		if ((its.it_value.tv_sec || its.it_value.tv_nsec) &&
		    sys(ctx, SYS_timer_settime, pt->id, 0, (long)(s + 512), 0,
			0, 0) < 0)
			return restore_fail(ctx, "cannot arm POSIX timer %d: %m",
					    pt->id);
	}
	if (t->n_posix_timers)
		sys(ctx, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0, 0);
	return 0;
}

/* What each thread holds for itself, by calls run in it. */
static int thread_calls(struct restore_ctx *ctx, struct tracee *tr,
			const Capcr__Thread *th)
{
	uint64_t s = ctx->scratch;
	long r;

	if (th->has_altstack_sp) {
		stack_t ss = { .ss_sp = (void *)(uintptr_t)th->altstack_sp,
			       .ss_size = th->altstack_size,
			       .ss_flags = th->altstack_flags };
		if (restore_poke(ctx, s, &ss, sizeof(ss)) < 0 ||
		    (r = sys_in(tr, SYS_sigaltstack, (long)s, 0, 0, 0, 0, 0)) <
			    0)
			return restore_fail(ctx, "cannot restore the alternate "
						 "signal stack of thread %d: %m",
					    th->tid);
	}
	if (th->has_robust_list)
		sys_in(tr, SYS_set_robust_list, (long)th->robust_list,
		       (long)th->robust_list_len, 0, 0, 0, 0);
	sys_in(tr, SYS_set_tid_address,
	       th->has_clear_child_tid ? (long)th->clear_child_tid : 0, 0, 0,
	       0, 0, 0);
	if (th->has_rseq_addr &&
	    (r = sys_in(tr, SYS_rseq, (long)th->rseq_addr, th->rseq_len, 0,
			th->rseq_sig, 0, 0)) < 0)
		return restore_fail(ctx, "cannot register rseq again in thread "
					 "%d: %s", th->tid, strerror((int)-r));
	if (th->comm && restore_poke(ctx, s, th->comm, strlen(th->comm) + 1) == 0)
		sys_in(tr, SYS_prctl, PR_SET_NAME, (long)s, 0, 0, 0, 0);
	/* Its pending signals, queued by the process to itself, which the
	 * kernel allows with any si_code. */
	for (size_t i = 0; i < th->n_pending; i++) {
		siginfo_t si;
		memcpy(&si, th->pending[i].data,
		       th->pending[i].len < sizeof(si) ? th->pending[i].len
						       : sizeof(si));
		if (restore_poke(ctx, s, &si, sizeof(si)) < 0 ||
		    sys_in(tr, SYS_rt_tgsigqueueinfo, ctx->pid, th->tid,
			   si.si_signo, (long)s, 0, 0) < 0)
			return restore_fail(ctx, "cannot queue signal %d again: %m",
					    si.si_signo);
	}
	return 0;
}

/* Then its registers, xsave area and signal mask, last: no call may run in
 * the thread after them. */
static int thread_regs(struct restore_ctx *ctx, struct tracee *tr,
		       const Capcr__Thread *th)
{
	struct user_regs_struct regs;

	if (th->regs.len != sizeof(regs))
		return restore_fail(ctx, "the image's registers are for another "
					 "layout");
	memcpy(&regs, th->regs.data, sizeof(regs));
	/* The image holds registers with any restart already applied. */
	regs.orig_rax = (unsigned long)-1;
	if (th->has_restart && th->restart >= 512 && th->restart <= 514) {
		/* Inside a call a signal may still end with EINTR: the
		 * thread goes back to it from a stop in signal delivery, as
		 * the call's own interrupted state, so that the kernel
		 * decides, when it runs, between restarting it and a handler
		 * (a signal sent the instant the restore ends is not run
		 * before a call it should have interrupted). */
		int e = tracee_to_signal_stop(tr);
		if (e < 0)
			return restore_fail(ctx, "thread %d: cannot stop it in "
						 "signal delivery: %s",
					    tr->tid, strerror(-e));
		regs.rip += 2;
		regs.orig_rax = regs.rax;
		regs.rax = (unsigned long)-(long)th->restart;
	}
	if (th->has_xstate) {
		struct iovec iov = { th->xstate.data, th->xstate.len };
		if (ptrace(PTRACE_SETREGSET, tr->tid, NT_X86_XSTATE, &iov) < 0)
			return restore_fail(ctx, "cannot restore the FPU/SSE/AVX "
						 "state: %s (restore on a CPU "
						 "like the one the image was made "
						 "on)", strerror(errno));
	}
	uint64_t mask = th->sigmask;
	if (ptrace(PTRACE_SETREGS, tr->tid, 0, &regs) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, tr->tid, sizeof(mask), &mask) < 0)
		return restore_fail(ctx, "cannot set the registers: %s",
				    strerror(errno));
	/* What tracee_release would put back is now the image's. */
	tr->regs = regs;
	tr->sigmask = mask;
	tracee_borrow_done(tr);
	return 0;
}

/* A thread of the image, made by the leader with clone3 at its TID.  It is
 * traced from birth (PTRACE_O_TRACECLONE) and never runs a user
 * instruction before its registers are the image's. */
static int spawn_thread(struct restore_ctx *ctx, pid_t tid, struct tracee *out)
{
	struct clone_args ca = {
		.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
			 CLONE_THREAD | CLONE_SYSVSEM,
		.set_tid = ctx->scratch + 256,
		.set_tid_size = 1,
	};
	int status;

	if (restore_poke(ctx, ctx->scratch, &ca, sizeof(ca)) < 0 ||
	    restore_poke(ctx, ctx->scratch + 256, &tid, sizeof(tid)) < 0)
		return restore_fail(ctx, "cannot write clone arguments: %m");
	long r = sys(ctx, SYS_clone3, (long)ctx->scratch, sizeof(ca), 0, 0, 0,
		     0);
	if (r != tid)
		return restore_fail(ctx, "cannot make thread %d: %s", tid,
				    r < 0 ? strerror((int)-r) : "another TID");
	memset(out, 0, sizeof(*out));
	out->tid = tid;
	out->seized = 1;
	out->keep_borrowed = 1; /* EXITKILL: it dies with capcr */
	out->gadget = ctx->t.gadget;
	int w = tracee_wait(tid, &status);
	if (w < 0)
		return restore_fail(ctx, "thread %d did not stop at birth: %s",
				    tid, strerror(-w));
	if (!WIFSTOPPED(status))
		return restore_fail(ctx, "thread %d did not stop at birth "
					 "(wait status %#x)", tid, status);
	if (ptrace(PTRACE_GETREGS, tid, 0, &out->regs) < 0)
		return restore_fail(ctx, "cannot read the registers of thread "
					 "%d at its birth: %s",
				    tid, strerror(errno));
	return 0;
}

/* Every thread but the leader, then the process's pending signals. */
static int restore_threads(struct restore_ctx *ctx)
{
	const Capcr__Task *t = ctx->task;
	size_t n = t->n_threads;

	if (n > 1 && ptrace(PTRACE_SETOPTIONS, ctx->pid, 0,
			    PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE |
				    TRACEE_OPTIONS) < 0)
		return restore_fail(ctx, "PTRACE_SETOPTIONS: %s",
				    strerror(errno));
	ctx->threads = calloc(n, sizeof(*ctx->threads));
	if (!ctx->threads)
		return restore_fail(ctx, "out of memory");
	for (size_t i = 1; i < n; i++) {
		struct tracee *tr = &ctx->threads[ctx->nthreads];
		if (spawn_thread(ctx, t->threads[i]->tid, tr) < 0)
			return -1;
		ctx->nthreads++;
		if (thread_calls(ctx, tr, t->threads[i]) < 0 ||
		    creds_restore(ctx, tr) < 0 ||
		    thread_regs(ctx, tr, t->threads[i]) < 0)
			return -1;
	}
	if (n > 1)
		ptrace(PTRACE_SETOPTIONS, ctx->pid, 0,
		       PTRACE_O_EXITKILL | TRACEE_OPTIONS);
	for (size_t i = 0; i < t->n_shared_pending; i++) {
		siginfo_t si;
		const ProtobufCBinaryData *b = &t->shared_pending[i];
		memcpy(&si, b->data, b->len < sizeof(si) ? b->len : sizeof(si));
		if (restore_poke(ctx, ctx->scratch, &si, sizeof(si)) < 0 ||
		    sys(ctx, SYS_rt_sigqueueinfo, ctx->pid, si.si_signo,
			(long)ctx->scratch, 0, 0, 0) < 0)
			return restore_fail(ctx, "cannot queue signal %d again: %m",
					    si.si_signo);
	}
	return 0;
}

/* File locks, taken by the process itself (locks.c): the struct flock
 * goes to the scratch page. */
static long lock_fcntl(void *arg, int fd, int cmd, const struct flock *fl)
{
	struct restore_ctx *ctx = arg;

	if (restore_poke(ctx, ctx->scratch, fl, sizeof(*fl)) < 0)
		return -errno;
	return sys(ctx, SYS_fcntl, fd, cmd, (long)ctx->scratch, 0, 0, 0);
}

static long lock_flock(void *arg, int fd, int op)
{
	return sys(arg, SYS_flock, fd, op, 0, 0, 0, 0);
}

static long lock_setlease(void *arg, int fd, int type)
{
	return sys(arg, SYS_fcntl, fd, F_SETLEASE, type, 0, 0, 0);
}

int restore_takeover(struct restore_ctx *ctx)
{
	struct rseq_config rc;
	long r;

	ctx->t.tid = ctx->pid;
	ctx->t.seized = 1;
	ctx->t.keep_borrowed = 1; /* EXITKILL: it dies with capcr */
	if (ptrace(PTRACE_SETOPTIONS, ctx->pid, 0,
		   PTRACE_O_EXITKILL | TRACEE_OPTIONS) < 0 ||
	    ptrace(PTRACE_GETREGS, ctx->pid, 0, &ctx->t.regs) < 0 ||
	    ptrace(PTRACE_GETSIGMASK, ctx->pid, sizeof(ctx->t.sigmask),
		   &ctx->t.sigmask) < 0)
		return restore_fail(ctx, "cannot take over the new process: %s",
				    strerror(errno));
	/* capcr restore's own rseq area, inherited: it must go before the
	 * memory does, or every return to user mode faults. */
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, ctx->pid, sizeof(rc), &rc) <= 0)
		return restore_fail(ctx, "cannot read the new process's rseq "
					 "registration: %s", strerror(errno));
	if (rc.ptr &&
	    (r = sys(ctx, SYS_rseq, (long)rc.ptr, rc.size, 1 /* unregister */,
		     rc.sig, 0, 0)) < 0)
		return restore_fail(ctx, "cannot drop the new process's rseq: %s",
				    strerror((int)-r));
	if (replace_specials(ctx) < 0 || map_areas(ctx) < 0)
		return -1;
	r = sys(ctx, SYS_mmap, 0, 8192, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r < 0 && r > -4096)
		return restore_fail(ctx, "cannot map a scratch page: %m");
	ctx->scratch = (uint64_t)r;
	if (set_mm_layout(ctx) < 0 || restore_signals_timers(ctx) < 0 ||
	    restore_threads(ctx) < 0 || restore_posix_timers(ctx) < 0)
		return -1;
	/* Last of what needs root: the recorded credentials (they also
	 * clear the parent-death signal, set again below). */
	if (thread_calls(ctx, &ctx->t, ctx->task->threads[0]) < 0 ||
	    creds_restore(ctx, &ctx->t) < 0 || creds_restore_dumpable(ctx) < 0)
		return -1;
	/* The parent-death signal the prelude used is replaced by the
	 * image's.  The root's parent is capcr restore, which a detached
	 * restore leaves at once: the root keeps none then. */
	int pds = ctx->task->has_pdeathsig &&
			  (ctx != &ctx->tree->procs[0] || !ctx->tree->detach)
		      ? ctx->task->pdeathsig
		      : 0;
	sys(ctx, SYS_prctl, PR_SET_PDEATHSIG, pds, 0, 0, 0, 0);
	/* Every descriptor of capcr's it holds (service descriptors, the
	 * status pipe) is at fd_base or above, and none of the image's: one
	 * call closes them all. */
	if ((r = sys(ctx, SYS_close_range, ctx->tree->fd_base, ~0U, 0, 0, 0,
		     0)) < 0)
		return restore_fail(ctx, "cannot close capcr's descriptors in "
					 "it (close_range, Linux 5.9): %s",
				    strerror((int)-r));
	/* File locks after the last close: closing a service descriptor of
	 * a file (one the process maps) would drop its POSIX locks on it. */
	if (ctx->fdt->n_locks) {
		struct locks_caller lc = { ctx, lock_fcntl, lock_flock,
					   lock_setlease };
		if (locks_restore(ctx->fdt, ctx->files, ctx->pid, &lc, ctx->why,
				  sizeof(ctx->why)) < 0)
			return -1;
	}
	sys(ctx, SYS_munmap, (long)ctx->scratch, 8192, 0, 0, 0, 0);
	ctx->scratch = 0;
	if (fault_at("restore-regs"))
		return restore_fail(ctx, "injected failure at restore-regs");
	return thread_regs(ctx, &ctx->t, ctx->task->threads[0]);
}
