/*
 * test_numeric_edges.c — NaN, ±inf, ±0, subnormals, integer overflow and integer division
 * by zero through the whole public path (compile, launch, the pool), on every back end this
 * build has: the JIT with 1 and with 4 threads, and the reference interpreter.
 *
 * Part 1 checks documented results (docs/language.md) against values written here, not
 * computed by fusor: `7 // 0` is 0, `MIN // -1` is MIN, integers wrap, float to int
 * saturates and NaN gives 0, 1/0 is inf, subnormals are not flushed, NaN propagates
 * through min/max/sum across blocks and threads.  Each case is an array of 40000 elements
 * (above the pool's threshold) repeating a short pattern, so every block and thread meets
 * the special values.  Part 2 runs kernels of many operations over all special pairs and
 * requires the JIT and the interpreter to agree bit for bit (NaN matching NaN); only
 * correctly rounded operations are used there (pow, exp, sin... may differ by an ulp
 * when vectorised, which test_codegen_interp allows for).
 * tests/unit/test_codegen_interp.c does the same per IR op below the API.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "scheduler.h"

enum { N = 40000 };

static fusor_context *ctx;

typedef enum backend { JIT1, JIT4, REF, NBACKENDS } backend;
static const char *const backend_name[] = {"jit, 1 thread", "jit, 4 threads", "interpreter"};

static fusor_status run(fusor_kernel *k, fusor_args *a, backend b) {
    fusor_set_num_threads(b == JIT4 ? 4 : 1);
    return b == REF ? sched_launch_reference(k, a) : fusor_launch(k, a);
}

static int same_f64(double a, double b) {
    return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* ---------------------------------------------------------- part 1: documented values */

/* A two-input element-wise case: out = f(a, b) for each pattern entry. */
typedef struct ew_case {
    const char *expr; /* a ufunc over a and b */
    fusor_dtype dt;   /* of a and b */
    int n;            /* pattern length */
    double a[8], b[8];
    fusor_dtype out_dt;
    double want[8]; /* exact expected values (as doubles: exact for i32/u8 and floats) */
} ew_case;

static void store(void *p, fusor_dtype dt, double v) {
    switch (dt) {
    case FUSOR_I32: *(int32_t *)p = (int32_t)v; break;
    case FUSOR_U8: *(uint8_t *)p = (uint8_t)v; break;
    case FUSOR_I64: *(int64_t *)p = (int64_t)v; break;
    case FUSOR_F32: *(float *)p = (float)v; break;
    default: *(double *)p = v; break;
    }
}

static double load(const void *p, fusor_dtype dt) {
    switch (dt) {
    case FUSOR_I32: return *(const int32_t *)p;
    case FUSOR_U8: return *(const uint8_t *)p;
    case FUSOR_I64: return (double)*(const int64_t *)p;
    case FUSOR_BOOL: return *(const uint8_t *)p;
    case FUSOR_F32: return *(const float *)p;
    default: return *(const double *)p;
    }
}

