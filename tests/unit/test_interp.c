/*
 * test_interp.c — the reference interpreter on hand-built kernels: broadcasting (zero
 * strides), negative and Fortran-order strides, size-0, size-1 and 0-d domains,
 * reductions (NumPy's exact pairwise sums from fixtures, a 4M-element f32 sum against a
 * long double sum, empty reductions, min of nothing as an error), mean as SUM/COUNT,
 * in-place outputs, multi-pass kernels, malformed IR and every allocation failure.
 * Outputs are poisoned before each run, so an element left unwritten fails; references
 * are computed here in plain C.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "arena.h"
#include "check.h"
#include "fusor.h"
#include "interp.h"
#include "ir.h"
#include "scalar.h"

#ifndef FUSOR_SOURCE_DIR
#define FUSOR_SOURCE_DIR "."
#endif
#define POISON     0xAB
#define POISON_U64 UINT64_C(0xABABABABABABABAB)

/* ------------------------------------------------------------------ building kernels */

static arena A;
static const ir_value ZERO = {0};

static ir_kernel *kernel(const char *name, int nparams, const ir_param *params, int noutputs,
                         const ir_output *outputs) {
    arena_free(&A);
    arena_init(&A);
    ir_kernel *k = ir_kernel_new(&A, name);
    k->params = arena_alloc(&A, sizeof(ir_param) * (size_t)(nparams + 1));
    k->outputs = arena_alloc(&A, sizeof(ir_output) * (size_t)(noutputs + 1));
    memcpy(k->params, params, sizeof(ir_param) * (size_t)nparams);
    memcpy(k->outputs, outputs, sizeof(ir_output) * (size_t)noutputs);
    k->nparams = nparams;
    k->noutputs = noutputs;
    return k;
}

static int32_t in(ir_kernel *k, int p) {
    ir_value v = {.i = p};
    return ir_add(k, IR_INPUT, k->params[p].dtype, k->params[p].dtype,
                  k->params[p].is_array ? IR_VARYING : IR_UNIFORM, -1, -1, -1, v);
}
static int32_t un(ir_kernel *k, ir_op op, fusor_dtype t, int32_t a) {
    return ir_add(k, op, t, (fusor_dtype)k->nodes[a].dtype, IR_UNIFORM, a, -1, -1, ZERO);
}
static int32_t bin(ir_kernel *k, ir_op op, fusor_dtype t, int32_t a, int32_t b) {
    return ir_add(k, op, t, (fusor_dtype)k->nodes[a].dtype, IR_UNIFORM, a, b, -1, ZERO);
}
static int32_t f64c(ir_kernel *k, double v) { return ir_const(k, FUSOR_F64, (ir_value){.f = v}); }
static int32_t count(ir_kernel *k) {
    return ir_add(k, IR_COUNT, FUSOR_I64, FUSOR_I64, IR_UNIFORM, -1, -1, -1, ZERO);
}
static void output(ir_kernel *k, int j, int32_t node) { k->outputs[j].node = node; }

/* ------------------------------------------------------------------ domains */

typedef struct dom {
    ir_domain d;
    char *base[8];
    int64_t strides[8][FUSOR_MAX_DIMS];
} dom;

static void dom_init(dom *m, int ndim, const int64_t *shape, int narrays) {
    memset(m, 0, sizeof *m);
    m->d.ndim = ndim;
    m->d.size = 1;
    for (int i = 0; i < ndim; i++) {
        m->d.shape[i] = shape[i];
        m->d.size *= shape[i];
    }
    m->d.narrays = narrays;
    m->d.base = m->base;
    m->d.strides = m->strides;
}

/* Array `a` at `data` with byte strides (NULL: C order for elements of `elem` bytes). */
static void dom_array(dom *m, int a, void *data, size_t elem, const int64_t *strides) {
    m->base[a] = data;
    int64_t s = (int64_t)elem;
    for (int i = m->d.ndim - 1; i >= 0; i--) {
        m->strides[a][i] = strides ? strides[i] : s;
        s *= m->d.shape[i];
    }
}

static int all_bytes(const void *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != v)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ tests */

