/* SPDX-License-Identifier: MIT */
/*
 * LeakSanitizer and the programs it was not built for.
 *
 * The sanitizer build's runtime (make SAN=1) has ASan, so capcr run
 * preloads libasan ahead of it in every target (src/monitor/run.c),
 * sanitized or not, and LeakSanitizer then checks at exit programs never
 * built for it: sh, python3, perl, redis.  It reports their own leaks
 * (python3 leaves some 18 KB behind) and makes them exit 1.  Those are not
 * ours to check.  LeakSanitizer asks __lsan_is_turned_off() before it
 * checks (a weak hook that libasan looks up in the whole process, so the
 * runtime's definition is found); this one says yes unless the program
 * itself was linked with libasan (a DT_NEEDED entry), as the test programs
 * are: their leaks and the runtime's in them are still checked.
 *
 * Only in the ASan build; the plain runtime defines nothing of the kind.
 */
#if defined(__SANITIZE_ADDRESS__)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>

int __lsan_is_turned_off(void) __attribute__((visibility("default")));

int __lsan_is_turned_off(void)
{
	/* The main program's link map: its load bias and dynamic section. */
	struct link_map *m = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
	const char *str = NULL;

	if (!m || !m->l_ld)
		return 0;
	for (const ElfW(Dyn) *d = m->l_ld; d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_STRTAB) {
			/* glibc relocates it in place (x86-64); an address
			 * below the load bias was left as the file had it. */
			ElfW(Addr) a = d->d_un.d_ptr;
			str = (const char *)(a < m->l_addr ? a + m->l_addr : a);
		}
	if (!str)
		return 0;
	for (const ElfW(Dyn) *d = m->l_ld; d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_NEEDED &&
		    !strncmp(str + d->d_un.d_val, "libasan.so", 10))
			return 0;
	return 1;
}
#else
/* ISO C wants something in a translation unit. */
typedef int rt_lsan_unused;
#endif
