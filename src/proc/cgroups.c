/* SPDX-License-Identifier: MIT */
/*
 * Cgroups.  The dump records, per process, its line of /proc/PID/cgroup
 * for every hierarchy (id, controllers, path) and, for a cgroup that is
 * not the root of its hierarchy, the few property files of the fixed list
 * (validate_cgroups.c) that are there.  Paths in /proc/PID/cgroup are
 * relative to the reader's cgroup namespace, as the roots of the cgroup
 * mounts in /proc/self/mountinfo are: a path is found on disk by the
 * mount of its hierarchy whose root holds it.  Hierarchies are matched by
 * their controllers, never by id (ids change from boot to boot).
 *
 * Restore decides everything before any process is made: which cgroup
 * each process must join (none when it is born in it already: the root
 * in capcr restore's, a child in its parent's), which exist, which to
 * create and which properties to set (the mode), and whether the image's
 * owner may have it.  It opens each cgroup.procs to join (as the image's
 * owner, so the kernel judges that user's right to write it), and each
 * new process joins by writing "0" there first thing in its prelude:
 * before it makes its children, so that they are born in its cgroups, and
 * before the takeover fills its memory, so that every page of it is
 * charged to its own memory cgroup (a charge does not move with a process
 * that moves later).  Threads made at the takeover are born in their
 * leader's cgroups, which is why the dump refuses a thread that was not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proc.h"
#include "../dump/dump.h"
#include "../files/files.h"
#include "../image/validate_cgroups.h"
#include "../restore/restore.h"
#include "cgroups.h"

/* /proc/PID/cgroup: a line per hierarchy, a few hundred bytes. */
#define CGROUP_TEXT 8192

struct cg_mount {
	char *root;  /* the cgroup the mount shows at mnt */
	char *mnt;
	char *opts;  /* super options: a v1 mount's controllers are there */
	int v2;
};

struct cg_mounts {
	struct cg_mount *m;
	size_t n;
};

/* ---- finding a cgroup on disk ---- */

/* mountinfo writes blanks, tabs, newlines and backslashes as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

static void mounts_free(struct cg_mounts *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->m[i].root);
		free(ms->m[i].mnt);
		free(ms->m[i].opts);
	}
	free(ms->m);
	ms->m = NULL;
	ms->n = 0;
}

/* Every cgroup and cgroup2 mount capcr sees.  0, or -1 with errno. */
static int mounts_load(struct cg_mounts *ms)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MNT OPTS [OPTIONAL...] - TYPE SRC SUPER */
		char *sep = strstr(line, " - "), *save, *tok[5] = { 0 }, *ty;
		char *src, *sup;
		if (!sep)
			continue;
		*sep = 0;
		ty = strtok_r(sep + 3, " \n", &save);
		src = ty ? strtok_r(NULL, " \n", &save) : NULL;
		sup = src ? strtok_r(NULL, " \n", &save) : NULL;
		if (!sup || (strcmp(ty, "cgroup") && strcmp(ty, "cgroup2")))
			continue;
		tok[0] = strtok_r(line, " ", &save);
		for (int k = 1; k < 5 && tok[k - 1]; k++)
			tok[k] = strtok_r(NULL, " ", &save);
		if (!tok[0] || !tok[4])
			continue;
		struct cg_mount *m = realloc(ms->m, (ms->n + 1) * sizeof(*m));
		if (!m)
			break;
		ms->m = m;
		m += ms->n;
		m->root = strdup(tok[3]);
		m->mnt = strdup(tok[4]);
		m->opts = strdup(sup);
		m->v2 = !strcmp(ty, "cgroup2");
		ms->n++;
		if (!m->root || !m->mnt || !m->opts)
			break;
		unescape(m->root);
		unescape(m->mnt);
	}
	int e = ferror(f) ? EIO : ENOMEM;
	int bad = !feof(f);
	free(line);
	fclose(f);
	if (bad) {
		mounts_free(ms);
		return errno = e, -1;
	}
	return 0;
}

/* Whether comma-separated list has the token [s, s + n). */
static int has_token(const char *list, const char *s, size_t n)
{
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l == n && !strncmp(p, s, n))
			return 1;
		p += l + !!p[l];
	}
	return 0;
}

