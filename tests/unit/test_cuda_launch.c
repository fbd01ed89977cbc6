/*
 * test_cuda_launch.c — the GPU launcher (scheduler/gpurun.c) end to end against the fake
 * driver: real PTX from codegen, loaded by the fake's JIT, and simulated kernels written
 * here from the parameter-block contract of codegen/gpu.h.
 *
 * The simulated kernels read everything from the parameter block (n, slots, partials,
 * array addresses, shape and strides) and every address is bounds-checked by the fake,
 * so what is checked is the launcher's side of the contract: which kernel variant it
 * picks, the block it builds, copies in and out, the reduction's partial rows and the
 * scalar outputs, launch shapes, placement and its reasons, device-resident outputs,
 * streams, and that failures (launch, asynchronous fault, out of memory, JIT) leave
 * outputs untouched and the pools empty.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "check.h"
#include "devpool.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "gpu.h"
#include "scheduler.h"

static fusor_context *ctx;
static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static double *ptr_at(const unsigned char *pb, size_t off) {
    return (double *)(uintptr_t)pb64(pb, off);
}
static double *array_at(const unsigned char *pb, int narrays, int i) {
    return ptr_at(pb, CG_GPU_OFF_ARRAYS(narrays) + 8 * (size_t)i);
}

/* ------------------------------------------------------------------ simulated kernels */

/* axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]): arrays a(unused), x, y, z. */
static long contig_runs, vec_runs, strided_runs;

static void axpy_flat(unsigned char *pb) {
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N);
    double a = ptr_at(pb, CG_GPU_OFF_SLOTS)[0];
    double *x = array_at(pb, 4, 1), *y = array_at(pb, 4, 2), *z = array_at(pb, 4, 3);
    if (!fake_check(x, (size_t)n * 8) || !fake_check(y, (size_t)n * 8) ||
        !fake_check(z, (size_t)n * 8))
        return;
    for (int64_t i = 0; i < n; i++)
        z[i] = a * x[i] + y[i];
}
static void axpy_contig(unsigned char *pb, unsigned g, unsigned b) {
    (void)g, (void)b;
    contig_runs++;
    axpy_flat(pb);
}
static void axpy_vec(unsigned char *pb, unsigned g, unsigned b) {
    (void)g, (void)b;
    vec_runs++;
    axpy_flat(pb);
}
static void axpy_strided(unsigned char *pb, unsigned g, unsigned b) {
    (void)g, (void)b;
    strided_runs++;
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N), nd = (int64_t)pb64(pb, CG_GPU_OFF_NDIM);
    double a = ptr_at(pb, CG_GPU_OFF_SLOTS)[0];
    for (int64_t i = 0; i < n; i++) {
        char *addr[4];
        for (int k = 1; k < 4; k++)
            addr[k] = (char *)array_at(pb, 4, k);
        int64_t rem = i;
        for (int64_t d = nd - 1; d >= 0; d--) {
            int64_t ext = (int64_t)pb64(pb, CG_GPU_OFF_SHAPE + 8 * (size_t)d);
            int64_t c = rem % ext;
            rem /= ext;
            for (int k = 1; k < 4; k++)
                addr[k] +=
                    c * (int64_t)pb64(pb, CG_GPU_OFF_STRIDES + 8 * ((size_t)k * 8 + (size_t)d));
        }
        if (!fake_check(addr[1], 8) || !fake_check(addr[2], 8) || !fake_check(addr[3], 8))
            return;
        *(double *)addr[3] = a * *(double *)addr[1] + *(double *)addr[2];
    }
}

/* total(x: f64[]) -> (t: f64): slots x(unused), COUNT, the sum, then the pass's ticket
 * (codegen/gpu.h); one raw word per row.  As the real kernel: every block writes its row,
 * the last one (the ticket) folds the rows into the sum's slot, runs the finish (this is
 * the last pass) and puts the ticket back to 0. */
static long reduce_rows, ticket_bad;
static void total_pass(unsigned char *pb, unsigned grid, unsigned block) {
    int64_t n = (int64_t)pb64(pb, CG_GPU_OFF_N);
    uint64_t rows = pb64(pb, CG_GPU_OFF_NPARTIALS);
    double *x = array_at(pb, 2, 0), *part = ptr_at(pb, CG_GPU_OFF_PARTIALS);
    double *slots = ptr_at(pb, CG_GPU_OFF_SLOTS), *outs = ptr_at(pb, CG_GPU_OFF_OUTS);
    if (rows != grid || !fake_check(part, rows * 8) || !fake_check(x, (size_t)n * 8) ||
        !fake_check(slots, 32) || !fake_check(outs, 8)) {
        F.bad_access++;
        return;
    }
    uint64_t *ticket = (uint64_t *)&slots[3];
    /* Block b's share of the grid-stride loop. */
    for (unsigned b = 0; b < grid; b++) {
        double s = 0;
        for (int64_t i = (int64_t)b * block; i < n; i += (int64_t)grid * block)
            for (int64_t j = i; j < i + block && j < n; j++)
                s += x[j];
        part[b] = s;
        if ((*ticket)++ != rows - 1)
            continue;
        double t = 0;
        for (uint64_t r = 0; r < rows; r++)
            t += part[r];
        reduce_rows = (long)rows;
        slots[2] = t;
        outs[0] = slots[2];
        *ticket = 0;
    }
    ticket_bad += *ticket != 0; /* not back to 0: it was not 0 when the pass started */
}

static void fake_with_kernels(void) {
    fake_fresh();
    fake_add_kernel("fusor_pass0_contig", axpy_contig);
    fake_add_kernel("fusor_pass0_vec", axpy_vec);
    fake_add_kernel("fusor_pass0_strided", axpy_strided);
    /* The 32-bit index variants compute the same (the launcher picks them when all fits). */
    fake_add_kernel("fusor_pass0_contig32", axpy_contig);
    fake_add_kernel("fusor_pass0_vec32", axpy_vec);
    fake_add_kernel("fusor_pass0_strided32", axpy_strided);
}

