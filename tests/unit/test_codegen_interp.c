/*
 * test_codegen_interp.c — the host JIT against the reference interpreter, over every op
 * and every dtype: one kernel per dtype with an output per applicable op (unary, binary,
 * comparisons, casts to every dtype, where), and one with every reduction.  Inputs pair up
 * special values (zeros of both signs, +-1, extremes, inf, NaN, shift counts around the
 * bit width) and then random bit patterns.  Results must be identical bit for bit (NaN
 * matching NaN), except the functions the vectoriser may send to SLEEF or libmvec (a few ulp) and
 * float sums and products (summation order).  Both row variants run: contiguous, and
 * strided with a reversed input; a 2-D run row by row checks broadcasting strides.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "check.h"
#include "codegen.h"
#include "domain.h"
#include "interp.h"
#include "ir.h"
#include "scalar.h"

enum { N = 233, MAXOUT = 96 };

/* ------------------------------------------------------------------ kernels */

typedef struct built {
    arena ar;
    ir_kernel *k;
    ir_plan *p;
    ir_op op[MAXOUT]; /* what each output computes (for tolerances and messages) */
} built;

static int is_float(fusor_dtype d) { return d == FUSOR_F32 || d == FUSOR_F64 || d == FUSOR_F16; }
static int is_int(fusor_dtype d) { return d != FUSOR_BOOL && !is_float(d); }

static int32_t add(ir_kernel *k, ir_op op, fusor_dtype d, fusor_dtype ad, int32_t a, int32_t b,
                   int32_t c) {
    return ir_add(k, op, d, ad, IR_UNIFORM, a, b, c, (ir_value){0});
}

static void out(built *b, ir_op op, int32_t node) {
    ir_kernel *k = b->k;
    int j = k->noutputs++;
    static char names[MAXOUT][8];
    snprintf(names[j], sizeof names[j], "o%d", j);
    k->outputs[j] = (ir_output){names[j], (fusor_dtype)k->nodes[node].dtype, 1, node};
    b->op[j] = op;
}

static const ir_op unary_float[] = {
    IR_NEG,   IR_ABS,   IR_SIGN,  IR_SQRT, IR_CBRT,  IR_SQUARE, IR_RECIPROCAL, IR_EXP,
    IR_EXP2,  IR_EXPM1, IR_LOG,   IR_LOG2, IR_LOG10, IR_LOG1P,  IR_SIN,        IR_COS,
    IR_TAN,   IR_ASIN,  IR_ACOS,  IR_ATAN, IR_SINH,  IR_COSH,   IR_TANH,       IR_ASINH,
    IR_ACOSH, IR_ATANH, IR_FLOOR, IR_CEIL, IR_TRUNC, IR_RINT};
static const ir_op binary_float[] = {IR_ADD,      IR_SUB,     IR_MUL,     IR_DIV,   IR_FLOORDIV,
                                     IR_MOD,      IR_FMOD,    IR_POW,     IR_ATAN2, IR_HYPOT,
                                     IR_COPYSIGN, IR_MINIMUM, IR_MAXIMUM, IR_FMIN,  IR_FMAX};
static const ir_op unary_int[] = {IR_NEG,        IR_NOT,   IR_ABS,  IR_SIGN,  IR_SQUARE,
                                  IR_RECIPROCAL, IR_FLOOR, IR_CEIL, IR_TRUNC, IR_RINT};
static const ir_op binary_int[] = {IR_ADD,     IR_SUB,     IR_MUL,  IR_FLOORDIV, IR_MOD, IR_FMOD,
                                   IR_POW,     IR_AND,     IR_OR,   IR_XOR,      IR_SHL, IR_SHR,
                                   IR_MINIMUM, IR_MAXIMUM, IR_FMIN, IR_FMAX};
static const ir_op binary_bool[] = {IR_AND, IR_OR, IR_XOR, IR_MINIMUM, IR_MAXIMUM};

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

