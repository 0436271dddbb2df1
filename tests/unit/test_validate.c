/* SPDX-License-Identifier: MIT */
/*
 * The image validator (src/image/validate.c) on images built by hand: one
 * well-formed image of two processes, then each way an attacker's image
 * could be bad, one at a time; and the real dumps of the fuzz corpus
 * (tests/fuzz/corpus/image/, packed by tests/fuzz/mkcorpus.sh) must pass.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/user.h>

#include <cmocka.h>

#include "capcr/capinfo.h"
#include "image/load.h"

/* A small image, every message a static object reset by setup(). */
static Capcr__Inventory inv;
static Capcr__ImageFile pagesf, *invfiles[1];
static int32_t pids[2];
static Capcr__Files files;
static Capcr__File file0, file1, *filev[2];
static Capcr__Task task[2];
static Capcr__MmLayout layout;
static Capcr__Thread thread[2], *threadv[2][1];
static uint8_t regs[sizeof(struct user_regs_struct)];
static Capcr__Mm mm[2];
static Capcr__Vma vma[2], *vmav[2];
static Capcr__PageRun run, *runv[1];
static Capcr__FdTable fdt[2];
static Capcr__Fd fd[3], *fdv0[2], *fdv1[1];
static struct image_proc procs[2];
static struct image_set set;
static char why[512];

static int setup(void **state)
{
	(void)state;
	capcr__inventory__init(&inv);
	inv.format_version = 1;
	inv.capcr_version = "test";
	inv.arch = "x86_64";
	inv.root_pid = 100;
	pids[0] = 100;
	pids[1] = 101;
	inv.n_pids = 2;
	inv.pids = pids;
	capcr__image_file__init(&pagesf);
	pagesf.name = "pages-100.img";
	pagesf.size = 2 * 4096;
	invfiles[0] = &pagesf;
	inv.n_files = 1;
	inv.files = invfiles;

	capcr__files__init(&files);
	capcr__file__init(&file0);
	capcr__file__init(&file1);
	file0.id = 0;
	file0.kind = CAPCR__FILE_KIND__FILE_REG;
	file0.path = "/etc/hostname";
	file1.id = 1;
	file1.kind = CAPCR__FILE_KIND__FILE_CHR;
	file1.path = "/dev/null";
	filev[0] = &file0;
	filev[1] = &file1;
	files.n_files = 2;
	files.files = filev;

	capcr__mm_layout__init(&layout);
	for (int i = 0; i < 2; i++) {
		capcr__task__init(&task[i]);
		task[i].pid = pids[i];
		task[i].ppid = i ? pids[0] : 1;
		task[i].pgid = task[i].sid = pids[0];
		task[i].comm = "proc";
		task[i].cwd = "/";
		task[i].mm = &layout;
		capcr__thread__init(&thread[i]);
		thread[i].tid = pids[i];
		thread[i].regs.len = sizeof(regs);
		thread[i].regs.data = regs;
		threadv[i][0] = &thread[i];
		task[i].n_threads = 1;
		task[i].threads = threadv[i];

		capcr__mm__init(&mm[i]);
		capcr__fd_table__init(&fdt[i]);
		procs[i] = (struct image_proc){ &task[i], &mm[i], &fdt[i] };
	}
	/* process 100: one area with a run of two saved pages */
	capcr__vma__init(&vma[0]);
	vma[0].start = 0x400000;
	vma[0].end = 0x404000;
	vma[0].prot = 3;
	vma[0].kind = CAPCR__VMA_KIND__VMA_ANON_PRIVATE;
	capcr__page_run__init(&run);
	run.vaddr = 0x401000;
	run.npages = 2;
	run.offset = 0;
	runv[0] = &run;
	vma[0].n_pages = 1;
	vma[0].pages = runv;
	capcr__vma__init(&vma[1]);
	vma[1].start = 0x500000;
	vma[1].end = 0x501000;
	vma[1].prot = 1;
	vma[1].kind = CAPCR__VMA_KIND__VMA_ANON_PRIVATE;
	vmav[0] = &vma[0];
	vmav[1] = &vma[1];
	mm[0].n_vmas = 2;
	mm[0].vmas = vmav;
	for (int i = 0; i < 3; i++)
		capcr__fd__init(&fd[i]);
	fd[0].fd = 0;
	fd[0].file = 1;
	fd[1].fd = 3;
	fd[1].file = 0;
	fd[2].fd = 0;
	fd[2].file = 1;
	fdv0[0] = &fd[0];
	fdv0[1] = &fd[1];
	fdv1[0] = &fd[2];
	fdt[0].n_fds = 2;
	fdt[0].fds = fdv0;
	fdt[1].n_fds = 1;
	fdt[1].fds = fdv1;

	set = (struct image_set){ &inv, &files, procs, 2 };
	why[0] = 0;
	return 0;
}

