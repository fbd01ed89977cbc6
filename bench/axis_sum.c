/*
 * axis_sum.c — sum(x, axis=1) and sum(x, axis=0) of a 4096 x 4096 f64 array by fusor
 * against hand-written C loops in the same process (best of several runs each, one
 * thread and the default thread count).  Prints the times and their ratio; not a test.
 *
 *   fusor_bench_axis_sum [n]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusor.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What a careful C programmer writes without -ffast-math: rows summed in order. */
static void c_rows(int64_t n, const double *x, double *y) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < n; j++)
            s += x[i * n + j];
        y[i] = s;
    }
}

/* Columns: accumulate row after row (the inner loop over j vectorises). */
static void c_cols(int64_t n, const double *x, double *y) {
    memset(y, 0, sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            y[j] += x[i * n + j];
}

static double best_fusor(fusor_kernel *k, fusor_args *a, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (fusor_launch(k, a) != FUSOR_OK) {
            fprintf(stderr, "%s\n", fusor_last_error());
            exit(1);
        }
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

static double best_c(void (*f)(int64_t, const double *, double *), int64_t n, const double *x,
                     double *y, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        f(n, x, y);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 4096;
    int reps = 7;
    double *x = malloc(sizeof(double) * (size_t)(n * n)), *y = malloc(sizeof(double) * (size_t)n);
    double *yc = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n * n; i++)
        x[i] = (double)((i * 7919) % 1000) / 997.0;
    fusor_context *ctx;
    fusor_context_create(NULL, &ctx);
    fusor_context_set_target(ctx, FUSOR_TARGET_CPU);
    const char *src = "kernel r1(x: f64[n, m]) -> (y: f64[n]) { y = sum(x, axis=1) }\n"
                      "kernel r0(x: f64[n, m]) -> (y: f64[m]) { y = sum(x, axis=0) }\n";
    int64_t shape[2] = {n, n}, yshape[1] = {n};
    fusor_array *X, *Y;
    fusor_array_wrap(ctx, x, FUSOR_F64, 2, shape, NULL, &X);
    fusor_array_wrap(ctx, y, FUSOR_F64, 1, yshape, NULL, &Y);
    printf("sum of a %lld x %lld f64 array (%.0f MB), best of %d\n", (long long)n, (long long)n,
           8.0 * (double)(n * n) / 1e6, reps);
    for (int axis = 1; axis >= 0; axis--) {
        fusor_kernel *k;
        if (fusor_kernel_compile(ctx, src, "axis.fu", axis ? "r1" : "r0", &k) != FUSOR_OK) {
            fprintf(stderr, "%s\n", fusor_last_error());
            return 1;
        }
        fusor_args *a;
        fusor_args_create(k, &a);
        fusor_args_set_array(a, "x", X);
        fusor_args_set_array(a, "y", Y);
        double tc = best_c(axis ? c_rows : c_cols, n, x, yc, reps);
        for (int threads = 1; threads <= fusor_default_num_threads(); threads++) {
            fusor_set_num_threads(threads);
            double tf = best_fusor(k, a, reps);
            double maxdiff = 0;
            for (int64_t i = 0; i < n; i++) {
                double d = y[i] - yc[i];
                if (d < 0)
                    d = -d;
                if (d > maxdiff)
                    maxdiff = d;
            }
            printf("  axis=%d  C loop (1 thread) %8.2f ms   fusor (%d thread%s) %8.2f ms   "
                   "fusor/C %.2f   %.1f GB/s   max |diff| %.1e\n",
                   axis, 1e3 * tc, threads, threads == 1 ? "" : "s", 1e3 * tf, tf / tc,
                   8.0 * (double)(n * n) / tf / 1e9, maxdiff);
        }
        fusor_set_num_threads(0);
        fusor_args_destroy(a);
        fusor_kernel_destroy(k);
    }
    fusor_array_destroy(X);
    fusor_array_destroy(Y);
    fusor_context_destroy(ctx);
    free(x), free(y), free(yc);
    return 0;
}
