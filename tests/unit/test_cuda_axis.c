/*
 * test_cuda_axis.c — kernels with axis reductions on a GPU, end to end against the fake
 * driver: real PTX from codegen (the AXIS stages' fusor_pass0_axis / _axisblk, the STORE
 * stages' pass kernels), loaded by the fake's JIT, and simulated kernels written here from
 * the parameter-block contract of codegen/gpu.h.
 *
 * The simulated kernels read everything from the parameter block and the fake bounds-checks
 * every address, so what is checked is the staged launcher's side (scheduler/staged.c,
 * gpuaxis.c): placement and its reasons, host arrays copied in and results copied back,
 * device arrays used in place, the axis reduction's temporary on the device and read by
 * the next stage, which kernel form and launch shape (and overrides), outputs allocated
 * on the device beside device inputs, prepared launches and streams, and that a failed
 * launch leaves host outputs untouched and the pools empty.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "gpu.h"
#include "scheduler.h"

static fusor_context *ctx;
static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static char *array_at(const unsigned char *pb, int narrays, int i) {
    return (char *)(uintptr_t)pb64(pb, CG_GPU_OFF_ARRAYS(narrays) + 8 * (size_t)i);
}
static int64_t stride_at(const unsigned char *pb, int a, int d) {
    return (int64_t)pb64(pb, CG_GPU_OFF_STRIDES + 8 * ((size_t)a * 8 + (size_t)d));
}

/* Byte offsets of element `flat` of the block's domain for arrays 0..n-1. */
static void unravel(const unsigned char *pb, int n, int64_t flat, int64_t *off) {
    int64_t nd = (int64_t)pb64(pb, CG_GPU_OFF_NDIM);
    for (int a = 0; a < n; a++)
        off[a] = 0;
    for (int64_t d = nd - 1; d >= 0; d--) {
        int64_t ext = (int64_t)pb64(pb, CG_GPU_OFF_SHAPE + 8 * (size_t)d);
        int64_t c = flat % ext;
        flat /= ext;
        for (int a = 0; a < n; a++)
            off[a] += c * stride_at(pb, a, (int)d);
    }
}

/* ------------------------------------------------------------------ simulated kernels */

/* *s = the sum of elements lo..hi-1 (clipped to len) of the axis at byte offset off of x;
 * 0 on an access outside what the launch may touch. */
static int sum_range(const char *x, int64_t off, int64_t lo, int64_t hi, int64_t len,
                     int64_t ax0, double *s) {
    *s = 0;
    for (int64_t j = lo; j < hi && j < len; j++) {
        const double *p = (const double *)(x + off + j * ax0);
        if (!fake_check(p, 8))
            return 0;
        *s += *p;
    }
    return 1;
}

/* Both split forms: the sum of chunk c of result e's axis into rows[e * nch + c] (a row of
 * one raw word, an f64 sum's bits), whichever order the items take on a GPU. */
static void sum_chunks(unsigned char *pb) {
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N), len = (int64_t)pb64(pb, CG_GPU_OFF_AXLEN(2));
    int64_t chunk = (int64_t)pb64(pb, CG_GPU_OFF_AXCHUNK(2));
    int64_t nch = (int64_t)pb64(pb, CG_GPU_OFF_AXNCHUNKS(2));
    int64_t ax0 = (int64_t)pb64(pb, CG_GPU_OFF_AXSTRIDES(2));
    double *rows = (double *)(uintptr_t)pb64(pb, CG_GPU_OFF_PARTIALS);
    char *x = array_at(pb, 2, 0);
    if (nch < 2 || !fake_check(rows, (size_t)(n * nch) * 8)) {
        F.bad_access++;
        return;
    }
    for (int64_t e = 0; e < n; e++) {
        int64_t off[2];
        unravel(pb, 2, e, off);
        for (int64_t c = 0; c < nch; c++)
            if (!sum_range(x, off[0], c * chunk, (c + 1) * chunk, len, ax0, &rows[e * nch + c]))
                return;
    }
}

