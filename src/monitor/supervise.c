/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "supervise.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/log.h"

static int sfd = -1;

int supervise_prepare(sigset_t *orig)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, orig);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	return sfd;
}

int supervise(struct pd_service *pd, pid_t child)
{
	int status = 0, done = 0;

	while (!done) {
		struct pollfd p[1 + 1024];
		p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		unsigned n = pd ? pd_service_pollfds(pd, p + 1, 1024) : 0;
		if (poll(p, n + 1, pd ? pd_service_timeout(pd) : -1) < 0) {
			if (errno == EINTR)
				continue;
			capcr_err("poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				/* A terminal's signal reached the target's
				 * group already. */
				if (si.ssi_signo != SIGCHLD &&
				    si.ssi_code != SI_KERNEL)
					kill(child, (int)si.ssi_signo);
			}
			int st;
			pid_t w;
			while ((w = waitpid(-1, &st, WNOHANG)) > 0)
				if (w == child) {
					status = st;
					done = 1;
				}
		}
		if (pd)
			pd_service_handle(pd, p + 1, n);
	}
	if (pd)
		pd_service_stop(pd);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