/* z = x * y + s over 3x4: y is a row broadcast down (stride 0), s a scalar. */
static void test_broadcast(void) {
    ir_param ps[] = {{"x", FUSOR_F64, 1}, {"y", FUSOR_F64, 1}, {"s", FUSOR_F64, 0}};
    ir_output os[] = {{"z", FUSOR_F64, 1, -1}};
    ir_kernel *k = kernel("broadcast", 3, ps, 1, os);
    output(k, 0,
           bin(k, IR_ADD, FUSOR_F64, bin(k, IR_MUL, FUSOR_F64, in(k, 0), in(k, 1)), in(k, 2)));
    ir_finish(k);

    double x[12], y[4], z[12];
    for (int i = 0; i < 12; i++)
        x[i] = 0.5 * i - 2;
    for (int j = 0; j < 4; j++)
        y[j] = 1.0 / (j + 1);
    memset(z, POISON, sizeof z);
    dom m;
    int64_t shape[] = {3, 4}, ystr[] = {0, 8};
    dom_init(&m, 2, shape, 4);
    dom_array(&m, 0, x, 8, NULL);
    dom_array(&m, 1, y, 8, ystr);
    dom_array(&m, 3, z, 8, NULL);
    ir_value sc[3] = {{0}, {0}, {.f = 0.25}}, outs[1] = {{.u = POISON_U64}};
    CHECK_OK(interp_run(k, &m.d, sc, outs));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            CHECK(z[i * 4 + j] == x[i * 4 + j] * y[j] + 0.25);
    CHECK(outs[0].u == POISON_U64); /* the entry of an array output is untouched */
}

/* z = x - y (i32) with x a reversed view (negative strides), y and z Fortran-ordered. */
static void test_strides(void) {
    ir_param ps[] = {{"x", FUSOR_I32, 1}, {"y", FUSOR_I32, 1}};
    ir_output os[] = {{"z", FUSOR_I32, 1, -1}};
    ir_kernel *k = kernel("strides", 2, ps, 1, os);
    output(k, 0, bin(k, IR_SUB, FUSOR_I32, in(k, 0), in(k, 1)));
    ir_finish(k);

    int32_t xb[12], yb[12], zb[12];
    for (int i = 0; i < 12; i++)
        xb[i] = i * i, yb[i] = 100 * i;
    memset(zb, POISON, sizeof zb);
    dom m;
    int64_t shape[] = {3, 4}, xs[] = {-16, -4}, fs[] = {4, 12};
    dom_init(&m, 2, shape, 3);
    dom_array(&m, 0, &xb[11], 4, xs); /* x[i][j] = xb[11 - 4i - j] */
    dom_array(&m, 1, yb, 4, fs);      /* y[i][j] = yb[i + 3j] */
    dom_array(&m, 2, zb, 4, fs);
    CHECK_OK(interp_run(k, &m.d, NULL, NULL));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            CHECK_MSG(zb[i + 3 * j] == xb[11 - 4 * i - j] - yb[i + 3 * j], "z[%d][%d]", i, j);
}

/* Size-1 dimensions, and a 0-d domain. */
static void test_size_one_and_0d(void) {
    ir_param ps[] = {{"x", FUSOR_I16, 1}};
    ir_output os[] = {{"z", FUSOR_I16, 1, -1}, {"s", FUSOR_I64, 0, -1}};
    ir_kernel *k = kernel("small", 1, ps, 2, os);
    int32_t x = in(k, 0);
    output(k, 0, bin(k, IR_MUL, FUSOR_I16, x, x));
    output(k, 1, un(k, IR_SUM, FUSOR_I64, un(k, IR_CAST, FUSOR_I64, x)));
    ir_finish(k);

    int16_t xb[5] = {300, -2, 7, 0, 181}, zb[5];
    memset(zb, POISON, sizeof zb);
    dom m;
    int64_t shape[] = {1, 5, 1};
    dom_init(&m, 3, shape, 3);
    dom_array(&m, 0, xb, 2, NULL);
    dom_array(&m, 1, zb, 2, NULL);
    ir_value outs[2] = {{.u = POISON_U64}, {.u = POISON_U64}};
    CHECK_OK(interp_run(k, &m.d, NULL, outs));
    for (int i = 0; i < 5; i++)
        CHECK(zb[i] == (int16_t)(uint16_t)(xb[i] * xb[i]));
    CHECK(outs[1].i == 300 - 2 + 7 + 181);

    int16_t x0 = -9, z0 = 0;
    dom_init(&m, 0, NULL, 3);
    dom_array(&m, 0, &x0, 2, NULL);
    dom_array(&m, 1, &z0, 2, NULL);
    CHECK_OK(interp_run(k, &m.d, NULL, outs));
    CHECK(z0 == 81 && outs[1].i == -9);
}

