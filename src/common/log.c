/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

/* One message, one write: stderr is unbuffered, and a message written in
 * pieces can lose its beginning to a failed write, or be interleaved with
 * another thread's. */
static void vlog(const char *tag, const char *fmt, va_list ap)
{
	FILE *out = log_file ? log_file : stderr;
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "capcr: %s", tag);

	if (n < 0 || n >= (int)sizeof(buf) - 2)
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - 1 - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	buf[n] = 0;
	/* Once more if the write failed (EINTR, EAGAIN), the way stdio
	 * would not. */
	if (fputs(buf, out) == EOF) {
		clearerr(out);
		fputs(buf, out);
	}
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
