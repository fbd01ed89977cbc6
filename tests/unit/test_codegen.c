/*
 * test_codegen.c — the host JIT on hand-built kernels: row functions (contiguous and
 * strided, with negative, zero and sparse strides), reductions and their accumulators,
 * multi-pass plans, the finish function, in-place updates, emitted text (packed SIMD,
 * libmvec), errors, threads and compile time.  Expected values are computed here in
 * plain C.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "check.h"
#include "codegen.h"
#include "ir.h"
#include "scalar.h"

/* REQUIRE for functions returning void. */

/* ------------------------------------------------------------------ building kernels */

static ir_kernel *kernel(arena *ar, const char *name, int nparams, int noutputs) {
    ir_kernel *k = ir_kernel_new(ar, name);
    k->nparams = nparams;
    k->noutputs = noutputs;
    k->params = arena_alloc(ar, sizeof(ir_param) * (size_t)(nparams ? nparams : 1));
    k->outputs = arena_alloc(ar, sizeof(ir_output) * (size_t)(noutputs ? noutputs : 1));
    return k;
}

static int32_t param(ir_kernel *k, int i, const char *name, fusor_dtype d, int is_array) {
    k->params[i] = (ir_param){name, d, is_array};
    return ir_add(k, IR_INPUT, d, d, is_array ? IR_VARYING : IR_UNIFORM, -1, -1, -1,
                  (ir_value){.i = i});
}

static int32_t op1(ir_kernel *k, ir_op op, fusor_dtype d, int32_t a) {
    return ir_add(k, op, d, (fusor_dtype)k->nodes[a].dtype, IR_UNIFORM, a, -1, -1, (ir_value){0});
}

static int32_t op2(ir_kernel *k, ir_op op, fusor_dtype d, int32_t a, int32_t b) {
    return ir_add(k, op, d, (fusor_dtype)k->nodes[a].dtype, IR_UNIFORM, a, b, -1, (ir_value){0});
}

static int32_t cf64(ir_kernel *k, double v) { return ir_const(k, FUSOR_F64, (ir_value){.f = v}); }

static void output(ir_kernel *k, int j, const char *name, int is_array, int32_t node) {
    k->outputs[j] = (ir_output){name, (fusor_dtype)k->nodes[node].dtype, is_array, node};
}

static ir_plan *plan_of(ir_kernel *k) {
    ir_finish(k);
    ir_plan *p = NULL;
    CHECK_OK(ir_plan_build(k, &p));
    return p;
}

static cg_compiled *compile(ir_kernel *k, ir_plan *p) {
    cg_compiled *c = NULL;
    CHECK_OK(cg_host_compile(k, p, NULL, &c));
    return c;
}

/* Runs every pass over one row as the host pool would (fresh accumulators, results
 * into the reduction slots), then the finish function. */
