/* SPDX-License-Identifier: MIT */
/*
 * The PD channel: how a target process asks its monitor for its
 * capability-space region (the seed's Pd_session::cap_space_info()).
 *
 * The monitor listens on an abstract Unix SOCK_SEQPACKET address whose name
 * it passes down in the environment variable CAPCR_PD.  Each process opens
 * its own session by connecting; the monitor learns who asks from
 * SO_PEERCRED and serves only processes of its own tree.  See
 * docs/protocol.md.
 */
#ifndef CAPCR_PD_PROTO_H
#define CAPCR_PD_PROTO_H

#include <stdint.h>

#define CAPCR_PD_ENV "CAPCR_PD"
#define CAPCR_PD_MAGIC 0x31445043u /* "CPD1" */
#define CAPCR_PD_NAME_MAX 100

enum capcr_pd_op {
	CAPCR_PD_CAP_SPACE_INFO = 1, /* give me my region */
	CAPCR_PD_INSERT = 2,         /* ipc mode: kcap entered the cap map */
	CAPCR_PD_REMOVE = 3,         /* ipc mode: kcap left the cap map */
	CAPCR_PD_QUERY = 4,          /* capcr caps: the region of pid */
};

/* What the monitor answers to CAP_SPACE_INFO. */
enum capcr_pd_mode {
	CAPCR_PD_REFUSED = 0, /* no region: run as on core */
	CAPCR_PD_SHM = 1,     /* region attached; a memfd comes along */
	CAPCR_PD_IPC = 2,     /* report every change on this session */
};

struct capcr_pd_request {
	uint32_t magic;
	uint16_t op;
	uint16_t kind;
	int32_t kcap;
	int32_t pid; /* QUERY: whose region */
	uint64_t badge;
	uint64_t badge_ptr;
};

struct capcr_pd_reply {
	uint32_t magic;
	int32_t status; /* 0 or -errno */
	uint32_t mode;  /* enum capcr_pd_mode */
	uint32_t reserved;
	uint64_t badge_base;
};

#endif
