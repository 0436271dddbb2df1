/* SPDX-License-Identifier: MIT */
/*
 * timerfd: its clock, its settime flags (TFD_TIMER_ABSTIME,
 * TFD_TIMER_CANCEL_ON_SET), the time left to the next expiry, the
 * interval, and the expirations not yet read (ticks).
 *
 * Dump asks timerfd_gettime on capcr's copy first: for a periodic timer
 * that has expired and not been read, that is what moves the kernel's
 * timer on and counts the periods missed meanwhile into ticks (what a read
 * would have counted), so that fdinfo's ticks and the time left are both
 * right; fdinfo alone says ticks 1 and time left 0 for such a timer.
 *
 * Restore: timerfd_create, timerfd_settime with the time that was left
 * (for an absolute timer, now on its clock plus the time that was left:
 * the time spent checkpointed does not count, for any timer), then the
 * pending ticks with TFD_IOC_SET_TICKS (which needs a kernel with
 * CONFIG_CHECKPOINT_RESTORE).  A disarmed timer stays disarmed.
 * TFD_NONBLOCK comes back through F_SETFL (the caller), TFD_CLOEXEC is
 * per descriptor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "files.h"

#ifndef TFD_IOC_SET_TICKS
#include <linux/types.h>
#define TFD_IOC_SET_TICKS _IOW('T', 0, __u64)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

#define NS 1000000000ULL

static int match(const struct file_dump_in *in)
{
	return !strcmp(in->k->target, "anon_inode:[timerfd]");
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * NS + (uint64_t)ts->tv_nsec;
}

static struct timespec ns_ts(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / NS), (long)(ns % NS) };
	return ts;
}

static int dump(struct file_dump_env *env, const struct file_dump_in *in,
		Capcr__File *f)
{
	struct itimerspec cur;
	uint64_t clockid, ticks, flags = 0;

	if (timerfd_gettime(in->copy, &cur) < 0)
		return FILE_FAIL(env, "timerfd descriptor %d of process %d: "
				      "timerfd_gettime: %s",
				 in->fd, in->pid, strerror(errno));
	if (files_fdinfo_u64(in->pid, in->fd, "clockid", 10, &clockid) < 0 ||
	    files_fdinfo_u64(in->pid, in->fd, "ticks", 10, &ticks) < 0)
		return FILE_FAIL(env, "cannot read the clock and ticks of "
				      "timerfd descriptor %d of process %d",
				 in->fd, in->pid);
	files_fdinfo_u64(in->pid, in->fd, "settime flags", 8, &flags);
	f->has_clockid = 1;
	f->clockid = (int32_t)clockid;
	f->has_timer_value_ns = 1;
	f->timer_value_ns = ts_ns(&cur.it_value);
	f->has_timer_interval_ns = 1;
	f->timer_interval_ns = ts_ns(&cur.it_interval);
	f->has_timer_ticks = 1;
	f->timer_ticks = ticks;
	f->has_timer_flags = 1;
	f->timer_flags = (int32_t)flags;
	return 0;
}

static int restore(struct file_restore_env *env, const Capcr__File *f)
{
	int fd = timerfd_create(f->clockid, TFD_CLOEXEC);
	int flags = f->timer_flags & (TFD_TIMER_ABSTIME |
				      TFD_TIMER_CANCEL_ON_SET);
	uint64_t value = f->timer_value_ns;

	if (fd < 0)
		return FILE_FAIL(env, "timerfd_create on clock %d: %s",
				 f->clockid, strerror(errno));
	/* Armed and due this very instant: the kernel showed 0 left. */
	if (!value && f->timer_interval_ns)
		value = 1;
	if (value || flags) {
		struct itimerspec its = { .it_interval =
						  ns_ts(f->timer_interval_ns) };
		if (value && (flags & TFD_TIMER_ABSTIME)) {
			struct timespec now;
			if (clock_gettime(f->clockid, &now) < 0) {
				close(fd);
				return FILE_FAIL(env, "clock_gettime on clock "
						      "%d: %s",
						 f->clockid, strerror(errno));
			}
			value += ts_ns(&now);
		}
		its.it_value = ns_ts(value);
		if (timerfd_settime(fd, flags, &its, NULL) < 0) {
			close(fd);
			return FILE_FAIL(env, "cannot arm a timerfd (clock %d, "
					      "flags %#o, %llu ns left, "
					      "interval %llu ns): %s",
					 f->clockid, flags,
					 (unsigned long long)f->timer_value_ns,
					 (unsigned long long)
						 f->timer_interval_ns,
					 strerror(errno));
		}
	}
	if (f->timer_ticks &&
	    ioctl(fd, TFD_IOC_SET_TICKS, &f->timer_ticks) < 0) {
		close(fd);
		return FILE_FAIL(env, "cannot give a timerfd its %llu pending "
				      "expirations (TFD_IOC_SET_TICKS needs "
				      "CONFIG_CHECKPOINT_RESTORE): %s",
				 (unsigned long long)f->timer_ticks,
				 strerror(errno));
	}
	return fd;
}

const struct file_ops file_timerfd = {
	.kind = CAPCR__FILE_KIND__FILE_TIMERFD,
	.name = "timerfd",
	.match = match,
	.dump = dump,
	.restore = restore,
};