/* The AXIS stage of both kernels below: sum(x, axis=1); arrays x, then the result. */
static long axis_runs[2], thread_split_runs;
static unsigned last_grid, last_block;
static void axis_sum(unsigned char *pb, unsigned grid, unsigned block, int form) {
    axis_runs[form]++;
    last_grid = grid, last_block = block;
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N), len = (int64_t)pb64(pb, CG_GPU_OFF_AXLEN(2));
    int64_t ax0 = (int64_t)pb64(pb, CG_GPU_OFF_AXSTRIDES(2));
    char *x = array_at(pb, 2, 0), *r = array_at(pb, 2, 1);
    if (!fake_check((void *)(uintptr_t)pb64(pb, CG_GPU_OFF_SLOTS), 16))
        return;
    if (form == 0 && (int64_t)pb64(pb, CG_GPU_OFF_AXNCHUNKS(2)) > 1) { /* threads over chunks */
        thread_split_runs++;
        sum_chunks(pb);
        return;
    }
    for (int64_t e = 0; e < n; e++) {
        int64_t off[2];
        unravel(pb, 2, e, off);
        double s;
        if (!sum_range(x, off[0], 0, len, len, ax0, &s) || !fake_check(r + off[1], 8))
            return;
        *(double *)(r + off[1]) = s;
    }
}
/* The split form: (result, chunk) items into rows, then the fold adds each result's rows
 * in order. */
static long split_runs, fold_runs;
static void axis_split(unsigned char *pb, unsigned grid, unsigned block) {
    (void)grid, (void)block;
    split_runs++;
    sum_chunks(pb);
}
static void axis_fold(unsigned char *pb, unsigned grid, unsigned block) {
    (void)grid, (void)block;
    fold_runs++;
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N), nch = (int64_t)pb64(pb, CG_GPU_OFF_AXNCHUNKS(2));
    const double *rows = (const double *)(uintptr_t)pb64(pb, CG_GPU_OFF_PARTIALS);
    char *r = array_at(pb, 2, 1);
    for (int64_t e = 0; e < n; e++) {
        int64_t off[2];
        unravel(pb, 2, e, off);
        double s = 0;
        for (int64_t c = 0; c < nch; c++)
            s += rows[e * nch + c];
        if (!fake_check(r + off[1], 8))
            return;
        *(double *)(r + off[1]) = s;
    }
}
static long fold_block_runs;
static void axis_fold_block(unsigned char *pb, unsigned grid, unsigned block) {
    fold_block_runs++;
    last_grid = grid, last_block = block;
    axis_fold(pb, grid, block); /* the same sums here: the order differs only on a GPU */
}
static void axis_thread(unsigned char *pb, unsigned g, unsigned b) { axis_sum(pb, g, b, 0); }
static void axis_block(unsigned char *pb, unsigned g, unsigned b) { axis_sum(pb, g, b, 1); }

/* norm's STORE stage: y = x / t, t the row sums broadcast along the rows (stride 0). */
static long store_runs, wrong_variant;
static void store_div(unsigned char *pb, unsigned grid, unsigned block) {
    (void)grid, (void)block;
    store_runs++;
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N);
    char *x = array_at(pb, 3, 0), *t = array_at(pb, 3, 1), *y = array_at(pb, 3, 2);
    for (int64_t e = 0; e < n; e++) {
        int64_t off[3];
        unravel(pb, 3, e, off);
        if (!fake_check(x + off[0], 8) || !fake_check(t + off[1], 8) || !fake_check(y + off[2], 8))
            return;
        *(double *)(y + off[2]) = *(double *)(x + off[0]) / *(double *)(t + off[1]);
    }
}
static void not_expected(unsigned char *pb, unsigned g, unsigned b) {
    (void)pb, (void)g, (void)b;
    wrong_variant++;
}

static void fake_with_kernels(void) {
    fake_fresh();
    fake_add_kernel("fusor_pass0_axis", axis_thread);
    fake_add_kernel("fusor_pass0_axisblk", axis_block);
    fake_add_kernel("fusor_pass0_axissplit", axis_split);
    fake_add_kernel("fusor_pass0_axisfold", axis_fold);
    fake_add_kernel("fusor_pass0_axisfoldblk", axis_fold_block);
    /* t broadcasts along the rows: only the strided variants can address it. */
    fake_add_kernel("fusor_pass0_strided", store_div);
    fake_add_kernel("fusor_pass0_strided32", store_div);
    fake_add_kernel("fusor_pass0_contig", not_expected);
    fake_add_kernel("fusor_pass0_contig32", not_expected);
    fake_add_kernel("fusor_pass0_vec", not_expected);
    fake_add_kernel("fusor_pass0_vec32", not_expected);
}