/* x, y: d[]; c: bool[]; one array output per op, or only the `only`-th of them (one op
 * alone lets the loop vectorise, which a libm call elsewhere in it would prevent). */
static int build_elementwise(built *b, fusor_dtype d, int only) {
    arena_init(&b->ar);
    ir_kernel *k = b->k = ir_kernel_new(&b->ar, "ops");
    k->nparams = 3;
    k->params = arena_alloc(&b->ar, 3 * sizeof(ir_param));
    k->outputs = arena_alloc(&b->ar, MAXOUT * sizeof(ir_output));
    k->params[0] = (ir_param){"x", d, 1};
    k->params[1] = (ir_param){"y", d, 1};
    k->params[2] = (ir_param){"c", FUSOR_BOOL, 1};
    int32_t x = ir_add(k, IR_INPUT, d, d, IR_VARYING, -1, -1, -1, (ir_value){.i = 0});
    int32_t y = ir_add(k, IR_INPUT, d, d, IR_VARYING, -1, -1, -1, (ir_value){.i = 1});
    int32_t c =
        ir_add(k, IR_INPUT, FUSOR_BOOL, FUSOR_BOOL, IR_VARYING, -1, -1, -1, (ir_value){.i = 2});
    const ir_op *un = is_float(d) ? unary_float : is_int(d) ? unary_int : (ir_op[]){IR_NOT};
    int nun = is_float(d) ? COUNT(unary_float) : is_int(d) ? COUNT(unary_int) : 1;
    const ir_op *bin = is_float(d) ? binary_float : is_int(d) ? binary_int : binary_bool;
    int nbin = is_float(d) ? COUNT(binary_float)
               : is_int(d) ? COUNT(binary_int)
                           : COUNT(binary_bool);
    int32_t nodes[MAXOUT];
    ir_op ops[MAXOUT];
    int n = 0;
    for (int i = 0; i < nun; i++, n++)
        nodes[n] = add(k, ops[n] = un[i], d, d, x, -1, -1);
    for (int i = 0; i < nbin; i++, n++)
        nodes[n] = add(k, ops[n] = bin[i], d, d, x, y, -1);
    for (ir_op op = IR_LT; op <= IR_NE; op++, n++)
        nodes[n] = add(k, ops[n] = op, FUSOR_BOOL, d, x, y, -1);
    if (is_float(d))
        for (ir_op op = IR_ISNAN; op <= IR_ISFINITE; op++, n++)
            nodes[n] = add(k, ops[n] = op, FUSOR_BOOL, d, x, -1, -1);
    for (int to = 0; to < FUSOR_NUM_DTYPES; to++)
        if (to != (int)d)
            nodes[n] = add(k, ops[n] = IR_CAST, (fusor_dtype)to, d, x, -1, -1), n++;
    nodes[n] = add(k, ops[n] = IR_WHERE, d, d, c, x, y);
    n++;
    if (only >= n)
        return 0;
    for (int i = 0; i < n; i++)
        if (only < 0 || i == only)
            out(b, ops[i], nodes[i]);
    ir_finish(k);
    return ir_plan_build(k, &b->p) == FUSOR_OK && n <= MAXOUT;
}

