/* SPDX-License-Identifier: MIT */
/*
 * capcr capability-space ABI: the block of memory a target shares with its
 * monitor, and the cap-map entries its badge pointers lead to.
 *
 * This is the Linux form of the seed's proposal (docs/protocol.md): the PD
 * service hands each target process one "cap_space_info" region of a
 * predefined size; the target keeps in it an array of capcr_cap_info
 * { kcap, badge_ptr } for every capability (descriptor) it holds, and updates
 * the array on every insertion into and removal from its private cap map.
 *
 * Every field has a fixed width and a fixed offset (checked below), so a
 * monitor built separately from the target reads the region with the same
 * meaning.  All multi-byte fields are in the machine's byte order; the region
 * never leaves the machine (images record their own format).
 */
#ifndef CAPCR_CAPINFO_H
#define CAPCR_CAPINFO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "CCAPINFO" read as a little-endian 64-bit word. */
#define CAPCR_CAPINFO_MAGIC 0x4f464e4950414343ULL

/* Bumped on any change of layout or meaning of the structures below. */
#define CAPCR_CAPINFO_ABI_VERSION 1

/* The predefined size of a region, as the seed asks: 256 KiB, room for
 * (256 KiB - header) / 16 = 16380 capabilities. */
#define CAPCR_CAPINFO_REGION_SIZE (256u * 1024u)

/* Name of the memfd behind every region; shows in /proc/PID/maps as
 * "/memfd:capcr-capinfo (deleted)". */
#define CAPCR_CAPINFO_MEMFD_NAME "capcr-capinfo"

/* Region header flags (capcr_capinfo_header.flags). */
enum capcr_capinfo_flag {
	/* The target has entered every descriptor it held at attach time. */
	CAPCR_CAPINFO_F_COMPLETE = 1u << 0,
	/* More capabilities than capacity: the array lists only some. */
	CAPCR_CAPINFO_F_OVERFLOW = 1u << 1,
	/* An update could not be reported (signal-handler queue full): the
	 * array may miss entries until the next attach. */
	CAPCR_CAPINFO_F_LOST = 1u << 2,
};

/*
 * The region's first 64 bytes.
 *
 * Written by the monitor before hand-out: magic, abi_version, header_size,
 * entry_size, capmap_entry_size, region_size, capacity, badge_base, pid.
 * Written by the target afterwards: lock, count, seq, flags.
 *
 * Synchronisation (docs/protocol.md, "The lock"): writers inside the target
 * serialise on `lock` (0 free, 1 held).  Every change of the array or of a
 * published cap-map entry happens with `seq` odd; `seq` is even when the
 * region is consistent.  The monitor never takes `lock`: it copies the
 * region between two reads of an even, equal `seq` (a sequence lock), so a
 * target that stops or dies while holding `lock` cannot block it.
 */
struct capcr_capinfo_header {
	uint64_t magic;             /*  0: CAPCR_CAPINFO_MAGIC */
	uint16_t abi_version;       /*  8: CAPCR_CAPINFO_ABI_VERSION */
	uint16_t header_size;       /* 10: sizeof(struct capcr_capinfo_header) */
	uint16_t entry_size;        /* 12: sizeof(struct capcr_cap_info) */
	uint16_t capmap_entry_size; /* 14: sizeof(struct capcr_cap_entry) */
	uint32_t region_size;       /* 16: bytes, header included */
	uint32_t capacity;          /* 20: entries that fit after the header */
	uint32_t lock;              /* 24: target-side spinlock word */
	uint32_t count;             /* 28: entries in use, at most capacity */
	uint64_t seq;               /* 32: odd while an update is in progress */
	uint64_t badge_base;        /* 40: badges of this process start here */
	int32_t pid;                /* 48: process the region was handed to */
	uint32_t flags;             /* 52: enum capcr_capinfo_flag */
	uint64_t updates;           /* 56: insertions + removals so far */
};

/* Kinds of capability, as the runtime knows them at creation time.  A
 * descriptor opened by path is CAPCR_KIND_PATH until someone asks the
 * kernel whether it is a file, a directory, a FIFO or a device. */
enum capcr_kind {
	CAPCR_KIND_UNKNOWN = 0,
	CAPCR_KIND_PATH = 1,
	CAPCR_KIND_FILE = 2,
	CAPCR_KIND_DIR = 3,
	CAPCR_KIND_PIPE = 4,
	CAPCR_KIND_FIFO = 5,
	CAPCR_KIND_SOCKET = 6,
	CAPCR_KIND_EVENTFD = 7,
	CAPCR_KIND_EPOLL = 8,
	CAPCR_KIND_TIMERFD = 9,
	CAPCR_KIND_SIGNALFD = 10,
	CAPCR_KIND_INOTIFY = 11,
	CAPCR_KIND_MEMFD = 12,
	CAPCR_KIND_PIDFD = 13,
	CAPCR_KIND_CHARDEV = 14,
	CAPCR_KIND_OTHER = 15,
	CAPCR_KIND_MAX = 16
};

/*
 * One capability in the region: the seed's struct Cap_info.
 * badge_ptr is an address inside the target: the `badge` field of the
 * capcr_cap_entry that the target's cap map keeps for kcap.
 */
struct capcr_cap_info {
	int32_t kcap;       /* 0: descriptor number */
	uint16_t kind;      /* 4: enum capcr_kind */
	uint16_t reserved;  /* 6: zero */
	uint64_t badge_ptr; /* 8: address of the badge in the target */
};

