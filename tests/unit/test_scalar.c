/*
 * test_scalar.c — scalar.c against known values: the rules of ir.h that NumPy cannot
 * check (saturating float->int casts, NaN->0, negative integer powers, integer reciprocal
 * of 0), the exact wrapping and division corner cases, reduction identities, memory
 * round trips, formatting and sc_fits.  Expected values come from ir.h's text and from
 * exact integer arithmetic done by hand (Python), not from scalar.c.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ir.h"
#include "scalar.h"

static const ir_value NONE = {0};

static ir_value I(int64_t v) { return (ir_value){.i = v}; }
static ir_value U(uint64_t v) { return (ir_value){.u = v}; }
static ir_value F(double v) { return (ir_value){.f = v}; }

static ir_value op1(ir_op op, fusor_dtype t, ir_value a) {
    return sc_apply(op, t, t, a, NONE, NONE);
}
static ir_value op2(ir_op op, fusor_dtype t, ir_value a, ir_value b) {
    return sc_apply(op, t, t, a, b, NONE);
}
static int same_bits(double x, double y) { return memcmp(&x, &y, sizeof x) == 0; }

static void test_float_to_int_casts(void) {
    /* Truncation toward zero, saturation at the limits, NaN -> 0 (ir.h; NumPy is UB). */
    CHECK(sc_cast(F(1e300), FUSOR_F64, FUSOR_I32).i == INT32_MAX);
    CHECK(sc_cast(F(-1e300), FUSOR_F64, FUSOR_I32).i == INT32_MIN);
    CHECK(sc_cast(F(NAN), FUSOR_F64, FUSOR_I64).i == 0);
    CHECK(sc_cast(F(NAN), FUSOR_F32, FUSOR_U16).u == 0);
    CHECK(sc_cast(F(-0.9), FUSOR_F64, FUSOR_I8).i == 0);
    CHECK(sc_cast(F(-0.9), FUSOR_F64, FUSOR_U8).u == 0);
    CHECK(sc_cast(F(-1.0), FUSOR_F64, FUSOR_U64).u == 0);
    CHECK(sc_cast(F(-2.7), FUSOR_F64, FUSOR_I16).i == -2);
    CHECK(sc_cast(F(0x1p63), FUSOR_F64, FUSOR_I64).i == INT64_MAX);
    CHECK(sc_cast(F(-0x1p63), FUSOR_F64, FUSOR_I64).i == INT64_MIN);
    CHECK(sc_cast(F(0x1p63), FUSOR_F64, FUSOR_U64).u == UINT64_C(1) << 63);
    CHECK(sc_cast(F(0x1p64), FUSOR_F64, FUSOR_U64).u == UINT64_MAX);
    CHECK(sc_cast(F(255.9), FUSOR_F64, FUSOR_U8).u == 255);
    CHECK(sc_cast(F(256.0), FUSOR_F64, FUSOR_U8).u == 255);
    CHECK(sc_cast(F(INFINITY), FUSOR_F32, FUSOR_U16).u == 65535);
    CHECK(sc_cast(F(-INFINITY), FUSOR_F32, FUSOR_I8).i == -128);
    CHECK(sc_cast(F(-128.99), FUSOR_F64, FUSOR_I8).i == -128);
    CHECK(sc_cast(F(-129.0), FUSOR_F64, FUSOR_I8).i == -128);
    CHECK(sc_cast(F(2147483647.9), FUSOR_F64, FUSOR_I32).i == INT32_MAX);
    /* -> bool: a != 0, NaN is true, -0 is false. */
    CHECK(sc_cast(F(NAN), FUSOR_F64, FUSOR_BOOL).i == 1);
    CHECK(sc_cast(F(-0.0), FUSOR_F64, FUSOR_BOOL).i == 0);
    CHECK(sc_cast(F(1e-45), FUSOR_F32, FUSOR_BOOL).i == 1);
}

