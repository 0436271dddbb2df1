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
#include "../image/image.h"
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

struct proc_image {
	Capcr__Task *task;
	Capcr__Mm *mm;
	Capcr__FdTable *fdt;
};

static void print_subtree(const struct proc_image *p, size_t np, size_t i,
			  int depth)
{
	const Capcr__Task *tk = p[i].task;

	printf("  %*s%d %s", depth * 2, "", tk->pid, tk->comm);
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
	for (size_t j = 0; j < np; j++)
		if (j != i && p[j].task->ppid == tk->pid)
			print_subtree(p, np, j, depth + 1);
}

/* Who is whose parent, and which open files several processes share. */
static void show_tree(const Capcr__Files *files, const struct proc_image *p,
		      size_t np)
{
	printf("\nprocess tree (%zu process%s):\n", np, np == 1 ? "" : "es");
	print_subtree(p, np, 0, 0);
	int header = 0;
	for (size_t f = 0; f < files->n_files; f++) {
		size_t holders = 0;
		for (size_t i = 0; i < np; i++)
			for (size_t d = 0; d < p[i].fdt->n_fds; d++)
				if (p[i].fdt->fds[d]->file == f) {
					holders++;
					break;
				}
		if (holders < 2)
			continue;
		if (!header++)
			printf("\nshared between processes (one open file "
			       "description each):\n");
		printf("  file %zu, %s %s:", f, file_kind_name(files->files[f]->kind),
		       files->files[f]->path ? files->files[f]->path : "");
		for (size_t i = 0; i < np; i++)
			for (size_t d = 0; d < p[i].fdt->n_fds; d++)
				if (p[i].fdt->fds[d]->file == f)
					printf(" %d:fd%d", p[i].task->pid,
					       p[i].fdt->fds[d]->fd);
		putchar('\n');
	}
	/* Pipes: a write end and a read end, each its own description. */
	header = 0;
	for (size_t f = 0; f < files->n_files; f++) {
		const Capcr__File *w = files->files[f];
		if (w->kind != CAPCR__FILE_KIND__FILE_PIPE || !w->pipe_write_end)
			continue;
		for (size_t g = 0; g < files->n_files; g++) {
			const Capcr__File *r = files->files[g];
			if (r->kind != CAPCR__FILE_KIND__FILE_PIPE ||
			    r->pipe_write_end || r->pipe_id != w->pipe_id)
				continue;
			if (!header++)
				printf("\npipes (writers -> readers):\n");
			printf("  pipe %u:", w->pipe_id);
			for (size_t i = 0; i < np; i++)
				for (size_t d = 0; d < p[i].fdt->n_fds; d++)
					if (p[i].fdt->fds[d]->file == f)
						printf(" %d:fd%d", p[i].task->pid,
						       p[i].fdt->fds[d]->fd);
			printf(" ->");
			for (size_t i = 0; i < np; i++)
				for (size_t d = 0; d < p[i].fdt->n_fds; d++)
					if (p[i].fdt->fds[d]->file == g)
						printf(" %d:fd%d", p[i].task->pid,
						       p[i].fdt->fds[d]->fd);
			if (r->data_size)
				printf("  (%" PRIu64 " bytes unread)",
				       r->data_size);
			putchar('\n');
		}
	}
	for (size_t s = 0; s < files->n_shmem; s++) {
		size_t maps = 0;
		for (size_t i = 0; i < np; i++)
			for (size_t v = 0; v < p[i].mm->n_vmas; v++)
				maps += p[i].mm->vmas[v]->has_shmem &&
					p[i].mm->vmas[v]->shmem == (int)s;
		printf("%sshared memory object %zu (%s, %" PRIu64 " bytes): "
		       "%zu mapping%s\n",
		       s ? "" : "\n", s,
		       files->shmem[s]->name ? files->shmem[s]->name
					     : "anonymous",
		       files->shmem[s]->size, maps, maps == 1 ? "" : "s");
	}
}

