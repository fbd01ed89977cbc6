/*
 * bench_gpu.c — GPU benchmarks for scripts/device-run.sh (built with the tests, not a
 * test itself).  Each case prints bytes moved, the best time of several runs, GB/s and
 * the fraction of the device's own device-to-device copy bandwidth measured first (the
 * yardstick, as the CPU benchmarks use the STREAM copy).  Device-resident kernels show
 * what fusion reaches on the GPU; host-array launches show what the copies cost; the
 * CPU target on the same arrays is the comparison.  Then the cost of a launch itself, on
 * 1,000-element device arrays: fusor_launch (synchronous), queued launches, a prepared
 * launch (a CUDA Graph replay) and a two-kernel sequence, as the host's time per launch
 * and the time per launch until the GPU is done.  Ends with the tables (also written to
 * the file named by the first argument, when given).
 *
 * Without a usable GPU it says why and exits 0.
 */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusor.h"

#define REPEAT 10

static fusor_context *ctx;
static double copy_gbs;

typedef struct row {
    char name[64], where[16];
    double mb, ms, gbs; /* ms: per launch queued back to back (GB/s from it) */
    double sync_ms;     /* the best single synchronous launch, its overhead included */
} row;
static row rows[32];
static int nrows;

typedef struct lat {
    char name[64];
    double host_us, done_us; /* the host's time per launch; per launch until done */
} lat;
static lat lats[16];
static int nlats;

static void add_lat(const char *name, double host_s, double done_s, int n) {
    lat *l = &lats[nlats++];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->host_us = 1e6 * host_s / n;
    l->done_us = 1e6 * done_s / n;
    printf("%-44s host %7.2f us/launch, done %7.2f us/launch\n", name, l->host_us, l->done_us);
    fflush(stdout);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* s: seconds per run queued back to back; sync_s: the best synchronous run. */
static void add_row(const char *name, const char *where, double bytes, double s, double sync_s) {
    row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->where, sizeof r->where, "%s", where);
    r->mb = bytes / 1e6;
    r->ms = s * 1e3;
    r->sync_ms = sync_s * 1e3;
    r->gbs = bytes / s / 1e9;
    printf("%-34s %-6s %10.1f MB %9.3f ms %9.3f ms sync %8.1f GB/s\n", name, where, r->mb, r->ms,
           r->sync_ms, r->gbs);
    fflush(stdout);
}

static fusor_array *make(fusor_memory mem, fusor_dtype dt, int64_t n, double v) {
    fusor_array *a = NULL, *h = NULL;
    if (fusor_array_create(ctx, dt, 1, &n, &h))
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        double x = v + (double)(i % 1000) * 1e-3;
        if (dt == FUSOR_F32)
            ((float *)fusor_array_data(h))[i] = (float)x;
        else
            ((double *)fusor_array_data(h))[i] = x;
    }
    if (mem == FUSOR_MEMORY_HOST)
        return h;
    if (fusor_array_create_on(ctx, mem, 0, dt, 1, &n, &a) || fusor_array_copy(a, h, NULL)) {
        fprintf(stderr, "bench_gpu: %s\n", fusor_last_error());
        exit(1);
    }
    fusor_array_destroy(h);
    return a;
}

static void must(fusor_status st) {
    if (st != FUSOR_OK) {
        fprintf(stderr, "bench_gpu: %s\n", fusor_last_error());
        exit(1);
    }
}

/* Per launch of REPEAT launches queued back to back on a stream, then synchronised (what
 * the GPU sustains: each launch's host cost overlaps the kernel before it). */
static double time_queued(fusor_kernel *k, fusor_args *a) {
    fusor_stream *s;
    must(fusor_stream_create(ctx, &s));
    must(fusor_launch_async(k, a, s));
    must(fusor_stream_synchronize(s));
    double t0 = now();
    for (int r = 0; r < REPEAT; r++)
        must(fusor_launch_async(k, a, s));
    must(fusor_stream_synchronize(s));
    double t = (now() - t0) / REPEAT;
    fusor_stream_destroy(s);
    return t;
}