/* The mount of the hierarchy of controllers ("" for v2) that shows path,
 * or NULL. */
static const struct cg_mount *mount_of(const struct cg_mounts *ms,
				       const char *ctrl, const char *path)
{
	for (size_t i = 0; i < ms->n; i++) {
		const struct cg_mount *m = &ms->m[i];
		size_t rl = strlen(m->root);
		if (m->v2 != !ctrl[0])
			continue;
		int all = 1;
		for (const char *c = ctrl; all && *c;) {
			size_t l = strcspn(c, ",");
			all = has_token(m->opts, c, l);
			c += l + !!c[l];
		}
		if (all && (!strcmp(m->root, "/") ||
			    (!strncmp(path, m->root, rl) &&
			     (path[rl] == '/' || !path[rl]))))
			return m;
	}
	return NULL;
}

/* The directory of cgroup path under m.  0, or -1 when too long. */
static int dir_of(const struct cg_mount *m, const char *path, char *out,
		  size_t n)
{
	const char *rest = strcmp(m->root, "/") ? path + strlen(m->root) : path;

	if (!strcmp(rest, "/"))
		rest = "";
	return (size_t)snprintf(out, n, "%s%s", m->mnt, rest) < n ? 0 : -1;
}

/* The path of the line for controllers in a /proc/PID/cgroup text, into
 * out; NULL when there is none. */
static const char *path_in(const char *text, const char *ctrl, char *out,
			   size_t n)
{
	size_t cl = strlen(ctrl);

	for (const char *l = text; *l;) {
		size_t len = strcspn(l, "\n");
		const char *c1 = memchr(l, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l))
				    : NULL;
		if (c2 && (size_t)(c2 - c1 - 1) == cl &&
		    !strncmp(c1 + 1, ctrl, cl) &&
		    (size_t)(l + len - c2 - 1) < n) {
			snprintf(out, n, "%.*s", (int)(l + len - c2 - 1), c2 + 1);
			return out;
		}
		l += len + !!l[len];
	}
	return NULL;
}

/* How a hierarchy is named in messages. */
static const char *hier_name(const char *ctrl, char *buf, size_t n)
{
	if (!ctrl[0])
		return "cgroup v2";
	snprintf(buf, n, "the %s hierarchy", ctrl);
	return buf;
}

/* ---- dump ---- */

/* Threads made at restore are born in their leader's cgroups: a thread
 * that was elsewhere (cgroup v1's per-thread tasks file, v2's threaded
 * cgroups) fails the dump rather than come back in the wrong one. */
static int threads_same(struct dump_ctx *ctx, const char *leader)
{
	char path[80], text[CGROUP_TEXT];

	for (size_t i = 1; i < ctx->nthreads; i++) {
		pid_t tid = ctx->threads[i].tid;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", ctx->pid,
			 tid);
		if (proc_read_small(path, text, sizeof(text)) < 0)
			return DUMP_FAIL(ctx, "cannot read %s: %s", path,
					 strerror(errno));
		if (!strcmp(text, leader))
			continue;
		const char *a = text, *b = leader;
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
		while (*a && *b && la == lb && !strncmp(a, b, la)) {
			a += la + !!a[la];
			b += lb + !!b[lb];
			la = strcspn(a, "\n");
			lb = strcspn(b, "\n");
		}
		return DUMP_FAIL(ctx, "thread %d of process %d is not in the "
				      "cgroups of its leader (the thread: "
				      "\"%.*s\", the leader: \"%.*s\"): capcr "
				      "brings every thread back in its "
				      "leader's cgroups; move the thread to "
				      "them first",
				 tid, ctx->pid, (int)(la < 200 ? la : 200), a,
				 (int)(lb < 200 ? lb : 200), b);
	}
	return 0;
}

/* The properties of the fixed list that g's cgroup has and capcr can
 * read; none when capcr sees no mount of it. */
