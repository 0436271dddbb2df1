/* SPDX-License-Identifier: MIT */
/*
 * The monitor's other parts, in process: the kernel's descriptor table
 * (procfd), the JSON writer, and the PD service answering cap_space_info()
 * to forked children (in the tree) and to this process (not in the tree).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "capcr/capinfo.h"
#include "common/json.h"
#include "common/pd_proto.h"
#include "monitor/pd_service.h"
#include "monitor/procfd.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- procfd ---------------------------------------------------------- */

static void kinds_from_link_text(void **state)
{
	(void)state;
	assert_int_equal(procfd_kind("pipe:[123]", S_IFIFO), CAPCR_KIND_PIPE);
	assert_int_equal(procfd_kind("socket:[9]", S_IFSOCK), CAPCR_KIND_SOCKET);
	assert_int_equal(procfd_kind("anon_inode:[eventfd]", 0),
			 CAPCR_KIND_EVENTFD);
	assert_int_equal(procfd_kind("anon_inode:[eventpoll]", 0),
			 CAPCR_KIND_EPOLL);
	assert_int_equal(procfd_kind("anon_inode:[timerfd]", 0),
			 CAPCR_KIND_TIMERFD);
	assert_int_equal(procfd_kind("anon_inode:[signalfd]", 0),
			 CAPCR_KIND_SIGNALFD);
	assert_int_equal(procfd_kind("anon_inode:inotify", 0),
			 CAPCR_KIND_INOTIFY);
	assert_int_equal(procfd_kind("anon_inode:[pidfd]", 0), CAPCR_KIND_PIDFD);
	assert_int_equal(procfd_kind("pidfd:[42]", 0), CAPCR_KIND_PIDFD);
	assert_int_equal(procfd_kind("/memfd:x (deleted)", S_IFREG),
			 CAPCR_KIND_MEMFD);
	assert_int_equal(procfd_kind("anon_inode:[io_uring]", 0),
			 CAPCR_KIND_OTHER);
	assert_int_equal(procfd_kind("/etc/passwd", S_IFREG), CAPCR_KIND_FILE);
	assert_int_equal(procfd_kind("/", S_IFDIR), CAPCR_KIND_DIR);
	assert_int_equal(procfd_kind("/tmp/fifo", S_IFIFO), CAPCR_KIND_FIFO);
	assert_int_equal(procfd_kind("/dev/null", S_IFCHR), CAPCR_KIND_CHARDEV);
	assert_int_equal(procfd_kind("/dev/sda", S_IFBLK), CAPCR_KIND_OTHER);
	assert_int_equal(procfd_kind("", 0), CAPCR_KIND_OTHER);
}

static const struct kfd *find(const struct kfd *k, int n, int fd)
{
	for (int i = 0; i < n; i++)
		if (k[i].fd == fd)
			return &k[i];
	return NULL;
}

static void lists_own_descriptors(void **state)
{
	(void)state;
	int f = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
	int p[2];
	assert_int_equal(pipe(p), 0);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	int e = eventfd(0, 0);
	int m = memfd_create("unit-memfd", 0);
	int d = open("/", O_RDONLY | O_DIRECTORY);
	int hi = fcntl(f, F_DUPFD, 700);
	assert_true(f >= 0 && s >= 0 && e >= 0 && m >= 0 && d >= 0 && hi >= 700);
	char c;
	assert_int_equal(read(f, &c, 1), 1);

	struct kfd *k = NULL;
	int n = procfd_list(getpid(), &k);
	assert_true(n >= 9);
	for (int i = 1; i < n; i++)
		assert_true(k[i - 1].fd < k[i].fd);
	const struct kfd *x = find(k, n, f);
	assert_non_null(x);
	assert_int_equal(x->kind, CAPCR_KIND_FILE);
	assert_string_equal(x->target, "/etc/hostname");
	assert_int_equal(x->pos, 1);
	assert_true(x->flags & O_CLOEXEC);
	assert_true(x->ino != 0);
	assert_int_equal(find(k, n, p[0])->kind, CAPCR_KIND_PIPE);
	assert_int_equal(find(k, n, p[1])->kind, CAPCR_KIND_PIPE);
	assert_true(find(k, n, p[1])->flags & O_WRONLY);
	assert_int_equal(find(k, n, s)->kind, CAPCR_KIND_SOCKET);
	assert_int_equal(find(k, n, e)->kind, CAPCR_KIND_EVENTFD);
	assert_int_equal(find(k, n, m)->kind, CAPCR_KIND_MEMFD);
	assert_int_equal(find(k, n, d)->kind, CAPCR_KIND_DIR);
	assert_int_equal(find(k, n, hi)->kind, CAPCR_KIND_FILE);
	assert_false(find(k, n, hi)->flags & O_CLOEXEC);
	free(k);
	close(f);
	close(p[0]);
	close(p[1]);
	close(s);
	close(e);
	close(m);
	close(d);
	close(hi);
}