/* Best of REPEAT launches (after one warm-up that compiles and loads). */
static double time_launch(fusor_kernel *k, fusor_args *a) {
    double best = 1e30;
    for (int r = 0; r <= REPEAT; r++) {
        double t0 = now();
        must(fusor_launch(k, a));
        double t = now() - t0;
        if (r && t < best)
            best = t;
    }
    return best;
}

/* As time_launch, but a launch that takes more than 20 ms is timed once (a slow form of a
 * sweep, whose exact figure matters less than the time it would take). */
static double time_launch_bounded(fusor_kernel *k, fusor_args *a) {
    must(fusor_launch(k, a));
    double t0 = now();
    must(fusor_launch(k, a));
    double t = now() - t0;
    return t > 0.02 ? t : time_launch(k, a);
}

static void bench_copy(int64_t n) {
    fusor_array *a = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, n, 1),
                *b = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, n, 2);
    double best = 1e30;
    for (int r = 0; r <= REPEAT; r++) {
        double t0 = now();
        fusor_array_copy(b, a, NULL);
        double t = now() - t0;
        if (r && t < best)
            best = t;
    }
    fusor_stream *s;
    must(fusor_stream_create(ctx, &s));
    must(fusor_array_copy(b, a, s));
    must(fusor_stream_synchronize(s));
    double t0 = now();
    for (int r = 0; r < REPEAT; r++)
        must(fusor_array_copy(b, a, s));
    must(fusor_stream_synchronize(s));
    double queued = (now() - t0) / REPEAT;
    fusor_stream_destroy(s);
    copy_gbs = 16.0 * (double)n / queued / 1e9;
    add_row("device-to-device copy (yardstick)", "gpu", 16.0 * (double)n, queued, best);
    fusor_array *h = make(FUSOR_MEMORY_HOST, FUSOR_F64, n, 1),
                *p = make(FUSOR_MEMORY_PINNED, FUSOR_F64, n, 1);
    for (int pinned = 0; pinned < 2; pinned++) {
        best = 1e30;
        for (int r = 0; r <= 3; r++) {
            double t0 = now();
            fusor_array_copy(a, pinned ? p : h, NULL);
            double t = now() - t0;
            if (r && t < best)
                best = t;
        }
        add_row(pinned ? "host->device copy, pinned" : "host->device copy, pageable (staged)",
                "link", 8.0 * (double)n, best, best);
    }
    fusor_array_destroy(a);
    fusor_array_destroy(b);
    fusor_array_destroy(h);
    fusor_array_destroy(p);
}

static void bench_kernel(const char *name, const char *src, fusor_dtype dt, int64_t n, int narr,
                         double bytes_per_elem, fusor_memory mem, fusor_target target) {
    fusor_kernel *k;
    if (fusor_kernel_compile(ctx, src, "bench.fu", NULL, &k)) {
        fprintf(stderr, "bench_gpu: %s\n", fusor_last_error());
        exit(1);
    }
    fusor_context_set_target(ctx, target);
    fusor_args *a;
    fusor_args_create(k, &a);
    fusor_array *in[4] = {0};
    const char *names[4] = {"x", "y", "w", "v"};
    for (int i = 0; i < narr; i++) {
        in[i] = make(mem, dt, n, 1.0 + i);
        fusor_args_set_array(a, names[i], in[i]);
    }
    if (strstr(src, "a: f"))
        fusor_args_set_f64(a, "a", 0.5);
    double sync = time_launch(k, a), queued = mem == FUSOR_MEMORY_DEVICE ? time_queued(k, a) : sync;
    add_row(name, target == FUSOR_TARGET_CPU ? "cpu" : "gpu", bytes_per_elem * (double)n, queued,
            sync);
    fusor_args_destroy(a);
    for (int i = 0; i < narr; i++)
        fusor_array_destroy(in[i]);
    fusor_kernel_destroy(k);
    fusor_context_set_target(ctx, FUSOR_TARGET_AUTO);
}

/* A kernel with an axis reduction over an r x c f64 device array, moving `per_elem` bytes
 * per element of x plus one f64 per row (or column, for axis=0) written. */
