/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rt_real.h"

#define RT_REAL_DEFINE(name) void *rt_real_##name;
RT_REAL_SYMBOLS(RT_REAL_DEFINE)
#undef RT_REAL_DEFINE

void *rt_real_lookup(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		/* A symbol the C library lacks (an older glibc): a call to it
		 * can only come from a program built against a newer one, so
		 * there is nothing sensible to forward to. */
		static const char msg[] = "capcr: libc lacks a wrapped function\n";
		rt_sys(SYS_write, 2, (long)msg, sizeof(msg) - 1, 0, 0, 0);
		abort();
	}
	return p;
}

void rt_real_resolve_all(void)
{
#define RT_REAL_RESOLVE(name)                                                \
	if (!rt_real_##name)                                                 \
		rt_real_##name = dlsym(RTLD_NEXT, #name);
	RT_REAL_SYMBOLS(RT_REAL_RESOLVE)
#undef RT_REAL_RESOLVE
}

long rt_sys(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
