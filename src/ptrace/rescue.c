/* SPDX-License-Identifier: MIT */
/*
 * The rescue frame: what lets a thread survive capcr dying while the
 * thread holds borrowed registers.
 *
 * The kernel detaches the tracees of a dead tracer and lets them run with
 * whatever registers they hold.  A thread in the middle of an injected
 * system call would run on from the `syscall` instruction in its vDSO with
 * our registers and die.  So before its first injected call, a signal
 * frame is written on the thread's own stack, below its red zone, holding
 * its own registers, FPU state and signal mask, exactly as the kernel
 * writes one when it delivers a signal; the frame begins with the address
 * of code that calls rt_sigreturn (the restorer libc installs for signal
 * handlers, found in the thread's own mappings).  Injected calls then run
 * at a `syscall; xor ...; ret` sequence of the vDSO with rsp pointing at
 * the frame.  Stopped at the syscall's exit, capcr reads the result and
 * puts the registers back itself; left alone, the thread returns into the
 * restorer and rt_sigreturn puts everything back.  No code is written
 * into the target, only the frame, in stack space below the stack pointer
 * that signal delivery uses in the same way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>
#include <elf.h>

#include "inject.h"
#include "rescue.h"

/* The kernel's x86-64 signal frame, as rt_sigreturn reads it
 * (arch/x86/include/asm/sigframe.h, uapi asm/sigcontext.h). */
struct k_sigcontext {
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
};
struct k_stack {
	uint64_t ss_sp;
	int32_t ss_flags;
	int32_t pad;
	uint64_t ss_size;
};
struct k_ucontext {
	uint64_t uc_flags, uc_link;
	struct k_stack uc_stack;
	struct k_sigcontext uc_mcontext;
	uint64_t uc_sigmask;
};
struct k_rt_sigframe {
	uint64_t pretcode;
	struct k_ucontext uc;
	uint8_t info[128];
};
_Static_assert(sizeof(struct k_sigcontext) == 256, "sigcontext ABI");
_Static_assert(sizeof(struct k_rt_sigframe) == 440, "rt_sigframe ABI");

#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define SW_RESERVED_OFF 464 /* fx_sw_bytes inside the fxsave area */
#define XSAVE_MAX (64 * 1024)
#define RED_ZONE 128