static void bench_axis(const char *name, const char *src, int64_t r, int64_t c, double per_elem) {
    fusor_kernel *k;
    must(fusor_kernel_compile(ctx, src, "bench.fu", NULL, &k));
    int64_t shape[2] = {r, c};
    fusor_array *h = NULL, *x = NULL;
    must(fusor_array_create(ctx, FUSOR_F64, 2, shape, &h));
    for (int64_t i = 0; i < r * c; i++)
        ((double *)fusor_array_data(h))[i] = 1.0 + (double)(i % 1000) * 1e-3;
    must(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &x));
    must(fusor_array_copy(x, h, NULL));
    fusor_args *a;
    must(fusor_args_create(k, &a));
    must(fusor_args_set_array(a, "x", x));
    double sync = time_launch(k, a), queued = time_queued(k, a);
    int64_t results = strstr(src, "axis=0") ? c : r;
    add_row(name, "gpu", per_elem * (double)(r * c) + 8.0 * (double)results, queued, sync);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(h);
    fusor_kernel_destroy(k);
}

/* A whole-array sum's kernels alone: the best synchronous launch over 2n elements minus
 * the best over n (what a launch costs besides, its three kernels' start and the result's
 * read-back, cancels).  Then the same launch over n with each block and grid size of a
 * sweep (fusor_args_set_gpu_shape), printed as a table of GB/s: where the automatic
 * shape (block 256, 1024 blocks) stands among the others. */
static double sum_fixed_queued_us, sum_fixed_sync_us;
static void bench_sum_shapes(int64_t n) {
    const char *src = "kernel k(x: f64[]) -> (s: f64) { s = sum(x) }";
    fusor_kernel *k;
    must(fusor_kernel_compile(ctx, src, "bench.fu", NULL, &k));
    fusor_array *x1 = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, n, 1),
                *x2 = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, 2 * n, 1);
    fusor_args *a;
    must(fusor_args_create(k, &a));
    must(fusor_args_set_array(a, "x", x2));
    double t2 = time_launch(k, a), q2 = time_queued(k, a);
    must(fusor_args_set_array(a, "x", x1));
    double t1 = time_launch(k, a), q1 = time_queued(k, a);
    add_row("sum f64, kernels alone (2n minus n)", "gpu", 8.0 * (double)n, q2 - q1, t2 - t1);
    /* what is left of a launch of n once its streaming is taken out */
    sum_fixed_queued_us = 1e6 * (2 * q1 - q2);
    sum_fixed_sync_us = 1e6 * (2 * t1 - t2);
    printf("sum f64: fixed cost per launch %.1f us queued, %.1f us synchronous\n",
           sum_fixed_queued_us, sum_fixed_sync_us);
    static const int blocks[] = {0, 128, 256, 512, 1024}, grids[] = {0, 264, 528, 1024, 2112, 4224, 8448};
    enum { NB = sizeof blocks / sizeof *blocks, NG = sizeof grids / sizeof *grids };
    printf("\nsum f64 over %lld elements, GB/s of one synchronous launch (block down, grid across; "
           "0: automatic)\n%6s", (long long)n, "");
    for (int g = 0; g < NG; g++)
        printf(" %7d", grids[g]);
    printf("\n");
    for (int b = 0; b < NB; b++) {
        printf("%6d", blocks[b]);
        for (int g = 0; g < NG; g++) {
            must(fusor_args_set_gpu_shape(a, blocks[b], grids[g]));
            printf(" %7.0f", 8.0 * (double)n / time_launch(k, a) / 1e9);
            fflush(stdout);
        }
        printf("\n");
    }
    fusor_args_destroy(a);
    fusor_array_destroy(x1);
    fusor_array_destroy(x2);
    fusor_kernel_destroy(k);
}

/* Axis reductions in each form (FUSOR_GPU_AXIS_FORM, scheduler/gpuaxis.h) and the one the
 * shape picks, over arrays of about n elements from many short rows to a few long ones,
 * reducing the rows (axis=1, the innermost) and the columns (axis=0): GB/s of the best
 * synchronous launch, to place the thresholds between the forms (gpuaxis.h). */
