/*
 * test_stencil_gpu.c — stencil kernels on the GPU paths, checked without a GPU.
 *
 *   1. The launch shape of fusor_pass<p>_stencil (sched_stencil_shape) for 1-D, 2-D and
 *      3-D boxes, small and large, with and without reductions and overrides.
 *   2. Every program compiles by both paths (NVPTX for sm_80 and sm_90, NVRTC for
 *      compute_80) and ptxas accepts the PTX for sm_80 and sm_90.
 *   3. The CUDA C of each program runs on the CPU (a shim for CUDA's built-ins: threads of
 *      a 2-D block are real threads) over 1-D, 2-D and 3-D domains — shapes smaller than a
 *      block, odd shapes, boxes that an `interior` halo leaves empty — with the launch
 *      shape the launcher would choose, a 32-wide block, and a one-block grid that makes
 *      every grid-stride loop go round.  Outputs are poisoned first and compared with the
 *      interpreter bit for bit (these stencils only add, subtract and multiply, in the
 *      interpreter's order); only float sums (added in another order) get a relative
 *      tolerance of 1e-12 (f64) or 1e-5 (f32).
 *
 * Programs: hand-written ones (every boundary, mixed boundaries, a reduction, a
 * multi-output kernel, integer and bool data) and random ones (rank 1 to 3, one or two
 * stencil parameters with random boundaries and offsets in [-2, 2]).  FUSOR_STENCIL_RANDOM
 * sets the number of random programs.  Without a C++ compiler part 3 says SKIP.
 */
#include <dlfcn.h>
#include <math.h>

#include "alloc.h"
#include "cuda_shim.h"
#include "device.h"
#include "interp.h"
#include "scalar.h"
#include "test_ptx_util.h"

#ifndef FUSOR_CXX
#define FUSOR_CXX ""
#endif

static const char shim[] =
    CUDA_SHIM
    "typedef void (*fu_kernel)(const char *);\n"
    "extern \"C\" void fu_launch3(fu_kernel k, const char *P, const int *grid, const int *block) "
    "{\n"
    "    gridDim = {(unsigned)grid[0], (unsigned)grid[1], (unsigned)grid[2]};\n"
    "    blockDim = {(unsigned)block[0], (unsigned)block[1], 1};\n"
    "    unsigned n = block[0] * block[1];\n"
    "    for (unsigned bz = 0; bz < gridDim.z; bz++)\n"
    "    for (unsigned by = 0; by < gridDim.y; by++)\n"
    "    for (unsigned bx = 0; bx < gridDim.x; bx++) {\n"
    "        blockIdx = {bx, by, bz};\n"
    "        pthread_barrier_init(&fu_block_bar, nullptr, n);\n"
    "        for (unsigned w = 0; w * 32 < n; w++)\n"
    "            pthread_barrier_init(&fu_warp_bar[w], nullptr, n - w * 32 < 32 ? n - w * 32 : 32);\n"
    "        std::vector<std::thread> ts;\n"
    "        for (unsigned t = 0; t < n; t++)\n"
    "            ts.emplace_back([=] { threadIdx = {t % blockDim.x, t / blockDim.x, 0}; k(P); });\n"
    "        for (auto &t : ts) t.join();\n"
    "        pthread_barrier_destroy(&fu_block_bar);\n"
    "        for (unsigned w = 0; w * 32 < n; w++) pthread_barrier_destroy(&fu_warp_bar[w]);\n"
    "    }\n"
    "}\n";

/* ------------------------------------------------------------------ programs */