static void run_rows(const ir_kernel *k, const ir_plan *p, const cg_compiled *c, char **ptrs,
                     const int64_t *strides, int64_t n, ir_value *slots, ir_value *outs,
                     int strided) {
    for (int i = 0; i < p->npasses; i++) {
        const ir_pass *ps = &p->passes[i];
        ir_value acc[16];
        for (int r = 0; r < ps->nreductions; r++) {
            const ir_node *nd = &k->nodes[ps->reductions[r]];
            acc[r] = sc_reduce_identity((ir_op)nd->op, (fusor_dtype)nd->dtype);
        }
        (strided ? c->strided : c->contig)[i](ptrs, strides, n, slots, acc);
        for (int r = 0; r < ps->nreductions; r++)
            slots[k->nodes[ps->reductions[r]].slot] = acc[r];
    }
    if (c->finish)
        c->finish(slots, outs);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double rand_unit(void) { return (double)(next_rand() >> 11) / 9007199254740992.0; }

/* ------------------------------------------------------------------ element-wise */

/* z = a * x + y: a scalar parameter, two arrays. */
static ir_kernel *axpy_kernel(arena *ar) {
    ir_kernel *k = kernel(ar, "axpy", 3, 1);
    int32_t a = param(k, 0, "a", FUSOR_F64, 0);
    int32_t x = param(k, 1, "x", FUSOR_F64, 1);
    int32_t y = param(k, 2, "y", FUSOR_F64, 1);
    output(k, 0, "z", 1, op2(k, IR_ADD, FUSOR_F64, op2(k, IR_MUL, FUSOR_F64, a, x), y));
    return k;
}

static void test_axpy_contig(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = axpy_kernel(&ar);
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    CHECK(c->npasses == 1 && c->finish == NULL);
    enum { N = 1037 };
    static double x[N], y[N], z[N];
    for (int i = 0; i < N; i++) {
        x[i] = rand_unit() * 4 - 2;
        y[i] = rand_unit();
        z[i] = NAN;
    }
    char *ptrs[4] = {NULL, (char *)x, (char *)y, (char *)z};
    int64_t strides[4] = {0, 8, 8, 8};
    ir_value slots[4] = {{.f = 2.5}};
    c->contig[0](ptrs, strides, 0, slots, NULL); /* n == 0 writes nothing */
    CHECK(isnan(z[0]));
    c->contig[0](ptrs, strides, N, slots, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += z[i] != 2.5 * x[i] + y[i];
    CHECK_MSG(bad == 0, "%d wrong elements", bad);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* x read backwards (negative stride), y broadcast (stride 0), z every other element. */
static void test_axpy_strided(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = axpy_kernel(&ar);
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 301 };
    static double x[N], z[2 * N];
    double y = 0.25;
    for (int i = 0; i < N; i++)
        x[i] = rand_unit() * 10 - 5;
    for (int i = 0; i < 2 * N; i++)
        z[i] = -777.0;
    char *ptrs[4] = {NULL, (char *)&x[N - 1], (char *)&y, (char *)z};
    int64_t strides[4] = {0, -8, 0, 16};
    ir_value slots[4] = {{.f = -3.0}};
    c->strided[0](ptrs, strides, N, slots, NULL);
    int bad = 0, touched = 0;
    for (int i = 0; i < N; i++) {
        bad += z[2 * i] != -3.0 * x[N - 1 - i] + y;
        touched += z[2 * i + 1] != -777.0;
    }
    CHECK_MSG(bad == 0, "%d wrong elements", bad);
    CHECK_MSG(touched == 0, "%d elements between the strided ones were written", touched);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* x = x * 2 + 1 with the output being the input array itself (the launcher passes the
 * same pointer for both). */
static void test_in_place(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "inplace", 1, 1);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    output(k, 0, "x", 1,
           op2(k, IR_ADD, FUSOR_F64, op2(k, IR_MUL, FUSOR_F64, x, cf64(k, 2)), cf64(k, 1)));
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 999 };
    static double v[N], want[N];
    for (int i = 0; i < N; i++) {
        v[i] = rand_unit();
        want[i] = v[i] * 2 + 1;
    }
    char *ptrs[2] = {(char *)v, (char *)v};
    int64_t strides[2] = {8, 8};
    ir_value slots[2] = {{0}};
    c->contig[0](ptrs, strides, N, slots, NULL);
    CHECK(memcmp(v, want, sizeof v) == 0);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* f32 stays f32: the products round to float before the add. */
static void test_f32(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "f32", 2, 1);
    int32_t x = param(k, 0, "x", FUSOR_F32, 1);
    int32_t y = param(k, 1, "y", FUSOR_F32, 1);
    int32_t one = ir_const(k, FUSOR_F32, (ir_value){.f = 1.0});
    output(k, 0, "z", 1, op2(k, IR_ADD, FUSOR_F32, op2(k, IR_MUL, FUSOR_F32, x, y), one));
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 517 };
    static float xs[N], ys[N], z[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (float)(rand_unit() * 3);
        ys[i] = (float)(rand_unit() * 3);
    }
    char *ptrs[3] = {(char *)xs, (char *)ys, (char *)z};
    int64_t strides[3] = {4, 4, 4};
    c->contig[0](ptrs, strides, N, (ir_value[3]){{0}}, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float prod = xs[i] * ys[i];
        bad += z[i] != prod + 1.0f;
    }
    CHECK_MSG(bad == 0, "%d wrong f32 elements", bad);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* Optimisation level 0 gives the same results. */
static void test_opt_level_0(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = axpy_kernel(&ar);
    ir_plan *p = plan_of(k);
    cg_compiled *c = NULL;
    CHECK_OK(cg_host_compile(k, p, &(cg_options){0}, &c));
    REQUIRE_VOID(c);
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {5, 4, 3, 2, 1}, z[5] = {0};
    char *ptrs[4] = {NULL, (char *)x, (char *)y, (char *)z};
    int64_t strides[4] = {0, 8, 8, 8};
    ir_value slots[4] = {{.f = 10}};
    c->contig[0](ptrs, strides, 5, slots, NULL);
    for (int i = 0; i < 5; i++)
        CHECK(z[i] == 10 * x[i] + y[i]);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* z = x and c = 3 (a uniform value stored to every element): loops LLVM may turn into
 * memcpy/memset calls, which the JIT must resolve. */
static void test_copy_and_fill(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "copy", 1, 2);
    int32_t x = param(k, 0, "x", FUSOR_I32, 1);
    output(k, 0, "z", 1, x);
    output(k, 1, "c", 1, ir_const(k, FUSOR_U8, (ir_value){.u = 3}));
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 4099 };
    static int32_t xs[N], z[N];
    static uint8_t fill[N];
    for (int i = 0; i < N; i++)
        xs[i] = (int32_t)next_rand();
    char *ptrs[3] = {(char *)xs, (char *)z, (char *)fill};
    int64_t strides[3] = {4, 4, 1};
    c->contig[0](ptrs, strides, N, NULL, NULL);
    CHECK(memcmp(xs, z, sizeof z) == 0);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += fill[i] != 3;
    CHECK(bad == 0);
    ptrs[1] = (char *)xs; /* in place: x = x */
    c->contig[0](ptrs, strides, N, NULL, NULL);
    CHECK(memcmp(xs, z, sizeof z) == 0);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* ------------------------------------------------------------------ reductions */

enum { R_SUM, R_PROD, R_MIN, R_MAX, R_ANY, R_ALL };

/* sum, prod, min, max of x, any(x > 0.5), all(x < 10): six scalar outputs, one pass. */
static ir_kernel *reductions_kernel(arena *ar) {
    ir_kernel *k = kernel(ar, "reductions", 1, 6);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    output(k, R_SUM, "s", 0, op1(k, IR_SUM, FUSOR_F64, x));
    output(k, R_PROD, "p", 0, op1(k, IR_PROD, FUSOR_F64, x));
    output(k, R_MIN, "mn", 0, op1(k, IR_MIN, FUSOR_F64, x));
    output(k, R_MAX, "mx", 0, op1(k, IR_MAX, FUSOR_F64, x));
    int32_t gt = op2(k, IR_GT, FUSOR_BOOL, x, cf64(k, 0.5));
    int32_t lt = op2(k, IR_LT, FUSOR_BOOL, x, cf64(k, 10));
    output(k, R_ANY, "an", 0, op1(k, IR_ANY, FUSOR_BOOL, gt));
    output(k, R_ALL, "al", 0, op1(k, IR_ALL, FUSOR_BOOL, lt));
    return k;
}

/* The sequential fold of scalar.c's MINIMUM/MAXIMUM: NaN sticks, ties keep the later. */
static double fold_max(const double *x, int n, int is_max) {
    double m = is_max ? -INFINITY : INFINITY;
    for (int i = 0; i < n; i++)
        m = isnan(m) || (is_max ? m > x[i] : m < x[i]) ? m : x[i];
    return m;
}

static int same_double(double a, double b) {
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static void test_reductions_f64(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = reductions_kernel(&ar);
    ir_plan *p = plan_of(k);
    CHECK(p->npasses == 1 && p->passes[0].nreductions == 6 && p->has_scalar_outputs);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c && c->finish);
    enum { N = 2053 };
    static double x[N];
    long double sum = 0;
    double prod = 1;
    for (int i = 0; i < N; i++) {
        x[i] = 0.9 + rand_unit() * 0.2;
        if (i == 1000)
            x[i] = -3.5;
        if (i == 1500)
            x[i] = 7.25;
        sum += x[i];
        prod *= x[i];
    }
    int64_t strides[7] = {8};
    for (int strided = 0; strided < 2; strided++) {
        ir_value slots[8] = {{0}}, outs[6];
        memset(outs, 0xA5, sizeof outs);
        run_rows(k, p, c, (char *[7]){(char *)x}, strides, N, slots, outs, strided);
        CHECK_MSG(fabs(outs[R_SUM].f - (double)sum) <= 1e-13 * fabs((double)sum),
                  "sum %.17g %.17Lg", outs[R_SUM].f, sum);
        CHECK_MSG(outs[R_PROD].f == prod, "prod %.17g vs %.17g", outs[R_PROD].f, prod);
        CHECK(outs[R_MIN].f == -3.5 && outs[R_MAX].f == 7.25);
        CHECK(outs[R_ANY].i == 1 && outs[R_ALL].i == 1);
    }
    /* Two row calls fold into the same accumulators; an empty row changes nothing. */
    ir_value acc[6], slots[8] = {{0}};
    for (int r = 0; r < 6; r++) {
        const ir_node *nd = &k->nodes[p->passes[0].reductions[r]];
        acc[r] = sc_reduce_identity((ir_op)nd->op, (fusor_dtype)nd->dtype);
    }
    char *ptrs[7] = {(char *)x};
    c->contig[0](ptrs, strides, 1200, slots, acc);
    ptrs[0] = (char *)&x[1200];
    c->contig[0](ptrs, strides, N - 1200, slots, acc);
    c->contig[0](ptrs, strides, 0, slots, acc);
    for (int r = 0; r < 6; r++)
        slots[k->nodes[p->passes[0].reductions[r]].slot] = acc[r];
    ir_value outs[6];
    c->finish(slots, outs);
    CHECK(fabs(outs[R_SUM].f - (double)sum) <= 1e-13 * fabs((double)sum));
    CHECK(fabs(outs[R_PROD].f - prod) <= 1e-13 * fabs(prod));
    CHECK(outs[R_MIN].f == -3.5 && outs[R_MAX].f == 7.25);
    CHECK(outs[R_ANY].i == 1 && outs[R_ALL].i == 1);
    /* any false / all false */
    double small[3] = {0.1, 20, 0.2}; /* any(x > 0.5) true, all(x < 10) false */
    ptrs[0] = (char *)small;
    memset(slots, 0, sizeof slots);
    run_rows(k, p, c, ptrs, strides, 3, slots, outs, 0);
    CHECK(outs[R_ANY].i == 1 && outs[R_ALL].i == 0 && outs[R_MAX].f == 20);
    double tiny[3] = {0.1, 0.3, 0.2};
    ptrs[0] = (char *)tiny;
    memset(slots, 0, sizeof slots);
    run_rows(k, p, c, ptrs, strides, 3, slots, outs, 1);
    CHECK(outs[R_ANY].i == 0 && outs[R_ALL].i == 1 && outs[R_MIN].f == 0.1);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* min/max keep NaN and, among +0 and -0, the later one (as scalar.c's fold). */
static void test_minmax_nan_and_zeros(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = reductions_kernel(&ar);
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 1000 };
    static double x[N];
    int64_t strides[7] = {8};
    for (int cs = 0; cs < 8; cs++) {
        int n = cs < 2 ? 3 : N;
        double sgn = cs % 2 ? 1 : -1; /* all negative: max is a zero; positive: min is */
        for (int i = 0; i < n; i++)
            x[i] = sgn * (1 + rand_unit());
        if (cs < 2) {
            x[1] = cs ? -0.0 : 0.0;
            x[2] = cs ? 0.0 : -0.0;
        } else if (cs < 6) {
            x[10 + cs] = cs < 4 ? 0.0 : -0.0;
            x[700 + cs] = cs < 4 ? -0.0 : 0.0;
        } else {
            x[cs == 6 ? 3 : N - 1] = NAN;
        }
        for (int strided = 0; strided < 2; strided++) {
            ir_value slots[8] = {{0}}, outs[6];
            run_rows(k, p, c, (char *[7]){(char *)x}, strides, n, slots, outs, strided);
            double wmin = fold_max(x, n, 0), wmax = fold_max(x, n, 1);
            CHECK_MSG(same_double(outs[R_MIN].f, wmin), "case %d min %g vs %g", cs, outs[R_MIN].f,
                      wmin);
            CHECK_MSG(same_double(outs[R_MAX].f, wmax), "case %d max %g vs %g", cs, outs[R_MAX].f,
                      wmax);
            /* Without the zero tag (emit.h's CG_CONTIG_NT): the same results, except that a
             * zero extreme may carry either sign (the runner then redoes the pass). */
            cg_compiled nt = *c;
            nt.contig = c->contig_nt;
            nt.strided = c->strided_nt;
            ir_value nslots[8] = {{0}}, nouts[6];
            run_rows(k, p, &nt, (char *[7]){(char *)x}, strides, n, nslots, nouts, strided);
            CHECK_MSG(same_double(nouts[R_MIN].f, wmin) || (wmin == 0 && nouts[R_MIN].f == 0),
                      "case %d min without the tag %g vs %g", cs, nouts[R_MIN].f, wmin);
            CHECK_MSG(same_double(nouts[R_MAX].f, wmax) || (wmax == 0 && nouts[R_MAX].f == 0),
                      "case %d max without the tag %g vs %g", cs, nouts[R_MAX].f, wmax);
        }
    }
    /* this pass only reduces: it has the no-tag pair */
    CHECK(c->contig_nt && c->contig_nt[0] && c->strided_nt && c->strided_nt[0]);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* Integer reductions wrap, unsigned ones compare unsigned; bool any/all. */
static void test_reductions_int(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "ireduce", 3, 7);
    int32_t x = param(k, 0, "x", FUSOR_I32, 1);
    int32_t u = param(k, 1, "u", FUSOR_U8, 1);
    int32_t b = param(k, 2, "b", FUSOR_BOOL, 1);
    int32_t x64 = op1(k, IR_CAST, FUSOR_I64, x);
    output(k, 0, "s", 0, op1(k, IR_SUM, FUSOR_I64, x64));
    output(k, 1, "p", 0, op1(k, IR_PROD, FUSOR_I64, x64));
    output(k, 2, "mn", 0, op1(k, IR_MIN, FUSOR_I32, x));
    output(k, 3, "umx", 0, op1(k, IR_MAX, FUSOR_U8, u));
    output(k, 4, "umn", 0, op1(k, IR_MIN, FUSOR_U8, u));
    output(k, 5, "an", 0, op1(k, IR_ANY, FUSOR_BOOL, b));
    output(k, 6, "al", 0, op1(k, IR_ALL, FUSOR_BOOL, b));
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 777 };
    static int32_t xs[N];
    static uint8_t us[N], bs[N];
    int64_t sum = 0;
    uint64_t prod = 1;
    int32_t mn = INT32_MAX;
    uint8_t umx = 0, umn = 255;
    for (int i = 0; i < N; i++) {
        xs[i] = (int32_t)(next_rand() >> 33) - (1 << 30);
        us[i] = (uint8_t)(next_rand() % 200 + 20);
        bs[i] = i == 500;
        sum += xs[i];
        prod *= (uint64_t)(int64_t)xs[i];
        mn = xs[i] < mn ? xs[i] : mn;
        umx = us[i] > umx ? us[i] : umx;
        umn = us[i] < umn ? us[i] : umn;
    }
    us[N - 3] = 250; /* above 127: a signed compare would get it wrong */
    umx = 250;
    char *ptrs[10] = {(char *)xs, (char *)us, (char *)bs};
    int64_t strides[10] = {4, 1, 1};
    for (int strided = 0; strided < 2; strided++) {
        ir_value slots[16] = {{0}}, outs[7];
        run_rows(k, p, c, ptrs, strides, N, slots, outs, strided);
        CHECK(outs[0].i == sum);
        CHECK(outs[1].u == prod);
        CHECK(outs[2].i == mn);
        CHECK(outs[3].u == umx && outs[4].u == umn);
        CHECK(outs[5].i == 1 && outs[6].i == 0);
    }
    cg_compiled_free(c);
    arena_free(&ar);
}

/* ------------------------------------------------------------------ passes, finish */

/* p = exp(x - max(x)) / sum(exp(x - max(x))); lse = log(sum) + max + count: three passes
 * (max; sum; store) and a finish function. */
static void test_softmax_passes(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "softmax", 1, 2);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    int32_t m = op1(k, IR_MAX, FUSOR_F64, x);
    int32_t y = op1(k, IR_EXP, FUSOR_F64, op2(k, IR_SUB, FUSOR_F64, x, m));
    int32_t s = op1(k, IR_SUM, FUSOR_F64, y);
    output(k, 0, "p", 1, op2(k, IR_DIV, FUSOR_F64, y, s));
    int32_t cnt =
        op1(k, IR_CAST, FUSOR_F64,
            ir_add(k, IR_COUNT, FUSOR_I64, FUSOR_I64, IR_UNIFORM, -1, -1, -1, (ir_value){0}));
    int32_t lse = op2(k, IR_ADD, FUSOR_F64, op1(k, IR_LOG, FUSOR_F64, s), m);
    output(k, 1, "lse", 0, op2(k, IR_ADD, FUSOR_F64, lse, cnt));
    ir_plan *p = plan_of(k);
    REQUIRE_VOID(p && p->npasses == 3);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c && c->finish);
    /* the no-tag pair only for a pass with a float max and no stores (run twice at worst) */
    for (int q = 0; q < p->npasses; q++) {
        int want = !p->passes[q].nstores && q == 0; /* pass 0 is max(x) alone */
        CHECK_MSG(!c->contig_nt[q] == !want, "pass %d (%d stores): no-tag pair %s", q,
                  p->passes[q].nstores, c->contig_nt[q] ? "present" : "absent");
    }
    enum { N = 333 };
    static double xs[N], out[N];
    double mx = -INFINITY;
    for (int i = 0; i < N; i++) {
        xs[i] = rand_unit() * 20 - 10;
        mx = xs[i] > mx ? xs[i] : mx;
    }
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += exp(xs[i] - mx);
    char *ptrs[3] = {(char *)xs, (char *)out, NULL}; /* param 0, output 0 (nparams + 0) */
    int64_t strides[3] = {8, 8, 0};
    ir_value slots[4] = {{0}};
    slots[p->count_slot].i = N;
    ir_value outs[2];
    run_rows(k, p, c, ptrs, strides, N, slots, outs, 0);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += fabs(out[i] - exp(xs[i] - mx) / sum) > 1e-14;
    CHECK_MSG(bad == 0, "%d wrong softmax elements", bad);
    double want = log(sum) + mx + N;
    CHECK_MSG(fabs(outs[1].f - want) < 1e-12, "lse %.17g vs %.17g", outs[1].f, want);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* A kernel with only scalar outputs that need no pass: finish alone. */
