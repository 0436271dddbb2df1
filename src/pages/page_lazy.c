/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "page_lazy.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PAGE 4096ULL

long page_lazy_find(const struct page_read *pr, uint64_t addr)
{
	size_t lo = page_read_first_after(pr, addr);

	return lo < pr->nsegs && pr->segs[lo].vaddr <= addr ? (long)lo : -1;
}

/* UFFDIO_COPY (src) or UFFDIO_ZEROPAGE (src NULL) of [dst, dst + len). */
static int put(int uffd, uint64_t dst, const char *src, uint64_t len,
	       uint64_t *copied)
{
	while (len) {
		long long n;
		int r;
		if (src) {
			struct uffdio_copy c = { .dst = dst,
						 .src = (uintptr_t)src,
						 .len = len };
			r = ioctl(uffd, UFFDIO_COPY, &c);
			n = c.copy;
		} else {
			struct uffdio_zeropage z = { .range = { dst, len } };
			r = ioctl(uffd, UFFDIO_ZEROPAGE, &z);
			n = z.zeropage;
		}
		if (r == 0)
			n = (long long)len;
		if (n > 0) {
			dst += (uint64_t)n;
			src = src ? src + n : NULL;
			len -= (uint64_t)n;
			if (copied)
				*copied += (uint64_t)n;
			continue;
		}
		int e = n < 0 ? (int)-n : errno;
		if (e == EEXIST) {
			/* The process touched it first, or we did: one page
			 * further. */
			dst += PAGE;
			src = src ? src + PAGE : NULL;
			len -= PAGE;
			continue;
		}
		if (e == ENOENT)
			return 0; /* not registered any more: unmapped */
		return -e;
	}
	return 0;
}

/* pread until len bytes are in, or -errno (-EIO: the file is short). */
static int read_full(int fd, char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int page_lazy_copy(int uffd, const struct page_read *pr, uint64_t start,
		   uint64_t end, int64_t delta, int zero_holes, void *buf,
		   size_t buflen, uint64_t *copied)
{
	uint64_t a = start;
	size_t lo = 0, hi = pr->nsegs;
	int r;

	/* the first run ending after start */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pr->segs[mid].vaddr + pr->segs[mid].len <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (a < end) {
		const struct page_seg *s = lo < pr->nsegs ? &pr->segs[lo] : NULL;
		if (!s || s->vaddr > a) {
			uint64_t e = s && s->vaddr < end ? s->vaddr : end;
			if (zero_holes &&
			    (r = put(uffd, a + (uint64_t)delta, NULL, e - a,
				     copied)) < 0)
				return r;
			a = e;
			continue;
		}
		uint64_t e = s->vaddr + s->len < end ? s->vaddr + s->len : end;
		while (a < e) {
			uint64_t n = e - a < buflen ? e - a : buflen;
			if ((r = read_full(pr->fd[s->level], buf, n,
					   s->off + (a - s->vaddr))) < 0 ||
			    (r = put(uffd, a + (uint64_t)delta, buf, n,
				     copied)) < 0)
				return r;
			a += n;
		}
		lo++;
	}
	return 0;
}
