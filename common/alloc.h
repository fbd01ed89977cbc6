/*
 * alloc.h — the one allocator hook every allocation in the library goes through.
 *
 * Tests install a failing allocator (fail the k-th allocation) to prove that every
 * allocation failure ends in a clean status; everything else just calls fu_malloc.
 */
#ifndef FUSOR_ALLOC_H
#define FUSOR_ALLOC_H

#include <stddef.h>

void *fu_malloc(size_t n);
void *fu_calloc(size_t n, size_t size);
void *fu_realloc(void *p, size_t n);
void fu_free(void *p);
char *fu_strdup(const char *s);
/* 64-byte aligned memory for array data; free with fu_aligned_free. */
void *fu_aligned_alloc(size_t n);
void fu_aligned_free(void *p);

/* Test hook: after `countdown` more successful allocations, every allocation fails
 * until reset with a negative countdown.  Not thread-safe; tests only. */
void fu_alloc_fail_after(long countdown);

#endif
