/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint/restore area test: SysV IPC.  See crtest.h for the protocol.
 *
 *   - a private shared memory segment, attached, with a pattern: same id,
 *     same address, same contents, still one object (a write through the
 *     attach shows through a second attach made after the restore);
 *   - a keyed segment created and NOT attached: still there, contents kept;
 *   - a semaphore set of 3 with values 1, 5, 9 (the last operation made
 *     here, so it counts as the tree's): same id, same values;
 *   - a message queue holding 3 messages of types 1, 2, 1: same id, the
 *     messages in order with their types and bytes.
 * Everything is removed at the end.
 */
#define _GNU_SOURCE
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#include "crtest.h"

#define SEG (64 * 1024)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msg {
	long mtype;
	char text[64];
};

static int shm = -1, shm2 = -1, sem = -1, q = -1;

/* SysV objects outlive the process: never leave them behind. */
static void remove_all(void)
{
	if (shm >= 0)
		shmctl(shm, IPC_RMID, NULL);
	if (shm2 >= 0)
		shmctl(shm2, IPC_RMID, NULL);
	if (sem >= 0)
		semctl(sem, 0, IPC_RMID);
	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);
}

int main(void)
{
	cr_init("cr_sysv");
	atexit(remove_all);
	key_t key = (key_t)(0x43520000 | (getpid() & 0xffff));
	shm = shmget(IPC_PRIVATE, SEG, IPC_CREAT | 0600);
	shm2 = shmget(key, SEG, IPC_CREAT | IPC_EXCL | 0640);
	sem = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
	q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	SETUP(shm >= 0 && shm2 >= 0 && sem >= 0 && q >= 0, "ipc get");
	char *p = shmat(shm, NULL, 0);
	SETUP(p != (void *)-1, "shmat");
	cr_fill(p, SEG, 7);
	char *p2 = shmat(shm2, NULL, 0);
	SETUP(p2 != (void *)-1, "shmat 2");
	cr_fill(p2, SEG, 8);
	SETUP(shmdt(p2) == 0, "shmdt 2");
	unsigned short vals[3] = { 1, 5, 9 };
	union semun u = { .array = vals };
	SETUP(semctl(sem, 0, SETALL, u) == 0, "SETALL");
	/* up and down again: values unchanged, the last operation ours */
	struct sembuf op[2] = { { 1, 1, IPC_NOWAIT }, { 1, -1, IPC_NOWAIT } };
	SETUP(semop(sem, op, 2) == 0, "semop");
	struct msg m1 = { 1, "first" }, m2 = { 2, "second, longer" },
		   m3 = { 1, "third" };
	SETUP(msgsnd(q, &m1, 6, 0) == 0 && msgsnd(q, &m2, 15, 0) == 0 &&
		      msgsnd(q, &m3, 6, 0) == 0,
	      "msgsnd");

	cr_ready();
	cr_wait_go();

	struct shmid_ds ds;
	CHECK(shmctl(shm, IPC_STAT, &ds) == 0, "segment %d still there", shm);
	CHECK(ds.shm_nattch == 1, "segment attached once (nattch %lu)",
	      (unsigned long)ds.shm_nattch);
	CHECK(cr_verify(p, SEG, 7) < 0, "segment contents kept");
	char *again = shmat(shm, NULL, 0);
	CHECK(again != (void *)-1, "attach again");
	if (again != (void *)-1) {
		p[100] = 'Q';
		CHECK(again[100] == 'Q', "one segment: a write shows through "
					 "another attach");
		shmdt(again);
	}
	CHECK(shmget(key, 0, 0) == shm2, "keyed segment %d still has its key",
	      shm2);
	p2 = shmat(shm2, NULL, SHM_RDONLY);
	CHECK(p2 != (void *)-1 && cr_verify(p2, SEG, 8) < 0,
	      "unattached segment's contents kept");
	unsigned short now[3] = { 0, 0, 0 };
	u.array = now;
	CHECK(semctl(sem, 0, GETALL, u) == 0 && now[0] == 1 && now[1] == 5 &&
		      now[2] == 9,
	      "semaphore values 1 5 9 (got %u %u %u)", now[0], now[1], now[2]);
	struct msg r;
	memset(&r, 0, sizeof(r));
	ssize_t n = msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT);
	CHECK(n == 6 && r.mtype == 1 && !strcmp(r.text, "first"),
	      "message 1 back first");
	memset(&r, 0, sizeof(r));
	n = msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT);
	CHECK(n == 15 && r.mtype == 2 && !strcmp(r.text, "second, longer"),
	      "message 2 back second");
	memset(&r, 0, sizeof(r));
	n = msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT);
	CHECK(n == 6 && r.mtype == 1 && !strcmp(r.text, "third"),
	      "message 3 back third");
	CHECK(msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT) < 0,
	      "no more messages");

	shmdt(p);
	if (p2 != (void *)-1)
		shmdt(p2);
	return cr_done();
}
