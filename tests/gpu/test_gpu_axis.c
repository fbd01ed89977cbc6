/*
 * test_gpu_axis.c — on a machine with a GPU: kernels with axis reductions run there and
 * agree with the CPU.  Each kernel runs on the CPU target (the reference), on the GPU
 * target over host arrays (copied in and out), over device arrays under AUTO (the
 * outputs it allocates live on the device), and as a prepared launch over device arrays
 * (three steps).  Inputs are random; outputs the test binds are poisoned (NaN) first.
 * Array elements must match: bit for bit except float sums and means (another order of
 * addition), within 1e-12 (f64) or 1e-5 (f32) relative.  Shapes: inner and outer axes,
 * a short and a long axis, 3-D, a reduced axis of length 1, no results at all, few
 * results over a long inner axis (blocks over chunks) and over a long outer one (threads
 * over chunks), many short rows, zeros of both signs.  scripts/device-run.sh runs it
 * again with each form imposed (FUSOR_GPU_AXIS_FORM).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gpu_skip.h"

typedef struct axcase {
    const char *src;
    fusor_dtype dt;
    int ndim;
    int64_t shape[3];
    int sums; /* float sums or means: compared within a tolerance */
} axcase;

static const axcase cases[] = {
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x * 2.0 + 1.0, axis=1) }", FUSOR_F64, 2,
     {2048, 1024}, 1},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=0) }", FUSOR_F64, 2, {37, 5000}, 1},
    {"kernel r(x: f32[n, m]) -> (y: f32[]) { y = max(x * x, axis=1) }", FUSOR_F32, 2, {300, 70}, 0},
    {"kernel r(x: f32[n, m]) -> (y: f32[]) { y = min(x, axis=0) }", FUSOR_F32, 2, {70, 300}, 0},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = x / sum(x, axis=1, keepdims=true) }", FUSOR_F64,
     2, {500, 300}, 1},
    {"kernel r(x: f64[n, m]) -> (y: f64[], c: f64[]) {\n"
     "  y = x - mean(x)\n  c = sum(x, axis=0) / max(x)\n}",
     FUSOR_F64, 2, {129, 65}, 1},
    {"kernel r(x: f64[a, b, c]) -> (y: f64[]) { y = mean(x, axis=1) }", FUSOR_F64, 3,
     {4, 300, 50}, 1},
    {"kernel r(x: f64[a, b, c]) -> (y: f64[]) { y = max(x, axis=1, keepdims=true) }", FUSOR_F64,
     3, {5, 7, 300}, 0},
    {"kernel r(x: f64[a, b, c]) -> (y: f64[]) { y = sum(x, axis=2) }", FUSOR_F64, 3, {4, 5, 1}, 1},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=1) }", FUSOR_F64, 2, {0, 8}, 1},
    /* Few results over a long axis: the split form (chunks, then their fold). */
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x * x, axis=1) }", FUSOR_F64, 2,
     {3, 2000000}, 1},
    {"kernel r(x: f32[n, m]) -> (y: f32[]) { y = max(x, axis=1) }", FUSOR_F32, 2, {2, 500000},
     0},
    /* ... over an outer axis: threads over chunks (312 of 129), then their fold. */
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = min(x * 0.0, axis=0) }", FUSOR_F64, 2,
     {40000, 3}, 0},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=0) }", FUSOR_F64, 2, {1000, 37}, 1},
    /* Many chunks per result (244, 1551, 2326): a block per result folds them. */
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=1) }", FUSOR_F64, 2, {2, 1000000}, 1},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=0) }", FUSOR_F64, 2, {200000, 5}, 1},
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = max(x * 0.0, axis=0) }", FUSOR_F64, 2,
     {300000, 2}, 0},
    /* Many short rows: a thread per row. */
    {"kernel r(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=1) }", FUSOR_F64, 2, {20000, 100}, 1},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double draw(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 0.5;
}

