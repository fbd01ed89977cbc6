/*
 * check.c — names, types and shapes: from a kernel's AST to its typed IR.
 *
 * Values carry a "kind": a dtype, or a weak int or float (a literal, or an expression of
 * literals only, folded with Python's semantics).  A weak value takes the dtype of what
 * it meets, as Python scalars do in NumPy 2 (NEP 50), and must fit it.  Every other
 * promotion comes from NumPy's own tables (typing.h), and every dtype change becomes an
 * explicit CAST, so the IR's operands always have the dtype their operation computes in.
 * Operations on constants are folded; nothing reaches the IR that is not used.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "ast.h"
#include "error.h"
#include "lexer.h"
#include "scalar.h"
#include "typing.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        fusor_status try_st_ = (expr);                                                             \
        if (try_st_ != FUSOR_OK)                                                                   \
            return try_st_;                                                                        \
    } while (0)

/* ------------------------------------------------------------------ built-ins */

typedef enum bkind { B_UFUNC, B_CAST, B_WHERE, B_CLIP, B_REDUCE, B_MEAN } bkind;

static const struct builtin {
    const char *name;
    uint8_t kind, nargs;
    int16_t arg; /* ty_ufunc, fusor_dtype or ir_op */
} builtins[] = {
    {"abs", B_UFUNC, 1, TY_ABSOLUTE},
    {"sign", B_UFUNC, 1, TY_SIGN},
    {"sqrt", B_UFUNC, 1, TY_SQRT},
    {"cbrt", B_UFUNC, 1, TY_CBRT},
    {"square", B_UFUNC, 1, TY_SQUARE},
    {"reciprocal", B_UFUNC, 1, TY_RECIPROCAL},
    {"exp", B_UFUNC, 1, TY_EXP},
    {"exp2", B_UFUNC, 1, TY_EXP2},
    {"expm1", B_UFUNC, 1, TY_EXPM1},
    {"log", B_UFUNC, 1, TY_LOG},
    {"log2", B_UFUNC, 1, TY_LOG2},
    {"log10", B_UFUNC, 1, TY_LOG10},
    {"log1p", B_UFUNC, 1, TY_LOG1P},
    {"sin", B_UFUNC, 1, TY_SIN},
    {"cos", B_UFUNC, 1, TY_COS},
    {"tan", B_UFUNC, 1, TY_TAN},
    {"arcsin", B_UFUNC, 1, TY_ARCSIN},
    {"arccos", B_UFUNC, 1, TY_ARCCOS},
    {"arctan", B_UFUNC, 1, TY_ARCTAN},
    {"sinh", B_UFUNC, 1, TY_SINH},
    {"cosh", B_UFUNC, 1, TY_COSH},
    {"tanh", B_UFUNC, 1, TY_TANH},
    {"arcsinh", B_UFUNC, 1, TY_ARCSINH},
    {"arccosh", B_UFUNC, 1, TY_ARCCOSH},
    {"arctanh", B_UFUNC, 1, TY_ARCTANH},
    {"arctan2", B_UFUNC, 2, TY_ARCTAN2},
    {"hypot", B_UFUNC, 2, TY_HYPOT},
    {"power", B_UFUNC, 2, TY_POWER},
    {"floor", B_UFUNC, 1, TY_FLOOR},
    {"ceil", B_UFUNC, 1, TY_CEIL},
    {"trunc", B_UFUNC, 1, TY_TRUNC},
    {"rint", B_UFUNC, 1, TY_RINT},
    {"fmod", B_UFUNC, 2, TY_FMOD},
    {"copysign", B_UFUNC, 2, TY_COPYSIGN},
    {"minimum", B_UFUNC, 2, TY_MINIMUM},
    {"maximum", B_UFUNC, 2, TY_MAXIMUM},
    {"fmin", B_UFUNC, 2, TY_FMIN},
    {"fmax", B_UFUNC, 2, TY_FMAX},
    {"isnan", B_UFUNC, 1, TY_ISNAN},
    {"isinf", B_UFUNC, 1, TY_ISINF},
    {"isfinite", B_UFUNC, 1, TY_ISFINITE},
    {"where", B_WHERE, 3, 0},
    {"clip", B_CLIP, 3, 0},
    {"sum", B_REDUCE, 1, IR_SUM},
    {"prod", B_REDUCE, 1, IR_PROD},
    {"min", B_REDUCE, 1, IR_MIN},
    {"max", B_REDUCE, 1, IR_MAX},
    {"mean", B_MEAN, 1, 0},
    {"any", B_REDUCE, 1, IR_ANY},
    {"all", B_REDUCE, 1, IR_ALL},
    {"bool", B_CAST, 1, FUSOR_BOOL},
    {"i8", B_CAST, 1, FUSOR_I8},
    {"i16", B_CAST, 1, FUSOR_I16},
    {"i32", B_CAST, 1, FUSOR_I32},
    {"i64", B_CAST, 1, FUSOR_I64},
    {"u8", B_CAST, 1, FUSOR_U8},
    {"u16", B_CAST, 1, FUSOR_U16},
    {"u32", B_CAST, 1, FUSOR_U32},
    {"u64", B_CAST, 1, FUSOR_U64},
    {"f32", B_CAST, 1, FUSOR_F32},
    {"f64", B_CAST, 1, FUSOR_F64},
    {"f16", B_CAST, 1, FUSOR_F16},
};
#define NUM_BUILTINS (int)(sizeof builtins / sizeof builtins[0])

static const char *const constant_names[] = {"pi", "e", "inf", "nan"};
static const double constant_values[] = {3.141592653589793, 2.718281828459045, INFINITY, NAN};
static const char *const keywords[] = {"kernel", "let", "true", "false"};

static const struct builtin *find_builtin(const char *name) {
    for (int i = 0; i < NUM_BUILTINS; i++)
        if (!strcmp(builtins[i].name, name))
            return &builtins[i];
    return NULL;
}

static int find_constant(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(constant_names[i], name))
            return i;
    return -1;
}

int fe_is_constant_name(const char *name) { return find_constant(name) >= 0; }
int fe_is_function_name(const char *name) { return find_builtin(name) != NULL; }

const char *fe_reserved_what(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(keywords[i], name))
            return "a keyword";
    const struct builtin *b = find_builtin(name);
    return b && b->kind == B_CAST ? "a type" : NULL;
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int row[64];
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *fe_nearest(const char *name, const char *const *candidates, int n) {
    int len = (int)strlen(name);
    int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, candidates[i]);
        if (d < best_d && d < len)
            best = candidates[i], best_d = d;
    }
    return best;
}

/* ------------------------------------------------------------------ values */

/* A value during checking: an IR node, or a constant not yet in the IR. */
typedef struct fe_val {
    int32_t node;     /* -1 while the value is a constant not yet materialised */
    uint8_t kind;     /* fusor_dtype, TY_WEAK_INT or TY_WEAK_FLOAT */
    uint8_t is_const; /* v holds the value (weak int in .i, weak float in .f) */
    uint8_t shape;    /* ir_shape */
    ir_value v;
} fe_val;

static int is_weak(const fe_val *x) { return x->kind >= FUSOR_NUM_DTYPES; }
static int is_float_dtype(int d) { return d == FUSOR_F32 || d == FUSOR_F64 || d == FUSOR_F16; }
static int is_int_dtype(int d) { return d >= FUSOR_I8 && d <= FUSOR_U64; }
static int is_unsigned_dtype(int d) { return d >= FUSOR_U8 && d <= FUSOR_U64; }

/* The dtype a kind is computed in: weak ints in i64, weak floats in f64 (NumPy's
 * defaults, and what a weak result becomes when nothing gives it a type). */
static fusor_dtype compute_dtype(int kind) {
    return kind == TY_WEAK_INT ? FUSOR_I64 : kind == TY_WEAK_FLOAT ? FUSOR_F64 : (fusor_dtype)kind;
}

static fe_val const_val(int kind, ir_value v) {
    return (fe_val){.node = -1, .kind = (uint8_t)kind, .is_const = 1, .shape = IR_UNIFORM, .v = v};
}
static fe_val weak_int(int64_t i) { return const_val(TY_WEAK_INT, (ir_value){.i = i}); }
static fe_val weak_float(double f) { return const_val(TY_WEAK_FLOAT, (ir_value){.f = f}); }

/* "f32", or "an integer literal" / "a float literal" for weak kinds, for messages. */
static const char *kind_text(int kind) {
    if (kind == TY_WEAK_INT)
        return "an integer literal";
    if (kind == TY_WEAK_FLOAT)
        return "a float literal";
    return ty_kind_name(kind);
}

static const char *format_const(const fe_val *x, char *buf, size_t n) {
    sc_format(buf, n, x->v, compute_dtype(x->kind));
    return buf;
}

/* ------------------------------------------------------------------ the checker */

typedef enum sym_kind { SYM_INPUT, SYM_LET, SYM_OUTPUT } sym_kind;

typedef struct sym {
    const char *name;
    sym_kind kind;
    int index;   /* parameter or output index */
    int has_val; /* inputs: val is made on first use; outputs: once assigned */
    fe_pos pos;  /* where the name was declared, bound or assigned */
    fe_val val;
} sym;

typedef struct checker {
    arena *a;
    const fe_source *src;
    const fe_kernel *fk;
    ir_kernel *k;
    fe_map names; /* name -> index in syms */
    sym *syms;
    int nsyms, cap;
    /* Where the first axis reduction and the first whole reduction (or stencil load) are,
     * since one kernel cannot have both yet. */
    int has_axis, has_whole;
    fe_pos axis_pos, whole_pos;
    const char *whole_what;
    int whole_is_reduction; /* the first of them is a whole-array reduction */
    /* Set for a second check of a kernel that mixes axis and whole-array reductions: each
     * whole-array reduction becomes the reduction over all its argument's axes (a 0-d
     * array, NumPy's sum(x, axis=(0, ..., r-1))), which the staged launcher runs. */
    int whole_as_axes;
} checker;

static fusor_status oom(void) { return fu_oom("the kernel's IR"); }

static fusor_status add_node(checker *c, ir_op op, fusor_dtype dtype, fusor_dtype adtype, int32_t a,
                             int32_t b, int32_t d, int32_t *out) {
    *out = ir_add(c->k, op, dtype, adtype, IR_UNIFORM, a, b, d, (ir_value){0});
    return *out < 0 ? oom() : FUSOR_OK;
}

/* Puts a constant into the IR (weak values in their default dtype). */
static fusor_status materialize(checker *c, fe_val *x) {
    if (x->node >= 0)
        return FUSOR_OK;
    fusor_dtype d = compute_dtype(x->kind);
    x->node = ir_add(c->k, IR_CONST, d, d, (ir_shape)x->shape, -1, -1, -1, x->v);
    return x->node < 0 ? oom() : FUSOR_OK;
}

static fe_val node_val(checker *c, int32_t node) {
    const ir_node *n = &c->k->nodes[node];
    return (fe_val){.node = node, .kind = n->dtype, .shape = n->shape};
}

/* Converts a strong value to dtype `to` (folding constants). */
static fusor_status cast_strong(checker *c, fe_val *x, fusor_dtype to) {
    fusor_dtype from = (fusor_dtype)x->kind;
    if (from == to)
        return FUSOR_OK;
    if (x->is_const) {
        *x = const_val(to, sc_cast(x->v, from, to));
        return FUSOR_OK;
    }
    int32_t n;
    TRY(add_node(c, IR_CAST, to, from, x->node, -1, -1, &n));
    *x = node_val(c, n);
    return FUSOR_OK;
}

/* Whether a weak value keeps its meaning in dtype `to`: integers must be in range and
 * a finite float may not overflow f32 or f16. */
static int weak_fits(const fe_val *x, fusor_dtype to) {
    if (x->kind == TY_WEAK_INT && is_int_dtype(to))
        return sc_fits(x->v, FUSOR_I64, to);
    if (x->kind == TY_WEAK_FLOAT && to == FUSOR_F32)
        return !isfinite(x->v.f) || isfinite((float)x->v.f);
    if (x->kind == TY_WEAK_FLOAT && to == FUSOR_F16)
        return !isfinite(x->v.f) || isfinite(sc_round_half(x->v.f));
    return 1;
}

static fusor_status not_fits(checker *c, const fe_val *x, fusor_dtype to, fe_pos pos,
                             const char *where) {
    char buf[64];
    return fe_error_at(c->src, pos, "the literal value %s does not fit %s (the type it meets %s)",
                       format_const(x, buf, sizeof buf), fusor_dtype_name(to), where);
}

/* A weak value meeting dtype `to`: checked, then a strong constant of that dtype. */
static fusor_status cast_weak(checker *c, fe_val *x, fusor_dtype to, fe_pos pos,
                              const char *where) {
    if (!weak_fits(x, to))
        return not_fits(c, x, to, pos, where);
    *x = const_val(to, sc_cast(x->v, compute_dtype(x->kind), to));
    return FUSOR_OK;
}

static fusor_status convert(checker *c, fe_val *x, fusor_dtype to, fe_pos pos, const char *where) {
    return is_weak(x) ? cast_weak(c, x, to, pos, where) : cast_strong(c, x, to);
}

/* ------------------------------------------------------------------ lowering ufuncs */

static const ir_op ufunc_op[TY_NUM_UFUNCS] = {
    [TY_ADD] = IR_ADD,
    [TY_SUBTRACT] = IR_SUB,
    [TY_MULTIPLY] = IR_MUL,
    [TY_TRUE_DIVIDE] = IR_DIV,
    [TY_FLOOR_DIVIDE] = IR_FLOORDIV,
    [TY_REMAINDER] = IR_MOD,
    [TY_FMOD] = IR_FMOD,
    [TY_POWER] = IR_POW,
    [TY_BITWISE_AND] = IR_AND,
    [TY_BITWISE_OR] = IR_OR,
    [TY_BITWISE_XOR] = IR_XOR,
    [TY_LEFT_SHIFT] = IR_SHL,
    [TY_RIGHT_SHIFT] = IR_SHR,
    [TY_LESS] = IR_LT,
    [TY_LESS_EQUAL] = IR_LE,
    [TY_GREATER] = IR_GT,
    [TY_GREATER_EQUAL] = IR_GE,
    [TY_EQUAL] = IR_EQ,
    [TY_NOT_EQUAL] = IR_NE,
    [TY_ARCTAN2] = IR_ATAN2,
    [TY_HYPOT] = IR_HYPOT,
    [TY_COPYSIGN] = IR_COPYSIGN,
    [TY_MINIMUM] = IR_MINIMUM,
    [TY_MAXIMUM] = IR_MAXIMUM,
    [TY_FMIN] = IR_FMIN,
    [TY_FMAX] = IR_FMAX,
    [TY_NEGATIVE] = IR_NEG,
    [TY_POSITIVE] = IR_NUM_OPS,
    [TY_INVERT] = IR_NOT,
    [TY_ABSOLUTE] = IR_ABS,
    [TY_SIGN] = IR_SIGN,
    [TY_SQRT] = IR_SQRT,
    [TY_CBRT] = IR_CBRT,
    [TY_SQUARE] = IR_SQUARE,
    [TY_RECIPROCAL] = IR_RECIPROCAL,
    [TY_EXP] = IR_EXP,
    [TY_EXP2] = IR_EXP2,
    [TY_EXPM1] = IR_EXPM1,
    [TY_LOG] = IR_LOG,
    [TY_LOG2] = IR_LOG2,
    [TY_LOG10] = IR_LOG10,
    [TY_LOG1P] = IR_LOG1P,
    [TY_SIN] = IR_SIN,
    [TY_COS] = IR_COS,
    [TY_TAN] = IR_TAN,
    [TY_ARCSIN] = IR_ASIN,
    [TY_ARCCOS] = IR_ACOS,
    [TY_ARCTAN] = IR_ATAN,
    [TY_SINH] = IR_SINH,
    [TY_COSH] = IR_COSH,
    [TY_TANH] = IR_TANH,
    [TY_ARCSINH] = IR_ASINH,
    [TY_ARCCOSH] = IR_ACOSH,
    [TY_ARCTANH] = IR_ATANH,
    [TY_FLOOR] = IR_FLOOR,
    [TY_CEIL] = IR_CEIL,
    [TY_TRUNC] = IR_TRUNC,
    [TY_RINT] = IR_RINT,
    [TY_ISNAN] = IR_ISNAN,
    [TY_ISINF] = IR_ISINF,
    [TY_ISFINITE] = IR_ISFINITE,
    [TY_LOGICAL_NOT] = IR_NUM_OPS,
};

/* What a ufunc's loop on dtype `in` becomes: an IR op, IR_NUM_OPS for the operand
 * itself, or IR_CONST with *value for a result known without looking at the operand. */
static ir_op lower(ty_ufunc f, fusor_dtype in, int *value) {
    ir_op op = ufunc_op[f];
    if (in == FUSOR_BOOL) {
        /* NumPy's bool loops: + and * are logical or/and, as are minimum and maximum. */
        if (f == TY_ADD || f == TY_MAXIMUM || f == TY_FMAX)
            return IR_OR;
        if (f == TY_MULTIPLY || f == TY_MINIMUM || f == TY_FMIN)
            return IR_AND;
    }
    if (!is_float_dtype(in)) {
        if (op == IR_FLOOR || op == IR_CEIL || op == IR_TRUNC || op == IR_RINT)
            return IR_NUM_OPS;
        if (op == IR_ABS && (in == FUSOR_BOOL || is_unsigned_dtype(in)))
            return IR_NUM_OPS;
        if (op == IR_ISNAN || op == IR_ISINF || op == IR_ISFINITE) {
            *value = op == IR_ISFINITE;
            return IR_CONST;
        }
    }
    return op;
}

static int is_comparison_ufunc(ty_ufunc f) { return f >= TY_LESS && f <= TY_NOT_EQUAL; }

/* NumPy 2 compares u64 with a signed integer exactly (its loop keeps both dtypes), where
 * the IR wants one operand dtype: split on the sign of the signed operand.  u < s holds
 * when s >= 0 and u < u64(s); u > s when s < 0 or u > u64(s); likewise for the rest. */
static fusor_status emit_mixed_comparison(checker *c, ir_op op, fe_val *args, int u_index,
                                          fe_val *out) {
    static const ir_op mirrored[] = {[IR_LT] = IR_GT, [IR_LE] = IR_GE, [IR_GT] = IR_LT,
                                     [IR_GE] = IR_LE, [IR_EQ] = IR_EQ, [IR_NE] = IR_NE};
    if (u_index == 1)
        op = mirrored[op];
    fe_val *u = &args[u_index], *sv = &args[1 - u_index];
    fusor_dtype sd = (fusor_dtype)sv->kind;
    TRY(materialize(c, u));
    TRY(materialize(c, sv));
    int32_t zero, neg, s_as_u, cmp, node;
    zero = ir_const(c->k, sd, (ir_value){.i = 0});
    if (zero < 0)
        return oom();
    TRY(add_node(c, IR_LT, FUSOR_BOOL, sd, sv->node, zero, -1, &neg));
    TRY(add_node(c, IR_CAST, FUSOR_U64, sd, sv->node, -1, -1, &s_as_u));
    TRY(add_node(c, op, FUSOR_BOOL, FUSOR_U64, u->node, s_as_u, -1, &cmp));
    if (op == IR_LT || op == IR_LE || op == IR_EQ) {
        int32_t non_neg;
        TRY(add_node(c, IR_NOT, FUSOR_BOOL, FUSOR_BOOL, neg, -1, -1, &non_neg));
        TRY(add_node(c, IR_AND, FUSOR_BOOL, FUSOR_BOOL, non_neg, cmp, -1, &node));
    } else {
        TRY(add_node(c, IR_OR, FUSOR_BOOL, FUSOR_BOOL, neg, cmp, -1, &node));
    }
    *out = node_val(c, node);
    return FUSOR_OK;
}

/* Emits the lowered loop on operands already converted to its input dtypes. */
static fusor_status emit(checker *c, ty_ufunc f, const fusor_dtype *loop, fe_val *args,
                         fe_val *out) {
    int n = ty_arity(f), value = 0;
    fusor_dtype in = loop[0], res = loop[n];
    ir_op op = lower(f, in, &value);
    if (op == IR_NUM_OPS) {
        *out = args[0];
        return FUSOR_OK;
    }
    if (op == IR_CONST) {
        /* isnan of an integer: a constant, but as varying as its operand (a varying
         * constant is an ordinary node from here on). */
        ir_shape shape = (ir_shape)args[0].shape;
        *out = const_val(FUSOR_BOOL, (ir_value){.i = value});
        if (shape == IR_VARYING) {
            out->shape = IR_VARYING;
            TRY(materialize(c, out));
            *out = node_val(c, out->node);
        }
        return FUSOR_OK;
    }
    if (is_comparison_ufunc(f) && loop[0] != loop[1])
        return emit_mixed_comparison(c, op, args, loop[0] == FUSOR_U64 ? 0 : 1, out);
    int all_const = 1;
    for (int i = 0; i < n; i++)
        all_const &= args[i].is_const;
    if (all_const) {
        ir_value z = {0};
        *out = const_val(res, sc_apply(op, res, in, args[0].v, n > 1 ? args[1].v : z, z));
        return FUSOR_OK;
    }
    for (int i = 0; i < n; i++)
        TRY(materialize(c, &args[i]));
    int32_t node;
    TRY(add_node(c, op, res, in, args[0].node, n > 1 ? args[1].node : -1, -1, &node));
    *out = node_val(c, node);
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ folding literals */

static fusor_status fold_error(checker *c, fe_pos pos, const char *what) {
    return fe_error_at(c->src, pos, "%s in a constant expression", what);
}

static fusor_status overflow(checker *c, fe_pos pos) {
    return fe_error_at(c->src, pos,
                       "integer overflow in a constant expression (integer literals are "
                       "exact in i64)");
}

static int64_t as_int(const fe_val *x) { return x->v.i; } /* weak int or bool */
static double as_double(const fe_val *x) {
    return x->kind == TY_WEAK_FLOAT ? x->v.f : (double)x->v.i;
}

static fusor_status checked_pow(checker *c, int64_t base, int64_t e, fe_pos pos, int64_t *out) {
    int64_t r = 1;
    while (e > 0) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r))
            return overflow(c, pos);
        e >>= 1;
        if (e && __builtin_mul_overflow(base, base, &base))
            return overflow(c, pos);
    }
    *out = r;
    return FUSOR_OK;
}

/* Python's semantics for an operator on integer literals (bools count as 0 and 1). */
static fusor_status fold_int(checker *c, fe_tok op, int64_t x, int64_t y, fe_pos pos, fe_val *out) {
    int64_t r = 0;
    switch (op) {
    case FE_T_PLUS:
        if (__builtin_add_overflow(x, y, &r))
            return overflow(c, pos);
        break;
    case FE_T_MINUS:
        if (__builtin_sub_overflow(x, y, &r))
            return overflow(c, pos);
        break;
    case FE_T_STAR:
        if (__builtin_mul_overflow(x, y, &r))
            return overflow(c, pos);
        break;
    case FE_T_SLASH:
        if (!y)
            return fold_error(c, pos, "division by zero");
        *out = weak_float((double)x / (double)y);
        return FUSOR_OK;
    case FE_T_DSLASH:
    case FE_T_PERCENT:
        if (!y)
            return fold_error(c, pos, "division by zero");
        if (x == INT64_MIN && y == -1) {
            if (op == FE_T_DSLASH)
                return overflow(c, pos);
            r = 0;
            break;
        }
        r = op == FE_T_DSLASH ? x / y : x % y;
        if (x % y != 0 && ((x < 0) != (y < 0)))
            r = op == FE_T_DSLASH ? r - 1 : r + y;
        break;
    case FE_T_DSTAR:
        if (y < 0) {
            if (!x)
                return fold_error(c, pos, "0 raised to a negative power (division by zero)");
            *out = weak_float(pow((double)x, (double)y));
            return FUSOR_OK;
        }
        TRY(checked_pow(c, x, y, pos, &r));
        break;
    case FE_T_AMP: r = x & y; break;
    case FE_T_PIPE: r = x | y; break;
    case FE_T_CARET: r = x ^ y; break;
    case FE_T_SHL:
    case FE_T_SHR:
        if (y < 0)
            return fold_error(c, pos, "negative shift count");
        if (op == FE_T_SHR) {
            r = y >= 64 ? (x < 0 ? -1 : 0) : x >> y;
        } else if (x) {
            if (y >= 63)
                return overflow(c, pos);
            r = (int64_t)((uint64_t)x << y);
            if (r >> y != x)
                return overflow(c, pos);
        }
        break;
    case FE_T_LT: *out = const_val(FUSOR_BOOL, (ir_value){.i = x < y}); return FUSOR_OK;
    case FE_T_LE: *out = const_val(FUSOR_BOOL, (ir_value){.i = x <= y}); return FUSOR_OK;
    case FE_T_GT: *out = const_val(FUSOR_BOOL, (ir_value){.i = x > y}); return FUSOR_OK;
    case FE_T_GE: *out = const_val(FUSOR_BOOL, (ir_value){.i = x >= y}); return FUSOR_OK;
    case FE_T_EQ: *out = const_val(FUSOR_BOOL, (ir_value){.i = x == y}); return FUSOR_OK;
    default: *out = const_val(FUSOR_BOOL, (ir_value){.i = x != y}); return FUSOR_OK;
    }
    *out = weak_int(r);
    return FUSOR_OK;
}

/* Python's semantics for an operator on literals of which one is a float.  Returns with
 * out->kind unchanged (a bool) for bitwise operators, which are not defined on floats:
 * the caller reports them like NumPy would. */
static fusor_status fold_float(checker *c, fe_tok op, double x, double y, fe_pos pos, fe_val *out,
                               int *handled) {
    ir_value a = {.f = x}, b = {.f = y}, z = {0};
    double r;
    *handled = 1;
    switch (op) {
    case FE_T_PLUS: r = x + y; break;
    case FE_T_MINUS: r = x - y; break;
    case FE_T_STAR: r = x * y; break;
    case FE_T_SLASH:
        if (y == 0)
            return fold_error(c, pos, "division by zero");
        r = x / y;
        break;
    case FE_T_DSLASH:
    case FE_T_PERCENT:
        if (y == 0)
            return fold_error(c, pos, "division by zero");
        r = sc_apply(op == FE_T_DSLASH ? IR_FLOORDIV : IR_MOD, FUSOR_F64, FUSOR_F64, a, b, z).f;
        break;
    case FE_T_DSTAR:
        if (x == 0 && y < 0)
            return fold_error(c, pos, "0.0 raised to a negative power");
        if (x < 0 && isfinite(y) && y != floor(y))
            return fe_error_at(c->src, pos,
                               "a negative number raised to a fractional power is complex");
        r = pow(x, y);
        break;
    case FE_T_LT: *out = const_val(FUSOR_BOOL, (ir_value){.i = x < y}); return FUSOR_OK;
    case FE_T_LE: *out = const_val(FUSOR_BOOL, (ir_value){.i = x <= y}); return FUSOR_OK;
    case FE_T_GT: *out = const_val(FUSOR_BOOL, (ir_value){.i = x > y}); return FUSOR_OK;
    case FE_T_GE: *out = const_val(FUSOR_BOOL, (ir_value){.i = x >= y}); return FUSOR_OK;
    case FE_T_EQ: *out = const_val(FUSOR_BOOL, (ir_value){.i = x == y}); return FUSOR_OK;
    case FE_T_NE: *out = const_val(FUSOR_BOOL, (ir_value){.i = x != y}); return FUSOR_OK;
    default: *handled = 0; return FUSOR_OK;
    }
    *out = weak_float(r);
    return FUSOR_OK;
}

/* Whether x is part of an expression of literals only (bool literals included). */
static int is_literal(const fe_val *x) {
    return x->is_const && (is_weak(x) || x->kind == FUSOR_BOOL);
}

/* A ufunc called on literals only, at least one weak: computed in NumPy's loop for the
 * weak kinds (i64 or f64), the result weak again. */
static fusor_status fold_weak_ufunc(checker *c, ty_ufunc f, const fusor_dtype *loop, fe_val *args,
                                    fe_pos pos, fe_val *out) {
    int n = ty_arity(f);
    for (int i = 0; i < n; i++)
        args[i] = const_val(loop[i], sc_cast(args[i].v, compute_dtype(args[i].kind), loop[i]));
    fusor_dtype res = loop[n];
    if (is_int_dtype(loop[0])) {
        int64_t x = args[0].v.i, y = n > 1 ? args[1].v.i : 0, r = 0;
        switch (f) {
        case TY_NEGATIVE:
        case TY_ABSOLUTE:
            if (x == INT64_MIN)
                return overflow(c, pos);
            break;
        case TY_SQUARE:
            if (__builtin_mul_overflow(x, x, &r))
                return overflow(c, pos);
            break;
        case TY_POWER:
            if (y < 0)
                return fe_error_at(c->src, pos,
                                   "integers to negative integer powers are not allowed "
                                   "(as in NumPy): use a float, as in power(%lld.0, %lld)",
                                   (long long)x, (long long)y);
            TRY(checked_pow(c, x, y, pos, &r));
            *out = weak_int(r);
            return FUSOR_OK;
        case TY_RECIPROCAL:
        case TY_FMOD:
        case TY_FLOOR_DIVIDE:
        case TY_REMAINDER:
            if ((f == TY_RECIPROCAL ? x : y) == 0)
                return fold_error(c, pos, "division by zero");
            break;
        default: break;
        }
    } else if (f == TY_FMOD && args[1].v.f == 0) {
        return fold_error(c, pos, "division by zero");
    }
    TRY(emit(c, f, loop, args, out));
    if (is_int_dtype(res))
        *out = weak_int(sc_cast(out->v, res, FUSOR_I64).i);
    if (is_float_dtype(res))
        *out = weak_float(sc_cast(out->v, res, FUSOR_F64).f);
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ applying ufuncs */

static fusor_status no_loop(checker *c, ty_ufunc f, const fe_val *args, fe_pos pos,
                            const char *what) {
    int n = ty_arity(f);
    int k0 = args[0].kind, k1 = n > 1 ? args[1].kind : k0;
    if (k0 == FUSOR_BOOL && k1 == FUSOR_BOOL) {
        if (f == TY_SUBTRACT)
            return fe_error_at(c->src, pos,
                               "'-' is not defined for bool operands (as in "
                               "NumPy): use '^' (logical xor)");
        if (f == TY_NEGATIVE)
            return fe_error_at(c->src, pos,
                               "unary '-' is not defined for bool (as in NumPy): "
                               "use '~' (logical not)");
    }
    int is_bitwise = (f >= TY_BITWISE_AND && f <= TY_RIGHT_SHIFT) || f == TY_INVERT;
    if (is_bitwise && (is_float_dtype(compute_dtype(k0)) || is_float_dtype(compute_dtype(k1))))
        return fe_error_at(c->src, pos,
                           "%s needs integer or bool operands (bitwise on integers, logical on "
                           "bools), not %s",
                           what, kind_text(is_float_dtype(compute_dtype(k0)) ? k0 : k1));
    if (n == 1)
        return fe_error_at(c->src, pos, "%s is not defined for %s (NumPy has no such loop)", what,
                           kind_text(k0));
    return fe_error_at(c->src, pos, "%s is not defined for %s and %s (NumPy has no such loop)",
                       what, kind_text(k0), kind_text(k1));
}

/* A comparison of an integer with an integer literal outside its range is still exact
 * in NumPy 2: compare in a dtype that holds both. */
static void widen_comparison(const fe_val *args, fusor_dtype *loop) {
    if (!is_int_dtype(loop[0]))
        return;
    for (int i = 0; i < 2; i++) {
        if (args[i].kind == TY_WEAK_INT && !weak_fits(&args[i], loop[0])) {
            fusor_dtype wide =
                loop[0] == FUSOR_U64 || args[1 - i].kind == FUSOR_U64 ? FUSOR_F64 : FUSOR_I64;
            loop[0] = loop[1] = wide;
        }
    }
}

/*
 * Applies ufunc f to args (arity of f) as NumPy would: the loop NumPy picks for the
 * operands' kinds, each operand converted to it, the operation lowered to IR or folded.
 * `pos` is the operator's position, `argpos` the operands', `what` names the operation
 * in messages ("'+'", "sqrt()").
 */
static fusor_status apply(checker *c, ty_ufunc f, fe_val *args, const fe_pos *argpos, fe_pos pos,
                          const char *what, fe_val *out) {
    int n = ty_arity(f), kinds[2], any_weak = 0, all_literal = 1;
    for (int i = 0; i < n; i++) {
        kinds[i] = args[i].kind;
        any_weak |= is_weak(&args[i]);
        all_literal &= is_literal(&args[i]);
    }
    fusor_dtype loop[3];
    if (!ty_resolve(f, kinds, loop))
        return no_loop(c, f, args, pos, what);
    if (all_literal && any_weak)
        return fold_weak_ufunc(c, f, loop, args, pos, out);
    if (is_comparison_ufunc(f))
        widen_comparison(args, loop);
    char where[64];
    snprintf(where, sizeof where, "in %s", what);
    for (int i = 0; i < n; i++)
        TRY(convert(c, &args[i], loop[i], argpos[i], where));
    if (f == TY_POWER && is_int_dtype(loop[1]) && !is_unsigned_dtype(loop[1]) && args[1].is_const &&
        args[1].v.i < 0)
        return fe_error_at(c->src, argpos[1],
                           "integers to negative integer powers are not allowed (as in NumPy): "
                           "make the base or the exponent a float");
    return emit(c, f, loop, args, out);
}

/* ------------------------------------------------------------------ expressions */

static fusor_status check_expr(checker *c, const fe_expr *e, fe_val *out);

static ty_ufunc binary_ufunc(fe_tok op) {
    switch (op) {
    case FE_T_PLUS: return TY_ADD;
    case FE_T_MINUS: return TY_SUBTRACT;
    case FE_T_STAR: return TY_MULTIPLY;
    case FE_T_SLASH: return TY_TRUE_DIVIDE;
    case FE_T_DSLASH: return TY_FLOOR_DIVIDE;
    case FE_T_PERCENT: return TY_REMAINDER;
    case FE_T_DSTAR: return TY_POWER;
    case FE_T_AMP: return TY_BITWISE_AND;
    case FE_T_PIPE: return TY_BITWISE_OR;
    case FE_T_CARET: return TY_BITWISE_XOR;
    case FE_T_SHL: return TY_LEFT_SHIFT;
    case FE_T_SHR: return TY_RIGHT_SHIFT;
    case FE_T_LT: return TY_LESS;
    case FE_T_LE: return TY_LESS_EQUAL;
    case FE_T_GT: return TY_GREATER;
    case FE_T_GE: return TY_GREATER_EQUAL;
    case FE_T_EQ: return TY_EQUAL;
    default: return TY_NOT_EQUAL;
    }
}

static fusor_status check_binary(checker *c, const fe_expr *e, fe_val *out) {
    fe_val args[2];
    TRY(check_expr(c, e->args[0], &args[0]));
    TRY(check_expr(c, e->args[1], &args[1]));
    fe_tok op = (fe_tok)e->op;
    if (is_literal(&args[0]) && is_literal(&args[1]) && (is_weak(&args[0]) || is_weak(&args[1]))) {
        if (args[0].kind != TY_WEAK_FLOAT && args[1].kind != TY_WEAK_FLOAT)
            return fold_int(c, op, as_int(&args[0]), as_int(&args[1]), e->pos, out);
        int handled;
        TRY(fold_float(c, op, as_double(&args[0]), as_double(&args[1]), e->pos, out, &handled));
        if (handled)
            return FUSOR_OK;
    }
    char what[16];
    snprintf(what, sizeof what, "'%s'", fe_tok_spelling(op));
    fe_pos argpos[2] = {e->args[0]->start, e->args[1]->start};
    return apply(c, binary_ufunc(op), args, argpos, e->pos, what, out);
}

static fusor_status check_unary(checker *c, const fe_expr *e, fe_val *out) {
    fe_val x;
    TRY(check_expr(c, e->args[0], &x));
    *out = x;
    fe_tok op = (fe_tok)e->op;
    if (out->kind == TY_WEAK_INT && op != FE_T_PLUS) {
        if (op == FE_T_MINUS && out->v.i == INT64_MIN)
            return overflow(c, e->pos);
        *out = weak_int(op == FE_T_MINUS ? -out->v.i : ~out->v.i);
        return FUSOR_OK;
    }
    if (out->kind == TY_WEAK_FLOAT && op == FE_T_MINUS) {
        *out = weak_float(-out->v.f);
        return FUSOR_OK;
    }
    ty_ufunc f = op == FE_T_MINUS ? TY_NEGATIVE : op == FE_T_PLUS ? TY_POSITIVE : TY_INVERT;
    char what[24];
    snprintf(what, sizeof what, "unary '%s'", fe_tok_spelling(op));
    return apply(c, f, &x, &e->args[0]->start, e->pos, what, out);
}

static fusor_status cast_call(checker *c, const fe_expr *e, fusor_dtype to, fe_val *out) {
    TRY(check_expr(c, e->args[0], out));
    if (out->kind == TY_WEAK_INT && is_int_dtype(to) && !weak_fits(out, to))
        return not_fits(c, out, to, e->args[0]->start, "in the cast");
    if (is_weak(out)) {
        *out = const_val(to, sc_cast(out->v, compute_dtype(out->kind), to));
        return FUSOR_OK;
    }
    return cast_strong(c, out, to);
}

/* where(cond, a, b): NumPy's np.where, with cond converted to bool (!= 0). */
static fusor_status where_call(checker *c, const fe_expr *e, fe_val *out) {
    fe_val v[3];
    for (int i = 0; i < 3; i++)
        TRY(check_expr(c, e->args[i], &v[i]));
    if (is_weak(&v[0]))
        v[0] = const_val(FUSOR_BOOL, sc_cast(v[0].v, compute_dtype(v[0].kind), FUSOR_BOOL));
    TRY(cast_strong(c, &v[0], FUSOR_BOOL));
    fusor_dtype rt;
    if (is_weak(&v[1]) && is_weak(&v[2])) {
        int kind =
            v[1].kind == TY_WEAK_FLOAT || v[2].kind == TY_WEAK_FLOAT ? TY_WEAK_FLOAT : TY_WEAK_INT;
        rt = compute_dtype(kind);
        if (v[0].is_const) {
            fe_val pick = v[0].v.i ? v[1] : v[2];
            *out = const_val(kind, sc_cast(pick.v, compute_dtype(pick.kind), rt));
            return FUSOR_OK;
        }
    } else if (!ty_result_type(v[1].kind, v[2].kind, &rt)) {
        return fe_error_at(c->src, e->pos, "where(): %s and %s have no common type",
                           kind_text(v[1].kind), kind_text(v[2].kind));
    }
    for (int i = 1; i < 3; i++)
        TRY(convert(c, &v[i], rt, e->args[i]->start, "in where()"));
    if (v[0].is_const && v[1].is_const && v[2].is_const) {
        *out = v[0].v.i ? v[1] : v[2];
        return FUSOR_OK;
    }
    for (int i = 0; i < 3; i++)
        TRY(materialize(c, &v[i]));
    int32_t n;
    TRY(add_node(c, IR_WHERE, rt, rt, v[0].node, v[1].node, v[2].node, &n));
    *out = node_val(c, n);
    return FUSOR_OK;
}

/* clip(x, lo, hi) = minimum(maximum(x, lo), hi) in np.clip's result dtype.  Like NumPy 2,
 * an integer literal bound beyond the dtype's range is no bound at all. */
static fusor_status clip_call(checker *c, const fe_expr *e, fe_val *out) {
    fe_val v[3];
    fe_pos pos[3];
    for (int i = 0; i < 3; i++) {
        TRY(check_expr(c, e->args[i], &v[i]));
        pos[i] = e->args[i]->start;
    }
    if (is_literal(&v[0]) && is_literal(&v[1]) && is_literal(&v[2])) {
        fe_val lo[2] = {v[0], v[1]}, hi[2];
        TRY(apply(c, TY_MAXIMUM, lo, pos, e->pos, "clip()", &hi[0]));
        hi[1] = v[2];
        fe_pos hpos[2] = {pos[0], pos[2]};
        return apply(c, TY_MINIMUM, hi, hpos, e->pos, "clip()", out);
    }
    fusor_dtype rt;
    if (!ty_result_type3(v[0].kind, v[1].kind, v[2].kind, &rt))
        return fe_error_at(c->src, e->pos, "clip(): %s, %s and %s have no common type",
                           kind_text(v[0].kind), kind_text(v[1].kind), kind_text(v[2].kind));
    int use[3] = {1, 1, 1};
    for (int i = 1; i < 3; i++) {
        if (v[i].kind == TY_WEAK_INT && is_int_dtype(rt) && !weak_fits(&v[i], rt)) {
            int below = v[i].v.i < 0;
            if (below != (i == 1))
                return not_fits(c, &v[i], rt, pos[i], "in clip()");
            use[i] = 0;
        }
    }
    for (int i = 0; i < 3; i++)
        if (use[i])
            TRY(convert(c, &v[i], rt, pos[i], "in clip()"));
    fusor_dtype loop[3] = {rt, rt, rt};
    *out = v[0];
    if (use[1]) {
        fe_val a[2] = {*out, v[1]};
        TRY(emit(c, TY_MAXIMUM, loop, a, out));
    }
    if (use[2]) {
        fe_val a[2] = {*out, v[2]};
        TRY(emit(c, TY_MINIMUM, loop, a, out));
    }
    return FUSOR_OK;
}

/* The rank a node has wherever the kernel runs, counted in declared (core) dimensions:
 * -1 when some array parameter it depends on is `f64[]` (any rank).  Leading (loop)
 * dimensions beyond the declared ones broadcast as in NumPy and are never reduced. */
static int static_rank(checker *c, int32_t node) {
    /* Nodes are in topological order: one sweep up to `node`, no recursion (a DAG of shared
     * subexpressions would make a recursive walk exponential). */
    int8_t *rank = fu_malloc((size_t)node + 1);
    if (!rank)
        return -1;
    for (int32_t i = 0; i <= node; i++) {
        const ir_node *n = &c->k->nodes[i];
        int r = 0;
        if (n->shape == IR_UNIFORM) {
            r = 0;
        } else if (n->op == IR_INPUT) {
            int nd = ir_param_ndims(c->k, (int)n->imm.i);
            r = nd ? nd : -1;
        } else {
            int32_t ops[3] = {n->a, n->b, n->c};
            for (int j = 0; j < ir_op_arity((ir_op)n->op) && r >= 0; j++) {
                int x = rank[ops[j]];
                r = x < 0 ? -1 : x > r ? x : r;
            }
            if (r > 0 && ir_is_axis_reduction(n) && !n->off[0])
                r--;
        }
        rank[i] = (int8_t)r;
    }
    int r = rank[node];
    fu_free(rank);
    return r;
}

/* The parameter a value is, for messages: "'x'" or "its argument". */
static const char *operand_text(checker *c, const fe_expr *e, char *buf, size_t n) {
    if (e->kind == FE_E_NAME && fe_map_get(&c->names, e->name) >= 0)
        snprintf(buf, n, "'%s'", e->name);
    else
        snprintf(buf, n, "its argument");
    return buf;
}

/* The axes of `axis=` (an integer or a tuple of integers), checked against the operand's
 * declared rank when it is known, as offsets from the end (-1: the last) in descending
 * order of position (so reducing one after the other keeps the rest valid). */
static fusor_status reduce_axes(checker *c, const fe_expr *call, const fe_expr *value,
                                const fe_expr *operand, int rank, int *axes, int *naxes) {
    const fe_expr *items[FUSOR_MAX_DIMS];
    int n = 0;
    if (value->kind == FE_E_TUPLE) {
        if (value->nargs == 0 || value->nargs > FUSOR_MAX_DIMS)
            return fe_error_at(c->src, value->start,
                               "%s(): axis=() needs between 1 and %d axes", call->name,
                               FUSOR_MAX_DIMS);
        for (int i = 0; i < value->nargs; i++)
            items[n++] = value->args[i];
    } else {
        items[n++] = value;
    }
    char what[80];
    for (int i = 0; i < n; i++) {
        const fe_expr *x = items[i];
        int64_t v;
        if (x->kind == FE_E_INT)
            v = x->value.i;
        else if (x->kind == FE_E_UNARY && x->op == FE_T_MINUS && x->args[0]->kind == FE_E_INT)
            v = -x->args[0]->value.i;
        else
            return fe_error_at(c->src, x->start,
                               "%s(): an axis is an integer literal such as 0, 1 or -1",
                               call->name);
        if (rank >= 0 && (v < -rank || v >= rank))
            return fe_error_at(c->src, x->start,
                               "%s(): axis %lld is out of range for %s, which has %d declared "
                               "dimension%s",
                               call->name, (long long)v,
                               operand_text(c, operand, what, sizeof what), rank,
                               rank == 1 ? "" : "s");
        if (v < -FUSOR_MAX_DIMS || v >= FUSOR_MAX_DIMS)
            return fe_error_at(c->src, x->start, "%s(): axis %lld is out of range (an array has at "
                               "most %d dimensions)", call->name, (long long)v, FUSOR_MAX_DIMS);
        int a = (int)v;
        if (rank >= 0 && a >= 0)
            a -= rank;
        if (rank < 0 && i > 0 && (a >= 0) != (axes[0] >= 0))
            return fe_error_at(c->src, x->start,
                               "%s(): axes counted from the start and from the end cannot be "
                               "mixed when the rank of %s is not declared: declare it "
                               "(f64[n, m])",
                               call->name, operand_text(c, operand, what, sizeof what));
        for (int j = 0; j < i; j++)
            if (axes[j] == a)
                return fe_error_at(c->src, x->start, "%s(): axis %lld is repeated", call->name,
                                   (long long)v);
        axes[i] = a;
    }
    /* Descending positions: reducing a later axis first keeps the positions of earlier
     * axes counted from the start, and moves those counted from the end one closer, which
     * reduce_call accounts for. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && axes[j] > axes[j - 1]; j--) {
            int t = axes[j];
            axes[j] = axes[j - 1];
            axes[j - 1] = t;
        }
    *naxes = n;
    return FUSOR_OK;
}

static fusor_status reduce_call(checker *c, const fe_expr *e, const struct builtin *b,
                                fe_val *out) {
    const fe_expr *axis_e = NULL, *keep_e = NULL, *arg = NULL;
    for (int i = 0; i < e->nargs; i++) {
        const fe_expr *x = e->args[i];
        if (x->kind != FE_E_KEYWORD) {
            arg = x;
            continue;
        }
        const fe_expr **slot = !strcmp(x->name, "axis")       ? &axis_e
                               : !strcmp(x->name, "keepdims") ? &keep_e
                                                              : NULL;
        if (!slot)
            return fe_error_at(c->src, x->pos,
                               "%s() has no argument '%s' (it takes axis= and keepdims=)", e->name,
                               x->name);
        if (*slot)
            return fe_error_at(c->src, x->pos, "%s(): '%s' is given twice", e->name, x->name);
        *slot = x->args[0];
    }
    if (!arg)
        return fe_error_at(c->src, e->pos, "%s() takes 1 argument, the array to reduce", e->name);
    fe_val x;
    TRY(check_expr(c, arg, &x));
    if (x.shape != IR_VARYING)
        return fe_error_at(c->src, arg->start,
                           "%s() reduces an element-wise (array) value over the whole domain, "
                           "but its argument is a scalar",
                           b->name);
    int keepdims = 0;
    if (keep_e) {
        if (keep_e->kind != FE_E_BOOL)
            return fe_error_at(c->src, keep_e->start, "%s(): keepdims is true or false", e->name);
        keepdims = (int)keep_e->value.i;
        if (!axis_e)
            return fe_error_at(c->src, keep_e->start,
                               "%s(): keepdims needs axis= (a whole reduction gives a scalar)",
                               e->name);
    }
    int axes[FUSOR_MAX_DIMS], naxes = 0;
    if (axis_e) {
        TRY(reduce_axes(c, e, axis_e, arg, static_rank(c, x.node), axes, &naxes));
        if (!c->has_axis)
            c->axis_pos = e->pos;
        c->has_axis = 1;
    } else if (c->whole_as_axes) {
        int r = static_rank(c, x.node);
        if (r <= 0)
            return fe_error_at(c->src, e->pos,
                               "%s(): in a kernel with axis reductions, a whole-array reduction "
                               "needs the dimensions of its argument declared (x: f64[n, m]), "
                               "or the kernel split in two",
                               e->name);
        for (int a = 0; a < r; a++) /* the last axis first, as reduce_axes orders them */
            axes[a] = r - 1 - a;
        naxes = r;
    } else if (!c->has_whole) {
        c->has_whole = 1;
        c->whole_pos = e->pos;
        c->whole_what = "a whole-array reduction";
        c->whole_is_reduction = 1;
    }
    fusor_dtype d = (fusor_dtype)x.kind;
    int32_t n;
    ir_op op = b->kind == B_MEAN ? IR_SUM : (ir_op)b->arg;
    fusor_dtype rd = b->kind == B_MEAN               ? ty_reduce_dtype(TY_MEAN, d)
                     : op == IR_ANY || op == IR_ALL ? FUSOR_BOOL
                     : op == IR_SUM                 ? ty_reduce_dtype(TY_SUM, d)
                     : op == IR_PROD                ? ty_reduce_dtype(TY_PROD, d)
                                                    : d;
    /* A float16 mean is computed in f32 and rounded once (np.mean's float32 intermediate). */
    fusor_dtype md = b->kind == B_MEAN && rd == FUSOR_F16 ? FUSOR_F32 : rd;
    TRY(cast_strong(c, &x, md));
    if (naxes) {
        /* One axis at a time (the last first); for the mean, the counts multiply. */
        int32_t cur = x.node, count = -1;
        for (int i = 0; i < naxes; i++) {
            /* Earlier reductions without keepdims moved the remaining axes one closer. */
            int a = axes[i];
            if (a < 0 && !keepdims)
                for (int j = 0; j < i; j++)
                    if (axes[j] > a)
                        a++;
            cur = ir_axis_reduce(c->k, op, md, cur, a, keepdims);
            if (cur < 0)
                return oom();
            if (b->kind == B_MEAN) {
                int32_t len = ir_add(c->k, IR_COUNT, FUSOR_I64, FUSOR_I64, IR_UNIFORM, -1, -1, -1,
                                     (ir_value){.i = cur + 1});
                if (len < 0)
                    return oom();
                if (count >= 0)
                    TRY(add_node(c, IR_MUL, FUSOR_I64, FUSOR_I64, count, len, -1, &len));
                count = len;
            }
        }
        n = cur;
        if (b->kind == B_MEAN) {
            int32_t countc;
            TRY(add_node(c, IR_CAST, md, FUSOR_I64, count, -1, -1, &countc));
            TRY(add_node(c, IR_DIV, md, md, cur, countc, -1, &n));
            if (rd != md)
                TRY(add_node(c, IR_CAST, rd, md, n, -1, -1, &n));
        }
        *out = node_val(c, n);
        return FUSOR_OK;
    }
    if (b->kind == B_MEAN) {
        /* NumPy's mean: the sum in the mean's dtype divided by the count. */
        int32_t count, countc, sum;
        TRY(add_node(c, IR_SUM, md, md, x.node, -1, -1, &sum));
        TRY(add_node(c, IR_COUNT, FUSOR_I64, FUSOR_I64, -1, -1, -1, &count));
        TRY(add_node(c, IR_CAST, md, FUSOR_I64, count, -1, -1, &countc));
        TRY(add_node(c, IR_DIV, md, md, sum, countc, -1, &n));
        if (rd != md)
            TRY(add_node(c, IR_CAST, rd, md, n, -1, -1, &n));
        *out = node_val(c, n);
        return FUSOR_OK;
    }
    TRY(add_node(c, op, rd, rd, x.node, -1, -1, &n));
    *out = node_val(c, n);
    return FUSOR_OK;
}

static fusor_status unknown_function(checker *c, const fe_expr *e) {
    int32_t s = fe_map_get(&c->names, e->name);
    if (s >= 0 || fe_is_constant_name(e->name))
        return fe_error_at(c->src, e->pos, "'%s' is not a function", e->name);
    const char *names[NUM_BUILTINS];
    for (int i = 0; i < NUM_BUILTINS; i++)
        names[i] = builtins[i].name;
    const char *near = fe_nearest(e->name, names, NUM_BUILTINS);
    if (near)
        return fe_error_at(c->src, e->pos, "unknown function '%s' (did you mean '%s'?)", e->name,
                           near);
    return fe_error_at(c->src, e->pos, "unknown function '%s'", e->name);
}

static fusor_status check_call(checker *c, const fe_expr *e, fe_val *out) {
    const struct builtin *b = find_builtin(e->name);
    if (!b)
        return unknown_function(c, e);
    int npos = 0;
    for (int i = 0; i < e->nargs; i++) {
        if (e->args[i]->kind != FE_E_KEYWORD) {
            npos++;
        } else if (b->kind != B_REDUCE && b->kind != B_MEAN) {
            return fe_error_at(c->src, e->args[i]->pos,
                               "%s() takes no keyword arguments (only the reductions take axis= "
                               "and keepdims=)",
                               e->name);
        }
    }
    if ((b->kind == B_REDUCE || b->kind == B_MEAN) && npos == 1)
        return reduce_call(c, e, b, out);
    if (e->nargs != b->nargs) {
        if ((b->arg == IR_MIN || b->arg == IR_MAX) && b->kind == B_REDUCE && e->nargs == 2)
            return fe_error_at(c->src, e->pos,
                               "%s() reduces one array to its %s element: for the element-wise "
                               "%s of two values use %s(a, b)",
                               e->name, b->arg == IR_MIN ? "smallest" : "largest",
                               b->arg == IR_MIN ? "minimum" : "maximum",
                               b->arg == IR_MIN ? "minimum" : "maximum");
        return fe_error_at(c->src, e->pos, "%s() takes %d argument%s, but %d %s given", e->name,
                           b->nargs, b->nargs == 1 ? "" : "s", e->nargs,
                           e->nargs == 1 ? "was" : "were");
    }
    switch ((bkind)b->kind) {
    case B_CAST: return cast_call(c, e, (fusor_dtype)b->arg, out);
    case B_WHERE: return where_call(c, e, out);
    case B_CLIP: return clip_call(c, e, out);
    case B_REDUCE:
    case B_MEAN: return reduce_call(c, e, b, out);
    case B_UFUNC: break;
    }
    fe_val args[2];
    fe_pos argpos[2];
    for (int i = 0; i < b->nargs; i++) {
        TRY(check_expr(c, e->args[i], &args[i]));
        argpos[i] = e->args[i]->start;
    }
    char what[24];
    snprintf(what, sizeof what, "%s()", b->name);
    return apply(c, (ty_ufunc)b->arg, args, argpos, e->pos, what, out);
}

static fusor_status unknown_name(checker *c, const fe_expr *e) {
    const struct builtin *b = find_builtin(e->name);
    if (b) {
        if (b->kind == B_CAST)
            return fe_error_at(c->src, e->pos, "'%s' is a type: convert a value with %s(...)",
                               e->name, e->name);
        return fe_error_at(c->src, e->pos, "'%s' is a function: call it, as in %s(x)", e->name,
                           e->name);
    }
    int n = 0;
    const char **names = arena_alloc(c->a, sizeof(char *) * (size_t)(c->nsyms + 4));
    if (!names)
        return oom();
    for (int i = 0; i < c->nsyms; i++)
        names[n++] = c->syms[i].name;
    for (int i = 0; i < 4; i++)
        names[n++] = constant_names[i];
    const char *near = fe_nearest(e->name, names, n);
    if (!near) {
        const char *funcs[NUM_BUILTINS];
        for (int i = 0; i < NUM_BUILTINS; i++)
            funcs[i] = builtins[i].name;
        near = fe_nearest(e->name, funcs, NUM_BUILTINS);
    }
    if (near)
        return fe_error_at(c->src, e->pos, "unknown name '%s' (did you mean '%s'?)", e->name, near);
    return fe_error_at(c->src, e->pos, "unknown name '%s'", e->name);
}

static fusor_status check_name(checker *c, const fe_expr *e, fe_val *out) {
    int32_t i = fe_map_get(&c->names, e->name);
    if (i < 0) {
        int k = find_constant(e->name);
        if (k < 0)
            return unknown_name(c, e);
        *out = weak_float(constant_values[k]);
        return FUSOR_OK;
    }
    sym *s = &c->syms[i];
    if (s->kind == SYM_OUTPUT && !s->has_val)
        return fe_error_at(c->src, e->pos, "output '%s' is read before it is assigned", s->name);
    if (s->kind == SYM_INPUT && !s->has_val) {
        const ir_param *p = &c->k->params[s->index];
        ir_shape shape = p->is_array ? IR_VARYING : IR_UNIFORM;
        int32_t n = ir_add(c->k, IR_INPUT, p->dtype, p->dtype, shape, -1, -1, -1,
                           (ir_value){.i = s->index});
        if (n < 0)
            return oom();
        s->val = node_val(c, n);
        s->has_val = 1;
    }
    *out = s->val;
    return FUSOR_OK;
}

/* u[-1, 0]: a stencil load of an array parameter with declared dimensions and a boundary. */
static fusor_status check_index(checker *c, const fe_expr *e, fe_val *out) {
    int32_t i = fe_map_get(&c->names, e->name);
    if (i < 0 || c->syms[i].kind != SYM_INPUT)
        return fe_error_at(c->src, e->pos,
                           "'%s' is not a parameter: only array parameters can be indexed with "
                           "offsets",
                           e->name);
    int pi = c->syms[i].index;
    const ir_param *p = &c->k->params[pi];
    int ndims = ir_param_ndims(c->k, pi);
    if (!p->is_array)
        return fe_error_at(c->src, e->pos,
                           "parameter '%s' is a scalar: only arrays can be indexed with offsets",
                           p->name);
    if (ndims == 0)
        return fe_error_at(c->src, e->pos,
                           "parameter '%s' is indexed with offsets on undeclared dimensions: "
                           "declare them and a boundary, e.g. '%s: %s[n, m] clamp'",
                           p->name, p->name, fusor_dtype_name(p->dtype));
    if (e->nargs != ndims)
        return fe_error_at(c->src, e->pos,
                           "rank mismatch: parameter '%s' has %d declared dimension%s but is "
                           "indexed with %d offset%s",
                           p->name, ndims, ndims == 1 ? "" : "s", e->nargs,
                           e->nargs == 1 ? "" : "s");
    if (ir_param_boundary(c->k, pi) == IR_BOUND_NONE)
        return fe_error_at(c->src, e->pos,
                           "parameter '%s' is indexed with offsets but declares no boundary: "
                           "write clamp, wrap, zero, mirror or interior after its type",
                           p->name);
    int8_t off[FUSOR_MAX_DIMS] = {0};
    for (int d = 0; d < e->nargs; d++) off[d] = (int8_t)e->args[d]->value.i;
    if (!c->has_whole) {
        c->has_whole = 1;
        c->whole_pos = e->pos;
        c->whole_what = "a stencil load";
    }
    int32_t n = ir_input_at(c->k, c->syms[i].index, p->dtype, off);
    if (n < 0)
        return oom();
    *out = node_val(c, n);
    return FUSOR_OK;
}

static fusor_status check_expr(checker *c, const fe_expr *e, fe_val *out) {
    switch ((fe_expr_kind)e->kind) {
    case FE_E_INDEX: return check_index(c, e, out);
    case FE_E_INT: *out = weak_int(e->value.i); return FUSOR_OK;
    case FE_E_FLOAT: *out = weak_float(e->value.f); return FUSOR_OK;
    case FE_E_BOOL: *out = const_val(FUSOR_BOOL, e->value); return FUSOR_OK;
    case FE_E_NAME: return check_name(c, e, out);
    case FE_E_UNARY: return check_unary(c, e, out);
    case FE_E_BINARY: return check_binary(c, e, out);
    case FE_E_CALL: return check_call(c, e, out);
    case FE_E_KEYWORD:
        return fe_error_at(c->src, e->pos, "'%s=' is a keyword argument, only allowed in a call",
                           e->name);
    case FE_E_TUPLE:
        return fe_error_at(c->src, e->pos, "a tuple is only allowed as a reduction's axis=");
    }
    return fu_error(FUSOR_ERROR_INTERNAL, "check: bad expression kind %d", e->kind);
}

/* ------------------------------------------------------------------ statements */

static fusor_status define(checker *c, const char *name, sym_kind kind, int index, fe_pos pos,
                           sym **out) {
    if (c->nsyms == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->syms = arena_grow(c->a, c->syms, sizeof *c->syms, (size_t)c->nsyms, (size_t)c->cap);
        if (!c->syms)
            return oom();
    }
    sym *s = &c->syms[c->nsyms];
    *s = (sym){.name = name, .kind = kind, .index = index, .pos = pos};
    if (fe_map_put(&c->names, name, c->nsyms++) < 0)
        return oom();
    if (out)
        *out = s;
    return FUSOR_OK;
}

static fusor_status check_let(checker *c, const fe_stmt *st) {
    int32_t i = fe_map_get(&c->names, st->name);
    if (i >= 0) {
        const sym *s = &c->syms[i];
        return fe_error_at(c->src, st->pos,
                           "'%s' is already defined (at line %d, column %d): a name is bound "
                           "only once",
                           st->name, (int)s->pos.line, (int)s->pos.col);
    }
    fe_val v;
    TRY(check_expr(c, st->value, &v));
    sym *s;
    TRY(define(c, st->name, SYM_LET, -1, st->pos, &s));
    s->val = v;
    s->has_val = 1;
    return FUSOR_OK;
}

static fusor_status not_an_output(checker *c, const fe_stmt *st) {
    int32_t i = fe_map_get(&c->names, st->name);
    if (i >= 0 && c->syms[i].kind == SYM_INPUT)
        return fe_error_at(c->src, st->pos, "cannot assign to the input '%s'", st->name);
    if (i >= 0)
        return fe_error_at(c->src, st->pos, "'%s' is a 'let' binding and cannot be assigned again",
                           st->name);
    const char *outs[64];
    int n = c->fk->nout < 64 ? c->fk->nout : 64;
    for (int j = 0; j < n; j++)
        outs[j] = c->fk->out[j].name;
    const char *near = fe_nearest(st->name, outs, n);
    if (near)
        return fe_error_at(c->src, st->pos,
                           "'%s' is not an output of kernel '%s' (did you mean '%s'?)", st->name,
                           c->fk->name, near);
    return fe_error_at(c->src, st->pos,
                       "'%s' is not an output of kernel '%s': to bind a new name write "
                       "'let %s = ...'",
                       st->name, c->fk->name, st->name);
}

/* Converts the value assigned to output j to the output's declared type. */
static fusor_status output_value(checker *c, const fe_stmt *st, ir_output *o, const fe_decl *d,
                                 fe_val *v) {
    fe_pos at = st->value->start;
    if (d->is_array == 0 && v->shape == IR_VARYING && c->whole_as_axes)
        return fe_error_at(c->src, at,
                           "the scalar output '%s' is assigned an element-wise expression: in a "
                           "kernel with axis reductions a whole-array reduction gives a 0-d "
                           "array, so declare '%s' as an array (%s[])",
                           o->name, o->name, fusor_dtype_name(o->dtype));
    if (d->is_array == 0 && v->shape == IR_VARYING)
        return fe_error_at(c->src, at,
                           "the scalar output '%s' is assigned an element-wise expression: "
                           "reduce it (with sum, max, ...) or declare '%s' as an array (%s[])",
                           o->name, o->name, fusor_dtype_name(d->dtype));
    if (d->dtype == FUSOR_NUM_DTYPES) {
        o->dtype = compute_dtype(v->kind);
        if (is_weak(v))
            *v = const_val(o->dtype, v->v);
        return FUSOR_OK;
    }
    o->dtype = d->dtype;
    if (is_weak(v)) {
        fusor_dtype rt;
        if (!ty_result_type(d->dtype, v->kind, &rt) || rt != d->dtype)
            return fe_error_at(c->src, at,
                               "cannot assign %s literal to the %s output '%s' without a "
                               "cast: write %s(...)",
                               v->kind == TY_WEAK_INT ? "an integer" : "a float",
                               fusor_dtype_name(d->dtype), o->name, fusor_dtype_name(d->dtype));
        return cast_weak(c, v, d->dtype, at, "in the assignment");
    }
    if (v->kind != d->dtype && !ty_can_cast_safe((fusor_dtype)v->kind, d->dtype))
        return fe_error_at(
            c->src, at,
            "the %s output '%s' is assigned a value of type %s, which NumPy does not "
            "cast safely to %s: convert it explicitly with %s(...)",
            fusor_dtype_name(d->dtype), o->name, kind_text(v->kind), fusor_dtype_name(d->dtype),
            fusor_dtype_name(d->dtype));
    return cast_strong(c, v, d->dtype);
}

static fusor_status check_assign(checker *c, const fe_stmt *st) {
    int32_t i = fe_map_get(&c->names, st->name);
    if (i < 0 || c->syms[i].kind != SYM_OUTPUT)
        return not_an_output(c, st);
    if (c->syms[i].has_val)
        return fe_error_at(c->src, st->pos,
                           "output '%s' is assigned twice (first at line %d, "
                           "column %d)",
                           st->name, (int)c->syms[i].pos.line, (int)c->syms[i].pos.col);
    fe_val v;
    TRY(check_expr(c, st->value, &v));
    int j = c->syms[i].index;
    ir_output *o = &c->k->outputs[j];
    const fe_decl *d = &c->fk->out[j];
    TRY(output_value(c, st, o, d, &v));
    TRY(materialize(c, &v));
    if (d->ndims && v.shape == IR_VARYING) {
        int r = static_rank(c, v.node);
        if (r >= 0 && r != d->ndims)
            return fe_error_at(c->src, st->value->start,
                               "output '%s' declares %d dimension%s but is assigned a value with "
                               "%d",
                               o->name, d->ndims, d->ndims == 1 ? "" : "s", r);
    }
    o->node = v.node;
    o->is_array = d->is_array >= 0 ? d->is_array : v.shape == IR_VARYING;
    sym *s = &c->syms[i];
    s->val = v;
    s->has_val = 1;
    s->pos = st->pos;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ kernels */

/* The value a literal binding stands for: its text checked as a constant expression. */
static fusor_status literal_value(checker *c, const fe_decl *d, const char *text, fe_val *v) {
    fe_source *src = arena_alloc(c->a, sizeof *src);
    char *name = arena_alloc(c->a, strlen(d->name) + 32);
    if (!src || !name)
        return oom();
    sprintf(name, "<literal for '%s'>", d->name);
    src->text = arena_strdup(c->a, text);
    if (!src->text)
        return oom();
    src->len = strlen(text);
    src->filename = name;
    fe_expr *e;
    TRY(fe_parse_standalone_expr(c->a, src, &e));
    const fe_source *saved = c->src;
    c->src = src;
    fusor_status st = check_expr(c, e, v);
    c->src = saved;
    return st;
}

static const char **copy_names(checker *c, const char *const *names, int n) {
    const char **out = arena_alloc(c->a, sizeof *out * (size_t)n);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = arena_strdup(c->a, names[i])))
            return NULL;
    return out;
}

static fusor_status bind_inputs(checker *c, const fe_binding *bindings) {
    const fe_kernel *fk = c->fk;
    ir_kernel *k = c->k;
    k->nparams = fk->nin;
    k->params = arena_alloc(c->a, sizeof *k->params * (size_t)(fk->nin ? fk->nin : 1));
    if (!k->params)
        return oom();
    fe_val *literal = arena_alloc(c->a, sizeof *literal * (size_t)(fk->nin ? fk->nin : 1));
    char *is_literal = arena_alloc(c->a, (size_t)(fk->nin ? fk->nin : 1));
    if (!literal || !is_literal)
        return oom();
    /* Literals first, while no name is defined: a literal cannot refer to anything. */
    for (int i = 0; i < fk->nin; i++) {
        const fe_decl *d = &fk->in[i];
        ir_param *p = &k->params[i];
        /* Copies in the IR's arena: a compiled kernel is cached by its IR and may outlive
         * the source it came from (another kernel with the same IR shares it). */
        p->name = arena_strdup(c->a, d->name);
        if (!p->name)
            return oom();
        p->dtype = d->dtype;
        p->is_array = d->is_array;
        if (d->ndims) {
            if (!k->dims) {
                k->dims = arena_alloc(c->a, sizeof *k->dims * (size_t)fk->nin);
                if (!k->dims)
                    return oom();
                memset(k->dims, 0, sizeof *k->dims * (size_t)fk->nin);
            }
            k->dims[i] = (ir_dims){.ndims = d->ndims, .boundary = d->boundary,
                                   .names = copy_names(c, d->dims, d->ndims)};
            if (!k->dims[i].names)
                return oom();
        }
        if (d->is_array >= 0)
            continue;
        if (!bindings)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "kernel '%s' is generic: its input '%s' needs a binding", fk->name,
                            d->name);
        const fe_binding *b = &bindings[i];
        if (b->literal) {
            TRY(literal_value(c, d, b->literal, &literal[i]));
            is_literal[i] = 1;
            p->dtype = compute_dtype(literal[i].kind);
            p->is_array = 0;
        } else if ((unsigned)b->dtype >= FUSOR_NUM_DTYPES ||
                   (b->is_array != 0 && b->is_array != 1)) {
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "kernel '%s': the binding of '%s' has an invalid dtype or is_array",
                            fk->name, d->name);
        } else {
            p->dtype = b->dtype;
            p->is_array = b->is_array;
        }
    }
    for (int i = 0; i < fk->nin; i++) {
        sym *s;
        TRY(define(c, fk->in[i].name, SYM_INPUT, i, fk->in[i].pos, &s));
        if (is_literal[i]) {
            s->val = literal[i];
            s->has_val = 1;
        }
    }
    return FUSOR_OK;
}

static fusor_status declare_outputs(checker *c) {
    const fe_kernel *fk = c->fk;
    ir_kernel *k = c->k;
    k->noutputs = fk->nout;
    k->outputs = arena_alloc(c->a, sizeof *k->outputs * (size_t)fk->nout);
    if (!k->outputs)
        return oom();
    for (int j = 0; j < fk->nout; j++) {
        if (fk->out[j].boundary != IR_BOUND_NONE)
            return fe_error_at(c->src, fk->out[j].boundary_pos,
                               "output '%s' declares a boundary: only parameters read with "
                               "offsets have one",
                               fk->out[j].name);
        k->outputs[j] = (ir_output){.name = arena_strdup(c->a, fk->out[j].name),
                                    .dtype = fk->out[j].dtype,
                                    .is_array = fk->out[j].is_array,
                                    .node = -1};
        if (!k->outputs[j].name)
            return oom();
        if (fk->out[j].ndims) {
            if (!k->out_dims) {
                k->out_dims = arena_alloc(c->a, sizeof *k->out_dims * (size_t)fk->nout);
                if (!k->out_dims)
                    return oom();
                memset(k->out_dims, 0, sizeof *k->out_dims * (size_t)fk->nout);
            }
            k->out_dims[j] = (ir_dims){.ndims = fk->out[j].ndims,
                                       .names = copy_names(c, fk->out[j].dims, fk->out[j].ndims)};
            if (!k->out_dims[j].names)
                return oom();
        }
        /* A gufunc output's dimensions come from the parameters' (y: f64[n] with x: f64[n, k]). */
        for (int d = 0; d < fk->out[j].ndims; d++) {
            const char *name = fk->out[j].dims[d];
            int found = 0;
            for (int i = 0; i < k->nparams && !found; i++)
                for (int e = 0; e < ir_param_ndims(k, i) && !found; e++)
                    found = !strcmp(k->dims[i].names[e], name);
            if (!found)
                return fe_error_at(c->src, fk->out[j].pos,
                                   "output '%s' has dimension '%s', which no parameter declares "
                                   "(an output's dimensions come from its parameters', as in "
                                   "x: f64[n, k] -> (y: f64[n]))",
                                   fk->out[j].name, name);
        }
        TRY(define(c, fk->out[j].name, SYM_OUTPUT, j, fk->out[j].pos, NULL));
    }
    return FUSOR_OK;
}

/* Drops the nodes no output uses (unused lets, conversions superseded by folding),
 * keeping the topological order. */
static fusor_status prune(checker *c) {
    ir_kernel *k = c->k;
    int32_t *map = arena_alloc(c->a, sizeof(int32_t) * (size_t)(k->nnodes ? k->nnodes : 1));
    if (!map)
        return oom();
    for (int j = 0; j < k->noutputs; j++)
        map[k->outputs[j].node] = 1;
    for (int32_t i = k->nnodes - 1; i >= 0; i--) {
        const ir_node *n = &k->nodes[i];
        int32_t ops[3] = {n->a, n->b, n->c};
        if (!map[i])
            continue;
        for (int j = 0; j < ir_op_arity((ir_op)n->op); j++)
            map[ops[j]] = 1;
        if (n->op == IR_COUNT && n->imm.i > 0)
            map[n->imm.i - 1] = 1;
    }
    int32_t kept = 0;
    for (int32_t i = 0; i < k->nnodes; i++) {
        if (!map[i]) {
            map[i] = -1;
            continue;
        }
        ir_node n = k->nodes[i];
        if (n.a >= 0)
            n.a = map[n.a];
        if (n.b >= 0)
            n.b = map[n.b];
        if (n.c >= 0)
            n.c = map[n.c];
        if (n.op == IR_COUNT && n.imm.i > 0) /* the axis reduction whose length it is */
            n.imm.i = map[n.imm.i - 1] + 1;
        k->nodes[kept] = n;
        map[i] = kept++;
    }
    k->nnodes = kept;
    for (int j = 0; j < k->noutputs; j++)
        k->outputs[j].node = map[k->outputs[j].node];
    return FUSOR_OK;
}

/* One check of kernel i; `whole_as_axes` as in checker. */
static fusor_status check_once(arena *a, const fe_program *p, int i, const fe_binding *bindings,
                               int whole_as_axes, ir_kernel **out, int *mixed) {
    checker c = {.a = a, .src = &p->src, .fk = &p->kernels[i], .names = {.a = a},
                 .whole_as_axes = whole_as_axes};
    *mixed = 0;
    c.k = ir_kernel_new(a, c.fk->name);
    if (!c.k)
        return oom();
    TRY(bind_inputs(&c, bindings));
    TRY(declare_outputs(&c));
    for (int s = 0; s < c.fk->nstmts; s++) {
        const fe_stmt *st = &c.fk->stmts[s];
        TRY(st->is_let ? check_let(&c, st) : check_assign(&c, st));
    }
    for (int j = 0; j < c.fk->nout; j++)
        if (c.k->outputs[j].node < 0)
            return fe_error_at(c.src, c.fk->out[j].pos, "output '%s' is never assigned",
                               c.fk->out[j].name);
    if (c.has_axis && c.has_whole) {
        /* Whole-array reductions can be checked again as all-axes ones; stencil loads not. */
        if (!whole_as_axes && c.whole_is_reduction) {
            *mixed = 1;
            return FUSOR_OK;
        }
        fe_pos at = c.axis_pos.offset > c.whole_pos.offset ? c.axis_pos : c.whole_pos;
        return fe_error_at(c.src, at,
                           "kernel '%s' mixes axis reductions with %s, which is not supported "
                           "yet: split it into two kernels",
                           c.fk->name, c.whole_what);
    }
    ir_finish(c.k);
    TRY(prune(&c));
    if (c.k->nnodes > FE_MAX_NODES)
        return fe_error_at(c.src, c.fk->pos,
                           "kernel '%s' is too large: %d operations, the limit is %d; split it "
                           "into several kernels",
                           c.fk->name, c.k->nnodes, FE_MAX_NODES);
    *out = c.k;
    return FUSOR_OK;
}

fusor_status fe_check(arena *a, const fe_program *p, int i, const fe_binding *bindings,
                      ir_kernel **out) {
    if (!a || !p || !out || i < 0 || i >= p->nkernels)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fe_check: bad program or kernel index");
    int mixed = 0;
    fusor_status st = check_once(a, p, i, bindings, 0, out, &mixed);
    if (st == FUSOR_OK && mixed) /* axis and whole-array reductions: the latter over all axes */
        st = check_once(a, p, i, bindings, 1, out, &mixed);
    return st;
}
