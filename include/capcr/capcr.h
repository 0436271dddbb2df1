/* SPDX-License-Identifier: MIT */
/*
 * libcapcr: the capcr target runtime.
 *
 * A program gets the runtime by linking it (pkg-config --libs capcr) or by
 * running under `capcr run`, which preloads it.  Nothing needs calling: the
 * runtime attaches to its monitor at startup and reports every descriptor
 * the program creates or closes through libc.  The calls below let a
 * program that cares ask what the runtime knows.
 */
#ifndef CAPCR_CAPCR_H
#define CAPCR_CAPCR_H

#include <stdint.h>

#include "capinfo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if this process reports its capability space to a monitor, else 0. */
int capcr_monitored(void);

/* The badge of descriptor fd (the name of its kernel object), or 0 when
 * not monitored or fd is unknown to the runtime. */
uint64_t capcr_badge(int fd);

/* Allow capcr to connect socket fd again, to the address it was connected
 * to, when a checkpoint of this process is restored while the other end is
 * not part of it (a server outside).  The application then gets a new
 * connection at restore and must be ready to start its session again.
 * 0, or -1 with errno: ENOSYS not monitored, EBADF unknown descriptor,
 * ENOTCONN not a socket connected through connect(). */
int capcr_allow_reconnect(int fd);

#ifdef __cplusplus
}
#endif
#endif
