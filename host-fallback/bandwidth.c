/*
 * bandwidth.c — a STREAM-style copy probe: how many bytes per second this machine moves
 * when every thread of the pool copies its share of an array far larger than the caches.
 *
 * It is the yardstick of every benchmark ("fraction of the copy bandwidth"), so it copies
 * the way a fused kernel does: plain loads and stores (no memcpy, whose non-temporal
 * stores would skip the write-allocate read that compiled loops pay), pages first touched
 * by the thread that later copies them, the best of several repetitions.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"

/* 64 MiB per array: twice the largest L3 of the machines fusor is developed on. */
#define PROBE_ELEMENTS ((int64_t)8 << 20)
#define PROBE_REPEATS  8

typedef struct probe_job {
    double *src, *dst;
    int64_t n;
    int touch; /* first touch instead of copy */
} probe_job;

/* gcc would turn the loop into memcpy; the pattern distribution is switched off here. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
copy_part(double *restrict dst, const double *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i];
}

__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
touch_part(double *restrict a, double *restrict b, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        a[i] = (double)i;
        b[i] = 0;
    }
}

static void probe_worker(void *ctx, int tid, int nthreads) {
    probe_job *j = ctx;
    int64_t lo = j->n * tid / nthreads, hi = j->n * (tid + 1) / nthreads;
    if (j->touch)
        touch_part(j->src + lo, j->dst + lo, hi - lo);
    else
        copy_part(j->dst + lo, j->src + lo, hi - lo);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

fusor_status host_measure_copy_bandwidth(int nthreads, double *bytes_per_second) {
    probe_job j = {.n = PROBE_ELEMENTS, .touch = 1};
    j.src = fu_aligned_alloc(sizeof(double) * (size_t)j.n);
    j.dst = fu_aligned_alloc(sizeof(double) * (size_t)j.n);
    if (!j.src || !j.dst) {
        fu_aligned_free(j.src);
        fu_aligned_free(j.dst);
        return fu_oom("the bandwidth probe's arrays");
    }
    host_parallel(nthreads, probe_worker, &j);
    j.touch = 0;
    double best = 1e30;
    for (int r = 0; r < PROBE_REPEATS; r++) {
        double t0 = seconds();
        host_parallel(nthreads, probe_worker, &j);
        double t = seconds() - t0;
        if (t < best)
            best = t;
    }
    fu_aligned_free(j.src);
    fu_aligned_free(j.dst);
    *bytes_per_second = 2.0 * sizeof(double) * (double)PROBE_ELEMENTS / best;
    return FUSOR_OK;
}