static void bench_axis_forms(int64_t n) {
    static const int64_t lens[] = {8, 64, 256, 1024, 4096, 16384, 262144, 4194304};
    static const char *const forms[] = {"", "thread", "threadsplit", "block", "split"};
    printf("\naxis reductions over %lld f64 elements (device), GB/s of one synchronous launch\n",
           (long long)n);
    printf("%-6s %9s %9s %8s %8s %8s %8s %8s\n", "axis", "results", "length", "auto", "thread",
           "thrsplit", "block", "split");
    for (int ax = 1; ax >= 0; ax--) {
        char src[128];
        snprintf(src, sizeof src, "kernel k(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=%d) }",
                 ax);
        fusor_kernel *k;
        must(fusor_kernel_compile(ctx, src, "bench.fu", NULL, &k));
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
            int64_t len = lens[l], other = n / len;
            int64_t shape[2] = {ax ? other : len, ax ? len : other};
            fusor_array *x, *h;
            must(fusor_array_create(ctx, FUSOR_F64, 2, shape, &h));
            for (int64_t i = 0; i < other * len; i++)
                ((double *)fusor_array_data(h))[i] = 1.0 + (double)(i % 1000) * 1e-3;
            must(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &x));
            must(fusor_array_copy(x, h, NULL));
            fusor_array_destroy(h);
            fusor_args *a;
            must(fusor_args_create(k, &a));
            must(fusor_args_set_array(a, "x", x));
            printf("%-6d %9lld %9lld", ax, (long long)other, (long long)len);
            for (int f = 0; f < 5; f++) {
                if (*forms[f])
                    setenv("FUSOR_GPU_AXIS_FORM", forms[f], 1);
                double t = time_launch_bounded(k, a);
                unsetenv("FUSOR_GPU_AXIS_FORM");
                printf(" %8.0f", (8.0 * (double)(other * len) + 8.0 * (double)other) / t / 1e9);
                fflush(stdout);
            }
            printf("\n");
            fusor_args_destroy(a);
            fusor_array_destroy(x);
        }
        fusor_kernel_destroy(k);
    }
}

/* Seconds for `launches` synchronous launches of k (prepared p when not NULL), the best
 * of three rounds (the machine's noise is one-sided, as probe_driver's rounds assume). */
static double best_sync_rounds(fusor_kernel *k, fusor_args *a, fusor_prepared *p, int launches) {
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int i = 0; i < launches; i++)
            must(p ? fusor_prepared_launch(p) : fusor_launch(k, a));
        double t = now() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* The cost of launching: tiny device arrays, so that the work is nothing.  Synchronous rows
 * and the first queued one are the best of three rounds of LAUNCHES. */
