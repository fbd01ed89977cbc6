/*
 * scalar.c — one IR operation on one element: the executable definition of ir.h's rules.
 *
 * Integers are computed on their 64-bit two's-complement pattern (ir_value.u, which is the
 * canonical form's bits for every integer dtype) in unsigned arithmetic, so wrapping never
 * meets C's undefined behaviour, and are then narrowed back to canonical form.  Floats are
 * computed in their own precision: f32 with float arithmetic and the float libm functions
 * (sinf, ...), so every f32 result is a float widened exactly to double.  f16 is computed
 * as NumPy computes float16: the operands widened to float, the f32 operation, the result
 * rounded to half (for + - * / and sqrt this is the correctly rounded half operation,
 * since float holds more than twice half's precision).
 *
 * An op applied to a dtype that ir.h excludes (sqrt of an integer, not of a float, ...)
 * gives the zero of the result dtype: the checker never builds such nodes.
 */
#include "scalar.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ dtype facts */

static int is_float(fusor_dtype t) { return t == FUSOR_F32 || t == FUSOR_F64 || t == FUSOR_F16; }
static int is_signed(fusor_dtype t) { return t >= FUSOR_I8 && t <= FUSOR_I64; }
static int is_unsigned(fusor_dtype t) { return t >= FUSOR_U8 && t <= FUSOR_U64; }

static unsigned bit_width(fusor_dtype t) {
    switch (t) {
    case FUSOR_BOOL: return 1;
    case FUSOR_I8:
    case FUSOR_U8: return 8;
    case FUSOR_I16:
    case FUSOR_U16:
    case FUSOR_F16: return 16;
    case FUSOR_I32:
    case FUSOR_U32:
    case FUSOR_F32: return 32;
    default: return 64;
    }
}

static ir_value vbool(int b) { return (ir_value){.i = b ? 1 : 0}; }
static ir_value vf(double f) { return (ir_value){.f = f}; }
static ir_value vzero(void) { return (ir_value){.u = 0}; }

/* Narrows a 64-bit pattern to canonical form: the low bits, sign- or zero-extended.  The
 * union reads the pattern as int64_t, which C defines as two's complement. */
static ir_value wrap(uint64_t bits, fusor_dtype t) {
    if (t == FUSOR_BOOL)
        return vbool(bits != 0);
    unsigned w = bit_width(t);
    if (w < 64) {
        uint64_t mask = (UINT64_C(1) << w) - 1, sign = UINT64_C(1) << (w - 1);
        bits &= mask;
        if (is_signed(t))
            bits = (bits ^ sign) - sign;
    }
    return (ir_value){.u = bits};
}

/* The extremes of an integer dtype, canonical. */
static ir_value int_max(fusor_dtype t) {
    if (t == FUSOR_BOOL)
        return vbool(1);
    return (ir_value){.u = UINT64_MAX >> (64 - bit_width(t) + (is_signed(t) ? 1 : 0))};
}
static ir_value int_min(fusor_dtype t) {
    if (!is_signed(t))
        return vzero();
    return wrap(UINT64_C(1) << (bit_width(t) - 1), t);
}

/* ------------------------------------------------------------------ half */

double sc_round_half(double x) { return fusor_f16_to_f64(fusor_f16_from_f64(x)); }

/* ------------------------------------------------------------------ casts */

static ir_value float_to_int(double x, fusor_dtype to) {
    if (to == FUSOR_BOOL)
        return vbool(x != 0); /* NaN != 0 holds */
    if (isnan(x))
        return vzero();
    double t = trunc(x);
    /* MAX + 1 and MIN are powers of two, so exact as doubles. */
    double lim = ldexp(1.0, (int)bit_width(to) - (is_signed(to) ? 1 : 0));
    if (t >= lim)
        return int_max(to);
    if (is_signed(to))
        return t < -lim ? int_min(to) : (ir_value){.i = (int64_t)t};
    return t < 0 ? vzero() : (ir_value){.u = (uint64_t)t};
}

ir_value sc_cast(ir_value v, fusor_dtype from, fusor_dtype to) {
    if (is_float(from)) {
        if (to == FUSOR_F64 || (to == FUSOR_F32 && from == FUSOR_F16))
            return v;
        if (to == FUSOR_F32)
            return vf((float)v.f);
        if (to == FUSOR_F16)
            return vf(sc_round_half(v.f));
        return float_to_int(v.f, to);
    }
    if (to == FUSOR_F64)
        return vf(is_unsigned(from) ? (double)v.u : (double)v.i);
    if (to == FUSOR_F32)
        return vf(is_unsigned(from) ? (float)v.u : (float)v.i);
    if (to == FUSOR_F16) /* an integer that double rounds is >= 2^53, inf in half anyway */
        return vf(sc_round_half(is_unsigned(from) ? (double)v.u : (double)v.i));
    return wrap(v.u, to);
}

