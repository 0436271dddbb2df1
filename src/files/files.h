/* SPDX-License-Identifier: MIT */
/*
 * Open file descriptions, one module per kind, each with its dump side and
 * its restore side behind one table (files.c).  Adding a kind means adding
 * one file here and one line to the table.
 */
#ifndef CAPCR_FILES_H
#define CAPCR_FILES_H

#include <stdio.h>
#include <sys/stat.h>

#include "../common/arena.h"
#include "../image/image.h"
#include "capcr/capinfo.h"
#include "shmem.h"
#include "../monitor/procfd.h"

/* What the dump engine knows of one descriptor before its kind looks. */
struct file_dump_in {
	pid_t pid;
	int fd;              /* number in the target */
	int copy;            /* our own copy of it (pidfd_getfd) */
	const struct kfd *k; /* the kernel's view: link text, pos, flags */
	struct stat st;
	int both_pipe_ends;  /* pipes: the other end is in the image too */
	int held_outside;    /* pipes: a process outside the image has it */
	/* the runtime's cap-map entry for fd, when the process reported it
	 * (provenance: how it was made, what it was connected to) */
	const struct capcr_cap_entry *cap;
	/* sockets: the inode of every socket a process of the image holds */
	const ino_t *sock_inos;
	size_t nsock_inos;
	/* ptys: a process of the image holds this slave's master (pty.c):
	 * the image's terminal, not one outside */
	int pty_master_here;
};

/* What a kind's dump gets to work with. */
struct file_dump_env {
	struct image *img;
	struct arena *arena;
	char *why;
	size_t whylen;
	Capcr__Files *files;     /* the tree's: shared memory objects */
	struct shmem_table *shm;
	int ext_closed; /* connections outside the image come back closed */
	uint64_t ghost_limit; /* most bytes of a deleted file's data, or 0 */
	/* descriptors in flight on Unix socket queues (inflight.c); NULL:
	 * refused */
	struct inflight_dump *inflight;
};

/* An ipc PD session made at restore: its File, and the monitor's end. */
struct pd_end {
	uint32_t file;
	int fd;
};

/* What a kind's restore gets: it runs in the process being restored,
 * before its memory is replaced. */
struct file_restore_env {
	struct image *img;
	char *why;
	size_t whylen;
	/* pipes made so far, by pipe id (pipe.c) */
	struct pipe_slot *pipes;
	unsigned npipes, pipes_cap;
	/* descriptors capcr restore was started with: the only ones an
	 * external capability may be re-attached to */
	const unsigned char *inherited;
	int ninherited;
	const int *shmem_fd; /* the image's shared memory objects, made */
	/* PD sessions made: the monitor's ends, for capcr restore to serve
	 * (the restore takes the array over) */
	struct pd_end *pd_ends;
	unsigned npd_ends, pd_ends_cap;
	/* Unix sockets made ahead of their File (the other end of a pair,
	 * a client of a listener) or still to be connected (unix_sock.c) */
	struct unix_park *unix_park;
	unsigned nunix_park, unix_park_cap;
	/* pty pairs made so far, by their index at the dump (pty.c) */
	struct pty_slot *ptys;
	unsigned nptys, ptys_cap;
	/* the Files made so far, by index, -1 when not yet: what a queued
	 * message carries in flight is sent from here (inflight.c) */
	const int *file_fd;
};

struct file_ops {
	Capcr__FileKind kind;
	const char *name;
	/* Does this kind handle the descriptor?  First match wins. */
	int (*match)(const struct file_dump_in *in);
	/* Fill f (kind, flags and pos are set already).  0 or -1 with why. */
	int (*dump)(struct file_dump_env *env, const struct file_dump_in *in,
		    Capcr__File *f);
	/* Make the object again; return a descriptor for it (any number),
	 * or -1 with why.  Runs in capcr restore, before any process. */
	int (*restore)(struct file_restore_env *env, const Capcr__File *f);
	/* Optional: runs in each restored process that holds the file, once
	 * all its descriptors are at their numbers, for every descriptor of
	 * the file (fd), first being the lowest of them in this process:
	 * for what names other descriptors by number (epoll's interest
	 * list), or what only the process itself can open (/proc/PID/...).
	 * 0 or -1 with why. */
	int (*settle)(struct file_restore_env *env, const Capcr__File *f,
		      int fd, int first);
	/* Optional: runs in capcr restore once every process is made and
	 * verified, just before they run; what it changes outside the image
	 * (a terminal's settings) no failed restore leaves behind.
	 * Returns 1 if the processes holding the file should hear of it
	 * (SIGWINCH: a full-screen program redraws), else 0. */
	int (*release)(const Capcr__File *f);
};

