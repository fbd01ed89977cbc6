/* alloc.c — the allocator hook (alloc.h): libc underneath, failure injection and a count
 * of live blocks on top.  The counters are relaxed atomics: they order nothing, they only
 * have to be exact once the threads that allocate have been joined. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static atomic_long fail_countdown = -1; /* < 0: no injection */
static atomic_int fail_once;            /* the injected failure is a single one */
static atomic_long failures;
static atomic_long live;

static int should_fail(void) {
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    for (;;) {
        if (c < 0)
            return 0;
        /* Claim this allocation's place in the countdown; another thread may race. */
        long next = c > 0 ? c - 1 : atomic_load_explicit(&fail_once, memory_order_relaxed) ? -1 : 0;
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &c, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    if (c > 0)
        return 0;
    atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
    return 1;
}

static void *counted(void *p) {
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void fu_alloc_fail_after(long countdown) {
    atomic_store(&fail_once, 0);
    atomic_store(&failures, 0);
    atomic_store(&fail_countdown, countdown < 0 ? -1 : countdown);
}

void fu_alloc_fail_once_after(long countdown) {
    atomic_store(&fail_once, 1);
    atomic_store(&failures, 0);
    atomic_store(&fail_countdown, countdown < 0 ? -1 : countdown);
}

long fu_alloc_failures(void) { return atomic_load(&failures); }
long fu_alloc_live(void) { return atomic_load(&live); }

void *fu_malloc(size_t n) { return should_fail() ? NULL : counted(malloc(n ? n : 1)); }

void *fu_calloc(size_t n, size_t size) {
    return should_fail() ? NULL : counted(calloc(n ? n : 1, size ? size : 1));
}

void *fu_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    void *q = realloc(p, n ? n : 1);
    return p ? q : counted(q);
}

void fu_free(void *p) {
    if (p)
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    free(p);
}

char *fu_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fu_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Arrays this large get transparent huge pages, as NumPy gives its arrays: a streaming
 * kernel then misses the TLB 512 times less often, which is worth a quarter of its time
 * on machines whose kernel hands huge pages out on request only (THP "madvise"). */
#define HUGE_ARRAY ((size_t)4 << 20)
#define HUGE_PAGE  ((size_t)2 << 20)

void *fu_aligned_alloc(size_t n) {
    if (should_fail())
        return NULL;
    void *p = NULL;
    int huge = n >= HUGE_ARRAY;
    if (posix_memalign(&p, huge ? HUGE_PAGE : 64, n ? n : 64) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (huge) /* advice only: without THP the memory is ordinary pages */
        madvise(p, n / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
    return counted(p);
}

void fu_aligned_free(void *p) { fu_free(p); }