/* ------------------------------------------------------------------ helpers */

static const char *rows_src = "kernel rows(x: f64[n, m]) -> (s: f64[]) { s = sum(x, axis=1) }";
static const char *norm_src =
    "kernel norm(x: f64[n, m]) -> (y: f64[]) { y = x / sum(x, axis=1, keepdims=true) }";

static fusor_array *host(int ndim, const int64_t *shape, double base) {
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, ndim, shape, &a));
    double *p = fusor_array_data(a);
    for (int64_t i = 0; i < fusor_array_size(a); i++)
        p[i] = isnan(base) ? base : base + (double)(i % 13);
    return a;
}

static fusor_array *on_device(fusor_context *g, const fusor_array *h) {
    fusor_array *d = NULL;
    CHECK_OK(fusor_array_create_on(g, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, fusor_array_ndim(h),
                                   fusor_array_shape(h), &d));
    CHECK_OK(fusor_array_copy(d, h, NULL));
    return d;
}

/* The array as host doubles (copied back when it lives on the device); caller frees. */
static double *values(fusor_array *a) {
    int64_t n = fusor_array_size(a);
    double *out = calloc((size_t)n + 1, 8);
    fusor_array *h = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, fusor_array_ndim(a), fusor_array_shape(a), &h));
    CHECK_OK(fusor_array_copy(h, a, NULL));
    memcpy(out, fusor_array_data(h), (size_t)n * 8);
    fusor_array_destroy(h);
    return out;
}

/* Rows sums of x (n x m, as host() fills it) against s; y = x / rowsum against y. */
static int wrong_sums(const double *s, int64_t n, int64_t m) {
    int bad = 0;
    for (int64_t r = 0; r < n; r++) {
        double want = 0;
        for (int64_t c = 0; c < m; c++)
            want += 1.0 + (double)((r * m + c) % 13);
        bad += s[r] != want;
    }
    return bad;
}
static int wrong_norm(const double *y, int64_t n, int64_t m) {
    int bad = 0;
    for (int64_t r = 0; r < n; r++) {
        double sum = 0;
        for (int64_t c = 0; c < m; c++)
            sum += 1.0 + (double)((r * m + c) % 13);
        for (int64_t c = 0; c < m; c++)
            bad += y[r * m + c] != (1.0 + (double)((r * m + c) % 13)) / sum;
    }
    return bad;
}

static fusor_kernel *kernel(fusor_target target, const char *src, fusor_context **g) {
    fusor_context_options o = {.target = target};
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_context_create(&o, g));
    CHECK_OK(fusor_kernel_compile(*g, src, "axis.fu", NULL, &k));
    return k;
}

/* After a test: every access inside a live allocation, the expected kernel variants, and
 * no pool buffer left behind. */
static void check_clean(void) {
    CHECK(F.bad_access == 0 && wrong_variant == 0);
    CHECK_MSG(fake_live(1) == 0, "%ld pool buffers live", fake_live(1));
}

/* ------------------------------------------------------------------ tests */

/* sum(x, axis=1) of `rows` rows of `len` over host arrays: split for blocks, then the fold
 * by a block per row (by_block) or a thread per row. */
static void split_rows(fusor_kernel *k, fusor_args *a, int64_t rows, int64_t len, int by_block) {
    int64_t shape[2] = {rows, len};
    fusor_array *x = host(2, shape, 1.0), *r = host(1, &rows, NAN);
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "s", r));
    long sr = split_runs, fr = fold_runs, fb = fold_block_runs;
    CHECK_OK(fusor_launch(k, a));
    CHECK(split_runs == sr + 1 && fold_runs == fr + 1 && fold_block_runs == fb + by_block);
    if (by_block)
        CHECK_MSG(last_grid == rows && last_block == 256, "grid %u block %u", last_grid,
                  last_block);
    CHECK(wrong_sums(fusor_array_data(r), rows, len) == 0);
    fusor_array_destroy(x);
    fusor_array_destroy(r);
}

