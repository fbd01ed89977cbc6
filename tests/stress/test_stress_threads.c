/*
 * test_stress_threads.c — eight threads compile and launch kernels at once on one shared
 * context (so one shared kernel cache), share one generic kernel handle and one input
 * array, while the CPU thread count keeps changing between launches.
 *
 * Its real job is to run under ThreadSanitizer (the FUSOR_SANITIZE_THREAD build; CI runs
 * it there): every result is also checked exactly, so it is an ordinary test elsewhere.
 *
 * The pool: launches of fewer than HOST_PARALLEL_MIN_ELEMENTS elements run on the calling
 * thread, larger ones on the pool.  libgomp (the OpenMP fallback the pool uses when it is
 * busy) is not TSan-instrumented, so its joins are invisible to TSan and would be reported
 * as races: under TSan only thread 0 launches large arrays (the pool is then never busy
 * and never falls back to OpenMP) and tests/tsan.supp silences libgomp should it be used
 * anyway; the other seven threads launch small arrays.  Elsewhere every thread also
 * launches large arrays, so the pool's busy fallback runs concurrently too.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fusor.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

enum { NTHREADS = 8, ITERS = 24, SMALL = 1000, LARGE = 40000 };

static fusor_context *ctx;
static fusor_kernel *shared_generic; /* one handle, launched from every thread */
static fusor_array *shared_x;        /* one input array, bound from every thread */
static double xdata[LARGE];

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int failures;
static char first_failure[512];

static void fail(int t, int it, const char *what, fusor_status st) {
    pthread_mutex_lock(&fail_lock);
    if (!failures++)
        snprintf(first_failure, sizeof first_failure, "thread %d iteration %d: %s: %s: %s", t, it,
                 what, fusor_status_name(st), fusor_last_error());
    pthread_mutex_unlock(&fail_lock);
}

static const char *const sources[] = {
    "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }",
    "kernel stats(x: f64[]) -> (s: f64, m: f64) { s = sum(x); m = max(x) }",
    "kernel norm(x: f64[]) -> (y: f64[]) { y = x * 2 - mean(x) }",
};

/* One launch of kernel kind `kind` on n elements, checked exactly (the data are small
 * integers, so every result is exact whatever the order of additions). */
static void one_launch(int t, int it, int kind, int64_t n) {
    fusor_kernel *k = NULL;
    fusor_args *a = NULL;
    fusor_array *x = NULL, *y = NULL, *z = NULL;
    static _Thread_local double ybuf[LARGE];
    fusor_status st;
    if (kind == 3) {
        k = shared_generic;
        st = FUSOR_OK;
    } else {
        st = fusor_kernel_compile(ctx, sources[kind], "stress.fu", NULL, &k);
    }
    if (st != FUSOR_OK) {
        fail(t, it, "compile", st);
        return;
    }
    if ((st = fusor_args_create(k, &a)) != FUSOR_OK)
        goto out;
    if ((st = fusor_array_wrap(ctx, xdata, FUSOR_F64, 1, &n, NULL, &x)) != FUSOR_OK)
        goto out;
    if (kind == 0) {
        for (int64_t i = 0; i < n; i++)
            ybuf[i] = (double)((i + t) % 5);
        if ((st = fusor_array_wrap(ctx, ybuf, FUSOR_F64, 1, &n, NULL, &y)) != FUSOR_OK)
            goto out;
        if ((st = fusor_args_set_f64(a, "a", 2.0)) != FUSOR_OK)
            goto out;
        if ((st = fusor_args_set_array(a, "x", it % 2 && n == SMALL ? shared_x : x)) != FUSOR_OK)
            goto out;
        if ((st = fusor_args_set_array(a, "y", y)) != FUSOR_OK)
            goto out;
    } else if (kind == 3) {
        /* a generic ufunc: each thread specialises it for its own scalar dtype */
        static const fusor_dtype dts[4] = {FUSOR_F64, FUSOR_I32, FUSOR_F32, FUSOR_I64};
        fusor_dtype dt = dts[t % 4];
        unsigned char v[8] = {0};
        if (dt == FUSOR_F64)
            *(double *)v = 3;
        if (dt == FUSOR_F32)
            *(float *)v = 3;
        if (dt == FUSOR_I32)
            *(int32_t *)v = 3;
        if (dt == FUSOR_I64)
            *(int64_t *)v = 3;
        if ((st = fusor_args_set_array(a, "a", x)) != FUSOR_OK)
            goto out;
        if ((st = fusor_args_set_scalar(a, "b", dt, v)) != FUSOR_OK)
            goto out;
    } else {
        if ((st = fusor_args_set_array(a, "x", x)) != FUSOR_OK)
            goto out;
    }
    if (it % 3 == 0)
        fusor_set_num_threads((t + it) % 4); /* 0 restores the default */
    if ((st = fusor_launch(k, a)) != FUSOR_OK)
        goto out;

    if (kind == 1) {
        double s = 0, m = 0, got_s, got_m;
        for (int64_t i = 0; i < n; i++) {
            s += xdata[i];
            if (xdata[i] > m)
                m = xdata[i];
        }
        if ((st = fusor_args_get_f64(a, "s", &got_s)) != FUSOR_OK)
            goto out;
        if ((st = fusor_args_get_f64(a, "m", &got_m)) != FUSOR_OK)
            goto out;
        if (got_s != s || got_m != m)
            fail(t, it, "stats: wrong result", FUSOR_OK);
        goto out;
    }
    const char *out = kind == 0 ? "z" : kind == 3 ? "out" : "y";
    if ((st = fusor_args_get_array(a, out, &z)) != FUSOR_OK)
        goto out;
    const double *zd = fusor_array_data(z);
    double mean = 0;
    for (int64_t i = 0; kind == 2 && i < n; i++)
        mean += xdata[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double want = kind == 0   ? 2 * xdata[i] + ybuf[i]
                      : kind == 3 ? xdata[i] * 3 + 1
                                  : xdata[i] * 2 - mean;
        if (zd[i] != want) {
            fail(t, it, "wrong element", FUSOR_OK);
            break;
        }
    }
out:
    if (st != FUSOR_OK)
        fail(t, it, "launch", st);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_args_destroy(a);
    if (k != shared_generic)
        fusor_kernel_destroy(k);
}

