/* SPDX-License-Identifier: MIT */
/*
 * Pseudo-terminal pairs inside the image (what CRIU's tty.c does for
 * ptys): a process of the tree holds a pty master (/dev/ptmx) and it or
 * another holds the slave (/dev/pts/N) — a terminal multiplexer, script,
 * an expect-like program, a shell under any of them.
 *
 * Dump: the master's File carries the pair's state once (Pty): the index,
 * struct termios2, window size, packet, locked and exclusive modes, the
 * data queued both ways, and the session it is the controlling terminal
 * of with its foreground group.  Each slave description gets a File with
 * the index alone, naming the master of that index.  A slave whose master
 * no process of the image holds is a terminal outside (external.c); a
 * master whose slave nobody holds is saved alone.
 *
 * The queues cannot be read without taking the data (a tty has no peek):
 * capcr reads them from the frozen tree and writes them straight back,
 * the input through the master with echo, signals and input translation
 * off, the output through a slave of its own with output processing off,
 * each time with the terminal's own settings put back after.  A process
 * of the image never runs meanwhile; what it would read is where it was.
 *
 * Restore: the pair is made by whichever of its Files comes first, in
 * capcr restore before any process: /dev/ptmx opened (again and again,
 * holding the numbers it gets, until it gets the same index, while that
 * index is free and within 64 tries: `ttyname` a program cached stays
 * right; otherwise any index), unlocked, the slave opened through the
 * master (TIOCGPTPEER, so no path is looked up).  The master's File sets
 * the state and refills both queues the same way the dump wrote them
 * back.  The controlling terminal is taken back in the new session
 * leader (pty_prelude, from child.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <asm/termbits.h>

#include "../common/log.h"

#include "files.h"

_Static_assert(sizeof(struct termios2) == 44, "struct termios2 is 44 bytes "
					       "(validate.c)");

#define PTMX_MAJOR 5
#define PTMX_MINOR 2
/* UNIX98_PTY_SLAVE_MAJOR .. + UNIX98_PTY_MAJOR_COUNT - 1 */
#define PTS_MAJOR_FIRST 136
#define PTS_MAJOR_LAST 143
/* Each queue: far above the kernel's (4 KiB line discipline buffer plus
 * 64 KiB waiting in the flip buffers); the validator takes as much. */
#define PTY_QUEUE_MAX (1u << 20)
/* Opens of /dev/ptmx to reach the same index at restore. */
#define PTY_SAME_INDEX_TRIES 64

int pty_is_slave(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) >= PTS_MAJOR_FIRST &&
	       major(st->st_rdev) <= PTS_MAJOR_LAST;
}

static int is_master(const struct stat *st)
{
	return S_ISCHR(st->st_mode) &&
	       st->st_rdev == makedev(PTMX_MAJOR, PTMX_MINOR);
}

/* The slave of master copy, opened by capcr (never its controlling
 * terminal), or -1.  A locked pty is unlocked for the open and locked
 * again. */
static int open_peer(int master, int flags)
{
	int lk = 0, zero = 0, one = 1;
	int locked = ioctl(master, TIOCGPTLCK, &lk) == 0 && lk;

	if (locked)
		ioctl(master, TIOCSPTLCK, &zero);
	int fd = ioctl(master, TIOCGPTPEER, flags | O_NOCTTY | O_CLOEXEC);
	int e = errno;
	if (locked)
		ioctl(master, TIOCSPTLCK, &one);
	errno = e;
	return fd;
}

int pty_pair(const struct stat *mst, int copy, const struct stat *st)
{
	struct stat ps;
	int r = 0;

	if (copy < 0 || !is_master(mst))
		return 0;
	int p = open_peer(copy, O_PATH);
	if (p >= 0 && fstat(p, &ps) == 0)
		r = ps.st_dev == st->st_dev && ps.st_rdev == st->st_rdev;
	if (p >= 0)
		close(p);
	return r;
}

static int match(const struct file_dump_in *in)
{
	return is_master(&in->st) ||
	       (pty_is_slave(&in->st) && in->pty_master_here);
}

static int index_of_slave(const struct stat *st)
{
	return (int)((major(st->st_rdev) - PTS_MAJOR_FIRST) * 256 +
		     minor(st->st_rdev));
}

