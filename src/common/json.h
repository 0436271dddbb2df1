/* SPDX-License-Identifier: MIT */
/* A small JSON writer: enough for capcr's machine-readable output, and
 * written by hand because it only ever writes (no parsing needed). */
#ifndef CAPCR_JSON_H
#define CAPCR_JSON_H

#include <stdint.h>
#include <stdio.h>

struct json {
	FILE *out;
	int depth;
	int first[32]; /* per level: no member written yet */
};

void json_begin(struct json *j, FILE *out);
void json_obj_open(struct json *j, const char *key);
void json_obj_close(struct json *j);
void json_arr_open(struct json *j, const char *key);
void json_arr_close(struct json *j);
void json_str(struct json *j, const char *key, const char *val);
void json_int(struct json *j, const char *key, int64_t val);
void json_uint(struct json *j, const char *key, uint64_t val);
void json_bool(struct json *j, const char *key, int val);
void json_null(struct json *j, const char *key);
void json_end(struct json *j);

#endif