/* ------------------------------------------------------------------ helpers */

static const char *axpy_src =
    "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }";

static fusor_array *host(int ndim, const int64_t *shape, double base) {
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, ndim, shape, &a));
    double *p = fusor_array_data(a);
    for (int64_t i = 0; i < fusor_array_size(a); i++)
        p[i] = isnan(base) ? base : base + (double)i;
    return a;
}

static fusor_memory_stats pool0(void) {
    fusor_memory_stats s;
    memset(&s, 0xff, sizeof s);
    CHECK_OK(fusor_memory_stats_get(0, &s));
    return s;
}

static void check_axpy(const fusor_array *z, double a, double xb, double yb, const char *what) {
    const double *zp = fusor_array_data(z);
    int64_t bad = 0;
    for (int64_t i = 0; i < fusor_array_size(z); i++)
        bad += zp[i] != a * (xb + (double)i) + (yb + (double)i);
    CHECK_MSG(bad == 0, "%s: %lld wrong elements", what, (long long)bad);
}

/* A context for `target` (GPU, or AUTO) and the axpy kernel, with the fake as loaded. */
static fusor_kernel *axpy_kernel(fusor_target target, fusor_context **g) {
    fusor_context_options o = {.target = target};
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_context_create(&o, g));
    CHECK_OK(fusor_kernel_compile(*g, axpy_src, "axpy.fu", NULL, &k));
    return k;
}

/* axpy's arguments: a, x, y, and z when given (else left for the launch to allocate). */
static fusor_args *axpy_args(fusor_kernel *k, double a, fusor_array *x, fusor_array *y,
                             fusor_array *z) {
    fusor_args *args = NULL;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_f64(args, "a", a));
    CHECK_OK(fusor_args_set_array(args, "x", x));
    CHECK_OK(fusor_args_set_array(args, "y", y));
    if (z)
        CHECK_OK(fusor_args_set_array(args, "z", z));
    return args;
}

/* An array on GPU 0 of h's shape; a copy of h unless `copy` is 0. */
static fusor_array *on_device(fusor_context *g, const fusor_array *h, int copy) {
    fusor_array *d = NULL;
    CHECK_OK(fusor_array_create_on(g, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, fusor_array_ndim(h),
                                   fusor_array_shape(h), &d));
    if (copy)
        CHECK_OK(fusor_array_copy(d, h, NULL));
    return d;
}

/* ------------------------------------------------------------------ tests */

static void test_axpy(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_GPU, &g);
    int64_t n = 100000;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 1000), *z = host(1, &n, NAN);
    fusor_args *a = axpy_args(k, 2.5, x, y, z);
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 2.5, 1, 1000, "axpy");
    CHECK(vec_runs == 1 && contig_runs == 0 && strided_runs == 0); /* f64: 2 lanes, aligned */
    CHECK(!strcmp(fusor_args_last_target(a), "gpu"));
    CHECK(fusor_args_last_threads(a) == 768 * 66); /* GPU threads of the launch */
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.target == FUSOR_TARGET_GPU && pl.device == 0);
    CHECK(contains(pl.reason, "the GPU target was requested"));
    CHECK(pl.copy_bytes == 3.0 * (double)n * 8);
    CHECK(F.htod_bytes >= 2 * n * 8 && F.dtoh_bytes == n * 8); /* z is not copied in */
    /* 100000 elements and 800000 bytes per array fit int32: the 32-bit index variant. */
    CHECK(!strcmp(F.last_kernel, "fusor_pass0_vec32") && F.last_block == 768);
    CHECK(F.last_grid == (unsigned)((n / 2 + 767) / 768)); /* two lanes per thread */
    CHECK(pool0().in_use == 0 && pool0().allocations == 0);
    CHECK(F.module_loads == 1);

    /* Again: the module and the PTX are cached; a shape override is obeyed. */
    CHECK(fusor_args_set_gpu_shape(a, 100, 0) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK_OK(fusor_args_set_gpu_shape(a, 128, 5));
    memset(fusor_array_data(z), 0xff, (size_t)n * 8);
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 2.5, 1, 1000, "axpy again");
    CHECK(F.module_loads == 1 && F.last_block == 128 && F.last_grid == 5);
    CHECK_OK(fusor_args_set_gpu_shape(a, 0, 0));

    /* A transposed view and a broadcast: the strided kernel. */
    int64_t s2[2] = {300, 200}, s300 = 300;
    fusor_array *buf = host(2, s2, 0);
    int64_t tshape[2] = {200, 300}, tstr[2] = {8, 200 * 8};
    fusor_array *xt, *yb = host(1, &s300, 7), *z2;
    CHECK_OK(fusor_array_wrap(g, fusor_array_data(buf), FUSOR_F64, 2, tshape, tstr, &xt));
    z2 = host(2, tshape, NAN);
    fusor_args *a2 = axpy_args(k, -1, xt, yb, z2);
    CHECK_OK(fusor_launch(k, a2));
    CHECK(strided_runs == 1);
    const double *zp = fusor_array_data(z2), *bp = fusor_array_data(buf);
    int64_t bad = 0;
    for (int64_t r = 0; r < 200; r++)
        for (int64_t c = 0; c < 300; c++)
            bad += zp[r * 300 + c] != -bp[c * 200 + r] + (7.0 + (double)c);
    CHECK_MSG(bad == 0, "strided: %lld wrong", (long long)bad);
    CHECK(F.bad_access == 0 && pool0().in_use == 0);

    fusor_args_destroy(a2);
    fusor_array_destroy(xt);
    fusor_array_destroy(yb);
    fusor_array_destroy(z2);
    fusor_array_destroy(buf);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

/* The fake (configured, then loaded) running `total` with total_pass, a GPU context and
 * the kernel compiled in it. */