/* ------------------------------------------------------------------ floats */

/* The libm functions, X(OP, name of the double function); the float one adds "f". */
// clang-format off
#define LIBM1(X)                                                                           \
    X(SQRT, sqrt) X(CBRT, cbrt) X(EXP, exp) X(EXP2, exp2) X(EXPM1, expm1) X(LOG, log)       \
    X(LOG2, log2) X(LOG10, log10) X(LOG1P, log1p) X(SIN, sin) X(COS, cos) X(TAN, tan)       \
    X(ASIN, asin) X(ACOS, acos) X(ATAN, atan) X(SINH, sinh) X(COSH, cosh) X(TANH, tanh)     \
    X(ASINH, asinh) X(ACOSH, acosh) X(ATANH, atanh) X(FLOOR, floor) X(CEIL, ceil)          \
    X(TRUNC, trunc) X(RINT, rint) X(ABS, fabs)
#define LIBM2(X) X(ATAN2, atan2) X(HYPOT, hypot) X(POW, pow) X(FMOD, fmod) X(COPYSIGN, copysign)

static double libm_f64(ir_op op, double a, double b, int *ok) {
    switch (op) {
#define CASE1(OP, fn) case IR_##OP: return fn(a);
#define CASE2(OP, fn) case IR_##OP: return fn(a, b);
    LIBM1(CASE1) LIBM2(CASE2)
#undef CASE1
#undef CASE2
    default: *ok = 0; return 0;
    }
}

static float libm_f32(ir_op op, float a, float b, int *ok) {
    switch (op) {
#define CASE1(OP, fn) case IR_##OP: return fn##f(a);
#define CASE2(OP, fn) case IR_##OP: return fn##f(a, b);
    LIBM1(CASE1) LIBM2(CASE2)
#undef CASE1
#undef CASE2
    default: *ok = 0; return 0;
    }
}
// clang-format on

/*
 * NumPy's npy_divmod (after CPython's float divmod), in the operands' precision: the
 * quotient is floor(a / b) snapped to an integer, the remainder has the sign of b.  b == 0
 * is handled by the callers as NumPy's npy_floor_divide and npy_remainder do.
 */
#define DEFINE_DIVMOD(NAME, T, M)                                                                  \
    static T NAME(T a, T b, T *modulus) {                                                          \
        T mod = M(fmod)(a, b);                                                                     \
        T div = (a - mod) / b;                                                                     \
        if (mod) {                                                                                 \
            if (isless(b, (T)0) != isless(mod, (T)0)) {                                            \
                mod += b;                                                                          \
                div -= (T)1;                                                                       \
            }                                                                                      \
        } else {                                                                                   \
            mod = M(copysign)((T)0, b);                                                            \
        }                                                                                          \
        T floordiv;                                                                                \
        if (div) {                                                                                 \
            floordiv = M(floor)(div);                                                              \
            if (isgreater(div - floordiv, (T)0.5))                                                 \
                floordiv += (T)1;                                                                  \
        } else {                                                                                   \
            floordiv = M(copysign)((T)0, a / b);                                                   \
        }                                                                                          \
        *modulus = mod;                                                                            \
        return floordiv;                                                                           \
    }
#define M_F32(fn) fn##f
#define M_F64(fn) fn
DEFINE_DIVMOD(divmod_f32, float, M_F32)
DEFINE_DIVMOD(divmod_f64, double, M_F64)

/* The rounding ops of ir.h in double; *ok is cleared for ops that are not among them. */
static double arith_f64(ir_op op, double a, double b, int *ok) {
    double mod;
    switch (op) {
    case IR_NEG: return -a;
    case IR_SQUARE: return a * a;
    case IR_RECIPROCAL: return 1 / a;
    case IR_ADD: return a + b;
    case IR_SUB: return a - b;
    case IR_MUL: return a * b;
    case IR_DIV: return a / b;
    case IR_FLOORDIV: return b == 0 ? a / b : divmod_f64(a, b, &mod);
    case IR_MOD: return b == 0 ? fmod(a, b) : (divmod_f64(a, b, &mod), mod);
    default: return libm_f64(op, a, b, ok);
    }
}