/* Scalar outputs: every reduction that applies to d, over x. */
static int build_reductions(built *b, fusor_dtype d) {
    arena_init(&b->ar);
    ir_kernel *k = b->k = ir_kernel_new(&b->ar, "reduce");
    k->nparams = 1;
    k->params = arena_alloc(&b->ar, sizeof(ir_param));
    k->outputs = arena_alloc(&b->ar, MAXOUT * sizeof(ir_output));
    k->params[0] = (ir_param){"x", d, 1};
    int32_t x = ir_add(k, IR_INPUT, d, d, IR_VARYING, -1, -1, -1, (ir_value){.i = 0});
    ir_op ops[] = {IR_SUM, IR_PROD, IR_MIN, IR_MAX};
    for (int i = d == FUSOR_BOOL ? 2 : 0; i < 4; i++) {
        out(b, ops[i], add(k, ops[i], d, d, x, -1, -1));
        k->outputs[k->noutputs - 1].is_array = 0;
    }
    int32_t t = d == FUSOR_BOOL ? x : add(k, IR_CAST, FUSOR_BOOL, d, x, -1, -1);
    for (ir_op op = IR_ANY; op <= IR_ALL; op++) {
        out(b, op, add(k, op, FUSOR_BOOL, FUSOR_BOOL, t, -1, -1));
        k->outputs[k->noutputs - 1].is_array = 0;
    }
    ir_finish(k);
    return ir_plan_build(k, &b->p) == FUSOR_OK;
}

/* ------------------------------------------------------------------ inputs */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

enum { NSPECIAL = 14 };

static ir_value special(fusor_dtype d, int i) {
    if (is_float(d)) {
        static const double f[NSPECIAL] = {0.0,      -0.0,      1.0, -1.0, 0.5,   -2.5,   2.5,
                                           INFINITY, -INFINITY, NAN, 3.0,  -7.25, 1e-310, 1e30};
        double v = f[i];
        if (d == FUSOR_F32 && v == 1e-310)
            v = 1e-40;
        if (d == FUSOR_F16 && v == 1e-310) /* a half subnormal; 1e30 is inf in half */
            v = 3e-6;
        return sc_cast((ir_value){.f = v}, FUSOR_F64, d);
    }
    unsigned w = (unsigned)fusor_dtype_size(d) * 8;
    int64_t s[NSPECIAL] = {0, 1, -1, 2, -2, INT64_MIN, INT64_MAX, 7, w - 1, w, w + 1, 3, -3, 5};
    if (d != FUSOR_I64 && d != FUSOR_U64) {
        if (i == 5)
            s[i] = -(INT64_C(1) << (w - 1)); /* the dtype's MIN (or a large u) */
        if (i == 6)
            s[i] = (INT64_C(1) << (w - 1)) - 1;
    }
    return sc_cast((ir_value){.i = s[i]}, FUSOR_I64, d);
}

static ir_value random_value(fusor_dtype d) {
    uint64_t r = next_rand();
    if (is_float(d)) {
        /* mostly moderate values, sometimes any bit pattern */
        double v = (double)(int64_t)(r >> 8) / (double)(INT64_C(1) << 50) * ((r & 3) ? 1 : 1e3);
        if ((r & 31) == 0)
            memcpy(&v, &r, sizeof v);
        return sc_cast((ir_value){.f = v}, FUSOR_F64, d);
    }
    if (d == FUSOR_BOOL)
        return (ir_value){.i = (int64_t)(r & 1)};
    if (r & 1)
        r = (r >> 1) % 70; /* small: shift counts, exponents */
    return sc_cast((ir_value){.u = r}, FUSOR_U64, d);
}

/* x and y over pairs of specials, then random; c alternating with some 2s. */
static void fill(fusor_dtype d, char *x, char *y, uint8_t *c) {
    size_t es = fusor_dtype_size(d);
    for (int i = 0; i < N; i++) {
        int pair = i < NSPECIAL * NSPECIAL;
        ir_value a = pair && d != FUSOR_BOOL ? special(d, i / NSPECIAL) : random_value(d);
        ir_value b = pair && d != FUSOR_BOOL ? special(d, i % NSPECIAL) : random_value(d);
        sc_store(x + i * es, d, a);
        sc_store(y + i * es, d, b);
        c[i] = (uint8_t)(i % 3 == 0 ? 0 : i % 7 == 0 ? 2 : 1);
    }
    if (d == FUSOR_BOOL)
        ((uint8_t *)x)[5] = 2; /* nonzero bytes are true */
}

/* ------------------------------------------------------------------ comparing */

