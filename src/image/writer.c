/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct slot {
	char *buf;
	size_t len;
	int full; /* handed over, not yet written */
};

struct image_writer {
	struct image_data *d;
	struct slot *s;
	int n;
	int next_fill, next_write; /* ring positions */
	int done, err;
	uint64_t queued;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
};

static void *writer_main(void *arg)
{
	struct image_writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct slot *sl = &w->s[w->next_write];
		while (!sl->full && !w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!sl->full)
			break; /* done and drained */
		pthread_mutex_unlock(&w->mu);
		int r = w->err ? 0 : image_data_put(w->d, sl->buf, sl->len);
		pthread_mutex_lock(&w->mu);
		if (r < 0 && !w->err)
			w->err = r;
		sl->full = 0;
		w->next_write = (w->next_write + 1) % w->n;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct image_writer *image_writer_start(struct image_data *d, size_t bufsize,
					int nbufs)
{
	struct image_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->d = d;
	w->n = nbufs;
	w->s = calloc((size_t)nbufs, sizeof(*w->s));
	for (int i = 0; w->s && i < nbufs; i++)
		if (!(w->s[i].buf = malloc(bufsize)))
			goto fail;
	if (!w->s)
		goto fail;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
		goto fail;
	return w;
fail:
	for (int i = 0; w->s && i < nbufs; i++)
		free(w->s[i].buf);
	free(w->s);
	free(w);
	return NULL;
}

void *image_writer_buffer(struct image_writer *w)
{
	void *b;

	pthread_mutex_lock(&w->mu);
	while (w->s[w->next_fill].full && !w->err)
		pthread_cond_wait(&w->cv, &w->mu);
	b = w->err ? NULL : w->s[w->next_fill].buf;
	pthread_mutex_unlock(&w->mu);
	return b;
}

void image_writer_submit(struct image_writer *w, void *buf, size_t len)
{
	/* Hashed here, while the producer's copy is still in the cache, so
	 * the writing thread only writes (it is the slower of the two). */
	image_data_hash(w->d, buf, len);
	pthread_mutex_lock(&w->mu);
	struct slot *sl = &w->s[w->next_fill];
	sl->len = len;
	sl->full = 1;
	w->queued += len;
	w->next_fill = (w->next_fill + 1) % w->n;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

uint64_t image_writer_queued(const struct image_writer *w)
{
	return w->queued;
}

int image_writer_finish(struct image_writer *w)
{
	int err;

	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	err = w->err;
	for (int i = 0; i < w->n; i++)
		free(w->s[i].buf);
	free(w->s);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
	return err;
}
