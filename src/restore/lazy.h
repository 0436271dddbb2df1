/* SPDX-License-Identifier: MIT */
/*
 * capcr restore --lazy-pages: the processes run before their private
 * anonymous memory is filled.  Each process makes a userfaultfd (one
 * injected call; capcr takes it with pidfd_getfd and the process closes
 * its own), its anonymous private areas that hold saved pages are
 * registered for missing pages and left empty, and a server forked by
 * capcr restore before any process is made (lazy_serve.c) puts each page
 * in when it is first touched and copies all the others in the
 * background, then closes the userfaultfds and ends.
 */
#ifndef CAPCR_RESTORE_LAZY_H
#define CAPCR_RESTORE_LAZY_H

#include <stdint.h>

#include "restore.h"

/* Whether area v is filled lazily: anonymous, private, with saved pages,
 * not wiped at fork (a forked child's copy of it must stay empty). */
int lazy_area(const Capcr__Vma *v);

/* Fork the server (t->lazy_pid, t->lazy_sock): after every pages file is
 * open, before any process is made.  0, or -1 with why. */
int lazy_start(struct restore_tree *t, char *why, size_t wl);
/* In the takeover, before the areas are mapped: the process's
 * userfaultfd (ctx->uffd), handed to the server.  0, or -1 (ctx->why). */
int lazy_arm(struct restore_ctx *ctx);
/* Register [start, end) for missing pages: 0, or -errno (then the area
 * is filled now, as without --lazy-pages). */
int lazy_register(struct restore_ctx *ctx, uint64_t start, uint64_t end);
/* Every process runs: the server copies what is left.  Closes our end. */
void lazy_go(struct restore_tree *t);
/* A failed restore: the server is killed and reaped. */
void lazy_stop(struct restore_tree *t);
/* A foreground restore whose root ended: wait for the end of server (it
 * ends once every page is in or every process is gone). */
void lazy_wait(pid_t server);

/* lazy_serve.c: the server, in the child lazy_start forked; sock is its
 * end of the socket.  Never returns. */
void lazy_serve(struct restore_tree *t, int sock) __attribute__((noreturn));

/* What capcr restore tells the server, with a userfaultfd for ADD. */
enum { LAZY_ADD = 1, LAZY_GO = 2 };
struct lazy_msg {
	uint32_t magic;
	int32_t type;
	int32_t idx; /* ADD: the process, an index of t->procs */
};
#define LAZY_MAGIC 0x797a616cu

#endif