/* Open PATH with the file-system rights of uid and gid instead of root's,
 * never following a link in its last component (regular.c). */
int files_open_as(uid_t uid, gid_t gid, const char *path, int flags);
const struct file_ops *files_ops_for_dump(const struct file_dump_in *in);
const struct file_ops *files_ops_for_kind(Capcr__FileKind kind);

/* Shared helpers for the kinds. */
int files_save_contents(struct file_dump_env *env, int fd, const char *name,
			Capcr__File *f, int seekable);
int files_load_contents(struct file_restore_env *env, const Capcr__File *f,
			int dst);
/* Once every File is made: what the kinds made ahead and no File took is
 * closed, their tables freed. */
void files_restore_end(struct file_restore_env *env);
/* Every File's release (see file_ops), just before the processes run;
 * then a SIGWINCH to each process of the image holding a File whose
 * release asked for it. */
void files_release(const Capcr__Files *files, Capcr__FdTable *const *fdts,
		   const pid_t *pids, size_t nprocs);
void pipe_restore_end(struct file_restore_env *env);
/* pty.c, at dump: is st a pty slave (/dev/pts/N)?  Is the descriptor
 * copy (fstat mst) the master of the slave st? */
int pty_is_slave(const struct stat *st);
int pty_pair(const struct stat *mst, int copy, const struct stat *st);
void pty_restore_end(struct file_restore_env *env);
/* pty.c, in each new process of a restore once its session and process
 * group exist, before its children are made: pid takes back the pty it
 * led the session of as its controlling terminal, and the one whose
 * foreground group it leads gets that group back.  file_fd: the Files
 * made, by index.  0 or -1 with why. */
int pty_prelude(const Capcr__Files *files, const int *file_fd, pid_t pid,
		char *why, size_t wl);
/* For a file only the restored process can open (its own /proc/PID file,
 * a pidfd of a process of the image): /dev/null at its place until the
 * kind's settle opens it there, and whether fd is still that stand-in. */
int files_stand_in(int accmode);
int files_is_stand_in(int fd);
/* Put nf at descriptor fd (keeping fd's close-on-exec flag) and close nf.
 * 0, or -1 with errno. */
int files_replace(int nf, int fd);
/* extents.c: a file's data extents into image data file name, holes left
 * out, as page runs (vaddr: offset in the file); and back into dst, none
 * past size.  0 or -1 with why. */
int extents_save(struct image *img, struct arena *a, int fd, uint64_t size,
		 const char *name, Capcr__PageRun ***runs, size_t *nruns,
		 char *why, size_t wl);
int extents_load(struct image *img, const char *name,
		 Capcr__PageRun *const *runs, size_t nruns, uint64_t size,
		 int dst, char *why, size_t wl);
/* Exactly n bytes of fd into buf (EINTR retried): 0, or -1 with errno
 * (EIO at an early end). */
int files_read_full(int fd, void *buf, size_t n);
/* Is the other end of the pipe whose end copy is (open with flags) still
 * open anywhere? */
int files_pipe_other_end_open(int copy, int flags);
/* /proc/PID/fdinfo/FD for reading, or NULL with why set (if given). */
FILE *files_fdinfo_open(pid_t pid, int fd, char *why, size_t wl);
int files_fdinfo_u64(pid_t pid, int fd, const char *key, int base,
		     uint64_t *out);

/* Record why (the first reason wins); returns -1. */
int files_fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define FILE_FAIL(env, ...) files_fail((env)->why, (env)->whylen, __VA_ARGS__)

#endif
