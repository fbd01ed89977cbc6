#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static int sb_reserve(strbuf *s, size_t extra) {
    if (s->failed) return -1;
    if (s->len + extra < s->cap) return 0;
    size_t cap = (s->cap ? s->cap * 2 : 256) + extra;
    char *p = fu_realloc(s->p, cap);
    if (!p) {
        s->failed = 1;
        return -1;
    }
    s->p = p;
    s->cap = cap;
    return 0;
}

void sb_printf(strbuf *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s->failed = 1;
        return;
    }
    if (sb_reserve(s, (size_t)n + 1) < 0) return;
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

void sb_append(strbuf *s, const char *text, size_t n) {
    if (sb_reserve(s, n + 1) < 0) return;
    memcpy(s->p + s->len, text, n);
    s->len += n;
    s->p[s->len] = 0;
}

char *sb_take(strbuf *s) {
    if (s->failed) {
        sb_discard(s);
        return NULL;
    }
    if (!s->p) { /* nothing appended: an empty string */
        if (sb_reserve(s, 1) < 0) return NULL;
        s->p[0] = 0;
    }
    char *p = s->p;
    s->p = NULL;
    s->len = s->cap = 0;
    return p;
}

void sb_discard(strbuf *s) {
    fu_free(s->p);
    s->p = NULL;
    s->len = s->cap = 0;
    s->failed = 0;
}
