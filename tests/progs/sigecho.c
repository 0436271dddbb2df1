/* SPDX-License-Identifier: MIT */
/*
 * Reports the signals it gets: prints "ready pid=N", then on SIGTERM,
 * SIGHUP or SIGINT prints "got SIGNAME" and exits with 10 + the signal
 * number.  Exits 3 if nothing comes within 30 s.
 */
#include "tprog.h"

static void on_signal(int sig)
{
	char msg[32];
	int n = snprintf(msg, sizeof(msg), "got %s\n",
			 sig == SIGTERM ? "SIGTERM"
			 : sig == SIGHUP ? "SIGHUP"
					 : "SIGINT");
	if (write(1, msg, (size_t)n) < 0)
		_exit(2);
	_exit(10 + sig);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	tp_init("sigecho");
	tp_ready("preload=%s", getenv("LD_PRELOAD") ? getenv("LD_PRELOAD")
						    : "(none)");
	sleep(30);
	return 3;
}
