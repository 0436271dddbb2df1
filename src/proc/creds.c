/* SPDX-License-Identifier: MIT */
/*
 * Credentials: who a process is.  Dump records them from /proc/PID/status
 * and two injected prctl calls; restore gives them back to every thread
 * (the kernel keeps credentials per thread, and a raw setresuid changes
 * only the calling one), so that a process comes back as the user it was,
 * never as root who restores it.
 *
 * Restore runs as root and drops to the recorded credentials last, in an
 * order that keeps what it still needs: SECBIT_NO_SETUID_FIXUP first, so
 * changing uids leaves the capability sets alone; groups and ids; the
 * bounding set (needs CAP_SETPCAP); capabilities with CAP_SETPCAP still
 * effective; ambient capabilities; the recorded securebits (needs
 * CAP_SETPCAP); then the recorded capabilities exactly; no_new_privs.
 * The dumpable flag is per process and is reset by a change of uid, so it
 * goes back after every thread is done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/proc.h"
#include "../dump/dump.h"
#include "../restore/restore.h"
#include "creds.h"

#define SECBIT_NO_SETUID_FIXUP_ (1 << 2)
#define CAP_SETPCAP_ 8

static int status_ids(const char *status, const char *key, uint32_t v[4])
{
	const char *p = strstr(status, key);

	return p && sscanf(p + strlen(key), "%u %u %u %u", &v[0], &v[1], &v[2],
			   &v[3]) == 4
		       ? 0
		       : -1;
}

int creds_dump(struct dump_ctx *ctx, Capcr__Task *t, const char *status)
{
	Capcr__Creds *c = ARENA_NEW(ctx->arena, Capcr__Creds);
	uint32_t u[4], g[4];
	uint64_t nnp = 0;

	capcr__creds__init(c);
	if (status_ids(status, "\nUid:", u) < 0 ||
	    status_ids(status, "\nGid:", g) < 0 ||
	    proc_status_hex(status, "\nCapInh:", &c->cap_inh) < 0 ||
	    proc_status_hex(status, "\nCapPrm:", &c->cap_prm) < 0 ||
	    proc_status_hex(status, "\nCapEff:", &c->cap_eff) < 0 ||
	    proc_status_hex(status, "\nCapBnd:", &c->cap_bnd) < 0 ||
	    proc_status_hex(status, "\nCapAmb:", &c->cap_amb) < 0)
		return DUMP_FAIL(ctx, "cannot read the credentials of process "
				      "%d from /proc/%d/status",
				 ctx->pid, ctx->pid);
	c->uid = u[0], c->euid = u[1], c->suid = u[2], c->fsuid = u[3];
	c->gid = g[0], c->egid = g[1], c->sgid = g[2], c->fsgid = g[3];
	const char *gr = strstr(status, "\nGroups:");
	if (gr) {
		gr += 8;
		for (;;) {
			char *end;
			unsigned long v = strtoul(gr, &end, 10);
			if (end == gr)
				break;
			uint32_t *n = arena_alloc(ctx->arena, (c->n_groups + 1) *
								sizeof(*n));
			if (!n)
				return DUMP_FAIL(ctx, "out of memory");
			if (c->n_groups)
				memcpy(n, c->groups, c->n_groups * sizeof(*n));
			n[c->n_groups++] = (uint32_t)v;
			c->groups = n;
			gr = end;
		}
	}
	if (proc_status_hex(status, "\nNoNewPrivs:", &nnp) == 0)
		c->no_new_privs = nnp != 0;
	long r = dump_syscall(ctx, SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
	if (r < 0)
		return DUMP_FAIL(ctx, "cannot read the securebits of process "
				      "%d: %s",
				 ctx->pid, strerror((int)-r));
	c->securebits = (uint32_t)r;
	r = dump_syscall(ctx, SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	if (r < 0)
		return DUMP_FAIL(ctx, "cannot read whether process %d is "
				      "dumpable: %s",
				 ctx->pid, strerror((int)-r));
	c->dumpable = (int32_t)r;
	t->creds = c;
	return 0;
}

int creds_check(const Capcr__Creds *c, uid_t owner, gid_t owner_gid,
		char *why, size_t wl)
{
	/* An image root does not own may not make root's processes, nor
	 * anyone else's: every id must be the owner's, and no capability. */
	if (!owner)
		return 0;
	if (c->uid != owner || c->euid != owner || c->suid != owner ||
	    c->fsuid != owner || c->gid != owner_gid || c->egid != owner_gid ||
	    c->sgid != owner_gid || c->fsgid != owner_gid || c->cap_prm ||
	    c->cap_eff || c->cap_amb || c->cap_inh)
		return snprintf(why, wl,
				"the image belongs to uid %u, but its process "
				"would run as uid %u gid %u%s: only root's "
				"images may restore other users or "
				"capabilities",
				owner, c->euid, c->egid,
				c->cap_eff ? " with capabilities" : ""),
		       -1;
	for (size_t i = 0; i < c->n_groups; i++)
		if (c->groups[i] != owner_gid)
			return snprintf(why, wl,
					"the image belongs to uid %u, but its "
					"process would be in group %u",
					owner, c->groups[i]),
			       -1;
	return 0;
}