static void read_props(struct dump_ctx *ctx, const struct cg_mounts *ms,
		       Capcr__Cgroup *g)
{
	char dir[PATH_MAX], file[PATH_MAX + 64], val[128];
	const struct cg_mount *m = mount_of(ms, g->controllers, g->path);
	size_t n;
	const char *const *names = cgroup_props(!g->controllers[0], &n);

	if (!m || dir_of(m, g->path, dir, sizeof(dir)) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
		if (proc_read_small(file, val, sizeof(val)) <= 0)
			continue;
		val[strcspn(val, "\n")] = 0;
		Capcr__CgroupProp *p = ARENA_NEW(ctx->arena, Capcr__CgroupProp);
		capcr__cgroup_prop__init(p);
		p->name = arena_strdup(ctx->arena, names[i]);
		p->value = arena_strdup(ctx->arena, val);
		arena_push(ctx->arena, (void ***)&g->props, &g->n_props, p);
	}
}

/* The properties of the same cgroup, taken from a process dumped before:
 * each cgroup's files are read once a dump, however many processes are in
 * it. */
static int props_known(const struct dump_ctx *ctx, Capcr__Cgroup *g)
{
	const struct dump_tree *tr = ctx->tree;

	for (size_t j = 0; tr && j < tr->nprocs; j++) {
		const Capcr__Task *k = tr->procs[j].task;
		if (&tr->procs[j] == ctx || !k)
			continue;
		for (size_t i = 0; i < k->n_cgroups; i++) {
			const Capcr__Cgroup *o = k->cgroups[i];
			if (strcmp(o->controllers, g->controllers) ||
			    strcmp(o->path, g->path))
				continue;
			g->props = o->props;
			g->n_props = o->n_props;
			return 1;
		}
	}
	return 0;
}

int cgroups_dump(struct dump_ctx *ctx, Capcr__Task *t)
{
	char path[64], text[CGROUP_TEXT], why[400];
	struct cg_mounts ms = { 0 };
	int loaded = 0;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", ctx->pid);
	if (proc_read_small(path, text, sizeof(text)) < 0)
		return DUMP_FAIL(ctx, "cannot read %s: %s", path,
				 strerror(errno));
	if (threads_same(ctx, text) < 0)
		return -1;
	for (char *l = text, *next; *l; l = next) {
		next = strchrnul(l, '\n');
		if (*next)
			*next++ = 0;
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = 0;
		Capcr__Cgroup *g = ARENA_NEW(ctx->arena, Capcr__Cgroup);
		capcr__cgroup__init(g);
		g->hierarchy = (uint32_t)strtoul(l, NULL, 10);
		g->controllers = arena_strdup(ctx->arena, c1 + 1);
		g->path = arena_strdup(ctx->arena, c2 + 1);
		if (strcmp(g->path, "/") && !props_known(ctx, g)) {
			if (!loaded && mounts_load(&ms) < 0) {
				return DUMP_FAIL(ctx, "cannot read /proc/self/"
						      "mountinfo: %s",
						 strerror(errno));
			}
			loaded = 1;
			read_props(ctx, &ms, g);
		}
		arena_push(ctx->arena, (void ***)&t->cgroups, &t->n_cgroups, g);
	}
	mounts_free(&ms);
	/* What restore would refuse, refused now: a cgroup outside capcr's
	 * cgroup namespace shows as "/../..". */
	if (validate_cgroups(t, path, why, sizeof(why)) < 0)
		return DUMP_FAIL(ctx, "process %d cannot be restored in its "
				      "cgroups: %s",
				 ctx->pid, why);
	return 0;
}

/* ---- restore ---- */

int cgroups_parse_mode(const char *arg, enum cgroups_mode *mode)
{
	static const struct {
		const char *name;
		enum cgroups_mode mode;
	} modes[] = {
		{ "none", CGROUPS_IGNORE },  { "ignore", CGROUPS_IGNORE },
		{ "soft", CGROUPS_SOFT },    { "full", CGROUPS_FULL },
		{ "props", CGROUPS_STRICT }, { "strict", CGROUPS_STRICT },
	};

	if (!arg) {
		*mode = CGROUPS_SOFT;
		return 0;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(arg, modes[i].name)) {
			*mode = modes[i].mode;
			return 0;
		}
	return -1;
}

/* One cgroup some process of the image goes into. */
struct cg_target {
	char *ctrl;  /* the image's, for messages and matching */
	char *path;
	char *dir;   /* where it is here */
	int procs;   /* its cgroup.procs, open for writing, or -1 */
	int props_done;
};

