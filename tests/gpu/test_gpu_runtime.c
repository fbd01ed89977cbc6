/*
 * test_gpu_runtime.c — the GPU runtime on a real device: placement, device-resident
 * arrays and outputs, host/pinned/managed/wrapped arrays, strided views, reductions
 * (and their run-to-run bits), a dependent chain on two streams joined by events, large
 * staged copies, pool statistics back to zero, out of memory (limit, and a request
 * larger than the device, after trim-and-retry) with recovery, and the JIT's logs.
 *
 * Every result is compared with the same computation on the CPU target (bit for bit
 * where IEEE arithmetic fixes the result) or with a plain C loop.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cuda.h"
#include "device.h"
#include "fusor.h"
#include "gpu_skip.h"

static fusor_context *ctx;
static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static fusor_array *host_f64(int64_t n, double (*f)(int64_t)) {
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &n, &a));
    double *p = fusor_array_data(a);
    for (int64_t i = 0; i < n; i++)
        p[i] = f ? f(i) : NAN;
    return a;
}
static double lin(int64_t i) { return (double)i * 0.25 - 3; }
static double wave(int64_t i) { return sin((double)i * 0.001) * 100; }
static double ints(int64_t i) { return (double)(i % 1000) - 500; }

static fusor_array *on_device(const fusor_array *h) {
    fusor_array *d = NULL;
    int64_t n = fusor_array_size(h);
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, fusor_array_dtype(h), 1, &n, &d));
    CHECK_OK(fusor_array_copy(d, h, NULL));
    return d;
}

static fusor_array *to_host(const fusor_array *d) {
    fusor_array *h = NULL;
    int64_t n = fusor_array_size(d);
    CHECK_OK(fusor_array_create(ctx, fusor_array_dtype(d), 1, &n, &h));
    CHECK_OK(fusor_array_copy(h, d, NULL));
    return h;
}

static fusor_kernel *compile(const char *src) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_kernel_compile(ctx, src, "gpu.fu", NULL, &k));
    return k;
}

/* Runs k on the CPU and on the GPU with the same inputs; returns the mismatching
 * elements of output `out` (bitwise, or within rel when rel > 0). */
static int64_t cpu_vs_gpu(fusor_kernel *k, const char *names[], fusor_array *in[], int nin,
                          const char *out, double rel) {
    fusor_array *res[2] = {NULL, NULL};
    for (int t = 0; t < 2; t++) {
        CHECK_OK(fusor_context_set_target(ctx, t ? FUSOR_TARGET_GPU : FUSOR_TARGET_CPU));
        fusor_args *a;
        CHECK_OK(fusor_args_create(k, &a));
        for (int i = 0; i < nin; i++)
            CHECK_OK(fusor_args_set_array(a, names[i], in[i]));
        CHECK_OK(fusor_launch(k, a));
        CHECK(!strcmp(fusor_args_last_target(a), t ? "gpu" : "cpu"));
        CHECK_OK(fusor_args_get_array(a, out, &res[t]));
        fusor_args_destroy(a);
    }
    CHECK_OK(fusor_context_set_target(ctx, FUSOR_TARGET_AUTO));
    int64_t bad = 0, n = fusor_array_size(res[0]);
    const double *c = fusor_array_data(res[0]), *g = fusor_array_data(res[1]);
    for (int64_t i = 0; i < n && res[1]; i++) {
        if (rel > 0)
            bad += !(fabs(c[i] - g[i]) <= rel * fmax(1, fabs(c[i])));
        else
            bad += memcmp(&c[i], &g[i], 8) != 0;
    }
    fusor_array_destroy(res[0]);
    fusor_array_destroy(res[1]);
    return bad;
}

