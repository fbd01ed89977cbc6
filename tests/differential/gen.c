/*
 * gen.c — the random kernel generator of test_differential.c (#included there; the
 * build compiles only tests/<label>/test_*.c).
 *
 * A program is generated as SOURCE TEXT so that the whole front end (lexer, parser with
 * Python precedence, checker with NumPy 2 / NEP 50 typing) is exercised, and only
 * well-typed programs are meant to come out: every node's dtype is computed here with
 * NumPy's own tables (typing.h, generated from NumPy) and combinations NumPy rejects are
 * not emitted.  The checker may still refuse a program (the test counts those as skips
 * and fails above 30%).
 *
 * Each program comes as two texts.  The program itself ("A") adds, for every float
 * sum/prod/mean it contains, a scalar output r<j> holding that reduction.  Its twin ("B")
 * is the same kernel where every use of float reduction j is replaced by a scalar
 * parameter q<j> of the reduction's dtype (and r<j> recomputes the reduction from the
 * twin's operand), plus an output s<j> = sum(abs(f64(operand))).  The test runs A on the
 * JIT and B on the interpreter with q<j> bound to the JIT's r<j>: everything downstream of
 * a float reduction is then computed from the same value on both sides and compared as
 * strictly as the rest, while r<j> itself is compared with a sound summation bound.
 *
 * Each expression also carries an exactness class, which decides the comparison:
 *
 *   EXACT   computed only with operations both back ends must round identically: integer
 *           and bool arithmetic, IEEE + - * / sqrt, casts, comparisons, floor/ceil/...,
 *           min/max, and the twin's q<j>.  Compared bit for bit (NaN equals NaN).
 *   APPROX  touched by a libm function (the JIT may call a vector library with a few ulp
 *           of error where the interpreter calls libm).  Compared within a tolerance.
 *   WILD    an APPROX value passed through a discontinuous operation (a comparison, a
 *           float->int cast, floor, //, %, sign, isnan, copysign's sign, where's
 *           condition): a one-ulp difference may legitimately flip the result.  The
 *           generator keeps these rare (operands of discontinuous operations are built
 *           EXACT 90% of the time) and the test only bounds how many elements differ.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusor.h"
#include "typing.h"

/* ------------------------------------------------------------------ random numbers */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnext(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rint_in(rng *r, int lo, int hi) {
    return lo + (int)(rnext(r) % (uint64_t)(hi - lo + 1));
}
static double runif(rng *r) { return (double)(rnext(r) >> 11) * 0x1p-53; }
static int chance(rng *r, double p) { return runif(r) < p; }

/* ------------------------------------------------------------------ text */

static void *xalloc(size_t n) {
    void *p = calloc(1, n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static char *xfmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *xfmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------------ dtypes */

static const char *const dtype_names[] = {"bool", "i8",  "i16", "i32", "i64", "u8",
                                          "u16",  "u32", "u64", "f32", "f64", "f16"};

static int dt_is_float(int k) {
    return k == FUSOR_F32 || k == FUSOR_F64 || k == FUSOR_F16 || k == TY_WEAK_FLOAT;
}
/* The `lowp` level of an APPROX value computed in dtype k: 1 for f32 math, 2 for f16 (whose
 * results are f32 math rounded to half); the tolerance follows the lowest precision. */
static int lowp_of(int k) { return k == FUSOR_F16 ? 2 : k == FUSOR_F32 ? 1 : 0; }
static int imax(int a, int b) { return a > b ? a : b; }
static int dt_is_unsigned(int k) { return k >= FUSOR_U8 && k <= FUSOR_U64; }
static int dt_is_weak(int k) { return k == TY_WEAK_INT || k == TY_WEAK_FLOAT; }

/* Whether integer v fits dtype k (NEP 50: a Python int that does not fit is an error). */
static int fits_int(int64_t v, int k) {
    switch (k) {
    case FUSOR_I8: return v >= INT8_MIN && v <= INT8_MAX;
    case FUSOR_I16: return v >= INT16_MIN && v <= INT16_MAX;
    case FUSOR_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case FUSOR_U8: return v >= 0 && v <= UINT8_MAX;
    case FUSOR_U16: return v >= 0 && v <= UINT16_MAX;
    case FUSOR_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
    case FUSOR_U64: return v >= 0;
    default: return 1;
    }
}

/* ------------------------------------------------------------------ expression trees */

/* A node's text is `fmt` with the bytes 1, 2, 3 standing for its children. */
typedef struct gnode {
    char *fmt;
    struct gnode *kid[3];
    int red; /* >= 0: float reduction number `red`, printed as q<red> in the twin */
} gnode;

enum { EXACT = 0, APPROX = 1, WILD = 2 };
/* Python's precedence levels, loosest first. */
enum { P_CMP = 1, P_OR, P_XOR, P_AND, P_SHIFT, P_ADD, P_MUL, P_UNARY, P_POW, P_ATOM };

typedef struct gx {
    gnode *n;     /* NULL: the production failed */
    int kind;     /* fusor_dtype, or TY_WEAK_INT / TY_WEAK_FLOAT for a bare literal */
    int prec;     /* of the top operator */
    int vary;     /* VARYING (depends on an array) */
    int cls;      /* EXACT / APPROX / WILD */
    int64_t ival; /* a weak int literal's value */
    int lit;      /* a bare literal or constant: true, 3, 2.5, pi (folded if combined) */
    int lowp;     /* APPROX with an f32 (1) or f16 (2) libm result on the way: its tolerance */
} gx;

typedef struct gvar {
    char name[16];
    int dtype;
    int vary, cls, lowp;
} gvar;

/* Generation modes. */
enum {
    M_EXACT = 1,   /* no APPROX or WILD sub-expressions */
    M_UNIFORM = 2, /* the result must not depend on arrays except through reductions */
    M_STRONG = 4,  /* no bare weak literal as the result */
    M_NORED = 8,   /* no reductions (limits their number) */
};

#define GEN_MAX_VARS 24
#define GEN_MAX_FRED 8 /* float sum/prod/mean reductions per program */

typedef struct gen {
    rng r;
    gvar vars[GEN_MAX_VARS];
    int nvars;
    int has_arrays;
    int nred; /* reductions of any kind */
    /* Float reductions: operand, op ('s' sum, 'm' mean, 'p' prod), dtype, operand class. */
    int nfred;
    gnode *fred_arg[GEN_MAX_FRED];
    int fred_op[GEN_MAX_FRED], fred_dtype[GEN_MAX_FRED], fred_cls[GEN_MAX_FRED];
    int fred_lowp[GEN_MAX_FRED];
    const char *fred_name[GEN_MAX_FRED];
    /* Every node, freed together. */
    gnode **pool;
    int npool, cap;
} gen;

static gnode *node(gen *g, char *fmt, gnode *a, gnode *b, gnode *c) {
    if (g->npool == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->pool = realloc(g->pool, sizeof *g->pool * (size_t)g->cap);
        if (!g->pool)
            exit(2);
    }
    gnode *n = xalloc(sizeof *n);
    n->fmt = fmt;
    n->kid[0] = a;
    n->kid[1] = b;
    n->kid[2] = c;
    n->red = -1;
    g->pool[g->npool++] = n;
    return n;
}

static void print_node(FILE *f, const gnode *n, int twin, int top) {
    if (twin && n->red >= 0 && !top) {
        fprintf(f, "q%d", n->red);
        return;
    }
    for (const char *p = n->fmt; *p; p++) {
        if (*p >= 1 && *p <= 3)
            print_node(f, n->kid[*p - 1], twin, 0);
        else
            fputc(*p, f);
    }
}

/* The text of a node in the program (twin 0) or its twin (1). */
static char *node_text(const gnode *n, int twin) {
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        exit(2);
    print_node(f, n, twin, 0);
    fclose(f);
    return s;
}

static gx mk(gnode *n, int kind, int prec, int vary, int cls) {
    gx e = {.n = n, .kind = kind, .prec = prec, .vary = vary, .cls = cls};
    return e;
}
static gx fail(void) { return mk(NULL, -1, 0, 0, 0); }
/* A leaf node with the given text. */
static gnode *leaf(gen *g, char *text) { return node(g, text, NULL, NULL, NULL); }

/* e as an operand needing precedence `need`: parenthesised when looser (and now and then
 * when not, as people write). */
static gnode *operand(gen *g, const gx *e, int need) {
    if (e->prec < need || (e->prec < P_ATOM && chance(&g->r, 0.04)))
        return node(g, xfmt("(\1)"), e->n, NULL, NULL);
    return e->n;
}

static int cls_max(int a, int b) { return a > b ? a : b; }
/* The class of a discontinuous operation applied to an operand of class c. */
static int cls_disc(int c) { return c == EXACT ? EXACT : WILD; }

/* ------------------------------------------------------------------ leaves */

static gx gen_int_literal(gen *g, int64_t v) {
    /* Now and then in hexadecimal (the lexer's other integer form). */
    int hex = v >= 0 && chance(&g->r, 0.15);
    gx e = mk(leaf(g, hex ? xfmt("0x%llX", (long long)v) : xfmt("%lld", (long long)v)), TY_WEAK_INT,
              v < 0 ? P_UNARY : P_ATOM, 0, EXACT);
    e.ival = v;
    e.lit = 1;
    return e;
}

static gx gen_literal(gen *g) {
    rng *r = &g->r;
    int c = rint_in(r, 0, 19);
    if (c < 9) {
        static const int64_t small[] = {0, 1, 2, 3, 5, 7, -1, -3, 12, 100, 200, 1000, 70000};
        return gen_int_literal(g, small[rint_in(r, 0, chance(r, 0.8) ? 9 : 12)]);
    }
    gx e;
    if (c < 15) {
        static const char *const fl[] = {"0.5",   "2.5",  "1.0",    "0.25",  "3.75", "1e-3",
                                         "1.5e2", "-0.5", "-2.0",   "0.1",   "10.0", "7.",
                                         ".5",    "2E1",  "1.5e+1", "2.5E-1"};
        const char *t = fl[rint_in(r, 0, 15)];
        e = mk(leaf(g, xfmt("%s", t)), TY_WEAK_FLOAT, t[0] == '-' ? P_UNARY : P_ATOM, 0, EXACT);
    } else if (c < 17) {
        e = mk(leaf(g, xfmt("%s", chance(r, 0.5) ? "true" : "false")), FUSOR_BOOL, P_ATOM, 0,
               EXACT);
    } else {
        static const char *const k[] = {"pi", "e", "inf", "nan", "pi", "e"};
        e = mk(leaf(g, xfmt("%s", k[rint_in(r, 0, chance(r, 0.85) ? 1 : 5)])), TY_WEAK_FLOAT,
               P_ATOM, 0, EXACT);
    }
    e.lit = 1;
    return e;
}

/* A variable usable in `mode`, or -1. */
static int pick_var(gen *g, int mode) {
    int ok[GEN_MAX_VARS], n = 0;
    for (int i = 0; i < g->nvars; i++) {
        const gvar *v = &g->vars[i];
        if ((mode & M_EXACT) && v->cls != EXACT)
            continue;
        if ((mode & M_UNIFORM) && v->vary)
            continue;
        ok[n++] = i;
    }
    return n ? ok[rint_in(&g->r, 0, n - 1)] : -1;
}

static gx var_expr(gen *g, int i) {
    const gvar *v = &g->vars[i];
    gx e = mk(leaf(g, xfmt("%s", v->name)), v->dtype, P_ATOM, v->vary, v->cls);
    e.lowp = v->lowp;
    return e;
}

static gx gen_expr(gen *g, int depth, int mode);

static gx gen_leaf(gen *g, int mode) {
    int v = pick_var(g, mode);
    if (v >= 0 && (mode & M_STRONG || chance(&g->r, 0.75)))
        return var_expr(g, v);
    if (!(mode & M_STRONG))
        return gen_literal(g);
    if (v >= 0)
        return var_expr(g, v);
    /* Strong and no variable fits: a cast literal (a typed constant). */
    int t = rint_in(&g->r, 0, FUSOR_NUM_DTYPES - 1);
    int x = rint_in(&g->r, 0, 9);
    char *s =
        dt_is_float(t) ? xfmt("%s(%d.5)", dtype_names[t], x) : xfmt("%s(%d)", dtype_names[t], x);
    return mk(leaf(g, s), t, P_ATOM, 0, EXACT);
}

/* ------------------------------------------------------------------ operators */

typedef struct binop {
    const char *text;
    ty_ufunc uf;
    int prec;
    int disc; /* discontinuous for float operands */
} binop;

static const binop binops[] = {
    {"+", TY_ADD, P_ADD, 0},           {"-", TY_SUBTRACT, P_ADD, 0},
    {"*", TY_MULTIPLY, P_MUL, 0},      {"/", TY_TRUE_DIVIDE, P_MUL, 0},
    {"//", TY_FLOOR_DIVIDE, P_MUL, 1}, {"%", TY_REMAINDER, P_MUL, 1},
    {"**", TY_POWER, P_POW, 0},        {"&", TY_BITWISE_AND, P_AND, 0},
    {"|", TY_BITWISE_OR, P_OR, 0},     {"^", TY_BITWISE_XOR, P_XOR, 0},
    {"<<", TY_LEFT_SHIFT, P_SHIFT, 0}, {">>", TY_RIGHT_SHIFT, P_SHIFT, 0},
    {"<", TY_LESS, P_CMP, 1},          {"<=", TY_LESS_EQUAL, P_CMP, 1},
    {">", TY_GREATER, P_CMP, 1},       {">=", TY_GREATER_EQUAL, P_CMP, 1},
    {"==", TY_EQUAL, P_CMP, 1},        {"!=", TY_NOT_EQUAL, P_CMP, 1},
};
enum { NUM_BINOPS = sizeof binops / sizeof binops[0] };

typedef struct fn1 {
    const char *name;
    ty_ufunc uf;
    int kind; /* 0 exact continuous, 1 libm (APPROX for floats), 2 discontinuous */
} fn1;

static const fn1 fns1[] = {
    {"abs", TY_ABSOLUTE, 0},    {"sign", TY_SIGN, 2},         {"sqrt", TY_SQRT, 0},
    {"cbrt", TY_CBRT, 1},       {"square", TY_SQUARE, 0},     {"reciprocal", TY_RECIPROCAL, 0},
    {"exp", TY_EXP, 1},         {"exp2", TY_EXP2, 1},         {"expm1", TY_EXPM1, 1},
    {"log", TY_LOG, 1},         {"log2", TY_LOG2, 1},         {"log10", TY_LOG10, 1},
    {"log1p", TY_LOG1P, 1},     {"sin", TY_SIN, 1},           {"cos", TY_COS, 1},
    {"tan", TY_TAN, 1},         {"arcsin", TY_ARCSIN, 1},     {"arccos", TY_ARCCOS, 1},
    {"arctan", TY_ARCTAN, 1},   {"sinh", TY_SINH, 1},         {"cosh", TY_COSH, 1},
    {"tanh", TY_TANH, 1},       {"arcsinh", TY_ARCSINH, 1},   {"arccosh", TY_ARCCOSH, 1},
    {"arctanh", TY_ARCTANH, 1}, {"floor", TY_FLOOR, 2},       {"ceil", TY_CEIL, 2},
    {"trunc", TY_TRUNC, 2},     {"rint", TY_RINT, 2},         {"isnan", TY_ISNAN, 2},
    {"isinf", TY_ISINF, 2},     {"isfinite", TY_ISFINITE, 2},
};
enum { NUM_FNS1 = sizeof fns1 / sizeof fns1[0] };

static const fn1 fns2[] = {
    {"arctan2", TY_ARCTAN2, 1}, {"hypot", TY_HYPOT, 1},       {"power", TY_POWER, 1},
    {"fmod", TY_FMOD, 2},       {"copysign", TY_COPYSIGN, 2}, {"minimum", TY_MINIMUM, 0},
    {"maximum", TY_MAXIMUM, 0}, {"fmin", TY_FMIN, 0},         {"fmax", TY_FMAX, 0},
};
enum { NUM_FNS2 = sizeof fns2 / sizeof fns2[0] };

/* Operand mode for a discontinuous operation: EXACT most of the time, so WILD stays rare. */
static int disc_mode(gen *g, int mode) { return chance(&g->r, 0.9) ? mode | M_EXACT : mode; }

/* NEP 50: a weak int literal combined with a strong integer must fit it. */
static int literal_fits(const gx *a, const gx *b) {
    if (a->kind == TY_WEAK_INT && !dt_is_weak(b->kind) && b->kind != FUSOR_BOOL &&
        !dt_is_float(b->kind))
        return fits_int(a->ival, b->kind);
    return 1;
}

/* The class of an operation on operands a (and b) whose result dtype is `res`. */
static int op_class(int opkind, int res, const gx *a, const gx *b) {
    int c = cls_max(a->cls, b ? b->cls : EXACT);
    int float_in = dt_is_float(a->kind) || (b && dt_is_float(b->kind));
    if (opkind == 1 && dt_is_float(res))
        return cls_max(c, APPROX);
    if (opkind == 2 && float_in)
        return cls_disc(c);
    return c;
}

static gx gen_binary(gen *g, int depth, int mode) {
    const binop *op = &binops[rint_in(&g->r, 0, NUM_BINOPS - 1)];
    int sub = op->disc ? disc_mode(g, mode) : mode;
    gx a = gen_expr(g, depth - 1, sub & ~M_STRONG);
    gx b = gen_expr(g, depth - 1, a.lit ? sub | M_STRONG : sub & ~M_STRONG);
    int kinds[2] = {a.kind, b.kind};
    fusor_dtype loop[3];
    /* Two literals would be folded with Python's rules: keep one side typed.  Comparisons
     * take literals of any value (NumPy 2 compares exactly). */
    int ok = !(a.lit && b.lit) && ty_resolve(op->uf, kinds, loop) &&
             (op->prec == P_CMP || (literal_fits(&a, &b) && literal_fits(&b, &a)));
    /* A negative literal exponent of an integer base is a language error. */
    if (ok && op->uf == TY_POWER && !dt_is_float(loop[2]) && b.kind == TY_WEAK_INT && b.ival < 0)
        ok = 0;
    /* Literal divisors of zero are legal but uninteresting; keep them out. */
    if (ok && (op->uf == TY_FLOOR_DIVIDE || op->uf == TY_REMAINDER) && b.kind == TY_WEAK_INT &&
        b.ival == 0)
        ok = 0;
    if (!ok)
        return fail();
    gnode *na, *nb;
    if (op->prec == P_POW) {
        na = operand(g, &a, P_ATOM);
        nb = operand(g, &b, P_UNARY);
    } else if (op->prec == P_CMP) {
        na = operand(g, &a, P_CMP + 1);
        nb = operand(g, &b, P_CMP + 1);
    } else {
        na = operand(g, &a, op->prec);
        nb = operand(g, &b, op->prec + 1);
    }
    int opkind = op->disc ? 2 : (op->uf == TY_POWER ? 1 : 0);
    gx e = mk(node(g, xfmt("\1 %s \2", op->text), na, nb, NULL), loop[2], op->prec,
              a.vary || b.vary, op_class(opkind, loop[2], &a, &b));
    e.lowp = imax(imax(a.lowp, b.lowp), opkind == 1 ? lowp_of(loop[2]) : 0);
    return e;
}

static gx gen_unary(gen *g, int depth, int mode) {
    static const struct {
        const char *t;
        ty_ufunc uf;
    } ops[] = {{"-", TY_NEGATIVE}, {"+", TY_POSITIVE}, {"~", TY_INVERT}, {"-", TY_NEGATIVE}};
    int i = rint_in(&g->r, 0, 3);
    gx a = gen_expr(g, depth - 1, mode | M_STRONG);
    fusor_dtype loop[2];
    int kinds[1] = {a.kind};
    if (a.lit || !ty_resolve(ops[i].uf, kinds, loop))
        return fail();
    gx e = mk(node(g, xfmt("%s\1", ops[i].t), operand(g, &a, P_UNARY), NULL, NULL), loop[1],
              P_UNARY, a.vary, a.cls);
    e.lowp = a.lowp;
    return e;
}

static gx gen_call1(gen *g, int depth, int mode) {
    const fn1 *f = &fns1[rint_in(&g->r, 0, NUM_FNS1 - 1)];
    if (f->kind == 1 && (mode & M_EXACT))
        return fail();
    gx a = gen_expr(g, depth - 1, (f->kind == 2 ? disc_mode(g, mode) : mode) | M_STRONG);
    fusor_dtype loop[2];
    int kinds[1] = {a.kind};
    if (a.lit || !ty_resolve(f->uf, kinds, loop))
        return fail();
    gx e = mk(node(g, xfmt("%s(\1)", f->name), a.n, NULL, NULL), loop[1], P_ATOM, a.vary,
              op_class(f->kind, loop[1], &a, NULL));
    e.lowp = imax(a.lowp, f->kind == 1 ? lowp_of(loop[1]) : 0);
    return e;
}

static gx gen_call2(gen *g, int depth, int mode) {
    const fn1 *f = &fns2[rint_in(&g->r, 0, NUM_FNS2 - 1)];
    if (f->kind == 1 && (mode & M_EXACT))
        return fail();
    int sub = f->kind == 2 ? disc_mode(g, mode) : mode;
    gx a = gen_expr(g, depth - 1, sub & ~M_STRONG);
    gx b = gen_expr(g, depth - 1, a.lit ? sub | M_STRONG : sub & ~M_STRONG);
    int kinds[2] = {a.kind, b.kind};
    fusor_dtype loop[3];
    int ok = !(a.lit && b.lit) && ty_resolve(f->uf, kinds, loop) && literal_fits(&a, &b) &&
             literal_fits(&b, &a);
    if (ok && f->uf == TY_POWER && !dt_is_float(loop[2]) && b.kind == TY_WEAK_INT && b.ival < 0)
        ok = 0;
    if (!ok)
        return fail();
    /* The sign of a NaN that an operation produces is unspecified (IEEE 754 6.3, and LLVM
     * folds it freely: copysign(1.0, f64(u) / f64(u)) becomes 1.0 for unsigned u), so
     * copysign's float sign operand goes through fmax(b, -inf), which maps NaN to -inf and
     * keeps every other value. */
    const char *fmt = f->uf == TY_COPYSIGN && dt_is_float(b.kind) && !b.lit
                          ? "%s(\1, fmax(\2, -inf))"
                          : "%s(\1, \2)";
    gx e = mk(node(g, xfmt(fmt, f->name), a.n, b.n, NULL), loop[2], P_ATOM, a.vary || b.vary,
              op_class(f->kind, loop[2], &a, &b));
    /* copysign is continuous in its first operand and discontinuous in its second. */
    if (f->uf == TY_COPYSIGN)
        e.cls = cls_max(a.cls, cls_disc(b.cls));
    e.lowp = imax(imax(a.lowp, b.lowp), f->kind == 1 ? lowp_of(loop[2]) : 0);
    return e;
}

static gx gen_cast(gen *g, int depth, int mode) {
    int t = rint_in(&g->r, 0, FUSOR_NUM_DTYPES - 1);
    gx a = gen_expr(g, depth - 1, (dt_is_float(t) ? mode : disc_mode(g, mode)) & ~M_STRONG);
    /* Casting a literal: NumPy refuses an int that does not fit and nan/inf to ints. */
    if ((a.kind == TY_WEAK_INT && !fits_int(a.ival, t) && t != FUSOR_BOOL) ||
        (a.kind == TY_WEAK_FLOAT && !dt_is_float(t) && t != FUSOR_BOOL))
        return fail();
    int cls = dt_is_float(a.kind) && !dt_is_float(t) ? cls_disc(a.cls) : a.cls;
    gx e = mk(node(g, xfmt("%s(\1)", dtype_names[t]), a.n, NULL, NULL), t, P_ATOM, a.vary, cls);
    e.lowp = imax(a.lowp, a.cls == APPROX ? lowp_of(t) : 0);
    return e;
}

/* A bool-valued expression (for where's condition and any/all). */
static gx gen_bool(gen *g, int depth, int mode) {
    for (int tries = 0; tries < 8; tries++) {
        gx c = gen_expr(g, depth, mode | M_STRONG);
        if (c.kind == FUSOR_BOOL)
            return c;
        if (tries >= 3 && !c.lit) {
            /* Make it bool: a comparison with a literal, or a cast. */
            int cls = dt_is_float(c.kind) ? cls_disc(c.cls) : c.cls;
            if (chance(&g->r, 0.5))
                return mk(node(g, xfmt("\1 > %d", rint_in(&g->r, 0, 3)), operand(g, &c, P_CMP + 1),
                               NULL, NULL),
                          FUSOR_BOOL, P_CMP, c.vary, cls);
            return mk(node(g, xfmt("bool(\1)"), c.n, NULL, NULL), FUSOR_BOOL, P_ATOM, c.vary, cls);
        }
    }
    gx e = mk(leaf(g, xfmt("%s", chance(&g->r, 0.5) ? "true" : "false")), FUSOR_BOOL, P_ATOM, 0,
              EXACT);
    e.lit = 1;
    return e;
}

static gx gen_where(gen *g, int depth, int mode) {
    /* The condition is converted with != 0 when it is not a bool. */
    gx c = chance(&g->r, 0.75) ? gen_bool(g, depth - 1, disc_mode(g, mode))
                               : gen_expr(g, depth - 1, disc_mode(g, mode) | M_STRONG);
    if (dt_is_float(c.kind))
        c.cls = cls_disc(c.cls);
    gx a = gen_expr(g, depth - 1, mode & ~M_STRONG);
    gx b = gen_expr(g, depth - 1, a.lit ? mode | M_STRONG : mode & ~M_STRONG);
    fusor_dtype res;
    if (c.lit || (a.lit && b.lit) || !ty_result_type(a.kind, b.kind, &res) ||
        !literal_fits(&a, &b) || !literal_fits(&b, &a))
        return fail();
    gx e = mk(node(g, xfmt("where(\1, \2, \3)"), c.n, a.n, b.n), res, P_ATOM,
              c.vary || a.vary || b.vary, cls_max(cls_max(a.cls, b.cls), c.cls));
    e.lowp = imax(imax(a.lowp, b.lowp), cls_max(a.cls, b.cls) == APPROX ? lowp_of(res) : 0);
    return e;
}

/* clip(x, lo, hi) with literal bounds that fit x's dtype (lo <= hi). */
static gx gen_clip(gen *g, int depth, int mode) {
    gx x = gen_expr(g, depth - 1, mode | M_STRONG);
    if (x.lit || x.kind == FUSOR_BOOL)
        return fail();
    char *fmt;
    if (dt_is_float(x.kind)) {
        int l = rint_in(&g->r, -8, 4);
        fmt = xfmt("clip(\1, %.1f, %.2f)", l * 0.5, l * 0.5 + rint_in(&g->r, 0, 12) * 0.25);
    } else {
        int l = dt_is_unsigned(x.kind) ? rint_in(&g->r, 0, 5) : rint_in(&g->r, -6, 5);
        fmt = xfmt("clip(\1, %d, %d)", l, l + rint_in(&g->r, 0, 9));
    }
    gx e = mk(node(g, fmt, x.n, NULL, NULL), x.kind, P_ATOM, x.vary, x.cls);
    e.lowp = x.lowp;
    return e;
}

static gx gen_reduction(gen *g, int depth, int mode) {
    static const struct {
        const char *name;
        int r; /* ty_reduction, or -1 any, -2 all */
    } reds[] = {{"sum", TY_SUM}, {"prod", TY_PROD}, {"min", TY_MIN},
                {"max", TY_MAX}, {"mean", TY_MEAN}, {"any", -1},
                {"all", -2},     {"sum", TY_SUM},   {"mean", TY_MEAN}};
    if (!g->has_arrays || (mode & M_NORED) || g->nred >= 6)
        return fail();
    int i = rint_in(&g->r, 0, 8);
    int r = reds[i].r;
    /* The operand: element-wise (a reduction of a scalar is an error). */
    int sub = (mode & ~M_UNIFORM) | M_STRONG | (g->nred >= 3 ? M_NORED : 0);
    g->nred++;
    gx a = r < 0 && chance(&g->r, 0.75) ? gen_bool(g, depth - 1, sub) : gen_expr(g, depth - 1, sub);
    if (!a.vary || a.lit) {
        g->nred--;
        return fail();
    }
    int res = r < 0 ? FUSOR_BOOL : (int)ty_reduce_dtype((ty_reduction)r, (fusor_dtype)a.kind);
    int cls = a.cls;
    if (r < 0 && dt_is_float(a.kind))
        cls = cls_disc(cls); /* any/all test != 0 */
    gx e = mk(node(g, xfmt("%s(\1)", reds[i].name), a.n, NULL, NULL), res, P_ATOM, 0, cls);
    e.lowp = imax(a.lowp, cls == APPROX ? lowp_of(res) : 0);
    if (dt_is_float(res) && (r == TY_SUM || r == TY_PROD || r == TY_MEAN)) {
        if (g->nfred == GEN_MAX_FRED) {
            g->nred--;
            return fail();
        }
        /* The twin gets this value from the JIT: exact from here on. */
        int j = g->nfred++;
        e.n->red = j;
        g->fred_arg[j] = a.n;
        g->fred_op[j] = r == TY_SUM ? 's' : r == TY_PROD ? 'p' : 'm';
        g->fred_name[j] = reds[i].name;
        g->fred_dtype[j] = res;
        g->fred_cls[j] = a.cls;
        g->fred_lowp[j] = a.lowp;
        e.cls = EXACT;
        e.lowp = 0;
    }
    return e;
}

enum { PR_LEAF, PR_BIN, PR_UN, PR_CALL1, PR_CALL2, PR_CAST, PR_WHERE, PR_CLIP, PR_RED, PR_N };

/* An expression of at most `depth` levels. */
static gx gen_expr(gen *g, int depth, int mode) {
    static const int weights[PR_N] = {
        [PR_LEAF] = 0, [PR_BIN] = 34,  [PR_UN] = 7,   [PR_CALL1] = 18, [PR_CALL2] = 10,
        [PR_CAST] = 7, [PR_WHERE] = 5, [PR_CLIP] = 3, [PR_RED] = 8};
    if (depth > 1 && !chance(&g->r, 0.22)) {
        for (int tries = 0; tries < 12; tries++) {
            int total = 0, w;
            for (int p = 0; p < PR_N; p++)
                total += weights[p];
            w = rint_in(&g->r, 0, total - 1);
            int p = 0;
            while (w >= weights[p])
                w -= weights[p++];
            gx e;
            switch (p) {
            case PR_BIN: e = gen_binary(g, depth, mode); break;
            case PR_UN: e = gen_unary(g, depth, mode); break;
            case PR_CALL1: e = gen_call1(g, depth, mode); break;
            case PR_CALL2: e = gen_call2(g, depth, mode); break;
            case PR_CAST: e = gen_cast(g, depth, mode); break;
            case PR_WHERE: e = gen_where(g, depth, mode); break;
            case PR_CLIP: e = gen_clip(g, depth, mode); break;
            default: e = gen_reduction(g, depth, mode); break;
            }
            if (!e.n || ((mode & M_UNIFORM) && e.vary) || ((mode & M_EXACT) && e.cls != EXACT))
                continue;
            return e;
        }
    }
    /* A leaf; in uniform mode with no uniform variable, a reduction now and then. */
    if ((mode & M_UNIFORM) && g->has_arrays && pick_var(g, mode) < 0 && chance(&g->r, 0.7)) {
        gx e = gen_reduction(g, depth > 2 ? depth : 3, mode);
        if (e.n && !((mode & M_EXACT) && e.cls != EXACT))
            return e;
    }
    return gen_leaf(g, mode);
}

/* ------------------------------------------------------------------ programs */

#define GEN_MAX_IN  4
#define GEN_MAX_REG 3 /* the program's own outputs */
#define GEN_MAX_OUT (GEN_MAX_REG + 2 * GEN_MAX_FRED)

typedef struct gparam {
    char name[16];
    int dtype;
    int is_array;
} gparam;

/*
 * The program's parameters: inputs in[0, nin); outputs out[0, nreg) (its own) then
 * out[nreg, nreg + nfred) (r<j>).  The twin adds the inputs q<j> (scalars of fred_dtype[j])
 * and the outputs s<j> (f64 scalars) after those.
 */
typedef struct gprog {
    char *src, *twin_src;
    int nin, nreg, nfred;
    gparam in[GEN_MAX_IN];
    gparam out[GEN_MAX_OUT];
    int out_cls[GEN_MAX_OUT];
    int out_lowp[GEN_MAX_OUT]; /* APPROX through f32 math: f32's tolerance */
    int fred_op[GEN_MAX_FRED], fred_dtype[GEN_MAX_FRED], fred_cls[GEN_MAX_FRED];
    int fred_lowp[GEN_MAX_FRED];
    int nlets;
    int generic;   /* the inputs' types are left out */
    int decoy;     /* the source holds a second kernel; compile by name */
    char name[16]; /* the kernel's name */
} gprog;

static void gprog_free(gprog *p) {
    free(p->src);
    free(p->twin_src);
}

static void add_var(gen *g, const char *name, int dtype, int vary, const gx *e) {
    gvar *v = &g->vars[g->nvars++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->dtype = dtype;
    v->vary = vary;
    v->cls = e ? e->cls : EXACT;
    v->lowp = e ? e->lowp : 0;
}

/* The declared dtype of an output holding e: mostly e's, or one it casts to safely, or
 * any with an explicit cast D(e) when NumPy would not cast safely. */
static int output_dtype(gen *g, gx *e) {
    int t = e->kind, d = t, c = rint_in(&g->r, 0, 9);
    if (c >= 6) {
        int cands[FUSOR_NUM_DTYPES], n = 0;
        for (int x = 0; x < FUSOR_NUM_DTYPES; x++)
            if (ty_can_cast_safe((fusor_dtype)t, (fusor_dtype)x))
                cands[n++] = x;
        d = cands[rint_in(&g->r, 0, n - 1)];
    } else if (c >= 4) {
        d = rint_in(&g->r, 0, FUSOR_NUM_DTYPES - 1);
    }
    if (!ty_can_cast_safe((fusor_dtype)t, (fusor_dtype)d)) {
        e->n = node(g, xfmt("%s(\1)", dtype_names[d]), e->n, NULL, NULL);
        if (dt_is_float(t) && !dt_is_float(d))
            e->cls = cls_disc(e->cls);
        if (e->cls == APPROX)
            e->lowp = imax(e->lowp, lowp_of(d));
        e->kind = d;
    }
    return d;
}

/* A statement, kept as a tree so that both texts can be printed. */
typedef struct gstmt {
    char *lhs; /* "let t0" or "y1" */
    gnode *rhs;
    int form;
} gstmt;

/* Prints a statement in one of the forms the grammar allows: one per line, several on a
 * line separated by ';', with a trailing comment, or broken across lines inside (...). */
static void print_stmt(FILE *f, const gstmt *s, int twin) {
    char *e = node_text(s->rhs, twin);
    switch (s->form) {
    case 0: fprintf(f, "    %s = (\n        %s\n    )\n", s->lhs, e); break;
    case 1: fprintf(f, "    %s = %s  # %s\n", s->lhs, e, s->lhs); break;
    case 2: fprintf(f, "    %s = %s; ", s->lhs, e); break;
    default: fprintf(f, "    %s = %s\n", s->lhs, e); break;
    }
    free(e);
}

/* An output of the program; returns 0 when no expression of the wanted shape came out. */
static int gen_output(gen *g, gprog *p, gstmt *st, int array) {
    gx e = fail();
    for (int tries = 0; tries < 12; tries++) {
        int depth = rint_in(&g->r, tries < 6 ? 2 : 1, 6);
        e = gen_expr(g, depth, array ? M_STRONG : M_UNIFORM | M_STRONG);
        /* A bare name is a fine output now and then, but not most of the time. */
        int bare = e.n->kid[0] == NULL && e.prec == P_ATOM && !e.lit;
        /* An array output may also be filled with a uniform value. */
        int shape_ok = e.vary == array || (array && !e.lit && chance(&g->r, 0.1));
        if (!dt_is_weak(e.kind) && !e.lit && shape_ok && !(bare && tries < 6 && chance(&g->r, 0.8)))
            break;
        e = fail();
    }
    if (!e.n)
        return 0;
    int j = p->nreg++;
    gparam *o = &p->out[j];
    snprintf(o->name, sizeof o->name, "y%d", j);
    o->is_array = array;
    o->dtype = output_dtype(g, &e);
    p->out_cls[j] = e.cls;
    p->out_lowp[j] = imax(e.lowp, e.cls == APPROX ? lowp_of(o->dtype) : 0);
    st->lhs = xfmt("%s", o->name);
    st->rhs = e.n;
    /* (An array output filled with a uniform value is not read back: whether it then
     * counts as element-wise is not something the generator wants to guess.) */
    if (e.vary == array)
        add_var(g, o->name, o->dtype, array, &e);
    return 1;
}

static void gen_let(gen *g, gprog *p, gstmt *st) {
    gx e = gen_expr(g, rint_in(&g->r, 1, 6), M_STRONG);
    char name[16];
    snprintf(name, sizeof name, "t%d", p->nlets++);
    st->lhs = xfmt("let %s", name);
    st->rhs = e.n;
    add_var(g, name, e.kind, e.vary, &e);
}

static void print_decl(FILE *f, int first, const gparam *d, int typed) {
    fprintf(f, "%s%s", first ? "" : ", ", d->name);
    if (typed)
        fprintf(f, ": %s%s", dtype_names[d->dtype], d->is_array ? "[]" : "");
}

/* The program (twin 0) or its twin (1) as text. */
static char *program_text(const gprog *p, gen *g, const gstmt *st, int nst, int twin) {
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        exit(2);
    if (p->decoy && !twin)
        fprintf(f, "# two kernels\nkernel decoy(a: f64[]) -> (b: f64[]) {\n    b = a\n}\n\n");
    fprintf(f, "kernel %s(", p->name);
    for (int i = 0; i < p->nin; i++)
        print_decl(f, i == 0, &p->in[i], twin || !p->generic);
    for (int j = 0; j < p->nfred && twin; j++)
        fprintf(f, ", q%d: %s", j, dtype_names[p->fred_dtype[j]]);
    fprintf(f, ") -> (");
    for (int j = 0; j < p->nreg + p->nfred; j++)
        print_decl(f, j == 0, &p->out[j], 1);
    for (int j = 0; j < p->nfred && twin; j++)
        fprintf(f, ", s%d: f64", j);
    fprintf(f, ") {\n");
    for (int i = 0; i < nst; i++)
        print_stmt(f, &st[i], twin);
    /* r<j>: the float reductions (the twin computes them from its own operands); s<j>:
     * the sum of the magnitudes of their terms, for the tolerance. */
    for (int j = 0; j < p->nfred; j++) {
        char *arg = node_text(g->fred_arg[j], twin);
        fprintf(f, "    r%d = %s(%s)\n", j, g->fred_name[j], arg);
        if (twin)
            fprintf(f, "    s%d = sum(abs(f64(%s)))\n", j, arg);
        free(arg);
    }
    fprintf(f, "}\n");
    fclose(f);
    return s;
}

/* A whole kernel, and its twin, from the seed. */
static void gen_program(uint64_t seed, gprog *p) {
    gen G;
    memset(&G, 0, sizeof G);
    memset(p, 0, sizeof *p);
    gen *g = &G;
    g->r.s = seed;
    p->nin = rint_in(&g->r, 1, GEN_MAX_IN);
    int scalars_only = chance(&g->r, 0.06);
    for (int i = 0; i < p->nin; i++) {
        gparam *in = &p->in[i];
        snprintf(in->name, sizeof in->name, "x%d", i);
        in->dtype = rint_in(&g->r, 0, FUSOR_NUM_DTYPES - 1);
        in->is_array = !scalars_only && (i == 0 || chance(&g->r, 0.65));
        if (in->is_array)
            g->has_arrays = 1;
        add_var(g, in->name, in->dtype, in->is_array, NULL);
    }
    gstmt st[2 + GEN_MAX_REG + 1];
    int nst = 0;
    int lets_left = rint_in(&g->r, 0, 2), outs_left = rint_in(&g->r, 1, GEN_MAX_REG);
    while (lets_left + outs_left > 0) {
        if (lets_left && (!outs_left || chance(&g->r, 0.5))) {
            gen_let(g, p, &st[nst++]);
            lets_left--;
        } else {
            int array = g->has_arrays && chance(&g->r, 0.65);
            if (gen_output(g, p, &st[nst], array) || gen_output(g, p, &st[nst], !array))
                nst++;
            outs_left--;
        }
    }
    if (p->nreg == 0 && gen_output(g, p, &st[nst], g->has_arrays))
        nst++;
    for (int i = 0; i < nst; i++)
        st[i].form = rint_in(&g->r, 0, 19);
    p->nfred = g->nfred;
    for (int j = 0; j < p->nfred; j++) {
        gparam *o = &p->out[p->nreg + j];
        snprintf(o->name, sizeof o->name, "r%d", j);
        o->dtype = g->fred_dtype[j];
        o->is_array = 0;
        p->out_cls[p->nreg + j] = g->fred_cls[j];
        p->fred_op[j] = g->fred_op[j];
        p->fred_dtype[j] = g->fred_dtype[j];
        p->fred_cls[j] = g->fred_cls[j];
        p->fred_lowp[j] = g->fred_lowp[j];
    }
    p->generic = chance(&g->r, 0.08);
    p->decoy = chance(&g->r, 0.08);
    snprintf(p->name, sizeof p->name, "k%llu", (unsigned long long)(seed % 100000));
    p->src = program_text(p, g, st, nst, 0);
    p->twin_src = program_text(p, g, st, nst, 1);
    for (int i = 0; i < nst; i++)
        free(st[i].lhs);
    for (int i = 0; i < g->npool; i++) {
        free(g->pool[i]->fmt);
        free(g->pool[i]);
    }
    free(g->pool);
}
