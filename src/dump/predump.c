/* SPDX-License-Identifier: MIT */
/*
 * capcr pre-dump: the memory of a tree, copied while it runs (nothing is
 * frozen but each leader, for the two calls that arm its tracking), with
 * the write tracking left armed for the next dump, which then writes only
 * what was written since (--prev-images-dir).
 *
 * For each process: its userfaultfd in async write-protect mode (taken
 * over from the previous pre-dump's holder, or made now: track.h), every
 * private area registered with it, and one PAGEMAP_SCAN per area
 * (PM_SCAN_WP_MATCHING) that finds the pages worth saving, says which
 * were written since the last scan, and write-protects them again.  A
 * page written, or in an area the previous image does not have exactly,
 * is copied into pages-PID.img; one unwritten since is recorded as in the
 * previous image.  The image holds the inventory (predump, the holder's
 * socket) and each process's mm and pages files: memory only, never
 * restored alone.  Then a holder process keeps the tracking (track.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../monitor/commands.h"
#include "../pages/page_parent.h"
#include "../pages/track.h"
#include "dump.h"
#include "mm.h"
#include "precopy.h"

#ifndef CAPCR_VERSION
#define CAPCR_VERSION "0.1.0"
#endif

#define MAX_PROCS 4096

struct predump {
	struct image img;
	struct arena arena;
	struct page_parent *parent;
	struct track_set track; /* what the holder will keep */
	int32_t *pids;          /* pre-dumped, the root first */
	size_t npids;
	uint64_t written, unchanged;
};

/* The private areas of the process, each registered, scanned (and
 * write-protected again) and saved.  0, or -1 with c->why. */
static int save_areas(struct dump_ctx *c, int uffd,
		      const Capcr__Mm *pmm, struct page_xfer *x)
{
	char path[64], line[4200];
	struct smaps_vma v;
	int pmfd, r = 0;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", c->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/maps", c->pid);
	maps = fopen(path, "re");
	if (pmfd < 0 || !maps) {
		r = DUMP_FAIL(c, "cannot read the memory map of process %d: %s",
			      c->pid, strerror(errno));
		goto out;
	}
	while (!r && fgets(line, sizeof(line), maps)) {
		struct page_region *runs = NULL;
		size_t n = 0;
		if (!mm_parse_head(line, &v))
			continue;
		Capcr__VmaKind kind = mm_vma_kind(&v);
		if (kind != CAPCR__VMA_KIND__VMA_ANON_PRIVATE &&
		    kind != CAPCR__VMA_KIND__VMA_FILE_PRIVATE)
			continue;
		Capcr__Vma *vma = mm_new_vma(c, &v);
		arena_push(c->arena, (void ***)&c->mm->vmas, &c->mm->n_vmas,
			   vma);
		/* Not trackable (another userfaultfd, or gone meanwhile): no
		 * pages here, the next dump copies them. */
		if (track_register(uffd, v.start, v.end) < 0)
			continue;
		struct mm_from from = {
			NULL, pmm ? page_parent_area(pmm, vma) : NULL, 1
		};
		if (mm_scan(c, pmfd, kind, v.start, v.end,
			    MM_SCAN_PROTECT | MM_SCAN_WRITTEN, &runs, &n) < 0) {
			c->why[0] = 0;
			continue;
		}
		r = mm_save_runs(c, x, &from, vma, runs, n);
		free(runs);
	}
	if (!r && ferror(maps))
		r = DUMP_FAIL(c, "cannot read the memory map of process %d: %s",
			      c->pid, strerror(errno));
out:
	if (maps)
		fclose(maps);
	if (pmfd >= 0)
		close(pmfd);
	return r;
}

