/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char proc_state(pid_t pid, int *exit_code)
{
	char path[64], buf[1024];
	FILE *f;
	char st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');
		if (p && p[1] == ' ') {
			st = p[2];
			/* exit_code is field 52; state is field 3 */
			char *q = p + 2;
			for (int field = 3; field < 52 && q; field++)
				q = strchr(q + 1, ' ');
			if (q && exit_code)
				*exit_code = atoi(q + 1);
		}
	}
	fclose(f);
	return st;
}