static int close_enough(double g, double w, fusor_dtype dt, int sums) {
    if (isnan(g) || isnan(w))
        return isnan(g) && isnan(w);
    if (!sums) /* the same value and the same zero */
        return g == w && signbit(g) == signbit(w);
    double tol = dt == FUSOR_F32 ? 1e-5 : 1e-12;
    return g == w || fabs(g - w) <= tol * (fabs(g) + fabs(w) + 1.0);
}

static double elem(const fusor_array *a, int64_t i) {
    return fusor_array_dtype(a) == FUSOR_F32 ? ((const float *)fusor_array_data(a))[i]
                                             : ((const double *)fusor_array_data(a))[i];
}

/* Output `name` of args a as a host array (copied back when on the device). */
static fusor_array *result(fusor_context *ctx, fusor_args *a, const char *name) {
    fusor_array *r = NULL, *h = NULL;
    CHECK_OK(fusor_args_get_array(a, name, &r));
    if (!r)
        return NULL;
    CHECK_OK(fusor_array_create(ctx, fusor_array_dtype(r), fusor_array_ndim(r),
                                fusor_array_shape(r), &h));
    CHECK_OK(fusor_array_copy(h, r, NULL));
    fusor_array_destroy(r);
    return h;
}

static int compare(const axcase *c, const char *name, fusor_array *got, fusor_array *want,
                   const char *how) {
    CHECK_MSG(got && want && fusor_array_size(got) == fusor_array_size(want), "%s %s: sizes",
              c->src, how);
    if (!got || !want || fusor_array_size(got) != fusor_array_size(want))
        return 1;
    int bad = 0;
    for (int64_t i = 0; i < fusor_array_size(want); i++)
        if (!close_enough(elem(got, i), elem(want, i), c->dt, c->sums) && bad++ < 3)
            fprintf(stderr, "%s (%s): %s[%lld] = %.17g, the CPU says %.17g\n", c->src, how, name,
                    (long long)i, elem(got, i), elem(want, i));
    CHECK_MSG(bad == 0, "%s (%s): %d elements of %s differ", c->src, how, bad, name);
    return bad;
}

