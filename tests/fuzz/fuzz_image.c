/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the image reader and validator (src/image/load.h).
 *
 * An input is several image files in one blob, each a record
 *
 *	u8 kind, u32 length (little-endian), length bytes
 *
 * kind 0 inventory.img, 1 files.img, then per process in turn 2 core,
 * 3 mm, 4 fds (the n-th record of a kind is the n-th process's).  Each file
 * goes through image_unpack, the header, magic, format and protobuf
 * checks every image file goes through, and whatever decodes is validated
 * as a whole by image_set_validate, as capcr restore and capcr show do.
 * Seeds: tests/fuzz/mkcorpus.sh packs real dumps this way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/load.h"

#define MAX_PROCS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *decode(int kind, const uint8_t *p, size_t len)
{
	static const ProtobufCMessageDescriptor *const desc[] = {
		&capcr__inventory__descriptor, &capcr__files__descriptor,
		&capcr__task__descriptor, &capcr__mm__descriptor,
		&capcr__fd_table__descriptor,
	};
	char why[512];

	return image_unpack(desc[kind], p, len, "fuzz.img", why, sizeof(why));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_proc procs[MAX_PROCS];
	struct image_set s = { .procs = procs };
	size_t count[5] = { 0 };
	char why[512];

	memset(procs, 0, sizeof(procs));
	while (size >= 5) {
		int kind = data[0] % 5;
		uint32_t len = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
			       (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
		data += 5;
		size -= 5;
		if (len > size)
			len = (uint32_t)size;
		size_t n = count[kind]++;
		void *m = NULL;
		if ((kind < 2 && n == 0) || (kind >= 2 && n < MAX_PROCS))
			m = decode(kind, data, len);
		if (m) {
			switch (kind) {
			case 0:
				s.inv = m;
				break;
			case 1:
				s.files = m;
				break;
			case 2:
				procs[n].task = m;
				break;
			case 3:
				procs[n].mm = m;
				break;
			default:
				procs[n].fdt = m;
				break;
			}
		}
		data += len;
		size -= len;
	}
	/* As image_set_load hands it over: one slot per PID of the
	 * inventory, whatever the files held. */
	if (s.inv)
		s.nprocs = s.inv->n_pids < MAX_PROCS ? s.inv->n_pids : MAX_PROCS;
	image_set_validate(&s, why, sizeof(why));
	for (size_t i = 0; i < MAX_PROCS; i++) {
		if (procs[i].task)
			capcr__task__free_unpacked(procs[i].task, NULL);
		if (procs[i].mm)
			capcr__mm__free_unpacked(procs[i].mm, NULL);
		if (procs[i].fdt)
			capcr__fd_table__free_unpacked(procs[i].fdt, NULL);
	}
	if (s.files)
		capcr__files__free_unpacked(s.files, NULL);
	if (s.inv)
		capcr__inventory__free_unpacked(s.inv, NULL);
	return 0;
}