struct cgroups_plan {
	struct cg_target *tg;
	size_t ntg;
	size_t **join;  /* per process: the targets it joins */
	size_t *njoin;
	char **made;    /* directories created, parents first */
	size_t nmade;
	char own[CGROUP_TEXT]; /* capcr restore's /proc/self/cgroup */
	struct cg_mounts ms;   /* read when a cgroup is first looked for */
	int ms_loaded;
	struct by_pid {
		pid_t pid;
		const Capcr__Task *task;
	} *tasks;              /* the processes, sorted by PID */
};

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = ((const struct by_pid *)a)->pid;
	pid_t y = ((const struct by_pid *)b)->pid;

	return (x > y) - (x < y);
}

/* Sorted once: a parent is looked for by every process. */
static const Capcr__Task *task_of(const struct restore_tree *t, pid_t pid)
{
	struct by_pid key = { .pid = pid };
	const struct by_pid *f = bsearch(&key, t->cgroups->tasks, t->nprocs,
					 sizeof(key), cmp_pid);

	return f ? f->task : NULL;
}

static const char *recorded(const Capcr__Task *k, const char *ctrl)
{
	for (size_t i = 0; k && i < k->n_cgroups; i++)
		if (!strcmp(k->cgroups[i]->controllers, ctrl))
			return k->cgroups[i]->path;
	return NULL;
}

/* mkdir every missing directory from the mount down to dir, each one
 * remembered to be removed if the restore fails. */
static int make_dirs(struct cgroups_plan *p, const struct cg_mount *m,
		     const char *dir, char *why, size_t wl)
{
	char path[PATH_MAX];
	size_t ml = strlen(m->mnt);

	snprintf(path, sizeof(path), "%s", dir);
	for (char *s = path + ml;; s++) {
		if (*s && *s != '/')
			continue;
		if (s > path + ml) {
			char c = *s;
			*s = 0;
			if (mkdir(path, 0755) == 0) {
				char **n = realloc(p->made, (p->nmade + 1) *
								    sizeof(*n));
				char *d = strdup(path);
				if (!n || !d) {
					free(d);
					if (n)
						p->made = n;
					rmdir(path);
					return snprintf(why, wl, "out of memory"),
					       -1;
				}
				p->made = n;
				p->made[p->nmade++] = d;
			} else if (errno != EEXIST) {
				return snprintf(why, wl, "cannot create cgroup "
							 "%s: %s",
						path, strerror(errno)),
				       -1;
			}
			*s = c;
		}
		if (!*s)
			return 0;
	}
}

/* The recorded properties of g, in the list's order, on tg: each that
 * differs from what the cgroup has now.  An image only root owns may. */
static int set_props(const struct restore_tree *t, struct cg_target *tg,
		     const Capcr__Cgroup *g, char *why, size_t wl)
{
	char file[PATH_MAX + 64], cur[128];
	size_t n;
	const char *const *names = cgroup_props(!g->controllers[0], &n);
	uid_t owner = t->img.owner_uid;

	if (tg->props_done)
		return 0;
	tg->props_done = 1;
	for (size_t j = 0; j < n; j++) {
		const Capcr__CgroupProp *pr = NULL;
		for (size_t k = 0; k < g->n_props && !pr; k++)
			if (!strcmp(g->props[k]->name, names[j]))
				pr = g->props[k];
		if (!pr)
			continue;
		snprintf(file, sizeof(file), "%s/%s", tg->dir, pr->name);
		if (proc_read_small(file, cur, sizeof(cur)) < 0)
			return snprintf(why, wl, "cannot read %s of cgroup %s: "
						 "%s%s",
					pr->name, tg->dir, strerror(errno),
					errno == ENOENT
						? " (its controller is not "
						  "enabled there)"
						: ""),
			       -1;
		cur[strcspn(cur, "\n")] = 0;
		if (!strcmp(cur, pr->value))
			continue;
		if (owner)
			return snprintf(why, wl, "the image belongs to uid %u, "
						 "and only root's images may set "
						 "cgroup properties: %s of %s "
						 "would go from %s to %s "
						 "(docs/security.md)",
					(unsigned)owner, pr->name, tg->dir, cur,
					pr->value),
			       -1;
		int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		size_t vl = strlen(pr->value);
		if (fd < 0 || write(fd, pr->value, vl) != (ssize_t)vl) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return snprintf(why, wl, "cannot set %s of cgroup %s to "
						 "%s: %s",
					pr->name, tg->dir, pr->value,
					strerror(e)),
			       -1;
		}
		close(fd);
	}
	return 0;
}

