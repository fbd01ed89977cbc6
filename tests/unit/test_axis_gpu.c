/*
 * test_axis_gpu.c — axis reductions on the GPU paths, checked without a GPU.
 *
 *   1. The launch of an AXIS stage (sched_gpu_axis_shape, sched_gpu_axis_split): which
 *      kernel form, block and grid for inner and outer axes, few and many results, short
 *      and long axes, one- and three-word reductions, overrides.
 *   2. Each program's AXIS stages compile by both paths (NVPTX for sm_80 and sm_90,
 *      NVRTC for compute_80) and ptxas accepts the PTX for sm_80 and sm_90.
 *   3. The CUDA C of each AXIS stage runs on the CPU (cuda_shim.h: a block's threads are
 *      real threads) with the parameter block the launcher writes (sched_gpu_axis_params),
 *      in every form (a thread per result, a block per result, the axis split into
 *      chunks of 7 for blocks and for threads, then folded by a thread or a block per
 *      result), with the launcher's shape,
 *      32-thread blocks, and a single block so every loop strides; over shapes with
 *      axes of length 0, 1, under and over a block.  Outputs are poisoned first and
 *      compared with the interpreter running the whole kernel: bit for bit, except float
 *      sums (another order than NumPy's pairwise one), within 1e-12 (f64), 1e-5 (f32),
 *      1e-2 (f16, rounded once from an f32 sum) relative.
 *
 * Without a C++ compiler part 3 says SKIP; without ptxas part 2 only compiles.
 */
#include <dlfcn.h>
#include <math.h>

#include "alloc.h"
#include "cuda_shim.h"
#include "gpuaxis.h"
#include "interp.h"
#include "scalar.h"
#include "stage.h"
#include "test_ptx_util.h"

#ifndef FUSOR_CXX
#define FUSOR_CXX ""
#endif

static const char shim[] = CUDA_SHIM CUDA_SHIM_LAUNCH1;

/* Each program's one output is an axis reduction, so its one AXIS stage writes it. */
static const char *const sources[] = {
    "kernel s1(x: f64[n, m]) -> (y: f64[]) { y = sum(x * 2.0 + 1.0, axis=1) }",
    "kernel s0(x: f64[n, m]) -> (y: f64[]) { y = sum(x, axis=0) }",
    "kernel mx(x: f32[n, m], w: f32[m]) -> (y: f32[]) { y = max(x * w, axis=1) }",
    "kernel mn(x: f64[a, b, c]) -> (y: f64[]) { y = min(x - 0.25, axis=1) }",
    "kernel ip(x: i32[n, m], k: i32) -> (y: i64[]) { y = sum(x * k, axis=-1) }",
    "kernel im(x: i16[n, m]) -> (y: i16[]) { y = max(x, axis=0) }",
    "kernel an(x: f64[n, m]) -> (y: bool[]) { y = any(x > 3.0, axis=0) }",
    "kernel al(x: i64[n, m]) -> (y: bool[]) { y = all(x != 0, axis=1) }",
    "kernel hs(x: f16[n, m]) -> (y: f16[]) { y = sum(x, axis=1) }",
    "kernel kd(x: f64[n, m], k: f64) -> (y: f64[]) { y = max(x * k, axis=1, keepdims=true) }",
    "kernel i3(x: f32[a, b, c]) -> (y: f32[]) { y = sum(x * x, axis=2) }",
    "kernel o3(x: f64[a, b, c]) -> (y: f64[]) { y = sum(x, axis=0) }",
    "kernel pd(x: f64[n, m]) -> (y: f64[]) { y = prod(x * 0.125 + 1.0, axis=1) }",
    /* Only zeros of both signs: the later zero's sign is the result (the last-zero tag). */
    "kernel zx(x: f64[n, m]) -> (y: f64[]) { y = max(x * 0.0, axis=1) }",
    "kernel zn(x: f32[n, m]) -> (y: f32[]) { y = min(x * 0.0, axis=0) }",
};
enum { NPROG = sizeof sources / sizeof sources[0] };

