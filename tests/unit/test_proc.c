/* SPDX-License-Identifier: MIT */
/*
 * The one reader of /proc/PID/stat (src/common/proc.c): its parser on
 * lines no kernel writes today but a process can bring about (a comm with
 * ')', spaces and newlines in it), on lines cut short or broken, and the
 * reader on this process, one of its threads, a zombie and a process gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"

/* "PID (COMM) STATE" and fields 4 to 52, field n being n * 1000 unless
 * `odd` says otherwise for it. */
static void line(char *buf, size_t len, const char *comm, char state,
		 const char *const odd[53])
{
	size_t o = (size_t)snprintf(buf, len, "4242 (%s) %c", comm, state);

	for (int n = 4; n <= 52; n++) {
		if (odd && odd[n])
			o += (size_t)snprintf(buf + o, len - o, " %s", odd[n]);
		else
			o += (size_t)snprintf(buf + o, len - o, " %d", n * 1000);
	}
	snprintf(buf + o, len - o, "\n");
}

static void comm_with_parentheses_and_spaces(void **state)
{
	char buf[2048];
	struct proc_stat st;

	(void)state;
	line(buf, sizeof(buf), "a) b (c", 'S', NULL);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_string_equal(st.comm, "a) b (c");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.nfields, 52);
	assert_int_equal(st.ppid, 4000);
	assert_int_equal(st.pgrp, 5000);
	assert_int_equal(st.session, 6000);
	assert_int_equal(st.tty_nr, 7000);
	assert_int_equal(st.tpgid, 8000);
	assert_int_equal(st.flags, 9000);
	assert_true(st.start_time == 22000);
	assert_true(st.start_code == 26000 && st.end_code == 27000 &&
		    st.start_stack == 28000);
	assert_int_equal(st.exit_signal, 38000);
	assert_true(st.start_data == 45000 && st.end_data == 46000 &&
		    st.start_brk == 47000);
	assert_true(st.arg_start == 48000 && st.arg_end == 49000 &&
		    st.env_start == 50000 && st.env_end == 51000);
	assert_int_equal(st.exit_code, 52000);

	/* What looks like the end of comm and a state, and a newline. */
	line(buf, sizeof(buf), ") R 1 2 3\n) Z", 'T', NULL);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_string_equal(st.comm, ") R 1 2 3\n) Z");
	assert_int_equal(st.state, 'T');
	assert_int_equal(st.ppid, 4000);
	assert_int_equal(st.nfields, 52);

	line(buf, sizeof(buf), "", 'R', NULL);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_string_equal(st.comm, "");
	assert_int_equal(st.ppid, 4000);

	line(buf, sizeof(buf), "()", 'R', NULL);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_string_equal(st.comm, "()");
}

static void odd_fields(void **state)
{
	const char *odd[53] = { 0 };
	char buf[2048];
	struct proc_stat st;

	(void)state;
	/* No terminal; the largest numbers the kernel writes. */
	odd[7] = "0";
	odd[8] = "-1";
	odd[9] = "4194560";
	odd[22] = "18446744073709551615";
	odd[26] = "18446744073709551615";
	odd[38] = "17";
	line(buf, sizeof(buf), "kworker/0:1H-events_highpri", 'I', odd);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(st.tty_nr, 0);
	assert_int_equal(st.tpgid, -1);
	assert_int_equal(st.flags, 4194560);
	assert_true(st.start_time == UINT64_MAX);
	assert_true(st.start_code == UINT64_MAX);
	assert_int_equal(st.exit_signal, 17);
	assert_int_equal(st.nfields, 52);

	/* A field that is no number ends the line there: what follows is
	 * not taken for the fields after it. */
	memset(odd, 0, sizeof(odd));
	odd[10] = "x";
	line(buf, sizeof(buf), "p", 'S', odd);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(st.nfields, 9);
	assert_int_equal(st.flags, 9000);
	assert_true(st.start_time == 0);
	assert_int_equal(st.exit_code, 0);
	odd[10] = "-";
	line(buf, sizeof(buf), "p", 'S', odd);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(st.nfields, 9);
	odd[10] = "+5";
	line(buf, sizeof(buf), "p", 'S', odd);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(st.nfields, 9);

	/* Cut short: the fields not there are 0. */
	assert_int_equal(proc_stat_parse("9 (sh) Z 1 9", &st), 0);
	assert_int_equal(st.state, 'Z');
	assert_int_equal(st.nfields, 5);
	assert_int_equal(st.ppid, 1);
	assert_int_equal(st.pgrp, 9);
	assert_int_equal(st.session, 0);
	assert_int_equal(proc_stat_parse("9 (sh) Z", &st), 0);
	assert_int_equal(st.nfields, 3);
	assert_int_equal(st.ppid, 0);
	/* Two blanks are no field separator the kernel writes. */
	assert_int_equal(proc_stat_parse("9 (sh) R  1", &st), 0);
	assert_int_equal(st.nfields, 3);

	/* More than 52 fields: the ones capcr knows, nothing overrun. */
	line(buf, sizeof(buf), "p", 'S', NULL);
	buf[strlen(buf) - 1] = 0;
	strcat(buf, " 53000 54000 55000\n");
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(st.nfields, 52);
	assert_int_equal(st.exit_code, 52000);
}