/* An empty domain: identities for sum, prod, any, all; count 0; mean NaN; array outputs
 * untouched; min() is an error that leaves the scalar outputs untouched. */
static void test_empty(void) {
    ir_param ps[] = {{"x", FUSOR_F32, 1}};
    ir_output os[] = {{"z", FUSOR_F32, 1, -1},    {"s", FUSOR_F32, 0, -1},
                      {"p", FUSOR_F32, 0, -1},    {"c", FUSOR_I64, 0, -1},
                      {"any", FUSOR_BOOL, 0, -1}, {"all", FUSOR_BOOL, 0, -1},
                      {"mean", FUSOR_F64, 0, -1}};
    ir_kernel *k = kernel("empty", 1, ps, 7, os);
    int32_t x = in(k, 0), pos = bin(k, IR_GT, FUSOR_BOOL, x, ir_const(k, FUSOR_F32, ZERO));
    int32_t x64 = un(k, IR_CAST, FUSOR_F64, x);
    output(k, 0, bin(k, IR_ADD, FUSOR_F32, x, x));
    output(k, 1, un(k, IR_SUM, FUSOR_F32, x));
    output(k, 2, un(k, IR_PROD, FUSOR_F32, x));
    output(k, 3, count(k));
    output(k, 4, un(k, IR_ANY, FUSOR_BOOL, pos));
    output(k, 5, un(k, IR_ALL, FUSOR_BOOL, pos));
    output(k, 6,
           bin(k, IR_DIV, FUSOR_F64, un(k, IR_SUM, FUSOR_F64, x64),
               un(k, IR_CAST, FUSOR_F64, count(k))));
    ir_finish(k);

    float buf[4];
    memset(buf, POISON, sizeof buf);
    dom m;
    int64_t shape[] = {3, 0, 2};
    dom_init(&m, 3, shape, 8);
    dom_array(&m, 0, buf, 4, NULL);
    dom_array(&m, 1, buf, 4, NULL);
    ir_value outs[7];
    memset(outs, POISON, sizeof outs);
    CHECK_OK(interp_run(k, &m.d, NULL, outs));
    CHECK(all_bytes(buf, sizeof buf, POISON));
    CHECK(outs[0].u == POISON_U64);
    CHECK(outs[1].f == 0.0 && !signbit(outs[1].f) && outs[2].f == 1.0);
    CHECK(outs[3].i == 0 && outs[4].i == 0 && outs[5].i == 1 && isnan(outs[6].f));

    /* min() and max() of nothing. */
    for (int op = IR_MIN; op <= IR_MAX; op++) {
        ir_output os2[] = {{"s", FUSOR_F32, 0, -1}, {"m", FUSOR_F32, 0, -1}};
        k = kernel("empty_min", 1, ps, 2, os2);
        x = in(k, 0);
        output(k, 0, un(k, IR_SUM, FUSOR_F32, x));
        output(k, 1, un(k, (ir_op)op, FUSOR_F32, x));
        ir_finish(k);
        dom_init(&m, 3, shape, 3);
        dom_array(&m, 0, buf, 4, NULL);
        memset(outs, POISON, sizeof outs);
        fusor_status st = interp_run(k, &m.d, NULL, outs);
        CHECK_MSG(st == FUSOR_ERROR_VALUE, "%s", fusor_status_name(st));
        CHECK_MSG(strstr(fusor_last_error(), "empty") != NULL, "%s", fusor_last_error());
        CHECK(outs[0].u == POISON_U64 && outs[1].u == POISON_U64);
    }
}

