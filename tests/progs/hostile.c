/* SPDX-License-Identifier: MIT */
/*
 * A hostile (or badly broken) target: corrupts its own capability-space
 * region, or its cap map, or its PD session, so that a test can check that
 * `capcr caps` still answers quickly, warns, lists the kernel's table and
 * never crashes.
 *
 *   hostile MODE
 *
 * Region (shm):
 *   garbage   random bytes over the whole region
 *   lock      lock word 1 forever (the monitor never takes it)
 *   count     count = capacity + 100
 *   seq       seq odd forever (died in the middle of an update)
 *   spin      a thread bumps seq by 2 without end (never two equal reads)
 *   badptr    badge_ptr values: NULL, low, unmapped, misaligned, into the
 *             region itself, a kernel address, the end of a mapping
 *   kcap      negative and huge kcap values, unknown kinds
 *   pid       the header names another process
 *   version   an ABI version from the future
 *   fake      the real region unmapped, a 4 KiB "capcr-capinfo" instead
 *   unmap     the region unmapped
 * Cap map (through the region's badge pointers):
 *   entry     paths without NUL, with quotes, control characters and bytes
 *             that are not UTF-8, address lengths out of range, unknown
 *             kinds and origins, a kcap that does not match, a zero badge
 *   scribble  lock word 7, then 100 opens and closes through the runtime:
 *             the runtime must give the region up, not spin (the only
 *             mode that calls wrapped functions after the damage)
 * PD session (--capinfo=ipc):
 *   ipcflood  INSERT requests with garbage fields, more than capacity
 *
 * After the damage, the program calls nothing the runtime wraps (the lock
 * may be held forever): it prints "info marker N" (a descriptor it holds),
 * "ready pid=N mode=MODE" and waits for SIGUSR2.
 */
#include "tprog.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "../../src/common/pd_proto.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static volatile int spinning = 1;

static void *spin_seq(void *arg)
{
	struct capcr_capinfo_header *h = arg;
	while (spinning)
		__atomic_add_fetch(&h->seq, 2, __ATOMIC_RELEASE);
	return NULL;
}

/* The runtime's ipc session: the socket at 900 or above. */
static int find_session(void)
{
	static unsigned char k[TP_MAXFD];
	tp_kernel_fds(k, TP_MAXFD);
	for (int fd = 900; fd < TP_MAXFD; fd++)
		if (k[fd])
			return fd;
	return -1;
}