static void test_finish_only(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "scalars", 2, 2);
    int32_t a = param(k, 0, "a", FUSOR_I16, 0);
    int32_t f = param(k, 1, "f", FUSOR_F32, 0);
    output(k, 0, "q", 0, op2(k, IR_MUL, FUSOR_I16, a, a));
    output(k, 1, "g", 0,
           op2(k, IR_ADD, FUSOR_F32, f, ir_const(k, FUSOR_F32, (ir_value){.f = 0.1f})));
    ir_plan *p = plan_of(k);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    CHECK(c->npasses == 0 && c->finish);
    ir_value slots[3] = {{.i = 300}, {.f = 1.5f}}, outs[2];
    c->finish(slots, outs);
    CHECK(outs[0].i == (int16_t)(300 * 300)); /* wraps to 24464 */
    CHECK(outs[1].f == (double)(1.5f + 0.1f));
    cg_compiled_free(c);
    arena_free(&ar);
}

/* ------------------------------------------------------------------ emitted text */

static char *emit_text(ir_kernel *k, ir_plan *p, fusor_emit what) {
    char *text = NULL;
    CHECK_OK(cg_host_emit(k, p, NULL, what, &text));
    return text;
}

/* A packed-SIMD instruction `op` on a ymm or zmm register somewhere in the text. */
static int has_packed(const char *text, const char *op) {
    for (const char *s = strstr(text, op); s; s = strstr(s + 1, op)) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), s);
        if (strstr(line, "%ymm") || strstr(line, "%zmm"))
            return 1;
    }
    return 0;
}