static uint64_t ulp_distance(double a, double b, fusor_dtype d) {
    if (signbit(a) != signbit(b))
        return a == b ? 0 : UINT64_MAX;
    if (d == FUSOR_F16) {
        uint16_t ia = fusor_f16_from_f64(a), ib = fusor_f16_from_f64(b);
        return ia > ib ? (uint64_t)(ia - ib) : (uint64_t)(ib - ia);
    }
    if (d == FUSOR_F32) {
        float fa = (float)a, fb = (float)b;
        uint32_t ia, ib;
        memcpy(&ia, &fa, 4);
        memcpy(&ib, &fb, 4);
        return ia > ib ? ia - ib : ib - ia;
    }
    uint64_t ia, ib;
    memcpy(&ia, &a, 8);
    memcpy(&ib, &b, 8);
    return ia > ib ? ia - ib : ib - ia;
}

/* The functions LLVM may vectorise into vector math calls: SLEEF's (within 1 ulp of the
 * true value) by default, libmvec's (4 ulp) in fast mode; a few ulp from libm either way. */
static int vector_math(ir_op op) {
    switch (op) {
    case IR_SIN: case IR_COS: case IR_TAN: case IR_ASIN: case IR_ACOS: case IR_ATAN:
    case IR_SINH: case IR_COSH: case IR_TANH: case IR_ASINH: case IR_ACOSH: case IR_ATANH:
    case IR_EXP: case IR_EXP2: case IR_EXPM1: case IR_LOG: case IR_LOG2: case IR_LOG10:
    case IR_LOG1P: case IR_CBRT: case IR_POW: case IR_ATAN2: case IR_HYPOT: return 1;
    default: return 0;
    }
}

static int same(ir_value got, ir_value want, fusor_dtype d, ir_op op) {
    if (!is_float(d))
        return got.u == want.u;
    if (isnan(got.f) || isnan(want.f))
        return isnan(got.f) && isnan(want.f);
    if (vector_math(op))
        return ulp_distance(got.f, want.f, d) <= 4;
    if (op == IR_SUM || op == IR_PROD)
        return got.f == want.f || fabs(got.f - want.f) <= 1e-12 * fabs(want.f) ||
               (d == FUSOR_F32 && fabs(got.f - want.f) <= 1e-5 * fabs(want.f)) ||
               (d == FUSOR_F16 && ulp_distance(got.f, want.f, d) <= 1);
    return got.u == want.u;
}

static const char *dn(fusor_dtype d) { return fusor_dtype_name(d); }

/* Compares output j element by element; reports the first few mismatches. */
static int compare_output(const built *b, int j, const char *got, int64_t gstride, const char *want,
                          const char *x, const char *y, fusor_dtype d, const char *what) {
    const ir_output *o = &b->k->outputs[j];
    size_t es = fusor_dtype_size(o->dtype), xs = fusor_dtype_size(d);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        ir_value g = sc_load(got + i * gstride, o->dtype);
        ir_value w = sc_load(want + i * es, o->dtype);
        if (same(g, w, o->dtype, b->op[j]))
            continue;
        if (bad++ < 3) {
            char gs[40], ws[40], as[40], bs[40];
            sc_format(gs, sizeof gs, g, o->dtype);
            sc_format(ws, sizeof ws, w, o->dtype);
            sc_format(as, sizeof as, sc_load(x + i * xs, d), d);
            sc_format(bs, sizeof bs, sc_load(y + i * xs, d), d);
            fprintf(stderr, "  %s %s(%s) -> %s, [%d] x=%s y=%s: jit %s, interp %s\n", what,
                    ir_op_name(b->op[j]), dn(d), dn(o->dtype), i, as, bs, gs, ws);
        }
    }
    return bad;
}

/* ------------------------------------------------------------------ running */