/* np.sum and np.mean of the fixtures, bit for bit: the pairwise grouping is NumPy's. */
static void test_numpy_sums(void) {
    fusor_context *ctx = NULL;
    CHECK_OK(fusor_context_create(NULL, &ctx));
    const fusor_dtype types[] = {FUSOR_F32, FUSOR_F64, FUSOR_F16};
    for (int t = 0; t < 3; t++) {
        fusor_dtype dt = types[t];
        char path[512];
        fusor_array *x = NULL, *res = NULL;
        snprintf(path, sizeof path, "%s/tests/fixtures/ops/reduce.%s.npy", FUSOR_SOURCE_DIR,
                 fusor_dtype_name(dt));
        CHECK_OK(fusor_npy_load(ctx, path, &x));
        snprintf(path, sizeof path, "%s/tests/fixtures/ops/reduce.%s.res.npy", FUSOR_SOURCE_DIR,
                 fusor_dtype_name(dt));
        CHECK_OK(fusor_npy_load(ctx, path, &res));
        if (!x || !res)
            continue;
        ir_param ps[] = {{"x", dt, 1}};
        ir_output os[] = {{"s", dt, 0, -1}, {"mean", dt, 0, -1}};
        ir_kernel *k = kernel("sum", 1, ps, 2, os);
        int32_t s = un(k, IR_SUM, dt, in(k, 0));
        output(k, 0, s);
        if (dt == FUSOR_F16) { /* np.mean of float16: in f32, rounded once (as check.c) */
            int32_t s32 = un(k, IR_SUM, FUSOR_F32, un(k, IR_CAST, FUSOR_F32, in(k, 0)));
            int32_t m = bin(k, IR_DIV, FUSOR_F32, s32, un(k, IR_CAST, FUSOR_F32, count(k)));
            output(k, 1, un(k, IR_CAST, FUSOR_F16, m));
        } else {
            output(k, 1, bin(k, IR_DIV, dt, s, un(k, IR_CAST, dt, count(k))));
        }
        ir_finish(k);
        double want[2];
        for (int i = 0; i < 2; i++)
            want[i] = sc_load((const char *)fusor_array_data(res) + i * fusor_dtype_size(dt), dt).f;
        /* As 1-D, and as a C-ordered 2-D domain (rows x cols) over the same memory. */
        int64_t n = fusor_array_shape(x)[0], shape2[2] = {dt == FUSOR_F64 ? 21 : 17, 0};
        shape2[1] = n / shape2[0];
        CHECK(shape2[0] * shape2[1] == n);
        for (int ndim = 1; ndim <= 2; ndim++) {
            dom m;
            dom_init(&m, ndim, ndim == 1 ? &n : shape2, 3);
            dom_array(&m, 0, fusor_array_data(x), fusor_dtype_size(dt), NULL);
            ir_value outs[2];
            CHECK_OK(interp_run(k, &m.d, NULL, outs));
            CHECK_MSG(outs[0].f == want[0], "%s sum of %" PRId64 " (%d-D): %.17g, NumPy %.17g",
                      fusor_dtype_name(dt), n, ndim, outs[0].f, want[0]);
            CHECK_MSG(outs[1].f == want[1], "%s mean (%d-D): %.17g, NumPy %.17g",
                      fusor_dtype_name(dt), ndim, outs[1].f, want[1]);
        }
        fusor_array_destroy(x);
        fusor_array_destroy(res);
    }
    fusor_context_destroy(ctx);
}

/* 4M f32 values 1 + u (u in [0,1)) after a leading 2^24: a running f32 sum is far off
 * (every 1 + u rounds to 2 next to 2^24); the pairwise sum is within 1e-4 of the exact
 * sum (long double holds it exactly). */
