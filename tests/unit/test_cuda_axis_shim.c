/*
 * test_cuda_axis_shim.c — kernels with axis reductions through the whole GPU path, on the
 * CPU: the staged launcher (scheduler/staged.c, gpuaxis.c) drives the fake driver, and
 * every kernel it launches runs as the stage's real CUDA C (cuda_shim.h: a block's threads
 * are real threads), found by the module it was launched from.  So the launcher's
 * placement, copies, temporaries, parameter blocks, kernel forms, split and fold, stage
 * order, prepared graphs and sequences all meet real kernels, and the results are
 * compared with the CPU target's: bit for bit, except float sums and means (another
 * order of addition), within 1e-12 (f64) or 1e-5 (f32) relative.
 *
 * Kernels: nested axis reductions, several outputs, keepdims, whole-array reductions
 * beside axis ones, scalar parameters, a gufunc broadcast row, f32, integers, bool, and a
 * few long axes with few results (the split form).  Each runs over host arrays under the
 * GPU target, over device arrays (synchronously and queued on a stream), and as a prepared
 * launch of three steps; blocks of 32
 * threads and grids of 3 (fusor_args_set_gpu_shape) keep the shim's thread count small.
 * Without a C++ compiler the test says SKIP.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "cuda_shim.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "gpu.h"
#include "scheduler.h"
#include "stage.h"

#ifndef FUSOR_CXX
#define FUSOR_CXX ""
#endif

typedef struct kcase {
    const char *src;
    fusor_dtype dt;
    int64_t shape[2];
    int sums;
} kcase;

static const kcase cases[] = {
    {"kernel a(x: f64[n, m], r: f64) -> (y: f64[], s: f64[]) {\n"
     "  s = sum(x * r, axis=1)\n  y = x - mean(x, axis=0, keepdims=true)\n}",
     FUSOR_F64, {7, 33}, 1},
    {"kernel b(x: f64[n, m]) -> (y: f64[]) { y = sum(x - mean(x, axis=1, keepdims=true), axis=0) }",
     FUSOR_F64, {9, 40}, 1},
    {"kernel c(x: f64[n, m]) -> (y: f64[], c: f64[]) {\n"
     "  y = x - mean(x)\n  c = sum(x, axis=0) / max(x)\n}",
     FUSOR_F64, {6, 21}, 1},
    {"kernel d(x: f32[n, m], w: f32[m]) -> (y: f32[]) { y = max(x * w, axis=1) }", FUSOR_F32,
     {35, 12}, 0},
    {"kernel e(x: i32[n, m]) -> (y: i64[], z: bool[]) {\n"
     "  y = sum(x, axis=0)\n  z = any(x > 20, axis=1)\n}",
     FUSOR_I32, {11, 9}, 0},
    {"kernel f(x: f64[n, m]) -> (y: f64[]) { y = sum(x * x, axis=1) }", FUSOR_F64, {3, 20000}, 1},
    {"kernel g(x: f64[n, m]) -> (y: f64[]) { y = min(x * 0.0, axis=0) }", FUSOR_F64, {17000, 2},
     0},
};
enum { NCASES = sizeof cases / sizeof cases[0], MAXPROG = 64 };

/* ------------------------------------------------------------------ the shim */

typedef void (*kernel_fn)(const char *);
typedef void (*launch_fn)(kernel_fn, const char *, unsigned, unsigned);

static const char *const axis_names[] = {"fusor_pass0_axis", "fusor_pass0_axisblk",
                                         "fusor_pass0_axissplit", "fusor_pass0_axisfold",
                                         "fusor_pass0_axisfoldblk"};
static const char *const pass_names[] = {"fusor_pass0_contig",   "fusor_pass0_strided",
                                         "fusor_pass0_vec",      "fusor_pass0_contig32",
                                         "fusor_pass0_strided32", "fusor_pass0_vec32"};
enum {
    NAXIS_NAMES = sizeof axis_names / sizeof *axis_names,
    NPASS_NAMES = sizeof pass_names / sizeof *pass_names
};

static struct {
    uint64_t module; /* the PTX text's hash the launcher loads */
    int axis;        /* an AXIS stage: axis_names, else pass_names */
    char *cuda;      /* its CUDA C */
    kernel_fn const *kernels;
} progs[MAXPROG];
static int nprogs;
static launch_fn shim_launch;
static long dispatched, unknown;