static void test_asm_simd(void) {
    arena ar;
    arena_init(&ar);
    for (int f32 = 0; f32 < 2; f32++) {
        fusor_dtype d = f32 ? FUSOR_F32 : FUSOR_F64;
        ir_kernel *k = kernel(&ar, "simd", 2, 1);
        int32_t x = param(k, 0, "x", d, 1);
        int32_t y = param(k, 1, "y", d, 1);
        output(k, 0, "z", 1, op2(k, IR_ADD, d, op2(k, IR_MUL, d, x, y), x));
        ir_plan *p = plan_of(k);
        char *text = emit_text(k, p, FUSOR_EMIT_ASM);
        REQUIRE_VOID(text);
        CHECK(strstr(text, "fusor_pass0_contig:") && strstr(text, "fusor_pass0_strided:"));
        CHECK_MSG(has_packed(text, f32 ? "vmulps" : "vmulpd"), "no packed multiply in %s asm",
                  f32 ? "f32" : "f64");
        CHECK_MSG(has_packed(text, f32 ? "vaddps" : "vaddpd"), "no packed add in %s asm",
                  f32 ? "f32" : "f64");
        fusor_free(text);
    }
    arena_free(&ar);
}

/* sin vectorises through the vector math library (SLEEF by default, libmvec when SLEEF is
 * missing or for FUSOR_MATH_FAST), and the JIT resolves the vector variant. */