static void test_other_casts(void) {
    CHECK(sc_cast(I(300), FUSOR_I64, FUSOR_I8).i == 44);
    CHECK(sc_cast(I(-1), FUSOR_I64, FUSOR_U16).u == 65535);
    CHECK(sc_cast(U(UINT64_MAX), FUSOR_U64, FUSOR_I64).i == -1);
    CHECK(sc_cast(I(-1), FUSOR_I32, FUSOR_U32).u == 0xffffffffu);
    CHECK(sc_cast(I(-128), FUSOR_I8, FUSOR_U64).u == UINT64_MAX - 127);
    CHECK(sc_cast(I(256), FUSOR_I32, FUSOR_BOOL).i == 1); /* != 0, not the low bit */
    CHECK(sc_cast(I(1), FUSOR_BOOL, FUSOR_F32).f == 1.0);
    CHECK(sc_cast(I(1), FUSOR_BOOL, FUSOR_I16).i == 1);
    /* Round to nearest (even), directly to the target precision. */
    CHECK(sc_cast(I((INT64_C(1) << 53) + 1), FUSOR_I64, FUSOR_F64).f == 0x1p53);
    CHECK(sc_cast(I((INT64_C(1) << 24) + 1), FUSOR_I64, FUSOR_F32).f == 0x1p24);
    CHECK(sc_cast(I((INT64_C(1) << 24) + 3), FUSOR_I64, FUSOR_F32).f == 0x1p24 + 4);
    CHECK(sc_cast(U(UINT64_MAX), FUSOR_U64, FUSOR_F32).f == 0x1p64);
    /* 2^53 + 2^29 + 1 rounds up to 2^53 + 2^30 in f32 directly, but to 2^53 through f64. */
    CHECK(sc_cast(I((INT64_C(1) << 53) + (INT64_C(1) << 29) + 1), FUSOR_I64, FUSOR_F32).f ==
          0x1p53 + 0x1p30);
    CHECK(sc_cast(F(0.1), FUSOR_F64, FUSOR_F32).f == (double)0.1f);
    CHECK(isinf(sc_cast(F(1e39), FUSOR_F64, FUSOR_F32).f));
    CHECK(sc_cast(F(1e-46), FUSOR_F64, FUSOR_F32).f == 0.0);
}

static void test_integer_arithmetic(void) {
    /* Wrapping. */
    CHECK(op2(IR_ADD, FUSOR_I8, I(127), I(1)).i == -128);
    CHECK(op2(IR_SUB, FUSOR_U8, U(0), U(1)).u == 255);
    CHECK(op2(IR_MUL, FUSOR_I64, I(INT64_MAX), I(2)).i == -2);
    CHECK(op1(IR_NEG, FUSOR_I32, I(INT32_MIN)).i == INT32_MIN);
    CHECK(op1(IR_NEG, FUSOR_U16, U(1)).u == 65535);
    CHECK(op1(IR_ABS, FUSOR_I64, I(INT64_MIN)).i == INT64_MIN);
    CHECK(op1(IR_ABS, FUSOR_I16, I(-5)).i == 5);
    CHECK(op1(IR_SQUARE, FUSOR_I8, I(16)).i == 0);
    CHECK(op1(IR_NOT, FUSOR_I8, I(0)).i == -1);
    CHECK(op1(IR_NOT, FUSOR_U8, U(0)).u == 255);
    CHECK(op1(IR_NOT, FUSOR_BOOL, I(1)).i == 0);
    CHECK(op1(IR_SIGN, FUSOR_I32, I(-9)).i == -1 && op1(IR_SIGN, FUSOR_U32, U(9)).u == 1);
    /* Division: floor, remainder with the divisor's sign, C fmod; by zero 0. */
    CHECK(op2(IR_FLOORDIV, FUSOR_I32, I(-7), I(2)).i == -4);
    CHECK(op2(IR_MOD, FUSOR_I32, I(-7), I(2)).i == 1);
    CHECK(op2(IR_FMOD, FUSOR_I32, I(-7), I(2)).i == -1);
    CHECK(op2(IR_FLOORDIV, FUSOR_I32, I(7), I(-2)).i == -4);
    CHECK(op2(IR_MOD, FUSOR_I32, I(7), I(-2)).i == -1);
    CHECK(op2(IR_FLOORDIV, FUSOR_I64, I(5), I(0)).i == 0);
    CHECK(op2(IR_MOD, FUSOR_U64, U(5), U(0)).u == 0);
    CHECK(op2(IR_FMOD, FUSOR_I8, I(5), I(0)).i == 0);
    CHECK(op2(IR_FLOORDIV, FUSOR_I64, I(INT64_MIN), I(-1)).i == INT64_MIN);
    CHECK(op2(IR_FLOORDIV, FUSOR_I8, I(-128), I(-1)).i == -128);
    CHECK(op2(IR_MOD, FUSOR_I64, I(INT64_MIN), I(-1)).i == 0);
    CHECK(op2(IR_FMOD, FUSOR_I64, I(INT64_MIN), I(-1)).i == 0);
    CHECK(op2(IR_FLOORDIV, FUSOR_U8, U(255), U(2)).u == 127);
    /* Reciprocal: 1/a truncated, 0 for 0. */
    CHECK(op1(IR_RECIPROCAL, FUSOR_I32, I(0)).i == 0);
    CHECK(op1(IR_RECIPROCAL, FUSOR_I32, I(-1)).i == -1);
    CHECK(op1(IR_RECIPROCAL, FUSOR_I32, I(2)).i == 0);
    CHECK(op1(IR_RECIPROCAL, FUSOR_U8, U(1)).u == 1);
}

