/* SPDX-License-Identifier: MIT */
/*
 * The seed's "update at restore": the restored process's region and cap
 * map came back with its memory, so its capabilities keep their badges and
 * provenance.  Where the object behind a capability is not the one that
 * was saved — a descriptor that pointed outside the image and was
 * re-attached to capcr restore's own — the monitor rewrites that cap-map
 * entry, following badge_ptr as the protocol says, so the application and
 * `capcr caps` see what it is now.  The process is stopped meanwhile; the
 * sequence counter is still bumped so a concurrent reader retries.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "capcr/capinfo.h"
#include "restore.h"

static int bump_seq(int memfd, uint64_t region)
{
	uint64_t seq;
	off_t at = (off_t)(region + offsetof(struct capcr_capinfo_header, seq));

	if (pread(memfd, &seq, sizeof(seq), at) != sizeof(seq))
		return -1;
	seq++;
	return pwrite(memfd, &seq, sizeof(seq), at) == sizeof(seq) ? 0 : -1;
}

int restore_update_capspace(struct restore_ctx *ctx)
{
	const Capcr__CapSpace *cs = ctx->fdt->capspace;
	int memfd, changed = 0;

	if (!cs || !cs->n_caps)
		return 0;
	memfd = restore_memfd(ctx);
	if (memfd < 0)
		return restore_fail(ctx, "cannot open the memory of process "
					 "%d: %m", ctx->pid);
	restore_lazy_fetch(ctx, cs->region_addr,
			   sizeof(struct capcr_capinfo_header));
	bump_seq(memfd, cs->region_addr);
	for (size_t i = 0; i < cs->n_caps; i++) {
		const Capcr__CapEntry *c = cs->caps[i];
		const Capcr__File *f = NULL;
		struct capcr_cap_entry e;

		for (size_t d = 0; d < ctx->fdt->n_fds; d++)
			if (ctx->fdt->fds[d]->fd == c->fd)
				f = ctx->files->files[ctx->fdt->fds[d]->file];
		if (!f || !f->has_external_fd || c->entry.len != sizeof(e))
			continue;
		memcpy(&e, c->entry.data, sizeof(e));
		char link[64], now[sizeof(e.path)] = "";
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", ctx->pid, c->fd);
		ssize_t n = readlink(link, now, sizeof(now) - 1);
		now[n > 0 ? n : 0] = 0;
		/* It is whatever capcr restore had at that number: as if
		 * inherited, and named by what it is now. */
		e.origin = CAPCR_ORIGIN_INHERITED;
		e.state &= ~(CAPCR_ENTRY_BOUND | CAPCR_ENTRY_CONNECTED |
			     CAPCR_ENTRY_LISTENING | CAPCR_ENTRY_TRUNCATED);
		e.local_len = e.peer_len = 0;
		e.peer_badge = 0;
		memcpy(e.path, now, sizeof(e.path));
		/* Everything after the badge; the badge names the capability
		 * and stays. */
		restore_lazy_fetch(ctx, c->badge_ptr, sizeof(e));
		if (pwrite(memfd, (char *)&e + 8, sizeof(e) - 8,
			   (off_t)(c->badge_ptr + 8)) != (ssize_t)sizeof(e) - 8)
			capcr_warn("cannot update the cap-map entry of fd %d",
				   c->fd);
		else
			changed++;
	}
	bump_seq(memfd, cs->region_addr);
	capcr_info("capability space: %zu capabilities restored, %d "
		   "re-attached to this restore's descriptors",
		   cs->n_caps - (size_t)changed, changed);
	return 0;
}