static void test_big_sum(void) {
    enum { N = 4 << 20 };
    float *x = malloc(sizeof(float) * N);
    CHECK(x != NULL);
    if (!x)
        return;
    uint32_t s = 2463534242u;
    long double exact = 0;
    float naive = 0;
    for (int i = 0; i < N; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        x[i] = i == 0 ? 0x1p24f : 1.0f + (float)(s >> 8) * 0x1p-24f;
        exact += x[i];
        naive += x[i];
    }
    ir_param ps[] = {{"x", FUSOR_F32, 1}};
    ir_output os[] = {{"s", FUSOR_F32, 0, -1}};
    ir_kernel *k = kernel("big_sum", 1, ps, 1, os);
    output(k, 0, un(k, IR_SUM, FUSOR_F32, in(k, 0)));
    ir_finish(k);
    dom m;
    int64_t shape[] = {N};
    dom_init(&m, 1, shape, 2);
    dom_array(&m, 0, x, 4, NULL);
    ir_value outs[1];
    CHECK_OK(interp_run(k, &m.d, NULL, outs));
    double rel = fabs((double)((outs[0].f - exact) / exact));
    double naive_rel = fabs((double)((naive - exact) / exact));
    printf("sum of %d f32: relative error %.3g (a running f32 sum: %.3g)\n", N, rel, naive_rel);
    CHECK(rel <= 1e-4);
    CHECK(naive_rel > 1e-3); /* the data is hard enough to tell the two apart */
    free(x);
}

/* Integer and NaN reductions. */
static void test_reductions(void) {
    ir_param ps[] = {{"x", FUSOR_I64, 1}, {"y", FUSOR_F64, 1}};
    ir_output os[] = {{"sum", FUSOR_I64, 0, -1},  {"max", FUSOR_I64, 0, -1},
                      {"min", FUSOR_I64, 0, -1},  {"fmax", FUSOR_F64, 0, -1},
                      {"fmin", FUSOR_F64, 0, -1}, {"prod", FUSOR_I64, 0, -1},
                      {"fsum", FUSOR_F64, 0, -1}};
    ir_kernel *k = kernel("reduce", 2, ps, 7, os);
    int32_t x = in(k, 0), y = in(k, 1);
    output(k, 0, un(k, IR_SUM, FUSOR_I64, x));
    output(k, 1, un(k, IR_MAX, FUSOR_I64, x));
    output(k, 2, un(k, IR_MIN, FUSOR_I64, x));
    output(k, 3, un(k, IR_MAX, FUSOR_F64, y));
    output(k, 4, un(k, IR_MIN, FUSOR_F64, y));
    output(k, 5, un(k, IR_PROD, FUSOR_I64, x));
    output(k, 6, un(k, IR_SUM, FUSOR_F64, y));
    ir_finish(k);
    int64_t xb[4] = {INT64_MAX, 1, 5, -3};
    double yb[4] = {1.0, NAN, 3.0, -2.0};
    dom m;
    int64_t shape[] = {4};
    dom_init(&m, 1, shape, 9);
    dom_array(&m, 0, xb, 8, NULL);
    dom_array(&m, 1, yb, 8, NULL);
    ir_value outs[7];
    CHECK_OK(interp_run(k, &m.d, NULL, outs));
    CHECK(outs[0].i == INT64_MIN + 2); /* wraps */
    CHECK(outs[1].i == INT64_MAX && outs[2].i == -3);
    CHECK(isnan(outs[3].f) && isnan(outs[4].f) && isnan(outs[6].f));
    CHECK(outs[5].u == (uint64_t)INT64_MAX * 5u * (uint64_t)-3);
}

/* In place: z = x * 2 + 1 into x itself, and z = x into x reversed (which is only right if
 * every element is read before any is written). */
static void test_in_place(void) {
    ir_param ps[] = {{"x", FUSOR_F64, 1}};
    ir_output os[] = {{"z", FUSOR_F64, 1, -1}};
    ir_kernel *k = kernel("inplace", 1, ps, 1, os);
    int32_t x = in(k, 0);
    output(k, 0, bin(k, IR_ADD, FUSOR_F64, bin(k, IR_MUL, FUSOR_F64, x, f64c(k, 2)), f64c(k, 1)));
    ir_finish(k);
    double b[7];
    for (int i = 0; i < 7; i++)
        b[i] = i;
    dom m;
    int64_t shape[] = {7}, rev[] = {-8};
    dom_init(&m, 1, shape, 2);
    dom_array(&m, 0, b, 8, NULL);
    dom_array(&m, 1, b, 8, NULL);
    CHECK_OK(interp_run(k, &m.d, NULL, NULL));
    for (int i = 0; i < 7; i++)
        CHECK(b[i] == 2.0 * i + 1);

    k = kernel("reverse", 1, ps, 1, os);
    output(k, 0, in(k, 0));
    ir_finish(k);
    dom_array(&m, 1, &b[6], 8, rev);
    CHECK_OK(interp_run(k, &m.d, NULL, NULL));
    for (int i = 0; i < 7; i++)
        CHECK_MSG(b[i] == 2.0 * (6 - i) + 1, "b[%d] = %g", i, b[i]);
}