static void test_integer_power(void) {
    /* Wrapped powers (computed exactly with Python's integers). */
    CHECK(op2(IR_POW, FUSOR_I32, I(3), I(40)).i == 689956897);
    CHECK(op2(IR_POW, FUSOR_I64, I(3), I(41)).i == INT64_C(-420491770248316829));
    CHECK(op2(IR_POW, FUSOR_U8, U(3), U(6)).u == 217);
    CHECK(op2(IR_POW, FUSOR_U64, U(7), U(77)).u == UINT64_C(18282030324529525479));
    CHECK(op2(IR_POW, FUSOR_I16, I(-3), I(33)).i == 17533);
    CHECK(op2(IR_POW, FUSOR_I32, I(0), I(0)).i == 1);
    CHECK(op2(IR_POW, FUSOR_U64, U(2), U(UINT64_MAX)).u == 0);
    /* Negative exponents: the truncated true value (NumPy raises). */
    CHECK(op2(IR_POW, FUSOR_I32, I(2), I(-1)).i == 0);
    CHECK(op2(IR_POW, FUSOR_I32, I(1), I(-5)).i == 1);
    CHECK(op2(IR_POW, FUSOR_I32, I(-1), I(-3)).i == -1);
    CHECK(op2(IR_POW, FUSOR_I32, I(-1), I(-4)).i == 1);
    CHECK(op2(IR_POW, FUSOR_I8, I(0), I(-1)).i == 0);
    CHECK(op2(IR_POW, FUSOR_I64, I(-1), I(INT64_MIN)).i == 1);
}

static void test_shifts(void) {
    CHECK(op2(IR_SHL, FUSOR_I8, I(1), I(7)).i == -128);
    CHECK(op2(IR_SHL, FUSOR_U8, U(1), U(7)).u == 128);
    CHECK(op2(IR_SHL, FUSOR_I32, I(1), I(32)).i == 0);
    CHECK(op2(IR_SHL, FUSOR_I32, I(1), I(-1)).i == 0);
    CHECK(op2(IR_SHL, FUSOR_I64, I(-1), I(63)).i == INT64_MIN);
    CHECK(op2(IR_SHR, FUSOR_I8, I(-128), I(7)).i == -1);
    CHECK(op2(IR_SHR, FUSOR_I8, I(-128), I(100)).i == -1);
    CHECK(op2(IR_SHR, FUSOR_I8, I(-128), I(-1)).i == -1);
    CHECK(op2(IR_SHR, FUSOR_I8, I(64), I(8)).i == 0);
    CHECK(op2(IR_SHR, FUSOR_I16, I(-20), I(2)).i == -5);
    CHECK(op2(IR_SHR, FUSOR_U8, U(128), U(7)).u == 1);
    CHECK(op2(IR_SHR, FUSOR_U64, U(UINT64_MAX), U(64)).u == 0);
    CHECK(op2(IR_SHR, FUSOR_I64, I(INT64_MIN), I(63)).i == -1);
}