static void test_host_arrays(void) {
    int64_t n = 3000001;
    fusor_array *x = host_f64(n, lin), *y = host_f64(n, wave);
    fusor_kernel *k =
        compile("kernel f(x: f64[], y: f64[]) -> (z: f64[]) { z = x * y + x / (y + 1000) }");
    const char *names[2] = {"x", "y"};
    fusor_array *in[2] = {x, y};
    int64_t bad = cpu_vs_gpu(k, names, in, 2, "z", 0);
    CHECK_MSG(bad == 0, "IEEE arithmetic: %lld elements differ between CPU and GPU",
              (long long)bad);
    fusor_kernel *m =
        compile("kernel g(x: f64[], y: f64[]) -> (z: f64[]) { z = sin(x) * exp(y / 100) }");
    bad = cpu_vs_gpu(m, names, in, 2, "z", 1e-13);
    CHECK_MSG(bad == 0, "math functions: %lld elements beyond 1e-13", (long long)bad);
    /* A transposed view and a broadcast row: the strided kernel. */
    int64_t shape[2] = {1000, 700}, tshape[2] = {700, 1000}, tstr[2] = {8, 700 * 8}, row = 1000;
    fusor_array *buf, *t, *r = host_f64(row, wave);
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 2, shape, &buf));
    for (int64_t i = 0; i < 700000; i++)
        ((double *)fusor_array_data(buf))[i] = lin(i);
    CHECK_OK(fusor_array_wrap(ctx, fusor_array_data(buf), FUSOR_F64, 2, tshape, tstr, &t));
    fusor_array *in2[2] = {t, r};
    bad = cpu_vs_gpu(k, names, in2, 2, "z", 0);
    CHECK_MSG(bad == 0, "strided: %lld differ", (long long)bad);
    fusor_array_destroy(t);
    fusor_array_destroy(r);
    fusor_array_destroy(buf);
    fusor_kernel_destroy(k);
    fusor_kernel_destroy(m);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
}

static void test_reductions(void) {
    int64_t n = 10000019;
    fusor_array *x = host_f64(n, ints), *w = host_f64(n, wave);
    fusor_kernel *k = compile("kernel s(x: f64[]) -> (t: f64, lo: f64, hi: f64, m: f64) {"
                              " t = sum(x)\n lo = min(x)\n hi = max(x)\n m = mean(x * x) }");
    CHECK_OK(fusor_context_set_target(ctx, FUSOR_TARGET_GPU));
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_launch(k, a));
    double t, lo, hi, m;
    CHECK_OK(fusor_args_get_f64(a, "t", &t));
    CHECK_OK(fusor_args_get_f64(a, "lo", &lo));
    CHECK_OK(fusor_args_get_f64(a, "hi", &hi));
    CHECK_OK(fusor_args_get_f64(a, "m", &m));
    double want = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
        want += ints(i);
        sq += ints(i) * ints(i);
    }
    CHECK_MSG(t == want && lo == -500 && hi == 499, "sum %.17g (want %.17g) min %g max %g", t, want,
              lo, hi);
    CHECK(fabs(m - sq / (double)n) <= 1e-12 * (sq / (double)n));
    /* Float sums: the same bits every run (the grid depends on n alone). */
    CHECK_OK(fusor_args_set_array(a, "x", w));
    double bits[3];
    for (int r = 0; r < 3; r++) {
        CHECK_OK(fusor_launch(k, a));
        CHECK_OK(fusor_args_get_f64(a, "t", &bits[r]));
    }
    CHECK(memcmp(&bits[0], &bits[1], 8) == 0 && memcmp(&bits[1], &bits[2], 8) == 0);
    long double ref = 0;
    for (int64_t i = 0; i < n; i++)
        ref += wave(i);
    CHECK_MSG(fabsl((long double)bits[0] - ref) <= 1e-9L * fabsl(ref) + 1e-6L,
              "sum %.17g vs %.17Lg", bits[0], ref);
    CHECK_OK(fusor_context_set_target(ctx, FUSOR_TARGET_AUTO));
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(x);
    fusor_array_destroy(w);
}

