/* SPDX-License-Identifier: MIT */
/* Messages to the user: errors name the cause and, where there is one, the
 * fix.  Everything goes to stderr, or to the file given with -o/--log-file. */
#ifndef CAPCR_LOG_H
#define CAPCR_LOG_H

#include <stdio.h>

extern int capcr_verbosity; /* 0 errors+warnings, 1 info, 2+ debug */

int capcr_log_open(const char *path);
void capcr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void capcr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void capcr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void capcr_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
