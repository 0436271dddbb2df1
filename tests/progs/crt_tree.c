/* SPDX-License-Identifier: MIT */
/*
 * crt_tree: a tree of 53 processes that checks itself (t_cr_tree.sh).
 *
 *   CR_GO=FILE CR_DIR=DIR crt_tree [-r ROUNDS] [-f FANOUT]
 *
 * The root makes 4 children, each of them 3, each of those 3 (depth 3:
 * 1 + 4 + 12 + 36 = 53 processes; -f 2 makes 1 + 2 + 4 + 8 = 15).  Every
 * process holds a pipe from its parent (tokens go down) and one to its
 * parent (answers go up), the shared page (MAP_SHARED|MAP_ANONYMOUS, made
 * by the root, inherited by all), the file DIR/tree.log that the root
 * opened before forking (inherited: one open file description for all)
 * and a dup of it of its own.  Some are in groups of their own: child 1
 * (and its subtree), grandchild 14 (the first child of child 4), and
 * great-grandchild 50 joins the group of 14, its uncle; child 2 is a
 * session of its own (setsid).  The root and its children each have one
 * more thread, waiting on a condition variable.
 *
 * A round: the root writes a nonce into the shared page and sends the
 * round number down; every process reads the number its children left in
 * their pipes at the end of the previous round, checks its PID, parent,
 * group and session against what it recorded at the start, checks it sees
 * the root's nonce, marks its slot in the shared page, checks (kcmp) that
 * its dup and its parent's descriptor are the same open file description
 * as its own inherited one, writes two 16-byte records to the file (one
 * through each descriptor), sends the number on to its children, sums
 * their answers, answers its parent, and leaves the round number in the
 * pipe to its parent.  The root then checks that all answered, that every
 * slot is marked, that the file position moved by exactly 2 records per
 * process and that every record is there once (a process with a position
 * of its own would overwrite others').  Failures seen by any process are
 * collected in the shared page and printed by the root.
 *
 * Round 0 runs before "ready pid=N" is printed; round K (1..ROUNDS, default
 * 1) once the file GO.K exists (GO is the go file), printing "round K: N
 * processes: ids, pipes, shared page, shared file position ok".  Then the
 * tree ends (every process waits for its children and checks their
 * status) and the root prints "PASS crt_tree" (exit 0) or "FAIL crt_tree
 * (N failures)".
 */
#define _GNU_SOURCE
#include "crtest.h"

#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define MAXN 64
#define END (-1)
#define MAGIC 0x74726565

struct ids {
	int pid, ppid, pgid, sid;
};

struct shared {
	atomic_int acks;
	atomic_int registered;
	atomic_int fails;
	volatile int nonce;
	struct ids ids[MAXN];
	volatile int slot[MAXN];
	char msg[MAXN][112];
};

struct rec {
	int32_t idx, round, which, magic;
};

static int fan[3] = { 4, 3, 3 };
static int nnodes, level_off[4];
static struct shared *sh;
static int F; /* inherited from the root: one description for all */

/* This process. */
static int me, mylevel, mypos, G, up_w = -1, down_r = -1, nkids;
static int kid_down_w[8], kid_up_r[8], kid_idx[8];
static pid_t kid_pid[8];
static pthread_t extra;
static int have_extra;
static pthread_mutex_t emx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ecv = PTHREAD_COND_INITIALIZER;
static int extra_end;

__attribute__((format(printf, 1, 2))) static void nfail(const char *fmt, ...)
{
	va_list ap;
	char buf[112];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (atomic_fetch_add(&sh->fails, 1) == 0 || !sh->msg[me][0])
		snprintf(sh->msg[me], sizeof(sh->msg[me]), "process %d: %.90s",
			 me, buf);
}

static int node_index(int level, int pos)
{
	return level_off[level] + pos;
}

static void *extra_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "crt-tree-t");
	pthread_mutex_lock(&emx);
	while (!extra_end)
		pthread_cond_wait(&ecv, &emx);
	pthread_mutex_unlock(&emx);
	return NULL;
}

