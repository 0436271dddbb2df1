/* SPDX-License-Identifier: MIT */
/*
 * A program whose output must not change whether or not the runtime is
 * loaded, as long as no monitor serves it: descriptor numbers, errno
 * values, stdio and directory streams, fork, vfork, posix_spawn, popen,
 * and the final descriptor table (object names without inode numbers).
 *
 *   plain_ops [wait]
 *
 * With "wait": prints "ready pid=N" at the end and waits for SIGUSR2.
 */
#include "tprog.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

static void say_errno(const char *what, int r)
{
	printf("%s -> %d errno=%s\n", what, r, r < 0 ? strerror(errno) : "-");
}

static void list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int self = d ? dirfd(d) : -1;
	int fds[256], n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 256)
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' &&
		    atoi(e->d_name) != self)
			fds[n++] = atoi(e->d_name);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (fds[j] < fds[i]) {
				int t = fds[i];
				fds[i] = fds[j];
				fds[j] = t;
			}
	for (int i = 0; i < n; i++) {
		char link[64], buf[256];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
		ssize_t l = readlink(link, buf, sizeof(buf) - 1);
		buf[l < 0 ? 0 : l] = 0;
		/* pipe:[1234] -> pipe:[N]: inode numbers differ per run */
		char *b = strchr(buf, '[');
		if (b && strchr(b, ']'))
			strcpy(b, "[N]");
		int fl = fcntl(fds[i], F_GETFD);
		printf("fd %d %s%s\n", fds[i], buf,
		       fl >= 0 && (fl & FD_CLOEXEC) ? " cloexec" : "");
	}
	if (d)
		closedir(d);
}

int main(int argc, char **argv)
{
	tp_init("plain_ops");
	int m = tp_monitored();
	printf("monitored=%s\n", m == 1 ? "yes" : "no");
	printf("region=%s\n", tp_region(NULL) ? "yes" : "no");

	int f = open("/etc/hostname", O_RDONLY);
	printf("open -> %d\n", f);
	int p[2] = { -1, -1 }, sp[2] = { -1, -1 };
	int r = pipe(p);
	printf("pipe -> %d %d %d\n", r, p[0], p[1]);
	r = socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	printf("socketpair -> %d %d %d\n", r, sp[0], sp[1]);
	printf("dup -> %d\n", dup(f));
	printf("dup2 -> %d\n", dup2(f, 50));
	printf("dup3 -> %d\n", dup3(f, 51, O_CLOEXEC));
	printf("F_DUPFD -> %d\n", fcntl(f, F_DUPFD, 60));
	printf("close_range -> %d\n", close_range(50, 51, 0));
	printf("eventfd -> %d\n", eventfd(0, 0));
	say_errno("close(-1)", close(-1));
	say_errno("close(12345)", close(12345));
	say_errno("open(/nonexistent)", open("/nonexistent/x", O_RDONLY));
	say_errno("dup2(-1,5)", dup2(-1, 5));
	say_errno("dup3(f,f)", dup3(f, f, 0));
	say_errno("fcntl(-1,F_DUPFD)", fcntl(-1, F_DUPFD, 0));
	say_errno("socket(bad)", socket(12345, SOCK_STREAM, 0));
	errno = 0;
	FILE *fo = fopen("/nonexistent/y", "r");
	printf("fopen(/nonexistent) -> %s errno=%s\n", fo ? "FILE" : "NULL",
	       strerror(errno));
	fo = fopen("/etc/hostname", "r");
	char line[256] = "";
	if (fo && fgets(line, sizeof(line), fo))
		printf("fopen+fgets -> %zu bytes, fd %d\n", strlen(line),
		       fileno(fo));
	printf("fclose -> %d\n", fo ? fclose(fo) : -2);
	DIR *dd = opendir("/");
	printf("opendir -> %s fd %d\n", dd ? "DIR" : "NULL",
	       dd ? dirfd(dd) : -1);
	printf("closedir -> %d\n", dd ? closedir(dd) : -2);
	FILE *tf = tmpfile();
	printf("tmpfile -> fd %d\n", tf ? fileno(tf) : -1);
	if (tf)
		fclose(tf);

	pid_t c = fork();
	if (c == 0) {
		int x = open("/dev/null", O_RDONLY);
		_exit(x == f + 0 ? 100 : x);
	}
	int st;
	waitpid(c, &st, 0);
	printf("fork child opened fd %d\n", WEXITSTATUS(st));
	c = vfork();
	if (c == 0)
		_exit(7);
	waitpid(c, &st, 0);
	printf("vfork child exit %d\n", WEXITSTATUS(st));
	char *av[] = { "sh", "-c", "exit 5", NULL };
	pid_t sp_pid;
	r = posix_spawn(&sp_pid, "/bin/sh", NULL, NULL, av, environ);
	if (r == 0)
		waitpid(sp_pid, &st, 0);
	printf("posix_spawn -> %d exit %d\n", r, WEXITSTATUS(st));
	FILE *po = popen("echo popen-says-hi", "r");
	if (po && fgets(line, sizeof(line), po))
		printf("popen -> %s", line);
	printf("pclose -> %d\n", po ? pclose(po) : -2);
	list_fds();
	fflush(stdout);
	if (argc > 1 && !strcmp(argv[1], "wait")) {
		tp_ready("fd=%d", f);
		tp_wait_go();
	}
	return 0;
}