/* The same in float: f32 results are rounded once, to float. */
static float arith_f32(ir_op op, float a, float b, int *ok) {
    float mod;
    switch (op) {
    case IR_NEG: return -a;
    case IR_SQUARE: return a * a;
    case IR_RECIPROCAL: return 1 / a;
    case IR_ADD: return a + b;
    case IR_SUB: return a - b;
    case IR_MUL: return a * b;
    case IR_DIV: return a / b;
    case IR_FLOORDIV: return b == 0 ? a / b : divmod_f32(a, b, &mod);
    case IR_MOD: return b == 0 ? fmodf(a, b) : (divmod_f32(a, b, &mod), mod);
    default: return libm_f32(op, a, b, ok);
    }
}

/* Ops whose result is one of the operands or a small constant: exact in double for both
 * precisions.  Ties of MINIMUM..FMAX (+0 against -0) give b, as NumPy's maximum does. */
static ir_value float_exact(ir_op op, double a, double b, int *ok) {
    switch (op) {
    case IR_SIGN: return vf(a > 0 ? 1.0 : a < 0 ? -1.0 : a == 0 ? 0.0 : a);
    case IR_ISNAN: return vbool(isnan(a));
    case IR_ISINF: return vbool(isinf(a));
    case IR_ISFINITE: return vbool(isfinite(a));
    case IR_LT: return vbool(a < b);
    case IR_LE: return vbool(a <= b);
    case IR_GT: return vbool(a > b);
    case IR_GE: return vbool(a >= b);
    case IR_EQ: return vbool(a == b);
    case IR_NE: return vbool(a != b);
    case IR_MINIMUM: return vf(isnan(a) || a < b ? a : b);
    case IR_MAXIMUM: return vf(isnan(a) || a > b ? a : b);
    case IR_FMIN: return vf(isnan(b) || a < b ? a : b);
    case IR_FMAX: return vf(isnan(b) || a > b ? a : b);
    default: *ok = 0; return vzero();
    }
}

static ir_value float_apply(ir_op op, fusor_dtype t, double a, double b) {
    int ok = 1;
    int swap = t == FUSOR_F16 && (op == IR_MINIMUM || op == IR_MAXIMUM || op == IR_FMIN ||
                                  op == IR_FMAX); /* f16 ties give a (ir.h) */
    ir_value r = swap ? float_exact(op, b, a, &ok) : float_exact(op, a, b, &ok);
    if (ok)
        return r;
    ok = 1;
    double x =
        t == FUSOR_F64 ? arith_f64(op, a, b, &ok) : (double)arith_f32(op, (float)a, (float)b, &ok);
    if (t == FUSOR_F16)
        x = sc_round_half(x);
    return ok ? vf(x) : vzero();
}

/* ------------------------------------------------------------------ integers */

static int int_less(fusor_dtype t, ir_value a, ir_value b) {
    return is_unsigned(t) ? a.u < b.u : a.i < b.i;
}

/* FLOORDIV, MOD and FMOD.  b == 0 gives 0; b == -1 is done by negation, so MIN // -1
 * wraps to MIN without the trap of C's INT64_MIN / -1. */
static ir_value int_div(ir_op op, fusor_dtype t, ir_value a, ir_value b) {
    if (b.u == 0)
        return vzero();
    if (is_unsigned(t) || t == FUSOR_BOOL)
        return op == IR_FLOORDIV ? (ir_value){.u = a.u / b.u} : (ir_value){.u = a.u % b.u};
    if (b.i == -1)
        return op == IR_FLOORDIV ? wrap(0 - a.u, t) : vzero();
    int64_t q = a.i / b.i, r = a.i % b.i;
    int adjust = r != 0 && (r < 0) != (b.i < 0);
    if (op == IR_FLOORDIV)
        return (ir_value){.i = q - adjust};
    if (op == IR_MOD)
        return (ir_value){.i = adjust ? r + b.i : r};
    return (ir_value){.i = r};
}

/* Power by squaring, wrapping.  A negative exponent gives the truncated true value. */
static ir_value int_pow(fusor_dtype t, ir_value a, ir_value b) {
    if (is_signed(t) && b.i < 0) {
        if (a.i == 1)
            return a;
        if (a.i == -1)
            return (b.u & 1) ? a : (ir_value){.i = 1};
        return vzero();
    }
    uint64_t base = a.u, e = b.u, r = 1;
    while (e) {
        if (e & 1)
            r *= base;
        base *= base;
        e >>= 1;
    }
    return wrap(r, t);
}

/* b is read as unsigned: a negative b is a huge count. */
static ir_value int_shift(ir_op op, fusor_dtype t, ir_value a, ir_value b) {
    uint64_t w = bit_width(t);
    int neg = is_signed(t) && a.i < 0;
    if (op == IR_SHL)
        return b.u >= w ? vzero() : wrap(a.u << b.u, t);
    if (b.u >= w)
        return neg ? (ir_value){.i = -1} : vzero();
    return (ir_value){.u = neg ? ~(~a.u >> b.u) : a.u >> b.u};
}

