/* SPDX-License-Identifier: MIT */
/*
 * capcr show: what an image holds, for a person (or, with --json, for a
 * program): the processes, their memory map, registers, signal state and
 * capability table with badges and provenance.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/user.h>
#include <time.h>

#include "../common/json.h"
#include "../common/log.h"
#include "../files/locks.h"
#include "../image/load.h"
#include "../monitor/commands.h"
#include "capcr/capinfo.h"

static const char *vma_kind_name(Capcr__VmaKind k)
{
	static const char *const n[] = { "anon",	"shared-anon", "file",
					 "shared-file", "vdso",	"vvar",
					 "vvar-vclock", "vsyscall" };
	return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

static const char *file_kind_name(Capcr__FileKind k)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		&capcr__file_kind__descriptor, (int)k);
	return v ? v->name + 5 : "?"; /* drop "FILE_" */
}

static uint64_t vma_pages(const Capcr__Vma *v)
{
	uint64_t n = 0;
	for (size_t i = 0; i < v->n_pages; i++)
		n += v->pages[i]->npages;
	return n;
}

static void print_proc(const Capcr__Task *tk, size_t depth)
{
	/* A chain thousands deep would print megabytes of blanks. */
	printf("  %*s%d %s", (int)(depth < 40 ? depth * 2 : 80), "", tk->pid,
	       tk->comm);
	if (tk->zombie)
		printf(" (zombie, wait status %#x)", (unsigned)tk->exit_code);
	else
		printf(" (%zu thread%s)", tk->n_threads,
		       tk->n_threads == 1 ? "" : "s");
	if (tk->sid == tk->pid)
		printf(", session leader");
	else if (tk->pgid == tk->pid)
		printf(", group leader");
	putchar('\n');
}

/* One descriptor of the image: which process holds which file. */
struct holder {
	uint32_t file;
	uint32_t proc;
	int32_t fd;
};