/* Host arrays under the GPU target: copied in, reduced on the device, copied back. */
static void test_host_arrays(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = kernel(FUSOR_TARGET_GPU, rows_src, &g);
    int64_t shape[2] = {6, 100}, sshape[1] = {6};
    fusor_array *x = host(2, shape, 1.0), *s = host(1, sshape, NAN);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "s", s));
    long before = axis_runs[1];
    CHECK_OK(fusor_launch(k, a));
    CHECK(axis_runs[1] == before + 1); /* the innermost axis, 100 long: a block per row */
    CHECK(last_grid == 6 && last_block == 128);
    CHECK(wrong_sums(fusor_array_data(s), 6, 100) == 0);
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.target == FUSOR_TARGET_GPU && pl.device == 0);
    CHECK_MSG(pl.copy_bytes == 6 * 100 * 8 + 6 * 8, "%g bytes copied", pl.copy_bytes);
    CHECK_MSG(!strcmp(fusor_args_last_target(a), "gpu"), "%s", fusor_args_last_target(a));
    /* A short axis: a thread per row; the shape override reaches the launch. */
    int64_t shape2[2] = {6, 10};
    fusor_array *x2 = host(2, shape2, 1.0);
    CHECK_OK(fusor_args_set_array(a, "x", x2));
    CHECK_OK(fusor_args_set_gpu_shape(a, 64, 3));
    before = axis_runs[0];
    CHECK_OK(fusor_launch(k, a));
    CHECK(axis_runs[0] == before + 1 && last_grid == 3 && last_block == 64);
    CHECK(wrong_sums(fusor_array_data(s), 6, 10) == 0);
    CHECK_OK(fusor_args_set_gpu_shape(a, 0, 0));
    /* Long rows: split into chunks for blocks (3 rows of 20000: 4 of 5000), then folded by
     * a thread per row, or with many chunks (2 rows of a million: 244) by a block per row. */
    split_rows(k, a, 3, 20000, 0);
    split_rows(k, a, 2, 1000000, 1);
    /* The sums of 6 columns of 2000: an outer axis, too few results for the GPU's
     * threads, so the axis is cut into chunks for threads (15 of 134), then folded. */
    fusor_kernel *kc = NULL;
    CHECK_OK(fusor_kernel_compile(
        g, "kernel cols(x: f64[n, m]) -> (s: f64[]) { s = sum(x, axis=0) }", "cols.fu", NULL, &kc));
    int64_t cshape[2] = {2000, 6}, c1[1] = {6};
    fusor_array *xc = host(2, cshape, 1.0), *rc = host(1, c1, NAN);
    fusor_args *ca;
    CHECK_OK(fusor_args_create(kc, &ca));
    CHECK_OK(fusor_args_set_array(ca, "x", xc));
    CHECK_OK(fusor_args_set_array(ca, "s", rc));
    long ts = thread_split_runs, fr = fold_runs;
    CHECK_OK(fusor_launch(kc, ca));
    CHECK(thread_split_runs == ts + 1 && fold_runs == fr + 1);
    CHECK_MSG(last_grid == 1 && last_block == 256, "grid %u block %u", last_grid, last_block);
    int wrong_cols = 0;
    for (int c = 0; c < 6; c++) {
        double want = 0;
        for (int r = 0; r < 2000; r++)
            want += 1.0 + (double)((r * 6 + c) % 13);
        wrong_cols += ((double *)fusor_array_data(rc))[c] != want;
    }
    CHECK(wrong_cols == 0);
    fusor_args_destroy(ca);
    fusor_array_destroy(xc);
    fusor_array_destroy(rc);
    fusor_kernel_destroy(kc);
    /* keepdims: the result goes straight into a (6, 1) output, over its own strides. */
    fusor_kernel *kk = NULL;
    CHECK_OK(fusor_kernel_compile(
        g, "kernel kd(x: f64[n, m]) -> (s: f64[]) { s = sum(x, axis=1, keepdims=true) }", "kd.fu",
        NULL, &kk));
    int64_t kshape[2] = {6, 1};
    fusor_array *ks = host(2, kshape, NAN);
    fusor_args *ka;
    CHECK_OK(fusor_args_create(kk, &ka));
    CHECK_OK(fusor_args_set_array(ka, "x", x));
    CHECK_OK(fusor_args_set_array(ka, "s", ks));
    CHECK_OK(fusor_launch(kk, ka));
    CHECK(wrong_sums(fusor_array_data(ks), 6, 100) == 0);
    fusor_args_destroy(ka);
    fusor_array_destroy(ks);
    fusor_kernel_destroy(kk);
    CHECK(F.bad_access == 0 && wrong_variant == 0);
    CHECK_MSG(fake_live(1) == 0, "%ld pool buffers live after the launches", fake_live(1));
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(x2);
    fusor_array_destroy(s);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