static long call(struct restore_ctx *ctx, struct tracee *t, long nr, long a1,
		 long a2, long a3, long a4)
{
	(void)ctx;
	return tracee_call(t, nr, a1, a2, a3, a4, 0, 0);
}

#define STEP(what, expr)                                                      \
	do {                                                                  \
		long r_ = (expr);                                             \
		if (r_ < 0)                                                   \
			return restore_fail(ctx, "cannot %s of thread %d: %s", \
					    what, t->tid, strerror((int)-r_)); \
	} while (0)

/* capset of the three sets, through the scratch page. */
static long set_caps(struct restore_ctx *ctx, struct tracee *t, uint64_t eff,
		     uint64_t prm, uint64_t inh)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3,
						0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(prm >> 32),
		  (uint32_t)(inh >> 32) },
	};
	uint64_t s = ctx->scratch;

	if (restore_poke(ctx, s, &hdr, sizeof(hdr)) < 0 ||
	    restore_poke(ctx, s + 64, d, sizeof(d)) < 0)
		return -errno;
	return call(ctx, t, SYS_capset, (long)s, (long)s + 64, 0, 0);
}

/*
 * What thread tid of pid holds now, from /proc (its securebits are those
 * of capcr restore, which forked it and never changes them): 1 when that
 * is c already, so that none of the dozen injected calls below is needed
 * (a thread is made by a leader that still has capcr's credentials: a
 * restore of root's process with 100 threads made some 4000 calls for
 * nothing).  *bnd: its bounding set now.
 */
static int creds_as_now(pid_t pid, pid_t tid, const Capcr__Creds *c,
			uint64_t *bnd)
{
	char path[64], st[4096];
	uint32_t u[4], g[4];
	uint64_t inh, prm, eff, amb, nnp = 0;
	long sb = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	size_t n = 0;

	*bnd = ~0ULL;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	if (proc_read_small(path, st, sizeof(st)) < 0 ||
	    status_ids(st, "\nUid:", u) < 0 || status_ids(st, "\nGid:", g) < 0 ||
	    proc_status_hex(st, "\nCapInh:", &inh) < 0 ||
	    proc_status_hex(st, "\nCapPrm:", &prm) < 0 ||
	    proc_status_hex(st, "\nCapEff:", &eff) < 0 ||
	    proc_status_hex(st, "\nCapBnd:", bnd) < 0 ||
	    proc_status_hex(st, "\nCapAmb:", &amb) < 0)
		return 0;
	proc_status_hex(st, "\nNoNewPrivs:", &nnp);
	if (u[0] != c->uid || u[1] != c->euid || u[2] != c->suid ||
	    u[3] != c->fsuid || g[0] != c->gid || g[1] != c->egid ||
	    g[2] != c->sgid || g[3] != c->fsgid || inh != c->cap_inh ||
	    prm != c->cap_prm || eff != c->cap_eff || *bnd != c->cap_bnd ||
	    amb != c->cap_amb || (nnp != 0) != (c->no_new_privs != 0) ||
	    sb < 0 || (uint32_t)sb != c->securebits)
		return 0;
	const char *gr = strstr(st, "\nGroups:");
	for (gr = gr ? gr + 8 : ""; ; n++) {
		char *end;
		unsigned long v = strtoul(gr, &end, 10);
		if (end == gr)
			break;
		if (n >= c->n_groups || v != c->groups[n])
			return 0;
		gr = end;
	}
	return n == c->n_groups;
}