/* Read one number from fd; with in_round, give up after 15 s (a broken
 * pipe must not hang the tree for ever).  Between rounds (a dump may come
 * then) a plain blocking read: poll with a timeout comes back with EINTR
 * after a restore (see t_cr_tree.sh, crt_threads' crt-poll). */
static int get_int(int fd, int *v, const char *what, int in_round)
{
	if (in_round) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 15000);
		if (r <= 0) {
			nfail("%s: %s", what,
			      r ? strerror(errno) : "nothing came within 15 s");
			return -1;
		}
	}
	ssize_t n;
	while ((n = read(fd, v, sizeof(*v))) < 0 && errno == EINTR && in_round)
		;
	if (n != sizeof(*v)) {
		nfail("%s: read returned %zd (%s)", what, n,
		      n < 0 ? strerror(errno) : "short");
		return -1;
	}
	return 0;
}

static void put_int(int fd, int v, const char *what)
{
	ssize_t n = write(fd, &v, sizeof(v));
	if (n != sizeof(v))
		nfail("%s: write returned %zd (%s)", what, n,
		      n < 0 ? strerror(errno) : "short");
}

static long kcmp_file(pid_t p2, int fd1, int fd2)
{
	return syscall(SYS_kcmp, getpid(), p2, KCMP_FILE, fd1, fd2);
}

/* One round in this process; returns the size of its subtree. */
static int node_round(int k)
{
	struct ids *id = &sh->ids[me];
	int total = 1;

	if (k > 0)
		for (int j = 0; j < nkids; j++) {
			int v = -99;
			if (get_int(kid_up_r[j], &v, "the number left in the "
						     "pipe from a child", 1) == 0 &&
			    v != k - 1)
				nfail("child %d left %d in its pipe, not %d",
				      kid_idx[j], v, k - 1);
		}
	/* Tokens down first, so the subtrees work in parallel. */
	for (int j = 0; j < nkids; j++)
		put_int(kid_down_w[j], k, "the pipe to a child");
	if (getpid() != id->pid)
		nfail("PID %d, was %d", getpid(), id->pid);
	if (me && getppid() != id->ppid)
		nfail("parent %d, was %d", getppid(), id->ppid);
	if (getpgid(0) != id->pgid)
		nfail("group %d, was %d", getpgid(0), id->pgid);
	if (getsid(0) != id->sid)
		nfail("session %d, was %d", getsid(0), id->sid);
	if (sh->nonce != k * 1000 + 7)
		nfail("round %d: sees nonce %d in the shared page, the root "
		      "wrote %d",
		      k, sh->nonce, k * 1000 + 7);
	sh->slot[me] = k;
	atomic_fetch_add(&sh->acks, 1);
	long r = kcmp_file(getpid(), F, G);
	if (r != 0)
		nfail("kcmp(fd %d, its dup fd %d) = %ld: not the same open "
		      "file description",
		      F, G, r);
	if (me) {
		r = kcmp_file(getppid(), F, F);
		if (r != 0)
			nfail("kcmp(fd %d, the parent's fd %d) = %ld: not the "
			      "same open file description",
			      F, F, r);
	}
	struct rec a = { me, k, 0, MAGIC }, b = { me, k, 1, MAGIC };
	if (write(F, &a, sizeof(a)) != sizeof(a) ||
	    write(G, &b, sizeof(b)) != sizeof(b))
		nfail("write to the shared file: %s", strerror(errno));
	for (int j = 0; j < nkids; j++) {
		int v = 0;
		if (get_int(kid_up_r[j], &v, "the answer from a child", 1) == 0)
			total += v;
	}
	if (me) {
		put_int(up_w, total, "the pipe to the parent");
		put_int(up_w, k, "the pipe to the parent");
	}
	return total;
}