static const char *const fixed[] = {
    "kernel heat(u: f64[n, m] interior, r: f64) -> (out: f64[]) {\n"
    "    out = u + r * (u[-1, 0] + u[1, 0] + u[0, -1] + u[0, 1] - 4.0 * u)\n}\n",
    "kernel h2(u: f16[n, m] clamp, v: f16[n, m] zero) -> (out: f16[]) {\n"
    "    out = u[-1, 0] + u[0, 1] * v[1, -1] - v\n}\n",
    "kernel c2(u: f64[n, m] clamp) -> (out: f64[]) {\n"
    "    out = u[-1, 0] + u[1, 0] + u[0, -2] + 2.0 * u[0, 1] - 4.0 * u\n}\n",
    "kernel w2(u: f32[n, m] wrap) -> (out: f32[]) {\n"
    "    out = u[-1, -1] * u[2, 1] + u[0, -3]\n}\n",
    "kernel z2(u: f64[n, m] zero) -> (out: f64[]) {\n"
    "    out = u[-1, 0] + u[1, 1] + u[0, -1] * 3.0\n}\n",
    "kernel m2(u: f64[n, m] mirror) -> (out: f64[]) {\n"
    "    out = u[-1, 0] - u[1, 0] + u[0, -1] * u[0, 1]\n}\n",
    "kernel c1(u: f64[n] clamp, v: f64[n] wrap) -> (out: f64[]) {\n"
    "    out = u[-2] + u[1] * v[3] - v[-1]\n}\n",
    "kernel z3(u: f64[a, b, c] zero, v: f64[a, b, c] mirror) -> (out: f64[]) {\n"
    "    out = u[-1, 0, 0] + u[0, 1, -1] + v[1, 0, 1] * v[0, -1, 0]\n}\n",
    "kernel i3(u: f64[a, b, c] interior) -> (out: f64[]) {\n"
    "    out = u[-1, 0, 0] + u[1, 0, 0] + u[0, -1, 0] + u[0, 1, 0] + u[0, 0, -1] + u[0, 0, 1]\n}\n",
    "kernel red(u: f64[n, m] clamp) -> (out: f64[], s: f64, mx: f64) {\n"
    "    out = u[-1, 1] - u\n    s = sum(out)\n    mx = max(u[0, 1] * u)\n}\n",
    "kernel ired(u: i32[n, m] interior, k: i32) -> (s: i64, lo: i32) {\n"
    "    s = sum(u[-1, 0] * k + u[0, 1])\n    lo = min(u[1, 1] - u)\n}\n",
    "kernel multi(u: f64[n, m] wrap, w: f64) -> (a: f64[], b: f64[], c: f64) {\n"
    "    a = u[0, -1] + w\n    b = u[1, 0] * a\n    c = mean(b)\n}\n",
    "kernel mask(u: bool[n, m] zero, x: f64[n, m] clamp) -> (out: f64[]) {\n"
    "    out = where(u[0, 1], x[1, 0], x[0, -1])\n}\n",
    "kernel mixed(u: f64[n, m] interior, v: f64[n, m] zero, c: f64[]) -> (out: f64[]) {\n"
    "    out = u[-1, 0] + v[2, 2] + c\n}\n",
};

