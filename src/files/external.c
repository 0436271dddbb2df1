/* SPDX-License-Identifier: MIT */
/*
 * Descriptors that point outside the image: a terminal, or a pipe whose
 * other end is not being checkpointed (a shell's pipeline).  They are
 * not re-created: at restore the descriptor is re-attached to the same
 * number of `capcr restore` itself, so a process restored in a shell reads
 * and writes that shell's terminal or pipes, as CRIU's --shell-job does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../common/log.h"

#include "files.h"

static int is_tty(const struct file_dump_in *in)
{
	const char *t = in->k->target;
	return S_ISCHR(in->st.st_mode) &&
	       (!strncmp(t, "/dev/pts/", 9) || !strncmp(t, "/dev/tty", 8) ||
		!strcmp(t, "/dev/console") || !strcmp(t, "/dev/ptmx"));
}

static int match(const struct file_dump_in *in)
{
	if (is_tty(in))
		return 1;
	if (S_ISFIFO(in->st.st_mode) && !strncmp(in->k->target, "pipe:", 5))
		return in->held_outside;
	return 0;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	struct termios tio;
	struct winsize ws;

	f->has_external_fd = 1;
	f->external_fd = in->fd;
	f->path = arena_strdup(env->arena, in->k->target);
	/* A terminal's settings belong to the program that set them (raw
	 * mode of an editor, no echo of a password prompt): the shell that
	 * gets the terminal back after the dump resets them. */
	if (is_tty(in) && tcgetattr(in->copy, &tio) == 0) {
		Capcr__Tty *t = arena_alloc(env->arena, sizeof(*t));
		void *raw = arena_alloc(env->arena, sizeof(tio));
		if (!t || !raw)
			return FILE_FAIL(env, "out of memory");
		capcr__tty__init(t);
		memcpy(raw, &tio, sizeof(tio));
		t->termios.data = raw;
		t->termios.len = sizeof(tio);
		if (ioctl(in->copy, TIOCGWINSZ, &ws) == 0) {
			t->has_rows = t->has_cols = 1;
			t->rows = ws.ws_row;
			t->cols = ws.ws_col;
		}
		f->tty = t;
	}
	return 0;
}

/* The terminal capcr restore runs in gets the settings its program left
 * it in.  A program that had it in non-canonical mode (an editor, a pager,
 * a line editor) draws the screen itself: it hears SIGWINCH, so it
 * redraws over what the shell printed meanwhile, at the size it has now. */
static int release(const Capcr__File *f)
{
	struct termios tio;

	if (!f->tty || f->tty->termios.len != sizeof(tio) ||
	    !f->has_external_fd || !isatty(f->external_fd))
		return 0;
	memcpy(&tio, f->tty->termios.data, sizeof(tio));
	if (tcsetattr(f->external_fd, TCSANOW, &tio) < 0) {
		capcr_warn("cannot give terminal %s (descriptor %d) its settings "
			   "back: %s", f->path ? f->path : "?",
			   f->external_fd, strerror(errno));
		return 0;
	}
	return !(tio.c_lflag & ICANON);
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int n = f->external_fd;
	int fd = n >= 0 && n < env->ninherited && env->inherited[n]
			 ? fcntl(n, F_DUPFD_CLOEXEC, 0)
			 : -1;

	/* A terminal at a number capcr restore does not have (less and vim
	 * open /dev/tty themselves): the terminal capcr restore runs in. */
	if (fd < 0 && f->path &&
	    (!strcmp(f->path, "/dev/tty") || !strncmp(f->path, "/dev/pts/", 9))) {
		fd = open("/dev/tty", (int)(f->flags & O_ACCMODE) | O_NOCTTY |
					      O_CLOEXEC);
		if (fd < 0)
			return FILE_FAIL(env,
					 "descriptor %d was the terminal %s; "
					 "capcr restore has no terminal to give "
					 "it (/dev/tty: %s): run it in one",
					 f->external_fd, f->path,
					 strerror(errno));
	}
	if (fd < 0)
		return FILE_FAIL(env,
				 "descriptor %d pointed outside the image (%s); "
				 "capcr restore has no descriptor %d to "
				 "re-attach it to: run it with that descriptor "
				 "open",
				 f->external_fd, f->path ? f->path : "?",
				 f->external_fd);
	return fd;
}

const struct file_ops file_external = {
	.kind = CAPCR__FILE_KIND__FILE_EXTERNAL,
	.name = "external",
	.match = match,
	.dump = dump,
	.restore = restore,
	.release = release,
};
