/* SPDX-License-Identifier: MIT */
/*
 * The runtime's own PD session (ipc mode): a SOCK_SEQPACKET socket
 * connected to the monitor's abstract "capcr-pd.*" name, on which every
 * cap-map change is a request.  It is not a capability of the application:
 * at restore it is connected to the restoring monitor instead, which takes
 * the session over with the monitor's copy of the region rebuilt from the
 * image (restore.c), so the restored runtime goes on reporting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/pd_proto.h"
#include "files.h"

static int match(const struct file_dump_in *in)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	static const char prefix[] = "capcr-pd.";

	if (!S_ISSOCK(in->st.st_mode) ||
	    getpeername(in->copy, (struct sockaddr *)&sa, &sl) < 0 ||
	    sa.sun_family != AF_UNIX ||
	    sl < offsetof(struct sockaddr_un, sun_path) + sizeof(prefix))
		return 0;
	return sa.sun_path[0] == 0 &&
	       !memcmp(sa.sun_path + 1, prefix, sizeof(prefix) - 1);
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	(void)in;
	f->path = arena_strdup(env->arena, "capcr PD session");
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int sv[2];

	if (env->npd_ends == env->pd_ends_cap) {
		unsigned cap = env->pd_ends_cap ? 2 * env->pd_ends_cap : 8;
		struct pd_end *n = realloc(env->pd_ends, cap * sizeof(*n));

		if (!n)
			return FILE_FAIL(env, "out of memory for PD session %u",
					 env->npd_ends + 1);
		env->pd_ends = n;
		env->pd_ends_cap = cap;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return FILE_FAIL(env, "socketpair: %s", strerror(errno));
	env->pd_ends[env->npd_ends].file = f->id;
	env->pd_ends[env->npd_ends].fd = sv[1];
	env->npd_ends++;
	return sv[0];
}

const struct file_ops file_pd_session = {
	.kind = CAPCR__FILE_KIND__FILE_PD_SESSION,
	.name = "pd-session",
	.match = match,
	.dump = dump,
	.restore = restore,
};