static fusor_kernel *total_kernel(fusor_context **g) {
    fake_add_kernel("fusor_pass0_contig", total_pass);
    fake_add_kernel("fusor_pass0_vec", total_pass);
    fake_add_kernel("fusor_pass0_contig32", total_pass);
    fake_add_kernel("fusor_pass0_vec32", total_pass);
    CHECK_OK(fake_load());
    fusor_context_options o = {.target = FUSOR_TARGET_GPU};
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_context_create(&o, g));
    CHECK_OK(fusor_kernel_compile(*g, "kernel total(x: f64[]) -> (t: f64) { t = sum(x) }", "t.fu",
                                  NULL, &k));
    return k;
}

static void test_reduction(void) {
    fake_fresh();
    fusor_context *g;
    fusor_kernel *k = total_kernel(&g);
    int64_t n = 1000003;
    fusor_array *x = host(1, &n, -500000);
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    long launches = F.launches;
    CHECK_OK(fusor_launch(k, a));
    CHECK_MSG(F.launches - launches == 1, "%ld kernels for a sum", F.launches - launches);
    double t = 0;
    CHECK_OK(fusor_args_get_f64(a, "t", &t));
    double want = 0;
    for (int64_t i = 0; i < n; i++)
        want += -500000.0 + (double)i; /* integers: exact */
    CHECK_MSG(t == want, "sum %.17g, wanted %.17g", t, want);
    CHECK(reduce_rows == (n + 4095) / 4096); /* the grid from n alone */
    CHECK(ticket_bad == 0);
    CHECK(F.bad_access == 0 && pool0().in_use == 0);
    /* On device memory, a repeated synchronous launch is one kernel and a synchronisation:
     * the kernel writes the sum into the stream's pinned memory (no copy back), and the
     * launch buffer already holds its parameters (no upload). */
    fusor_array *xd = on_device(g, x, 1);
    CHECK_OK(fusor_args_set_array(a, "x", xd));
    CHECK_OK(fusor_launch(k, a));
    long d2h = F.dtoh_bytes, h2d = F.htod_bytes;
    F.ncalled = 0;
    t = 0;
    CHECK_OK(fusor_launch(k, a));
    CHECK_OK(fusor_args_get_f64(a, "t", &t));
    CHECK_MSG(t == want, "sum over device memory %.17g, wanted %.17g", t, want);
    CHECK_MSG(F.dtoh_bytes == d2h && F.htod_bytes == h2d, "copied %ld bytes back, %ld up",
              F.dtoh_bytes - d2h, F.htod_bytes - h2d);
    CHECK_MSG(!strcmp(fake_called_list(),
                      "ctx_get_current ctx_get_current launch_kernel stream_synchronize"),
              "a repeated synchronous sum calls: %s", fake_called_list());
    CHECK(ticket_bad == 0);
    /* Queued on a stream, each argument set's sum goes into its own pinned block of the
     * stream's: two sets interleaved each get theirs, and nothing is copied back. */
    fusor_array *ones = host(1, &n, 1), *od = on_device(g, ones, 1);
    fusor_args *b;
    CHECK_OK(fusor_args_create(k, &b));
    CHECK_OK(fusor_args_set_array(b, "x", od));
    fusor_stream *qs;
    CHECK_OK(fusor_stream_create(g, &qs));
    CHECK_OK(fusor_launch_async(k, a, qs)); /* the stream's buffer and a's block */
    CHECK_OK(fusor_stream_synchronize(qs));
    d2h = F.dtoh_bytes, h2d = F.htod_bytes;
    for (int r = 0; r < 3; r++) {
        CHECK_OK(fusor_launch_async(k, a, qs));
        CHECK_OK(fusor_launch_async(k, b, qs));
    }
    CHECK_OK(fusor_stream_synchronize(qs));
    double ta = 0, tb = 0;
    CHECK_OK(fusor_args_get_f64(a, "t", &ta));
    CHECK_OK(fusor_args_get_f64(b, "t", &tb));
    double want_b = (double)n + (double)n * (double)(n - 1) / 2;
    CHECK_MSG(ta == want && tb == want_b, "queued sums %.17g and %.17g, wanted %.17g and %.17g", ta,
              tb, want, want_b);
    CHECK_MSG(F.dtoh_bytes == d2h, "queued sums copied %ld bytes back", F.dtoh_bytes - d2h);
    /* A prepared sum over device memory (a time loop's residual): the graph's kernel writes
     * the sum into pinned memory, read after each step, none copied back. */
    fusor_prepared *pp;
    CHECK_OK(fusor_prepare(k, b, &pp));
    d2h = F.dtoh_bytes;
    for (int r = 0; r < 3; r++) {
        tb = 0;
        CHECK_OK(fusor_prepared_launch(pp));
        CHECK_OK(fusor_args_get_f64(b, "t", &tb));
        CHECK_MSG(tb == want_b, "prepared sum %.17g, wanted %.17g", tb, want_b);
        tb = 0;
        CHECK_OK(fusor_prepared_launch_async(pp, qs));
        CHECK_OK(fusor_stream_synchronize(qs));
        CHECK_OK(fusor_args_get_f64(b, "t", &tb));
        CHECK_MSG(tb == want_b, "queued prepared sum %.17g, wanted %.17g", tb, want_b);
    }
    CHECK_MSG(F.dtoh_bytes == d2h, "prepared sums copied %ld bytes back", F.dtoh_bytes - d2h);
    CHECK(ticket_bad == 0);
    fusor_prepared_destroy(pp);
    fusor_stream_destroy(qs);
    fusor_args_destroy(b);
    fusor_array_destroy(od);
    fusor_array_destroy(ones);
    fusor_memory_stats ps; /* the stream's pinned memory is not the pinned pool's */
    CHECK_OK(fusor_memory_stats_get(FUSOR_PINNED_POOL, &ps));
    CHECK_MSG(ps.in_use == 0 && ps.allocations == 0, "pinned pool: %llu bytes in %llu blocks",
              (unsigned long long)ps.in_use, (unsigned long long)ps.allocations);
    CHECK_OK(fusor_args_set_array(a, "x", x));
    fusor_array_destroy(xd);

    /* Queued launches: the stream's worker does not wait for each launch's scalar outputs
     * (no synchronisation per launch); they reach the argument set, in order, when the
     * stream is synchronised, and the last launch's value is the one read. */
    fusor_array *x2 = host(1, &n, 1);
    CHECK_OK(fusor_args_set_array(a, "x", x2));
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(g, &s));
    CHECK_OK(fusor_launch_async(k, a, s)); /* the first: creates the worker's CUDA stream */
    CHECK_OK(fusor_stream_synchronize(s));
    long syncs = F.syncs;
    for (int r = 0; r < 3; r++)
        CHECK_OK(fusor_launch_async(k, a, s));
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK_MSG(F.syncs - syncs == 1, "%ld synchronisations for three queued launches",
              F.syncs - syncs);
    t = 0;
    CHECK_OK(fusor_args_get_f64(a, "t", &t));
    double want2 = (double)n + (double)n * (double)(n - 1) / 2;
    CHECK_MSG(t == want2, "queued sum %.17g, wanted %.17g", t, want2);
    /* An event recorded after a queued launch is reached with its value handed over. */
    fusor_event *e;
    CHECK_OK(fusor_event_create(g, &e));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_launch_async(k, a, s));
    CHECK_OK(fusor_event_record(e, s));
    CHECK_OK(fusor_event_synchronize(e));
    t = 0;
    CHECK_OK(fusor_args_get_f64(a, "t", &t));
    CHECK_MSG(t == want, "sum after the event %.17g, wanted %.17g", t, want);
    CHECK_OK(fusor_stream_synchronize(s));
    fusor_event_destroy(e);
    fusor_stream_destroy(s);
    CHECK(F.bad_access == 0 && pool0().in_use == 0);
    fusor_array_destroy(x2);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

