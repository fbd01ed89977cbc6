/*
 * strbuf.h — a growable string for building messages and text output.
 *
 * Appends never fail loudly: an allocation failure sets `failed`, later appends do
 * nothing, and sb_take() returns NULL so the caller reports out of memory once.
 */
#ifndef FUSOR_STRBUF_H
#define FUSOR_STRBUF_H

#include <stddef.h>

#include "error.h"

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

void sb_printf(strbuf *s, const char *fmt, ...) FU_PRINTF(2, 3);
void sb_append(strbuf *s, const char *text, size_t n);
/* The finished string (fu_malloc'd, caller frees), or NULL if any append failed. */
char *sb_take(strbuf *s);
void sb_discard(strbuf *s);

#endif