static void test_residency_and_kinds(void) {
    int64_t n = 1 << 22;
    fusor_array *xh = host_f64(n, lin), *yh = host_f64(n, wave);
    fusor_array *x = on_device(xh), *y = on_device(yh);
    fusor_kernel *k =
        compile("kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }");
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_f64(a, "a", 1.5));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "y", y));
    CHECK_OK(fusor_launch(k, a)); /* AUTO: the arrays are on the GPU */
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU && pl.copy_bytes == 0 &&
                  contains(pl.reason, "lives on GPU 0"),
              "%s", pl.reason);
    fusor_array *z;
    CHECK_OK(fusor_args_get_array(a, "z", &z));
    int dev;
    CHECK(fusor_array_memory(z, &dev) == FUSOR_MEMORY_DEVICE && dev == 0);
    fusor_array *zh = to_host(z);
    const double *zp = fusor_array_data(zh), *xp = fusor_array_data(xh), *yp = fusor_array_data(yh);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        volatile double p = 1.5 * xp[i]; /* no contraction into an FMA here either */
        bad += zp[i] != p + yp[i];
    }
    CHECK_MSG(bad == 0, "device-resident axpy: %lld differ", (long long)bad);

    /* A pointer from the caller's own cuMemAlloc, wrapped. */
    cudrv_ptr raw = 0;
    const cudrv_table *t = sched_cuda(NULL);
    sched_device *d;
    CHECK_OK(sched_device_get(0, &d));
    CHECK_OK(sched_device_activate(d));
    CHECK(t->mem_alloc(&raw, (size_t)n * 8) == 0);
    fusor_array *w;
    CHECK_OK(fusor_array_wrap_device(ctx, raw, 0, FUSOR_F64, 1, &n, NULL, &w));
    CHECK_OK(fusor_array_copy(w, xh, NULL));
    CHECK_OK(fusor_args_set_array(a, "x", w));
    CHECK_OK(fusor_args_set_array(a, "y", w));
    CHECK_OK(fusor_launch(k, a));
    fusor_array_destroy(z);
    CHECK_OK(fusor_args_get_array(a, "z", &z));
    fusor_array_destroy(zh);
    zh = to_host(z);
    zp = fusor_array_data(zh);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        volatile double p = 1.5 * xp[i];
        bad += zp[i] != p + xp[i];
    }
    CHECK_MSG(bad == 0, "wrapped pointer: %lld differ", (long long)bad);
    fusor_array_destroy(w);

    /* Pinned and managed arrays with the GPU target. */
    fusor_array *pin, *man, *out;
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_PINNED, 0, FUSOR_F64, 1, &n, &pin));
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_MANAGED, 0, FUSOR_F64, 1, &n, &man));
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_PINNED, 0, FUSOR_F64, 1, &n, &out));
    memcpy(fusor_array_data(pin), xp, (size_t)n * 8);
    memcpy(fusor_array_data(man), yp, (size_t)n * 8); /* managed: the host writes directly */
    CHECK_OK(fusor_context_set_target(ctx, FUSOR_TARGET_GPU));
    CHECK_OK(fusor_args_set_array(a, "x", pin));
    CHECK_OK(fusor_args_set_array(a, "y", man));
    CHECK_OK(fusor_args_set_array(a, "z", out));
    CHECK_OK(fusor_launch(k, a));
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.copy_bytes == 2.0 * (double)n * 8); /* pinned in and out; managed in place */
    zp = fusor_array_data(out);
    bad = 0;
    for (int64_t i = 0; i < n; i++) {
        volatile double p = 1.5 * xp[i];
        bad += zp[i] != p + yp[i];
    }
    CHECK_MSG(bad == 0, "pinned/managed: %lld differ", (long long)bad);
    CHECK_OK(fusor_context_set_target(ctx, FUSOR_TARGET_AUTO));

    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(pin);
    fusor_array_destroy(man);
    fusor_array_destroy(out);
    fusor_array_destroy(z);
    fusor_array_destroy(zh);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(xh);
    fusor_array_destroy(yh);
    t->mem_free(raw);
}

static void test_streams(void) {
    int64_t n = 1 << 24; /* 128 MiB per array: kernels long enough to race if waits fail */
    fusor_array *xh = host_f64(n, ints);
    fusor_array *x = on_device(xh), *y, *zz, *w;
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &y));
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &zz));
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &w));
    fusor_kernel *k1 =
        compile("kernel k1(a: f64[]) -> (out: f64[]) { out = sqrt(a * a + 1) * 0 + a * 2 }");
    fusor_kernel *k2 = compile("kernel k2(a: f64[]) -> (out: f64[]) { out = a + 1 }");
    fusor_kernel *k3 = compile("kernel k3(a: f64[], b: f64[]) -> (out: f64[]) { out = a * b }");
    fusor_args *a1, *a2, *a3;
    CHECK_OK(fusor_args_create(k1, &a1));
    CHECK_OK(fusor_args_create(k2, &a2));
    CHECK_OK(fusor_args_create(k3, &a3));
    CHECK_OK(fusor_args_set_array(a1, "a", x));
    CHECK_OK(fusor_args_set_array(a1, "out", y));
    CHECK_OK(fusor_args_set_array(a2, "a", y));
    CHECK_OK(fusor_args_set_array(a2, "out", zz));
    CHECK_OK(fusor_args_set_array(a3, "a", zz));
    CHECK_OK(fusor_args_set_array(a3, "b", y));
    CHECK_OK(fusor_args_set_array(a3, "out", w));
    fusor_stream *s1, *s2;
    fusor_event *e1, *e2;
    CHECK_OK(fusor_stream_create(ctx, &s1));
    CHECK_OK(fusor_stream_create(ctx, &s2));
    CHECK_OK(fusor_event_create(ctx, &e1));
    CHECK_OK(fusor_event_create(ctx, &e2));
    int64_t bad = 0;
    for (int round = 0; round < 5; round++) {
        fusor_array *poison = host_f64(n, NULL);
        CHECK_OK(fusor_array_copy(y, poison, s1));
        CHECK_OK(fusor_array_copy(zz, poison, s1));
        CHECK_OK(fusor_array_copy(w, poison, s1));
        CHECK_OK(fusor_launch_async(k1, a1, s1)); /* y = 2x */
        CHECK_OK(fusor_event_record(e1, s1));
        CHECK_OK(fusor_event_wait(e1, s2));
        CHECK_OK(fusor_launch_async(k2, a2, s2)); /* z = y + 1 */
        CHECK_OK(fusor_event_record(e2, s2));
        CHECK_OK(fusor_event_wait(e2, s1));
        CHECK_OK(fusor_launch_async(k3, a3, s1)); /* w = z * y */
        CHECK_OK(fusor_stream_synchronize(s1));
        CHECK_OK(fusor_stream_synchronize(s2));
        CHECK(fusor_event_done(e1) && fusor_event_done(e2));
        fusor_array *wh = to_host(w);
        const double *wp = fusor_array_data(wh);
        for (int64_t i = 0; i < n; i++)
            bad += wp[i] != (2 * ints(i) + 1) * (2 * ints(i));
        fusor_array_destroy(wh);
        fusor_array_destroy(poison);
    }
    CHECK_MSG(bad == 0, "stream chain: %lld wrong elements over 5 rounds", (long long)bad);
    CHECK(!strcmp(fusor_args_last_target(a3), "gpu"));
    fusor_event_destroy(e1);
    fusor_event_destroy(e2);
    fusor_stream_destroy(s1);
    fusor_stream_destroy(s2);
    fusor_args_destroy(a1);
    fusor_args_destroy(a2);
    fusor_args_destroy(a3);
    fusor_kernel_destroy(k1);
    fusor_kernel_destroy(k2);
    fusor_kernel_destroy(k3);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(zz);
    fusor_array_destroy(w);
    fusor_array_destroy(xh);
}