static uint64_t state = 0x5731c11ull;
static uint64_t next_rand(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* A random stencil program: rank 1 to 3, one or two parameters, sums of products. */
static void random_program(char *buf, size_t n) {
    static const char *const bounds[] = {"clamp", "wrap", "zero", "mirror", "interior"};
    static const char *const dims[] = {"", "n", "n, m", "a, b, c"};
    int rank = 1 + (int)(next_rand() % 3), np = 1 + (int)(next_rand() % 2);
    const char *dt = next_rand() % 3 ? "f64" : "f32";
    int len = snprintf(buf, n, "kernel rnd(u0: %s[%s] %s", dt, dims[rank], bounds[next_rand() % 5]);
    if (np == 2)
        len += snprintf(buf + len, n - (size_t)len, ", u1: %s[%s] %s", dt, dims[rank],
                        bounds[next_rand() % 5]);
    int red = next_rand() % 4 == 0;
    len += snprintf(buf + len, n - (size_t)len, ") -> (out: %s[]%s) {\n    out = ", dt,
                    red ? ", s: f64" : "");
    int terms = 1 + (int)(next_rand() % 4);
    for (int t = 0; t < terms; t++) {
        int factors = 1 + (int)(next_rand() % 2);
        if (t)
            len += snprintf(buf + len, n - (size_t)len, next_rand() % 2 ? " + " : " - ");
        for (int f = 0; f < factors; f++) {
            len += snprintf(buf + len, n - (size_t)len, "%su%d[", f ? " * " : "",
                            (int)(next_rand() % (uint64_t)np));
            for (int d = 0; d < rank; d++)
                len += snprintf(buf + len, n - (size_t)len, "%s%d", d ? ", " : "",
                                (int)(next_rand() % 5) - 2);
            len += snprintf(buf + len, n - (size_t)len, "]");
        }
    }
    snprintf(buf + len, n - (size_t)len, "\n%s}\n", red ? "    s = sum(out)\n" : "");
}

enum { MAXPROG = 64 };
typedef struct prog {
    arena a;
    ir_kernel *k;
    ir_plan *plan;
    char src[640];
    int rank;
} prog;
static prog progs[MAXPROG];
static int nprogs;

static void add(const char *src) {
    prog *p = &progs[nprogs];
    arena_init(&p->a);
    snprintf(p->src, sizeof p->src, "%s", src);
    fusor_status st = ptx_build(&p->a, src, "stencil.fu", NULL, NULL, &p->k, &p->plan);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", src, fusor_last_error());
    if (st || !cg_gpu_is_stencil(p->k, &p->rank)) {
        arena_free(&p->a);
        return;
    }
    nprogs++;
}

/* ------------------------------------------------------------------ 1. launch shapes */

static void test_shapes(void) {
    int b[3], g[3];
    int64_t heat[2] = {1022, 1022};
    sched_stencil_shape(2, heat, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 128 && b[1] == 2 && b[2] == 1); /* 256 threads, whole warps along x */
    CHECK(g[0] == 8 && g[1] == 511 && g[2] == 1); /* one element per thread */
    int64_t narrow[2] = {100, 5};
    sched_stencil_shape(2, narrow, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 32 && b[1] == 8 && g[0] == 1 && g[1] == 13);
    int64_t small[2] = {3, 2}; /* smaller than a block: y shrinks to the box */
    sched_stencil_shape(2, small, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 32 && b[1] == 3 && g[0] == 1 && g[1] == 1 && g[2] == 1);
    int64_t line[1] = {1000};
    sched_stencil_shape(1, line, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 256 && b[1] == 1 && g[0] == 4 && g[1] == 1);
    int64_t cube[3] = {70, 64, 100};
    sched_stencil_shape(3, cube, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 128 && b[1] == 2 && g[0] == 1 && g[1] == 32 && g[2] == 70);
    int64_t tall[2] = {1 << 20, 64}; /* y capped at 65535 blocks: the loop strides */
    sched_stencil_shape(2, tall, 0, 1024, 0, 0, b, g);
    CHECK(b[0] == 64 && b[1] == 4 && g[1] == 65535);
    int64_t empty[2] = {0, 0};
    sched_stencil_shape(2, empty, 1, 1024, 0, 0, b, g);
    CHECK(g[0] == 1 && g[1] == 1 && g[2] == 1 && b[0] >= 32);
    /* Reductions: at most 4096 blocks, from the box alone. */
    int64_t big[3] = {500, 4000, 4000};
    sched_stencil_shape(3, big, 1, 1024, 0, 0, b, g);
    CHECK((int64_t)g[0] * g[1] * g[2] <= 4096 && g[0] >= 1 && g[1] >= 1 && g[2] >= 1);
    int b2[3], g2[3];
    sched_stencil_shape(3, big, 1, 512, 0, 0, b2, g2);
    CHECK(memcmp(g, g2, sizeof g) == 0 && memcmp(b, b2, sizeof b) == 0);
    /* A kernel limited to 96 threads, and the overrides. */
    sched_stencil_shape(2, heat, 0, 100, 0, 0, b, g);
    CHECK(b[0] * b[1] <= 96 && b[0] % 32 == 0);
    sched_stencil_shape(2, heat, 0, 1024, 64, 3, b, g);
    CHECK(b[0] == 64 && b[1] == 1 && g[0] == 3 && g[1] == 1 && g[2] == 1);
}

/* ------------------------------------------------------------------ 2. PTX */

static void test_ptx(const char *ptxas, int nvrtc) {
    static const int archs[] = {80, 90};
    for (int i = 0; i < nprogs; i++) {
        char what[700];
        snprintf(what, sizeof what, "stencil program %d:\n%s", i, progs[i].src);
        CHECK_MSG(ptx_check_archs(ptxas, progs[i].k, progs[i].plan, FUSOR_GPU_PATH_NVPTX, 2,
                                  archs, 0, what),
                  "%s (NVPTX)", what);
        if (!nvrtc)
            continue;
        fusor_gpu_options o = {.path = FUSOR_GPU_PATH_NVRTC, .arch = 80};
        cg_gpu_code *c = NULL;
        fusor_status st = cg_gpu_compile(progs[i].k, progs[i].plan, &o, &c);
        CHECK_MSG(st == FUSOR_OK, "%s (NVRTC): %s", what, fusor_last_error());
        if (!st && ptxas) {
            const char *text[2] = {c->ptx, c->ptx};
            CHECK_MSG(ptx_assemble_n(ptxas, 2, text, archs, 0, what), "%s (NVRTC)", what);
        }
        cg_gpu_code_free(c);
    }
}

/* ------------------------------------------------------------------ 3. the CUDA C */

typedef void (*kernel_fn)(const char *);
typedef void (*launch3_fn)(kernel_fn, const char *, const int *, const int *);

static int write_source(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fputs(shim, f);
    for (int i = 0; i < nprogs; i++) {
        char *text = NULL;
        fusor_status st = cg_cuda_source(progs[i].k, progs[i].plan, NULL, &text);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", progs[i].src, fusor_last_error());
        if (st)
            return 0;
        cuda_shim_program(f, i, text);
        fprintf(f, "extern \"C\" fu_kernel p%d_kernels[] = {", i);
        const ir_plan *pl = progs[i].plan;
        for (int q = 0; q < pl->npasses; q++) {
            fprintf(f, "%sp%d::fusor_pass%d_stencil", q ? ", " : "", i, q);
        }
        if (pl->has_scalar_outputs && !cg_gpu_finish_in_pass(progs[i].k, pl, pl->npasses - 1))
            fprintf(f, ", p%d::fusor_finish", i);
        fprintf(f, "};\n");
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
    return (ir_value){.i = r};
}

static int same(ir_value x, ir_value y, fusor_dtype d, int sum) {
    if (d != FUSOR_F16 && d != FUSOR_F32 && d != FUSOR_F64)
        return x.u == y.u;
    if (isnan(x.f) || isnan(y.f)) /* any NaN: the GPU's canonical one has other bits */
        return isnan(x.f) && isnan(y.f);
    if (!sum)
        return x.u == y.u;
    double tol = d == FUSOR_F16 ? 1e-3 : d == FUSOR_F32 ? 1e-5 : 1e-12;
    return x.f == y.f || fabs(x.f - y.f) <= tol * (fabs(x.f) + fabs(y.f) + 1.0);
}

/* Outputs against the interpreter's: array elements bit for bit (the first three
 * differences printed), scalar outputs as same() says (sums within tolerance).  The GPU
 * test (tests/gpu/test_gpu_stencil.c) compares its device results with this too. */
static int count_differences(const prog *p, char *const *base, char *const *ref, int64_t size,
                             const ir_value *got, const ir_value *want) {
    const ir_kernel *k = p->k;
    int bad = 0;
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        int a = k->nparams + j;
        if (!o->is_array) {
            int sum = 0;
            for (int32_t i = 0; i < k->nnodes; i++)
                sum |= k->nodes[i].op == IR_SUM || k->nodes[i].op == IR_PROD;
            if (!same(got[j], want[j], o->dtype, sum)) {
                char g[64], w[64];
                sc_format(g, sizeof g, got[j], o->dtype);
                sc_format(w, sizeof w, want[j], o->dtype);
                fprintf(stderr, "%s: %s = %s, the interpreter says %s\n", p->src, o->name, g, w);
                bad++;
            }
            continue;
        }
        size_t sz = fusor_dtype_size(o->dtype);
        for (int64_t i = 0; i < size; i++) {
            ir_value x = sc_load(base[a] + i * (int64_t)sz, o->dtype),
                     y = sc_load(ref[a] + i * (int64_t)sz, o->dtype);
            if (!same(x, y, o->dtype, 0) && bad++ < 3) {
                char g[64], w[64];
                sc_format(g, sizeof g, x, o->dtype);
                sc_format(w, sizeof w, y, o->dtype);
                fprintf(stderr, "%s: %s[%lld] = %s, the interpreter says %s\n", p->src, o->name,
                        (long long)i, g, w);
            }
        }
    }
    return bad;
}

/* Array a of k over `size` elements, twice with the same contents (*base for the code
 * under test, *ref for the interpreter): random inputs, poisoned outputs (bools 1). */
static void fill_pair(const ir_kernel *k, int a, fusor_dtype dt, int64_t size, char **base,
                      char **ref) {
    size_t sz = fusor_dtype_size(dt);
    *base = calloc((size_t)size + 1, sz);
    *ref = calloc((size_t)size + 1, sz);
    for (int64_t i = 0; i < size; i++) {
        ir_value x = a < k->nparams ? random_value(dt) : (ir_value){.u = 0x5a5a5a5a5a5a5a5aull};
        if (a >= k->nparams && dt == FUSOR_BOOL)
            x.i = 1;
        sc_store(*base + i * (int64_t)sz, dt, x);
        sc_store(*ref + i * (int64_t)sz, dt, x);
    }
}

static int runs;

/* Program p on a domain of `shape`, launched as `how` says (0: the launcher's shape with a
 * 64-thread block, 1: a 32-thread block, 2: one block of 32 threads, so every loop strides). */
static void run(const prog *p, kernel_fn const *kernels, launch3_fn launch, const int64_t *shape,
                int how) {
    const ir_kernel *k = p->k;
    int na = k->nparams + k->noutputs, D = p->rank;
    char *base[16] = {0}, *ref[16] = {0};
    int64_t strides[16][FUSOR_MAX_DIMS] = {{0}}, size = 1;
    ir_value scalars[16] = {{0}};
    if (na > 16) {
        CHECK_MSG(0, "%s: too many arrays for this test", p->src);
        return;
    }
    for (int d = 0; d < D; d++)
        size *= shape[d];
    for (int a = 0; a < na; a++) {
        int arr = a < k->nparams ? k->params[a].is_array : k->outputs[a - k->nparams].is_array;
        fusor_dtype dt = a < k->nparams ? k->params[a].dtype : k->outputs[a - k->nparams].dtype;
        if (!arr) {
            if (a < k->nparams)
                scalars[a] = random_value(dt);
            continue;
        }
        size_t sz = fusor_dtype_size(dt);
        int bcast = a < k->nparams && ir_param_ndims(k, a) == 0; /* `c: f64[]`: a row */
        int64_t st = (int64_t)sz;
        for (int d = D - 1; d >= 0; d--) {
            strides[a][d] = bcast && d < D - 1 ? 0 : st;
            st *= shape[d];
        }
        fill_pair(k, a, dt, size, &base[a], &ref[a]);
    }
    ir_domain dom = {.ndim = D, .size = size, .narrays = na, .base = ref, .strides = strides};
    for (int d = 0; d < D; d++)
        dom.shape[d] = shape[d];
    ir_value want[16] = {{0}}, got[16] = {{0}};
    fusor_status st = interp_run(k, &dom, scalars, want);
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS], box[FUSOR_MAX_DIMS], box_size = 1;
    if (!ir_interior_halo(k, lo, hi))
        memset(lo, 0, sizeof lo), memset(hi, 0, sizeof hi);
    for (int d = 0; d < D; d++) {
        box[d] = shape[d] - lo[d] - hi[d];
        if (box[d] < 0)
            box[d] = 0;
        box_size *= box[d];
    }
    /* min/max of an empty box is an error, which the launcher reports before any run. */
    int refused = st == FUSOR_ERROR_VALUE && box_size == 0;
    CHECK_MSG(st == FUSOR_OK || refused, "%s: the interpreter: %s", p->src, fusor_last_error());
    if (st) {
        for (int a = 0; a < na; a++) {
            free(base[a]);
            free(ref[a]);
        }
        return;
    }
    int block[3], grid[3];
    sched_stencil_shape(D, box, k->noutputs > 0, 1024, how == 0 ? 64 : 32, how == 2 ? 1 : 0,
                        block, grid);
    ir_value slots[64] = {{0}};
    for (int i = 0; i < k->nparams; i++)
        slots[i] = scalars[i];
    slots[p->plan->count_slot].i = box_size;
    int64_t nblocks = (int64_t)grid[0] * grid[1] * grid[2];
    uint64_t *partials = calloc((size_t)nblocks * 64, 8);
    size_t psize = CG_GPU_STENCIL_PARAMS_SIZE(na);
    char *P = calloc(1, psize);
    int64_t w64;
    void *ptr;
#define PUT(off, v) memcpy(P + (off), &(v), 8)
    w64 = box_size, PUT(CG_GPU_OFF_N, w64);
    w64 = nblocks, PUT(CG_GPU_OFF_NPARTIALS, w64);
    ptr = slots, PUT(CG_GPU_OFF_SLOTS, ptr);
    ptr = partials, PUT(CG_GPU_OFF_PARTIALS, ptr);
    ptr = got, PUT(CG_GPU_OFF_OUTS, ptr);
    w64 = D, PUT(CG_GPU_OFF_NDIM, w64);
    for (int d = 0; d < D; d++) {
        PUT(CG_GPU_OFF_SHAPE + 8 * d, box[d]);
        PUT(CG_GPU_OFF_FULL(na) + 8 * (size_t)d, shape[d]);
        PUT(CG_GPU_OFF_ORIGIN(na) + 8 * (size_t)d, lo[d]);
    }
    for (int a = 0; a < na; a++) {
        for (int d = 0; d < D; d++)
            PUT(CG_GPU_OFF_STRIDES + 64 * a + 8 * d, strides[a][d]);
        ptr = base[a], PUT(CG_GPU_OFF_ARRAYS(na) + 8 * (size_t)a, ptr);
    }
#undef PUT
    int at = 0, one[3] = {1, 1, 1};
    for (int q = 0; q < p->plan->npasses; q++)
        launch(kernels[at++], P, grid, block); /* reductions: folded by the last block */
    if (p->plan->has_scalar_outputs && !cg_gpu_finish_in_pass(p->k, p->plan, p->plan->npasses - 1))
        launch(kernels[at], P, one, one);
    for (int q = 0; q < p->plan->npasses; q++)
        CHECK_MSG(slots[p->plan->nslots + q].u == 0, "%s: pass %d's ticket left at %llu", p->src, q,
                  (unsigned long long)slots[p->plan->nslots + q].u);

    int bad = count_differences(p, base, ref, size, got, want);
    CHECK_MSG(bad == 0, "%s: %d differences (rank %d, shape %lld x %lld x %lld, launch %d)",
              p->src, bad, D, (long long)shape[0], (long long)(D > 1 ? shape[1] : 1),
              (long long)(D > 2 ? shape[2] : 1), how);
    runs++;
    for (int a = 0; a < na; a++) {
        free(base[a]);
        free(ref[a]);
    }
    free(partials);
    free(P);
}