/* softmax: p = exp(x - max(x)) / sum(...), three passes in a compiled back end. */
static ir_kernel *softmax_kernel(void) {
    ir_param ps[] = {{"x", FUSOR_F64, 1}};
    ir_output os[] = {{"p", FUSOR_F64, 1, -1}, {"m", FUSOR_F64, 0, -1}};
    ir_kernel *k = kernel("softmax", 1, ps, 2, os);
    int32_t x = in(k, 0), m = un(k, IR_MAX, FUSOR_F64, x);
    int32_t y = un(k, IR_EXP, FUSOR_F64, bin(k, IR_SUB, FUSOR_F64, x, m));
    output(k, 0, bin(k, IR_DIV, FUSOR_F64, y, un(k, IR_SUM, FUSOR_F64, y)));
    output(k, 1, m);
    ir_finish(k);
    return k;
}

static void test_softmax_and_oom(void) {
    ir_kernel *k = softmax_kernel();
    double x[5] = {1.0, -2.0, 3.5, 0.25, 3.0}, p[5];
    dom m;
    int64_t shape[] = {5};
    dom_init(&m, 1, shape, 3);
    dom_array(&m, 0, x, 8, NULL);
    dom_array(&m, 1, p, 8, NULL);
    /* Every allocation failing in turn: a clean status and untouched outputs each time. */
    int failures = 0;
    fusor_status st = FUSOR_ERROR_OUT_OF_MEMORY;
    ir_value outs[2];
    for (long n = 0; n < 100 && st != FUSOR_OK; n++) {
        memset(p, POISON, sizeof p);
        memset(outs, POISON, sizeof outs);
        fu_alloc_fail_after(n);
        st = interp_run(k, &m.d, NULL, outs);
        fu_alloc_fail_after(-1);
        if (st != FUSOR_OK) {
            failures++;
            CHECK_MSG(st == FUSOR_ERROR_OUT_OF_MEMORY, "%s", fusor_status_name(st));
            CHECK(all_bytes(p, sizeof p, POISON) && outs[1].u == POISON_U64);
        }
    }
    CHECK(st == FUSOR_OK && failures >= 4);
    double y[5], s = 0; /* fewer than 8 values: the pairwise sum is a plain one */
    for (int i = 0; i < 5; i++)
        s += y[i] = exp(x[i] - 3.5);
    for (int i = 0; i < 5; i++)
        CHECK(p[i] == y[i] / s);
    CHECK(outs[1].f == 3.5 && outs[0].u == POISON_U64);
}