/* The image is refused, and why names what: every needle in why. */
static void refused(const char *first, ...)
{
	va_list ap;

	assert_int_equal(image_set_validate(&set, why, sizeof(why)), -1);
	print_message("      refused: %s\n", why);
	va_start(ap, first);
	for (const char *n = first; n; n = va_arg(ap, const char *))
		if (!strstr(why, n))
			fail_msg("'%s' does not name '%s'", why, n);
	va_end(ap);
}

static void good_image(void **state)
{
	(void)state;
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
}

static void no_process(void **state)
{
	(void)state;
	inv.n_pids = 0;
	set.nprocs = 0;
	refused("inventory.img", "no process", NULL);
}

static void parent_cycle(void **state)
{
	(void)state;
	/* 100 <- 101 <- 100, the root's parent inside the image */
	task[0].ppid = 101;
	refused("core-100.img", "ppid 101", NULL);
}

static void parent_cycle_below_root(void **state)
{
	(void)state;
	/* a third process and the second, each the other's parent */
	static Capcr__Task t3;
	static Capcr__Thread th3, *th3v[1];
	static Capcr__Mm mm3;
	static Capcr__FdTable fdt3;
	static struct image_proc p3[3];
	static int32_t pid3[3] = { 100, 101, 102 };

	t3 = task[1];
	t3.pid = 102;
	t3.ppid = 101;
	th3 = thread[1];
	th3.tid = 102;
	th3v[0] = &th3;
	t3.threads = th3v;
	capcr__mm__init(&mm3);
	capcr__fd_table__init(&fdt3);
	task[1].ppid = 102;
	p3[0] = procs[0];
	p3[1] = procs[1];
	p3[2] = (struct image_proc){ &t3, &mm3, &fdt3 };
	inv.pids = pid3;
	inv.n_pids = 3;
	set.procs = p3;
	set.nprocs = 3;
	refused("cycle", NULL);
}

static void missing_parent(void **state)
{
	(void)state;
	task[1].ppid = 555;
	refused("core-101.img", "ppid 555", NULL);
}

static void duplicate_pids(void **state)
{
	(void)state;
	pids[1] = 100;
	task[1].pid = 100;
	thread[1].tid = 100;
	refused("100", NULL);
}

static void duplicate_tid(void **state)
{
	(void)state;
	/* a second thread of 100 with the TID of process 101 */
	static Capcr__Thread t2, *tv[2];

	t2 = thread[0];
	t2.tid = 101;
	tv[0] = &thread[0];
	tv[1] = &t2;
	task[0].threads = tv;
	task[0].n_threads = 2;
	refused("101", "tid", NULL);
}

static void inventory_pid_mismatch(void **state)
{
	(void)state;
	task[1].pid = 102;
	thread[1].tid = 102;
	refused("core-101.img", "pid 102", NULL);
}

static void leader_tid(void **state)
{
	(void)state;
	thread[1].tid = 150;
	refused("core-101.img", "threads[0].tid", NULL);
}