static void test_floats(void) {
    /* f32 arithmetic is float arithmetic: 1 + 2^-30 is 1 in float. */
    CHECK(op2(IR_ADD, FUSOR_F32, F(1.0), F(0x1p-30)).f == 1.0);
    CHECK(op2(IR_ADD, FUSOR_F64, F(1.0), F(0x1p-30)).f == 1.0 + 0x1p-30);
    CHECK(op2(IR_DIV, FUSOR_F32, F(1.0), F(3.0)).f == (double)(1.0f / 3.0f));
    CHECK(op2(IR_MUL, FUSOR_F32, F(0x1p100), F(0x1p100)).f == INFINITY);
    CHECK(op1(IR_SIN, FUSOR_F32, F(1.0)).f == (double)sinf(1.0f));
    CHECK(op1(IR_EXP, FUSOR_F32, F(0.5)).f == (double)expf(0.5f));
    /* SIGN: +0 for both zeros (NumPy), NaN for NaN. */
    CHECK(same_bits(op1(IR_SIGN, FUSOR_F64, F(-0.0)).f, 0.0));
    CHECK(isnan(op1(IR_SIGN, FUSOR_F64, F(NAN)).f));
    CHECK(op1(IR_SIGN, FUSOR_F32, F(-3.0)).f == -1.0);
    CHECK(op1(IR_RINT, FUSOR_F64, F(2.5)).f == 2.0 && op1(IR_RINT, FUSOR_F64, F(3.5)).f == 4.0);
    CHECK(op1(IR_RINT, FUSOR_F32, F(-0.5)).f == 0.0 && signbit(op1(IR_RINT, FUSOR_F32, F(-0.5)).f));
    /* NaN-propagating and NaN-ignoring min/max; ties give b. */
    CHECK(isnan(op2(IR_MINIMUM, FUSOR_F64, F(1), F(NAN)).f));
    CHECK(isnan(op2(IR_MAXIMUM, FUSOR_F64, F(NAN), F(1)).f));
    CHECK(op2(IR_FMIN, FUSOR_F64, F(NAN), F(1)).f == 1 &&
          op2(IR_FMAX, FUSOR_F64, F(1), F(NAN)).f == 1);
    CHECK(same_bits(op2(IR_MAXIMUM, FUSOR_F64, F(0.0), F(-0.0)).f, -0.0));
    CHECK(same_bits(op2(IR_FMIN, FUSOR_F64, F(-0.0), F(0.0)).f, 0.0));
    /* npy_divmod: sign of the divisor, snapped quotient, b == 0. */
    CHECK(op2(IR_MOD, FUSOR_F64, F(-1.0), F(3.0)).f == 2.0);
    CHECK(same_bits(op2(IR_MOD, FUSOR_F64, F(3.0), F(-3.0)).f, -0.0));
    CHECK(op2(IR_FLOORDIV, FUSOR_F64, F(-1.0), F(INFINITY)).f == -1.0);
    CHECK(op2(IR_MOD, FUSOR_F64, F(-1.0), F(INFINITY)).f == INFINITY);
    CHECK(op2(IR_FLOORDIV, FUSOR_F64, F(1.0), F(0.0)).f == INFINITY);
    CHECK(isnan(op2(IR_MOD, FUSOR_F64, F(1.0), F(0.0)).f));
    CHECK(op2(IR_FMOD, FUSOR_F64, F(-7.0), F(2.0)).f == -1.0);
    CHECK(op2(IR_FLOORDIV, FUSOR_F32, F(7.0), F(-2.0)).f == -4.0);
    /* IEEE comparisons: only NE is true with NaN. */
    ir_op cmp[] = {IR_LT, IR_LE, IR_GT, IR_GE, IR_EQ, IR_NE};
    for (int i = 0; i < 6; i++)
        CHECK(sc_apply(cmp[i], FUSOR_BOOL, FUSOR_F64, F(NAN), F(NAN), NONE).i == (cmp[i] == IR_NE));
    CHECK(sc_apply(IR_EQ, FUSOR_BOOL, FUSOR_F32, F(0.0), F(-0.0), NONE).i == 1);
    CHECK(sc_apply(IR_LT, FUSOR_BOOL, FUSOR_U64, U(1), U(UINT64_MAX), NONE).i == 1);
    CHECK(sc_apply(IR_LT, FUSOR_BOOL, FUSOR_I64, I(1), I(-1), NONE).i == 0);
    CHECK(sc_apply(IR_ISNAN, FUSOR_BOOL, FUSOR_F32, F(NAN), NONE, NONE).i == 1);
    CHECK(sc_apply(IR_ISFINITE, FUSOR_BOOL, FUSOR_F64, F(INFINITY), NONE, NONE).i == 0);
    CHECK(sc_apply(IR_WHERE, FUSOR_F64, FUSOR_F64, I(1), F(2), F(3)).f == 2);
    CHECK(sc_apply(IR_WHERE, FUSOR_I8, FUSOR_I8, I(0), I(2), I(-3)).i == -3);
    /* Integers: rounding ops are the identity (NumPy has no integer rint loop), isnan and
     * friends are constants. */
    CHECK(op1(IR_RINT, FUSOR_I64, I(INT64_MAX)).i == INT64_MAX);
    CHECK(op1(IR_FLOOR, FUSOR_U64, U(UINT64_MAX)).u == UINT64_MAX);
    CHECK(sc_apply(IR_ISNAN, FUSOR_BOOL, FUSOR_I32, I(5), NONE, NONE).i == 0);
    CHECK(sc_apply(IR_ISINF, FUSOR_BOOL, FUSOR_U8, U(5), NONE, NONE).i == 0);
    CHECK(sc_apply(IR_ISFINITE, FUSOR_BOOL, FUSOR_I8, I(5), NONE, NONE).i == 1);
    /* Ops ir.h excludes give zero. */
    CHECK(op1(IR_SQRT, FUSOR_I32, I(4)).i == 0);
    CHECK(op1(IR_NOT, FUSOR_F64, F(4)).u == 0);
}