static void interp_1d(const built *b, char **bases, const int64_t *strides, ir_value *outs) {
    int na = b->k->nparams + b->k->noutputs;
    int64_t st[MAXOUT + 3][FUSOR_MAX_DIMS];
    for (int a = 0; a < na; a++)
        st[a][0] = strides[a];
    ir_domain dom = {
        .ndim = 1, .shape = {N}, .size = N, .narrays = na, .base = bases, .strides = st};
    CHECK_OK(interp_run(b->k, &dom, (ir_value[3]){{0}}, outs));
}

/* Returns the number of differences, or -1 when `only` is past the last op. */
static int test_elementwise(fusor_dtype d, int only) {
    built b = {0};
    if (!build_elementwise(&b, d, only)) {
        arena_free(&b.ar);
        CHECK_MSG(only >= 0, "building the %s kernel", dn(d));
        return -1;
    }
    cg_compiled *c = NULL;
    CHECK_OK(cg_host_compile(b.k, b.p, NULL, &c));
    if (!c)
        return 1;
    size_t es = fusor_dtype_size(d);
    int nout = b.k->noutputs;
    char *x = fu_malloc(N * es), *y = fu_malloc(N * es);
    uint8_t cond[N];
    fill(d, x, y, cond);
    char *xr = fu_malloc(N * es); /* x reversed, read with a negative stride */
    for (int i = 0; i < N; i++)
        memcpy(xr + (N - 1 - i) * es, x + i * es, es);
    char *ytmp = fu_malloc(N * es * 2); /* y again, every other element */
    for (int i = 0; i < N; i++)
        memcpy(ytmp + 2 * i * es, y + i * es, es);
    char *want[MAXOUT], *got[MAXOUT], *gots[MAXOUT];
    char *ib[MAXOUT + 3] = {x, y, (char *)cond}, *cb[MAXOUT + 3] = {x, y, (char *)cond};
    char *sb[MAXOUT + 3] = {xr + (N - 1) * es, ytmp, (char *)cond};
    int64_t ist[MAXOUT + 3] = {(int64_t)es, (int64_t)es, 1};
    int64_t sst[MAXOUT + 3] = {-(int64_t)es, 2 * (int64_t)es, 1};
    for (int j = 0; j < nout; j++) {
        size_t os = fusor_dtype_size(b.k->outputs[j].dtype);
        want[j] = fu_malloc(N * os);
        got[j] = fu_malloc(N * os);
        gots[j] = fu_malloc(N * os * 3);
        memset(got[j], 0xCD, N * os);
        memset(gots[j], 0xCD, N * os * 3);
        ib[3 + j] = want[j];
        cb[3 + j] = got[j];
        sb[3 + j] = gots[j];
        ist[3 + j] = (int64_t)os;
        sst[3 + j] = 3 * (int64_t)os;
    }
    interp_1d(&b, ib, ist, NULL);
    c->contig[0](cb, ist, N, NULL, NULL);
    c->strided[0](sb, sst, N, NULL, NULL);
    int bad = 0;
    for (int j = 0; j < nout; j++) {
        bad += compare_output(&b, j, got[j], ist[3 + j], want[j], x, y, d, "contig");
        bad += compare_output(&b, j, gots[j], sst[3 + j], want[j], x, y, d, "strided");
    }
    CHECK_MSG(bad == 0, "%s: %d elements differ from the interpreter", dn(d), bad);
    for (int j = 0; j < nout; j++) {
        fu_free(want[j]);
        fu_free(got[j]);
        fu_free(gots[j]);
    }
    fu_free(x);
    fu_free(y);
    fu_free(xr);
    fu_free(ytmp);
    cg_compiled_free(c);
    arena_free(&b.ar);
    return bad;
}

