/* SPDX-License-Identifier: MIT */
/*
 * capcr run: start a program as a monitored target.  The monitor becomes the
 * program's parent (and child subreaper of its whole tree), preloads the
 * runtime, serves the PD channel, passes SIGINT/SIGTERM/SIGHUP on, and exits
 * with the program's status, 128+N if signal N killed it.
 */
#define _GNU_SOURCE
#include <errno.h>
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
	char *preload;

	sigprocmask(SIG_SETMASK, orig, NULL);
	setenv(CAPCR_PD_ENV, pd, 1);
	if (old && *old) {
		if (asprintf(&preload, "%s:%s", rt, old) < 0)
			_exit(127);
	} else {
		preload = (char *)rt;
	}
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