static int by_file(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

static int by_pid(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* Print the holders of file f: h[first[f]..first[f+1]). */
static void print_holders(const struct image_proc *p, const struct holder *h,
			  const size_t *first, size_t f)
{
	for (size_t k = first[f]; k < first[f + 1]; k++)
		printf(" %d:fd%d", p[h[k].proc].task->pid, h[k].fd);
}

/* Pipe ends by pipe id, write ends first. */
static const Capcr__File *const *pipe_files;
static int by_pipe(const void *a, const void *b)
{
	const Capcr__File *x = pipe_files[*(const size_t *)a],
			  *y = pipe_files[*(const size_t *)b];

	if (x->pipe_id != y->pipe_id)
		return x->pipe_id < y->pipe_id ? -1 : 1;
	return (y->pipe_write_end > x->pipe_write_end) -
	       (y->pipe_write_end < x->pipe_write_end);
}

/* Who is whose parent, and which open files several processes share.  The
 * image is validated (a tree, indices in range) but as large as its
 * writer liked: nothing here is quadratic in it, nor recursive. */
static void show_tree(const Capcr__Files *files, const struct image_proc *p,
		      size_t np)
{
	size_t nf = files->n_files, nh = 0;
	size_t *first = calloc(nf + 2, sizeof(*first));
	size_t *stack = calloc(np + 1, sizeof(*stack));
	size_t *depth = calloc(np + 1, sizeof(*depth));
	/* Children as lists, 1-based (0: none), in image order. */
	size_t *kid = calloc(np + 1, sizeof(*kid));
	size_t *sib = calloc(np + 1, sizeof(*sib));
	struct holder *byid = calloc(np + 1, sizeof(*byid));
	size_t *pipes = calloc(nf + 1, sizeof(*pipes));
	size_t *maps = calloc(files->n_shmem + 1, sizeof(*maps));
	struct holder *h;

	for (size_t i = 0; i < np; i++)
		nh += p[i].fdt->n_fds;
	h = calloc(nh + 1, sizeof(*h));
	if (!first || !stack || !depth || !pipes || !maps || !h || !kid ||
	    !sib || !byid) {
		printf("\n(out of memory: no process tree)\n");
		goto out;
	}
	printf("\nprocess tree (%zu process%s):\n", np, np == 1 ? "" : "es");
	for (size_t i = 0; i < np; i++)
		byid[i] = (struct holder){ 0, (uint32_t)i, p[i].task->pid };
	qsort(byid, np, sizeof(*byid), by_pid);
	for (size_t j = np; j-- > 1;) {
		struct holder key = { 0, 0, p[j].task->ppid };
		const struct holder *par = bsearch(&key, byid, np,
						   sizeof(*byid), by_pid);
		if (par) {
			sib[j] = kid[par->proc];
			kid[par->proc] = j + 1;
		}
	}
	/* Depth first from the root; kid[] doubles as each one's cursor. */
	size_t top = 0;
	stack[top++] = 0;
	print_proc(p[0].task, 0);
	while (top) {
		size_t i = stack[top - 1], c = kid[i];
		if (!c) {
			top--;
			continue;
		}
		kid[i] = sib[c - 1];
		depth[c - 1] = depth[i] + 1;
		print_proc(p[c - 1].task, depth[c - 1]);
		if (top < np)
			stack[top++] = c - 1;
	}
	nh = 0;
	for (size_t i = 0; i < np; i++)
		for (size_t d = 0; d < p[i].fdt->n_fds; d++)
			h[nh++] = (struct holder){ p[i].fdt->fds[d]->file,
						   (uint32_t)i,
						   p[i].fdt->fds[d]->fd };
	qsort(h, nh, sizeof(*h), by_file);
	for (size_t k = 0, f = 0; f <= nf; f++) {
		while (k < nh && h[k].file < f)
			k++;
		first[f] = k;
	}
	first[nf + 1] = nh;
	int header = 0;
	for (size_t f = 0; f < nf; f++) {
		size_t holders = 0;
		for (size_t k = first[f]; k < first[f + 1]; k++)
			holders += k == first[f] || h[k].proc != h[k - 1].proc;
		if (holders < 2)
			continue;
		if (!header++)
			printf("\nshared between processes (one open file "
			       "description each):\n");
		printf("  file %zu, %s %s:", f, file_kind_name(files->files[f]->kind),
		       files->files[f]->path ? files->files[f]->path : "");
		print_holders(p, h, first, f);
		putchar('\n');
	}
	/* Pipes: a write end and a read end, each its own description. */
	size_t npipes = 0;
	for (size_t f = 0; f < nf; f++)
		if (files->files[f]->kind == CAPCR__FILE_KIND__FILE_PIPE)
			pipes[npipes++] = f;
	pipe_files = (const Capcr__File *const *)files->files;
	qsort(pipes, npipes, sizeof(*pipes), by_pipe);
	header = 0;
	for (size_t a = 0; a < npipes;) {
		size_t b = a, w;
		while (b < npipes && files->files[pipes[b]]->pipe_id ==
					     files->files[pipes[a]]->pipe_id)
			b++;
		for (w = a; w < b && files->files[pipes[w]]->pipe_write_end;
		     w++)
			;
		/* pipes[a..w) write ends, [w..b) read ends */
		for (size_t x = a; x < w; x++)
			for (size_t y = w; y < b; y++) {
				const Capcr__File *r = files->files[pipes[y]];
				if (!header++)
					printf("\npipes (writers -> "
					       "readers):\n");
				printf("  pipe %u:", r->pipe_id);
				print_holders(p, h, first, pipes[x]);
				printf(" ->");
				print_holders(p, h, first, pipes[y]);
				if (r->data_size)
					printf("  (%" PRIu64 " bytes unread)",
					       r->data_size);
				putchar('\n');
			}
		a = b;
	}
	for (size_t i = 0; i < np; i++)
		for (size_t v = 0; v < p[i].mm->n_vmas; v++)
			if (p[i].mm->vmas[v]->has_shmem)
				maps[p[i].mm->vmas[v]->shmem]++;
	for (size_t s = 0; s < files->n_shmem; s++) {
		printf("%sshared memory object %zu (%s, %" PRIu64 " bytes): "
		       "%zu mapping%s\n",
		       s ? "" : "\n", s,
		       files->shmem[s]->name ? files->shmem[s]->name
					     : "anonymous",
		       files->shmem[s]->size, maps[s], maps[s] == 1 ? "" : "s");
	}
out:
	free(first);
	free(stack);
	free(depth);
	free(kid);
	free(sib);
	free(byid);
	free(pipes);
	free(maps);
	free(h);
}

static int by_cap_fd(const void *a, const void *b)
{
	const Capcr__CapEntry *const *x = a, *const *y = b;

	return ((*x)->fd > (*y)->fd) - ((*x)->fd < (*y)->fd);
}

/* The cap-map entries sorted by descriptor (NULL, *n = 0 when none), so
 * that finding each descriptor's is not quadratic. */
static Capcr__CapEntry **caps_by_fd(const Capcr__CapSpace *cs, size_t *n)
{
	Capcr__CapEntry **v;

	*n = 0;
	if (!cs || !cs->n_caps ||
	    !(v = malloc(cs->n_caps * sizeof(*v))))
		return NULL;
	memcpy(v, cs->caps, cs->n_caps * sizeof(*v));
	qsort(v, cs->n_caps, sizeof(*v), by_cap_fd);
	*n = cs->n_caps;
	return v;
}

static const Capcr__CapEntry *cap_of(Capcr__CapEntry **v, size_t n, int fd)
{
	Capcr__CapEntry key = { .fd = fd };
	const Capcr__CapEntry *kp = &key;
	Capcr__CapEntry **hit = v ? bsearch(&kp, v, n, sizeof(*v), by_cap_fd)
				  : NULL;

	return hit ? *hit : NULL;
}

static void show_text(const Capcr__Inventory *inv, const Capcr__Files *files,
		      const struct image_proc *p, size_t np)
{
	time_t t = (time_t)(inv->created_unix_ns / 1000000000);
	char when[64];

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	printf("capcr image, format %u, written by capcr %s on %s (kernel "
	       "%s), %s\n",
	       inv->format_version, inv->capcr_version, when,
	       inv->kernel ? inv->kernel : "?", inv->arch);
	show_tree(files, p, np);
	for (size_t i = 0; i < np; i++) {
		const Capcr__Task *tk = p[i].task;
		if (tk->zombie) {
			printf("\nprocess %d: a zombie (parent %d), ended with "
			       "wait status %#x\n",
			       tk->pid, tk->ppid, (unsigned)tk->exit_code);
			continue;
		}
		const Capcr__Thread *th = tk->threads[0];
		struct user_regs_struct r;
		memcpy(&r, th->regs.data,
		       th->regs.len < sizeof(r) ? th->regs.len : sizeof(r));
		printf("\nprocess %d (%s): parent %d, group %d, session %d%s\n",
		       tk->pid, tk->comm, tk->ppid, tk->pgid, tk->sid,
		       tk->monitored ? ", monitored" : "");
		printf("  exe %s, cwd %s, umask %03o\n", tk->exe ? tk->exe : "?",
		       tk->cwd, tk->umask);
		printf("  thread %d: rip %#llx rsp %#llx, fs_base %#llx, "
		       "xstate %zu bytes%s\n",
		       th->tid, r.rip, r.rsp, r.fs_base, th->xstate.len,
		       th->has_rseq_addr ? ", rseq registered" : "");
		printf("  signals: blocked %#" PRIx64 ", %zu pending, %zu "
		       "shared pending, %zu handlers",
		       th->sigmask, th->n_pending, tk->n_shared_pending,
		       tk->n_sigactions);
		for (size_t s = 0; s < tk->n_sigactions; s++)
			printf("%s%s", s ? " " : " (",
			       sigabbrev_np((int)tk->sigactions[s]->sig)
				       ?: "RT");
		printf("%s\n", tk->n_sigactions ? ")" : "");
		if (th->has_altstack_sp)
			printf("  alternate stack %#" PRIx64 " (%" PRIu64
			       " bytes)\n",
			       th->altstack_sp, th->altstack_size);
		printf("  timers: %zu interval, %zu POSIX\n", tk->n_itimers,
		       tk->n_posix_timers);
		uint64_t total = 0;
		printf("  memory (%zu mappings):\n", p[i].mm->n_vmas);
		for (size_t v = 0; v < p[i].mm->n_vmas; v++) {
			const Capcr__Vma *m = p[i].mm->vmas[v];
			uint64_t pg = vma_pages(m);
			total += pg;
			printf("    %012" PRIx64 "-%012" PRIx64 " %c%c%c %-11s "
			       "%6" PRIu64 " pages saved  %s\n",
			       m->start, m->end, m->prot & PROT_READ ? 'r' : '-',
			       m->prot & PROT_WRITE ? 'w' : '-',
			       m->prot & PROT_EXEC ? 'x' : '-',
			       vma_kind_name(m->kind), pg,
			       m->path ? m->path : m->name ? m->name : "");
		}
		printf("  %.1f MiB of pages saved\n", total * 4096 / 1048576.0);
		printf("  capabilities (%zu descriptors):\n", p[i].fdt->n_fds);
		size_t nc;
		Capcr__CapEntry **caps = caps_by_fd(p[i].fdt->capspace, &nc);
		for (size_t d = 0; d < p[i].fdt->n_fds; d++) {
			const Capcr__Fd *fd = p[i].fdt->fds[d];
			const Capcr__File *f = files->files[fd->file];
			const Capcr__CapEntry *ce = cap_of(caps, nc, fd->fd);
			char badge[32] = "-", prov[300] = "";
			if (ce) {
				struct capcr_cap_entry e;
				/* validated: entry is exactly sizeof(e) */
				memcpy(&e, ce->entry.data, sizeof(e));
				snprintf(badge, sizeof(badge), "%#" PRIx64,
					 ce->badge);
				/* the image's path need not end in a NUL */
				snprintf(prov, sizeof(prov), " (%.*s)",
					 (int)sizeof(e.path), e.path);
			}
			printf("    %4d  %-8s  file %-3u  badge %-14s %s%s%s\n",
			       fd->fd, file_kind_name(f->kind), fd->file, badge,
			       f->path ? f->path : "",
			       f->has_external_fd ? " [outside the image: "
						    "re-attached at restore]"
						  : "",
			       prov);
		}
		free(caps);
		if (p[i].fdt->n_locks)
			printf("  file locks (%zu):\n", p[i].fdt->n_locks);
		for (size_t k = 0; k < p[i].fdt->n_locks; k++) {
			char what[160];
			locks_describe(p[i].fdt->locks[k], what, sizeof(what));
			printf("    %4d  %s\n", p[i].fdt->locks[k]->fd, what);
		}
	}
}

static void show_json(const Capcr__Inventory *inv, const Capcr__Files *files,
		      const struct image_proc *p, size_t np)
{
	struct json j;

	json_begin(&j, stdout);
	json_obj_open(&j, NULL);
	json_uint(&j, "format", inv->format_version);
	json_str(&j, "capcr_version", inv->capcr_version);
	json_int(&j, "root_pid", inv->root_pid);
	json_arr_open(&j, "processes");
	for (size_t i = 0; i < np; i++) {
		const Capcr__Task *tk = p[i].task;
		json_obj_open(&j, NULL);
		json_int(&j, "pid", tk->pid);
		json_int(&j, "ppid", tk->ppid);
		json_str(&j, "comm", tk->comm);
		json_bool(&j, "monitored", tk->monitored);
		json_int(&j, "pgid", tk->pgid);
		json_int(&j, "sid", tk->sid);
		json_bool(&j, "zombie", tk->zombie);
		json_uint(&j, "threads", tk->n_threads);
		if (tk->n_threads)
			json_uint(&j, "sigmask", tk->threads[0]->sigmask);
		json_arr_open(&j, "sigactions");
		for (size_t s = 0; s < tk->n_sigactions; s++) {
			json_obj_open(&j, NULL);
			json_uint(&j, "sig", tk->sigactions[s]->sig);
			json_uint(&j, "handler", tk->sigactions[s]->handler);
			json_uint(&j, "flags", tk->sigactions[s]->flags);
			json_obj_close(&j);
		}
		json_arr_close(&j);
		json_arr_open(&j, "vmas");
		for (size_t v = 0; v < p[i].mm->n_vmas; v++) {
			const Capcr__Vma *m = p[i].mm->vmas[v];
			json_obj_open(&j, NULL);
			json_uint(&j, "start", m->start);
			json_uint(&j, "end", m->end);
			json_uint(&j, "prot", m->prot);
			json_str(&j, "kind", vma_kind_name(m->kind));
			json_str(&j, "path", m->path ? m->path : m->name);
			json_uint(&j, "pages", vma_pages(m));
			json_obj_close(&j);
		}
		json_arr_close(&j);
		json_arr_open(&j, "fds");
		size_t nc;
		Capcr__CapEntry **caps = caps_by_fd(p[i].fdt->capspace, &nc);
		for (size_t d = 0; d < p[i].fdt->n_fds; d++) {
			const Capcr__Fd *fd = p[i].fdt->fds[d];
			const Capcr__File *f = files->files[fd->file];
			json_obj_open(&j, NULL);
			json_int(&j, "fd", fd->fd);
			json_uint(&j, "file", fd->file);
			json_str(&j, "kind", file_kind_name(f->kind));
			json_str(&j, "path", f->path);
			json_bool(&j, "cloexec", fd->cloexec);
			json_bool(&j, "external", f->has_external_fd);
			if (f->has_pos)
				json_int(&j, "pos", f->pos);
			const Capcr__CapEntry *ce = cap_of(caps, nc, fd->fd);
			if (ce)
				json_uint(&j, "badge", ce->badge);
			json_obj_close(&j);
		}
		free(caps);
		json_arr_close(&j);
		json_arr_open(&j, "locks");
		for (size_t k = 0; k < p[i].fdt->n_locks; k++) {
			static const char *const kinds[] = { "posix", "ofd",
							     "flock", "lease" };
			const Capcr__FileLock *l = p[i].fdt->locks[k];
			json_obj_open(&j, NULL);
			json_int(&j, "fd", l->fd);
			json_str(&j, "kind", kinds[l->kind]);
			json_str(&j, "type", l->type ? "write" : "read");
			if (l->has_start)
				json_int(&j, "start", l->start);
			if (l->has_len)
				json_int(&j, "len", l->len);
			json_obj_close(&j);
		}
		json_arr_close(&j);
		json_obj_close(&j);
	}
	json_arr_close(&j);
	json_obj_close(&j);
	json_end(&j);
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ IMAGE_UNTRUSTED_OPT, no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int json = 0, c, rc = 1;
	char why[512] = "";

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:jh", opts, NULL)) != -1) {
		if (c == 'D') {
			dir = optarg;
		} else if (c == 'j') {
			json = 1;
		} else if (c == 'U') {
			image_allow_untrusted(1);
		} else {
			printf("usage: capcr show [--json] "
			       "[--" IMAGE_UNTRUSTED_OPT "] -D DIR\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: capcr show [--json] "
				"[--" IMAGE_UNTRUSTED_OPT "] -D DIR\n");
		return 2;
	}
	struct image img;
	struct image_set set;
	/* Nothing is printed before the whole image is validated: show reads
	 * the same way restore does, and trusts what it reads as little. */
	if (image_set_load(&img, dir, &set, why, sizeof(why)) < 0 ||
	    image_verify_finish(&img, why, sizeof(why)) < 0)
		goto out;
	if (json)
		show_json(set.inv, set.files, set.procs, set.nprocs);
	else
		show_text(set.inv, set.files, set.procs, set.nprocs);
	rc = 0;
out:
	if (rc)
		capcr_err("%s", why[0] ? why : "cannot read the image");
	image_set_free(&set);
	image_close(&img);
	return rc;
}