static void test_big_copies(void) {
    int64_t n = (int64_t)100 << 17; /* 100 MiB of f64: 13 staged chunks each way */
    fusor_array *h = host_f64(n, lin), *d = on_device(h), *back = to_host(d);
    CHECK(memcmp(fusor_array_data(h), fusor_array_data(back), (size_t)n * 8) == 0);
    fusor_array_destroy(h);
    fusor_array_destroy(d);
    fusor_array_destroy(back);
}

static void test_memory(void) {
    fusor_memory_stats s;
    CHECK_OK(fusor_memory_trim(0));
    CHECK_OK(fusor_memory_stats_get(0, &s));
    CHECK_MSG(s.in_use == 0 && s.allocations == 0, "in use %llu in %llu allocations",
              (unsigned long long)s.in_use, (unsigned long long)s.allocations);
    CHECK(s.peak > 0 && s.total_allocations > 0);
    CHECK_OK(fusor_memory_stats_get(FUSOR_PINNED_POOL, &s));
    CHECK(s.in_use == 0 && s.allocations == 0);
    sched_device *d;
    CHECK_OK(sched_device_get(0, &d));
    /* fusor's limit. */
    CHECK_OK(fusor_memory_configure(0, 64 << 20, 64 << 20));
    int64_t n = 16 << 20; /* 128 MiB */
    fusor_array *a = NULL;
    CHECK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &a) ==
          FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK(contains(fusor_last_error(), "limit"));
    CHECK_OK(fusor_memory_configure(0, 1 << 30, 0));
    /* More than the device has: trimmed, retried, refused with the pool's state. */
    int64_t huge = (int64_t)(d->total_mem / 8) + (1 << 27);
    CHECK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &huge, &a) ==
          FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK_MSG(contains(fusor_last_error(), "after trimming the pool and retrying") &&
                  contains(fusor_last_error(), "free of"),
              "%s", fusor_last_error());
    CHECK_OK(fusor_memory_stats_get(0, &s));
    CHECK(s.trims >= 1 && s.failures >= 2 && s.in_use == 0);
    /* ... and the device still works. */
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &a));
    fusor_array_destroy(a);
    char *text = NULL;
    CHECK_OK(fusor_memory_describe(&text));
    printf("%s", text);
    fusor_free(text);
    /* The JIT kept its info log for every module. */
    int modules = 0;
    for (sched_module *m = d->modules; m; m = m->next)
        modules++;
    CHECK(modules >= 5);
    if (d->modules)
        printf("JIT info log of the last module: %s\n", d->modules->info_log);
}

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_runtime"))
        return GPU_SKIP_CODE;
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    test_host_arrays();
    test_reductions();
    test_residency_and_kinds();
    test_streams();
    test_big_copies();
    test_memory();
    fusor_context_destroy(ctx);
    return check_done();
}