static ir_value int_reciprocal(fusor_dtype t, ir_value a) {
    if (a.u == 1)
        return a;
    if (is_signed(t) && a.i == -1)
        return a;
    return vzero();
}

static ir_value int_apply(ir_op op, fusor_dtype t, ir_value a, ir_value b) {
    uint64_t x = a.u, y = b.u;
    switch (op) {
    case IR_NEG: return wrap(0 - x, t);
    case IR_NOT: return t == FUSOR_BOOL ? vbool(!x) : wrap(~x, t);
    case IR_ABS: return is_signed(t) && a.i < 0 ? wrap(0 - x, t) : a;
    case IR_SIGN: return is_signed(t) ? (ir_value){.i = (a.i > 0) - (a.i < 0)} : vbool(x != 0);
    case IR_SQUARE: return wrap(x * x, t);
    case IR_RECIPROCAL: return int_reciprocal(t, a);
    case IR_FLOOR:
    case IR_CEIL:
    case IR_TRUNC:
    case IR_RINT: return a;
    case IR_ADD: return wrap(x + y, t);
    case IR_SUB: return wrap(x - y, t);
    case IR_MUL: return wrap(x * y, t);
    case IR_FLOORDIV:
    case IR_MOD:
    case IR_FMOD: return int_div(op, t, a, b);
    case IR_POW: return int_pow(t, a, b);
    case IR_AND: return (ir_value){.u = x & y};
    case IR_OR: return (ir_value){.u = x | y};
    case IR_XOR: return (ir_value){.u = x ^ y};
    case IR_SHL:
    case IR_SHR: return int_shift(op, t, a, b);
    case IR_MINIMUM:
    case IR_FMIN: return int_less(t, b, a) ? b : a;
    case IR_MAXIMUM:
    case IR_FMAX: return int_less(t, a, b) ? b : a;
    default: return vzero();
    }
}

static ir_value int_compare(ir_op op, fusor_dtype t, ir_value a, ir_value b) {
    int lt = int_less(t, a, b), gt = int_less(t, b, a);
    switch (op) {
    case IR_LT: return vbool(lt);
    case IR_LE: return vbool(!gt);
    case IR_GT: return vbool(gt);
    case IR_GE: return vbool(!lt);
    case IR_EQ: return vbool(a.u == b.u);
    default: return vbool(a.u != b.u);
    }
}

/* ------------------------------------------------------------------ apply */

ir_value sc_apply(ir_op op, fusor_dtype dtype, fusor_dtype adtype, ir_value a, ir_value b,
                  ir_value c) {
    switch (op) {
    case IR_CAST: return sc_cast(a, adtype, dtype);
    case IR_WHERE: return a.i ? b : c;
    case IR_ISNAN:
    case IR_ISINF:
    case IR_ISFINITE:
        if (!is_float(adtype))
            return vbool(op == IR_ISFINITE);
        return float_apply(op, adtype, a.f, 0);
    default: break;
    }
    if (ir_op_is_comparison(op))
        return is_float(adtype) ? float_apply(op, adtype, a.f, b.f) : int_compare(op, adtype, a, b);
    if (is_float(dtype))
        return float_apply(op, dtype, a.f, b.f);
    return int_apply(op, dtype, a, b);
}

/* ------------------------------------------------------------------ reductions */

/* The dtype a reduction accumulates in: f16 sums and products in f32. */
static fusor_dtype acc_dtype(fusor_dtype dtype) { return dtype == FUSOR_F16 ? FUSOR_F32 : dtype; }

ir_value sc_reduce_identity(ir_op op, fusor_dtype dtype) {
    int f = is_float(dtype);
    switch (op) {
    case IR_PROD: return f ? vf(1.0) : (ir_value){.u = 1};
    case IR_MIN: return f ? vf(INFINITY) : int_max(dtype);
    case IR_MAX: return f ? vf(-INFINITY) : int_min(dtype);
    case IR_ALL: return vbool(1);
    case IR_ANY: return vbool(0);
    default: return f ? vf(0.0) : vzero(); /* SUM */
    }
}

ir_value sc_reduce_combine(ir_op op, fusor_dtype dtype, ir_value acc, ir_value v) {
    static const ir_op step[] = {[IR_SUM] = IR_ADD,     [IR_PROD] = IR_MUL, [IR_MIN] = IR_MINIMUM,
                                 [IR_MAX] = IR_MAXIMUM, [IR_ANY] = IR_OR,   [IR_ALL] = IR_AND};
    if (!ir_op_is_reduction(op))
        return vzero();
    dtype = acc_dtype(dtype);
    return sc_apply(step[op], dtype, dtype, acc, v, vzero());
}