/* Without unified addressing the kernels cannot write host memory: scalar outputs are
 * copied back (synchronous, queued and prepared launches), with the same values. */
static void test_reduction_copied_back(void) {
    fake_fresh();
    F.no_unified = 1;
    fusor_context *g;
    fusor_kernel *k = total_kernel(&g);
    int64_t n = 4099;
    fusor_array *x = host(1, &n, 1), *xd = on_device(g, x, 1);
    double want = (double)n + (double)n * (double)(n - 1) / 2;
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", xd));
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(g, &s));
    fusor_prepared *p;
    CHECK_OK(fusor_prepare(k, a, &p));
    for (int way = 0; way < 4; way++) {
        long d2h = F.dtoh_bytes;
        double t = 0;
        if (way == 0)
            CHECK_OK(fusor_launch(k, a));
        else if (way == 1)
            CHECK_OK(fusor_launch_async(k, a, s));
        else if (way == 2)
            CHECK_OK(fusor_prepared_launch(p));
        else
            CHECK_OK(fusor_prepared_launch_async(p, s));
        CHECK_OK(fusor_stream_synchronize(s));
        CHECK_OK(fusor_args_get_f64(a, "t", &t));
        CHECK_MSG(t == want, "way %d: sum %.17g, wanted %.17g", way, t, want);
        CHECK_MSG(F.dtoh_bytes - d2h == 8, "way %d: %ld bytes copied back", way,
                  F.dtoh_bytes - d2h);
    }
    CHECK(ticket_bad == 0 && F.bad_access == 0);
    fusor_prepared_destroy(p);
    fusor_stream_destroy(s);
    fusor_args_destroy(a);
    fusor_array_destroy(xd);
    fusor_array_destroy(x);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(pool0().in_use == 0);
}

static void test_failures(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_GPU, &g);
    int64_t n = 5000;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 2), *z = host(1, &n, NAN);
    fusor_args *a = axpy_args(k, 3, x, y, z);

    /* The launch itself fails. */
    F.launch_result = CUDRV_ERROR_LAUNCH_FAILED;
    fusor_status st = fusor_launch(k, a);
    CHECK(st == FUSOR_ERROR_INTERNAL);
    CHECK_MSG(contains(fusor_last_error(), "kernel axpy on GPU 0 (Fake GPU 0): launching "
                                           "fusor_pass0_vec32") &&
                  contains(fusor_last_error(), "CUDA_ERROR_LAUNCH_FAILED"),
              "%s", fusor_last_error());
    CHECK(isnan(((double *)fusor_array_data(z))[17]));
    CHECK(pool0().in_use == 0);
    F.launch_result = 0;

    /* A fault found when the stream synchronises: nothing is copied back. */
    F.sync_result = CUDRV_ERROR_LAUNCH_FAILED;
    st = fusor_launch(k, a);
    CHECK(st == FUSOR_ERROR_INTERNAL && contains(fusor_last_error(), "CUDA_ERROR_LAUNCH_FAILED"));
    CHECK(isnan(((double *)fusor_array_data(z))[17]));
    F.sync_result = 0;

    /* Out of device memory for the launch's buffers. */
    CHECK_OK(fusor_memory_configure(0, 0, 2 * (size_t)n * 8 + 1000));
    st = fusor_launch(k, a);
    CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY && contains(fusor_last_error(), "limit"));
    CHECK(isnan(((double *)fusor_array_data(z))[17]));
    CHECK(pool0().in_use == 0 && pool0().allocations == 0);
    CHECK_OK(fusor_memory_configure(0, 0, 0));
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 3, 1, 2, "after failures");

    /* The JIT refuses the module: the log is the message. */
    fusor_kernel *k2;
    CHECK_OK(fusor_kernel_compile(g, "kernel sub(x: f64[], y: f64[]) -> (z: f64[]) { z = x - y }",
                                  "sub.fu", NULL, &k2));
    fusor_args *a2;
    CHECK_OK(fusor_args_create(k2, &a2));
    CHECK_OK(fusor_args_set_array(a2, "x", x));
    CHECK_OK(fusor_args_set_array(a2, "y", y));
    F.module_result = CUDRV_ERROR_INVALID_PTX;
    st = fusor_launch(k2, a2);
    CHECK(st == FUSOR_ERROR_COMPILE && contains(fusor_last_error(), "rejected the PTX") &&
          contains(fusor_last_error(), "ptxas fatal   : fake failure 218"));
    F.module_result = 0;
    fusor_args_destroy(a2);
    fusor_kernel_destroy(k2);

    /* No device at all with the GPU target: refused before anything is checked. */
    fake_fresh();
    st = fusor_launch(k, a);
    CHECK(st == FUSOR_ERROR_NO_DEVICE &&
          contains(fusor_last_error(), "the GPU target was requested, but no CUDA driver"));

    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

