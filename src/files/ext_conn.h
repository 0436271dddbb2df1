/* SPDX-License-Identifier: MIT */
/*
 * Connections whose other end is outside the image: a client connected to
 * a server that is not being checkpointed.  capcr cannot bring back the
 * other end, so by default the dump is refused, naming both ends.  Two ways
 * out:
 *
 *  - the application allows it: capcr_allow_reconnect(fd) (capcr.h) marks
 *    the capability in the runtime's cap map, where the address the socket
 *    was connected to is recorded already (its provenance).  Such a socket
 *    is connected again to that address at restore, as a new connection:
 *    the application must be ready for a fresh session on it (data in
 *    flight at the dump is lost).  This needs the capability-space
 *    protocol: the kernel alone does not know that the application agrees.
 *  - `capcr dump --external-sockets=closed` (or CRIU's --tcp-close): the
 *    socket comes back as a connection whose peer has gone: reads give end
 *    of file, writes EPIPE, as after the server closed.
 */
#ifndef CAPCR_EXT_CONN_H
#define CAPCR_EXT_CONN_H

#include "files.h"

#define CONN_RECONNECT 100
#define CONN_EXT_CLOSED 101

/* Is the connection of in allowed out of the image?  1: f is filled
 * (socket_conn and the address), 0: refuse it.  hint receives the advice
 * to append to the refusal. */
int ext_conn_dump(struct file_dump_env *env, const struct file_dump_in *in,
		  Capcr__File *f, const char **hint);
/* Make it again at restore: a descriptor, or -1 with why. */
int ext_conn_restore(struct file_restore_env *env, const Capcr__File *f);

#endif
