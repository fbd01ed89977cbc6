/*
 * alloc.h — the one allocator hook every allocation in the library goes through.
 *
 * Tests install a failing allocator (fail the k-th allocation) to prove that every
 * allocation failure ends in a clean status; everything else just calls fu_malloc.
 * Nothing in fusor's own code calls malloc, calloc, realloc, strdup or free directly
 * (LLVM, hwloc and the OpenMP runtime allocate for themselves; that memory is theirs).
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

/* Test hooks.  The countdown is one atomic shared by all threads, so "the k-th
 * allocation" is the k-th in the order the process makes them; a test that injects
 * failures while other threads allocate gets some failure, not a chosen one.
 *
 * fu_alloc_fail_after: after `countdown` more successful allocations, every allocation
 * fails until reset with a negative countdown.  fu_alloc_fail_once_after: only the one
 * allocation after `countdown` successes fails; later ones succeed again.  Both reset
 * the count of injected failures. */
void fu_alloc_fail_after(long countdown);
void fu_alloc_fail_once_after(long countdown);
/* How many allocations were made to fail since the last fu_alloc_fail_*after call. */
long fu_alloc_failures(void);
/* Blocks allocated with fu_malloc, fu_calloc, fu_realloc(NULL, ..), fu_strdup or
 * fu_aligned_alloc and not yet freed: a leak check that needs no LeakSanitizer. */
long fu_alloc_live(void);

#endif