static void elementwise(const ew_case *c) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_ufunc_create(ctx, c->expr, &k));
    if (!k)
        return;
    size_t item = fusor_dtype_size(c->dt);
    char *a = malloc(N * item), *b = malloc(N * item);
    for (int i = 0; i < N; i++) {
        store(a + i * item, c->dt, c->a[i % c->n]);
        store(b + i * item, c->dt, c->b[i % c->n]);
    }
    int64_t n = N;
    fusor_array *A = NULL, *B = NULL;
    fusor_array_wrap(ctx, a, c->dt, 1, &n, NULL, &A);
    fusor_array_wrap(ctx, b, c->dt, 1, &n, NULL, &B);
    for (backend be = 0; be < NBACKENDS; be++) {
        fusor_args *args = NULL;
        fusor_array *out = NULL;
        CHECK_OK(fusor_args_create(k, &args));
        CHECK_OK(fusor_args_set_array(args, "a", A));
        if (fusor_kernel_num_params(k) == 3)
            CHECK_OK(fusor_args_set_array(args, "b", B));
        CHECK_OK(run(k, args, be));
        CHECK_OK(fusor_args_get_array(args, "out", &out));
        if (out) {
            CHECK_MSG(fusor_array_dtype(out) == c->out_dt, "%s: result dtype %s", c->expr,
                      fusor_dtype_name(fusor_array_dtype(out)));
            size_t oi = fusor_dtype_size(fusor_array_dtype(out));
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++)
                if (!same_f64(load((char *)fusor_array_data(out) + i * oi, c->out_dt),
                              c->want[i % c->n]))
                    bad = i;
            CHECK_MSG(bad < 0, "%s (%s) at element %d: a=%g b=%g gave %.17g, expected %.17g",
                      c->expr, backend_name[be], bad, c->a[bad % c->n], c->b[bad % c->n],
                      load((char *)fusor_array_data(out) + bad * oi, c->out_dt),
                      c->want[bad % c->n]);
        }
        fusor_array_destroy(out);
        fusor_args_destroy(args);
    }
    fusor_array_destroy(A);
    fusor_array_destroy(B);
    free(a);
    free(b);
    fusor_kernel_destroy(k);
}