/* The target for g, found here, created when the mode says so.  Its
 * index, or -1 with why. */
static long target(struct restore_tree *t, enum cgroups_mode mode, pid_t pid,
		   const Capcr__Cgroup *g, char *why, size_t wl)
{
	struct cgroups_plan *p = t->cgroups;
	char dir[PATH_MAX], hn[300];
	const char *h = hier_name(g->controllers, hn, sizeof(hn));

	for (size_t i = 0; i < p->ntg; i++)
		if (!strcmp(p->tg[i].ctrl, g->controllers) &&
		    !strcmp(p->tg[i].path, g->path))
			return (long)i;
	if (!p->ms_loaded && mounts_load(&p->ms) < 0)
		return snprintf(why, wl, "cannot read /proc/self/mountinfo: %s",
				strerror(errno)),
		       -1;
	p->ms_loaded = 1;
	const struct cg_mount *m = mount_of(&p->ms, g->controllers, g->path);
	if (!m)
		return snprintf(why, wl, "process %d was in cgroup %s of %s, "
					 "which no cgroup mount here shows; "
					 "--manage-cgroups=ignore leaves the "
					 "processes in capcr restore's cgroups",
				pid, g->path, h),
		       -1;
	if (dir_of(m, g->path, dir, sizeof(dir)) < 0)
		return snprintf(why, wl, "process %d: the path of cgroup %.200s "
					 "of %s is too long here",
				pid, g->path, h),
		       -1;
	struct stat st;
	int created = 0;
	int r = stat(dir, &st);
	if (r < 0 && errno != ENOENT)
		return snprintf(why, wl, "cannot look at cgroup %s: %s", dir,
				strerror(errno)),
		       -1;
	if (r < 0) {
		if (mode == CGROUPS_DEFAULT || mode == CGROUPS_STRICT)
			return snprintf(why, wl, "process %d was in cgroup %s of "
						 "%s, which does not exist here "
						 "(%s): --manage-cgroups creates "
						 "it, --manage-cgroups=ignore "
						 "leaves the processes in capcr "
						 "restore's cgroups",
					pid, g->path, h, dir),
			       -1;
		if (t->img.owner_uid)
			return snprintf(why, wl, "the image belongs to uid %u, "
						 "and only root's images may "
						 "create cgroups: cgroup %s of "
						 "process %d does not exist "
						 "(docs/security.md)",
					(unsigned)t->img.owner_uid, dir, pid),
			       -1;
		if (make_dirs(p, m, dir, why, wl) < 0)
			return -1;
		created = 1;
	} else if (!S_ISDIR(st.st_mode)) {
		return snprintf(why, wl, "cgroup %s is not a directory", dir), -1;
	}
	struct cg_target *n = realloc(p->tg, (p->ntg + 1) * sizeof(*n));
	if (!n)
		return snprintf(why, wl, "out of memory"), -1;
	p->tg = n;
	n += p->ntg;
	n->ctrl = strdup(g->controllers);
	n->path = strdup(g->path);
	n->dir = strdup(dir);
	n->procs = -1;
	n->props_done = 0;
	p->ntg++;
	if (!n->ctrl || !n->path || !n->dir)
		return snprintf(why, wl, "out of memory"), -1;
	/* A cgroup the restore made has only the properties it is given. */
	if (created && set_props(t, n, g, why, wl) < 0)
		return -1;
	return (long)(n - p->tg);
}

/* tg's cgroup.procs, opened with the rights of the image's owner: an
 * image only root owns may place its processes only where that user
 * could. */