static void test_libmvec_sin(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "sine", 1, 1);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    output(k, 0, "z", 1, op1(k, IR_SIN, FUSOR_F64, x));
    ir_plan *p = plan_of(k);
    char *text = emit_text(k, p, FUSOR_EMIT_ASM);
    REQUIRE_VOID(text);
    CHECK_MSG(strstr(text, "_ZGV") || strstr(text, "Sleef_sind"),
              "no vector math call in the asm of sin");
    fusor_free(text);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 1001 };
    static double xs[N], z[N];
    for (int i = 0; i < N; i++)
        xs[i] = rand_unit() * 20 - 10;
    c->contig[0]((char *[2]){(char *)xs, (char *)z}, (int64_t[2]){8, 8}, N, NULL, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += fabs(z[i] - sin(xs[i])) > 1e-15; /* libmvec: a few ulp */
    CHECK_MSG(bad == 0, "%d sin values off by more than 1e-15", bad);
    cg_compiled_free(c);
    arena_free(&ar);
}

/* f16 compares and exact functions (abs, floor) stay vectorised on x86: the optimiser
 * narrows them to vectors of half, which LLVM 16's x86 back end scalarises, so host.c
 * widens them back to float after optimisation (same values: checked against C). */
static void test_f16_vectors(void) {
#if defined(__x86_64__) && defined(__FLT16_MAX__)
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "half", 3, 2);
    int32_t x = param(k, 0, "x", FUSOR_F16, 1);
    int32_t y = param(k, 1, "y", FUSOR_F16, 1);
    int32_t ci = param(k, 2, "c", FUSOR_I16, 1);
    int32_t gt = op2(k, IR_GT, FUSOR_BOOL, x, y);
    int32_t ax = op1(k, IR_ABS, FUSOR_F16, x), fy = op1(k, IR_FLOOR, FUSOR_F16, y);
    output(k, 0, "z", 1,
           ir_add(k, IR_WHERE, FUSOR_F16, FUSOR_BOOL, IR_UNIFORM, gt, ax, fy, (ir_value){0}));
    output(k, 1, "w", 1,
           op2(k, IR_SUB, FUSOR_F16, op1(k, IR_NEG, FUSOR_F16, x), op1(k, IR_CAST, FUSOR_F16, ci)));
    ir_plan *p = plan_of(k);
    char *text = emit_text(k, p, FUSOR_EMIT_LLVM);
    REQUIRE_VOID(text);
    /* Lines of the contiguous row function computing on vectors of half what x86 would
     * scalarise: a compare, fabs or floor. */
    char *body = strstr(text, "define void @fusor_pass0_contig(");
    char *end = body ? strstr(body, "\n}\n") : NULL;
    int narrow = 0, widened = 0;
    for (char *line = body; line && line < end;) {
        char *nl = strchr(line, '\n');
        *nl = 0;
        if (strstr(line, " x half>") &&
            (strstr(line, "fcmp") || strstr(line, "@llvm.fabs.") || strstr(line, "@llvm.floor.") ||
             strstr(line, "fneg") || strstr(line, "sitofp")))
            narrow++;
        widened += strstr(line, "fcmp") && strstr(line, " x float>");
        *nl = '\n';
        line = nl + 1;
    }
    CHECK_MSG(body && end && narrow == 0 && widened > 0,
              "%d f16 compares, fabs, floor, negations or conversions on vectors of half, %d "
              "compares of float",
              narrow, widened);
    fusor_free(text);
    cg_compiled *c = compile(k, p);
    REQUIRE_VOID(c);
    enum { N = 1003 };
    static _Float16 xs[N], ys[N], z[N], w[N];
    static int16_t cs[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (_Float16)(rand_unit() * 40 - 20);
        ys[i] = (_Float16)(rand_unit() * 40 - 20);
        cs[i] = (int16_t)(next_rand() >> 48);
    }
    xs[0] = (_Float16)-0.0f, ys[0] = (_Float16)-1.0f, xs[1] = ys[1] = (_Float16)3.5f;
    c->contig[0]((char *[5]){(char *)xs, (char *)ys, (char *)cs, (char *)z, (char *)w},
                 (int64_t[5]){2, 2, 2, 2, 2}, N, NULL, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        _Float16 want =
            xs[i] > ys[i] ? (_Float16)fabsf((float)xs[i]) : (_Float16)floorf((float)ys[i]);
        _Float16 want_w = (_Float16)(-(float)xs[i] - (float)(_Float16)(float)cs[i]);
        bad += memcmp(&z[i], &want, 2) != 0;
        bad += memcmp(&w[i], &want_w, 2) != 0;
    }
    CHECK_MSG(bad == 0, "%d f16 results differ from C", bad);
    cg_compiled_free(c);
    arena_free(&ar);
