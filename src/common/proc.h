/* SPDX-License-Identifier: MIT */
/* Small facts about a process from /proc, for the monitor side. */
#ifndef CAPCR_PROC_H
#define CAPCR_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The fields of /proc/PID/stat that capcr uses, numbered as in proc(5).
 * Fields the line does not have are 0: nfields is the number of the last
 * one there (52 on every kernel capcr supports, fewer in a line cut short).
 */
struct proc_stat {
	char comm[64]; /* between the first '(' and the last ')' */
	char state; /* 3 */
	pid_t ppid; /* 4 */
	pid_t pgrp; /* 5 */
	pid_t session; /* 6 */
	int tty_nr; /* 7 */
	pid_t tpgid; /* 8 */
	unsigned int flags; /* 9 */
	unsigned long long start_time; /* 22, in clock ticks after boot */
	uint64_t start_code, end_code, start_stack; /* 26-28 */
	int exit_signal; /* 38 */
	uint64_t start_data, end_data, start_brk; /* 45-47 */
	uint64_t arg_start, arg_end, env_start, env_end; /* 48-51 */
	int exit_code; /* 52, the wait status of a zombie */
	int nfields;
};

/*
 * Read /proc/PID/stat (/proc/PID/task/TID/stat when tid is not 0) into
 * *st: 0, or -1 with errno, *st then all 0.  ENOENT or ESRCH: no such
 * process (an empty file is one that ended as it was read); EBADMSG: the
 * text does not parse; anything else (EMFILE, ENOMEM, EIO...) is the
 * error reading it, which says nothing about whether the process exists.
 */
int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *st);
/* The parser of proc_stat_read, on a line already read: 0, or -1 with
 * errno EBADMSG. */
int proc_stat_parse(const char *text, struct proc_stat *st);

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
