/*
 * arena.h — bump allocation for compile-time data.
 *
 * A compilation owns one arena: AST nodes, IR nodes and strings are allocated from it
 * and freed together when the compilation ends.  Allocation failure returns NULL (the
 * caller turns it into FUSOR_ERROR_OUT_OF_MEMORY); nothing is freed individually.
 */
#ifndef FUSOR_ARENA_H
#define FUSOR_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
    size_t total; /* bytes handed out, for limits and statistics */
} arena;

void arena_init(arena *a);
void arena_free(arena *a);
/* Zeroed, 16-byte aligned memory, or NULL when out of memory. */
void *arena_alloc(arena *a, size_t size);
/* Grows an arena array: returns a copy of `old` (old_n elements) with room for new_n. */
void *arena_grow(arena *a, void *old, size_t elem, size_t old_n, size_t new_n);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);

#endif