static void long_comm_is_cut(void **state)
{
	char comm[200], buf[2048];
	struct proc_stat st;

	(void)state;
	memset(comm, 'c', sizeof(comm) - 1);
	comm[sizeof(comm) - 1] = 0;
	line(buf, sizeof(buf), comm, 'R', NULL);
	assert_int_equal(proc_stat_parse(buf, &st), 0);
	assert_int_equal(strlen(st.comm), sizeof(st.comm) - 1);
	assert_int_equal(st.ppid, 4000);
}

static void broken_lines(void **state)
{
	static const char *const bad[] = {
		"",
		"4242",
		"4242 (sh S 1 2 3",
		"4242 sh) S 1 2 3",
		"4242 )sh( S 1 2 3",
		"4242 (sh)",
		"4242 (sh) ",
		"4242 (sh)S 1 2 3",
	};
	struct proc_stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&st, 0x5a, sizeof(st));
		errno = 0;
		assert_int_equal(proc_stat_parse(bad[i], &st), -1);
		assert_int_equal(errno, EBADMSG);
		/* Callers that go on take the ids as 0. */
		assert_int_equal(st.ppid, 0);
		assert_int_equal(st.state, 0);
		assert_int_equal(st.nfields, 0);
	}
}

/* ---- on the real /proc --------------------------------------------- */

static void *idle_thread(void *arg)
{
	pid_t *tid = arg;

	__atomic_store_n(tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	pause();
	return NULL;
}

static void reads_this_process_and_a_thread(void **state)
{
	char name[16];
	struct proc_stat st;
	pthread_t th;
	pid_t tid = 0;

	(void)state;
	prctl(PR_GET_NAME, name);
	prctl(PR_SET_NAME, "a) b (c");
	assert_int_equal(proc_stat_read(getpid(), 0, &st), 0);
	prctl(PR_SET_NAME, name);
	assert_string_equal(st.comm, "a) b (c");
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.pgrp, getpgrp());
	assert_int_equal(st.session, getsid(0));
	assert_int_equal(st.nfields, 52);
	assert_true(st.start_time > 0);
	assert_int_equal(st.exit_signal, SIGCHLD);

	assert_int_equal(pthread_create(&th, NULL, idle_thread, &tid), 0);
	while (!__atomic_load_n(&tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* Wait for it to sleep in pause(). */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(proc_stat_read(getpid(), tid, &st), 0);
		if (st.state == 'S')
			break;
		usleep(1000);
	}
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, getppid());
	pthread_cancel(th);
	pthread_join(th, NULL);
}

static void zombie_and_gone(void **state)
{
	struct proc_stat st;
	int code = -1;
	pid_t c;

	(void)state;
	c = fork();
	assert_true(c >= 0);
	if (c == 0)
		_exit(7);
	for (int i = 0; i < 1000 && proc_state(c, NULL) != 'Z'; i++)
		usleep(1000);
	assert_int_equal(proc_stat_read(c, 0, &st), 0);
	assert_int_equal(st.state, 'Z');
	assert_int_equal(st.ppid, getpid());
	assert_int_equal(proc_state(c, &code), 'Z');
	assert_int_equal(code, 7 << 8);
	assert_int_equal(waitpid(c, NULL, 0), c);

	errno = 0;
	assert_int_equal(proc_stat_read(c, 0, &st), -1);
	assert_true(errno == ENOENT || errno == ESRCH);
	assert_int_equal(proc_state(c, NULL), 0);
	errno = 0;
	assert_int_equal(proc_stat_read(getpid(), c, &st), -1);
	assert_true(errno == ENOENT || errno == ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(comm_with_parentheses_and_spaces),
		cmocka_unit_test(odd_fields),
		cmocka_unit_test(long_comm_is_cut),
		cmocka_unit_test(broken_lines),
		cmocka_unit_test(reads_this_process_and_a_thread),
		cmocka_unit_test(zombie_and_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