int creds_restore(struct restore_ctx *ctx, struct tracee *t)
{
	const Capcr__Creds *c = ctx->task->creds;
	uint64_t s = ctx->scratch, setpcap = 1ULL << CAP_SETPCAP_, bnd;
	uint32_t gbuf[1024];

	if (!c || creds_as_now(ctx->pid, t->tid, c, &bnd))
		return 0;
	if (c->n_groups > sizeof(gbuf) / sizeof(gbuf[0]))
		return restore_fail(ctx, "%zu supplementary groups: capcr "
					 "restores at most %zu",
				    c->n_groups, sizeof(gbuf) / sizeof(gbuf[0]));
	if (c->n_groups) /* none: no array at all */
		memcpy(gbuf, c->groups, c->n_groups * sizeof(uint32_t));
	STEP("keep the capabilities while the ids change",
	     call(ctx, t, SYS_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP_,
		  0, 0));
	if (c->n_groups &&
	    restore_poke(ctx, s, gbuf, c->n_groups * sizeof(uint32_t)) < 0)
		return restore_fail(ctx, "cannot write the groups: %m");
	STEP("set the supplementary groups",
	     call(ctx, t, SYS_setgroups, (long)c->n_groups, (long)s, 0, 0));
	STEP("set the gids",
	     call(ctx, t, SYS_setresgid, c->gid, c->egid, c->sgid, 0));
	if (c->fsgid != c->egid) /* setresgid set it to the egid */
		call(ctx, t, SYS_setfsgid, c->fsgid, 0, 0, 0);
	STEP("set the uids",
	     call(ctx, t, SYS_setresuid, c->uid, c->euid, c->suid, 0));
	if (c->fsuid != c->euid)
		call(ctx, t, SYS_setfsuid, c->fsuid, 0, 0, 0);
	/* Only what the thread has (its status said, or every one when it
	 * could not be read) and the image does not. */
	for (int cap = 0; cap < 64; cap++)
		if (!(c->cap_bnd & (1ULL << cap)) && (bnd & (1ULL << cap)) &&
		    (bnd != ~0ULL ||
		     call(ctx, t, SYS_prctl, PR_CAPBSET_READ, cap, 0, 0) == 1))
			STEP("drop from the capability bounding set",
			     call(ctx, t, SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0));
	/* CAP_SETPCAP stays effective for the securebits. */
	STEP("set the capabilities",
	     set_caps(ctx, t, c->cap_eff | setpcap, c->cap_prm | setpcap,
		      c->cap_inh));
	for (int cap = 0; cap < 64; cap++)
		if (c->cap_amb & (1ULL << cap))
			STEP("raise an ambient capability",
			     call(ctx, t, SYS_prctl, PR_CAP_AMBIENT,
				  PR_CAP_AMBIENT_RAISE, cap, 0));
	STEP("set the securebits",
	     call(ctx, t, SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0));
	STEP("set the capabilities",
	     set_caps(ctx, t, c->cap_eff, c->cap_prm, c->cap_inh));
	if (c->no_new_privs)
		STEP("set no_new_privs",
		     call(ctx, t, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0));
	return 0;
}

int creds_restore_dumpable(struct restore_ctx *ctx)
{
	const Capcr__Creds *c = ctx->task->creds;
	struct tracee *t = &ctx->t;

	if (c)
		STEP("set the dumpable flag",
		     call(ctx, t, SYS_prctl, PR_SET_DUMPABLE, c->dumpable, 0,
			  0));
	return 0;
}
