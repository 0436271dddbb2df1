/* SPDX-License-Identifier: MIT */
/*
 * Established TCP connections, checkpointed and restored with TCP_REPAIR
 * (tcp.c).  Both ends inside the image: always.  A peer outside the image:
 * only with --tcp-established on dump and restore (CRIU's option); the
 * connection is then blocked with nftables from the dump until the
 * restore, so the peer sees nothing of it.
 */
#ifndef CAPCR_TCP_H
#define CAPCR_TCP_H

/* capcr dump --tcp-established: connections to peers outside the image
 * are dumped too (and blocked until the restore). */
void tcp_dump_allow_external(int on);

/* How a dump ended, for the sockets it put in repair mode. */
enum tcp_dump_end {
	/* failed: every socket leaves repair mode, every block goes */
	TCP_DUMP_FAILED,
	/* -R: the processes go on; the same as a failure for the sockets */
	TCP_DUMP_LEFT_RUNNING,
	/* the processes were killed: capcr's copies are closed in repair
	 * mode (nothing is sent to the peers); connections outside the
	 * image stay blocked for their restore */
	TCP_DUMP_KILLED,
};
/* Once per dump, at its end (again: nothing more). */
void tcp_dump_end(enum tcp_dump_end how);

/* capcr restore --tcp-established: an image with connections to peers
 * outside it is restored (without: refused). */
void tcp_restore_allow_external(int on);

#endif
