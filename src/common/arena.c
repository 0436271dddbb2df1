/* SPDX-License-Identifier: MIT */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

#define BLOCK_SIZE (64 * 1024)

void *arena_alloc(struct arena *a, size_t size)
{
	pthread_mutex_lock(&a->lock);
	struct arena_block *b = a->head;

	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!b || b->size - b->used < size) {
		size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
		b = malloc(sizeof(*b) + cap);
		if (!b) {
			fprintf(stderr, "capcr: out of memory\n");
			abort();
		}
		b->size = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += size;
	pthread_mutex_unlock(&a->lock);
	memset(p, 0, size);
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_memdup(a, s, strlen(s) + 1) : NULL;
}

void *arena_memdup(struct arena *a, const void *p, size_t size)
{
	void *q = arena_alloc(a, size ? size : 1);
	if (size)
		memcpy(q, p, size);
	return q;
}

void arena_push(struct arena *a, void ***arr, size_t *n, void *item)
{
	/* Grow by doubling inside the arena; old arrays are left behind. */
	if ((*n & (*n - 1)) == 0) {
		size_t cap = *n ? *n * 2 : 4;
		void **na = arena_alloc(a, cap * sizeof(void *));
		if (*n)
			memcpy(na, *arr, *n * sizeof(void *));
		*arr = na;
	}
	(*arr)[(*n)++] = item;
}

void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_block *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}