static void test_placement_and_residency(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_AUTO, &g);
    int64_t n = 4096;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 2), *z = host(1, &n, NAN);
    fusor_args *a = axpy_args(k, 2, x, y, z);
    /* Small host arrays: the CPU runs it (for real), and says why. */
    long launches = F.launches;
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 2, 1, 2, "auto on the CPU");
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.target == FUSOR_TARGET_CPU && F.launches == launches);
    CHECK_MSG(contains(pl.reason, "too small to pay for copying"), "%s", pl.reason);
    /* A slow CPU (as the model sees it): the copy pays off. */
    setenv("FUSOR_CPU_BANDWIDTH", "1e6", 1);
    memset(fusor_array_data(z), 0xff, (size_t)n * 8);
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 2, 1, 2, "auto on the GPU");
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU && contains(pl.reason, "pays off"), "%s", pl.reason);
    unsetenv("FUSOR_CPU_BANDWIDTH");

    /* Arrays on the device: the GPU, and an unbound output stays there. */
    fusor_array *xd = on_device(g, x, 1), *yd = on_device(g, y, 1);
    fusor_args *ad = axpy_args(k, 4, xd, yd, NULL);
    long h2d = F.htod_bytes, d2h = F.dtoh_bytes;
    CHECK_OK(fusor_launch(k, ad));
    CHECK_OK(fusor_args_last_placement(ad, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU && contains(pl.reason, "array 'x' lives on GPU 0") &&
                  pl.copy_bytes == 0,
              "%s", pl.reason);
    CHECK(F.dtoh_bytes == d2h && F.htod_bytes - h2d < 4096); /* parameters only */
    fusor_array *zd = NULL, *zh = host(1, &n, NAN);
    CHECK_OK(fusor_args_get_array(ad, "z", &zd));
    int dev;
    CHECK(fusor_array_memory(zd, &dev) == FUSOR_MEMORY_DEVICE && dev == 0);
    CHECK_OK(fusor_array_copy(zh, zd, NULL));
    check_axpy(zh, 4, 1, 2, "device-resident");
    CHECK(pool0().allocations == 3); /* x, y and z on the device */

    /* The CPU target cannot read device memory. */
    CHECK_OK(fusor_context_set_target(g, FUSOR_TARGET_CPU));
    CHECK(fusor_launch(k, ad) == FUSOR_ERROR_UNSUPPORTED);
    CHECK(contains(fusor_last_error(), "cannot read array 'x': it lives on GPU 0"));
    CHECK_OK(fusor_context_set_target(g, FUSOR_TARGET_AUTO));

    /* On a stream: the worker issues the GPU work, synchronise to read. */
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(g, &s));
    memset(fusor_array_data(z), 0xff, (size_t)n * 8);
    CHECK_OK(fusor_args_set_f64(a, "a", -2));
    CHECK_OK(fusor_context_set_target(g, FUSOR_TARGET_GPU));
    CHECK_OK(fusor_launch_async(k, a, s));
    CHECK_OK(fusor_stream_synchronize(s));
    check_axpy(z, -2, 1, 2, "on a stream");
    CHECK(!strcmp(fusor_args_last_target(a), "gpu"));
    fusor_stream_destroy(s);

    fusor_array_destroy(zd);
    fusor_array_destroy(zh);
    fusor_args_destroy(ad);
    fusor_array_destroy(xd);
    fusor_array_destroy(yd);
    CHECK(pool0().allocations == 0 && pool0().in_use == 0);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(F.bad_access == 0);
}

/* Copies a device array back and compares it with want[]. */
static int device_equals(fusor_array *d, const double *want, int64_t n) {
    fusor_array *h = host(1, &n, NAN);
    int same = fusor_array_copy(h, d, NULL) == FUSOR_OK &&
               !memcmp(fusor_array_data(h), want, sizeof(double) * (size_t)n);
    fusor_array_destroy(h);
    return same;
}

/* A prepared launch on device arrays: each binding is captured once as a CUDA Graph and
 * replayed; a ping-pong loop alternates between two graphs; steps allocate nothing and
 * upload scalars only when they change.  Without the graph entry points the same steps
 * launch the kernels directly. */
static void test_prepared_graph(int with_graphs) {
    fake_with_kernels();
    if (!with_graphs)
        F.missing[0] = "cuStreamBeginCapture";
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_AUTO, &g);
    int64_t n = 4096;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 1000);
    fusor_array *xd = on_device(g, x, 1), *yd = on_device(g, y, 1), *zd = on_device(g, x, 0);
    fusor_args *a = axpy_args(k, 0.5, xd, yd, zd);
    fusor_prepared *p;
    CHECK_OK(fusor_prepare(k, a, &p));
    /* The host's mirror of the loop: z = a x + y, then y and z trade places. */
    double *hx = fusor_array_data(x), *hy = malloc(sizeof(double) * (size_t)n),
           *hz = malloc(sizeof(double) * (size_t)n);
    memcpy(hy, fusor_array_data(y), sizeof(double) * (size_t)n);
    double coef = 0.5;