static void bench_latency(void) {
    enum { N = 1000, LAUNCHES = 2000 };
    const char *src = "kernel k(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }";
    fusor_kernel *k;
    must(fusor_kernel_compile(ctx, src, "latency.fu", NULL, &k));
    fusor_array *x = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, N, 1), *y = make(FUSOR_MEMORY_DEVICE,
                                                                          FUSOR_F64, N, 2);
    fusor_array *z = make(FUSOR_MEMORY_DEVICE, FUSOR_F64, N, 0);
    fusor_args *a, *b;
    must(fusor_args_create(k, &a));
    must(fusor_args_set_f64(a, "a", 0.5));
    must(fusor_args_set_array(a, "x", x));
    must(fusor_args_set_array(a, "y", y));
    must(fusor_args_set_array(a, "z", z));
    must(fusor_args_create(k, &b)); /* the second kernel of a step: y = 0.5 z + x */
    must(fusor_args_set_f64(b, "a", 0.5));
    must(fusor_args_set_array(b, "x", z));
    must(fusor_args_set_array(b, "y", x));
    must(fusor_args_set_array(b, "z", y));
    fusor_stream *s;
    must(fusor_stream_create(ctx, &s));
    must(fusor_launch(k, a)); /* compile and load */
    double t0, t1, best = best_sync_rounds(k, a, NULL, LAUNCHES), best_host = 1e30,
                   best_done = 1e30;
    add_lat("fusor_launch (synchronous)", best, best, LAUNCHES);
    for (int r = 0; r < 3; r++) {
        t0 = now();
        for (int i = 0; i < LAUNCHES; i++)
            must(fusor_launch_async(k, a, s));
        t1 = now();
        must(fusor_stream_synchronize(s));
        double done = now() - t0;
        best_host = t1 - t0 < best_host ? t1 - t0 : best_host;
        best_done = done < best_done ? done : best_done;
    }
    add_lat("fusor_launch_async on a stream", best_host, best_done, LAUNCHES);
    fusor_prepared *p, *q;
    must(fusor_prepare(k, a, &p));
    must(fusor_prepare(k, b, &q));
    must(fusor_prepared_launch(p)); /* captures the graph */
    best = best_sync_rounds(k, a, p, LAUNCHES);
    add_lat("prepared launch (graph replay), synchronous", best, best, LAUNCHES);
    t0 = now();
    for (int i = 0; i < LAUNCHES; i++)
        must(fusor_prepared_launch_async(p, s));
    t1 = now();
    must(fusor_stream_synchronize(s));
    add_lat("prepared launch, queued", t1 - t0, now() - t0, LAUNCHES);
    fusor_sequence *seq;
    must(fusor_sequence_create(ctx, &seq));
    must(fusor_sequence_add(seq, p));
    must(fusor_sequence_add(seq, q));
    must(fusor_sequence_launch(seq)); /* members one by one */
    must(fusor_sequence_launch(seq)); /* captured whole */
    t0 = now();
    for (int i = 0; i < LAUNCHES; i++)
        must(fusor_sequence_launch_async(seq, s));
    t1 = now();
    must(fusor_stream_synchronize(s));
    add_lat("two-kernel sequence (one graph), queued", t1 - t0, now() - t0, LAUNCHES);
    /* A synchronous launch with a scalar output: its kernel writes it into pinned memory. */
    fusor_kernel *ks;
    must(fusor_kernel_compile(ctx, "kernel s(x: f64[]) -> (t: f64) { t = sum(x) }", "sum.fu", NULL,
                              &ks));
    fusor_args *as;
    must(fusor_args_create(ks, &as));
    must(fusor_args_set_array(as, "x", x));
    must(fusor_launch(ks, as));
    best = best_sync_rounds(ks, as, NULL, LAUNCHES);
    double got = 0;
    must(fusor_args_get_f64(as, "t", &got));
    if (fabs(got - (N + 1e-3 * (N - 1) * N / 2)) > 1e-9) { /* make's values */
        fprintf(stderr, "bench_gpu: the sum is %.17g\n", got);
        exit(1);
    }
    add_lat("fusor_launch of sum(x) (synchronous, scalar read)", best, best, LAUNCHES);
    fusor_prepared *ps;
    must(fusor_prepare(ks, as, &ps));
    must(fusor_prepared_launch(ps));
    best = best_sync_rounds(ks, as, ps, LAUNCHES);
    add_lat("prepared sum(x), synchronous, scalar read", best, best, LAUNCHES);
    fusor_prepared_destroy(ps);
    fusor_args_destroy(as);
    fusor_kernel_destroy(ks);
    fusor_sequence_destroy(seq);
    fusor_prepared_destroy(p);
    fusor_prepared_destroy(q);
    fusor_stream_destroy(s);
    fusor_args_destroy(a);
    fusor_args_destroy(b);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
}