static void documented_elementwise(void) {
    const double I32MIN = -2147483648.0, I32MAX = 2147483647.0;
    const double sub = 0x1p-1073, sub_min = 0x1p-1074, f32sub = 0x1p-148;
    const ew_case cases[] = {
        /* integer division and remainder by zero, MIN // -1, floor semantics */
        {"a // b",
         FUSOR_I32,
         6,
         {7, -7, 0, I32MIN, -7, 7},
         {0, 0, 0, -1, 2, -2},
         FUSOR_I32,
         {0, 0, 0, I32MIN, -4, -4}},
        {"a % b",
         FUSOR_I32,
         6,
         {7, -7, 0, I32MIN, -7, 7},
         {0, 0, 0, -1, 2, -2},
         FUSOR_I32,
         {0, 0, 0, 0, 1, -1}},
        {"a // b", FUSOR_U8, 3, {7, 255, 0}, {0, 0, 3}, FUSOR_U8, {0, 0, 0}},
        /* wrapping */
        {"a + b",
         FUSOR_I32,
         3,
         {I32MAX, I32MIN, -1},
         {1, -1, I32MIN},
         FUSOR_I32,
         {I32MIN, I32MAX, I32MAX}},
        {"a * b", FUSOR_I32, 2, {65536, I32MIN}, {65536, -1}, FUSOR_I32, {0, I32MIN}},
        {"a + b", FUSOR_U8, 3, {200, 0, 255}, {100, 0, 1}, FUSOR_U8, {44, 0, 0}},
        {"a - b", FUSOR_U8, 2, {0, 3}, {1, 5}, FUSOR_U8, {255, 254}},
        {"-a", FUSOR_I32, 2, {I32MIN, 5}, {0, 0}, FUSOR_I32, {I32MIN, -5}},
        {"abs(a)", FUSOR_I32, 2, {I32MIN, -5}, {0, 0}, FUSOR_I32, {I32MIN, 5}},
        /* integer powers with negative exponents at run time */
        {"a ** b",
         FUSOR_I32,
         5,
         {2, 1, -1, -1, 0},
         {-1, -5, -3, -2, 0},
         FUSOR_I32,
         {0, 1, -1, 1, 1}},
        /* shifts by the width or more */
        {"a << b", FUSOR_I32, 3, {1, 1, -1}, {31, 32, 40}, FUSOR_I32, {I32MIN, 0, 0}},
        {"a >> b", FUSOR_I32, 3, {-8, -8, 8}, {1, 40, 40}, FUSOR_I32, {-4, -1, 0}},
        /* floats: IEEE and NumPy */
        {"a / b",
         FUSOR_F64,
         6,
         {1, -1, 0, -0.0, INFINITY, 1},
         {0, 0, 0, 1, INFINITY, -0.0},
         FUSOR_F64,
         {INFINITY, -INFINITY, NAN, -0.0, NAN, -INFINITY}},
        {"a // b",
         FUSOR_F64,
         4,
         {1, -1, 0, 7},
         {0, 0, 0, -2},
         FUSOR_F64,
         {INFINITY, -INFINITY, NAN, -4}},
        {"a % b", FUSOR_F64, 4, {1, -7, 7, -0.0}, {0, 2, -2, 5}, FUSOR_F64, {NAN, 1, -1, 0.0}},
        {"fmod(a, b)", FUSOR_F64, 3, {1, -7, 7}, {0, 2, -2}, FUSOR_F64, {NAN, -1, 1}},
        {"a - b",
         FUSOR_F64,
         4,
         {INFINITY, -0.0, 0.0, -0.0},
         {INFINITY, 0.0, 0.0, -0.0},
         FUSOR_F64,
         {NAN, -0.0, 0.0, 0.0}},
        {"a * b", FUSOR_F64, 3, {0, -0.0, NAN}, {INFINITY, 5, 0}, FUSOR_F64, {NAN, -0.0, NAN}},
        {"sqrt(a) + log(b)",
         FUSOR_F64,
         3,
         {-1, 4, -0.0},
         {1, 0, -1},
         FUSOR_F64,
         {NAN, -INFINITY, NAN}},
        {"minimum(a, b)",
         FUSOR_F64,
         3,
         {NAN, 1, 2},
         {1, NAN, -INFINITY},
         FUSOR_F64,
         {NAN, NAN, -INFINITY}},
        {"fmax(a, b)", FUSOR_F64, 3, {NAN, 1, NAN}, {1, NAN, NAN}, FUSOR_F64, {1, 1, NAN}},
        {"a < b", FUSOR_F64, 3, {NAN, 1, NAN}, {1, NAN, NAN}, FUSOR_BOOL, {0, 0, 0}},
        {"a != b", FUSOR_F64, 2, {NAN, 1}, {NAN, 1}, FUSOR_BOOL, {1, 0}},
        /* subnormals are kept, not flushed to zero */
        {"a * b",
         FUSOR_F64,
         4,
         {sub, sub_min, sub, DBL_MIN},
         {0.5, 0.5, 2, 0.5},
         FUSOR_F64,
         {sub_min, 0, 0x1p-1072, 0x1p-1023}},
        {"a + b", FUSOR_F64, 2, {sub_min, -sub_min}, {sub_min, sub_min}, FUSOR_F64, {0x1p-1073, 0}},
        {"a * b", FUSOR_F32, 2, {f32sub, 0x1p-149}, {0.5, 0.5}, FUSOR_F32, {0x1p-149, 0}},
        /* float to int: truncation, saturation, NaN gives 0 */
        {"i32(a)",
         FUSOR_F64,
         6,
         {NAN, 1e10, -1e10, -2.7, INFINITY, -0.0},
         {0},
         FUSOR_I32,
         {0, I32MAX, I32MIN, -2, I32MAX, 0}},
        {"u8(a)", FUSOR_F64, 4, {-1, 300, 255.9, NAN}, {0}, FUSOR_U8, {0, 255, 255, 0}},
        {"bool(a)", FUSOR_F64, 3, {NAN, -0.0, sub_min}, {0}, FUSOR_BOOL, {1, 0, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        elementwise(&cases[i]);
}

/* The ufunc `expr` reduced over x[0..N) on every backend must give want (what: the case,
 * for the message). */
static void reduce_on_backends(const char *expr, double *x, double want, const char *what) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_ufunc_create(ctx, expr, &k));
    if (!k)
        return;
    int64_t n = N;
    fusor_array *X = NULL;
    CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &X));
    for (backend be = 0; be < NBACKENDS; be++) {
        fusor_args *a = NULL;
        double got = -12345;
        CHECK_OK(fusor_args_create(k, &a));
        CHECK_OK(fusor_args_set_array(a, "a", X));
        CHECK_OK(run(k, a, be));
        CHECK_OK(fusor_args_get_f64(a, "out", &got));
        CHECK_MSG(same_f64(got, want), "%s (%s) %s: %.17g, expected %.17g", expr, backend_name[be],
                  what, got, want);
        fusor_args_destroy(a);
    }
    fusor_array_destroy(X);
    fusor_kernel_destroy(k);
}