/* Device arrays (AUTO goes to the GPU): a temporary for the row sums, read by the STORE
 * stage; the output the launch allocates lives on the device too.  Host arrays under
 * AUTO stay on the CPU, with the reason. */
static void test_device_arrays(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = kernel(FUSOR_TARGET_AUTO, norm_src, &g);
    int64_t shape[2] = {70, 5};
    fusor_array *xh = host(2, shape, 1.0), *x = on_device(g, xh);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    long t0 = axis_runs[0], s0 = store_runs;
    CHECK_OK(fusor_launch(k, a));
    CHECK(axis_runs[0] == t0 + 1 && store_runs == s0 + 1); /* an outer-axis count: a thread each */
    fusor_array *y = NULL;
    CHECK_OK(fusor_args_get_array(a, "y", &y));
    int dev = -1;
    CHECK(y && fusor_array_memory(y, &dev) == FUSOR_MEMORY_DEVICE && dev == 0);
    double *yv = y ? values(y) : NULL;
    CHECK(yv && wrong_norm(yv, 70, 5) == 0);
    free(yv);
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.target == FUSOR_TARGET_GPU && pl.copy_bytes == 0);
    /* The unfused launch runs on the host: it refuses device memory, naming the array. */
    CHECK(fusor_launch_unfused(k, a) == FUSOR_ERROR_UNSUPPORTED);
    CHECK_MSG(contains(fusor_last_error(), "unfused launches run on the host") &&
                  contains(fusor_last_error(), "array 'x'"),
              "%s", fusor_last_error());
    /* Managed memory, under the GPU target: used in place, nothing copied.  (Under AUTO
     * the cost model may keep such small arrays on the CPU, which can read them.) */
    fusor_context *g2;
    fusor_kernel *k2 = kernel(FUSOR_TARGET_GPU, norm_src, &g2);
    fusor_array *xm = NULL;
    CHECK_OK(fusor_array_create_on(g2, FUSOR_MEMORY_MANAGED, 0, FUSOR_F64, 2, shape, &xm));
    CHECK_OK(fusor_array_copy(xm, xh, NULL));
    fusor_args *am;
    CHECK_OK(fusor_args_create(k2, &am));
    CHECK_OK(fusor_args_set_array(am, "x", xm));
    t0 = axis_runs[0];
    CHECK_OK(fusor_launch(k2, am));
    CHECK(axis_runs[0] == t0 + 1);
    CHECK_OK(fusor_args_last_placement(am, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU && pl.copy_bytes == 0, "%d %g: %s", (int)pl.target,
              pl.copy_bytes, pl.reason);
    fusor_array *ym = NULL;
    CHECK_OK(fusor_args_get_array(am, "y", &ym));
    double *ymv = ym ? values(ym) : NULL;
    CHECK(ymv && wrong_norm(ymv, 70, 5) == 0);
    free(ymv);
    fusor_array_destroy(ym);
    /* ... which the host can read: an unfused launch runs there. */
    t0 = axis_runs[0];
    CHECK_OK(fusor_launch_unfused(k2, am));
    CHECK(axis_runs[0] == t0);
    CHECK_OK(fusor_args_get_array(am, "y", &ym));
    ymv = ym ? values(ym) : NULL;
    CHECK(ymv && wrong_norm(ymv, 70, 5) == 0);
    free(ymv);
    fusor_array_destroy(ym);
    fusor_args_destroy(am);
    fusor_array_destroy(xm);
    fusor_kernel_destroy(k2);
    fusor_context_destroy(g2);
    /* The same kernel over host arrays under AUTO: the CPU, which says why. */
    fusor_args *b;
    CHECK_OK(fusor_args_create(k, &b));
    CHECK_OK(fusor_args_set_array(b, "x", xh));
    t0 = axis_runs[0] + axis_runs[1];
    CHECK_OK(fusor_launch(k, b));
    CHECK(axis_runs[0] + axis_runs[1] == t0);
    CHECK_OK(fusor_args_last_placement(b, &pl));
    CHECK(pl.target == FUSOR_TARGET_CPU);
    CHECK_MSG(contains(pl.reason, "host arrays run on the CPU under AUTO"), "%s", pl.reason);
    fusor_array *yh = NULL;
    CHECK_OK(fusor_args_get_array(b, "y", &yh));
    CHECK(yh && wrong_norm(fusor_array_data(yh), 70, 5) == 0);
    CHECK(F.bad_access == 0 && wrong_variant == 0);
    fusor_array_destroy(y); /* get_array's references */
    fusor_array_destroy(yh);
    fusor_args_destroy(a);
    fusor_args_destroy(b);
    fusor_array_destroy(x);
    fusor_array_destroy(xh);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK_MSG(fake_live(1) == 0, "%ld pool buffers live", fake_live(1));
}

