/*
 * demo.c — the README's main job: price N European options with the Black–Scholes kernel
 * from kernels/std/finance.fu, and compare result and time with the same formula written
 * as a plain C loop.  It runs on the GPU when one is usable, else on the CPU pool.
 *
 *   example_demo [N]        (default 10,000,000 options)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusor.h"

#define CHECK(call)                                                                        \
    do {                                                                                   \
        if ((call) != FUSOR_OK) {                                                          \
            fprintf(stderr, "%s failed: %s\n", #call, fusor_last_error());                 \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static double cnd(double d) { /* the same Abramowitz–Stegun polynomial as the kernel */
    double k = 1 / (1 + 0.2316419 * fabs(d));
    double p = k * (0.319381530 +
                    k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))));
    double w = 1 - 0.3989422804014327 * exp(-0.5 * d * d) * p;
    return d < 0 ? 1 - w : w;
}

static void c_loop(long n, const double *s, const double *k, const double *t, double r, double v,
                   double *call, double *put) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        double st = sqrt(t[i]);
        double d1 = (log(s[i] / k[i]) + (r + 0.5 * v * v) * t[i]) / (v * st);
        double d2 = d1 - v * st;
        double disc = k[i] * exp(-r * t[i]);
        call[i] = s[i] * cnd(d1) - disc * cnd(d2);
        put[i] = disc * (1 - cnd(d2)) - s[i] * (1 - cnd(d1));
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    if (n <= 0) return 1;
    char *src = read_file(FUSOR_SOURCE_DIR "/kernels/std/finance.fu");
    if (!src) {
        fprintf(stderr, "cannot read kernels/std/finance.fu\n");
        return 1;
    }
    double *s = malloc(n * sizeof *s), *k = malloc(n * sizeof *k), *t = malloc(n * sizeof *t);
    double *call = malloc(n * sizeof *call), *put = malloc(n * sizeof *put);
    double *rcall = malloc(n * sizeof *rcall), *rput = malloc(n * sizeof *rput);
    if (!s || !k || !t || !call || !put || !rcall || !rput) return 1;
    srand(42);
    for (long i = 0; i < n; i++) {
        s[i] = 5 + 25 * (rand() / (double)RAND_MAX);
        k[i] = 1 + 99 * (rand() / (double)RAND_MAX);
        t[i] = 0.25 + 9.75 * (rand() / (double)RAND_MAX);
    }
    const double r = 0.02, v = 0.30;

    fusor_context *ctx;
    fusor_kernel *bs;
    fusor_args *args;
    CHECK(fusor_context_create(NULL, &ctx));
    /* The main job runs on the GPU when one is usable, else on every CPU core. */
    if (fusor_gpu_status() == FUSOR_OK) CHECK(fusor_context_set_target(ctx, FUSOR_TARGET_GPU));
    double t0 = now();
    CHECK(fusor_kernel_compile(ctx, src, "kernels/std/finance.fu", "black_scholes", &bs));
    double t_compile = now() - t0;

    int64_t shape[1] = {n};
    fusor_array *as, *ak, *at, *ac, *ap;
    CHECK(fusor_array_wrap(ctx, s, FUSOR_F64, 1, shape, NULL, &as));
    CHECK(fusor_array_wrap(ctx, k, FUSOR_F64, 1, shape, NULL, &ak));
    CHECK(fusor_array_wrap(ctx, t, FUSOR_F64, 1, shape, NULL, &at));
    CHECK(fusor_array_wrap(ctx, call, FUSOR_F64, 1, shape, NULL, &ac));
    CHECK(fusor_array_wrap(ctx, put, FUSOR_F64, 1, shape, NULL, &ap));
    CHECK(fusor_args_create(bs, &args));
    CHECK(fusor_args_set_array(args, "s", as));
    CHECK(fusor_args_set_array(args, "k", ak));
    CHECK(fusor_args_set_array(args, "t", at));
    CHECK(fusor_args_set_f64(args, "r", r));
    CHECK(fusor_args_set_f64(args, "v", v));
    CHECK(fusor_args_set_array(args, "call", ac));
    CHECK(fusor_args_set_array(args, "put", ap));

    double best_f = 1e30, best_c = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        t0 = now();
        CHECK(fusor_launch(bs, args));
        double tf = now() - t0;
        t0 = now();
        c_loop(n, s, k, t, r, v, rcall, rput);
        double tc = now() - t0;
        if (tf < best_f) best_f = tf;
        if (tc < best_c) best_c = tc;
    }
    double maxdiff = 0, total = 0;
    for (long i = 0; i < n; i++) {
        double d = fmax(fabs(call[i] - rcall[i]), fabs(put[i] - rput[i]));
        if (d > maxdiff) maxdiff = d;
        total += call[i];
    }
    printf("Black-Scholes on %ld options (fusor %s, target %s, %d threads)\n", n, fusor_version(),
           fusor_args_last_target(args), fusor_args_last_threads(args));
    printf("  mean call price      %.6f\n", total / n);
    printf("  max |fusor - C loop| %.3g\n", maxdiff);
    printf("  compile              %.1f ms\n", 1e3 * t_compile);
    printf("  fusor                %.2f ms  (%.1f M options/s)\n", 1e3 * best_f, n / best_f / 1e6);
    printf("  plain C loop         %.2f ms  (fusor is %.2fx its speed)\n", 1e3 * best_c,
           best_c / best_f);

    fusor_args_destroy(args);
    fusor_array_destroy(as);
    fusor_array_destroy(ak);
    fusor_array_destroy(at);
    fusor_array_destroy(ac);
    fusor_array_destroy(ap);
    fusor_kernel_destroy(bs);
    fusor_context_destroy(ctx);
    free(src);
    free(s); free(k); free(t); free(call); free(put); free(rcall); free(rput);
    return maxdiff > 1e-9;
}
