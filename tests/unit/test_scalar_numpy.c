/*
 * test_scalar_numpy.c — sc_apply and sc_cast against NumPy 2, element by element, on the
 * fixtures scripts/gen_fixtures.py wrote (tests/fixtures/ops, see its manifest.txt).
 *
 * Tolerances: every result is exact (bitwise for floats, the sign of zero included; any
 * NaN matches any NaN) except the transcendental functions of TRANSCENDENTAL below, which
 * may differ by at most 4 ulp of the result's precision — unless NumPy's result is an
 * infinity or a zero, which must then be matched exactly, sign included.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "ir.h"
#include "scalar.h"

#ifndef FUSOR_SOURCE_DIR
#define FUSOR_SOURCE_DIR "."
#endif
#define FIXTURES FUSOR_SOURCE_DIR "/tests/fixtures/ops"
#define MAX_ULP  4

static const ir_op TRANSCENDENTAL[] = {IR_CBRT,  IR_EXP,   IR_EXP2, IR_EXPM1, IR_LOG,  IR_LOG2,
                                       IR_LOG10, IR_LOG1P, IR_SIN,  IR_COS,   IR_TAN,  IR_ASIN,
                                       IR_ACOS,  IR_ATAN,  IR_SINH, IR_COSH,  IR_TANH, IR_ASINH,
                                       IR_ACOSH, IR_ATANH, IR_POW,  IR_ATAN2, IR_HYPOT};

static int is_transcendental(ir_op op) {
    for (size_t i = 0; i < sizeof TRANSCENDENTAL / sizeof TRANSCENDENTAL[0]; i++)
        if (TRANSCENDENTAL[i] == op)
            return 1;
    return 0;
}

/* The arrays of one dtype: in1 (N1), in2 (2 x N2), res1 (k x N1), res2 (k x N2). */
static fusor_array *fixture[FUSOR_NUM_DTYPES][4];
static fusor_context *ctx;

static fusor_array *load(fusor_dtype d, int which) {
    static const char *const kind[4] = {"in1", "in2", "res1", "res2"};
    if (!fixture[d][which]) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.%s.npy", FIXTURES, fusor_dtype_name(d), kind[which]);
        fusor_status st = fusor_npy_load(ctx, path, &fixture[d][which]);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", path, fusor_last_error());
    }
    return fixture[d][which];
}

/* Element [row][col] of a 1-D (row 0) or 2-D array, canonical. */
static ir_value element(const fusor_array *a, int64_t row, int64_t col) {
    const int64_t *st = fusor_array_strides(a);
    int64_t off = fusor_array_ndim(a) == 1 ? col * st[0] : row * st[0] + col * st[1];
    return sc_load((const char *)fusor_array_data(a) + off, fusor_array_dtype(a));
}

static int64_t columns(const fusor_array *a) {
    return fusor_array_shape(a)[fusor_array_ndim(a) - 1];
}

/* Distance in units in the last place between two finite-or-infinite values of one
 * precision: the count of representable values between them. */
static uint64_t ulp_distance(double x, double y, fusor_dtype t) {
    int64_t ox, oy;
    if (t == FUSOR_F16) {
        int32_t bx = fusor_f16_from_f64(x), by = fusor_f16_from_f64(y);
        ox = bx & 0x8000 ? -(int64_t)(bx & 0x7fff) : bx;
        oy = by & 0x8000 ? -(int64_t)(by & 0x7fff) : by;
    } else if (t == FUSOR_F32) {
        float fx = (float)x, fy = (float)y;
        int32_t bx, by;
        memcpy(&bx, &fx, 4);
        memcpy(&by, &fy, 4);
        ox = bx < 0 ? (int64_t)INT32_MIN - bx : bx;
        oy = by < 0 ? (int64_t)INT32_MIN - by : by;
    } else {
        memcpy(&ox, &x, 8);
        memcpy(&oy, &y, 8);
        ox = ox < 0 ? INT64_MIN - ox : ox;
        oy = oy < 0 ? INT64_MIN - oy : oy;
    }
    return ox > oy ? (uint64_t)ox - (uint64_t)oy : (uint64_t)oy - (uint64_t)ox;
}

static int same_float(ir_op op, fusor_dtype t, double got, double want) {
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (want == 0 || isinf(want) || !is_transcendental(op))
        return got == want && signbit(got) == signbit(want);
    return ulp_distance(got, want, t) <= MAX_ULP;
}

static int is_float(fusor_dtype t) { return t == FUSOR_F32 || t == FUSOR_F64 || t == FUSOR_F16; }