static void no_such_process(void **state)
{
	(void)state;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	waitpid(p, NULL, 0);
	struct kfd *k = NULL;
	errno = 0;
	assert_int_equal(procfd_list(p, &k), -1);
	assert_int_equal(errno, ENOENT);
}

/* ---- JSON ------------------------------------------------------------ */

static char *render(void (*fn)(struct json *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;
	json_begin(&j, f);
	fn(&j);
	json_end(&j);
	fclose(f);
	return buf;
}

static void doc_nested(struct json *j)
{
	json_obj_open(j, NULL);
	json_int(j, "a", -5);
	json_uint(j, "b", UINT64_MAX);
	json_bool(j, "c", 1);
	json_null(j, "d");
	json_arr_open(j, "e");
	json_obj_open(j, NULL);
	json_str(j, "f", "x");
	json_obj_close(j);
	json_obj_open(j, NULL);
	json_obj_close(j);
	json_arr_close(j);
	json_str(j, "g", NULL);
	json_obj_close(j);
}

static void json_structure(void **state)
{
	(void)state;
	char *s = render(doc_nested);
	assert_string_equal(s, "{\"a\":-5,\"b\":18446744073709551615,\"c\":true,"
			       "\"d\":null,\"e\":[{\"f\":\"x\"},{}],\"g\":null}\n");
	free(s);
}

static void doc_escapes(struct json *j)
{
	json_obj_open(j, NULL);
	json_str(j, "k\"ey", "q\"b\\s\nn\tt\x01\x1f\x7f/é");
	json_obj_close(j);
}

static void json_escapes(void **state)
{
	(void)state;
	char *s = render(doc_escapes);
	assert_string_equal(s, "{\"k\\\"ey\":\"q\\\"b\\\\s\\nn\\u0009t\\u0001"
			       "\\u001f\\u007f/é\"}\n");
	free(s);
}

/* Valid UTF-8, per RFC 3629. */
static int utf8_ok(const unsigned char *p)
{
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1
				     : (*p & 0xf0) == 0xe0 ? 2
				     : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2) || *p > 0xf4)
			return 0;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void doc_bad_utf8(struct json *j)
{
	json_obj_open(j, NULL);
	/* A file name, or a target's cap-map path: any bytes but NUL. */
	json_str(j, "path", "a\xff" "b\xfe\xc3(\xe2\x82\xf0\x9f\x98");
	json_obj_close(j);
}

static void json_output_is_utf8(void **state)
{
	(void)state;
	char *s = render(doc_bad_utf8);
	if (!utf8_ok((const unsigned char *)s)) {
		char hex[256] = "";
		for (size_t i = 0; s[i] && i < 60; i++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex),
				 (unsigned char)s[i] < 0x80 ? "%c" : "\\x%02x",
				 (unsigned char)s[i]);
		free(s);
		fail_msg("JSON output is not valid UTF-8 (RFC 8259 requires "
			 "it): %s",
			 hex);
	}
	free(s);
}

/* ---- PD service -------------------------------------------------------- */

static struct pd_service pd;

/* Serve until child exits (or ms pass); returns its exit status. */
static int serve_until(pid_t child, int ms)
{
	int64_t end = now_ms() + ms;
	int st = -1;
	while (now_ms() < end) {
		struct pollfd p[64];
		unsigned n = pd_service_pollfds(&pd, p, 64);
		if (poll(p, n, 20) > 0)
			pd_service_handle(&pd, p, n);
		if (child > 0 && waitpid(child, &st, WNOHANG) == child)
			return st;
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &st, 0);
	}
	return -1;
}

static int pd_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	memcpy(sa.sun_path + 1, pd.name, strlen(pd.name));
	if (connect(fd, (struct sockaddr *)&sa,
		    offsetof(struct sockaddr_un, sun_path) + 1 +
			    strlen(pd.name)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Ask for a region; returns the mode, *memfd and *base filled. */
static int ask(int fd, int *memfd, uint64_t *base)
{
	struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
				       .op = CAPCR_PD_CAP_SPACE_INFO,
				       .pid = getpid() };
	struct capcr_pd_reply rp;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr a;
	} cm;
	struct iovec iov = { &rp, sizeof(rp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	*memfd = -1;
	if (send(fd, &rq, sizeof(rq), 0) != sizeof(rq))
		return -1;
	if (recvmsg(fd, &mh, 0) != sizeof(rp) || rp.magic != CAPCR_PD_MAGIC)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(memfd, CMSG_DATA(c), sizeof(int));
	*base = rp.badge_base;
	return (int)rp.mode;
}

/* The child's side: exit 0 when what it got matches want_mode. */
static int child_asks(int want_mode)
{
	int memfd;
	uint64_t base;
	int fd = pd_connect();
	if (fd < 0)
		return 10;
	int mode = ask(fd, &memfd, &base);
	if (mode != want_mode)
		return 11;
	if (mode == CAPCR_PD_SHM) {
		struct capcr_capinfo_header h;
		if (memfd < 0 || pread(memfd, &h, sizeof(h), 0) != sizeof(h))
			return 12;
		if (h.magic != CAPCR_CAPINFO_MAGIC || h.pid != getpid() ||
		    h.badge_base != base || !base)
			return 13;
		if (ftruncate(memfd, 0) == 0)
			return 14; /* not sealed */
	}
	if (mode == CAPCR_PD_IPC) {
		if (memfd >= 0)
			return 15;
		struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
					       .op = CAPCR_PD_INSERT,
					       .kind = CAPCR_KIND_FILE,
					       .kcap = 5,
					       .badge = base + 1,
					       .badge_ptr = 0x1000 };
		struct capcr_pd_reply rp;
		for (int i = 0; i < 3; i++) {
			rq.kcap = 5 + i;
			if (send(fd, &rq, sizeof(rq), 0) != sizeof(rq) ||
			    recv(fd, &rp, sizeof(rp), 0) != sizeof(rp) ||
			    rp.status != 0)
				return 16;
		}
		rq.op = CAPCR_PD_REMOVE;
		rq.kcap = 6;
		if (send(fd, &rq, sizeof(rq), 0) != sizeof(rq) ||
		    recv(fd, &rp, sizeof(rp), 0) != sizeof(rp))
			return 17;
		/* Stay until told: the parent queries our region. */
		char c;
		if (read(0, &c, 1) < 0)
			return 18;
	}
	return 0;
}

static int start_service(void **state, int mode)
{
	(void)state;
	return pd_service_start(&pd, mode, NULL);
}
static int start_shm(void **state) { return start_service(state, CAPCR_PD_SHM); }
static int start_ipc(void **state) { return start_service(state, CAPCR_PD_IPC); }
static int start_off(void **state)
{
	return start_service(state, CAPCR_PD_REFUSED);
}
static int stop_service(void **state)
{
	(void)state;
	pd_service_stop(&pd);
	return 0;
}

static void serves_a_child_its_region(void **state)
{
	(void)state;
	pid_t c = fork();
	if (c == 0)
		_exit(child_asks(CAPCR_PD_SHM));
	int st = serve_until(c, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(pd.served == 1);
	/* shm: the monitor keeps no session. */
	assert_int_equal(pd.nsess, 0);
}

static void each_child_its_own_base(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		pid_t c = fork();
		if (c == 0)
			_exit(child_asks(CAPCR_PD_SHM));
		int st = serve_until(c, 5000);
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_true(pd.served == 5);
	assert_true(pd.next_serial >= 6);
}

static void refuses_outside_the_tree(void **state)
{
	(void)state;
	/* This process is the service's own, not one of its descendants. */
	int fd = pd_connect();
	assert_true(fd >= 0);
	struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
				       .op = CAPCR_PD_CAP_SPACE_INFO,
				       .pid = getpid() };
	assert_int_equal(send(fd, &rq, sizeof(rq), 0), sizeof(rq));
	serve_until(0, 300);
	struct capcr_pd_reply rp;
	assert_int_equal(recv(fd, &rp, sizeof(rp), MSG_DONTWAIT), sizeof(rp));
	assert_int_equal(rp.mode, CAPCR_PD_REFUSED);
	assert_true(pd.served == 0);
	close(fd);
}

static void refuses_when_off(void **state)
{
	(void)state;
	pid_t c = fork();
	if (c == 0)
		_exit(child_asks(CAPCR_PD_REFUSED));
	int st = serve_until(c, 5000);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(pd.served == 0);
}

static void ipc_session_and_query(void **state)
{
	(void)state;
	int in[2];
	assert_int_equal(pipe(in), 0);
	pid_t c = fork();
	if (c == 0) {
		dup2(in[0], 0);
		close(in[1]);
		_exit(child_asks(CAPCR_PD_IPC));
	}
	close(in[0]);
	/* Serve until the child's three inserts and one remove are in. */
	int64_t end = now_ms() + 5000;
	while (now_ms() < end &&
	       !(pd.nsess == 1 && pd.sess[0].region &&
		 pd.sess[0].region->updates == 4))
		serve_until(0, 20);
	assert_int_equal(pd.nsess, 1);
	assert_int_equal(pd.sess[0].pid, c);
	struct capcr_capinfo_header *h = pd.sess[0].region;
	assert_non_null(h);
	assert_int_equal(h->count, 2);
	assert_int_equal(h->seq % 2, 0);
	struct capcr_cap_info *a = (struct capcr_cap_info *)(h + 1);
	int k0 = a[0].kcap, k1 = a[1].kcap;
	assert_true((k0 == 5 && k1 == 7) || (k0 == 7 && k1 == 5));

	/* QUERY, as capcr caps asks for an ipc target's region. */
	int fd = pd_connect();
	assert_true(fd >= 0);
	struct capcr_pd_request rq = { .magic = CAPCR_PD_MAGIC,
				       .op = CAPCR_PD_QUERY,
				       .pid = c };
	assert_int_equal(send(fd, &rq, sizeof(rq), 0), sizeof(rq));
	serve_until(0, 100);
	struct capcr_pd_reply rp;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr al;
	} cm;
	struct iovec iov = { &rp, sizeof(rp) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	assert_int_equal(recvmsg(fd, &mh, MSG_DONTWAIT), sizeof(rp));
	assert_int_equal(rp.status, 0);
	struct cmsghdr *cmh = CMSG_FIRSTHDR(&mh);
	assert_non_null(cmh);
	int memfd;
	memcpy(&memfd, CMSG_DATA(cmh), sizeof(int));
	struct capcr_capinfo_header copy;
	assert_int_equal(pread(memfd, &copy, sizeof(copy), 0), sizeof(copy));
	assert_int_equal(copy.count, 2);
	assert_int_equal(copy.pid, c);
	/* Handed out for reading only: neither written nor mapped so. */
	assert_true(pwrite(memfd, &copy, sizeof(copy), 0) < 0);
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
			 0) == MAP_FAILED);
	close(memfd);
	close(fd);

	/* QUERY for a process without a session: refused. */
	fd = pd_connect();
	rq.pid = getpid();
	assert_int_equal(send(fd, &rq, sizeof(rq), 0), sizeof(rq));
	serve_until(0, 100);
	assert_int_equal(recv(fd, &rp, sizeof(rp), MSG_DONTWAIT), sizeof(rp));
	assert_true(rp.status < 0);
	close(fd);

	close(in[1]); /* the child goes */
	int st;
	waitpid(c, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	serve_until(0, 100);
	assert_int_equal(pd.nsess, 0); /* its session closed with it */
}

