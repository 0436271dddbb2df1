/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int capcr_verbosity;
static FILE *log_file;

int capcr_log_open(const char *path)
{
	FILE *f = fopen(path, "ae");

	if (!f) {
		fprintf(stderr, "capcr: cannot open log file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	log_file = f;
	return 0;
}

static void vlog(const char *tag, const char *fmt, va_list ap)
{
	FILE *out = log_file ? log_file : stderr;

	fprintf(out, "capcr: %s", tag);
	vfprintf(out, fmt, ap);
	fputc('\n', out);
}

#define LOG_FN(name, tag, level)                                             \
	void name(const char *fmt, ...)                                      \
	{                                                                    \
		va_list ap;                                                  \
		if (capcr_verbosity < (level))                               \
			return;                                              \
		va_start(ap, fmt);                                           \
		vlog(tag, fmt, ap);                                          \
		va_end(ap);                                                  \
	}

LOG_FN(capcr_err, "error: ", 0)
LOG_FN(capcr_warn, "warning: ", 0)
LOG_FN(capcr_info, "", 1)
LOG_FN(capcr_debug, "debug: ", 2)
