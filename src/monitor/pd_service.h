/* SPDX-License-Identifier: MIT */
/* The PD service: answers cap_space_info() for every process of the
 * monitored tree (docs/protocol.md). */
#ifndef CAPCR_PD_SERVICE_H
#define CAPCR_PD_SERVICE_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "capcr/capinfo.h"

struct pd_session {
	int fd;
	pid_t pid;
	int memfd;                           /* ipc: the monitor's copy */
	struct capcr_capinfo_header *region; /* ipc: mapped copy */
};

struct pd_service {
	int listen_fd;
	int mode; /* enum capcr_pd_mode given to every process */
	char name[64];
	uint64_t next_serial;
	struct pd_session *sess;
	unsigned nsess;
	/* connections that have not asked anything yet: each waits in the
	 * poll set with a deadline, so a silent one never holds up another */
	struct pd_pending {
		int fd;
		pid_t pid;
		uid_t uid;
		int64_t deadline_ms;
		int member; /* a process of the monitored tree */
	} *pend;
	unsigned npend;
	uint64_t served; /* regions handed out */
	uint64_t refused; /* connections and requests turned away */
	uint64_t refused_said; /* of them, already in a warning */
	int64_t warned_ms; /* when the last warning about them was */
};

/* Listen on abstract name (NULL: a fresh one); mode is CAPCR_PD_SHM,
 * _IPC or _REFUSED.  Returns 0, or -1 with errno. */
int pd_service_start(struct pd_service *s, int mode, const char *name);
void pd_service_stop(struct pd_service *s);
/* pollfds for the listening socket and open sessions: fills at most max,
 * returns how many. */
unsigned pd_service_pollfds(struct pd_service *s, struct pollfd *p,
			    unsigned max);
/* Take over an ipc session made at restore: fd is the monitor's end, pid
 * the restored process, entries what its region held.  0 or -1. */
int pd_service_adopt(struct pd_service *s, int fd, pid_t pid,
		     uint64_t badge_base, const struct capcr_cap_info *entries,
		     unsigned n);
/* How long poll may sleep: -1, or until the next pending deadline. */
int pd_service_timeout(const struct pd_service *s);
/* Handle whatever poll reported on the fds from pd_service_pollfds. */
void pd_service_handle(struct pd_service *s, const struct pollfd *p,
		       unsigned n);

#endif