#define MIRROR_STEP()                                                                              \
    do {                                                                                           \
        for (int64_t i = 0; i < n; i++)                                                            \
            hz[i] = coef * hx[i] + hy[i];                                                          \
        double *t_ = hy;                                                                           \
        hy = hz;                                                                                   \
        hz = t_;                                                                                   \
    } while (0)
    long launches0 = F.launches;
    CHECK_OK(fusor_prepared_launch(p));
    MIRROR_STEP();
    CHECK_OK(fusor_prepared_swap(p, "y", "z"));
    long captures, replays;
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK_MSG(captures == with_graphs && replays == with_graphs, "captures %ld replays %ld",
              captures, replays);
    CHECK(!strcmp(fusor_args_last_target(a), "gpu"));
    CHECK_OK(fusor_prepared_launch(p)); /* the second binding */
    MIRROR_STEP();
    CHECK_OK(fusor_prepared_swap(p, "y", "z"));
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK(captures == 2 * with_graphs && replays == 2 * with_graphs);

    /* Steady state: no allocation on the host or the device, no upload, graphs replayed. */
    long dev_allocs = F.alloc_calls + F.pool_allocs, h2d = F.htod_bytes;
    fu_alloc_fail_after(0);
    int ok = 1;
    for (int s = 0; s < 10 && ok; s++) {
        ok = fusor_prepared_launch(p) == FUSOR_OK && fusor_prepared_swap(p, "y", "z") == FUSOR_OK;
        MIRROR_STEP();
    }
    long failures = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(ok && failures == 0, "steps: %s (%ld allocations tried)", fusor_last_error(),
              failures);
    CHECK(F.alloc_calls + F.pool_allocs == dev_allocs && F.htod_bytes == h2d);
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK(captures == 2 * with_graphs && replays == 12 * with_graphs);
    CHECK(F.launches - launches0 == 12); /* one kernel a step, replayed or direct */
    fusor_array *cur;
    CHECK_OK(fusor_prepared_get_array(p, "y", &cur)); /* the newest field */
    CHECK_MSG(device_equals(cur, hy, n), "the field after 12 steps%s",
              with_graphs ? " of graph replays" : " of direct launches");
    fusor_array_destroy(cur);

    /* A new scalar value is uploaded once, before the replay. */
    CHECK_OK(fusor_prepared_set_f64(p, "a", -1.25));
    coef = -1.25;
    CHECK_OK(fusor_prepared_launch(p));
    MIRROR_STEP();
    CHECK(F.htod_bytes > h2d && F.htod_bytes - h2d <= 64);
    CHECK_OK(fusor_prepared_get_array(p, "z", &cur));
    CHECK(device_equals(cur, hy, n));
    fusor_array_destroy(cur);

    /* Queued on a stream: the same graphs, ordered on the stream's CUDA stream. */
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(g, &s));
    CHECK_OK(fusor_prepared_swap(p, "y", "z"));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(fusor_prepared_launch_async(p, s));
        CHECK_OK(fusor_prepared_swap(p, "y", "z"));
        MIRROR_STEP();
    }
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK_OK(fusor_prepared_get_array(p, "y", &cur));
    CHECK(device_equals(cur, hy, n));
    fusor_array_destroy(cur);
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK(captures == 2 * with_graphs && replays == 17 * with_graphs);
    fusor_stream_destroy(s);
#undef MIRROR_STEP

    fusor_prepared_destroy(p);
    if (with_graphs)
        CHECK(F.execs_live == 0 && F.graphs_live == 0);
    free(hy);
    free(hz);
    fusor_args_destroy(a);
    fusor_array_destroy(xd);
    fusor_array_destroy(yd);
    fusor_array_destroy(zd);
    CHECK(pool0().allocations == 0 && pool0().in_use == 0);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(F.bad_access == 0);
}

/* Several GPUs: host arrays go to the context's device (fusor_context_set_device, else
 * FUSOR_DEVICE, else 0); device arrays decide for themselves; a device that does not
 * exist is a clear error for the GPU target and the CPU for AUTO. */
static void test_default_device(void) {
    fake_with_kernels();
    F.ndevices = 2;
    CHECK_OK(fake_load());
    CHECK(fusor_gpu_count() == 2);
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_GPU, &g);
    int64_t n = 1000;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 5), *z = host(1, &n, NAN);
    fusor_args *a = axpy_args(k, 3, x, y, z);
    fusor_placement pl;
    CHECK_OK(fusor_launch(k, a));
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.device == 0 && fusor_context_device(g) == 0);
    CHECK_OK(fusor_context_set_device(g, 1));
    CHECK(fusor_context_device(g) == 1);
    CHECK_OK(fusor_launch(k, a));
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK_MSG(pl.device == 1, "device %d: %s", pl.device, pl.reason);
    check_axpy(z, 3, 1, 5, "on GPU 1");
    CHECK_OK(fusor_context_set_device(g, -1));
    setenv("FUSOR_DEVICE", "1", 1);
    CHECK(fusor_context_device(g) == 1);
    CHECK_OK(fusor_launch(k, a));
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.device == 1);
    unsetenv("FUSOR_DEVICE");
    CHECK(fusor_context_device(g) == 0 && fusor_context_device(NULL) == -1);
    CHECK_OK(fusor_context_set_device(g, 5));
    CHECK(fusor_launch(k, a) == FUSOR_ERROR_NO_DEVICE);
    CHECK_MSG(contains(fusor_last_error(), "no CUDA device 5"), "%s", fusor_last_error());
    CHECK_OK(fusor_context_set_target(g, FUSOR_TARGET_AUTO));
    CHECK_OK(fusor_launch(k, a));
    CHECK(!strcmp(fusor_args_last_target(a), "cpu"));
    CHECK(fusor_context_set_device(g, -2) == FUSOR_ERROR_INVALID_ARGUMENT);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
}

/* Host arrays in chunks: copies in, kernels and copies out of successive chunks on two
 * streams, so that they overlap on a GPU; the results are the same as one piece, in
 * place too; FUSOR_GPU_CHUNK_BYTES=0 turns it off. */
