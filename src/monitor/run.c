/* SPDX-License-Identifier: MIT */
/*
 * capcr run: start a program as a monitored target.  The monitor becomes the
 * program's parent (and child subreaper of its whole tree), preloads the
 * runtime, serves the PD channel, passes SIGINT/SIGTERM/SIGHUP on, and exits
 * with the program's status, 128+N if signal N killed it.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/pd_proto.h"
#include "commands.h"
#include "pd_service.h"
#include "supervise.h"

/* libcapcr.so beside the capcr binary: BIN/../lib (the build tree and an
 * installed prefix have the same shape).  CAPCR_RUNTIME overrides. */
static int runtime_path(char *out, size_t n)
{
	const char *env = getenv("CAPCR_RUNTIME");
	char exe[PATH_MAX];
	ssize_t len;

	if (env && *env) {
		snprintf(out, n, "%s", env);
		return access(out, R_OK);
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len < 0)
		return -1;
	exe[len] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = 0;
	if ((size_t)snprintf(out, n, "%s/../lib/libcapcr.so", exe) >= n)
		return -1;
	return access(out, R_OK);
}

static int pread_full(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off) == (ssize_t)n ? 0 : -1;
}

/*
 * The libraries that must be preloaded ahead of the runtime: those of its
 * DT_NEEDED entries that are ASan's runtime (libasan.so.N).  A runtime built
 * with ASan (make SAN=1) needs libasan, and ASan must be the first library
 * of the process (it checks, and aborts otherwise); a library that a
 * preloaded object needs is loaded after the program's own, so it would
 * come too late unless it is preloaded itself, first.  Reading the
 * runtime's DT_NEEDED is what the dynamic loader does itself: nothing to
 * keep in step with the build (no marker to define), nothing loaded into
 * capcr (a dlopen would run the runtime's constructors here), and the name
 * is the very one the loader would look up, so LD_PRELOAD finds the same
 * file by the same search.  Anything unreadable means "none": a runtime
 * that did need libasan then stops with ASan's own message.  Writes the
 * names joined by ':' into out ("" when none).
 */
static void runtime_first_libs(const char *rt, char *out, size_t n)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[64];
	Elf64_Dyn dyn[512];
	uint64_t strtab = 0, strsz = 0, dynoff = 0, dynsz = 0, stroff = 0;
	size_t nph, ndyn, len = 0;
	int fd = open(rt, O_RDONLY | O_CLOEXEC);

	out[0] = 0;
	if (fd < 0)
		return;
	if (pread_full(fd, &eh, sizeof(eh), 0) < 0 ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || !eh.e_phnum)
		goto out;
	nph = eh.e_phnum < 64 ? eh.e_phnum : 64;
	if (pread_full(fd, ph, nph * sizeof(ph[0]), (off_t)eh.e_phoff) < 0)
		goto out;
	for (size_t i = 0; i < nph; i++)
		if (ph[i].p_type == PT_DYNAMIC) {
			dynoff = ph[i].p_offset;
			dynsz = ph[i].p_filesz;
		}
	ndyn = dynsz / sizeof(Elf64_Dyn);
	if (ndyn > 512)
		ndyn = 512;
	if (!ndyn ||
	    pread_full(fd, dyn, ndyn * sizeof(dyn[0]), (off_t)dynoff) < 0)
		goto out;
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag == DT_STRTAB)
			strtab = dyn[i].d_un.d_ptr;
		else if (dyn[i].d_tag == DT_STRSZ)
			strsz = dyn[i].d_un.d_val;
	}
	/* DT_STRTAB is an address: its offset in the segment holding it. */
	for (size_t i = 0; i < nph; i++)
		if (ph[i].p_type == PT_LOAD && strtab >= ph[i].p_vaddr &&
		    strtab - ph[i].p_vaddr < ph[i].p_filesz)
			stroff = strtab - ph[i].p_vaddr + ph[i].p_offset;
	if (!stroff || !strsz)
		goto out;
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		char name[256];
		ssize_t got;

		if (dyn[i].d_tag != DT_NEEDED || dyn[i].d_un.d_val >= strsz)
			continue;
		got = pread(fd, name, sizeof(name) - 1,
			    (off_t)(stroff + dyn[i].d_un.d_val));
		if (got <= 0)
			continue;
		name[got] = 0;
		if (strncmp(name, "libasan.so", 10) || strchr(name, ':') ||
		    len + strlen(name) + 2 > n)
			continue;
		len += (size_t)snprintf(out + len, n - len, "%s%s",
					len ? ":" : "", name);
	}
out:
	close(fd);
}

static int parse_mode(const char *s)
{
	if (!strcmp(s, "shm"))
		return CAPCR_PD_SHM;
	if (!strcmp(s, "ipc"))
		return CAPCR_PD_IPC;
	if (!strcmp(s, "off"))
		return CAPCR_PD_REFUSED;
	return -1;
}

static void usage_run(FILE *out)
{
	fprintf(out,
		"usage: capcr run [--capinfo=shm|ipc|off] [--] PROG [ARG...]\n"
		"  Start PROG as a monitored target.  --capinfo picks how it\n"
		"  reports its capability space: shm (shared region, default),\n"
		"  ipc (one request per change), off (no region).\n");
}

static void exec_target(char **argv, const sigset_t *orig, const char *pd,
			const char *rt)
{
	const char *old = getenv("LD_PRELOAD");
	char first[512], *preload;

	sigprocmask(SIG_SETMASK, orig, NULL);
	setenv(CAPCR_PD_ENV, pd, 1);
	runtime_first_libs(rt, first, sizeof(first));
	if (asprintf(&preload, "%s%s%s%s%s", first, *first ? ":" : "", rt,
		     old && *old ? ":" : "", old && *old ? old : "") < 0)
		_exit(127);
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[0], argv);
	int e = errno;
	fprintf(stderr, "capcr: cannot run %s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "capinfo", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int mode = CAPCR_PD_SHM, c;
	char rt[PATH_MAX];

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			mode = parse_mode(optarg);
			if (mode < 0) {
				capcr_err("--capinfo=%s: expected shm, ipc or "
					  "off", optarg);
				return 2;
			}
			break;
		case 'h':
			usage_run(stdout);
			return 0;
		default:
			usage_run(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage_run(stderr);
		return 2;
	}
	if (runtime_path(rt, sizeof(rt)) < 0) {
		capcr_err("cannot find the runtime libcapcr.so next to capcr "
			  "(looked in %s); set CAPCR_RUNTIME to its path", rt);
		return 1;
	}

	struct pd_service pd;
	if (pd_service_start(&pd, mode, NULL) < 0) {
		capcr_err("cannot open the PD channel: %s", strerror(errno));
		return 1;
	}
	/* Orphans of the tree come to us, so they stay in the tree. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	sigset_t orig;
	int sfd = supervise_prepare(&orig);
	if (sfd < 0) {
		capcr_err("signalfd: %s", strerror(errno));
		return 1;
	}

	pid_t child = fork();
	if (child < 0) {
		capcr_err("fork: %s", strerror(errno));
		return 1;
	}
	if (child == 0)
		exec_target(argv + optind, &orig, pd.name, rt);

	return supervise(&pd, child);
}