/* A prepared time loop and a launch on a stream, over device arrays. */
static void test_prepared_and_stream(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = kernel(FUSOR_TARGET_AUTO, rows_src, &g);
    int64_t shape[2] = {9, 33}, sshape[1] = {9};
    fusor_array *xh = host(2, shape, 1.0), *x = on_device(g, xh), *sh = host(1, sshape, NAN);
    fusor_array *s = on_device(g, sh);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "s", s));
    fusor_prepared *p = NULL;
    CHECK_OK(fusor_prepare(k, a, &p));
    long before = axis_runs[0] + axis_runs[1];
    for (int step = 0; p && step < 3; step++)
        CHECK_OK(fusor_prepared_launch(p));
    CHECK(axis_runs[0] + axis_runs[1] == before + 3);
    long captures = -1, replays = -1;
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK_MSG(captures == 1 && replays == 3, "%ld captures, %ld replays", captures, replays);
    double *sv = values(s);
    CHECK(wrong_sums(sv, 9, 33) == 0);
    free(sv);
    fusor_prepared_destroy(p);
    /* A prepared split reduction (3 rows of 20000): its rows of raw words live with the
     * captured step on the device. */
    int64_t lshape[2] = {3, 20000}, lsshape[1] = {3};
    fusor_array *lh = host(2, lshape, 1.0), *lx = on_device(g, lh), *lsh = host(1, lsshape, NAN);
    fusor_array *ls = on_device(g, lsh);
    fusor_args *la;
    CHECK_OK(fusor_args_create(k, &la));
    CHECK_OK(fusor_args_set_array(la, "x", lx));
    CHECK_OK(fusor_args_set_array(la, "s", ls));
    fusor_prepared *lp = NULL;
    CHECK_OK(fusor_prepare(k, la, &lp));
    long sr = split_runs, fr = fold_runs;
    for (int step = 0; lp && step < 2; step++)
        CHECK_OK(fusor_prepared_launch(lp));
    CHECK(split_runs == sr + 2 && fold_runs == fr + 2);
    double *lv = values(ls);
    CHECK(wrong_sums(lv, 3, 20000) == 0);
    free(lv);
    fusor_prepared_destroy(lp);
    fusor_args_destroy(la);
    fusor_array_destroy(lx);
    fusor_array_destroy(lh);
    fusor_array_destroy(ls);
    fusor_array_destroy(lsh);
    /* On a stream: queued, then synchronised. */
    fusor_stream *st = NULL;
    CHECK_OK(fusor_stream_create(g, &st));
    CHECK_OK(fusor_array_copy(s, sh, NULL)); /* poison again */
    CHECK_OK(fusor_launch_async(k, a, st));
    CHECK_OK(fusor_stream_synchronize(st));
    sv = values(s);
    CHECK(wrong_sums(sv, 9, 33) == 0);
    free(sv);
    CHECK_MSG(!strcmp(fusor_args_last_target(a), "gpu"), "%s", fusor_args_last_target(a));
    fusor_stream_destroy(st);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(xh);
    fusor_array_destroy(s);
    fusor_array_destroy(sh);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(F.bad_access == 0 && wrong_variant == 0);
}