static void test_chunked(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_GPU, &g);
    int64_t n = 100000;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 7), *z = host(1, &n, NAN);
    fusor_args *a = axpy_args(k, 1.5, x, y, z);
    setenv("FUSOR_GPU_CHUNK_BYTES", "64K", 1);
    long launches = F.launches, h2d = F.htod_bytes, d2h = F.dtoh_bytes;
    CHECK_OK(fusor_launch(k, a));
    check_axpy(z, 1.5, 1, 7, "chunked");
    /* 800 KB of f64 in 64 KiB chunks: 12 of 8336 elements (whole vectors), the last
     * shorter, on two streams. */
    CHECK_MSG(F.launches - launches == 12, "%ld chunk launches", F.launches - launches);
    CHECK(F.nlaunch_streams >= 2);
    CHECK(F.htod_bytes - h2d >= 2 * n * 8 && F.htod_bytes - h2d < 2 * n * 8 + 65536);
    CHECK(F.dtoh_bytes - d2h == n * 8);
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.copy_bytes == 3.0 * (double)n * 8);
    CHECK(pool0().in_use == 0 && pool0().allocations == 0);

    /* In place: x = a x + y, chunk by chunk. */
    CHECK_OK(fusor_args_set_array(a, "z", x));
    CHECK_OK(fusor_launch(k, a));
    check_axpy(x, 1.5, 1, 7, "chunked in place");

    /* Off: one piece. */
    setenv("FUSOR_GPU_CHUNK_BYTES", "0", 1);
    CHECK_OK(fusor_args_set_array(a, "z", z));
    memset(fusor_array_data(z), 0xff, (size_t)n * 8);
    launches = F.launches;
    CHECK_OK(fusor_launch(k, a));
    CHECK(F.launches - launches == 1);
    unsetenv("FUSOR_GPU_CHUNK_BYTES");
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(F.bad_access == 0);
}

/* A sequence of two prepared kernels on device arrays: after the members' first runs, a
 * step is captured whole as one graph (two kernels, one graph launch), replayed with no
 * allocation; another arrangement of a member's arrays is another capture. */
static void test_sequence_graph(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_AUTO, &g);
    int64_t n = 4096;
    fusor_array *xh = host(1, &n, 1), *yh = host(1, &n, 100);
    fusor_array *X = on_device(g, xh, 1), *Y = on_device(g, yh, 1), *T = on_device(g, xh, 0);
    fusor_args *a1 = axpy_args(k, 0.5, X, Y, T), *a2 = axpy_args(k, 2, T, X, Y);
    fusor_prepared *p1, *p2;
    CHECK_OK(fusor_prepare(k, a1, &p1));
    CHECK_OK(fusor_prepare(k, a2, &p2));
    fusor_sequence *q;
    CHECK_OK(fusor_sequence_create(g, &q));
    CHECK_OK(fusor_sequence_add(q, p1));
    CHECK_OK(fusor_sequence_add(q, p2));
    double *hx = fusor_array_data(xh), *hy = malloc(sizeof(double) * (size_t)n);
    double *ht = malloc(sizeof(double) * (size_t)n);
    memcpy(hy, fusor_array_data(yh), sizeof(double) * (size_t)n);
    int swapped = 0;
#define SEQ_MIRROR()                                                                               \
    for (int64_t i = 0; i < n; i++) {                                                              \
        ht[i] = 0.5 * (swapped ? hy[i] : hx[i]) + (swapped ? hx[i] : hy[i]);                       \
        hy[i] = 2 * ht[i] + hx[i];                                                                 \
    }
    CHECK_OK(fusor_sequence_launch(q)); /* the members one by one: each decides */
    SEQ_MIRROR();
    long captures, replays;
    sched_sequence_gpu_counts(q, &captures, &replays);
    CHECK(captures == 0 && replays == 0);
    long launches = F.launches, graphs = F.graph_launches;
    CHECK_OK(fusor_sequence_launch(q)); /* captured whole */
    SEQ_MIRROR();
    sched_sequence_gpu_counts(q, &captures, &replays);
    CHECK_MSG(captures == 1 && replays == 1, "captures %ld replays %ld", captures, replays);
    CHECK(F.graph_launches - graphs == 1 && F.launches - launches == 2);
    long dev_allocs = F.alloc_calls + F.pool_allocs;
    fu_alloc_fail_after(0);
    int ok = 1;
    for (int s = 0; s < 8 && ok; s++) {
        ok = fusor_sequence_launch(q) == FUSOR_OK;
        SEQ_MIRROR();
    }
    long failures = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(ok && failures == 0, "steps: %s (%ld allocations tried)", fusor_last_error(),
              failures);
    CHECK(F.alloc_calls + F.pool_allocs == dev_allocs);
    CHECK(F.graph_launches - graphs == 9 && F.launches - launches == 18);
    CHECK(device_equals(Y, hy, n));

    /* Another arrangement of a member's arrays: captured once more, then replayed. */
    CHECK_OK(fusor_prepared_swap(p1, "x", "y"));
    swapped = 1;
    for (int s = 0; s < 3; s++) {
        CHECK_OK(fusor_sequence_launch(q));
        SEQ_MIRROR();
    }
    sched_sequence_gpu_counts(q, &captures, &replays);
    CHECK_MSG(captures == 2 && replays == 12, "captures %ld replays %ld", captures, replays);
    CHECK(device_equals(Y, hy, n));
    /* Queued. */
    fusor_stream *st;
    CHECK_OK(fusor_stream_create(g, &st));
    for (int s = 0; s < 4; s++) {
        CHECK_OK(fusor_sequence_launch_async(q, st));
        SEQ_MIRROR();
    }
    CHECK_OK(fusor_stream_synchronize(st));
    CHECK(device_equals(Y, hy, n));
    fusor_stream_destroy(st);
#undef SEQ_MIRROR
    fusor_sequence_destroy(q);
    fusor_prepared_destroy(p1);
    fusor_prepared_destroy(p2);
    CHECK(F.execs_live == 0);
    free(hy);
    free(ht);
    fusor_args_destroy(a1);
    fusor_args_destroy(a2);
    fusor_array_destroy(X);
    fusor_array_destroy(Y);
    fusor_array_destroy(T);
    CHECK(pool0().allocations == 0 && pool0().in_use == 0);
    fusor_array_destroy(xh);
    fusor_array_destroy(yh);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(F.bad_access == 0);
}