static void overlapping_vmas(void **state)
{
	(void)state;
	vma[1].start = 0x403000;
	refused("mm-100.img", "vmas[1]", "overlaps", NULL);
}

static void unaligned_vma(void **state)
{
	(void)state;
	vma[1].end = 0x500800;
	refused("mm-100.img", "vmas[1]", NULL);
}

static void kernel_vma(void **state)
{
	(void)state;
	vma[1].start = 0x800000000000ull;
	vma[1].end = 0x800000001000ull;
	refused("mm-100.img", "vmas[1]", NULL);
}

static void huge_page_run(void **state)
{
	(void)state;
	run.npages = 1ull << 52;
	refused("mm-100.img", "vmas[0].pages[0]", NULL);
}

static void page_run_outside_area(void **state)
{
	(void)state;
	run.vaddr = 0x3ff000;
	refused("mm-100.img", "vmas[0].pages[0]", NULL);
}

static void page_run_beyond_data(void **state)
{
	(void)state;
	pagesf.size = 4096;
	refused("mm-100.img", "vmas[0].pages[0]", "data file", NULL);
}

static void same_descriptor_twice(void **state)
{
	(void)state;
	fd[1].fd = 0;
	refused("fds-100.img", "descriptor 0 twice", NULL);
}

static void descriptor_too_big(void **state)
{
	(void)state;
	fd[1].fd = 1 << 20;
	refused("fds-100.img", "fds[1].fd", NULL);
}

static void fd_names_missing_file(void **state)
{
	(void)state;
	fd[2].file = 2;
	refused("fds-101.img", "fds[0].file 2", NULL);
}

static void shmem_index(void **state)
{
	(void)state;
	vma[1].has_shmem = 1;
	vma[1].shmem = 0;
	refused("mm-100.img", "vmas[1].shmem", NULL);
}

static void data_file_escapes(void **state)
{
	(void)state;
	file0.data_file = "../../etc/shadow";
	refused("files.img", "bad file", NULL);
}

static void data_file_not_listed(void **state)
{
	(void)state;
	file0.data_file = "deleted-5.img";
	refused("files.img", "deleted-5.img", "inventory", NULL);
}

/* file1 a Unix datagram socket whose one queued message carries file0,
 * which no descriptor names: held by the queue alone. */
static Capcr__InFlight infl, *inflv[1];
static uint32_t infl_files[254];
static Capcr__ImageFile qf, *invfiles2[2];

static void in_flight_setup(void)
{
	capcr__image_file__init(&qf);
	qf.name = "sock-9.img";
	qf.size = 20;
	invfiles2[0] = &pagesf;
	invfiles2[1] = &qf;
	inv.files = invfiles2;
	inv.n_files = 2;
	file1.kind = CAPCR__FILE_KIND__FILE_SOCKET;
	file1.has_socket_domain = file1.has_socket_type = 1;
	file1.socket_domain = 1; /* AF_UNIX */
	file1.socket_type = 2;   /* SOCK_DGRAM */
	file1.socket_queue_file = "sock-9.img";
	capcr__in_flight__init(&infl);
	infl.has_msg = 1;
	infl.msg = 0;
	infl_files[0] = 0;
	infl.files = infl_files;
	infl.n_files = 1;
	inflv[0] = &infl;
	file1.socket_inflight = inflv;
	file1.n_socket_inflight = 1;
	fd[1].file = 1;
}

static void in_flight_only(void **state)
{
	(void)state;
	in_flight_setup();
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
}

static void in_flight_missing_file(void **state)
{
	(void)state;
	in_flight_setup();
	infl_files[0] = 5;
	refused("files.img", "files[1].socket_inflight[0].files[0] is 5",
		NULL);
}

static void in_flight_too_many(void **state)
{
	(void)state;
	in_flight_setup();
	infl.n_files = 254;
	refused("files.img", "carries 254 descriptors", NULL);
}