/* A kernel only this thread compiles: eight real code generations and JIT links at once. */
static void own_kernel(int t) {
    char src[160];
    snprintf(src, sizeof src, "kernel own%d(x: f64[]) -> (y: f64[]) { y = x * %d + %d }", t, t + 2,
             t);
    fusor_kernel *k = NULL;
    fusor_args *a = NULL;
    fusor_array *y = NULL;
    fusor_status st = fusor_kernel_compile(ctx, src, "own.fu", NULL, &k);
    if (st == FUSOR_OK)
        st = fusor_args_create(k, &a);
    if (st == FUSOR_OK)
        st = fusor_args_set_array(a, "x", shared_x);
    if (st == FUSOR_OK)
        st = fusor_launch(k, a);
    if (st == FUSOR_OK)
        st = fusor_args_get_array(a, "y", &y);
    if (st != FUSOR_OK) {
        fail(t, -1, "own kernel", st);
    } else {
        const double *yd = fusor_array_data(y);
        for (int i = 0; i < SMALL; i++)
            if (yd[i] != xdata[i] * (t + 2) + t) {
                fail(t, -1, "own kernel: wrong element", FUSOR_OK);
                break;
            }
    }
    fusor_array_destroy(y);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
}

static pthread_barrier_t start;

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    own_kernel(t);
    for (int it = 0; it < ITERS; it++) {
        int large = UNDER_TSAN ? t == 0 && it % 2 == 0 : it % 4 == 1;
        one_launch(t, it, (t + it) % 4, large ? LARGE : SMALL);
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < LARGE; i++)
        xdata[i] = (double)(i % 7);
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE(fusor_ufunc_create(ctx, "a * b + 1", &shared_generic) == FUSOR_OK);
    /* One compilation before the threads start: LLVM creates its statics lazily, guarded
     * by atomics in LLVM's own (uninstrumented) code that TSan cannot see, so a first use
     * from several threads at once is reported as a race in llvm:: frames. */
    fusor_kernel *warm = NULL;
    REQUIRE(fusor_kernel_compile(ctx, sources[0], "warm.fu", NULL, &warm) == FUSOR_OK);
    fusor_kernel_destroy(warm);
    int64_t n = SMALL;
    REQUIRE(fusor_array_wrap(ctx, xdata, FUSOR_F64, 1, &n, NULL, &shared_x) == FUSOR_OK);
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        REQUIRE(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_MSG(failures == 0, "%d failures; the first: %s", failures, first_failure);
    check_passed += NTHREADS * (ITERS + 1) - failures;
    fusor_set_num_threads(0);
    fusor_array_destroy(shared_x);
    fusor_kernel_destroy(shared_generic);
    fusor_context_destroy(ctx);
    pthread_barrier_destroy(&start);
    return check_done();
}