/* The host pool's part: fresh accumulators per pass, results into the slots, finish. */
static void run_passes(const built *b, const cg_compiled *c, char **ptrs, const int64_t *st,
                       int64_t n, ir_value *outs, int strided) {
    ir_value slots[MAXOUT + 4] = {{0}};
    slots[b->p->count_slot].i = n;
    for (int p = 0; p < b->p->npasses; p++) {
        const ir_pass *ps = &b->p->passes[p];
        ir_value acc[MAXOUT];
        for (int r = 0; r < ps->nreductions; r++) {
            const ir_node *nd = &b->k->nodes[ps->reductions[r]];
            acc[r] = sc_reduce_identity((ir_op)nd->op, (fusor_dtype)nd->dtype);
        }
        (strided ? c->strided : c->contig)[p](ptrs, st, n, slots, acc);
        for (int r = 0; r < ps->nreductions; r++)
            slots[b->k->nodes[ps->reductions[r]].slot] = acc[r];
    }
    c->finish(slots, outs);
}

/* Every reduction of x, over the specials (NaN, inf, zeros of both signs) and over finite
 * random values only. */
static void test_reductions(fusor_dtype d) {
    built b = {0};
    if (!build_reductions(&b, d)) {
        CHECK_MSG(0, "building the %s reductions", dn(d));
        return;
    }
    cg_compiled *c = NULL;
    CHECK_OK(cg_host_compile(b.k, b.p, NULL, &c));
    if (!c)
        return;
    size_t es = fusor_dtype_size(d);
    char *x = fu_malloc(N * es), *y = fu_malloc(N * es);
    uint8_t cond[N];
    int bad = 0;
    for (int data = 0; data < 3; data++) {
        fill(d, x, y, cond);
        if (data > 0 && is_float(d)) /* finite values, some exact zeros of either sign */
            for (int i = 0; i < N; i++) {
                double v = (double)(int64_t)(next_rand() >> 12) / (double)(INT64_C(1) << 51);
                if (data == 2)
                    v = -fabs(v) - 0.5; /* all negative: max is a zero */
                if (i % 50 == 7)
                    v = (i / 50) % 2 ? -0.0 : 0.0;
                sc_store(x + i * es, d, sc_cast((ir_value){.f = v}, FUSOR_F64, d));
            }
        ir_value want[MAXOUT], got[MAXOUT], gots[MAXOUT];
        /* one array (x); the scalar outputs' entries are unused */
        char *bases[MAXOUT + 3] = {x}, *rbases[MAXOUT + 3] = {x + (N - 1) * es};
        int64_t st[MAXOUT + 3] = {(int64_t)es}, rst[MAXOUT + 3] = {-(int64_t)es};
        interp_1d(&b, bases, st, want);
        run_passes(&b, c, bases, st, N, got, 0);
        run_passes(&b, c, rbases, rst, N, gots, 1);
        ir_value wrev[MAXOUT]; /* the reversed order's own reference */
        char *xr = fu_malloc(N * es);
        for (int i = 0; i < N; i++)
            memcpy(xr + (N - 1 - i) * es, x + i * es, es);
        bases[0] = xr;
        interp_1d(&b, bases, st, wrev);
        fu_free(xr);
        for (int j = 0; j < b.k->noutputs; j++) {
            fusor_dtype od = b.k->outputs[j].dtype;
            for (int v = 0; v < 2; v++) {
                ir_value g = v ? gots[j] : got[j], w = v ? wrev[j] : want[j];
                if (same(g, w, od, b.op[j]))
                    continue;
                bad++;
                char gs[40], ws[40];
                sc_format(gs, sizeof gs, g, od);
                sc_format(ws, sizeof ws, w, od);
                fprintf(stderr, "  %s %s(%s) data %d: jit %s (sign %d), interp %s (sign %d)\n",
                        v ? "strided" : "contig", ir_op_name(b.op[j]), dn(d), data, gs,
                        is_float(od) && signbit(g.f), ws, is_float(od) && signbit(w.f));
            }
        }
    }
    CHECK_MSG(bad == 0, "%s reductions: %d differ from the interpreter", dn(d), bad);
    fu_free(x);
    fu_free(y);
    cg_compiled_free(c);
    arena_free(&b.ar);
}