static void in_flight_on_a_file(void **state)
{
	(void)state;
	in_flight_setup();
	file1.kind = CAPCR__FILE_KIND__FILE_CHR;
	refused("files.img", "not a Unix socket", NULL);
}

static char *huge(size_t n)
{
	static char *s;

	free(s);
	s = malloc(n + 1);
	memset(s, 'a', n);
	s[n] = 0;
	return s;
}

static void huge_strings(void **state)
{
	(void)state;
	task[0].comm = huge(16);
	refused("core-100.img", "comm", NULL);
	setup(NULL);
	task[1].cwd = huge(4096);
	refused("core-101.img", "cwd", NULL);
	setup(NULL);
	file1.path = huge(1 << 20);
	refused("files.img", "files[1].path", NULL);
	setup(NULL);
	thread[0].comm = huge(64);
	refused("core-100.img", "threads[0].comm", NULL);
}

static void bad_signals(void **state)
{
	(void)state;
	static Capcr__SigAction sa, *sav[1];

	capcr__sig_action__init(&sa);
	sa.sig = 65;
	sav[0] = &sa;
	task[0].n_sigactions = 1;
	task[0].sigactions = sav;
	refused("core-100.img", "sigactions[0].sig 65", NULL);
	sa.sig = 9;
	refused("core-100.img", "sigactions[0].sig 9", NULL);
}

/* Only a signal that stops may say how a process was stopped: the
 * restore hands it to PTRACE_DETACH. */
static void bad_stop_signal(void **state)
{
	(void)state;
	task[0].has_stop_signal = 1;
	task[0].stop_signal = 9;
	refused("core-100.img", "stop_signal 9", NULL);
	task[0].stop_signal = 19; /* SIGSTOP */
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
}

static void short_cap_entry(void **state)
{
	(void)state;
	static Capcr__CapSpace cs;
	static Capcr__CapEntry ce, *cev[1];
	static uint8_t e[16];

	capcr__cap_space__init(&cs);
	capcr__cap_entry__init(&ce);
	ce.fd = 3;
	ce.entry.len = sizeof(e);
	ce.entry.data = e;
	cev[0] = &ce;
	cs.n_caps = 1;
	cs.caps = cev;
	fdt[0].capspace = &cs;
	refused("fds-100.img", "capspace.caps[0].entry", NULL);
}

static void short_regs(void **state)
{
	(void)state;
	thread[1].regs.len = 8;
	refused("core-101.img", "threads[0].regs", NULL);
}

static void big_auxv(void **state)
{
	(void)state;
	static uint8_t av[8192];

	task[0].has_auxv = 1;
	task[0].auxv.len = sizeof(av);
	task[0].auxv.data = av;
	refused("core-100.img", "auxv", NULL);
}

static void zombie_parent(void **state)
{
	(void)state;
	static Capcr__Task t3;
	static Capcr__Mm mm3;
	static Capcr__FdTable fdt3;
	static struct image_proc p3[3];
	static int32_t pid3[3] = { 100, 101, 102 };

	/* 101 a zombie, 102 its child: nobody would make 102 */
	task[1].zombie = 1;
	task[1].n_threads = 0;
	t3 = task[0];
	t3.pid = 102;
	t3.ppid = 101;
	capcr__mm__init(&mm3);
	capcr__fd_table__init(&fdt3);
	static Capcr__Thread th3, *th3v[1];
	th3 = thread[0];
	th3.tid = 102;
	th3v[0] = &th3;
	t3.threads = th3v;
	p3[0] = procs[0];
	p3[1] = procs[1];
	p3[2] = (struct image_proc){ &t3, &mm3, &fdt3 };
	inv.pids = pid3;
	inv.n_pids = 3;
	set.procs = p3;
	set.nprocs = 3;
	refused("core-102.img", "zombie", NULL);
}