static void test_cuda_c(void) {
    char why[300] = "";
    void *fn;
    void *lib =
        cuda_shim_load(FUSOR_CXX, "stencil_gpu", write_source, "fu_launch3", &fn, why, sizeof why);
    if (!FUSOR_CXX[0])
        return;
    CHECK_MSG(lib && fn, "%s", why);
    if (lib && fn) {
        launch3_fn launch = (launch3_fn)fn;
        static const int64_t shapes[4][4][3] = {
            {{0}},
            {{1}, {5}, {37}, {70}},
            {{1, 1}, {3, 4}, {7, 45}, {2, 33}},
            {{1, 2, 3}, {2, 3, 5}, {4, 5, 37}, {3, 1, 40}},
        };
        for (int i = 0; i < nprogs; i++) {
            char sym[32];
            snprintf(sym, sizeof sym, "p%d_kernels", i);
            kernel_fn const *kernels = dlsym(lib, sym);
            CHECK(kernels != NULL);
            for (int s = 0; kernels && launch && s < 4; s++)
                run(&progs[i], kernels, launch, shapes[progs[i].rank][s], s % 3);
        }
    }
}

int main(void) {
    test_shapes();
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        add(fixed[i]);
    int nfixed = nprogs;
    int nrandom = getenv("FUSOR_STENCIL_RANDOM") ? atoi(getenv("FUSOR_STENCIL_RANDOM")) : 24;
    for (int i = 0; i < nrandom && nprogs < MAXPROG; i++) {
        char src[640];
        random_program(src, sizeof src);
        add(src);
    }
    CHECK(nprogs == nfixed + (nrandom < MAXPROG - nfixed ? nrandom : MAXPROG - nfixed));
    const char *ptxas = ptx_ptxas();
    int nvrtc = cg_nvrtc_available() == FUSOR_OK;
    if (!nvrtc)
        printf("NVRTC unavailable (%s): the CUDA C is checked on the host only\n",
               fusor_last_error());
    test_ptx(ptxas, nvrtc);
    test_cuda_c();
    printf("%d stencil programs (%d hand-written, %d random): PTX by NVPTX%s for sm_80 and "
           "sm_90%s; %d CUDA C runs against the interpreter\n",
           nprogs, nfixed, nprogs - nfixed, nvrtc ? " and NVRTC" : "",
           ptxas ? ", assembled by ptxas" : "", runs);
    for (int i = 0; i < nprogs; i++)
        arena_free(&progs[i].a);
    return check_done();
}