/* A ping-pong time loop: norm's x and y trade places each step; each arrangement is
 * captured once (two graphs), every step replays one; the temporary is kept. */
static void test_ping_pong(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = kernel(FUSOR_TARGET_AUTO, norm_src, &g);
    int64_t shape[2] = {40, 6};
    fusor_array *xh = host(2, shape, 1.0), *x = on_device(g, xh), *y = on_device(g, xh);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "y", y));
    fusor_prepared *p = NULL;
    CHECK_OK(fusor_prepare(k, a, &p));
    long allocs = -1;
    for (int step = 0; p && step < 6; step++) {
        CHECK_OK(fusor_prepared_launch(p));
        CHECK_OK(fusor_prepared_swap(p, "x", "y"));
        if (step == 1) { /* steady state: no allocation, host or device, may happen */
            allocs = F.alloc_calls;
            fu_alloc_fail_after(0);
        }
    }
    long failed = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(failed == 0, "%ld host allocations after the first two steps", failed);
    CHECK_MSG(F.alloc_calls == allocs, "%ld device allocations after the first two steps",
              F.alloc_calls - allocs);
    long captures = -1, replays = -1;
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK_MSG(captures == 2 && replays == 6, "%ld captures, %ld replays", captures, replays);
    /* Six normalisations: every row sums to 1 (within rounding), in both arrays. */
    double *xv = values(x), *yv = values(y);
    int bad = 0;
    for (int r = 0; r < 40; r++) {
        double sx = 0, sy = 0;
        for (int c = 0; c < 6; c++)
            sx += xv[r * 6 + c], sy += yv[r * 6 + c];
        bad += fabs(sx - 1) > 1e-12 || fabs(sy - 1) > 1e-12;
    }
    CHECK_MSG(bad == 0, "%d rows do not sum to 1", bad);
    free(xv);
    free(yv);
    fusor_prepared_destroy(p);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(xh);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    check_clean();
}

/* A sequence of a kernel with axis reductions (row sums, keepdims) and an element-wise
 * one (x / the sums): the first step runs them one by one, the second captures the whole
 * step as one graph, later steps replay it without allocating. */
static void test_sequence(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *kd = kernel(FUSOR_TARGET_AUTO,
                              "kernel kd(x: f64[n, m]) -> (s: f64[]) {"
                              " s = sum(x, axis=1, keepdims=true) }",
                              &g);
    fusor_kernel *dv = NULL;
    CHECK_OK(fusor_kernel_compile(g, "kernel dv(x: f64[], t: f64[]) -> (y: f64[]) { y = x / t }",
                                  "dv.fu", NULL, &dv));
    int64_t shape[2] = {40, 6}, sshape[2] = {40, 1};
    fusor_array *xh = host(2, shape, 1.0), *x = on_device(g, xh), *y = on_device(g, xh);
    fusor_array *sh = host(2, sshape, NAN), *sd = on_device(g, sh);
    fusor_args *a1, *a2;
    CHECK_OK(fusor_args_create(kd, &a1));
    CHECK_OK(fusor_args_set_array(a1, "x", x));
    CHECK_OK(fusor_args_set_array(a1, "s", sd));
    CHECK_OK(fusor_args_create(dv, &a2));
    CHECK_OK(fusor_args_set_array(a2, "x", x));
    CHECK_OK(fusor_args_set_array(a2, "t", sd));
    CHECK_OK(fusor_args_set_array(a2, "y", y));
    fusor_prepared *p1 = NULL, *p2 = NULL;
    CHECK_OK(fusor_prepare(kd, a1, &p1));
    CHECK_OK(fusor_prepare(dv, a2, &p2));
    fusor_sequence *q = NULL;
    CHECK_OK(fusor_sequence_create(g, &q));
    CHECK_OK(fusor_sequence_add(q, p1));
    CHECK_OK(fusor_sequence_add(q, p2));
    long captures = -1, replays = -1;
    CHECK_OK(fusor_sequence_launch(q)); /* the members one by one: each decides */
    sched_sequence_gpu_counts(q, &captures, &replays);
    CHECK_MSG(captures == 0 && replays == 0, "%ld captures, %ld replays", captures, replays);
    long axis = axis_runs[0] + axis_runs[1], stores = store_runs;
    CHECK_OK(fusor_sequence_launch(q)); /* captured whole, then replayed */
    fu_alloc_fail_after(0);
    for (int step = 0; step < 3; step++)
        CHECK_OK(fusor_sequence_launch(q));
    long failed = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(failed == 0, "%ld host allocations in steps 3 to 5", failed);
    sched_sequence_gpu_counts(q, &captures, &replays);
    CHECK_MSG(captures == 1 && replays == 4, "%ld captures, %ld replays", captures, replays);
    CHECK(axis_runs[0] + axis_runs[1] == axis + 4 && store_runs == stores + 4);
    double *yv = values(y);
    CHECK(wrong_norm(yv, 40, 6) == 0);
    free(yv);
    fusor_sequence_destroy(q);
    fusor_prepared_destroy(p1);
    fusor_prepared_destroy(p2);
    fusor_args_destroy(a1);
    fusor_args_destroy(a2);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(xh);
    fusor_array_destroy(sh);
    fusor_array_destroy(sd);
    fusor_kernel_destroy(kd);
    fusor_kernel_destroy(dv);
    fusor_context_destroy(g);
    check_clean();
}

