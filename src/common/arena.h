/* SPDX-License-Identifier: MIT */
/* A bump allocator for the many small objects of one dump or restore
 * (protobuf messages, strings), freed at once at the end. */
#ifndef CAPCR_ARENA_H
#define CAPCR_ARENA_H

#include <stddef.h>

#include <pthread.h>

struct arena_block;
/* Zero-initialised is ready to use.  Allocation is thread-safe; the arrays
 * arena_push grows belong to their caller. */
struct arena {
	struct arena_block *head;
	pthread_mutex_t lock;
};

/* Zeroed memory that lives until arena_free; aborts on exhaustion (the
 * objects are small and few, and a half-built image is useless). */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void *arena_memdup(struct arena *a, const void *p, size_t size);
/* Append one pointer to a growing array (*arr has *n elements). */
void arena_push(struct arena *a, void ***arr, size_t *n, void *item);
void arena_free(struct arena *a);

#define ARENA_NEW(a, type) ((type *)arena_alloc((a), sizeof(type)))

#endif