/* Wait (at most ms) until fd has want bytes to read (FIONREAD). */
static int wait_inq(int fd, int want, int ms)
{
	int n = -1;

	for (int i = 0; i <= ms; i++) {
		if (ioctl(fd, FIONREAD, &n) == 0 && n >= want)
			return 0;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -1;
}

/*
 * Put input data back into the terminal, as if typed, but with nothing
 * the line discipline would make of it again: no echo, no signals, no
 * translation, no erase or kill (a line already edited); canonical mode
 * kept as it is, so the lines stay lines ('\n' and VEOL end them).  The
 * line discipline takes it in a worker of its own: wait for it before the
 * settings go back (slave: capcr's own slave, to count with).
 */
static int put_input(int master, int slave, const struct termios2 *tio,
		     const char *data, size_t len, char *why, size_t wl)
{
	struct termios2 neutral = *tio;
	int before = 0;

	if (!len)
		return 0;
	neutral.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL |
				       ECHOPRT | ECHOKE | ISIG | IEXTEN);
	/* IXON stays: a change of flow control would be news to a master in
	 * packet mode (TIOCPKT_DOSTOP); a queue taken with it on holds no
	 * start or stop character anyway */
	neutral.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | ISTRIP | IUCLC |
				       INPCK | PARMRK | BRKINT);
	neutral.c_cc[VERASE] = neutral.c_cc[VKILL] = neutral.c_cc[VEOF] = 0;
	neutral.c_cc[VWERASE] = neutral.c_cc[VREPRINT] = 0;
	neutral.c_cc[VLNEXT] = 0;
	ioctl(slave, FIONREAD, &before);
	if (ioctl(slave, TCSETS2, &neutral) < 0)
		return files_fail(why, wl, "cannot set the terminal's settings "
					   "to put its input back: %s",
				  strerror(errno));
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(master, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			ioctl(slave, TCSETS2, tio);
			return files_fail(why, wl, "cannot put %zu bytes of "
						   "input back: %s",
					  len, strerror(e));
		}
		off += (size_t)w;
	}
	int r = wait_inq(slave, before + (int)len, 2000);
	if (ioctl(slave, TCSETS2, tio) < 0)
		return files_fail(why, wl, "cannot give the terminal its "
					   "settings back: %s",
				  strerror(errno));
	if (r < 0)
		capcr_warn("pty: the terminal took its %zu bytes of input back "
			   "late; the settings may have applied to some",
			   len);
	return 0;
}

/* Put output data back for the master to read: written by a slave with
 * output processing off (it was processed when first written). */
static int put_output(int slave, const struct termios2 *tio, const char *data,
		      size_t len, char *why, size_t wl)
{
	struct termios2 plain = *tio;

	if (!len)
		return 0;
	plain.c_oflag &= ~(tcflag_t)OPOST;
	if (ioctl(slave, TCSETS2, &plain) < 0)
		return files_fail(why, wl, "cannot set the terminal's settings "
					   "to put its output back: %s",
				  strerror(errno));
	size_t off = 0;
	int r = 0;
	while (off < len) {
		ssize_t w = write(slave, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { slave, POLLOUT, 0 };
			if (poll(&p, 1, 2000) > 0)
				continue;
		}
		if (w <= 0) {
			r = files_fail(why, wl, "cannot put %zu bytes of output "
						"back: %s",
				       len, strerror(errno));
			break;
		}
		off += (size_t)w;
	}
	if (ioctl(slave, TCSETS2, tio) < 0 && !r)
		r = files_fail(why, wl, "cannot give the terminal its settings "
					"back: %s",
			       strerror(errno));
	return r;
}

/* Take what fd has to read, without blocking on it (FIONREAD, poll: the
 * description's flags are the process's); packet mode's leading byte of
 * each read dropped.  Grows *buf; -1 with why. */
