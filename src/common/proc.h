/* SPDX-License-Identifier: MIT */
/* Small facts about a process from /proc, for the monitor side. */
#ifndef CAPCR_PROC_H
#define CAPCR_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The state letter of pid (R, S, D, T, t, Z, X...) from /proc/PID/stat,
 * or 0 when there is no such process; *exit_code (if not NULL) receives
 * the wait status of a zombie.  '?' when the process exists but its stat
 * file could not be read (too many open files, out of memory, an I/O
 * error): errno then says why. */
char proc_state(pid_t pid, int *exit_code);

/* A small /proc file's text into buf (NUL-terminated, at most len - 1
 * bytes): its length, or -1 with errno. */
int proc_read_small(const char *path, char *buf, size_t len);

/* The hexadecimal number after key ("\nSigCgt:") in a /proc/PID/status
 * text: 0, or -1 when it is not there. */
int proc_status_hex(const char *status, const char *key, uint64_t *v);
/* Exited, whether or not it was reaped yet. */
static inline int proc_gone(char state)
{
	return !state || state == 'Z' || state == 'X';
}

#endif