/* A reduction of a pattern placed at chosen positions of an otherwise plain array. */
static void reduction(const char *expr, double fill, double special, int64_t where, double want) {
    static double x[N];
    for (int i = 0; i < N; i++)
        x[i] = fill;
    if (where >= 0)
        x[where] = special;
    char what[128];
    snprintf(what, sizeof what, "with %g at %lld among %g", special, (long long)where, fill);
    reduce_on_backends(expr, x, want, what);
}

static void documented_reductions(void) {
    /* NaN anywhere — first element, a later block, the last element — wins */
    const int64_t places[] = {0, 4097, 20000, N - 1};
    for (int p = 0; p < 4; p++) {
        reduction("max(a)", 1.0, NAN, places[p], NAN);
        reduction("min(a)", 1.0, NAN, places[p], NAN);
        reduction("sum(a)", 1.0, NAN, places[p], NAN);
        reduction("prod(a)", 1.0, NAN, places[p], NAN);
        reduction("any(a)", 0.0, NAN, places[p], 1); /* nan is true */
        reduction("max(a)", -INFINITY, INFINITY, places[p], INFINITY);
        reduction("min(a)", 7.0, -INFINITY, places[p], -INFINITY);
        reduction("all(a)", 1.0, -0.0, places[p], 0); /* -0.0 is false */
    }
    reduction("sum(a)", INFINITY, -INFINITY, 30000, NAN);
    reduction("sum(a)", 0x1p-1074, 0x1p-1074, -1, (double)N * 0x1p-1074); /* exact, no flush */
    reduction("sum(a)", -0.0, -0.0, -1, 0.0); /* NumPy's add.reduce starts from +0.0 */
    reduction("prod(a)", 1.0, -0.0, 123, -0.0);
    reduction("min(a)", INFINITY, INFINITY, -1, INFINITY);
    reduction("mean(a)", 1e308, 1e308, -1, INFINITY); /* the sum overflows, as in NumPy */
}

/* A float max or min whose extreme is a zero is the last zero's, sign included, as NumPy's
 * sequential fold gives: +0 then -0 is -0, -0 then +0 is +0, wherever the two sit (one
 * block, different blocks and threads).  The JIT runs such a pass first without the zero
 * tag and again with it when the result is a zero: this is that second run. */
static void zero_extremes(void) {
    static double x[N];
    const int64_t at[][2] = {{1, 2}, {10, N - 2}, {4097, 20000}};
    for (int mx = 0; mx < 2; mx++)
        for (size_t c = 0; c < sizeof at / sizeof at[0]; c++)
            for (int order = 0; order < 2; order++) {
                for (int i = 0; i < N; i++)
                    x[i] = mx ? -1.0 - (i % 7) : 1.0 + (i % 7);
                x[at[c][0]] = order ? -0.0 : 0.0;
                x[at[c][1]] = order ? 0.0 : -0.0;
                double want = order ? 0.0 : -0.0; /* the later zero */
                char what[96];
                snprintf(what, sizeof what, "zeros at %lld and %lld", (long long)at[c][0],
                         (long long)at[c][1]);
                reduce_on_backends(mx ? "max(a)" : "min(a)", x, want, what);
            }
}

/* --------------------------------------------------- part 2: JIT vs the interpreter */