static void end_node(void)
{
	for (int j = 0; j < nkids; j++)
		put_int(kid_down_w[j], END, "the pipe to a child");
	for (int j = 0; j < nkids; j++) {
		int st = 0;
		pid_t w = waitpid(kid_pid[j], &st, 0);
		if (w != kid_pid[j])
			nfail("waitpid(%d): %s", kid_pid[j], strerror(errno));
		else if (!WIFEXITED(st) || WEXITSTATUS(st))
			nfail("child %d ended with status %#x", kid_idx[j], st);
	}
	if (have_extra) {
		pthread_mutex_lock(&emx);
		extra_end = 1;
		pthread_cond_broadcast(&ecv);
		pthread_mutex_unlock(&emx);
		pthread_join(extra, NULL);
	}
}

static void run_node(int idx, int level, int pos);

static void make_kids(void)
{
	if (mylevel >= 3)
		return;
	nkids = fan[mylevel];
	for (int j = 0; j < nkids; j++) {
		int down[2], up[2];
		SETUP(pipe(down) == 0 && pipe(up) == 0, "pipe");
		int cpos = mypos * fan[mylevel] + j;
		int cidx = node_index(mylevel + 1, cpos);
		pid_t c = fork();
		SETUP(c >= 0, "fork");
		if (c == 0) {
			for (int i = 0; i < j; i++) {
				close(kid_down_w[i]);
				close(kid_up_r[i]);
			}
			close(down[1]);
			close(up[0]);
			if (up_w >= 0)
				close(up_w);
			if (down_r >= 0)
				close(down_r);
			close(G);
			up_w = up[1];
			down_r = down[0];
			run_node(cidx, mylevel + 1, cpos);
			_exit(0);
		}
		close(down[0]);
		close(up[1]);
		kid_down_w[j] = down[1];
		kid_up_r[j] = up[0];
		kid_pid[j] = c;
		kid_idx[j] = cidx;
	}
}

static void setup_groups(void)
{
	if (me == 1 || me == 14)
		SETUP(setpgid(0, 0) == 0, "setpgid");
	if (me == 2)
		SETUP(setsid() > 0, "setsid");
	if (me == 50 && nnodes > 50) {
		/* the group of process 14, its uncle */
		double end = cr_now() + 10 * cr_scale();
		while (!sh->ids[14].pgid) {
			SETUP(cr_now() < end, "waiting for process 14");
			cr_nap_ms(1);
		}
		SETUP(setpgid(0, sh->ids[14].pgid) == 0, "setpgid");
	}
}

static void run_node(int idx, int level, int pos)
{
	me = idx;
	mylevel = level;
	mypos = pos;
	nkids = 0;
	/* nothing of a broken test outlives it (the alarm goes on across a
	 * restore: ten dump/restore cycles of the whole tree on a loaded
	 * machine take minutes) */
	alarm((unsigned)(CR_WAIT_S * cr_scale()));
	setup_groups();
	G = dup(F);
	SETUP(G >= 0, "dup");
	make_kids();
	if (level <= 1) {
		SETUP(pthread_create(&extra, NULL, extra_main, NULL) == 0,
		      "pthread_create");
		have_extra = 1;
	}
	struct ids id = { getpid(), getppid(), getpgid(0), getsid(0) };
	sh->ids[me] = id;
	atomic_fetch_add(&sh->registered, 1);
	if (me == 0)
		return;
	for (;;) {
		int k;
		if (get_int(down_r, &k, "the pipe from the parent", 0) < 0) {
			/* without tokens this process is lost: wait to be
			 * killed, say nothing more */
			pause();
			continue;
		}
		if (k == END)
			break;
		node_round(k);
	}
	end_node();
	_exit(0);
}