ir_value sc_reduce_finish(ir_op op, fusor_dtype dtype, ir_value acc) {
    (void)op;
    return dtype == FUSOR_F16 ? vf(sc_round_half(acc.f)) : acc;
}

/* ------------------------------------------------------------------ memory */

ir_value sc_load(const void *p, fusor_dtype dtype) {
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f32;
        double f64;
    } m;
    memcpy(&m, p, fusor_dtype_size(dtype));
    switch (dtype) {
    case FUSOR_BOOL: return vbool(m.u8 != 0);
    case FUSOR_I8: return (ir_value){.i = m.i8};
    case FUSOR_I16: return (ir_value){.i = m.i16};
    case FUSOR_I32: return (ir_value){.i = m.i32};
    case FUSOR_I64: return (ir_value){.i = m.i64};
    case FUSOR_U8: return (ir_value){.u = m.u8};
    case FUSOR_U16: return (ir_value){.u = m.u16};
    case FUSOR_U32: return (ir_value){.u = m.u32};
    case FUSOR_U64: return (ir_value){.u = m.u64};
    case FUSOR_F32: return vf(m.f32);
    case FUSOR_F16: return vf(fusor_f16_to_f64(m.u16));
    default: return vf(m.f64);
    }
}

void sc_store(void *p, fusor_dtype dtype, ir_value v) {
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        float f32;
        double f64;
    } m;
    switch (dtype) {
    case FUSOR_BOOL: m.u8 = v.u != 0; break;
    case FUSOR_I8:
    case FUSOR_U8: m.u8 = (uint8_t)v.u; break;
    case FUSOR_I16:
    case FUSOR_U16: m.u16 = (uint16_t)v.u; break;
    case FUSOR_I32:
    case FUSOR_U32: m.u32 = (uint32_t)v.u; break;
    case FUSOR_F32: m.f32 = (float)v.f; break;
    case FUSOR_F64: m.f64 = v.f; break;
    case FUSOR_F16: m.u16 = fusor_f16_from_f64(v.f); break;
    default: m.u64 = v.u; break;
    }
    memcpy(p, &m, fusor_dtype_size(dtype));
}

/* ------------------------------------------------------------------ text, ranges */

int sc_format(char *buf, size_t n, ir_value v, fusor_dtype dtype) {
    if (dtype == FUSOR_BOOL)
        return snprintf(buf, n, "%s", v.i ? "true" : "false");
    if (is_signed(dtype))
        return snprintf(buf, n, "%" PRId64, v.i);
    if (is_unsigned(dtype))
        return snprintf(buf, n, "%" PRIu64, v.u);
    if (isnan(v.f))
        return snprintf(buf, n, "nan"); /* never "-nan" */
    return snprintf(buf, n,
                    dtype == FUSOR_F16   ? "%.5g"
                    : dtype == FUSOR_F32 ? "%.9g"
                                         : "%.17g",
                    v.f);
}

/* Whether the integer value (of an integer dtype `from`) is within `to`'s range. */
static int int_in_range(ir_value v, fusor_dtype from, fusor_dtype to) {
    if (is_unsigned(from))
        return int_less(FUSOR_U64, int_max(to), v) == 0;
    if (v.i < 0)
        return is_signed(to) && v.i >= int_min(to).i;
    return (uint64_t)v.i <= int_max(to).u;
}

int sc_fits(ir_value v, fusor_dtype from, fusor_dtype to) {
    if (is_float(from)) {
        double x = v.f;
        if (to == FUSOR_F64)
            return 1;
        if (to == FUSOR_F32)
            return isnan(x) || (double)(float)x == x;
        if (to == FUSOR_F16)
            return isnan(x) || sc_round_half(x) == x;
        if (isnan(x) || trunc(x) != x)
            return 0;
        double lim = ldexp(1.0, (int)bit_width(to) - (is_signed(to) ? 1 : 0));
        return x < lim && x >= (is_signed(to) ? -lim : 0.0);
    }
    if (is_float(to)) {
        /* Exact when converting back gives the same integer; the bounds keep the
         * conversion back defined (a rounded-up 2^63 or 2^64 is not exact). */
        double d = sc_cast(v, from, to).f;
        if (is_unsigned(from))
            return d < 0x1p64 && (uint64_t)d == v.u;
        return d < 0x1p63 && (int64_t)d == v.i;
    }
    return int_in_range(v, from, to);
}