typedef struct prog {
    arena a;
    ir_kernel *k; /* the whole kernel (the interpreter runs it) */
    ir_staging *sg;
    int stage;    /* the AXIS stage */
} prog;
static prog progs[NPROG];

static uint64_t state = 0x61c3a5ull;
static uint64_t next_rand(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void build(prog *p, const char *src) {
    arena_init(&p->a);
    fe_program *fp;
    int index;
    fusor_status st = fe_parse(&p->a, src, "axis.fu", &fp);
    if (!st)
        st = fe_find_kernel(fp, NULL, &index);
    if (!st)
        st = fe_check(&p->a, fp, index, NULL, &p->k);
    if (!st)
        st = ir_stage_build(p->k, &p->a, &p->sg);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", src, fusor_last_error());
    p->stage = -1;
    for (int s = 0; !st && s < p->sg->nstages; s++)
        if (p->sg->stages[s].kind == IR_STAGE_AXIS) {
            CHECK_MSG(p->stage < 0, "%s: more than one AXIS stage", src);
            CHECK(p->sg->stages[s].k->axis_stage);
            p->stage = s;
        }
    CHECK_MSG(p->stage >= 0, "%s: no AXIS stage", src);
}

/* ------------------------------------------------------------------ 1. launch shapes */

static void test_shapes(void) {
    int b, g, form;
    int64_t chunk, nchunks;
    /* The innermost axis, long enough: a block per result, 256 threads. */
    sched_gpu_axis_shape(1000, 4096, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && b == 256 && g == 1000);
    sched_gpu_axis_shape(100000, 2048, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && g == 65536);
    sched_gpu_axis_shape(100000, 2047, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && g == 391);
    /* ... a short one, few results: a block per result sized to the axis (whole warps). */
    sched_gpu_axis_shape(1000, 70, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && b == 96 && g == 1000);
    /* ... short rows, many of them: a thread each (never split: the rows are its own). */
    sched_gpu_axis_shape(16384, 1023, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && b == 256 && g == 64);
    CHECK(!sched_gpu_axis_split(16384, 1023, 1, 1, &chunk, &nchunks) && chunk == 1023);
    sched_gpu_axis_shape(16383, 1023, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK);
    /* Too short to share: a thread per result. */
    sched_gpu_axis_shape(1000, 63, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && b == 256 && g == 4);
    /* An outer axis with results enough for the GPU: a thread each (neighbours read
     * neighbours), whole. */
    sched_gpu_axis_shape(1 << 20, 4096, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && b == 256 && g == 4096);
    CHECK(!sched_gpu_axis_split(1 << 20, 4096, 0, 1, &chunk, &nchunks));
    /* ... fewer: the axis cut into chunks for about 2^18 threads, >= 128 elements each. */
    CHECK(sched_gpu_axis_split(24414, 4096, 0, 1, &chunk, &nchunks) && nchunks == 11 &&
          chunk == 373);
    sched_gpu_axis_shape(24414, 4096, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && b == 256 && g == (24414 * 11 + 255) / 256);
    CHECK(sched_gpu_axis_split(23, 4194304, 0, 1, &chunk, &nchunks) && nchunks == 11398);
    CHECK(sched_gpu_axis_split(100, 1000, 0, 1, &chunk, &nchunks) && nchunks == 7);
    /* ... too short to cut: few results get a block each, many a thread each. */
    sched_gpu_axis_shape(100, 200, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && b == 224 && g == 100);
    sched_gpu_axis_shape(5000, 100, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD);
    /* The same shape along the innermost axis but for extents of 1 counts as innermost. */
    int64_t shp[3] = {7, 5, 1};
    ir_domain d3 = {.ndim = 3};
    memcpy(d3.shape, shp, sizeof shp);
    CHECK(sched_gpu_axis_innermost(&d3, 1) && sched_gpu_axis_innermost(&d3, 2) &&
          !sched_gpu_axis_innermost(&d3, 0));
    /* A long innermost axis: blocks over chunks of about 8192 (at least 2048 blocks, at
     * least 4096 elements each). */
    CHECK(sched_gpu_axis_split(3, 100000000, 1, 1, &chunk, &nchunks));
    CHECK(nchunks == 12208 && chunk == 8192 && chunk * nchunks >= 100000000);
    sched_gpu_axis_shape(3, 100000000, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_SPLIT && b == 256 && g == 3 * 12208);
    CHECK(sched_gpu_axis_split(1, 20000, 1, 1, &chunk, &nchunks) && nchunks == 4 && chunk == 5000);
    CHECK(sched_gpu_axis_split(381, 262144, 1, 1, &chunk, &nchunks) && nchunks == 32);
    CHECK(sched_gpu_axis_split(10000, 10000, 1, 1, &chunk, &nchunks) && nchunks == 2 &&
          chunk == 5000);
    /* ... a float min/max too (three words), but not a short axis. */
    CHECK(sched_gpu_axis_split(3, 100000000, 1, 3, &chunk, &nchunks) && nchunks == 12208);
    CHECK(!sched_gpu_axis_split(3, 8191, 1, 1, &chunk, &nchunks) && chunk == 8191);
    CHECK(sched_gpu_axis_split(3, 8192, 1, 1, &chunk, &nchunks) && nchunks == 2);
    CHECK(!sched_gpu_axis_split(100000, 8192, 1, 1, &chunk, &nchunks)); /* blocks enough */
    sched_gpu_axis_shape(3, 100000000, 1, 3, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_SPLIT && g == 3 * 12208);
    /* The fold: a thread per result, or a block per result for 64 rows or more. */
    int byb;
    sched_gpu_axis_fold_shape(24414, 11, 1024, 1024, &b, &g, &byb);
    CHECK(!byb && b == 256 && g == 96);
    sched_gpu_axis_fold_shape(23, 11398, 1024, 1024, &b, &g, &byb);
    CHECK(byb && b == 256 && g == 23);
    sched_gpu_axis_fold_shape(3, 64, 1024, 1024, &b, &g, &byb);
    CHECK(byb && b == 64 && g == 3);
    sched_gpu_axis_fold_shape(3, 100, 1024, 96, &b, &g, &byb);
    CHECK(byb && b == 96 && g == 3);
    sched_gpu_axis_fold_shape((int64_t)1 << 40, 2, 128, 1024, &b, &g, &byb);
    CHECK(!byb && b == 128 && g == 65536);
    /* Many results: the grid is capped, the kernels stride. */
    sched_gpu_axis_shape((int64_t)1 << 40, 4096, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && g == 65536);
    /* A kernel allowing only 128 threads; overrides (a block per result rounds to warps). */
    sched_gpu_axis_shape(1000, 4096, 1, 1, 128, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && b == 128);
    sched_gpu_axis_shape(1000, 4096, 1, 1, 1024, 100, 7, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && b == 96 && g == 7);
    sched_gpu_axis_shape(1 << 20, 10, 0, 1, 1024, 100, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && b == 100 && g == (1 << 20) / 100 + 1);
    /* No results at all still launches a valid grid. */
    sched_gpu_axis_shape(0, 10, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(g == 1 && b >= 1);
    /* FUSOR_GPU_AXIS_FORM imposes a form (benchmarks compare them); a forced split cuts
     * even a short axis in two. */
    setenv("FUSOR_GPU_AXIS_FORM", "thread", 1);
    sched_gpu_axis_shape(1000, 4096, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && g == 4);
    CHECK(!sched_gpu_axis_split(3, 100000000, 1, 1, &chunk, &nchunks) && chunk == 100000000);
    CHECK(!sched_gpu_axis_split(24414, 4096, 0, 1, &chunk, &nchunks));
    setenv("FUSOR_GPU_AXIS_FORM", "block", 1);
    sched_gpu_axis_shape(1 << 20, 4096, 0, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_BLOCK && g == 65536);
    setenv("FUSOR_GPU_AXIS_FORM", "split", 1);
    sched_gpu_axis_shape(1000, 100, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_SPLIT && g == 2000);
    CHECK(sched_gpu_axis_split(1000, 100, 0, 1, &chunk, &nchunks) && chunk == 50 && nchunks == 2);
    CHECK(!sched_gpu_axis_split(1000, 1, 1, 1, &chunk, &nchunks)); /* nothing to cut */
    setenv("FUSOR_GPU_AXIS_FORM", "threadsplit", 1);
    sched_gpu_axis_shape(1 << 20, 4096, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD && g == 8192);
    CHECK(sched_gpu_axis_split(1 << 20, 4096, 1, 1, &chunk, &nchunks) && nchunks == 2);
    setenv("FUSOR_GPU_AXIS_FORM", "bogus", 1); /* not a form: the shape decides */
    sched_gpu_axis_shape(1000, 63, 1, 1, 1024, 0, 0, &b, &g, &form);
    CHECK(form == SCHED_AXIS_THREAD);
    unsetenv("FUSOR_GPU_AXIS_FORM");
}

/* ------------------------------------------------------------------ 2. PTX */

static void test_ptx(const char *ptxas, int nvrtc) {
    static const int archs[] = {80, 90};
    for (int i = 0; i < NPROG; i++) {
        if (progs[i].stage < 0)
            continue;
        const ir_stage *s = &progs[i].sg->stages[progs[i].stage];
        CHECK_MSG(ptx_check_archs(ptxas, s->k, s->plan, FUSOR_GPU_PATH_NVPTX, 2, archs, 0,
                                  sources[i]),
                  "%s (NVPTX)", sources[i]);
        cg_gpu_code *c = NULL;
        fusor_gpu_options o = {.path = FUSOR_GPU_PATH_NVPTX, .arch = 80};
        if (cg_gpu_compile(s->k, s->plan, &o, &c) == FUSOR_OK) {
            CHECK(strstr(c->ptx, ".entry fusor_pass0_axis(") != NULL);
            CHECK(strstr(c->ptx, ".entry fusor_pass0_axisblk(") != NULL);
            CHECK(strstr(c->ptx, ".entry fusor_pass0_axissplit(") != NULL);
            CHECK(strstr(c->ptx, ".entry fusor_pass0_axisfold(") != NULL);
            CHECK(strstr(c->ptx, ".entry fusor_pass0_axisfoldblk(") != NULL);
            CHECK(strstr(c->ptx, "fusor_pass0_contig") == NULL); /* only the axis kernels */
        }
        cg_gpu_code_free(c);
        if (!nvrtc)
            continue;
        o.path = FUSOR_GPU_PATH_NVRTC;
        c = NULL;
        fusor_status st = cg_gpu_compile(s->k, s->plan, &o, &c);
        CHECK_MSG(st == FUSOR_OK, "%s (NVRTC): %s", sources[i], fusor_last_error());
        if (!st && ptxas) {
            const char *text[2] = {c->ptx, c->ptx};
            CHECK_MSG(ptx_assemble_n(ptxas, 2, text, archs, 0, sources[i]), "%s (NVRTC)",
                      sources[i]);
        }
        cg_gpu_code_free(c);
    }
}

/* ------------------------------------------------------------------ 3. the CUDA C */

typedef void (*kernel_fn)(const char *);
typedef void (*launch_fn)(kernel_fn, const char *, unsigned, unsigned);

static int write_source(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fputs(shim, f);
    for (int i = 0; i < NPROG; i++) {
        const ir_stage *s = &progs[i].sg->stages[progs[i].stage];
        char *text = NULL;
        fusor_status st = cg_cuda_source(s->k, s->plan, NULL, &text);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", sources[i], fusor_last_error());
        if (st) {
            fclose(f);
            return 0;
        }
        cuda_shim_program(f, i, text);
        fprintf(f, "extern \"C\" fu_kernel p%d_kernels[] = {p%d::fusor_pass0_axis, "
                   "p%d::fusor_pass0_axisblk, p%d::fusor_pass0_axissplit, "
                   "p%d::fusor_pass0_axisfold, p%d::fusor_pass0_axisfoldblk};\n",
                i, i, i, i, i, i);
        fu_free(text);
    }
    return fclose(f) == 0;
}

static ir_value random_value(fusor_dtype d) {
    int64_t r = (int64_t)(next_rand() % 65) - 32; /* small, exact in every dtype */
    if (d == FUSOR_F16 || d == FUSOR_F32 || d == FUSOR_F64)
        return (ir_value){.f = (double)r / 8.0};
    if (d == FUSOR_BOOL)
        return (ir_value){.i = r & 1};
    if (d == FUSOR_I64 && r % 5 == 0)
        return (ir_value){.i = 0}; /* all() meets zeros */
    return (ir_value){.i = r};
}

static int same(ir_value x, ir_value y, fusor_dtype d, int sum) {
    if (d != FUSOR_F16 && d != FUSOR_F32 && d != FUSOR_F64)
        return x.u == y.u;
    if (isnan(x.f) || isnan(y.f))
        return isnan(x.f) && isnan(y.f);
    if (!sum)
        return x.u == y.u;
    double tol = d == FUSOR_F16 ? 1e-2 : d == FUSOR_F32 ? 1e-5 : 1e-12;
    return x.f == y.f || fabs(x.f - y.f) <= tol * (fabs(x.f) + fabs(y.f) + 1.0);
}

static int runs;

/* Raw words the stage's one reduction carries (codegen's metadata). */
static int stage_words(const ir_kernel *k, const ir_plan *plan) {
    cg_gpu_code *c = NULL;
    int w = cg_gpu_code_new(k, plan, &c) == FUSOR_OK ? c->passes[0].words : 0;
    cg_gpu_code_free(c);
    return w;
}

/* The byte strides of a C-ordered array of `shape` seen over domain `dom` (aligned on
 * the right, 0 where it broadcasts or lacks a dimension). */
static void dom_strides(const ir_nshape *shape, size_t elsize, const ir_nshape *dom,
                        int64_t *out) {
    int64_t own[FUSOR_MAX_DIMS], st = (int64_t)elsize;
    for (int x = shape->ndim - 1; x >= 0; x--) {
        own[x] = st;
        st *= shape->shape[x];
    }
    for (int x = 0; x < dom->ndim; x++) {
        int ax = x - (dom->ndim - shape->ndim);
        out[x] = ax < 0 || shape->shape[ax] == 1 ? 0 : own[ax];
    }
}

/* Program p over full-kernel parameters of shape `xs` (every array parameter declares
 * its dimensions: x has xs, a 1-D w has xs' last extent), launched as `how` says:
 * 0 the launcher's shape and chunks, 1 the other unsplit form with 32-thread blocks, 2
 * one block of 32, 3 blocks over chunks of 7 folded by a thread per result, 4 threads
 * over chunks of 7 (a grid of one or two blocks of 32, so that the threads stride) folded
 * by a block per result. */
static void run(const prog *p, kernel_fn const *kernels, launch_fn launch, const ir_nshape *xs,
                int how) {
    const ir_kernel *k = p->k;
    const ir_stage *stg = &p->sg->stages[p->stage];
    const ir_kernel *sk = stg->k;
    int na = k->nparams + k->noutputs;
    interp_view v[8];
    ir_nshape ps[8];
    ir_value scalars[8] = {{0}}, outs[8];
    memset(v, 0, sizeof v);
    for (int i = 0; i < k->nparams; i++) {
        ps[i].ndim = 0;
        if (!k->params[i].is_array) {
            scalars[i] = random_value(k->params[i].dtype);
            continue;
        }
        int nd = ir_param_ndims(k, i);
        ps[i].ndim = nd;
        for (int x = 0; x < nd; x++)
            ps[i].shape[x] = xs->shape[xs->ndim - nd + x];
    }
    ir_nshape *nodes = calloc((size_t)k->nnodes, sizeof *nodes);
    int8_t *axis = calloc((size_t)k->nnodes, 1);
    fusor_status st = ir_infer_shapes(k, ps, nodes, axis);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", sources[p - progs], fusor_last_error());
    const ir_nshape *res = &nodes[k->outputs[0].node];
    const ir_nshape *dom = &nodes[k->nodes[stg->node].a];
    int ax = axis[stg->node];
    /* min/max over an empty axis is refused by the launcher before anything runs. */
    ir_op op = (ir_op)k->nodes[stg->node].op;
    if (st || ((op == IR_MIN || op == IR_MAX) && dom->shape[ax] == 0)) {
        free(nodes);
        free(axis);
        return;
    }
    char *got[8] = {0}, *want[8] = {0};
    for (int i = 0; i < na; i++) {
        int is_out = i >= k->nparams;
        if (!is_out && !k->params[i].is_array)
            continue;
        const ir_nshape *sh = is_out ? res : &ps[i];
        fusor_dtype dt = is_out ? k->outputs[0].dtype : k->params[i].dtype;
        size_t sz = fusor_dtype_size(dt);
        int64_t n = 1;
        for (int x = 0; x < sh->ndim; x++)
            n *= sh->shape[x];
        got[i] = calloc((size_t)n + 1, sz);
        want[i] = calloc((size_t)n + 1, sz);
        for (int64_t e = 0; e < n; e++) {
            ir_value val = is_out ? (ir_value){.u = 0x5a5a5a5a5a5a5a5aull} : random_value(dt);
            if (is_out && dt == FUSOR_BOOL)
                val.i = 1;
            sc_store(got[i] + e * (int64_t)sz, dt, val);
            sc_store(want[i] + e * (int64_t)sz, dt, val);
        }
        v[i].base = want[i];
        v[i].shape = *sh;
        int64_t s = (int64_t)sz;
        for (int x = sh->ndim - 1; x >= 0; x--) {
            v[i].strides[x] = s;
            s *= sh->shape[x];
        }
    }
    st = interp_run_shaped(k, v, scalars, outs);
    CHECK_MSG(st == FUSOR_OK, "%s: the interpreter: %s", sources[p - progs], fusor_last_error());

    /* The stage's arrays over the operand's domain, as the GPU launcher binds them. */
    int sn = sk->nparams + 1;
    char *base[8] = {0};
    int64_t strides[8][FUSOR_MAX_DIMS] = {{0}};
    ir_value slots[64] = {{0}};
    for (int i = 0; i < sk->nparams; i++) {
        const ir_stage_src *src = &stg->src[i];
        CHECK(src->kind == IR_SRC_PARAM);
        if (!sk->params[i].is_array) {
            slots[i] = scalars[src->index];
            continue;
        }
        base[i] = got[src->index];
        dom_strides(&ps[src->index], fusor_dtype_size(k->params[src->index].dtype), dom,
                    strides[i]);
    }
    slots[stg->plan->count_slot].i = 1;
    base[sk->nparams] = got[k->nparams];
    int64_t ost[FUSOR_MAX_DIMS], elsize = (int64_t)fusor_dtype_size(k->outputs[0].dtype);
    ir_nshape rs = *res; /* the result's strides, then 0 along the reduced axis */
    int64_t s = elsize;
    for (int x = rs.ndim - 1; x >= 0; x--) {
        ost[x] = s;
        s *= rs.shape[x];
    }
    for (int x = 0, r = 0; x < dom->ndim; x++) {
        if (x == ax) {
            r += k->nodes[stg->node].off[0]; /* keepdims keeps a length-1 axis there */
            strides[sk->nparams][x] = 0;
            continue;
        }
        strides[sk->nparams][x] = ost[r++];
    }
    ir_domain d = {.ndim = dom->ndim, .narrays = sn, .base = base, .strides = strides};
    memcpy(d.shape, dom->shape, sizeof d.shape);
    unsigned char *P = calloc(1, CG_GPU_AXIS_PARAMS_SIZE(sn));
    int64_t nres = 1, len = dom->shape[ax];
    for (int x = 0; x < dom->ndim; x++)
        nres *= x == ax ? 1 : dom->shape[x];
    int words = stage_words(sk, stg->plan), block, grid, form;
    int inner = sched_gpu_axis_innermost(&d, ax);
    sched_gpu_axis_shape(nres, len, inner, words, 1024, 0, 0, &block, &grid, &form);
    int64_t chunk = len, nchunks = 1;
    if (how == 0)
        sched_gpu_axis_split(nres, len, inner, words, &chunk, &nchunks);
    else if (how >= 3 && len > 0) /* chunks of 7 */
        chunk = 7, nchunks = (len + 6) / 7;
    uint64_t *rows = calloc((size_t)(nres * (nchunks ? nchunks : 1) * words) + 1, 8);
    sched_gpu_axis_params(&d, ax, (uint64_t)(uintptr_t)slots, chunk, nchunks,
                          (uint64_t)(uintptr_t)rows, P);
    if (how == 1) { /* the other unsplit form, small blocks */
        form = form == SCHED_AXIS_THREAD ? SCHED_AXIS_BLOCK : SCHED_AXIS_THREAD;
        block = 32;
        grid = (int)(form == SCHED_AXIS_BLOCK ? (nres < 5 ? nres : 5) : (nres + 31) / 32);
    } else if (how == 2) {
        form = form == SCHED_AXIS_SPLIT ? SCHED_AXIS_BLOCK : form;
        block = 32;
        grid = 1;
    } else if (how == 3) {
        form = SCHED_AXIS_SPLIT;
        block = 32;
        grid = (int)(nres * nchunks < 9 ? nres * nchunks : 9);
    } else if (how == 4) {
        form = SCHED_AXIS_THREAD;
        block = 32;
        grid = nres * nchunks > 40 ? 2 : 1;
    }
    launch(kernels[form], (const char *)P, (unsigned)(grid < 1 ? 1 : grid), (unsigned)block);
    if (form == SCHED_AXIS_SPLIT || nchunks > 1) {
        /* The fold: a thread per result, or (how 4, or when the launcher says so) a
         * block of 32 per result, three blocks so that they stride over the results. */
        int fb, fg, byb;
        sched_gpu_axis_fold_shape(nres, nchunks, 1024, 1024, &fb, &fg, &byb);
        if (byb || how == 4)
            launch(kernels[4], (const char *)P, (unsigned)(nres < 3 ? 1 : 3), 32);
        else
            launch(kernels[3], (const char *)P,
                   (unsigned)((nres + 31) / 32 ? (nres + 31) / 32 : 1), 32);
    }

    int sum = op == IR_SUM || op == IR_PROD, bad = 0;
    fusor_dtype od = k->outputs[0].dtype;
    for (int64_t e = 0; e < nres; e++) {
        ir_value x = sc_load(got[k->nparams] + e * elsize, od),
                 y = sc_load(want[k->nparams] + e * elsize, od);
        if (!same(x, y, od, sum) && bad++ < 3) {
            char g[64], w[64];
            sc_format(g, sizeof g, x, od);
            sc_format(w, sizeof w, y, od);
            fprintf(stderr, "%s: y[%lld] = %s, the interpreter says %s (form %d)\n",
                    sources[p - progs], (long long)e, g, w, form);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d differences (shape %lld x %lld x %lld, launch %d)",
              sources[p - progs], bad, (long long)xs->shape[0],
              (long long)(xs->ndim > 1 ? xs->shape[1] : 1),
              (long long)(xs->ndim > 2 ? xs->shape[2] : 1), how);
    runs++;
    free(rows);
    for (int i = 0; i < na; i++) {
        free(got[i]);
        free(want[i]);
    }
    free(P);
    free(nodes);
    free(axis);
}

static void test_cuda_c(void) {
    char why[300] = "";
    void *fn;
    void *lib =
        cuda_shim_load(FUSOR_CXX, "axis_gpu", write_source, "fu_launch", &fn, why, sizeof why);
    if (!FUSOR_CXX[0])
        return;
    CHECK_MSG(lib && fn, "%s", why);
    if (lib && fn) {
        launch_fn launch = (launch_fn)fn;
        static const ir_nshape shapes2[] = {{2, {3, 5}}, {2, {7, 100}}, {2, {70, 3}},
                                            {2, {1, 1}}, {2, {4, 0}},   {2, {0, 6}},
                                            {2, {2, 300}}};
        static const ir_nshape shapes3[] = {{3, {2, 3, 5}}, {3, {3, 70, 2}}, {3, {4, 2, 65}},
                                            {3, {1, 0, 3}}};
        for (int i = 0; i < NPROG; i++) {
            char sym[32];
            snprintf(sym, sizeof sym, "p%d_kernels", i);
            kernel_fn const *kernels = dlsym(lib, sym);
            CHECK(kernels != NULL);
            int rank = 0;
            for (int p = 0; p < progs[i].k->nparams; p++)
                if (ir_param_ndims(progs[i].k, p) > rank)
                    rank = ir_param_ndims(progs[i].k, p);
            const ir_nshape *sh = rank == 3 ? shapes3 : shapes2;
            int ns = rank == 3 ? 4 : 7;
            for (int s = 0; kernels && launch && s < ns; s++)
                for (int how = 0; how < 5; how++)
                    run(&progs[i], kernels, launch, &sh[s], how);
        }
    }
}

/* fusor_kernel_emit (`fusor compile --emit ptx|cuda`) of a kernel with axis reductions:
 * each GPU stage's code under a comment naming it. */
static void test_emit(void) {
    fusor_context *ctx;
    CHECK_OK(fusor_context_create(NULL, &ctx));
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(
        ctx, "kernel nm(x: f64[n, m]) -> (y: f64[], t: f64) {\n"
             "  y = x / sum(x, axis=1, keepdims=true)\n  t = 2.0\n}\n",
        "nm.fu", NULL, &k));
    for (int w = 0; w < 2; w++) {
        char *text = NULL;
        CHECK_OK(fusor_kernel_emit(k, w ? FUSOR_EMIT_CUDA : FUSOR_EMIT_PTX, &text));
        const char *axis = text ? strstr(text, "// stage 0: nm.axis0 (an axis reduction)") : NULL;
        const char *store = text ? strstr(text, "// stage 1: nm.store1 (an array output)") : NULL;
        CHECK_MSG(axis && store && axis < store, "%.300s", text ? text : "(none)");
        CHECK(axis && strstr(axis, w ? "void fusor_pass0_axisblk(" : ".entry fusor_pass0_axisblk("));
        CHECK(store && strstr(store, w ? "void fusor_pass0_strided(" : ".entry fusor_pass0_strided("));
        CHECK(text && !strstr(text, "stage 2")); /* the scalar output: on the host */
        fusor_free(text);
    }
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
}

int main(void) {
    test_shapes();
    test_emit();
    for (int i = 0; i < NPROG; i++)
        build(&progs[i], sources[i]);
    if (check_failed) /* a program that does not build: nothing more is meaningful */
        return check_done();
    const char *ptxas = ptx_ptxas();
    int nvrtc = cg_nvrtc_available() == FUSOR_OK;
    if (!nvrtc)
        printf("NVRTC unavailable (%s): the CUDA C is checked on the host only\n",
               fusor_last_error());
    test_ptx(ptxas, nvrtc);
    test_cuda_c();
    printf("%d axis programs: PTX by NVPTX%s for sm_80 and sm_90%s; %d CUDA C runs against "
           "the interpreter\n",
           NPROG, nvrtc ? " and NVRTC" : "", ptxas ? ", assembled by ptxas" : "", runs);
    for (int i = 0; i < NPROG; i++)
        arena_free(&progs[i].a);
    return check_done();
}