static void test_reductions(void) {
    for (int t = 0; t < FUSOR_NUM_DTYPES; t++) {
        int f = t == FUSOR_F32 || t == FUSOR_F64 || t == FUSOR_F16;
        CHECK(sc_reduce_identity(IR_SUM, t).u == 0);
        CHECK(f ? sc_reduce_identity(IR_PROD, t).f == 1.0 : sc_reduce_identity(IR_PROD, t).u == 1);
    }
    CHECK(sc_reduce_identity(IR_MIN, FUSOR_F32).f == INFINITY);
    CHECK(sc_reduce_identity(IR_MAX, FUSOR_F64).f == -INFINITY);
    CHECK(sc_reduce_identity(IR_MIN, FUSOR_I8).i == 127 &&
          sc_reduce_identity(IR_MAX, FUSOR_I8).i == -128);
    CHECK(sc_reduce_identity(IR_MIN, FUSOR_U16).u == 65535 &&
          sc_reduce_identity(IR_MAX, FUSOR_U16).u == 0);
    CHECK(sc_reduce_identity(IR_MIN, FUSOR_I64).i == INT64_MAX);
    CHECK(sc_reduce_identity(IR_MAX, FUSOR_I64).i == INT64_MIN);
    CHECK(sc_reduce_identity(IR_MIN, FUSOR_U64).u == UINT64_MAX);
    CHECK(sc_reduce_identity(IR_ANY, FUSOR_BOOL).i == 0 &&
          sc_reduce_identity(IR_ALL, FUSOR_BOOL).i == 1);
    CHECK(sc_reduce_combine(IR_SUM, FUSOR_I64, I(INT64_MAX), I(1)).i == INT64_MIN);
    CHECK(sc_reduce_combine(IR_PROD, FUSOR_U8, U(16), U(16)).u == 0);
    CHECK(isnan(sc_reduce_combine(IR_MAX, FUSOR_F64, F(NAN), F(1)).f));
    CHECK(isnan(sc_reduce_combine(IR_MIN, FUSOR_F64, F(1), F(NAN)).f));
    CHECK(sc_reduce_combine(IR_MIN, FUSOR_I32, I(-3), I(2)).i == -3);
    CHECK(sc_reduce_combine(IR_ANY, FUSOR_BOOL, I(0), I(1)).i == 1);
    CHECK(sc_reduce_combine(IR_ALL, FUSOR_BOOL, I(1), I(0)).i == 0);
    CHECK(sc_reduce_combine(IR_SUM, FUSOR_F32, F(1.0), F(0x1p-30)).f == 1.0);
}