static int op_from_name(const char *name) {
    for (int op = 0; op < IR_NUM_OPS; op++)
        if (!strcmp(ir_op_name((ir_op)op), name))
            return op;
    return -1;
}

static ir_value apply(ir_op op, fusor_dtype src, fusor_dtype dst, ir_value a, ir_value b) {
    ir_value none = {0};
    return sc_apply(op, dst, src, a, b, none);
}

static void describe(char *buf, size_t n, ir_value v, fusor_dtype t) {
    if (is_float(t))
        snprintf(buf, n, "%.17g (%a)", v.f, v.f);
    else
        snprintf(buf, n, "%" PRId64 " (0x%" PRIx64 ")", v.i, v.u);
}

/* Runs one manifest row; returns the number of elements compared. */
static int run_row(ir_op op, fusor_dtype src, fusor_dtype dst, int row, const char *skips) {
    int arity = ir_op_arity(op);
    fusor_array *in = load(src, arity == 1 ? 0 : 1), *res = load(dst, arity == 1 ? 2 : 3);
    if (!in || !res)
        return 0;
    int64_t n = columns(in);
    CHECK(columns(res) == n && row < fusor_array_shape(res)[0]);
    char *skip = calloc((size_t)n, 1);
    for (const char *p = skips; *p && *p != '-';) {
        long j = strtol(p, (char **)&p, 10);
        if (j >= 0 && j < n)
            skip[j] = 1;
        if (*p == ',')
            p++;
    }
    int compared = 0;
    for (int64_t j = 0; j < n; j++) {
        if (skip[j])
            continue;
        ir_value a = element(in, 0, j), b = arity == 2 ? element(in, 1, j) : (ir_value){0};
        ir_value got = apply(op, src, dst, a, b), want = element(res, row, j);
        int ok = is_float(dst) ? same_float(op, dst, got.f, want.f) : got.u == want.u;
        char sa[64], sb[64], sg[64], sw[64];
        describe(sa, sizeof sa, a, src);
        describe(sb, sizeof sb, b, src);
        describe(sg, sizeof sg, got, dst);
        describe(sw, sizeof sw, want, dst);
        CHECK_MSG(ok, "%s %s->%s col %" PRId64 ": a=%s%s%s: got %s, NumPy %s", ir_op_name(op),
                  fusor_dtype_name(src), fusor_dtype_name(dst), j, sa, arity == 2 ? " b=" : "",
                  arity == 2 ? sb : "", sg, sw);
        if (dst == FUSOR_F32)
            CHECK_MSG(isnan(got.f) || (double)(float)got.f == got.f,
                      "%s f32 result %.17g is not a float", ir_op_name(op), got.f);
        if (dst == FUSOR_F16)
            CHECK_MSG(isnan(got.f) || fusor_f16_to_f64(fusor_f16_from_f64(got.f)) == got.f,
                      "%s f16 result %.17g is not a half", ir_op_name(op), got.f);
        compared++;
    }
    free(skip);
    return compared;
}

int main(void) {
    CHECK_OK(fusor_context_create(NULL, &ctx));
    FILE *f = fopen(FIXTURES "/manifest.txt", "r");
    REQUIRE(f != NULL);
    char line[4096];
    int rows = 0, elements = 0, casts = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char opname[32], src_name[16], dst_name[16], skips[2048];
        int row;
        if (sscanf(line, "%31s %15s %15s %d %2047s", opname, src_name, dst_name, &row, skips) !=
            5) {
            CHECK_MSG(0, "bad manifest line: %s", line);
            continue;
        }
        int op = op_from_name(opname);
        fusor_dtype src, dst;
        CHECK_MSG(op >= 0, "unknown op %s", opname);
        CHECK_OK(fusor_dtype_from_name(src_name, &src));
        CHECK_OK(fusor_dtype_from_name(dst_name, &dst));
        if (op < 0)
            continue;
        elements += run_row((ir_op)op, src, dst, row, skips);
        casts += op == IR_CAST;
        rows++;
    }
    fclose(f);
    printf("%d rows, %d elements compared with NumPy\n", rows, elements);
    /* The fixtures must be all there: every cast pair and well over 400 op/dtype rows. */
    CHECK(casts == FUSOR_NUM_DTYPES * FUSOR_NUM_DTYPES);
    CHECK(rows > 400 && elements > 15000);
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++)
        for (int k = 0; k < 4; k++)
            fusor_array_destroy(fixture[d][k]);
    fusor_context_destroy(ctx);
    return check_done();
}