static int open_procs(struct restore_tree *t, struct cg_target *tg, pid_t pid,
		      char *why, size_t wl)
{
	char file[PATH_MAX + 16];

	if (tg->procs >= 0)
		return 0;
	snprintf(file, sizeof(file), "%s/cgroup.procs", tg->dir);
	int fd = files_open_as(t->img.owner_uid, t->img.owner_gid, file,
			       O_WRONLY | O_CLOEXEC);
	if (fd < 0 && t->img.owner_uid)
		return snprintf(why, wl, "the image belongs to uid %u, who may "
					 "not write %s (%s): process %d cannot "
					 "be placed in cgroup %s; "
					 "--manage-cgroups=ignore leaves it in "
					 "capcr restore's (docs/security.md)",
				(unsigned)t->img.owner_uid, file,
				strerror(errno), pid, tg->dir),
		       -1;
	if (fd < 0)
		return snprintf(why, wl, "cannot open %s: %s", file,
				strerror(errno)),
		       -1;
	/* Above every number of the image: the processes inherit it. */
	tg->procs = fcntl(fd, F_DUPFD_CLOEXEC, t->fd_base);
	int e = errno;
	close(fd);
	if (tg->procs < 0)
		return snprintf(why, wl, "cannot move %s above descriptor %d: %s",
				file, t->fd_base, strerror(e)),
		       -1;
	return 0;
}

/* Cgroup v2 lets a user move a process only if that user may also write
 * the cgroup.procs of the closest common ancestor of where the process is
 * and where it goes (delegation).  The kernel judges it at the write, made
 * through the descriptor the image's owner opened; asked here too, so that
 * the refusal comes before anything is made, and names that ancestor. */