/* A 2-D domain (R x N) run row by row with the strided variant, as the host pool does:
 * x is C-ordered, y is broadcast along rows (stride 0) and reversed along them, the
 * outputs are Fortran-ordered. */
static void test_rows_2d(fusor_dtype d) {
    enum { R = 3 };
    built b = {0};
    if (!build_elementwise(&b, d, -1))
        return;
    cg_compiled *c = NULL;
    CHECK_OK(cg_host_compile(b.k, b.p, NULL, &c));
    if (!c)
        return;
    size_t es = fusor_dtype_size(d);
    int nout = b.k->noutputs, na = 3 + nout;
    char *x = fu_malloc(R * N * es), *y = fu_malloc(N * es);
    uint8_t cond[R * N];
    for (int r = 0; r < R; r++)
        fill(d, x + r * N * es, y, cond + r * N);
    char *base[MAXOUT + 3] = {x, y + (N - 1) * es, (char *)cond};
    int64_t st[MAXOUT + 3][FUSOR_MAX_DIMS] = {
        {N * (int64_t)es, (int64_t)es}, {0, -(int64_t)es}, {N, 1}};
    char *want[MAXOUT], *got[MAXOUT];
    for (int j = 0; j < nout; j++) {
        size_t os = fusor_dtype_size(b.k->outputs[j].dtype);
        want[j] = fu_malloc(R * N * os);
        got[j] = fu_malloc(R * N * os);
        memset(got[j], 0xCD, R * N * os);
        st[3 + j][0] = (int64_t)os;
        st[3 + j][1] = R * (int64_t)os;
    }
    for (int j = 0; j < nout; j++)
        base[3 + j] = want[j];
    ir_domain dom = {
        .ndim = 2, .shape = {R, N}, .size = R * N, .narrays = na, .base = base, .strides = st};
    CHECK_OK(interp_run(b.k, &dom, (ir_value[3]){{0}}, NULL));
    for (int r = 0; r < R; r++) {
        char *ptrs[MAXOUT + 3];
        int64_t inner[MAXOUT + 3];
        for (int a = 0; a < na; a++) {
            char *bs = a < 3 ? base[a] : got[a - 3];
            ptrs[a] = bs + r * st[a][0];
            inner[a] = st[a][1];
        }
        c->strided[0](ptrs, inner, N, NULL, NULL);
    }
    int bad = 0;
    for (int j = 0; j < nout; j++) {
        for (int r = 0; r < R; r++)
            for (int i = 0; i < N; i++) {
                int64_t off = r * st[3 + j][0] + i * st[3 + j][1];
                ir_value g = sc_load(got[j] + off, b.k->outputs[j].dtype);
                ir_value w = sc_load(want[j] + off, b.k->outputs[j].dtype);
                bad += !same(g, w, b.k->outputs[j].dtype, b.op[j]);
            }
    }
    CHECK_MSG(bad == 0, "%s 2-D rows: %d elements differ", dn(d), bad);
    for (int j = 0; j < nout; j++) {
        fu_free(want[j]);
        fu_free(got[j]);
    }
    fu_free(x);
    fu_free(y);
    cg_compiled_free(c);
    arena_free(&b.ar);
}

int main(void) {
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++) {
        int all = test_elementwise((fusor_dtype)d, -1), one = 0, nops = 0;
        for (int r; (r = test_elementwise((fusor_dtype)d, nops)) >= 0; nops++)
            one += r;
        printf("%-4s element-wise: %d ops x %d elements, %d differences together, %d alone\n",
               dn((fusor_dtype)d), nops, N, all, one);
    }
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++)
        test_reductions((fusor_dtype)d);
    test_rows_2d(FUSOR_F64);
    test_rows_2d(FUSOR_I16);
    return check_done();
}