static void nonsense_is_dropped(void **state)
{
	(void)state;
	int fd = pd_connect();
	assert_true(fd >= 0);
	char junk[40];
	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(send(fd, junk, sizeof(junk), 0), sizeof(junk));
	serve_until(0, 300);
	char b[64];
	/* Closed without an answer. */
	assert_int_equal(recv(fd, b, sizeof(b), MSG_DONTWAIT), 0);
	close(fd);
	assert_int_equal(pd.nsess, 0);
}

static void silent_clients_do_not_stall_others(void **state)
{
	(void)state;
	/* Processes of the tree that connect and never ask must not hold up
	 * a child that does ask (a fork waits for its region). */
	int silent[10];
	for (int i = 0; i < 10; i++)
		silent[i] = pd_connect();
	pid_t c = fork();
	if (c == 0)
		_exit(child_asks(CAPCR_PD_SHM));
	int64_t t0 = now_ms();
	int st = serve_until(c, 10000);
	int64_t took = now_ms() - t0;
	for (int i = 0; i < 10; i++)
		close(silent[i]);
	assert_int_equal(WEXITSTATUS(st), 0);
	if (took > 1000)
		fail_msg("10 silent connections held up a region request for "
			 "%lld ms",
			 (long long)took);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kinds_from_link_text),
		cmocka_unit_test(lists_own_descriptors),
		cmocka_unit_test(no_such_process),
		cmocka_unit_test(json_structure),
		cmocka_unit_test(json_escapes),
		cmocka_unit_test(json_output_is_utf8),
		cmocka_unit_test_setup_teardown(serves_a_child_its_region,
						start_shm, stop_service),
		cmocka_unit_test_setup_teardown(each_child_its_own_base,
						start_shm, stop_service),
		cmocka_unit_test_setup_teardown(refuses_outside_the_tree,
						start_shm, stop_service),
		cmocka_unit_test_setup_teardown(refuses_when_off, start_off,
						stop_service),
		cmocka_unit_test_setup_teardown(ipc_session_and_query,
						start_ipc, stop_service),
		cmocka_unit_test_setup_teardown(nonsense_is_dropped, start_shm,
						stop_service),
		cmocka_unit_test_setup_teardown(
			silent_clients_do_not_stall_others, start_shm,
			stop_service),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
