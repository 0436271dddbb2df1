/* SPDX-License-Identifier: MIT */
/* Credentials: recorded at dump, given back at restore (creds.c). */
#ifndef CAPCR_CREDS_H
#define CAPCR_CREDS_H

#include <stddef.h>
#include <sys/types.h>

#include "capcr.pb-c.h"

struct dump_ctx;
struct restore_ctx;
struct tracee;

/* Record the credentials of ctx's process into t (status: the text of
 * /proc/PID/status).  0, or -1 with the context's reason set. */
int creds_dump(struct dump_ctx *ctx, Capcr__Task *t, const char *status);
/* Whether an image owned by uid owner may restore these credentials:
 * root's may restore any; anyone else's only the owner's own ids, no
 * capability.  0, or -1 with why. */
int creds_check(const Capcr__Creds *c, uid_t owner, gid_t owner_gid,
		char *why, size_t wl);
/* Give thread t of ctx's process the recorded credentials; the last
 * injected calls of a thread that need privilege come before. */
int creds_restore(struct restore_ctx *ctx, struct tracee *t);
/* The process's dumpable flag, after every thread's credentials. */
int creds_restore_dumpable(struct restore_ctx *ctx);

#endif