/* A launch the driver refuses: an error naming the kernel, the host output untouched, no
 * pool buffer left behind. */
static void test_failure(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = kernel(FUSOR_TARGET_GPU, rows_src, &g);
    int64_t shape[2] = {4, 8}, sshape[1] = {4};
    fusor_array *x = host(2, shape, 1.0), *s = host(1, sshape, NAN);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "s", s));
    F.launch_result = CUDRV_ERROR_LAUNCH_FAILED;
    fusor_status st = fusor_launch(k, a);
    F.launch_result = 0;
    CHECK_MSG(st != FUSOR_OK && contains(fusor_last_error(), "fusor_pass0_axis"), "%s: %s",
              fusor_status_name(st), fusor_last_error());
    const double *sv = fusor_array_data(s);
    int touched = 0;
    for (int i = 0; i < 4; i++)
        touched += !isnan(sv[i]);
    CHECK_MSG(touched == 0, "%d elements of the output written", touched);
    CHECK_MSG(fake_live(1) == 0, "%ld pool buffers live", fake_live(1));
    /* A fault found when the stream synchronises: nothing is copied back. */
    F.sync_result = CUDRV_ERROR_LAUNCH_FAILED;
    st = fusor_launch(k, a);
    F.sync_result = 0;
    CHECK_MSG(st == FUSOR_ERROR_INTERNAL && contains(fusor_last_error(), "LAUNCH_FAILED"), "%s",
              fusor_last_error());
    CHECK(isnan(sv[0]) && isnan(sv[3]));
    /* Out of device memory for the copies of the arrays: an error, nothing written, the
     * pool empty. */
    CHECK_OK(fusor_memory_configure(0, 0, 4 * 8 * 8 / 2));
    st = fusor_launch(k, a);
    CHECK_MSG(st == FUSOR_ERROR_OUT_OF_MEMORY, "%s: %s", fusor_status_name(st),
              fusor_last_error());
    CHECK(isnan(sv[0]) && isnan(sv[3]));
    fusor_memory_stats ms;
    CHECK_OK(fusor_memory_stats_get(0, &ms));
    CHECK(ms.in_use == 0);
    CHECK_OK(fusor_memory_configure(0, 0, 0));
    CHECK_OK(fusor_launch(k, a)); /* and the next launch works */
    CHECK(wrong_sums(fusor_array_data(s), 4, 8) == 0);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(s);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

int main(void) {
    setenv("FUSOR_CACHE", "0", 1);
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    test_host_arrays();
    test_device_arrays();
    test_prepared_and_stream();
    test_ping_pong();
    test_sequence();
    test_failure();
    fusor_context_destroy(ctx);
    fake_fresh();
    return check_done();
}