static void dispatch(uint64_t module, const char *name, unsigned char *pb, unsigned grid,
                     unsigned block) {
    for (int i = 0; i < nprogs; i++) {
        if (progs[i].module != module)
            continue;
        const char *const *names = progs[i].axis ? axis_names : pass_names;
        int n = progs[i].axis ? NAXIS_NAMES : NPASS_NAMES;
        for (int j = 0; j < n; j++)
            if (!strcmp(names[j], name)) {
                shim_launch(progs[i].kernels[j], (const char *)pb, grid, block);
                dispatched++;
                return;
            }
    }
    unknown++;
}

/* Every GPU stage of k: its PTX (as the launcher will load it: the context's options for
 * the fake's sm_90) and its CUDA C. */
static void add_stages(fusor_context *ctx, fusor_kernel *k) {
    sched_spec *s = k->spec;
    fusor_gpu_options o = ctx->gpu;
    if (!o.arch)
        o.arch = 90;
    for (int i = 0; s && s->staging && i < s->staging->nstages && nprogs < MAXPROG; i++) {
        const ir_stage *g = &s->staging->stages[i];
        if (g->kind == IR_STAGE_SCALARS)
            continue;
        const cg_gpu_code *code;
        CHECK_OK(sched_spec_gpu_code(ctx, &s->stage_gpu[i], &o, &code));
        CHECK_OK(cg_cuda_source(g->k, g->plan, &o, &progs[nprogs].cuda));
        progs[nprogs].module = fake_text_hash(code->ptx);
        progs[nprogs].axis = g->kind == IR_STAGE_AXIS;
        nprogs++;
    }
}

static int write_source(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fputs(CUDA_SHIM CUDA_SHIM_LAUNCH1, f);
    for (int i = 0; i < nprogs; i++) {
        cuda_shim_program(f, i, progs[i].cuda);
        const char *const *names = progs[i].axis ? axis_names : pass_names;
        fprintf(f, "extern \"C\" fu_kernel p%d_kernels[] = {", i);
        for (int j = 0; j < (progs[i].axis ? NAXIS_NAMES : NPASS_NAMES); j++)
            fprintf(f, "%sp%d::%s", j ? ", " : "", i, names[j]);
        fprintf(f, "};\n");
    }
    return fclose(f) == 0;
}

/* ------------------------------------------------------------------ running */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double draw(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(int64_t)(rng % 65) / 8.0 - 4.0; /* exact in every dtype used */
}

static fusor_array *filled(fusor_context *ctx, fusor_dtype dt, int ndim, const int64_t *shape) {
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(ctx, dt, ndim, shape, &a));
    for (int64_t i = 0; a && i < fusor_array_size(a); i++) {
        double v = draw();
        if (dt == FUSOR_F64)
            ((double *)fusor_array_data(a))[i] = v;
        else if (dt == FUSOR_F32)
            ((float *)fusor_array_data(a))[i] = (float)v;
        else
            ((int32_t *)fusor_array_data(a))[i] = (int32_t)(v * 8);
    }
    return a;
}

static fusor_array *to_host(fusor_context *ctx, fusor_array *a) {
    fusor_array *h = NULL;
    CHECK_OK(fusor_array_create(ctx, fusor_array_dtype(a), fusor_array_ndim(a),
                                fusor_array_shape(a), &h));
    CHECK_OK(fusor_array_copy(h, a, NULL));
    return h;
}

static double elem(const fusor_array *a, int64_t i) {
    const void *p = fusor_array_data(a);
    switch (fusor_array_dtype(a)) {
    case FUSOR_F64: return ((const double *)p)[i];
    case FUSOR_F32: return ((const float *)p)[i];
    case FUSOR_I64: return (double)((const int64_t *)p)[i];
    case FUSOR_BOOL: return ((const unsigned char *)p)[i];
    default: return NAN;
    }
}

static int same(double g, double w, fusor_dtype dt, int sums) {
    if (isnan(g) || isnan(w))
        return isnan(g) && isnan(w);
    if (!sums)
        return g == w && signbit(g) == signbit(w);
    double tol = dt == FUSOR_F32 ? 1e-5 : 1e-12;
    return g == w || fabs(g - w) <= tol * (fabs(g) + fabs(w) + 1.0);
}