static void test_memory(void) {
    unsigned char mem[10];
    memset(mem, 0xAB, sizeof mem);
    sc_store(mem + 1, FUSOR_BOOL, I(1));
    CHECK(mem[0] == 0xAB && mem[1] == 1 && mem[2] == 0xAB);
    mem[3] = 2; /* any non-zero byte loads as true, canonically 1 */
    CHECK(sc_load(mem + 3, FUSOR_BOOL).i == 1);
    sc_store(mem + 2, FUSOR_I16, I(-2));
    CHECK(mem[2] == 0xfe && mem[3] == 0xff && mem[4] == 0xAB);
    CHECK(sc_load(mem + 2, FUSOR_I16).i == -2 && sc_load(mem + 2, FUSOR_U16).u == 65534);
    sc_store(mem + 4, FUSOR_F32, F(1.5));
    float f;
    memcpy(&f, mem + 4, 4);
    CHECK(f == 1.5f && mem[8] == 0xAB && mem[3] == 0xff);
    CHECK(sc_load(mem + 4, FUSOR_F32).f == 1.5);
    uint64_t u = UINT64_C(0x8000000000000001);
    unsigned char m8[8];
    sc_store(m8, FUSOR_U64, U(u));
    CHECK(sc_load(m8, FUSOR_U64).u == u && sc_load(m8, FUSOR_I64).i == INT64_MIN + 1);
    int8_t b = -5;
    CHECK(sc_load(&b, FUSOR_I8).i == -5 && sc_load(&b, FUSOR_U8).u == 251);
    sc_store(m8, FUSOR_F64, F(-0.0));
    CHECK(same_bits(sc_load(m8, FUSOR_F64).f, -0.0));
}

static void check_format(ir_value v, fusor_dtype t, const char *want) {
    char buf[64];
    int n = sc_format(buf, sizeof buf, v, t);
    CHECK_MSG(!strcmp(buf, want) && n == (int)strlen(want), "got '%s', want '%s'", buf, want);
}

static void test_format(void) {
    check_format(F(0.1), FUSOR_F64, "0.10000000000000001");
    check_format(F((double)0.1f), FUSOR_F32, "0.100000001");
    check_format(F(-0.0), FUSOR_F64, "-0");
    check_format(F(-INFINITY), FUSOR_F64, "-inf");
    check_format(F(-NAN), FUSOR_F32, "nan");
    check_format(F(1e300), FUSOR_F64, "1.0000000000000001e+300");
    check_format(I(1), FUSOR_BOOL, "true");
    check_format(I(0), FUSOR_BOOL, "false");
    check_format(I(INT64_MIN), FUSOR_I64, "-9223372036854775808");
    check_format(U(UINT64_MAX), FUSOR_U64, "18446744073709551615");
    check_format(I(-7), FUSOR_I8, "-7");
    /* Round trip of random doubles and floats through the text. */
    uint64_t s = 88172645463325252u;
    for (int i = 0; i < 1000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double d;
        memcpy(&d, &s, 8);
        if (!isfinite(d))
            continue;
        char buf[64];
        sc_format(buf, sizeof buf, F(d), FUSOR_F64);
        CHECK_MSG(strtod(buf, NULL) == d, "%s", buf);
        float fl = (float)ldexp((double)(s >> 40) / (1 << 24), (int)(s % 200) - 100);
        sc_format(buf, sizeof buf, F(fl), FUSOR_F32);
        CHECK_MSG(strtof(buf, NULL) == fl, "%s", buf);
    }
    char small[4];
    CHECK(sc_format(small, sizeof small, I(123456), FUSOR_I32) == 6 && !strcmp(small, "123"));
}