/* bool and f32 outputs, where, comparisons, casts; uniform-only arithmetic. */
static void test_mixed_dtypes(void) {
    ir_param ps[] = {{"x", FUSOR_F32, 1}, {"t", FUSOR_F32, 0}};
    ir_output os[] = {{"big", FUSOR_BOOL, 1, -1},
                      {"c", FUSOR_U8, 1, -1},
                      {"w", FUSOR_F32, 1, -1},
                      {"n", FUSOR_I64, 0, -1}};
    ir_kernel *k = kernel("mixed", 2, ps, 4, os);
    int32_t x = in(k, 0), t = in(k, 1), big = bin(k, IR_GT, FUSOR_BOOL, x, t);
    output(k, 0, big);
    output(k, 1, un(k, IR_CAST, FUSOR_U8, x));
    output(k, 2, ir_add(k, IR_WHERE, FUSOR_F32, FUSOR_F32, IR_UNIFORM, big, x, t, ZERO));
    output(k, 3, un(k, IR_SUM, FUSOR_I64, un(k, IR_CAST, FUSOR_I64, big)));
    ir_finish(k);
    float xv[6] = {-1.5f, 300.0f, 2.0f, NAN, 0.1f, 7.9f}, w[6];
    unsigned char bigb[6], c[6];
    memset(bigb, POISON, sizeof bigb);
    memset(c, POISON, sizeof c);
    memset(w, POISON, sizeof w);
    dom m;
    int64_t shape[] = {2, 3};
    dom_init(&m, 2, shape, 6);
    dom_array(&m, 0, xv, 4, NULL);
    dom_array(&m, 2, bigb, 1, NULL);
    dom_array(&m, 3, c, 1, NULL);
    dom_array(&m, 4, w, 4, NULL);
    ir_value sc[2] = {{0}, {.f = 1.0}}, outs[4];
    CHECK_OK(interp_run(k, &m.d, sc, outs));
    const unsigned char want_big[6] = {0, 1, 1, 0, 0, 1}, want_c[6] = {0, 255, 2, 0, 0, 7};
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(bigb[i] == want_big[i], "big[%d] = %d", i, bigb[i]);
        CHECK_MSG(c[i] == want_c[i], "c[%d] = %d", i, c[i]);
        CHECK(memcmp(&w[i], want_big[i] ? &xv[i] : &(float){1.0f}, 4) == 0);
    }
    CHECK(outs[3].i == 3);

    /* No arrays at all: a // b on scalars over a 0-d domain. */
    ir_param ps2[] = {{"a", FUSOR_I32, 0}, {"b", FUSOR_I32, 0}};
    ir_output os2[] = {{"q", FUSOR_I32, 0, -1}};
    k = kernel("scalars", 2, ps2, 1, os2);
    output(k, 0, bin(k, IR_FLOORDIV, FUSOR_I32, in(k, 0), in(k, 1)));
    ir_finish(k);
    dom_init(&m, 0, NULL, 3);
    ir_value sc2[2] = {{.i = -7}, {.i = 2}}, q[1];
    CHECK_OK(interp_run(k, &m.d, sc2, q));
    CHECK(q[0].i == -4);
}

/* Malformed kernels and domains are refused before anything is written. */
static void test_errors(void) {
    ir_param ps[] = {{"x", FUSOR_F64, 1}};
    ir_output os[] = {{"z", FUSOR_F64, 1, -1}};
    ir_kernel *k = kernel("bad", 1, ps, 1, os);
    int32_t x = in(k, 0);
    /* an f64 add of an i32 constant */
    output(k, 0, bin(k, IR_ADD, FUSOR_F64, x, ir_const(k, FUSOR_I32, ZERO)));
    ir_finish(k);
    double xb[3] = {1, 2, 3}, z[3];
    memset(z, POISON, sizeof z);
    dom m;
    int64_t shape[] = {3};
    dom_init(&m, 1, shape, 2);
    dom_array(&m, 0, xb, 8, NULL);
    dom_array(&m, 1, z, 8, NULL);
    CHECK(interp_run(k, &m.d, NULL, NULL) == FUSOR_ERROR_INTERNAL);
    CHECK(all_bytes(z, sizeof z, POISON));

    k = kernel("good", 1, ps, 1, os);
    output(k, 0, un(k, IR_NEG, FUSOR_F64, in(k, 0)));
    ir_finish(k);
    m.d.size = 4; /* not the product of the shape */
    CHECK(interp_run(k, &m.d, NULL, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    m.d.size = 3;
    m.d.narrays = 1;
    CHECK(interp_run(k, &m.d, NULL, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    m.d.narrays = 2;
    CHECK(all_bytes(z, sizeof z, POISON));
    CHECK_OK(interp_run(k, &m.d, NULL, NULL));
    CHECK(z[0] == -1 && z[1] == -2 && z[2] == -3);
}

int main(void) {
    arena_init(&A);
    test_broadcast();
    test_strides();
    test_size_one_and_0d();
    test_empty();
    test_numpy_sums();
    test_big_sum();
    test_reductions();
    test_in_place();
    test_softmax_and_oom();
    test_mixed_dtypes();
    test_errors();
    arena_free(&A);
    return check_done();
}
