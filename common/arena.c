#include "arena.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

struct arena_block {
    arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void arena_init(arena *a) {
    a->head = NULL;
    a->total = 0;
}

void arena_free(arena *a) {
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        fu_free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        if (cap > SIZE_MAX - sizeof(arena_block)) return NULL;
        b = fu_malloc(sizeof(arena_block) + cap);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void *arena_grow(arena *a, void *old, size_t elem, size_t old_n, size_t new_n) {
    if (new_n && elem > SIZE_MAX / new_n) return NULL;
    void *p = arena_alloc(a, elem * new_n);
    if (p && old && old_n) memcpy(p, old, elem * old_n);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }
