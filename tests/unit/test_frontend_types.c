/*
 * test_frontend_types.c — result dtypes against NumPy 2's documented behaviour.
 *
 * The expectations below are written by hand from NumPy's promotion rules (the
 * "type promotion" and NEP 50 documents, the ufunc loop lists), not read from the
 * generated table, so a wrong or stale kernels/typetable.inc fails here.  fusor computes
 * NumPy's float16 results in f32 (documented).
 */
#include "test_frontend_util.h"
#include "typing.h"

#define ERR (-1)

typedef struct type_case {
    const char *a, *b; /* dtypes of the array parameters a and b */
    const char *expr;
    int want; /* fusor_dtype, or ERR for a language error */
} type_case;

static const type_case cases[] = {
    /* + between arrays */
    {"i8", "u8", "a + b", FUSOR_I16},
    {"i8", "i16", "a + b", FUSOR_I16},
    {"i16", "i32", "a + b", FUSOR_I32},
    {"u16", "i8", "a + b", FUSOR_I32},
    {"u32", "i32", "a + b", FUSOR_I64},
    {"u64", "i8", "a + b", FUSOR_F64},
    {"i64", "u64", "a + b", FUSOR_F64},
    {"u8", "u16", "a + b", FUSOR_U16},
    {"u32", "u64", "a * b", FUSOR_U64},
    {"i32", "f32", "a + b", FUSOR_F64},
    {"i16", "f32", "a - b", FUSOR_F32},
    {"u8", "f32", "a + b", FUSOR_F32},
    {"i64", "f32", "a + b", FUSOR_F64},
    {"f32", "f64", "a + b", FUSOR_F64},
    {"bool", "bool", "a + b", FUSOR_BOOL},
    {"bool", "bool", "a * b", FUSOR_BOOL},
    {"bool", "bool", "a - b", ERR},
    {"bool", "i8", "a + b", FUSOR_I8},
    {"bool", "u64", "a + b", FUSOR_U64},
    {"bool", "f32", "a + b", FUSOR_F32},
    /* weak literals (NEP 50) */
    {"f32", "f32", "a + 1.5", FUSOR_F32},
    {"i8", "i8", "a + 1.5", FUSOR_F64},
    {"i8", "i8", "a + 1", FUSOR_I8},
    {"u64", "u64", "a + 1", FUSOR_U64},
    {"bool", "bool", "a + 1", FUSOR_I64},
    {"bool", "bool", "a + 1.5", FUSOR_F64},
    {"i32", "i32", "a + true", FUSOR_I32},
    {"u8", "u8", "a + 300", ERR},
    {"i8", "i8", "a + -129", ERR},
    {"i8", "i8", "a + -128", FUSOR_I8},
    {"u16", "u16", "a + 70000", ERR},
    {"u16", "u16", "a + 65535", FUSOR_U16},
    {"f32", "f32", "a * 1e39", ERR},
    {"f32", "f32", "a * 3e38", FUSOR_F32},
    {"f32", "f32", "a * inf", FUSOR_F32},
    /* true division */
    {"i8", "i8", "a / b", FUSOR_F64},
    {"i32", "i32", "a / b", FUSOR_F64},
    {"u8", "u8", "a / b", FUSOR_F64},
    {"f32", "f32", "a / b", FUSOR_F32},
    {"i8", "f32", "a / b", FUSOR_F32},
    {"i16", "f32", "a / b", FUSOR_F32},
    {"i32", "f32", "a / b", FUSOR_F64},
    {"bool", "bool", "a / b", FUSOR_F64},
    {"f32", "f32", "a / 2", FUSOR_F32},
    /* floor division, remainder, power */
    {"i8", "u8", "a // b", FUSOR_I16},
    {"f32", "f32", "a // 2", FUSOR_F32},
    {"i32", "i32", "a // 2.0", FUSOR_F64},
    {"u8", "u8", "a % 3", FUSOR_U8},
    {"i8", "i8", "a ** 2", FUSOR_I8},
    {"f32", "f32", "a ** 2", FUSOR_F32},
    {"i32", "i32", "a ** 0.5", FUSOR_F64},
    {"u8", "u8", "a ** b", FUSOR_U8},
    /* comparisons */
    {"i8", "u8", "a < b", FUSOR_BOOL},
    {"f32", "f32", "a == 1", FUSOR_BOOL},
    {"u8", "u8", "a > -5", FUSOR_BOOL},
    /* bitwise and shifts */
    {"i8", "u8", "a & b", FUSOR_I16},
    {"u8", "u8", "a | 1", FUSOR_U8},
    {"bool", "bool", "a ^ b", FUSOR_BOOL},
    {"i8", "u64", "a << b", ERR},
    {"f32", "f32", "a & b", ERR},
    {"i32", "i32", "a & 1.0", ERR},
    {"u8", "u8", "a << 2", FUSOR_U8},
    {"i16", "i8", "a >> b", FUSOR_I16},
    /* functions of one operand */
    {"i8", "i8", "sqrt(a)", FUSOR_F16}, /* NumPy: float16 */
    {"i16", "i16", "sqrt(a)", FUSOR_F32},
    {"i32", "i32", "sqrt(a)", FUSOR_F64},
    {"i64", "i64", "sqrt(a)", FUSOR_F64},
    {"u8", "u8", "sin(a)", FUSOR_F16}, /* NumPy: float16 */
    {"u16", "u16", "exp(a)", FUSOR_F32},
    {"u32", "u32", "log(a)", FUSOR_F64},
    {"bool", "bool", "cos(a)", FUSOR_F16}, /* NumPy: float16 */
    {"f32", "f32", "tanh(a)", FUSOR_F32},
    {"i8", "i8", "abs(a)", FUSOR_I8},
    {"bool", "bool", "abs(a)", FUSOR_BOOL},
    {"u8", "u8", "-a", FUSOR_U8},
    {"i16", "i16", "~a", FUSOR_I16},
    {"bool", "bool", "~a", FUSOR_BOOL},
    {"bool", "bool", "-a", ERR},
    {"bool", "bool", "sign(a)", ERR},
    {"f32", "f32", "~a", ERR},
    {"bool", "bool", "square(a)", FUSOR_I8},
    {"i32", "i32", "floor(a)", FUSOR_I32},
    {"f32", "f32", "ceil(a)", FUSOR_F32},
    {"i16", "i16", "rint(a)", FUSOR_F32},
    {"i32", "i32", "rint(a)", FUSOR_F64},
    {"f32", "f32", "isnan(a)", FUSOR_BOOL},
    {"i8", "i8", "isinf(a)", FUSOR_BOOL},
    /* functions of two operands */
    {"i8", "i8", "hypot(a, b)", FUSOR_F16},
    /* f16 (NumPy float16) */
    {"f16", "f16", "a + b", FUSOR_F16},
    {"f16", "f16", "a / b", FUSOR_F16},
    {"f16", "i8", "a + b", FUSOR_F16},
    {"f16", "u8", "a * b", FUSOR_F16},
    {"f16", "i16", "a + b", FUSOR_F32},
    {"f16", "i32", "a + b", FUSOR_F64},
    {"f16", "f32", "a - b", FUSOR_F32},
    {"f16", "f64", "a - b", FUSOR_F64},
    {"f16", "bool", "a + b", FUSOR_F16},
    {"f16", "f16", "a + 1.5", FUSOR_F16},
    {"f16", "f16", "a * 3", FUSOR_F16},
    {"f16", "f16", "a + 1e6", ERR}, /* the literal overflows f16 */
    {"f16", "f16", "sin(a)", FUSOR_F16},
    {"f16", "f16", "a // b", FUSOR_F16},
    {"f16", "f16", "a < b", FUSOR_BOOL},
    {"f16", "f16", "sum(a)", FUSOR_F16},
    {"f16", "f16", "mean(a)", FUSOR_F16},
    {"f16", "f16", "a & b", ERR},
    {"f64", "f64", "f16(a)", FUSOR_F16},
    {"i32", "f32", "arctan2(a, b)", FUSOR_F64},
    {"f32", "f32", "copysign(a, 1)", FUSOR_F32},
    {"i8", "u8", "minimum(a, b)", FUSOR_I16},
    {"f32", "f64", "fmax(a, b)", FUSOR_F64},
    {"i32", "i32", "fmod(a, 2)", FUSOR_I32},
    {"i8", "i8", "maximum(a, 300)", ERR},
    /* reductions */
    {"i8", "i8", "sum(a)", FUSOR_I64},
    {"i16", "i16", "sum(a)", FUSOR_I64},
    {"i32", "i32", "sum(a)", FUSOR_I64},
    {"i64", "i64", "sum(a)", FUSOR_I64},
    {"u8", "u8", "sum(a)", FUSOR_U64},
    {"u32", "u32", "sum(a)", FUSOR_U64},
    {"bool", "bool", "sum(a)", FUSOR_I64},
    {"f32", "f32", "sum(a)", FUSOR_F32},
    {"u16", "u16", "prod(a)", FUSOR_U64},
    {"i8", "i8", "prod(a)", FUSOR_I64},
    {"i8", "i8", "min(a)", FUSOR_I8},
    {"u16", "u16", "max(a)", FUSOR_U16},
    {"bool", "bool", "min(a)", FUSOR_BOOL},
    {"i32", "i32", "mean(a)", FUSOR_F64},
    {"u8", "u8", "mean(a)", FUSOR_F64},
    {"bool", "bool", "mean(a)", FUSOR_F64},
    {"f32", "f32", "mean(a)", FUSOR_F32},
    {"f64", "f64", "mean(a)", FUSOR_F64},
    {"f32", "f32", "any(a)", FUSOR_BOOL},
    {"i8", "i8", "all(a)", FUSOR_BOOL},
    /* where and clip (np.result_type) */
    {"i8", "u8", "where(a > 0, a, b)", FUSOR_I16},
    {"f32", "f32", "where(a > 0, a, 1)", FUSOR_F32},
    {"i8", "i8", "where(a > 0, a, 1.5)", FUSOR_F64},
    {"i8", "i8", "where(a > 0, 1, 2)", FUSOR_I64},
    {"i8", "i8", "where(a > 0, 1, 2.5)", FUSOR_F64},
    {"u8", "u8", "where(a > 0, a, true)", FUSOR_U8},
    {"f32", "i64", "where(a > 0, a, b)", FUSOR_F64},
    {"i8", "i8", "clip(a, 0, 100)", FUSOR_I8},
    {"f32", "i8", "clip(a, b, 1)", FUSOR_F32},
    {"u8", "i8", "clip(a, b, 1)", FUSOR_I16},
    {"i8", "i8", "clip(a, 0, 1.5)", FUSOR_F64},
    {"f32", "f64", "clip(a, b, 1)", FUSOR_F64},
    {"bool", "i8", "clip(a, 0, b)", FUSOR_I8},      /* not pairwise: bool + int is i64 */
    {"i8", "u16", "clip(a, b, f32(1))", FUSOR_F32}, /* not pairwise: i8 + u16 is i32 */
    /* casts */
    {"i8", "i8", "f32(a)", FUSOR_F32},
    {"f64", "f64", "u16(a)", FUSOR_U16},
    {"f64", "f64", "bool(a)", FUSOR_BOOL},
};

static void test_result_dtypes(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const type_case *c = &cases[i];
        char src[256];
        snprintf(src, sizeof src, "kernel k(a: %s[], b: %s[]) -> (y) { y = %s }", c->a, c->b,
                 c->expr);
        fusor_status st;
        ir_kernel *k = fe_compile(src, NULL, NULL, &st);
        if (c->want == ERR) {
            CHECK_MSG(!k && st == FUSOR_ERROR_LANGUAGE, "%s: expected an error", src);
            continue;
        }
        CHECK_MSG(k != NULL, "%s: %s", src, fusor_last_error());
        if (!k)
            continue;
        CHECK_MSG(k->outputs[0].dtype == (fusor_dtype)c->want, "%s: got %s, want %s", src,
                  fusor_dtype_name(k->outputs[0].dtype), fusor_dtype_name((fusor_dtype)c->want));
    }
}

/* np.can_cast(from, to, 'safe'): the rule for assigning to a typed output. */
static void test_safe_casts(void) {
    static const struct {
        fusor_dtype from, to;
        int safe;
    } casts[] = {
        {FUSOR_I8, FUSOR_I16, 1},  {FUSOR_U8, FUSOR_I8, 0},    {FUSOR_U8, FUSOR_I16, 1},
        {FUSOR_I64, FUSOR_F64, 1}, {FUSOR_I32, FUSOR_F32, 0},  {FUSOR_I16, FUSOR_F32, 1},
        {FUSOR_U64, FUSOR_I64, 0}, {FUSOR_U64, FUSOR_F64, 1},  {FUSOR_F32, FUSOR_F64, 1},
        {FUSOR_F64, FUSOR_F32, 0}, {FUSOR_BOOL, FUSOR_U8, 1},  {FUSOR_I8, FUSOR_U64, 0},
        {FUSOR_I8, FUSOR_BOOL, 0}, {FUSOR_U32, FUSOR_I64, 1},  {FUSOR_U32, FUSOR_F64, 1},
        {FUSOR_F32, FUSOR_I64, 0}, {FUSOR_BOOL, FUSOR_F32, 1}, {FUSOR_U16, FUSOR_F32, 1},
        {FUSOR_F16, FUSOR_F32, 1}, {FUSOR_F32, FUSOR_F16, 0},  {FUSOR_I8, FUSOR_F16, 1},
        {FUSOR_I16, FUSOR_F16, 0}, {FUSOR_F16, FUSOR_I64, 0},  {FUSOR_BOOL, FUSOR_F16, 1},
    };
    for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++) {
        fusor_dtype f = casts[i].from, t = casts[i].to;
        CHECK_MSG(ty_can_cast_safe(f, t) == casts[i].safe, "can_cast(%s, %s)", fusor_dtype_name(f),
                  fusor_dtype_name(t));
        char src[160];
        snprintf(src, sizeof src, "kernel k(a: %s[]) -> (y: %s[]) { y = a }", fusor_dtype_name(f),
                 fusor_dtype_name(t));
        fusor_status st;
        ir_kernel *k = fe_compile(src, NULL, NULL, &st);
        CHECK_MSG((k != NULL) == casts[i].safe, "%s", src);
        char want[64];
        snprintf(want, sizeof want, "(cast.%s a)", fusor_dtype_name(t));
        if (k)
            CHECK_MSG(!strcmp(fe_render(k, 0), want), "%s: %s", src, fe_render(k, 0));
    }
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++)
        CHECK(ty_can_cast_safe((fusor_dtype)d, (fusor_dtype)d));
}