/* Output `name` of a (the GPU's) against b's (the CPU's). */
static void compare(const kcase *c, fusor_context *ctx, fusor_args *a, fusor_args *b,
                    const char *name, const char *how) {
    fusor_array *ga = NULL, *ca = NULL;
    CHECK_OK(fusor_args_get_array(a, name, &ga));
    CHECK_OK(fusor_args_get_array(b, name, &ca));
    if (!ga || !ca)
        return;
    fusor_array *gh = to_host(ctx, ga);
    int bad = 0;
    CHECK(fusor_array_size(gh) == fusor_array_size(ca));
    for (int64_t i = 0; i < fusor_array_size(ca) && i < fusor_array_size(gh); i++)
        if (!same(elem(gh, i), elem(ca, i), c->dt, c->sums) && bad++ < 3)
            fprintf(stderr, "%s (%s): %s[%lld] = %.17g, the CPU says %.17g\n", c->src, how, name,
                    (long long)i, elem(gh, i), elem(ca, i));
    CHECK_MSG(bad == 0, "%s (%s): %d elements of %s differ", c->src, how, bad, name);
    fusor_array_destroy(gh);
    fusor_array_destroy(ga);
    fusor_array_destroy(ca);
}

/* Binds c's inputs (x, and w or r when the kernel has them) to a. */
static void bind(const kcase *c, fusor_args *a, fusor_array *x, fusor_array *w) {
    CHECK_OK(fusor_args_set_array(a, "x", x));
    if (strstr(c->src, "w: f32[m]"))
        CHECK_OK(fusor_args_set_array(a, "w", w));
    if (strstr(c->src, "r: f64"))
        CHECK_OK(fusor_args_set_f64(a, "r", 0.75));
    CHECK_OK(fusor_args_set_gpu_shape(a, 32, 3));
}

static void run_case(const kcase *c, fusor_context *cpu, fusor_context *gpu,
                     fusor_kernel *kc, fusor_kernel *kg) {
    const char *outs[2] = {"y", strstr(c->src, "c: f64[]")      ? "c"
                                : strstr(c->src, "s: f64[]")   ? "s"
                                : strstr(c->src, "z: bool[]")  ? "z"
                                                               : NULL};
    fusor_array *x = filled(cpu, c->dt, 2, c->shape), *w = filled(cpu, FUSOR_F32, 1, &c->shape[1]);
    fusor_array *xd = NULL, *wd = NULL;
    CHECK_OK(fusor_array_create_on(gpu, FUSOR_MEMORY_DEVICE, 0, c->dt, 2, c->shape, &xd));
    CHECK_OK(fusor_array_copy(xd, x, NULL));
    CHECK_OK(fusor_array_create_on(gpu, FUSOR_MEMORY_DEVICE, 0, FUSOR_F32, 1, &c->shape[1], &wd));
    CHECK_OK(fusor_array_copy(wd, w, NULL));
    fusor_args *ac, *ah, *ad;
    CHECK_OK(fusor_args_create(kc, &ac));
    bind(c, ac, x, w);
    CHECK_OK(fusor_launch(kc, ac));
    /* Host arrays under the GPU target, then device arrays. */
    CHECK_OK(fusor_args_create(kg, &ah));
    bind(c, ah, x, w);
    long before = dispatched;
    CHECK_OK(fusor_launch(kg, ah));
    CHECK_MSG(dispatched > before && !strcmp(fusor_args_last_target(ah), "gpu"), "%s", c->src);
    CHECK_OK(fusor_args_create(kg, &ad));
    bind(c, ad, xd, wd);
    CHECK_OK(fusor_launch(kg, ad));
    /* Queued on a stream, over device arrays. */
    fusor_args *aq;
    fusor_stream *sq = NULL;
    CHECK_OK(fusor_args_create(kg, &aq));
    bind(c, aq, xd, wd);
    CHECK_OK(fusor_stream_create(gpu, &sq));
    CHECK_OK(fusor_launch_async(kg, aq, sq));
    CHECK_OK(fusor_stream_synchronize(sq));
    fusor_stream_destroy(sq);
    for (int o = 0; o < 2 && outs[o]; o++) {
        compare(c, cpu, ah, ac, outs[o], "host arrays");
        compare(c, cpu, ad, ac, outs[o], "device arrays");
        compare(c, cpu, aq, ac, outs[o], "on a stream");
    }
    fusor_args_destroy(aq);
    /* Prepared, over the device arrays (its outputs moved to the device): three steps. */
    fusor_args *ap;
    CHECK_OK(fusor_args_create(kg, &ap));
    bind(c, ap, xd, wd);
    fusor_prepared *p = NULL;
    CHECK_OK(fusor_prepare(kg, ap, &p));
    for (int step = 0; p && step < 3; step++)
        CHECK_OK(fusor_prepared_launch(p));
    long captures = -1, replays = -1;
    sched_prepared_gpu_counts(p, &captures, &replays);
    CHECK_MSG(captures == 1 && replays == 3, "%s: %ld captures, %ld replays", c->src, captures,
              replays);
    for (int o = 0; o < 2 && outs[o]; o++)
        compare(c, cpu, ap, ac, outs[o], "prepared");
    fusor_prepared_destroy(p);
    fusor_args_destroy(ap);
    fusor_args_destroy(ac);
    fusor_args_destroy(ah);
    fusor_args_destroy(ad);
    fusor_array_destroy(x);
    fusor_array_destroy(w);
    fusor_array_destroy(xd);
    fusor_array_destroy(wd);
}