static void epoll_target_missing(void **state)
{
	(void)state;
	static Capcr__EpollTarget et, *etv[1];

	capcr__epoll_target__init(&et);
	et.tfd = 7;
	etv[0] = &et;
	file1.kind = CAPCR__FILE_KIND__FILE_EPOLL;
	file1.has_pid = 1;
	file1.pid = 100;
	file1.n_epoll = 1;
	file1.epoll = etv;
	refused("files.img", "epoll[0].tfd 7", NULL);
	et.tfd = 3;
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
}

/* ---- file locks (fds-PID.img: locks) ---- */

static Capcr__FileLock lk[3], *lkv[3];

/* Process 100 holds a POSIX write lock on bytes 0-99 and an OFD read lock
 * from byte 200 to the end of descriptor 3 (/etc/hostname, opened
 * read-write), and a flock lock on descriptor 0. */
static void with_locks(void)
{
	for (int i = 0; i < 3; i++) {
		capcr__file_lock__init(&lk[i]);
		lkv[i] = &lk[i];
	}
	file0.flags = 02; /* O_RDWR */
	lk[0].kind = CAPCR__LOCK_KIND__LOCK_POSIX;
	lk[0].fd = 3;
	lk[0].type = 1; /* F_WRLCK */
	lk[0].has_start = lk[0].has_len = 1;
	lk[0].start = 0;
	lk[0].len = 100;
	lk[1].kind = CAPCR__LOCK_KIND__LOCK_OFD;
	lk[1].fd = 3;
	lk[1].type = 0; /* F_RDLCK */
	lk[1].has_start = lk[1].has_len = 1;
	lk[1].start = 200;
	lk[1].len = 0;
	lk[2].kind = CAPCR__LOCK_KIND__LOCK_FLOCK;
	lk[2].fd = 0;
	lk[2].type = 1;
	fdt[0].n_locks = 3;
	fdt[0].locks = lkv;
}

static void good_locks(void **state)
{
	(void)state;
	with_locks();
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
	/* the last byte of a file */
	lk[0].start = INT64_MAX;
	lk[0].len = 1;
	assert_int_equal(image_set_validate(&set, why, sizeof(why)), 0);
}

static void lock_bad_kind_or_type(void **state)
{
	(void)state;
	with_locks();
	lk[1].kind = (Capcr__LockKind)7;
	refused("fds-100.img", "locks[1].kind 7", NULL);
	why[0] = 0;
	lk[1].kind = CAPCR__LOCK_KIND__LOCK_OFD;
	lk[2].type = 2; /* F_UNLCK: not a lock */
	refused("fds-100.img", "locks[2].type 2", NULL);
}

static void lock_fd_missing(void **state)
{
	(void)state;
	with_locks();
	lk[0].fd = 4;
	refused("fds-100.img", "locks[0].fd 4", "not a descriptor of process "
						"100", NULL);
}

static void lock_bad_range(void **state)
{
	(void)state;
	with_locks();
	lk[0].start = -1;
	refused("fds-100.img", "locks[0]", "start -1", NULL);
	why[0] = 0;
	lk[0].start = INT64_MAX;
	lk[0].len = 2; /* one byte past the largest offset */
	refused("fds-100.img", "locks[0]", "not a range", NULL);
	why[0] = 0;
	lk[0].start = 0;
	lk[0].len = -5;
	refused("fds-100.img", "locks[0]", "length -5", NULL);
	why[0] = 0;
	lk[0].len = 1;
	lk[0].has_len = 0;
	refused("fds-100.img", "locks[0]", NULL);
	why[0] = 0;
	lk[0].has_len = 1;
	lk[2].has_start = 1;
	lk[2].start = 10;
	refused("fds-100.img", "locks[2]", "flock lock or lease has no range", NULL);
}