static void show_text(const Capcr__Inventory *inv, const Capcr__Files *files,
		      const struct proc_image *p, size_t np)
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
		const Capcr__CapSpace *cs = p[i].fdt->capspace;
		for (size_t d = 0; d < p[i].fdt->n_fds; d++) {
			const Capcr__Fd *fd = p[i].fdt->fds[d];
			const Capcr__File *f = files->files[fd->file];
			char badge[32] = "-", prov[300] = "";
			for (size_t c = 0; cs && c < cs->n_caps; c++)
				if (cs->caps[c]->fd == fd->fd) {
					struct capcr_cap_entry e;
					memcpy(&e, cs->caps[c]->entry.data,
					       sizeof(e));
					snprintf(badge, sizeof(badge),
						 "%#" PRIx64, cs->caps[c]->badge);
					snprintf(prov, sizeof(prov), " (%s)",
						 e.path[0] ? e.path : "");
				}
			printf("    %4d  %-8s  file %-3u  badge %-14s %s%s%s\n",
			       fd->fd, file_kind_name(f->kind), fd->file, badge,
			       f->path ? f->path : "",
			       f->has_external_fd ? " [outside the image: "
						    "re-attached at restore]"
						  : "",
			       prov);
		}
	}
}

static void show_json(const Capcr__Inventory *inv, const Capcr__Files *files,
		      const struct proc_image *p, size_t np)
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
			const Capcr__CapSpace *cs = p[i].fdt->capspace;
			for (size_t c = 0; cs && c < cs->n_caps; c++)
				if (cs->caps[c]->fd == fd->fd)
					json_uint(&j, "badge", cs->caps[c]->badge);
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
		} else {
			printf("usage: capcr show [--json] -D DIR\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: capcr show [--json] -D DIR\n");
		return 2;
	}
	struct image img;
	Capcr__Inventory *inv = NULL;
	Capcr__Files *files = NULL;
	struct proc_image *p = NULL;
	if (image_open(&img, dir, &inv, why, sizeof(why)) < 0 ||
	    image_verify_finish(&img, why, sizeof(why)) < 0)
		goto out;
	files = image_read_msg(&img, "files.img", &capcr__files__descriptor,
			       why, sizeof(why));
	p = calloc(inv->n_pids, sizeof(*p));
	if (!files || !p)
		goto out;
	for (size_t i = 0; i < inv->n_pids; i++) {
		char name[64];
		snprintf(name, sizeof(name), "core-%d.img", inv->pids[i]);
		p[i].task = image_read_msg(&img, name, &capcr__task__descriptor,
					   why, sizeof(why));
		snprintf(name, sizeof(name), "mm-%d.img", inv->pids[i]);
		p[i].mm = image_read_msg(&img, name, &capcr__mm__descriptor,
					 why, sizeof(why));
		snprintf(name, sizeof(name), "fds-%d.img", inv->pids[i]);
		p[i].fdt = image_read_msg(&img, name,
					  &capcr__fd_table__descriptor, why,
					  sizeof(why));
		if (!p[i].task || !p[i].mm || !p[i].fdt ||
		    (!p[i].task->n_threads && !p[i].task->zombie)) {
			if (!why[0])
				snprintf(why, sizeof(why), "%s is inconsistent",
					 name);
			goto out;
		}
		for (size_t d = 0; d < p[i].fdt->n_fds; d++)
			if (p[i].fdt->fds[d]->file >= files->n_files) {
				snprintf(why, sizeof(why), "fds image names a "
							   "file that is not there");
				goto out;
			}
	}
	if (json)
		show_json(inv, files, p, inv->n_pids);
	else
		show_text(inv, files, p, inv->n_pids);
	rc = 0;
out:
	if (rc)
		capcr_err("%s", why[0] ? why : "cannot read the image");
	for (size_t i = 0; p && inv && i < inv->n_pids; i++) {
		if (p[i].task)
			capcr__task__free_unpacked(p[i].task, NULL);
		if (p[i].mm)
			capcr__mm__free_unpacked(p[i].mm, NULL);
		if (p[i].fdt)
			capcr__fd_table__free_unpacked(p[i].fdt, NULL);
	}
	free(p);
	if (files)
		capcr__files__free_unpacked(files, NULL);
	if (inv)
		capcr__inventory__free_unpacked(inv, NULL);
	image_close(&img);
	return rc;
}