#endif
}

/* Saturating float -> int casts are plain conversions between selects on the host (LLVM
 * 16's x86 back end scalarises the vector llvm.fptosi.sat); their values are checked
 * against the interpreter by test_codegen_interp and test_numeric_edges. */
static void test_fp_to_int_vectors(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "toint", 1, 2);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    output(k, 0, "i", 1, op1(k, IR_CAST, FUSOR_I32, x));
    output(k, 1, "u", 1, op1(k, IR_CAST, FUSOR_U64, x));
    ir_plan *p = plan_of(k);
    char *text = emit_text(k, p, FUSOR_EMIT_LLVM);
    REQUIRE_VOID(text);
    CHECK_MSG(!strstr(text, "fptosi.sat") && !strstr(text, "fptoui.sat") &&
                  strstr(text, "fptosi <") && strstr(text, "fptoui <"),
              "saturating casts not as vector conversions");
    fusor_free(text);
    arena_free(&ar);
}

/* The LLVM text: row functions by their ABI names, the one reassociable add of a float
 * sum, and no other fast-math. */
static void test_llvm_text(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "sumsq", 1, 2);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    int32_t sq = op2(k, IR_MUL, FUSOR_F64, x, x);
    output(k, 0, "s", 0, op1(k, IR_SUM, FUSOR_F64, sq));
    output(k, 1, "p", 0, op1(k, IR_PROD, FUSOR_F64, x));
    ir_plan *p = plan_of(k);
    char *text = emit_text(k, p, FUSOR_EMIT_LLVM);
    REQUIRE_VOID(text);
    CHECK(strstr(text, "define void @fusor_pass0_contig(") != NULL);
    CHECK(strstr(text, "define void @fusor_pass0_strided(") != NULL);
    CHECK(strstr(text, "define void @fusor_finish(") != NULL);
    CHECK(strstr(text, "fadd reassoc") != NULL);
    CHECK(strstr(text, "fmul reassoc") == NULL && strstr(text, "fmul fast") == NULL);
    CHECK(strstr(text, " fast ") == NULL && strstr(text, "nnan") == NULL);
    fusor_free(text);
    char *bad = (char *)1;
    CHECK(cg_host_emit(k, p, NULL, FUSOR_EMIT_IR, &bad) == FUSOR_ERROR_INVALID_ARGUMENT);
    arena_free(&ar);
}