int main(void) {
    if (!FUSOR_CXX[0]) {
        printf("SKIP: no C++ compiler known at configure time; the CUDA C is not run\n");
        return 0;
    }
    setenv("FUSOR_CACHE", "0", 1);
    fake_fresh();
    REQUIRE(fake_load() == FUSOR_OK);
    fusor_context *cpu, *gpu;
    fusor_context_options oc = {.target = FUSOR_TARGET_CPU}, og = {.target = FUSOR_TARGET_GPU};
    REQUIRE(fusor_context_create(&oc, &cpu) == FUSOR_OK);
    REQUIRE(fusor_context_create(&og, &gpu) == FUSOR_OK);
    fusor_kernel *kc[NCASES] = {0}, *kg[NCASES] = {0};
    for (int i = 0; i < NCASES; i++) {
        CHECK_OK(fusor_kernel_compile(cpu, cases[i].src, "ax.fu", NULL, &kc[i]));
        CHECK_OK(fusor_kernel_compile(gpu, cases[i].src, "ax.fu", NULL, &kg[i]));
        if (kg[i])
            add_stages(gpu, kg[i]);
    }
    char why[300];
    void *lib = check_failed ? NULL
                             : cuda_shim_open(FUSOR_CXX, "axis_shim", 1, write_source, why,
                                              sizeof why);
    CHECK_MSG(lib != NULL, "%s", check_failed ? "a kernel did not compile" : why);
    for (int i = 0; lib && i < nprogs; i++) {
        char sym[32];
        snprintf(sym, sizeof sym, "p%d_kernels", i);
        progs[i].kernels = dlsym(lib, sym);
        CHECK(progs[i].kernels != NULL);
    }
    shim_launch = lib ? (launch_fn)dlsym(lib, "fu_launch") : NULL;
    if (lib && shim_launch) {
        F.dispatch = dispatch;
        for (int i = 0; i < NCASES; i++)
            if (kc[i] && kg[i])
                run_case(&cases[i], cpu, gpu, kc[i], kg[i]);
        F.dispatch = NULL;
    }
    CHECK_MSG(unknown == 0, "%ld launches of kernels from no known module", unknown);
    CHECK(F.bad_access == 0);
    printf("%d kernels with axis reductions (%d GPU stages) through the staged GPU path: %ld "
           "kernel launches run as CUDA C on the CPU, compared with the CPU target\n",
           NCASES, nprogs, dispatched);
    for (int i = 0; i < NCASES; i++) {
        fusor_kernel_destroy(kc[i]);
        fusor_kernel_destroy(kg[i]);
    }
    for (int i = 0; i < nprogs; i++)
        fu_free(progs[i].cuda);
    fusor_context_destroy(cpu);
    fusor_context_destroy(gpu);
    fake_fresh();
    return check_done();
}