int main(int argc, char **argv) {
    if (fusor_gpu_status() != FUSOR_OK) {
        printf("SKIP: no GPU benchmarks: %s\n", fusor_last_error());
        return 0;
    }
    if (fusor_context_create(NULL, &ctx))
        return 1;
    int64_t n = argc > 2 ? atoll(argv[2]) : (int64_t)100000000;
    printf("GPU benchmarks, %lld elements per array, best of %d\n", (long long)n, REPEAT);
    char n_text[32];
    snprintf(n_text, sizeof n_text, "%lld", (long long)n);
    bench_copy(n);
    const char *axpy32 = "kernel k(a: f32, x: f32[], y: f32[]) -> (z: f32[]) { z = a * x + y }";
    const char *axpy64 = "kernel k(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }";
    const char *sum64 = "kernel k(x: f64[]) -> (s: f64) { s = sum(x) }";
    const char *fused = "kernel k(a: f32, x: f32[], y: f32[]) -> (z: f32[], m: f64) {"
                        " z = sin(x) * y + a\n m = max(f64(z)) }";
    bench_kernel("axpy f32 (device arrays)", axpy32, FUSOR_F32, n, 2, 12, FUSOR_MEMORY_DEVICE,
                 FUSOR_TARGET_AUTO);
    bench_kernel("axpy f64 (device arrays)", axpy64, FUSOR_F64, n, 2, 24, FUSOR_MEMORY_DEVICE,
                 FUSOR_TARGET_AUTO);
    bench_kernel("sum f64 (device array)", sum64, FUSOR_F64, n, 1, 8, FUSOR_MEMORY_DEVICE,
                 FUSOR_TARGET_AUTO);
    bench_kernel("sin*y+a, max f32 (device arrays)", fused, FUSOR_F32, n, 2, 12,
                 FUSOR_MEMORY_DEVICE, FUSOR_TARGET_AUTO);
    /* Axis reductions (stages on the GPU, scheduler/gpuaxis.h) over a near-square array. */
    int64_t side = (int64_t)sqrt((double)n);
    bench_axis("sum(x, axis=1) f64 (device)",
               "kernel k(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=1) }", side, side, 8);
    bench_axis("sum(x, axis=0) f64 (device)",
               "kernel k(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=0) }", side, side, 8);
    bench_axis("sum(x, axis=1) f64, 64 long rows",
               "kernel k(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=1) }", n / 64, 64, 8);
    bench_axis("x / sum(x, axis=1, keepdims) f64",
               "kernel k(x: f64[n, m]) -> (y: f64[]) { y = x / sum(x, axis=1, keepdims=true) }",
               side, side, 24); /* x read twice, y written */
    bench_kernel("axpy f64 (host arrays, copies)", axpy64, FUSOR_F64, n, 2, 24, FUSOR_MEMORY_HOST,
                 FUSOR_TARGET_GPU);
    bench_kernel("axpy f64 (pinned arrays, copies)", axpy64, FUSOR_F64, n, 2, 24,
                 FUSOR_MEMORY_PINNED, FUSOR_TARGET_GPU);
    bench_kernel("axpy f64 (host arrays)", axpy64, FUSOR_F64, n, 2, 24, FUSOR_MEMORY_HOST,
                 FUSOR_TARGET_CPU);
    bench_kernel("sum f64 (host array)", sum64, FUSOR_F64, n, 1, 8, FUSOR_MEMORY_HOST,
                 FUSOR_TARGET_CPU);

    bench_latency();
    bench_sum_shapes(n);
    bench_axis_forms(n);

    char *mem = NULL;
    if (fusor_memory_describe(&mem) == FUSOR_OK)
        printf("%s", mem);
    fusor_free(mem);
    FILE *out = argc > 1 ? fopen(argv[1], "w") : NULL;
    for (int pass = 0; pass < 2; pass++) {
        FILE *f = pass ? out : stdout;
        if (!f)
            continue;
        fprintf(f, "\n| case | on | MB moved | ms, queued | ms, one synchronous | GB/s | of D2D "
                   "copy |\n");
        fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (int i = 0; i < nrows; i++)
            fprintf(f, "| %s | %s | %.1f | %.3f | %.3f | %.1f | %.0f%% |\n", rows[i].name,
                    rows[i].where, rows[i].mb, rows[i].ms, rows[i].sync_ms, rows[i].gbs,
                    100 * rows[i].gbs / copy_gbs);
        fprintf(f, "\n| launch (1,000 elements, device arrays) | host us/launch | "
                   "us/launch until done |\n");
        fprintf(f, "| --- | ---: | ---: |\n");
        for (int i = 0; i < nlats; i++)
            fprintf(f, "| %s | %.2f | %.2f |\n", lats[i].name, lats[i].host_us, lats[i].done_us);
        fprintf(f,
                "\nA whole-array sum over %s f64 elements: fixed cost per launch (2 t(n) - "
                "t(2n)) %.1f us queued, %.1f us synchronous\n",
                n_text, sum_fixed_queued_us, sum_fixed_sync_us);
    }
    if (out)
        fclose(out);
    fusor_context_destroy(ctx);
    return 0;
}
