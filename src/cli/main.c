/* SPDX-License-Identifier: MIT */
/* capcr: the command-line entry point.  Global options (-v, -o) come
 * before or after the subcommand name, as CRIU accepts them. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../monitor/commands.h"
#include "capcr/capinfo.h"

#ifndef CAPCR_VERSION
#define CAPCR_VERSION "0.1.0"
#endif

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} commands[] = {
	{ "run", cmd_run, "start a program as a monitored target" },
	{ "caps", cmd_caps, "show the live capability space of a process" },
	{ "dump", cmd_dump, "checkpoint a process into an image directory" },
	{ "pre-dump", cmd_predump, "copy a tree's memory, tracking its writes" },
	{ "restore", cmd_restore, "bring a process back from an image" },
	{ "show", cmd_show, "explain what an image holds" },
	{ "check", cmd_check, "check the kernel features capcr needs" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: capcr [-v] [-o FILE] COMMAND [ARGS]\n\n"
		     "Checkpoint/restore for Linux processes, built around a\n"
		     "capability-space protocol between a process and its "
		     "monitor.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].what);
	fprintf(out, "  version   print the version\n\n"
		     "options:\n"
		     "  -v, -vv            more messages\n"
		     "  -o, --log-file F   write messages to F\n"
		     "'capcr COMMAND --help' tells more.\n");
}

/* Take -v/-o/--log-file out of argv wherever they are before the
 * command's own "--"; returns the new argc or -1. */
static int global_options(int argc, char **argv)
{
	int out = 1;
	const char *cmd = NULL;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (cmd && (!strcmp(a, "--") ||
			    (!strcmp(cmd, "run") && a[0] != '-'))) {
			/* the target's own argv starts here */
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-v") || !strcmp(a, "-vv") ||
		    !strcmp(a, "-vvv")) {
			capcr_verbosity += (int)strlen(a) - 1;
		} else if (!strncmp(a, "--log-file=", 11)) {
			if (capcr_log_open(a + 11) < 0)
				return -1;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--log-file")) {
			if (i + 1 >= argc) {
				capcr_err("%s needs a file name", a);
				return -1;
			}
			if (capcr_log_open(argv[++i]) < 0)
				return -1;
		} else {
			if (a[0] != '-' && !cmd)
				cmd = a;
			argv[out++] = a;
		}
	}
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	argc = global_options(argc, argv);
	if (argc < 0)
		return 2;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("capcr %s (capability-space ABI %d)\n", CAPCR_VERSION,
		       CAPCR_CAPINFO_ABI_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	capcr_err("unknown command '%s'; 'capcr --help' lists them", argv[1]);
	return 2;
}