static void lock_access_mode(void **state)
{
	(void)state;
	with_locks();
	file0.flags = 0; /* O_RDONLY: no POSIX write lock */
	refused("fds-100.img", "locks[0]", "not open for writing", NULL);
	why[0] = 0;
	file0.flags = 01; /* O_WRONLY: no OFD read lock */
	refused("fds-100.img", "locks[1]", "not open for reading", NULL);
}

/* ---- the real dumps of the fuzz corpus ---- */

static void *unpack_rec(int kind, const uint8_t *p, size_t len)
{
	static const ProtobufCMessageDescriptor *const desc[] = {
		&capcr__inventory__descriptor, &capcr__files__descriptor,
		&capcr__task__descriptor, &capcr__mm__descriptor,
		&capcr__fd_table__descriptor,
	};
	char w[256];
	void *m = image_unpack(desc[kind], p, len, "seed", w, sizeof(w));

	if (!m)
		fail_msg("a seed's file does not decode: %s", w);
	return m;
}

static void real_dumps(void **state)
{
	(void)state;
	const char *dir = getenv("CAPCR_CORPUS") ? getenv("CAPCR_CORPUS")
						 : "tests/fuzz/corpus/image";
	DIR *d = opendir(dir);
	int n = 0;

	if (!d) {
		print_message("      no %s: run from the source tree\n", dir);
		skip();
	}
	for (struct dirent *e; (e = readdir(d));) {
		char path[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		static uint8_t buf[1 << 20];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct image_proc pr[64];
		struct image_set s = { .procs = pr };
		size_t np = 0;
		memset(pr, 0, sizeof(pr));
		for (size_t o = 0; o + 5 <= len;) {
			uint32_t l;
			int kind = buf[o];
			memcpy(&l, buf + o + 1, 4);
			o += 5;
			assert_true(kind < 5 && l <= len - o);
			void *m = unpack_rec(kind, buf + o, l);
			o += l;
			if (kind == 0)
				s.inv = m;
			else if (kind == 1)
				s.files = m;
			else if (kind == 2)
				pr[np].task = m;
			else if (kind == 3)
				pr[np].mm = m;
			else
				pr[np++].fdt = m;
			assert_true(np < 64);
		}
		s.nprocs = np;
		char w[512];
		if (image_set_validate(&s, w, sizeof(w)) < 0)
			fail_msg("real dump %s refused: %s", e->d_name, w);
		/* image_set_free would free pr[], which is ours */
		struct image_proc *heap = calloc(np + 1, sizeof(*heap));
		assert_non_null(heap);
		memcpy(heap, pr, np * sizeof(*heap));
		s.procs = heap;
		image_set_free(&s);
		n++;
	}
	closedir(d);
	print_message("      %d real dumps validate\n", n);
	assert_true(n > 0);
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(good_image),
		T(no_process),
		T(parent_cycle),
		T(parent_cycle_below_root),
		T(missing_parent),
		T(duplicate_pids),
		T(duplicate_tid),
		T(inventory_pid_mismatch),
		T(leader_tid),
		T(overlapping_vmas),
		T(unaligned_vma),
		T(kernel_vma),
		T(huge_page_run),
		T(page_run_outside_area),
		T(page_run_beyond_data),
		T(same_descriptor_twice),
		T(descriptor_too_big),
		T(fd_names_missing_file),
		T(shmem_index),
		T(data_file_escapes),
		T(data_file_not_listed),
		T(huge_strings),
		T(bad_signals),
		T(bad_stop_signal),
		T(short_cap_entry),
		T(short_regs),
		T(big_auxv),
		T(zombie_parent),
		T(epoll_target_missing),
		T(good_locks),
		T(lock_bad_kind_or_type),
		T(lock_fd_missing),
		T(lock_bad_range),
		T(lock_access_mode),
		T(in_flight_only),
		T(in_flight_missing_file),
		T(in_flight_too_many),
		T(in_flight_on_a_file),
		T(real_dumps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