static void run_case(const axcase *c) {
    fusor_context *cpu, *gpu, *autoc;
    fusor_context_options oc = {.target = FUSOR_TARGET_CPU}, og = {.target = FUSOR_TARGET_GPU};
    CHECK_OK(fusor_context_create(&oc, &cpu));
    CHECK_OK((fusor_context_create)(&og, &gpu));
    CHECK_OK(fusor_context_create(NULL, &autoc));
    fusor_kernel *kc, *kg, *ka;
    CHECK_OK(fusor_kernel_compile(cpu, c->src, "ax.fu", NULL, &kc));
    CHECK_OK(fusor_kernel_compile(gpu, c->src, "ax.fu", NULL, &kg));
    CHECK_OK(fusor_kernel_compile(autoc, c->src, "ax.fu", NULL, &ka));
    fusor_array *x, *xd;
    CHECK_OK(fusor_array_create(cpu, c->dt, c->ndim, c->shape, &x));
    for (int64_t i = 0; i < fusor_array_size(x); i++) {
        double v = draw();
        if (c->dt == FUSOR_F32)
            ((float *)fusor_array_data(x))[i] = (float)v;
        else
            ((double *)fusor_array_data(x))[i] = v;
    }
    CHECK_OK(fusor_array_create_on(autoc, FUSOR_MEMORY_DEVICE, fusor_context_device(autoc),
                                   c->dt, c->ndim, c->shape, &xd));
    CHECK_OK(fusor_array_copy(xd, x, NULL));
    const char *outs[2] = {"y", strstr(c->src, "c: f64[]") ? "c" : NULL};
    /* The reference, then the GPU target over host arrays. */
    fusor_args *ac, *ag, *aa;
    CHECK_OK(fusor_args_create(kc, &ac));
    CHECK_OK(fusor_args_set_array(ac, "x", x));
    CHECK_OK(fusor_launch(kc, ac));
    CHECK_OK(fusor_args_create(kg, &ag));
    CHECK_OK(fusor_args_set_array(ag, "x", x));
    CHECK_OK(fusor_launch(kg, ag));
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(ag, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU, "%s: %s", c->src, pl.reason);
    /* Device arrays under AUTO: the GPU, outputs allocated there. */
    CHECK_OK(fusor_args_create(ka, &aa));
    CHECK_OK(fusor_args_set_array(aa, "x", xd));
    CHECK_OK(fusor_launch(ka, aa));
    CHECK_OK(fusor_args_last_placement(aa, &pl));
    CHECK_MSG(pl.target == FUSOR_TARGET_GPU || fusor_array_size(x) == 0, "%s: %s", c->src,
              pl.reason); /* an empty array has no memory to live in */
    for (int o = 0; o < 2 && outs[o]; o++) {
        fusor_array *want = result(cpu, ac, outs[o]);
        fusor_array *g1 = result(cpu, ag, outs[o]), *g2 = result(cpu, aa, outs[o]);
        compare(c, outs[o], g1, want, "GPU target, host arrays");
        compare(c, outs[o], g2, want, "AUTO, device arrays");
        fusor_array_destroy(want);
        fusor_array_destroy(g1);
        fusor_array_destroy(g2);
    }
    /* A prepared launch over device arrays, its outputs bound (and poisoned). */
    fusor_args *ap;
    CHECK_OK(fusor_args_create(ka, &ap));
    CHECK_OK(fusor_args_set_array(ap, "x", xd));
    fusor_array *bound[2] = {0};
    for (int o = 0; o < 2 && outs[o]; o++) {
        fusor_array *r = NULL;
        CHECK_OK(fusor_args_get_array(aa, outs[o], &r));
        CHECK_OK(fusor_array_create_on(autoc, FUSOR_MEMORY_DEVICE, fusor_context_device(autoc),
                                       fusor_array_dtype(r), fusor_array_ndim(r),
                                       fusor_array_shape(r), &bound[o]));
        fusor_array *nan = NULL;
        CHECK_OK(fusor_array_create(cpu, fusor_array_dtype(r), fusor_array_ndim(r),
                                    fusor_array_shape(r), &nan));
        memset(fusor_array_data(nan), 0xff, (size_t)fusor_array_size(nan) *
                                                (fusor_array_dtype(r) == FUSOR_F32 ? 4 : 8));
        CHECK_OK(fusor_array_copy(bound[o], nan, NULL));
        CHECK_OK(fusor_args_set_array(ap, outs[o], bound[o]));
        fusor_array_destroy(nan);
        fusor_array_destroy(r);
    }
    fusor_prepared *p = NULL;
    CHECK_OK(fusor_prepare(ka, ap, &p));
    for (int step = 0; p && step < 3; step++)
        CHECK_OK(fusor_prepared_launch(p));
    for (int o = 0; o < 2 && outs[o]; o++) {
        fusor_array *want = result(cpu, ac, outs[o]), *h = NULL;
        CHECK_OK(fusor_array_create(cpu, fusor_array_dtype(bound[o]), fusor_array_ndim(bound[o]),
                                    fusor_array_shape(bound[o]), &h));
        CHECK_OK(fusor_array_copy(h, bound[o], NULL));
        compare(c, outs[o], h, want, "prepared, device arrays");
        fusor_array_destroy(h);
        fusor_array_destroy(want);
        fusor_array_destroy(bound[o]);
    }
    fusor_prepared_destroy(p);
    fusor_args_destroy(ap);
    fusor_args_destroy(ac);
    fusor_args_destroy(ag);
    fusor_args_destroy(aa);
    fusor_array_destroy(x);
    fusor_array_destroy(xd);
    fusor_kernel_destroy(kc);
    fusor_kernel_destroy(kg);
    fusor_kernel_destroy(ka);
    fusor_context_destroy(cpu);
    fusor_context_destroy(gpu);
    fusor_context_destroy(autoc);
}

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_axis"))
        return GPU_SKIP_CODE;
    for (int i = 0; i < NCASES; i++)
        run_case(&cases[i]);
    printf("%d kernels with axis reductions: GPU == CPU (host arrays, device arrays, "
           "prepared)\n", NCASES);
    return check_done();
}