static int drain(int fd, int packet, char **buf, size_t *len, char *why,
		 size_t wl)
{
	char tmp[4096];

	for (int quiet = 0; quiet < 2;) {
		int n = 0;
		struct pollfd p = { fd, POLLIN, 0 };
		if (ioctl(fd, FIONREAD, &n) < 0 || n <= 0 ||
		    poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) {
			/* the flip buffers may still hand the line discipline
			 * more, once there is room */
			if (*len < 2048)
				break;
			quiet++;
			struct timespec ts = { 0, 5000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		quiet = 0;
		ssize_t r = read(fd, tmp, sizeof(tmp));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		size_t off = packet ? 1 : 0;
		if ((size_t)r <= off)
			continue;
		if (*len + (size_t)r > PTY_QUEUE_MAX)
			return files_fail(why, wl, "more than %u bytes queued",
					  PTY_QUEUE_MAX);
		char *nb = realloc(*buf, *len + (size_t)r);
		if (!nb)
			return files_fail(why, wl, "out of memory");
		*buf = nb;
		memcpy(*buf + *len, tmp + off, (size_t)r - off);
		*len += (size_t)r - off;
	}
	return 0;
}

static int dump_master(struct file_dump_env *env, const struct file_dump_in *in,
		       Capcr__File *f)
{
	unsigned idx = 0;
	int v = 0, r = 0;
	struct termios2 tio;
	struct winsize ws;
	Capcr__Pty *p = ARENA_NEW(env->arena, Capcr__Pty);
	char *in_q = NULL, *out_q = NULL;
	size_t in_len = 0, out_len = 0;

	capcr__pty__init(p);
	if (ioctl(in->copy, TIOCGPTN, &idx) < 0)
		return FILE_FAIL(env, "descriptor %d of process %d: cannot read "
				      "the pty master's number: %s",
				 in->fd, in->pid, strerror(errno));
	for (size_t i = 0; i < env->files->n_files; i++) {
		const Capcr__File *o = env->files->files[i];
		if (o->kind == CAPCR__FILE_KIND__FILE_PTY_MASTER && o->pty &&
		    o->pty->index == idx)
			return FILE_FAIL(env, "descriptor %d of process %d: a "
					      "second pty master numbered %u "
					      "(ptys of two devpts instances)",
					 in->fd, in->pid, idx);
	}
	p->index = idx;
	f->pty = p;
	f->path = arena_strdup(env->arena, "/dev/ptmx");
	/* capcr's own slave: the settings, the input queue */
	int s = open_peer(in->copy, O_RDWR | O_NONBLOCK);
	if (s < 0)
		return FILE_FAIL(env, "descriptor %d of process %d: cannot open "
				      "the slave of pty %u: %s",
				 in->fd, in->pid, idx, strerror(errno));
	if (ioctl(s, TCGETS2, &tio) < 0 || ioctl(s, TIOCGWINSZ, &ws) < 0) {
		r = FILE_FAIL(env, "pty %u: cannot read its settings: %s", idx,
			      strerror(errno));
		goto out;
	}
	p->termios.data = arena_memdup(env->arena, &tio, sizeof(tio));
	p->termios.len = sizeof(tio);
	p->has_termios = 1;
	p->has_rows = p->has_cols = p->has_xpixel = p->has_ypixel = 1;
	p->rows = ws.ws_row;
	p->cols = ws.ws_col;
	p->xpixel = ws.ws_xpixel;
	p->ypixel = ws.ws_ypixel;
	if (ioctl(in->copy, TIOCGPKT, &v) == 0 && v)
		p->has_packet = p->packet = 1;
	if (ioctl(in->copy, TIOCGPTLCK, &v) == 0 && v)
		p->has_locked = p->locked = 1;
	if (ioctl(s, TIOCGEXCL, &v) == 0 && v)
		p->has_exclusive = p->exclusive = 1;
	pid_t sid = 0, pg = 0;
	if (ioctl(in->copy, TIOCGSID, &sid) == 0 && sid > 0) {
		p->has_sid = 1;
		p->sid = sid;
		if (ioctl(in->copy, TIOCGPGRP, &pg) == 0 && pg > 0) {
			p->has_fg_pgrp = 1;
			p->fg_pgrp = pg;
		}
	}
	/* Both queues taken and written straight back (see the top). */
	if (drain(s, 0, &in_q, &in_len, env->why, env->whylen) < 0 ||
	    drain(in->copy, p->packet, &out_q, &out_len, env->why,
		  env->whylen) < 0) {
		r = -1;
		/* what was taken goes back all the same */
	}
	if (put_input(in->copy, s, &tio, in_q, in_len, env->why,
		      env->whylen) < 0 ||
	    put_output(s, &tio, out_q, out_len, env->why, env->whylen) < 0)
		r = -1;
	if (r < 0) {
		FILE_FAIL(env, "pty %u: its queues", idx);
		goto out;
	}
	if (in_len || out_len) {
		char name[64];
		struct image_data d;
		snprintf(name, sizeof(name), "pty-%u.img", idx);
		int e = image_data_open(env->img, &d, name);
		if (e < 0) {
			r = FILE_FAIL(env, "cannot create %s: %s", name,
				      strerror(-e));
			goto out;
		}
		if ((in_len && (e = image_data_write(&d, in_q, in_len)) < 0) ||
		    (out_len && (e = image_data_write(&d, out_q, out_len)) < 0))
			r = FILE_FAIL(env, "cannot write %s: %s", name,
				      strerror(-e));
		if (image_data_close(env->img, &d) < 0 && !r)
			r = FILE_FAIL(env, "cannot sync %s", name);
		p->queue_file = arena_strdup(env->arena, name);
		p->has_in_len = p->has_out_len = 1;
		p->in_len = (uint32_t)in_len;
		p->out_len = (uint32_t)out_len;
	}
out:
	free(in_q);
	free(out_q);
	close(s);
	return r;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	char path[64];

	if (is_master(&in->st)) {
		f->kind = CAPCR__FILE_KIND__FILE_PTY_MASTER;
		return dump_master(env, in, f);
	}
	f->kind = CAPCR__FILE_KIND__FILE_PTY_SLAVE;
	f->pty = ARENA_NEW(env->arena, Capcr__Pty);
	capcr__pty__init(f->pty);
	f->pty->index = (uint32_t)index_of_slave(&in->st);
	snprintf(path, sizeof(path), "/dev/pts/%u", f->pty->index);
	f->path = arena_strdup(env->arena, path);
	return 0;
}

/* ---- restore ---- */

struct pty_slot {
	uint32_t index;   /* at the dump */
	int master;       /* not yet claimed by the master's File, or -1 */
	int keep;         /* to open slaves from */
	unsigned now;     /* the index it has now */
	int locked;       /* lock again after each slave opened */
};

/* /dev/ptmx, at index want if it is free and within reach. */
static int open_ptmx(uint32_t want, unsigned *got, char *why, size_t wl)
{
	int held[PTY_SAME_INDEX_TRIES], nheld = 0, fd = -1;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/pts/%u", want);
	int free_here = stat(path, &st) < 0 && errno == ENOENT;
	for (;;) {
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TIOCGPTN, got) < 0) {
			files_fail(why, wl, "cannot open /dev/ptmx: %s",
				   strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
			break;
		}
		/* the kernel hands out the lowest free number */
		if (!free_here || *got >= want || nheld == PTY_SAME_INDEX_TRIES)
			break;
		held[nheld++] = fd;
	}
	while (nheld)
		close(held[--nheld]);
	if (fd >= 0 && *got != want)
		capcr_info("pty %u comes back as /dev/pts/%u", want, *got);
	return fd;
}

static struct pty_slot *slot_for(struct file_restore_env *env, uint32_t index)
{
	for (unsigned i = 0; i < env->nptys; i++)
		if (env->ptys[i].index == index)
			return &env->ptys[i];
	if (env->nptys == env->ptys_cap) {
		unsigned cap = env->ptys_cap ? 2 * env->ptys_cap : 8;
		void *n = realloc(env->ptys, cap * sizeof(*env->ptys));
		if (!n)
			return FILE_FAIL(env, "out of memory for pty %u", index),
			       NULL;
		env->ptys = n;
		env->ptys_cap = cap;
	}
	struct pty_slot *s = &env->ptys[env->nptys];
	int zero = 0;
	*s = (struct pty_slot){ .index = index, .master = -1, .keep = -1 };
	s->master = open_ptmx(index, &s->now, env->why, env->whylen);
	if (s->master < 0)
		return NULL;
	if (ioctl(s->master, TIOCSPTLCK, &zero) < 0 ||
	    (s->keep = fcntl(s->master, F_DUPFD_CLOEXEC, 0)) < 0) {
		FILE_FAIL(env, "cannot unlock pty %u (/dev/pts/%u): %s", index,
			  s->now, strerror(errno));
		close(s->master);
		return NULL;
	}
	env->nptys++;
	return s;
}

static int restore_master(struct file_restore_env *env, const Capcr__File *f,
			  struct pty_slot *sl)
{
	const Capcr__Pty *p = f->pty;
	struct termios2 tio;
	struct winsize ws = { (unsigned short)p->rows, (unsigned short)p->cols,
			      (unsigned short)p->xpixel,
			      (unsigned short)p->ypixel };
	int one = 1, m = sl->master, r = 0;
	char *q = NULL;

	if (m < 0)
		return FILE_FAIL(env, "pty %u has two masters", p->index);
	sl->master = -1;
	memcpy(&tio, p->termios.data, sizeof(tio));
	int s = open_peer(m, O_RDWR | O_NONBLOCK);
	if (s < 0) {
		close(m);
		return FILE_FAIL(env, "cannot open the slave of pty %u "
				      "(/dev/pts/%u): %s",
				 p->index, sl->now, strerror(errno));
	}
	if (ioctl(s, TCSETS2, &tio) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0) {
		r = FILE_FAIL(env, "pty %u: cannot give it its settings back: "
				   "%s",
			      p->index, strerror(errno));
		goto out;
	}
	size_t qlen = (size_t)p->in_len + p->out_len;
	if (qlen) {
		int src = image_open_data(env->img, p->queue_file);
		q = malloc(qlen);
		if (src < 0 || !q) {
			r = FILE_FAIL(env, "pty %u: %s", p->index,
				      src < 0 ? image_error() : "out of memory");
			if (src >= 0)
				close(src);
			goto out;
		}
		size_t got = 0;
		while (got < qlen) {
			ssize_t n = read(src, q + got, qlen - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(src);
		if (got != qlen) {
			r = FILE_FAIL(env, "pty %u: %s is short", p->index,
				      p->queue_file);
			goto out;
		}
		if (put_input(m, s, &tio, q, p->in_len, env->why,
			      env->whylen) < 0 ||
		    put_output(s, &tio, q + p->in_len, p->out_len, env->why,
			       env->whylen) < 0) {
			r = -1;
			goto out;
		}
	}
	if ((p->packet && ioctl(m, TIOCPKT, &one) < 0) ||
	    (p->exclusive && ioctl(s, TIOCEXCL) < 0) ||
	    (p->locked && ioctl(m, TIOCSPTLCK, &one) < 0))
		r = FILE_FAIL(env, "pty %u: cannot set its modes: %s",
			      p->index, strerror(errno));
	sl->locked = p->locked;
out:
	free(q);
	close(s);
	if (r < 0) {
		close(m);
		return -1;
	}
	return m;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	struct pty_slot *sl = slot_for(env, f->pty->index);

	if (!sl)
		return -1;
	if (f->kind == CAPCR__FILE_KIND__FILE_PTY_MASTER)
		return restore_master(env, f, sl);
	int fd = open_peer(sl->keep, (int)(f->flags & O_ACCMODE));
	if (fd < 0)
		return FILE_FAIL(env, "cannot open the slave of pty %u "
				      "(/dev/pts/%u): %s",
				 f->pty->index, sl->now, strerror(errno));
	return fd;
}

void pty_restore_end(struct file_restore_env *env)
{
	for (unsigned i = 0; i < env->nptys; i++) {
		if (env->ptys[i].master >= 0)
			close(env->ptys[i].master);
		if (env->ptys[i].keep >= 0)
			close(env->ptys[i].keep);
	}
	free(env->ptys);
	env->ptys = NULL;
	env->nptys = env->ptys_cap = 0;
}

int pty_prelude(const Capcr__Files *files, const int *file_fd, pid_t pid,
		char *why, size_t wl)
{
	for (size_t i = 0; i < files->n_files; i++) {
		const Capcr__File *f = files->files[i];
		const Capcr__Pty *p = f->pty;
		if (f->kind != CAPCR__FILE_KIND__FILE_PTY_MASTER || !p ||
		    file_fd[i] < 0)
			continue;
		if (p->has_sid && p->sid == pid && getsid(0) == pid) {
			int s = open_peer(file_fd[i], O_RDWR);
			if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0) {
				int e = errno;
				if (s >= 0)
					close(s);
				return files_fail(why, wl,
						  "cannot take pty %u back as "
						  "the controlling terminal of "
						  "session %d: %s",
						  p->index, pid, strerror(e));
			}
			close(s);
		}
		/* The leader of the foreground group, in it now, with the
		 * terminal its session leader took: a background group
		 * until then, so SIGTTOU is held off for the call. */
		if (p->has_sid && p->has_fg_pgrp && p->fg_pgrp == pid &&
		    p->fg_pgrp != p->sid && getpgrp() == pid &&
		    getsid(0) == p->sid) {
			sigset_t tt, old;
			pid_t pg = pid;
			sigemptyset(&tt);
			sigaddset(&tt, SIGTTOU);
			sigprocmask(SIG_BLOCK, &tt, &old);
			int r = ioctl(file_fd[i], TIOCSPGRP, &pg);
			int e = errno;
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (r < 0)
				return files_fail(why, wl,
						  "cannot make group %d the "
						  "foreground of pty %u: %s",
						  pid, p->index, strerror(e));
		}
	}
	return 0;
}

const struct file_ops file_pty = {
	.kind = CAPCR__FILE_KIND__FILE_PTY_MASTER,
	.name = "pty",
	.match = match,
	.dump = dump,
	.restore = restore,
};
