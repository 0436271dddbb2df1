/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <inttypes.h>

void json_begin(struct json *j, FILE *out)
{
	j->out = out;
	j->depth = 0;
	j->first[0] = 1;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static int utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80 || (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* A JSON string.  Names and paths are bytes, not text: a byte that is not
 * part of well-formed UTF-8 is written as the code point of the same value
 * (as if Latin-1), so the output is always valid JSON and valid UTF-8. */
static void quote(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = utf8_len(p);
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p == 0x7f || n == 0)
			fprintf(out, "\\u%04x", *p);
		else {
			fwrite(p, 1, (size_t)n, out);
			p += n;
			continue;
		}
		p++;
	}
	fputc('"', out);
}

/* Separator and key for the next member of the current container. */
static void member(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->out);
	j->first[j->depth] = 0;
	if (key) {
		quote(j->out, key);
		fputc(':', j->out);
	}
}

static void open_(struct json *j, const char *key, char c)
{
	member(j, key);
	fputc(c, j->out);
	if (j->depth < 31)
		j->first[++j->depth] = 1;
}

void json_obj_open(struct json *j, const char *key)
{
	open_(j, key, '{');
}

void json_arr_open(struct json *j, const char *key)
{
	open_(j, key, '[');
}

void json_obj_close(struct json *j)
{
	fputc('}', j->out);
	if (j->depth)
		j->depth--;
}

void json_arr_close(struct json *j)
{
	fputc(']', j->out);
	if (j->depth)
		j->depth--;
}

void json_str(struct json *j, const char *key, const char *val)
{
	member(j, key);
	if (val)
		quote(j->out, val);
	else
		fputs("null", j->out);
}

void json_int(struct json *j, const char *key, int64_t val)
{
	member(j, key);
	fprintf(j->out, "%" PRId64, val);
}

void json_uint(struct json *j, const char *key, uint64_t val)
{
	member(j, key);
	fprintf(j->out, "%" PRIu64, val);
}

void json_bool(struct json *j, const char *key, int val)
{
	member(j, key);
	fputs(val ? "true" : "false", j->out);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->out);
}

void json_end(struct json *j)
{
	fputc('\n', j->out);
	fflush(j->out);
}