static void compare_backends(const char *expr, fusor_dtype dt) {
    static const double fspecial[] = {0.0,      -0.0,      1.0,       -1.0, 0.5,    -2.5,
                                      INFINITY, -INFINITY, NAN,       3.0,  1e-310, -1e-310,
                                      1e300,    -7.25,     0x1p-1074, 2.0};
    static const double ispecial[] = {0,  1,  -1, 2,  -2, -2147483648.0, 2147483647.0, 7, 31,
                                      32, 33, 3,  -3, 5,  255,           128};
    enum { NS = 16 };
    size_t item = fusor_dtype_size(dt);
    char *a = malloc(N * item), *b = malloc(N * item);
    for (int i = 0; i < N; i++) {
        const double *sp = dt == FUSOR_F64 || dt == FUSOR_F32 ? fspecial : ispecial;
        store(a + i * item, dt, sp[i % NS]);
        store(b + i * item, dt, sp[(i / NS) % NS]);
    }
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_ufunc_create(ctx, expr, &k));
    int64_t n = N;
    fusor_array *A = NULL, *B = NULL, *out[NBACKENDS] = {NULL};
    fusor_array_wrap(ctx, a, dt, 1, &n, NULL, &A);
    fusor_array_wrap(ctx, b, dt, 1, &n, NULL, &B);
    for (backend be = 0; k && be < NBACKENDS; be++) {
        fusor_args *args = NULL;
        CHECK_OK(fusor_args_create(k, &args));
        CHECK_OK(fusor_args_set_array(args, "a", A));
        CHECK_OK(fusor_args_set_array(args, "b", B));
        CHECK_OK(run(k, args, be));
        CHECK_OK(fusor_args_get_array(args, "out", &out[be]));
        fusor_args_destroy(args);
    }
    if (out[JIT1] && out[JIT4] && out[REF]) {
        fusor_dtype od = fusor_array_dtype(out[REF]);
        size_t oi = fusor_dtype_size(od);
        for (backend be = JIT1; be <= JIT4; be++) {
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++) {
                const char *g = (char *)fusor_array_data(out[be]) + i * oi;
                const char *w = (char *)fusor_array_data(out[REF]) + i * oi;
                if (memcmp(g, w, oi) && !(isnan(load(g, od)) && isnan(load(w, od))))
                    bad = i;
            }
            CHECK_MSG(bad < 0, "%s over %s (%s) differs from the interpreter at %d", expr,
                      fusor_dtype_name(dt), backend_name[be], bad);
        }
    }
    for (int be = 0; be < NBACKENDS; be++)
        fusor_array_destroy(out[be]);
    fusor_array_destroy(A);
    fusor_array_destroy(B);
    fusor_kernel_destroy(k);
    free(a);
    free(b);
}

int main(void) {
    setenv("FUSOR_CACHE", "0", 1);
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    documented_elementwise();
    documented_reductions();
    zero_extremes();
    const char *fexprs[] = {"a // b + a % b * 3 - fmod(a, b)",
                            "where(a < b, minimum(a, b), fmax(a, b)) * copysign(1.0, b)",
                            "sqrt(abs(a)) / b + floor(a) - ceil(b) + trunc(a / 3)",
                            "i32(a) + i32(b * 1e9)", "square(a) - b * b + reciprocal(b)"};
    const char *iexprs[] = {"a // b + a % b", "(a << b) ^ (a >> b)", "a * b - -a + abs(b)",
                            "a ** b", "f64(a) / b"};
    for (int i = 0; i < 5; i++) {
        compare_backends(fexprs[i], FUSOR_F64);
        compare_backends(fexprs[i], FUSOR_F32);
        compare_backends(iexprs[i], FUSOR_I32);
        compare_backends(iexprs[i], FUSOR_U8);
    }
    fusor_set_num_threads(0);
    fusor_context_destroy(ctx);
    return check_done();
}