static void ipc_flood(void)
{
	int s = find_session();
	if (!TP_CHECK(s >= 0, "no ipc session found"))
		return;
	long n = 0, bad = 0;
	for (uint32_t i = 0; i < CAPCR_CAPINFO_CAPACITY + 200; i++) {
		struct capcr_pd_request rq = {
			.magic = CAPCR_PD_MAGIC,
			.op = CAPCR_PD_INSERT,
			.kind = (uint16_t)(i % 3 == 0 ? 999 : i % 16),
			.kcap = i % 5 == 0 ? -(int32_t)i : (int32_t)(5000 + i),
			.badge = next_rand(),
			.badge_ptr = i % 2 ? next_rand() : 0x1000,
		};
		struct capcr_pd_reply rp;
		if (syscall(SYS_sendto, s, &rq, sizeof(rq), MSG_NOSIGNAL, 0,
			    0) != sizeof(rq) ||
		    syscall(SYS_recvfrom, s, &rp, sizeof(rp), 0, 0, 0) !=
			    sizeof(rp)) {
			bad++;
			break;
		}
		n++;
	}
	printf("info ipc_requests %ld failed %ld\n", n, bad);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "garbage";
	size_t len = 0;

	tp_init("hostile");
	rng ^= (uint64_t)getpid() * 2654435761u;
	int marker = open("/etc/hostname", O_RDONLY);
	int extra = open("/dev/null", O_RDONLY);
	int p[2];
	TP_CHECK(marker >= 0 && extra >= 0 && pipe(p) == 0, "setup");
	printf("info marker %d\n", marker);

	struct capcr_capinfo_header *h = tp_region(&len);
	struct capcr_cap_info *a = h ? (struct capcr_cap_info *)(h + 1) : NULL;
	if (strcmp(mode, "ipcflood") &&
	    !TP_CHECK(h && len == CAPCR_CAPINFO_REGION_SIZE, "no region")) {
		tp_ready("mode=%s", mode);
		tp_wait_go();
		return tp_done();
	}

	if (!strcmp(mode, "garbage")) {
		uint64_t *w = (uint64_t *)h;
		for (size_t i = 0; i < len / 8; i++)
			w[i] = next_rand();
	} else if (!strcmp(mode, "lock")) {
		__atomic_store_n(&h->lock, 1, __ATOMIC_RELEASE);
	} else if (!strcmp(mode, "count")) {
		h->count = h->capacity + 100;
	} else if (!strcmp(mode, "seq")) {
		h->lock = 1;
		h->seq |= 1;
	} else if (!strcmp(mode, "spin")) {
		pthread_t t;
		pthread_create(&t, NULL, spin_seq, h);
	} else if (!strcmp(mode, "badptr")) {
		/* The end of the stack mapping: a read of 512 bytes runs off
		 * it only if the pointer is too close; use our own stack. */
		char here;
		uint64_t targets[] = {
			0,
			0x10,
			0xdead0000ull,
			(uint64_t)(uintptr_t)h + 64,
			(uint64_t)(uintptr_t)h + 4096 * 8,
			a[0].badge_ptr + 1,
			0xffffffffff600000ull,
			0x7ffffffff000ull,
			((uint64_t)(uintptr_t)&here & ~7ull),
		};
		for (uint32_t i = 0; i < h->count; i++)
			a[i].badge_ptr =
				targets[i % (sizeof(targets) / sizeof(targets[0]))];
		printf("info badptr %u entries\n", h->count);
	} else if (!strcmp(mode, "kcap")) {
		for (uint32_t i = 0; i < h->count; i++) {
			int fd = a[i].kcap;
			if (fd == marker)
				continue;
			if (i % 3 == 0)
				a[i].kcap = -1 - (int)i;
			else if (i % 3 == 1)
				a[i].kind = 999;
			else
				a[i].kcap = 1 << 30;
		}
	} else if (!strcmp(mode, "pid")) {
		h->pid = getpid() + 1;
	} else if (!strcmp(mode, "version")) {
		h->abi_version = 99;
	} else if (!strcmp(mode, "fake")) {
		munmap(h, len);
		long fd = syscall(SYS_memfd_create, CAPCR_CAPINFO_MEMFD_NAME, 0);
		syscall(SYS_ftruncate, fd, 4096);
		void *f = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
			       (int)fd, 0);
		syscall(SYS_close, fd);
		TP_CHECK(f != MAP_FAILED, "fake mmap");
		memset(f, 0, 4096);
	} else if (!strcmp(mode, "unmap")) {
		munmap(h, len);
	} else if (!strcmp(mode, "entry")) {
		for (uint32_t i = 0; i < h->count; i++) {
			struct capcr_cap_entry *e =
				(struct capcr_cap_entry *)(uintptr_t)a[i].badge_ptr;
			if (a[i].kcap == marker)
				continue; /* one honest entry */
			switch (i % 6) {
			case 0: /* no NUL anywhere in path */
				memset(e->path, 'A', sizeof(e->path));
				e->local_len = 0xffffffffu;
				e->peer_len = 200;
				break;
			case 1: /* quotes, controls, not UTF-8 */
				strcpy(e->path, "q\"u\\o\n\t\x01\xff\xfe\xc3(");
				e->kind = 999;
				e->origin = 999;
				break;
			case 2: /* AF_UNIX address without a NUL */
				e->kind = CAPCR_KIND_SOCKET;
				e->local_addr[0] = 1; /* AF_UNIX */
				e->local_addr[1] = 0;
				memset(e->local_addr + 2, 0xff, CAPCR_ADDR_MAX - 2);
				e->local_len = CAPCR_ADDR_MAX;
				e->peer_addr[0] = 1;
				e->peer_addr[1] = 0;
				e->peer_len = 2; /* unnamed */
				break;
			case 3: /* kcap does not match */
				e->kcap = a[i].kcap + 1000;
				break;
			case 4: /* badge 0: "being written" forever */
				e->badge = 0;
				break;
			case 5: /* inet address with a short length */
				e->kind = CAPCR_KIND_SOCKET;
				e->local_addr[0] = 2; /* AF_INET */
				e->local_addr[1] = 0;
				e->local_len = 3;
				e->peer_addr[0] = 10; /* AF_INET6 */
				e->peer_addr[1] = 0;
				e->peer_len = 27;
				break;
			}
		}
	} else if (!strcmp(mode, "ipcflood")) {
		ipc_flood();
	} else if (!strcmp(mode, "scribble")) {
		__atomic_store_n(&h->lock, 7, __ATOMIC_RELEASE);
		for (int i = 0; i < 100; i++) {
			int fd = open("/dev/null", O_RDONLY);
			TP_CHECK(fd >= 0, "open after the scribble");
			close(fd);
		}
		printf("info survived the scribbled lock word\n");
	} else {
		TP_CHECK(0, "unknown mode %s", mode);
	}
	tp_ready("mode=%s marker=%d", mode, marker);
	tp_wait_go();
	spinning = 0;
	fflush(stdout);
	_exit(tp_failures ? 1 : 0);
}