/* One process: 1 pre-dumped, 0 left out (said why), -1 failed (why). */
static int predump_one(struct predump *d, pid_t pid, char *why, size_t wl)
{
	struct dump_ctx c;
	struct page_xfer *x = NULL;
	char path[64], name[64];
	int uffd, r, pmuffd;
	const Capcr__Mm *pmm = page_parent_mm(d->parent, pid, &pmuffd);

	memset(&c, 0, sizeof(c));
	c.pid = pid;
	c.img = &d->img;
	c.arena = &d->arena;
	c.memfd = -1;
	/* The tracking the previous pre-dump left, or a new one (everything
	 * reads as written then, and is copied). */
	uffd = page_parent_take_uffd(d->parent, pid);
	if (uffd < 0) {
		pmm = NULL;
		if (precopy_filtered(pid)) {
			capcr_warn("process %d left out of the pre-dump: a "
				   "seccomp filter (an injected call might "
				   "kill it); the dump copies its memory",
				   pid);
			return 0;
		}
		if ((r = track_arm(pid, &uffd)) < 0) {
			capcr_warn("process %d left out of the pre-dump: no "
				   "write tracking (%s); the dump copies its "
				   "memory", pid, strerror(-r));
			return 0;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	c.memfd = open(path, O_RDONLY | O_CLOEXEC);
	c.mm = ARENA_NEW(&d->arena, Capcr__Mm);
	capcr__mm__init(c.mm);
	if (c.memfd < 0) {
		r = DUMP_FAIL(&c, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (!(x = page_xfer_local(&d->img, pid, &r))) {
		r = DUMP_FAIL(&c, "cannot create pages-%d.img: %s", pid,
			      strerror(-r));
		goto out;
	}
	r = save_areas(&c, uffd, pmm, x);
	int w = page_xfer_finish(x);
	if (!r && w < 0)
		r = DUMP_FAIL(&c, "cannot write pages-%d.img: %s%s", pid,
			      strerror(-w),
			      w == -ENOSPC ? " (the disk is full)" : "");
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	if (!r && (w = image_write_msg(&d->img, name, &c.mm->base)) < 0)
		r = DUMP_FAIL(&c, "cannot write %s: %s", name, strerror(-w));
	if (!r && (w = track_add(&d->track, pid, uffd)) < 0)
		r = DUMP_FAIL(&c, "cannot follow process %d: %s", pid,
			      strerror(-w));
	if (!r) {
		uffd = -1; /* the set's */
		d->pids[d->npids++] = pid;
		d->written += c.pages_bytes;
		d->unchanged += c.parent_bytes;
	}
out:
	if (uffd >= 0)
		close(uffd);
	if (c.memfd >= 0)
		close(c.memfd);
	if (r < 0)
		snprintf(why, wl, "%s", c.why);
	return r < 0 ? -1 : 1;
}

static int commit(struct predump *d, pid_t root, const char *track)
{
	Capcr__Inventory inv;
	struct utsname u;
	struct timespec ts;

	capcr__inventory__init(&inv);
	inv.format_version = CAPCR_IMAGE_FORMAT;
	inv.capcr_version = CAPCR_VERSION;
	inv.arch = "x86_64";
	inv.root_pid = root;
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.created_unix_ns =
		(uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
	if (uname(&u) == 0)
		inv.kernel = u.release;
	inv.n_pids = d->npids;
	inv.pids = d->pids;
	inv.has_predump = inv.predump = 1;
	inv.track_socket = (char *)track;
	if (d->parent) {
		inv.parent = d->parent->name;
		inv.has_parent_inventory_xxh3 = 1;
		inv.parent_inventory_xxh3 = d->parent->lv.img.inv_xxh3;
	}
	return image_commit(&d->img, &inv);
}

static void usage_predump(FILE *out)
{
	fprintf(out,
		"usage: capcr pre-dump -t PID -D DIR [--prev-images-dir DIR0]\n"
		"  Copy the memory of process PID and its descendants into\n"
		"  image directory DIR while they run, and keep tracking their\n"
		"  writes: a later `capcr dump --prev-images-dir DIR` (or\n"
		"  pre-dump) then writes only the pages written since.  DIR\n"
		"  holds memory only and is not restored alone.\n"
		"  -t, --tree PID           the root of the tree\n"
		"  -D, --images-dir DIR     where the image goes\n"
		"      --prev-images-dir DIR0\n"
		"                           the pre-dump before this one\n"
		"                           (relative to -D): only what was\n"
		"                           written since it is copied\n"
		"      --track-mem          accepted, as CRIU's: a pre-dump\n"
		"                           always tracks\n"
		"      --" IMAGE_UNTRUSTED_OPT "\n"
		"                           write into DIR even if another\n"
		"                           user owns it or may write it\n");
}

int cmd_predump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "prev-images-dir", required_argument, NULL, 'p' },
		{ "track-mem", no_argument, NULL, 'k' },
		{ IMAGE_UNTRUSTED_OPT, no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct predump d;
	const char *dir = NULL, *prev = NULL;
	char why[1100], track[64];
	pid_t pids[MAX_PROCS], holder = -1;
	long root = 0;
	int c, r, ok = 0;
	size_t n;
	struct timespec t0, t1;

	tracer_init();
	memset(&d, 0, sizeof(d));
	d.img.dirfd = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			root = strtol(optarg, NULL, 10);
			break;
		case 'D':
			dir = optarg;
			break;
		case 'p':
			prev = optarg;
			break;
		case 'k':
			break; /* see usage */
		case 'U':
			image_allow_untrusted(1);
			break;
		case 'h':
			usage_predump(stdout);
			return 0;
		default:
			usage_predump(stderr);
			return 2;
		}
	}
	if (root <= 0 || !dir || optind != argc) {
		usage_predump(stderr);
		return 2;
	}
	char st = proc_state((pid_t)root, NULL);
	if (!st || st == 'Z' || st == 'X' || root == getpid()) {
		capcr_err("no process %ld to pre-dump", root);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = image_create(&d.img, dir)) < 0) {
		capcr_err("%s", d.img.why[0] ? d.img.why : strerror(-r));
		return 1;
	}
	d.img.format = CAPCR_IMAGE_FORMAT;
	if (prev && !(d.parent = page_parent_open(dir, prev, why,
						  sizeof(why))))
		capcr_warn("%s: a full pre-dump instead", why);
	if (track_new_name(track, sizeof(track)) < 0) {
		snprintf(why, sizeof(why), "no random name for the holder");
		goto fail;
	}
	n = precopy_tree((pid_t)root, pids, MAX_PROCS);
	d.pids = calloc(n, sizeof(*d.pids));
	if (!d.pids) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		r = predump_one(&d, pids[i], why, sizeof(why));
		if (r < 0 || (!r && !i)) {
			if (!r)
				snprintf(why, sizeof(why), "the root process "
					 "%ld cannot be tracked", root);
			goto fail;
		}
	}
	/* The holder first, so that the name the inventory gives is served
	 * once the image is there. */
	holder = track_hold(&d.track, track, (pid_t)root);
	if (holder < 0) {
		snprintf(why, sizeof(why), "cannot leave the write tracking "
			 "armed: %s", strerror(-holder));
		goto fail;
	}
	if ((r = commit(&d, (pid_t)root, track)) < 0) {
		snprintf(why, sizeof(why), "cannot write the inventory: %s",
			 strerror(-r));
		kill(holder, SIGKILL);
		goto fail;
	}
	ok = 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	capcr_info("pre-dumped %zu process%s from %ld: %.1f MiB written, "
		   "%.1f MiB unchanged since %s; %.1f ms; write tracking "
		   "held by process %d",
		   d.npids, d.npids == 1 ? "" : "es", root,
		   d.written / 1048576.0, d.unchanged / 1048576.0,
		   d.parent ? d.parent->name : "(no previous image)",
		   (t1.tv_sec - t0.tv_sec) * 1e3 +
			   (t1.tv_nsec - t0.tv_nsec) / 1e6,
		   holder);
	goto out;
fail:
	capcr_err("pre-dump of %ld into %s failed: %s", root, dir,
		  d.img.why[0] ? d.img.why : why);
	for (size_t i = 0; i < d.img.nfiles; i++)
		unlinkat(d.img.dirfd, d.img.files[i]->name, 0);
out:
	/* Ours close; the holder's copies keep the tracking. */
	track_set_free(&d.track);
	page_parent_close(d.parent);
	free(d.pids);
	image_close(&d.img);
	arena_free(&d.arena);
	return ok ? 0 : 1;
}