static void test_describe(void) {
    char *d = cg_host_describe();
    REQUIRE_VOID(d);
    CHECK_MSG(!strncmp(d, "LLVM 16.", 8), "%s", d);
    CHECK(strstr(d, "host CPU: ") != NULL && strstr(d, "features: +") != NULL);
    CHECK(strstr(d, "+avx2") != NULL || strstr(d, "+sse2") != NULL);
    printf("describe: %.160s...\n", d);
    fusor_free(d);
}

/* ------------------------------------------------------------------ errors */

/* A plan that breaks the planner's rule (a pass using the reduction it computes) is
 * refused with a message, not miscompiled. */
static void test_bad_plan(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "bad", 1, 1);
    int32_t x = param(k, 0, "x", FUSOR_F64, 1);
    int32_t s = op1(k, IR_SUM, FUSOR_F64, x);
    output(k, 0, "y", 1, op2(k, IR_SUB, FUSOR_F64, x, s));
    ir_plan *p = plan_of(k);
    REQUIRE_VOID(p && p->npasses == 2);
    ir_pass one = {1, (int32_t[]){s}, 1, (int32_t[]){0}};
    ir_plan bad = *p;
    bad.npasses = 1;
    bad.passes = &one;
    k->nodes[s].pass = 0;
    cg_compiled *c = NULL;
    /* Nothing may reach stderr, failing or not. */
    fflush(stderr);
    FILE *capture = tmpfile();
    int saved = dup(2);
    REQUIRE_VOID(capture && saved >= 0);
    dup2(fileno(capture), 2);
    fusor_status st = cg_host_compile(k, &bad, NULL, &c);
    cg_compiled *good = NULL;
    fusor_status st_good = cg_host_compile(k, p, NULL, &good);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK(st == FUSOR_ERROR_INTERNAL && c == NULL);
    CHECK(st_good == FUSOR_OK && good != NULL);
    cg_compiled_free(good);
    long written = (long)lseek(fileno(capture), 0, SEEK_END);
    CHECK_MSG(written == 0, "codegen wrote %ld bytes to stderr", written);
    fclose(capture);
    st = cg_host_compile(k, &bad, NULL, &c);
    CHECK(st == FUSOR_ERROR_INTERNAL);
    CHECK(strstr(fusor_last_error(), "not available") != NULL);
    CHECK(cg_host_compile(NULL, p, NULL, &c) == FUSOR_ERROR_INVALID_ARGUMENT);
    cg_compiled_free(NULL);
    arena_free(&ar);
}

/* ------------------------------------------------------------------ threads, time */

/* Each thread compiles, runs and frees its own kernels (z = x * t + i). */
static void *thread_main(void *arg) {
    int t = (int)(intptr_t)arg, bad = 0;
    for (int it = 0; it < 4; it++) {
        arena ar;
        arena_init(&ar);
        ir_kernel *k = kernel(&ar, "thread", 1, 1);
        int32_t x = param(k, 0, "x", FUSOR_F64, 1);
        output(k, 0, "z", 1,
               op2(k, IR_ADD, FUSOR_F64, op2(k, IR_MUL, FUSOR_F64, x, cf64(k, t)), cf64(k, it)));
        ir_finish(k);
        ir_plan *p = NULL;
        cg_compiled *c = NULL;
        if (ir_plan_build(k, &p) || cg_host_compile(k, p, NULL, &c)) {
            bad++;
        } else {
            double xs[100], z[100];
            for (int i = 0; i < 100; i++)
                xs[i] = i;
            c->contig[0]((char *[2]){(char *)xs, (char *)z}, (int64_t[2]){8, 8}, 100, NULL, NULL);
            for (int i = 0; i < 100; i++)
                bad += z[i] != xs[i] * t + it;
            cg_compiled_free(c);
        }
        arena_free(&ar);
    }
    return (void *)(intptr_t)bad;
}