static void test_table_api(void) {
    int kinds[2] = {FUSOR_I8, FUSOR_U8};
    fusor_dtype loop[3];
    CHECK(ty_resolve(TY_ADD, kinds, loop) && loop[0] == FUSOR_I16 && loop[1] == FUSOR_I16 &&
          loop[2] == FUSOR_I16);
    kinds[0] = FUSOR_F32, kinds[1] = TY_WEAK_FLOAT;
    CHECK(ty_resolve(TY_LESS, kinds, loop) && loop[0] == FUSOR_F32 && loop[2] == FUSOR_BOOL);
    kinds[0] = FUSOR_BOOL, kinds[1] = FUSOR_BOOL;
    CHECK(!ty_resolve(TY_SUBTRACT, kinds, loop));
    kinds[0] = FUSOR_I8;
    CHECK(ty_resolve(TY_SIN, kinds, loop) && loop[0] == FUSOR_F16 && loop[1] == FUSOR_F16);
    kinds[0] = 99;
    CHECK(!ty_resolve(TY_SIN, kinds, loop));
    fusor_dtype r;
    CHECK(ty_result_type(TY_WEAK_INT, TY_WEAK_FLOAT, &r) && r == FUSOR_F64);
    CHECK(ty_result_type(FUSOR_I8, TY_WEAK_INT, &r) && r == FUSOR_I8);
    CHECK(ty_result_type(FUSOR_U64, FUSOR_I64, &r) && r == FUSOR_F64);
    CHECK(ty_result_type3(FUSOR_I8, FUSOR_U16, FUSOR_F32, &r) && r == FUSOR_F32);
    CHECK(ty_reduce_dtype(TY_SUM, FUSOR_U8) == FUSOR_U64);
    CHECK(ty_reduce_dtype(TY_MEAN, FUSOR_I16) == FUSOR_F64);
    CHECK(!strncmp(ty_numpy_version(), "2.", 2));
    CHECK(ty_arity(TY_ADD) == 2 && ty_arity(TY_SQRT) == 1 &&
          !strcmp(ty_name(TY_ARCTAN2), "arctan2"));
}

int main(void) {
    arena_init(&fe_test_arena);
    test_result_dtypes();
    test_safe_casts();
    test_table_api();
    arena_free(&fe_test_arena);
    return check_done();
}