static int root_round(int k)
{
	off_t before = lseek(F, 0, SEEK_CUR);
	int f0 = cr_failures;

	atomic_store(&sh->acks, 0);
	sh->nonce = k * 1000 + 7;
	int total = node_round(k);
	off_t after = lseek(F, 0, SEEK_CUR);
	CHECK(total == nnodes, "round %d: %d processes answered, not %d", k,
	      total, nnodes);
	CHECK(atomic_load(&sh->acks) == nnodes,
	      "round %d: %d processes marked the shared page, not %d", k,
	      atomic_load(&sh->acks), nnodes);
	for (int i = 0; i < nnodes; i++)
		CHECK(sh->slot[i] == k,
		      "round %d: slot of process %d holds %d (its write is "
		      "not seen by the root)",
		      k, i, sh->slot[i]);
	off_t want = before + (off_t)nnodes * 2 * (off_t)sizeof(struct rec);
	CHECK(after == want,
	      "round %d: the shared file position moved from %lld to %lld, "
	      "expected %lld",
	      k, (long long)before, (long long)after, (long long)want);
	size_t len = (size_t)nnodes * 2;
	struct rec *r = calloc(len, sizeof(*r));
	unsigned char seen[MAXN][2];
	memset(seen, 0, sizeof(seen));
	SETUP(r != NULL, "calloc");
	ssize_t got = pread(F, r, len * sizeof(*r), before);
	int bad = 0;
	for (size_t i = 0; got > 0 && i < (size_t)got / sizeof(*r); i++) {
		if (r[i].magic != MAGIC || r[i].idx < 0 ||
		    r[i].idx >= nnodes || r[i].round != k || r[i].which < 0 ||
		    r[i].which > 1) {
			bad++;
			continue;
		}
		seen[r[i].idx][r[i].which]++;
	}
	int missing = 0;
	for (int i = 0; i < nnodes; i++)
		missing += (seen[i][0] != 1) + (seen[i][1] != 1);
	CHECK(got == (ssize_t)(len * sizeof(*r)) && !bad && !missing,
	      "round %d: the shared file holds %zd bytes of records, %d bad, "
	      "%d missing or doubled (a lost shared position?)",
	      k, got, bad, missing);
	free(r);
	int nf = atomic_exchange(&sh->fails, 0);
	if (nf) {
		for (int i = 0; i < nnodes; i++)
			if (sh->msg[i][0]) {
				CHECK(0, "round %d: %s", k, sh->msg[i]);
				sh->msg[i][0] = 0;
			}
		CHECK(0, "round %d: %d failures in the tree", k, nf);
	}
	int failed = cr_failures != f0;
	if (!failed)
		cr_info("round %d: %d processes: ids, pipes, shared page, "
			"shared file position ok",
			k, nnodes);
	return failed;
}

int main(int argc, char **argv)
{
	int rounds = 1, c;
	char go[4200];

	cr_init("crt_tree");
	while ((c = getopt(argc, argv, "r:f:")) != -1) {
		switch (c) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'f':
			fan[0] = fan[1] = fan[2] = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: crt_tree [-r ROUNDS] [-f N]\n");
			return 2;
		}
	}
	level_off[0] = 0;
	level_off[1] = 1;
	level_off[2] = 1 + fan[0];
	level_off[3] = level_off[2] + fan[0] * fan[1];
	nnodes = level_off[3] + fan[0] * fan[1] * fan[2];
	SETUP(nnodes <= MAXN && fan[0] <= 8, "tree too large");
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	SETUP(sh != MAP_FAILED, "mmap");
	F = open(cr_path("tree.log"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		 0644);
	SETUP(F >= 0, "open tree.log");
	SETUP(dup2(F, 40) == 40, "dup2");
	close(F);
	F = 40;
	run_node(0, 0, 0);
	double end = cr_now() + 20 * cr_scale();
	while (atomic_load(&sh->registered) < nnodes) {
		SETUP(cr_now() < end, "the tree getting ready");
		cr_nap_ms(1);
	}
	root_round(0);
	cr_ready();
	for (int k = 1; k <= rounds; k++) {
		snprintf(go, sizeof(go), "%s.%d", cr_go, k);
		cr_wait_file(go);
		root_round(k);
	}
	end_node();
	int nf = atomic_load(&sh->fails);
	for (int i = 0; nf && i < nnodes; i++)
		if (sh->msg[i][0])
			CHECK(0, "at the end: %s", sh->msg[i]);
	CHECK(!nf, "%d failures in the tree at the end", nf);
	return cr_done();
}