static void test_threads(void) {
    pthread_t th[6];
    for (int t = 0; t < 6; t++)
        pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)(t + 1));
    int bad = 0;
    for (int t = 0; t < 6; t++) {
        void *r;
        pthread_join(th[t], &r);
        bad += (int)(intptr_t)r;
    }
    CHECK_MSG(bad == 0, "%d failures across threads", bad);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* u = a * x + y; v = sqrt(u * u + 1); w = u - v: the first compile in the process (LLVM
 * and JIT set-up included), then the steady state. */
static void test_compile_time(void) {
    arena ar;
    arena_init(&ar);
    ir_kernel *k = kernel(&ar, "three", 3, 3);
    int32_t a = param(k, 0, "a", FUSOR_F64, 0);
    int32_t x = param(k, 1, "x", FUSOR_F64, 1);
    int32_t y = param(k, 2, "y", FUSOR_F64, 1);
    int32_t u = op2(k, IR_ADD, FUSOR_F64, op2(k, IR_MUL, FUSOR_F64, a, x), y);
    int32_t v = op1(k, IR_SQRT, FUSOR_F64,
                    op2(k, IR_ADD, FUSOR_F64, op2(k, IR_MUL, FUSOR_F64, u, u), cf64(k, 1)));
    output(k, 0, "u", 1, u);
    output(k, 1, "v", 1, v);
    output(k, 2, "w", 1, op2(k, IR_SUB, FUSOR_F64, u, v));
    ir_plan *p = plan_of(k);
    cg_timing tm;
    double t0 = now_ms();
    cg_compiled *c = compile(k, p);
    double cold = now_ms() - t0;
    cg_host_last_timing(&tm);
    REQUIRE_VOID(c);
    cg_compiled_free(c);
    printf(
        "compile, first in process: %.2f ms (emit %.2f, O3 %.2f, machine code %.2f, link %.2f)\n",
        cold, tm.emit_ms, tm.opt_ms, tm.codegen_ms, tm.link_ms);
    enum { REPS = 20 };
    cg_timing sum = {0};
    double best = 1e9;
    for (int i = 0; i < REPS; i++) {
        t0 = now_ms();
        c = compile(k, p);
        double t = now_ms() - t0;
        best = t < best ? t : best;
        cg_host_last_timing(&tm);
        sum.emit_ms += tm.emit_ms / REPS;
        sum.opt_ms += tm.opt_ms / REPS;
        sum.codegen_ms += tm.codegen_ms / REPS;
        sum.link_ms += tm.link_ms / REPS;
        sum.total_ms += tm.total_ms / REPS;
        cg_compiled_free(c);
    }
    printf("compile, steady: mean %.2f ms, best %.2f ms (emit %.2f, O3 %.2f, machine code %.2f, "
           "link %.2f)\n",
           sum.total_ms, best, sum.emit_ms, sum.opt_ms, sum.codegen_ms, sum.link_ms);
    CHECK_MSG(best < 200, "a 3-statement kernel took %.1f ms to compile", best);
    arena_free(&ar);
}

/* Kernel and helper names (written per GPU launch without snprintf): as snprintf writes
 * them, truncated the same way.  (emit.h, which declares them, needs LLVM's headers.) */
void cg_pass_variant_name(char *buf, size_t n, int pass, int variant);
void cg_pass_helper_name(char *buf, size_t n, int pass, const char *what);
static void test_pass_names(void) {
    static const int passes[] = {0, 7, 10, 123, 2147483647, -5};
    static const char *const what[] = {"contig", "reduce", "block", "x"};
    static const size_t sizes[] = {64, 16, 11, 1};
    for (size_t p = 0; p < sizeof passes / sizeof *passes; p++)
        for (size_t w = 0; w < sizeof what / sizeof *what; w++)
            for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
                char got[64], want[64];
                memset(got, '#', sizeof got);
                cg_pass_helper_name(got, sizes[z], passes[p], what[w]);
                snprintf(want, sizes[z], "fusor_pass%d_%s", passes[p], what[w]);
                CHECK_MSG(!strcmp(got, want), "'%s', snprintf says '%s'", got, want);
            }
    char got[64];
    cg_pass_variant_name(got, sizeof got, 3, 6); /* CG_VEC32, emit.h */
    CHECK_MSG(!strcmp(got, "fusor_pass3_vec32"), "'%s'", got);
}

int main(void) {
    test_compile_time(); /* first: it measures the cold start */
    test_pass_names();
    test_axpy_contig();
    test_axpy_strided();
    test_in_place();
    test_copy_and_fill();
    test_f32();
    test_opt_level_0();
    test_reductions_f64();
    test_minmax_nan_and_zeros();
    test_reductions_int();
    test_softmax_passes();
    test_finish_only();
    test_asm_simd();
    test_libmvec_sin();
    test_llvm_text();
    test_f16_vectors();
    test_fp_to_int_vectors();
    test_describe();
    test_bad_plan();
    test_threads();
    return check_done();
}