/* How a capability came to be (capcr_cap_entry.origin). */
enum capcr_origin {
	CAPCR_ORIGIN_UNKNOWN = 0,
	CAPCR_ORIGIN_INHERITED = 1, /* held when the runtime attached */
	CAPCR_ORIGIN_OPEN = 2,      /* open, openat, creat, fopen, ... */
	CAPCR_ORIGIN_DUP = 3,       /* dup, dup2, dup3, F_DUPFD */
	CAPCR_ORIGIN_PIPE = 4,      /* pipe, pipe2, popen */
	CAPCR_ORIGIN_SOCKET = 5,    /* socket */
	CAPCR_ORIGIN_SOCKETPAIR = 6,
	CAPCR_ORIGIN_ACCEPT = 7,
	CAPCR_ORIGIN_RECEIVED = 8,  /* SCM_RIGHTS */
	CAPCR_ORIGIN_CREATE = 9,    /* eventfd, epoll, timerfd, signalfd,
				       inotify, memfd, pidfd: args in arg[] */
	CAPCR_ORIGIN_OPENDIR = 10,
	CAPCR_ORIGIN_TEMP = 11,     /* mkstemp, tmpfile */
	CAPCR_ORIGIN_MAX = 12
};

/* capcr_cap_entry.state bits */
enum capcr_entry_state {
	CAPCR_ENTRY_BOUND = 1u << 0,     /* local_addr holds a bind() address */
	CAPCR_ENTRY_CONNECTED = 1u << 1, /* peer_addr holds a connect() address */
	CAPCR_ENTRY_LISTENING = 1u << 2,
	CAPCR_ENTRY_TRUNCATED = 1u << 3, /* path longer than path[] */
	CAPCR_ENTRY_STDIO = 1u << 4,     /* wrapped by a FILE * or DIR * */
	CAPCR_ENTRY_RECONNECT = 1u << 5, /* may be connected again at restore
					    to peer_addr (capcr_allow_reconnect) */
};

#define CAPCR_ADDR_MAX 128 /* sizeof(struct sockaddr_storage) */
#define CAPCR_ENTRY_PATH_MAX 176

/*
 * The target's cap-map entry for one descriptor: the badge first (badge_ptr
 * points at it), then the provenance, which only the target knows.
 * 512 bytes.  A badge of 0 means "being written": the target writes every
 * other field first and the badge last.
 */
struct capcr_cap_entry {
	uint64_t badge;       /*   0: name of the kernel object, never 0 */
	uint64_t peer_badge;  /*   8: other end (pipe, socketpair), the
				      listener (accept), the source (dup) */
	int32_t kcap;         /*  16: descriptor number */
	uint16_t kind;        /*  20: enum capcr_kind */
	uint16_t origin;      /*  22: enum capcr_origin */
	int32_t flags;        /*  24: open(2) flags, or socket type flags */
	uint32_t mode;        /*  28: creation mode */
	int32_t domain;       /*  32: socket domain */
	int32_t type;         /*  36: socket type (without flags) */
	int32_t protocol;     /*  40: socket protocol */
	int32_t dirfd;        /*  44: openat's dirfd, -100 for AT_FDCWD */
	int64_t arg[2];       /*  48: kind-specific: eventfd initval,
				      timerfd clock, pidfd pid, ... */
	uint32_t state;       /*  64: enum capcr_entry_state */
	uint32_t reserved;    /*  68: zero */
	uint32_t local_len;   /*  72: bytes used in local_addr */
	uint32_t peer_len;    /*  76: bytes used in peer_addr */
	uint8_t local_addr[CAPCR_ADDR_MAX]; /*  80: bind() address */
	uint8_t peer_addr[CAPCR_ADDR_MAX];  /* 208: connect()/accept() peer */
	char path[CAPCR_ENTRY_PATH_MAX];     /* 336: path or name, NUL-ended */
};

#define CAPCR_CAPINFO_CAPACITY                                               \
	((CAPCR_CAPINFO_REGION_SIZE - sizeof(struct capcr_capinfo_header)) / \
	 sizeof(struct capcr_cap_info))

/* Name of a kind as `capcr caps --json` prints it. */
static inline const char *capcr_kind_name(unsigned kind)
{
	static const char *const names[CAPCR_KIND_MAX] = {
		"other",   "file",    "file",     "dir",     "pipe",
		"fifo",    "socket",  "eventfd",  "epoll",   "timerfd",
		"signalfd", "inotify", "memfd",   "pidfd",   "chardev",
		"other",
	};
	return kind < CAPCR_KIND_MAX ? names[kind] : "other";
}

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct capcr_capinfo_header) == 64, "header is 64 bytes");
_Static_assert(offsetof(struct capcr_capinfo_header, seq) == 32, "seq at 32");
_Static_assert(offsetof(struct capcr_capinfo_header, updates) == 56, "layout");
_Static_assert(sizeof(struct capcr_cap_info) == 16, "Cap_info is 16 bytes");
_Static_assert(offsetof(struct capcr_cap_info, badge_ptr) == 8, "layout");
_Static_assert(sizeof(struct capcr_cap_entry) == 512, "entry is 512 bytes");
_Static_assert(offsetof(struct capcr_cap_entry, badge) == 0, "badge first");
_Static_assert(offsetof(struct capcr_cap_entry, local_addr) == 80, "layout");
_Static_assert(offsetof(struct capcr_cap_entry, peer_addr) == 208, "layout");
_Static_assert(offsetof(struct capcr_cap_entry, path) == 336, "layout");
_Static_assert(CAPCR_CAPINFO_CAPACITY == 16380, "capacity");
#endif

#ifdef __cplusplus
}
#endif
#endif /* CAPCR_CAPINFO_H */