static int check_ancestor(struct restore_tree *t, const char *from,
			  const Capcr__Cgroup *g, pid_t pid, char *why,
			  size_t wl)
{
	char anc[PATH_MAX], dir[PATH_MAX], file[PATH_MAX + 16];
	size_t n = 0;

	if (!t->img.owner_uid || g->controllers[0])
		return 0;
	if (!from)
		from = "/";
	for (size_t i = 0;; i++) {
		char a = from[i], b = g->path[i];
		if ((a == '/' || !a) && (b == '/' || !b))
			n = i;
		if (!a || !b || a != b)
			break;
	}
	snprintf(anc, sizeof(anc), "%.*s", (int)(n ? n : 1), g->path);
	const struct cg_mount *m = mount_of(&t->cgroups->ms, "", anc);
	if (!strcmp(anc, g->path) || !m || dir_of(m, anc, dir, sizeof(dir)) < 0)
		return 0;
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	int fd = files_open_as(t->img.owner_uid, t->img.owner_gid, file,
			       O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		return close(fd), 0;
	return snprintf(why, wl, "the image belongs to uid %u, who may not "
				 "write %s (%s), the common ancestor of cgroup "
				 "%s, where process %d is made, and cgroup %s of "
				 "cgroup v2, where it goes: only a user who may "
				 "can move it there (docs/security.md)",
			(unsigned)t->img.owner_uid, file, strerror(errno), from,
			pid, g->path),
	       -1;
}

static int plan_process(struct restore_tree *t, enum cgroups_mode mode,
			size_t idx, char *why, size_t wl)
{
	struct cgroups_plan *p = t->cgroups;
	const Capcr__Task *k = t->procs[idx].task;
	const Capcr__Task *parent = idx ? task_of(t, k->ppid) : NULL;
	char own[PATH_MAX];

	p->join[idx] = calloc(k->n_cgroups + 1, sizeof(size_t));
	if (!p->join[idx])
		return snprintf(why, wl, "out of memory"), -1;
	for (size_t i = 0; i < k->n_cgroups; i++) {
		const Capcr__Cgroup *g = k->cgroups[i];
		/* Where it is born: the root in capcr restore's cgroup, a
		 * child in the one its parent joined. */
		const char *born = idx ? recorded(parent, g->controllers)
				       : path_in(p->own, g->controllers, own,
						 sizeof(own));
		/* The root cgroup of a hierarchy this machine does not
		 * have: nothing to be in. */
		if (!born && !idx && !strcmp(g->path, "/"))
			continue;
		int join = !born || strcmp(born, g->path);
		int props = (mode == CGROUPS_FULL || mode == CGROUPS_STRICT) &&
			    g->n_props;
		if (!join && !props)
			continue;
		long ti = target(t, mode, k->pid, g, why, wl);
		if (ti < 0)
			return -1;
		struct cg_target *tg = &p->tg[ti];
		if (props && set_props(t, tg, g, why, wl) < 0)
			return -1;
		if (!join)
			continue;
		if (check_ancestor(t, born, g, k->pid, why, wl) < 0 ||
		    open_procs(t, tg, k->pid, why, wl) < 0)
			return -1;
		p->join[idx][p->njoin[idx]++] = (size_t)ti;
	}
	return 0;
}

int cgroups_prepare(struct restore_tree *t, enum cgroups_mode mode, char *why,
		    size_t wl)
{
	int any = 0;

	for (size_t i = 0; i < t->nprocs; i++)
		any |= t->procs[i].task->n_cgroups > 0;
	if (mode == CGROUPS_IGNORE || !any)
		return 0;
	struct cgroups_plan *p = calloc(1, sizeof(*p));
	if (!p)
		return snprintf(why, wl, "out of memory"), -1;
	t->cgroups = p;
	p->join = calloc(t->nprocs, sizeof(*p->join));
	p->njoin = calloc(t->nprocs, sizeof(*p->njoin));
	p->tasks = calloc(t->nprocs, sizeof(*p->tasks));
	if (!p->join || !p->njoin || !p->tasks)
		return snprintf(why, wl, "out of memory"), -1;
	for (size_t i = 0; i < t->nprocs; i++)
		p->tasks[i] = (struct by_pid){ t->procs[i].pid, t->procs[i].task };
	qsort(p->tasks, t->nprocs, sizeof(*p->tasks), cmp_pid);
	if (proc_read_small("/proc/self/cgroup", p->own, sizeof(p->own)) < 0)
		return snprintf(why, wl, "cannot read /proc/self/cgroup: %s",
				strerror(errno)),
		       -1;
	for (size_t i = 0; i < t->nprocs; i++)
		if (plan_process(t, mode, i, why, wl) < 0)
			return -1;
	return 0;
}

int cgroups_join(const struct restore_tree *t, size_t idx, char *why,
		 size_t wl)
{
	const struct cgroups_plan *p = t->cgroups;

	for (size_t k = 0; p && k < p->njoin[idx]; k++) {
		const struct cg_target *tg = &p->tg[p->join[idx][k]];
		/* "0": the writer's own thread group. */
		if (write(tg->procs, "0", 1) != 1)
			return snprintf(why, wl, "cannot join cgroup %s%s: %s",
					tg->dir,
					t->img.owner_uid
						? " with the rights of the "
						  "image's owner"
						: "",
					strerror(errno)),
			       -1;
	}
	return 0;
}

void cgroups_close(struct restore_tree *t)
{
	struct cgroups_plan *p = t->cgroups;

	for (size_t i = 0; p && i < p->ntg; i++)
		if (p->tg[i].procs >= 0) {
			close(p->tg[i].procs);
			p->tg[i].procs = -1;
		}
}

void cgroups_undo(struct restore_tree *t)
{
	struct cgroups_plan *p = t->cgroups;

	for (size_t i = p ? p->nmade : 0; i-- > 0;) {
		/* A process just reaped may keep its cgroup busy a moment. */
		int r, tries = 0;
		while ((r = rmdir(p->made[i])) < 0 && errno == EBUSY &&
		       tries++ < 100)
			usleep(10000);
		if (r < 0)
			capcr_warn("cannot remove cgroup %s, which the failed "
				   "restore created: %s",
				   p->made[i], strerror(errno));
	}
	for (size_t i = 0; p && i < p->nmade; i++)
		free(p->made[i]);
	if (p)
		p->nmade = 0;
}

void cgroups_free(struct restore_tree *t)
{
	struct cgroups_plan *p = t->cgroups;

	if (!p)
		return;
	cgroups_close(t);
	for (size_t i = 0; i < p->ntg; i++) {
		free(p->tg[i].ctrl);
		free(p->tg[i].path);
		free(p->tg[i].dir);
	}
	free(p->tg);
	for (size_t i = 0; p->join && i < t->nprocs; i++)
		free(p->join[i]);
	free(p->join);
	free(p->njoin);
	free(p->tasks);
	for (size_t i = 0; i < p->nmade; i++)
		free(p->made[i]);
	free(p->made);
	mounts_free(&p->ms);
	free(p);
	t->cgroups = NULL;
}
