/* SPDX-License-Identifier: MIT */
/*
 * cr_creds: a process that checks who it is (t_creds.sh).
 *
 * Notes its uids, gids, supplementary groups, capability sets (effective,
 * permitted, inheritable, bounding, ambient), securebits, no_new_privs and
 * dumpable flag, prints "ready pid=N uid=U", then on SIGUSR1 compares
 * them with what they are now and prints "creds same" or "creds differ:
 * WHAT", and exits.  Start it with setpriv to give it other credentials.
 */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

struct creds {
	uid_t u[3];
	gid_t g[3];
	gid_t groups[64];
	int ngroups;
	struct __user_cap_data_struct cap[2];
	unsigned long long bnd, amb;
	int secbits, nnp, dumpable;
};

static void read_creds(struct creds *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	memset(c, 0, sizeof(*c));
	getresuid(&c->u[0], &c->u[1], &c->u[2]);
	getresgid(&c->g[0], &c->g[1], &c->g[2]);
	c->ngroups = getgroups(64, c->groups);
	syscall(SYS_capget, &h, c->cap);
	for (int i = 0; i < 64; i++) {
		if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
			c->bnd |= 1ULL << i;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
			c->amb |= 1ULL << i;
	}
	c->secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	c->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

int main(void)
{
	struct creds a, b;
	sigset_t none;

	setvbuf(stdout, NULL, _IOLBF, 0);
	read_creds(&a);
	signal(SIGUSR1, on_usr1);
	printf("ready pid=%d uid=%d\n", getpid(), (int)a.u[1]);
	sigemptyset(&none);
	while (!go)
		sigsuspend(&none);
	read_creds(&b);
	const char *what = memcmp(a.u, b.u, sizeof(a.u))   ? "uids"
			   : memcmp(a.g, b.g, sizeof(a.g)) ? "gids"
			   : a.ngroups != b.ngroups ||
				   memcmp(a.groups, b.groups,
					  sizeof(gid_t) * (a.ngroups > 0 ? a.ngroups : 0))
				   ? "groups"
			   : memcmp(a.cap, b.cap, sizeof(a.cap)) ? "capabilities"
			   : a.bnd != b.bnd			 ? "bounding set"
			   : a.amb != b.amb			 ? "ambient set"
			   : a.secbits != b.secbits		 ? "securebits"
			   : a.nnp != b.nnp			 ? "no_new_privs"
			   : a.dumpable != b.dumpable		 ? "dumpable"
								 : NULL;
	if (what)
		printf("creds differ: %s\n", what);
	else
		printf("creds same\n");
	return what != NULL;
}