/* The addresses found in one process, kept for its other threads. */
static struct {
	pthread_mutex_t lock;
	pid_t tgid;
	uint64_t vdso;
	struct rescue_gadgets g;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pid_t tgid_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* A `syscall` followed by nothing but register-clearing xors and a ret:
 * the kernel's vDSO fallbacks end that way. */
static int syscall_then_ret(const unsigned char *p, size_t left)
{
	size_t i = 2;

	while (i < left && i < 40) {
		if (p[i] == 0xc3)
			return 1;
		if (p[i] == 0x31 && i + 1 < left && p[i + 1] >= 0xc0)
			i += 2;
		else if ((p[i] == 0x45 || p[i] == 0x48 || p[i] == 0x4d) &&
			 i + 2 < left && p[i + 1] == 0x31 && p[i + 2] >= 0xc0)
			i += 3;
		else
			return 0;
	}
	return 0;
}

static const unsigned char restorer_glibc[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00,
						0x00, 0x00, 0x0f, 0x05 };
static const unsigned char restorer_musl[] = { 0xb8, 0x0f, 0x00, 0x00,
					       0x00, 0x0f, 0x05 };

static uint64_t scan_restorer(int memfd, uint64_t start, uint64_t end)
{
	const size_t chunk = 1 << 20, over = sizeof(restorer_glibc);
	unsigned char *buf = malloc(chunk + over);
	uint64_t found = 0;

	if (!buf)
		return 0;
	for (uint64_t a = start; a < end && !found; a += chunk) {
		size_t len = end - a < chunk + over ? end - a : chunk + over;
		ssize_t n = pread(memfd, buf, len, (off_t)a);
		if (n <= 0)
			break;
		for (size_t i = 0; i + over <= (size_t)n; i++) {
			if (buf[i] != 0x48 && buf[i] != 0xb8)
				continue;
			if (!memcmp(buf + i, restorer_glibc,
				    sizeof(restorer_glibc)) ||
			    !memcmp(buf + i, restorer_musl,
				    sizeof(restorer_musl))) {
				found = a + i;
				break;
			}
		}
	}
	free(buf);
	return found;
}

static int find_in(pid_t tid, int rescue, struct rescue_gadgets *g,
		   uint64_t *vdso)
{
	char path[64], line[512];
	uint64_t s, e, libc_s = 0, libc_e = 0, exe[16][2];
	size_t nexe = 0;
	char perms[8];
	FILE *f;
	int memfd;

	memset(g, 0, sizeof(*g));
	*vdso = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", tid);
	if (!(f = fopen(path, "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		int pos = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %n",
			   &s, &e, perms, &pos) < 3)
			continue;
		if (strstr(line, "[vdso]"))
			*vdso = s, g->vdso_end = e;
		else if (perms[2] == 'x' && strstr(line + pos, "/libc"))
			libc_s = s, libc_e = e;
		else if (perms[2] == 'x' && nexe < 16 && line[pos] == '/')
			exe[nexe][0] = s, exe[nexe][1] = e, nexe++;
	}
	if (ferror(f)) {
		int err = errno;
		fclose(f);
		return -err;
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/mem", tid);
	if ((memfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (*vdso && g->vdso_end - *vdso <= (1 << 20)) {
		size_t len = g->vdso_end - *vdso;
		unsigned char *buf = malloc(len);
		ssize_t got = buf ? pread(memfd, buf, len, (off_t)*vdso) : -1;
		if (got != (ssize_t)len) {
			int err = !buf ? ENOMEM : got < 0 ? errno : EIO;
			free(buf);
			close(memfd);
			return -err;
		}
		for (size_t i = 0; i + 1 < len; i++) {
			if (buf[i] != 0x0f || buf[i + 1] != 0x05)
				continue;
			if (!g->syscall)
				g->syscall = *vdso + i;
			if (!g->syscall_ret &&
			    syscall_then_ret(buf + i, len - i))
				g->syscall_ret = *vdso + i;
		}
		free(buf);
	}
	/* The restorer is in libc, or in a static executable's own text. */
	if (rescue && libc_s)
		g->restorer = scan_restorer(memfd, libc_s, libc_e);
	for (size_t i = 0; rescue && !g->restorer && i < nexe; i++)
		if (exe[i][1] - exe[i][0] <= (64u << 20))
			g->restorer = scan_restorer(memfd, exe[i][0], exe[i][1]);
	close(memfd);
	return g->syscall ? 0 : -ENOENT;
}

int rescue_gadgets(pid_t tid, int rescue, struct rescue_gadgets *g)
{
	pid_t tgid;
	uint64_t vdso;
	int r;

	if (!rescue)
		return find_in(tid, 0, g, &vdso);
	tgid = tgid_of(tid);
	pthread_mutex_lock(&cache.lock);
	if (tgid && tgid == cache.tgid) {
		*g = cache.g;
		pthread_mutex_unlock(&cache.lock);
		return 0;
	}
	pthread_mutex_unlock(&cache.lock);
	if ((r = find_in(tid, 1, g, &vdso)) < 0)
		return r;
	pthread_mutex_lock(&cache.lock);
	cache.tgid = tgid;
	cache.vdso = vdso;
	cache.g = *g;
	pthread_mutex_unlock(&cache.lock);
	return 0;
}

uint64_t rescue_frame_write(pid_t tid, const struct user_regs_struct *regs,
			    uint64_t sigmask, uint64_t restorer)
{
	struct iovec xv;
	unsigned char *buf;
	uint64_t frame = 0;

	if (!restorer || !(buf = calloc(1, XSAVE_MAX)))
		return 0;
	xv.iov_base = buf;
	xv.iov_len = XSAVE_MAX - 64; /* whole u64s, room for MAGIC2 */
	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &xv) < 0 ||
	    xv.iov_len < 576)
		goto out;
	uint32_t xsize = (uint32_t)xv.iov_len, magic1;
	memcpy(&magic1, buf + SW_RESERVED_OFF, 4);
	if (magic1 != FP_XSTATE_MAGIC1) {
		/* Say what the frame holds, as the kernel's own frames do. */
		uint32_t ext = xsize + 4;
		uint64_t feat;
		memcpy(&feat, buf + 512, 8);
		magic1 = FP_XSTATE_MAGIC1;
		memcpy(buf + SW_RESERVED_OFF, &magic1, 4);
		memcpy(buf + SW_RESERVED_OFF + 4, &ext, 4);
		memcpy(buf + SW_RESERVED_OFF + 8, &feat, 8);
		memcpy(buf + SW_RESERVED_OFF + 16, &xsize, 4);
	} else {
		memcpy(&xsize, buf + SW_RESERVED_OFF + 16, 4);
		if (xsize > xv.iov_len)
			goto out;
	}
	uint32_t magic2 = FP_XSTATE_MAGIC2;
	memcpy(buf + xsize, &magic2, 4);

	/* Below the red zone: the FPU state 64-byte aligned, the frame
	 * under it, and room for a scratch area under that. */
	uint64_t fp = (regs->rsp - RED_ZONE - xsize - 4) & ~63ULL;
	uint64_t at = (fp - sizeof(struct k_rt_sigframe)) & ~15ULL;
	struct k_rt_sigframe f;
	memset(&f, 0, sizeof(f));
	f.pretcode = restorer;
	f.uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	/* Flags the kernel rejects: rt_sigreturn then leaves the thread's
	 * alternate stack as it is. */
	f.uc.uc_stack.ss_flags = 0x7;
	struct k_sigcontext *c = &f.uc.uc_mcontext;
	c->r8 = regs->r8, c->r9 = regs->r9, c->r10 = regs->r10;
	c->r11 = regs->r11, c->r12 = regs->r12, c->r13 = regs->r13;
	c->r14 = regs->r14, c->r15 = regs->r15, c->rdi = regs->rdi;
	c->rsi = regs->rsi, c->rbp = regs->rbp, c->rbx = regs->rbx;
	c->rdx = regs->rdx, c->rax = regs->rax, c->rcx = regs->rcx;
	c->rsp = regs->rsp, c->rip = regs->rip, c->eflags = regs->eflags;
	c->cs = (uint16_t)regs->cs, c->ss = (uint16_t)regs->ss;
	c->fpstate = fp;
	f.uc.uc_sigmask = sigmask;

	struct iovec local[2] = { { &f, sizeof(f) }, { buf, xsize + 4 } };
	struct iovec remote[2] = { { (void *)at, sizeof(f) },
				   { (void *)fp, xsize + 4 } };
	if (process_vm_writev(tid, local, 2, remote, 2, 0) ==
	    (ssize_t)(sizeof(f) + xsize + 4))
		frame = at;
out:
	free(buf);
	return frame;
}