/* fusor_launch on device arrays, again and again: the launch's parameter blocks live in
 * its CUDA stream's own buffer, so a repeated launch allocates nothing and uploads
 * nothing when nothing changed; a new scalar or new arrays are uploaded (and used). */
static void test_launch_scratch(void) {
    fake_with_kernels();
    CHECK_OK(fake_load());
    fusor_context *g;
    fusor_kernel *k = axpy_kernel(FUSOR_TARGET_AUTO, &g);
    int64_t n = 3000;
    fusor_array *x = host(1, &n, 1), *y = host(1, &n, 100), *w = host(1, &n, -7);
    fusor_array *xd = on_device(g, x, 1), *yd = on_device(g, y, 1), *wd = on_device(g, w, 1);
    fusor_array *zd = on_device(g, x, 0);
    fusor_args *a = axpy_args(k, 0.5, xd, yd, zd);
    double *want = malloc(sizeof(double) * (size_t)n);
    const double *hx = fusor_array_data(x), *hy = fusor_array_data(y), *hw = fusor_array_data(w);
    CHECK_OK(fusor_launch(k, a)); /* compiles, loads, makes the stream's buffer */
    long allocs = F.alloc_calls + F.pool_allocs, h2d = F.htod_bytes, launches = F.launches;
    long syncs = F.syncs, sets = F.set_current_calls;
    for (int i = 0; i < 5; i++)
        CHECK_OK(fusor_launch(k, a));
    /* The context is already current on this thread: asked, not set again. */
    CHECK_MSG(F.set_current_calls == sets, "%ld cuCtxSetCurrent in 5 launches",
              F.set_current_calls - sets);
    CHECK_MSG(F.syncs - syncs == 5, "%ld synchronisations in 5 launches", F.syncs - syncs);
    CHECK_MSG(F.alloc_calls + F.pool_allocs == allocs, "%ld device allocations in 5 launches",
              F.alloc_calls + F.pool_allocs - allocs);
    CHECK_MSG(F.htod_bytes == h2d, "%ld bytes uploaded by 5 identical launches",
              F.htod_bytes - h2d);
    CHECK(F.launches - launches == 5);
    /* What one more costs in driver calls: fusor's own work aside, a synchronous launch
     * is the driver's launch and synchronisation. */
    F.ncalled = 0;
    CHECK_OK(fusor_launch(k, a));
    CHECK_MSG(!strcmp(fake_called_list(),
                      "ctx_get_current ctx_get_current launch_kernel stream_synchronize"),
              "a repeated synchronous launch calls: %s", fake_called_list());
    for (int64_t i = 0; i < n; i++)
        want[i] = 0.5 * hx[i] + hy[i];
    CHECK_MSG(device_equals(zd, want, n), "z after identical launches");

    CHECK_OK(fusor_args_set_f64(a, "a", -2.0)); /* a new scalar: uploaded, and used */
    CHECK_OK(fusor_launch(k, a));
    CHECK(F.htod_bytes > h2d && F.alloc_calls + F.pool_allocs == allocs);
    for (int64_t i = 0; i < n; i++)
        want[i] = -2.0 * hx[i] + hy[i];
    CHECK_MSG(device_equals(zd, want, n), "z after a new scalar");

    CHECK_OK(fusor_args_set_array(a, "y", wd)); /* new arrays: their addresses go up */
    h2d = F.htod_bytes;
    CHECK_OK(fusor_launch(k, a));
    CHECK(F.htod_bytes > h2d);
    for (int64_t i = 0; i < n; i++)
        want[i] = -2.0 * hx[i] + hw[i];
    CHECK_MSG(device_equals(zd, want, n), "z after a new y");
    CHECK_OK(fusor_args_set_array(a, "y", yd)); /* and back */
    CHECK_OK(fusor_launch(k, a));
    for (int64_t i = 0; i < n; i++)
        want[i] = -2.0 * hx[i] + hy[i];
    CHECK_MSG(device_equals(zd, want, n), "z after y came back");
    /* The same kernel compiled in another context: its own code object, the same PTX, so
     * the same module (found by the text once, then by the code's serial), for both. */
    fusor_context *g2;
    fusor_kernel *k2 = axpy_kernel(FUSOR_TARGET_AUTO, &g2);
    fusor_args *a2 = axpy_args(k2, 3.0, xd, wd, zd);
    long loads = F.module_loads;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(fusor_launch(k2, a2));
        CHECK_OK(fusor_launch(k, a));
    }
    CHECK_MSG(F.module_loads == loads, "%ld more modules loaded", F.module_loads - loads);
    for (int64_t i = 0; i < n; i++)
        want[i] = -2.0 * hx[i] + hy[i];
    CHECK_MSG(device_equals(zd, want, n), "z after alternating kernels");
    fusor_args_destroy(a2);
    fusor_kernel_destroy(k2);
    fusor_context_destroy(g2);
    CHECK(F.bad_access == 0 && pool0().in_use == 4 * (size_t)n * sizeof(double));
    free(want);
    fusor_args_destroy(a);
    fusor_array *all[] = {x, y, w, xd, yd, wd, zd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        fusor_array_destroy(all[i]);
    fusor_kernel_destroy(k);
    fusor_context_destroy(g);
    CHECK(pool0().in_use == 0);
}

int main(void) {
    setenv("FUSOR_CACHE", "0", 1);
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    test_axpy();
    test_reduction();
    test_reduction_copied_back();
    test_failures();
    test_placement_and_residency();
    test_prepared_graph(1);
    test_prepared_graph(0);
    test_default_device();
    test_chunked();
    test_sequence_graph();
    test_launch_scratch();
    fusor_context_destroy(ctx);
    fake_fresh();
    return check_done();
}
