#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static long fail_countdown = -1;

static int should_fail(void) {
    if (fail_countdown < 0) return 0;
    if (fail_countdown == 0) return 1;
    fail_countdown--;
    return 0;
}

void fu_alloc_fail_after(long countdown) { fail_countdown = countdown; }

void *fu_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *fu_calloc(size_t n, size_t size) {
    return should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *fu_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void fu_free(void *p) { free(p); }

char *fu_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = fu_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void *fu_aligned_alloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

void fu_aligned_free(void *p) { free(p); }
