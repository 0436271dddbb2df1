/* SPDX-License-Identifier: MIT */
/*
 * Write tracking of a process, and keeping it between two capcr commands.
 *
 * A process's tracking is a userfaultfd that the process itself made (one
 * injected call) and capcr took out of its table, in async write-protect
 * mode (UFFD_FEATURE_WP_ASYNC, Linux 6.7): a page write-protected by a
 * PAGEMAP_SCAN (PM_SCAN_WP_MATCHING) reads as written (PAGE_IS_WRITTEN)
 * once the process writes it.  The registration lasts as long as some
 * descriptor of that userfaultfd is open, so between `capcr pre-dump` and
 * the next dump a holder process keeps them: forked by pre-dump, it
 * serves them once, on an abstract Unix socket named in the pre-dump's
 * inventory, to a peer of its own user (SO_PEERCRED, checked both ways),
 * and ends when it has handed them over, when the root of the tree ends,
 * or after TRACK_HOLD_S.
 */
#ifndef CAPCR_TRACK_H
#define CAPCR_TRACK_H

#include <stddef.h>
#include <sys/types.h>

/* The longest a holder waits for the next dump. */
#define TRACK_HOLD_S (24 * 3600)
/* The length of a holder's socket name (without its leading NUL). */
#define TRACK_NAME_LEN 40

struct track_proc {
	pid_t pid;
	int uffd;  /* async write protection; -1: none */
	int pidfd; /* the process, so a later user knows it is the same */
};

struct track_set {
	struct track_proc *p;
	size_t n;
};

/* Make a userfaultfd in process pid (stopped alone for two injected
 * calls: userfaultfd, close) and switch it to async write protection.
 * *uffd is capcr's.  0 or -errno (-EPROTONOSUPPORT: no async mode). */
int track_arm(pid_t pid, int *uffd);
/* Write-protect tracking of [start, end) by uffd: 0, or -errno (EBUSY:
 * another userfaultfd tracks it; then its pages must never be taken for
 * unwritten). */
int track_register(int uffd, unsigned long start, unsigned long end);

/* Add process pid with its userfaultfd (taken over by the set). */
int track_add(struct track_set *s, pid_t pid, int uffd);
/* pid's entry, or NULL. */
struct track_proc *track_find(struct track_set *s, pid_t pid);
/* Close everything: the kernel clears every page's protection. */
void track_set_free(struct track_set *s);

/* A fresh random name for a holder's socket. */
int track_new_name(char *name, size_t len);
/* Fork the holder of s, listening on name, for the tree under root; the
 * set stays ours too (closing it does not end the holder's).  The holder's
 * PID, or -errno. */
pid_t track_hold(const struct track_set *s, const char *name, pid_t root);
/* Take the set the holder listening on name keeps: 0, or -1 with why
 * (no holder there, one of another user, a broken answer). */
int track_take(const char *name, struct track_set *s, char *why, size_t wl);

#endif