static void test_fits(void) {
    CHECK(!sc_fits(I(300), FUSOR_I64, FUSOR_U8) && sc_fits(I(255), FUSOR_I64, FUSOR_U8));
    CHECK(!sc_fits(I(-1), FUSOR_I64, FUSOR_U64) && sc_fits(I(-128), FUSOR_I16, FUSOR_I8));
    CHECK(!sc_fits(I(-129), FUSOR_I16, FUSOR_I8));
    CHECK(!sc_fits(U(UINT64_MAX), FUSOR_U64, FUSOR_I64) &&
          sc_fits(U(INT64_MAX), FUSOR_U64, FUSOR_I64));
    CHECK(!sc_fits(F(2.5), FUSOR_F64, FUSOR_I32) && sc_fits(F(2.0), FUSOR_F64, FUSOR_I32));
    CHECK(!sc_fits(F(0x1p63), FUSOR_F64, FUSOR_I64) && sc_fits(F(-0x1p63), FUSOR_F64, FUSOR_I64));
    CHECK(sc_fits(F(0x1p63), FUSOR_F64, FUSOR_U64) && !sc_fits(F(0x1p64), FUSOR_F64, FUSOR_U64));
    CHECK(!sc_fits(F(-1.0), FUSOR_F64, FUSOR_U8) && sc_fits(F(-0.0), FUSOR_F64, FUSOR_U8));
    CHECK(!sc_fits(F(NAN), FUSOR_F64, FUSOR_I32) && sc_fits(F(NAN), FUSOR_F64, FUSOR_F32));
    CHECK(!sc_fits(F(0.1), FUSOR_F64, FUSOR_F32) && sc_fits(F(0.5), FUSOR_F64, FUSOR_F32));
    CHECK(sc_fits(F(INFINITY), FUSOR_F64, FUSOR_F32) && !sc_fits(F(1e39), FUSOR_F64, FUSOR_F32));
    CHECK(!sc_fits(I((INT64_C(1) << 53) + 1), FUSOR_I64, FUSOR_F64));
    CHECK(sc_fits(I(INT64_C(1) << 53), FUSOR_I64, FUSOR_F64));
    CHECK(!sc_fits(I(INT64_MAX), FUSOR_I64, FUSOR_F64) &&
          sc_fits(I(INT64_MIN), FUSOR_I64, FUSOR_F64));
    CHECK(!sc_fits(U(UINT64_MAX), FUSOR_U64, FUSOR_F64) &&
          sc_fits(U(UINT64_C(1) << 63), FUSOR_U64, FUSOR_F64));
    CHECK(!sc_fits(I((1 << 24) + 1), FUSOR_I32, FUSOR_F32) &&
          sc_fits(I(1 << 24), FUSOR_I32, FUSOR_F32));
    CHECK(sc_fits(I(1), FUSOR_BOOL, FUSOR_I8) && !sc_fits(I(2), FUSOR_I32, FUSOR_BOOL));
    CHECK(sc_fits(F(1.0), FUSOR_F64, FUSOR_BOOL) && !sc_fits(F(0.5), FUSOR_F64, FUSOR_BOOL));
}

int main(void) {
    test_float_to_int_casts();
    test_other_casts();
    test_integer_arithmetic();
    test_integer_power();
    test_shifts();
    test_floats();
    test_reductions();
    test_memory();
    test_format();
    test_fits();
    return check_done();
}
