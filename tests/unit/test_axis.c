/*
 * test_axis.c — axis reductions and gufunc named dimensions through the public path.
 *
 *   fixtures   every case of tests/fixtures/axis (scripts/gen_axis_fixtures.py: NumPy's
 *              results for every reduction, several dtypes, axes 0/1/-1 and tuples on 2-D
 *              and 3-D arrays, keepdims, empty axes, loop dimensions, several outputs) run
 *              by the reference interpreter and by the JIT with 1 and 3 threads;
 *   random     the JIT against the interpreter on random inputs with poisoned, strided
 *              outputs; thread counts 1, 2 and 3 must agree bit for bit;
 *   errors     language errors (line:column and the parameter) and launch errors (the
 *              argument and the dimension), aliasing, placement.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"
#include "scheduler.h"

static fusor_context *ctx;

/* A NaN with a payload no computation here produces: an unwritten element keeps it. */
static const uint64_t POISON = 0x7ff4dead0000beefull;

static int is_float(fusor_dtype t) { return t == FUSOR_F32 || t == FUSOR_F64; }

/* Element i of a C-contiguous array as a double (floats) or its bits (others). */
static double get_f(const fusor_array *a, int64_t i) {
    const char *p = (const char *)fusor_array_data(a);
    if (fusor_array_dtype(a) == FUSOR_F32)
        return ((const float *)p)[i];
    return ((const double *)p)[i];
}

static int64_t get_i(const fusor_array *a, int64_t i) {
    const char *p = (const char *)fusor_array_data(a);
    switch (fusor_array_dtype(a)) {
    case FUSOR_BOOL:
    case FUSOR_U8: return ((const uint8_t *)p)[i];
    case FUSOR_I8: return ((const int8_t *)p)[i];
    case FUSOR_I16: return ((const int16_t *)p)[i];
    case FUSOR_U16: return ((const uint16_t *)p)[i];
    case FUSOR_I32: return ((const int32_t *)p)[i];
    case FUSOR_U32: return ((const uint32_t *)p)[i];
    default: return ((const int64_t *)p)[i];
    }
}

/* Whether got equals want: shape, dtype, and values exactly or within rtol. */
static int same_array(const char *what, const fusor_array *got, const fusor_array *want,
                      double rtol) {
    if (fusor_array_dtype(got) != fusor_array_dtype(want) ||
        fusor_array_ndim(got) != fusor_array_ndim(want)) {
        CHECK_MSG(0, "%s: dtype %s ndim %d, want %s ndim %d", what,
                  fusor_dtype_name(fusor_array_dtype(got)), fusor_array_ndim(got),
                  fusor_dtype_name(fusor_array_dtype(want)), fusor_array_ndim(want));
        return 0;
    }
    for (int d = 0; d < fusor_array_ndim(got); d++)
        if (fusor_array_shape(got)[d] != fusor_array_shape(want)[d]) {
            CHECK_MSG(0, "%s: dimension %d is %lld, want %lld", what, d,
                      (long long)fusor_array_shape(got)[d], (long long)fusor_array_shape(want)[d]);
            return 0;
        }
    int64_t n = fusor_array_size(want);
    for (int64_t i = 0; i < n; i++) {
        int ok;
        if (is_float(fusor_array_dtype(want))) {
            double g = get_f(got, i), w = get_f(want, i);
            ok = (isnan(g) && isnan(w)) || g == w ||
                 (rtol > 0 && fabs(g - w) <= rtol * (fabs(w) > 1 ? fabs(w) : 1));
            if (!ok)
                CHECK_MSG(0, "%s: element %lld is %.17g, want %.17g", what, (long long)i, g, w);
        } else {
            ok = get_i(got, i) == get_i(want, i);
            if (!ok)
                CHECK_MSG(0, "%s: element %lld is %lld, want %lld", what, (long long)i,
                          (long long)get_i(got, i), (long long)get_i(want, i));
        }
        if (!ok)
            return 0;
    }
    check_passed++;
    return 1;
}

/* ------------------------------------------------------------------ fixtures */

enum { REFERENCE, JIT1, JIT3, UNFUSED };

static void run_fixture(const char *dir, const char *name, const char *check, const char *src) {
    fusor_kernel *k = NULL;
    fusor_status st = fusor_kernel_compile(ctx, src, name, NULL, &k);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", name, fusor_last_error());
    if (st != FUSOR_OK)
        return;
    int np = fusor_kernel_num_params(k);
    fusor_array *in[16] = {0}, *want[16] = {0};
    char path[2400];
    for (int i = 0; i < np && i < 16; i++) {
        fusor_param_info pi;
        CHECK_OK(fusor_kernel_param(k, i, &pi));
        snprintf(path, sizeof path, "%s/%s.%s.npy", dir, name, pi.name);
        if (pi.is_output && !strncmp(check, "error:", 6))
            continue;
        CHECK_OK(fusor_npy_load(ctx, path, pi.is_output ? &want[i] : &in[i]));
    }
    double rtol = strcmp(check, "exact") ? atof(check) : 0;
    for (int mode = REFERENCE; mode <= UNFUSED; mode++) {
        fusor_set_num_threads(mode == JIT3 ? 3 : mode == UNFUSED ? 2 : 1);
        fusor_args *args;
        CHECK_OK(fusor_args_create(k, &args));
        for (int i = 0; i < np; i++)
            if (in[i]) {
                fusor_param_info pi;
                fusor_kernel_param(k, i, &pi);
                CHECK_OK(fusor_args_set_array(args, pi.name, in[i]));
            }
        st = mode == REFERENCE ? sched_launch_reference(k, args)
             : mode == UNFUSED ? fusor_launch_unfused(k, args)
                               : fusor_launch(k, args);
        char what[256];
        snprintf(what, sizeof what, "%s (%s)", name,
                 mode == REFERENCE ? "interpreter"
                 : mode == JIT1    ? "JIT, 1 thread"
                 : mode == JIT3    ? "JIT, 3 threads"
                                   : "unfused, 2 threads");
        if (!strncmp(check, "error:", 6)) {
            CHECK_MSG(!strcmp(fusor_status_name(st), check + 6), "%s: %s, want %s", what,
                      fusor_status_name(st), check + 6);
            CHECK_MSG(strstr(fusor_last_error(), "'x'") != NULL, "%s: %s", what,
                      fusor_last_error());
        } else {
            CHECK_MSG(st == FUSOR_OK, "%s: %s", what, fusor_last_error());
            for (int i = 0; st == FUSOR_OK && i < np; i++) {
                if (!want[i])
                    continue;
                fusor_param_info pi;
                fusor_kernel_param(k, i, &pi);
                char w2[300];
                snprintf(w2, sizeof w2, "%s output %s", what, pi.name);
                if (fusor_array_ndim(want[i]) == 0 && fusor_array_dtype(want[i]) == FUSOR_I64) {
                    double v = 0;
                    CHECK_OK(fusor_args_get_f64(args, pi.name, &v));
                    CHECK_MSG(v == (double)get_i(want[i], 0), "%s: %g", w2, v);
                    continue;
                }
                fusor_array *got = NULL;
                CHECK_OK(fusor_args_get_array(args, pi.name, &got));
                if (got)
                    same_array(w2, got, want[i], rtol);
                fusor_array_destroy(got);
            }
        }
        fusor_args_destroy(args);
    }
    for (int i = 0; i < 16; i++) {
        fusor_array_destroy(in[i]);
        fusor_array_destroy(want[i]);
    }
    fusor_kernel_destroy(k);
}

static void test_fixtures(void) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/axis", FUSOR_SOURCE_DIR);
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    char *text = check_read_file(path, NULL);
    REQUIRE_VOID(text != NULL);
    int ncases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        REQUIRE_VOID(tab1 && tab2);
        *tab1 = *tab2 = 0;
        char *src = tab2 + 1; /* "\n" written as backslash-n */
        for (char *p = src; (p = strstr(p, "\\n"));) {
            *p = ' ';
            p[1] = '\n';
        }
        run_fixture(dir, line, tab1 + 1, src);
        ncases++;
    }
    CHECK_MSG(ncases > 250, "only %d fixture cases", ncases);
    printf("fixtures: %d cases\n", ncases);
    free(text);
    fusor_set_num_threads(0);
}

/* ------------------------------------------------------------------ random */

static uint64_t rng_state = 0x1234567;
static double rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 4 - 2;
}

/* Runs `src` on x (rows x cols f64, plus an f64 vector w of cols) with its one array output
 * `y` of shape yshape bound to a strided, poisoned buffer, by `mode` (REFERENCE, UNFUSED,
 * else the fused JIT); returns the values in C order (malloc'd). */
static double *run_random(const char *src, int mode, int threads, const double *x, int rows,
                          int cols, const double *w, int yndim, const int64_t *yshape) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_kernel_compile(ctx, src, "rand.fu", NULL, &k));
    if (!k)
        return NULL;
    int64_t xs[2] = {rows, cols}, ws[1] = {cols};
    fusor_array *X, *W, *Y;
    CHECK_OK(fusor_array_wrap(ctx, (void *)x, FUSOR_F64, 2, xs, NULL, &X));
    CHECK_OK(fusor_array_wrap(ctx, (void *)w, FUSOR_F64, 1, ws, NULL, &W));
    int64_t n = 1;
    for (int d = 0; d < yndim; d++)
        n *= yshape[d];
    /* Every other element: a stride of 16 bytes along the last dimension. */
    uint64_t *ybuf = malloc(sizeof(uint64_t) * (size_t)(2 * n + 1));
    for (int64_t i = 0; i < 2 * n + 1; i++)
        ybuf[i] = POISON;
    int64_t ystr[2];
    ystr[yndim - 1] = 16;
    if (yndim == 2)
        ystr[0] = 16 * yshape[1];
    CHECK_OK(fusor_array_wrap(ctx, ybuf, FUSOR_F64, yndim, yshape, ystr, &Y));
    fusor_args *args;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_array(args, "x", X));
    if (strstr(src, "w:"))
        CHECK_OK(fusor_args_set_array(args, "w", W));
    CHECK_OK(fusor_args_set_array(args, "y", Y));
    fusor_set_num_threads(threads);
    CHECK_OK(mode == REFERENCE ? sched_launch_reference(k, args)
             : mode == UNFUSED ? fusor_launch_unfused(k, args)
                               : fusor_launch(k, args));
    if (mode != REFERENCE && threads > 1 && (int64_t)rows * cols >= 1 << 16)
        CHECK_MSG(fusor_args_last_threads(args) > 1, "%s ran on %d thread", src,
                  fusor_args_last_threads(args));
    double *out = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        memcpy(&out[i], &ybuf[2 * i], sizeof(double));
    uint64_t gap;
    memcpy(&gap, &ybuf[1], sizeof gap);
    CHECK_MSG(n < 1 || gap == POISON, "%s wrote between the strided elements", src);
    fusor_args_destroy(args);
    fusor_array_destroy(X);
    fusor_array_destroy(W);
    fusor_array_destroy(Y);
    free(ybuf);
    fusor_kernel_destroy(k);
    fusor_set_num_threads(0);
    return out;
}

static void test_random(void) {
    static const struct {
        const char *src;
        int per_row; /* output shape: (rows,) when 1, (cols,) when 0, (rows, cols) when 2 */
        double rtol; /* JIT against the interpreter (float sums group differently) */
    } cases[] = {
        {"kernel k(x: f64[n, m]) -> (y: f64[n]) { y = sum(x, axis=1) }", 1, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[m]) { y = sum(x, axis=0) }", 0, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[n]) { y = max(x * x - 1, axis=-1) }", 1, 0},
        /* sin: libm in the interpreter, the vector library (<= 1 ulp) in contiguous code */
        {"kernel k(x: f64[n, m]) -> (y: f64[m]) { y = min(sin(x), axis=0) }", 0, 1e-15},
        {"kernel k(x: f64[n, k], w: f64[k]) -> (y: f64[n]) { y = sum(x * w, axis=-1) }", 1, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[n, m]) { y = x / sum(x * x, axis=1, keepdims=true) }",
         2, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[n, m]) { y = exp(x - max(x, axis=0)) }", 2, 0},
        {"kernel k(x: f64[n, m]) -> (y: f64[n]) { y = f64(sum(i64(x * 100), axis=1)) }", 1, 0},
        {"kernel k(x: f64[n, m]) -> (y: f64[m]) { y = mean(x, axis=0) + f64(any(x > 1.9, axis=0)) "
         "}",
         0, 1e-12},
        /* whole-array reductions beside axis ones: over all axes, a 0-d array */
        {"kernel k(x: f64[n, m]) -> (y: f64[n, m]) { y = x - mean(x) + max(x, axis=0) }", 2,
         1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[n]) { y = sum(x, axis=1) / sum(x * x) }", 1, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[m]) { y = min(x, axis=0) - min(x) }", 0, 0},
        /* an input broadcast along the reduced axis (rows of one value per row), and along
         * the rows of an outer axis's row-by-row path */
        {"kernel k(x: f64[n, m]) -> (y: f64[n]) { y = sum(exp(x - max(x, axis=1, "
         "keepdims=true)), axis=1) }",
         1, 1e-12},
        {"kernel k(x: f64[n, m]) -> (y: f64[m]) { y = sum(x * mean(x, axis=1, keepdims=true), "
         "axis=0) }",
         0, 1e-10},
    };
    static const int shapes[][2] = {{1, 1}, {3, 7}, {17, 5}, {300, 301}, {2, 9000}, {9000, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int rows = shapes[s][0], cols = shapes[s][1];
            double *x = malloc(sizeof(double) * (size_t)rows * (size_t)cols);
            double *w = malloc(sizeof(double) * (size_t)cols);
            for (int i = 0; i < rows * cols; i++)
                x[i] = rnd();
            for (int i = 0; i < cols; i++)
                w[i] = rnd();
            int64_t ys[2] = {cases[c].per_row == 0 ? cols : rows, cols};
            int yndim = cases[c].per_row == 2 ? 2 : 1;
            int64_t n = yndim == 2 ? (int64_t)rows * cols : ys[0];
            double *ref = run_random(cases[c].src, REFERENCE, 1, x, rows, cols, w, yndim, ys);
            double *j1 = run_random(cases[c].src, JIT1, 1, x, rows, cols, w, yndim, ys);
            double *j2 = run_random(cases[c].src, JIT1, 2, x, rows, cols, w, yndim, ys);
            double *j3 = run_random(cases[c].src, JIT1, 3, x, rows, cols, w, yndim, ys);
            double *uf = run_random(cases[c].src, UNFUSED, 2, x, rows, cols, w, yndim, ys);
            int bad = !ref || !j1 || !j2 || !j3 || !uf;
            for (int64_t i = 0; !bad && i < n; i++) {
                double r = ref[i], g = j1[i], u = uf[i];
                int close = r == g || (isnan(r) && isnan(g)) ||
                            fabs(r - g) <= cases[c].rtol * (fabs(r) > 1 ? fabs(r) : 1);
                int uclose = r == u || (isnan(r) && isnan(u)) ||
                             fabs(r - u) <= cases[c].rtol * (fabs(r) > 1 ? fabs(r) : 1);
                if (!close || !uclose || memcmp(&j1[i], &j2[i], 8) || memcmp(&j1[i], &j3[i], 8)) {
                    CHECK_MSG(0,
                              "%s on (%d, %d): element %lld: interp %.17g, JIT %.17g / %.17g "
                              "/ %.17g with 1/2/3 threads, unfused %.17g",
                              cases[c].src, rows, cols, (long long)i, r, g, j2[i], j3[i], u);
                    bad = 1;
                }
            }
            CHECK(!bad);
            free(ref), free(j1), free(j2), free(j3), free(uf), free(x), free(w);
        }
}

/* ------------------------------------------------------------------ errors */

static void expect_language_error(const char *src, const char *needle1, const char *needle2) {
    fusor_kernel *k = NULL;
    fusor_status st = fusor_kernel_compile(ctx, src, "ax.fu", NULL, &k);
    const char *msg = fusor_last_error();
    CHECK_MSG(st == FUSOR_ERROR_LANGUAGE, "%s: status %s", src, fusor_status_name(st));
    CHECK_MSG(strstr(msg, needle1) != NULL, "'%s' not in: %s", needle1, msg);
    CHECK_MSG(strstr(msg, needle2) != NULL, "'%s' not in: %s", needle2, msg);
    fusor_kernel_destroy(k);
}

static void test_language_errors(void) {
    expect_language_error("kernel k(x: f64[n, m]) -> (s: f64[]) {\n  s = sum(x, axis=2)\n}\n",
                          "ax.fu:2:19", "axis 2 is out of range for 'x', which has 2 declared");
    expect_language_error("kernel k(x: f64[n, m]) -> (s: f64[]) {\n  s = sum(x, axis=-3)\n}\n",
                          "ax.fu:2:19", "'x'");
    expect_language_error("kernel k(x: f64[n, k]) -> (y: f64[q]) {\n  y = sum(x, axis=1)\n}\n",
                          "ax.fu:1:28", "output 'y' has dimension 'q', which no parameter");
    expect_language_error("kernel k(x: f64[n, k]) -> (y: f64[n]) {\n  y = x * 2\n}\n", "ax.fu:2:7",
                          "output 'y' declares 1 dimension but is assigned a value "
                          "with 2");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sqrt(x, axis=0)\n}\n",
                          "ax.fu:2:15", "sqrt() takes no keyword arguments");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sum(x, keepdims=true)\n}\n",
                          "ax.fu:2", "keepdims needs axis=");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sum(x, axes=1)\n}\n",
                          "ax.fu:2:14", "sum() has no argument 'axes'");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sum(x, axis=(0, 0))\n}\n",
                          "ax.fu:2", "axis 0 is repeated");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sum(x, axis=n)\n}\n",
                          "ax.fu:2:19", "an axis is an integer literal");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = sum(axis=1, x)\n}\n",
                          "ax.fu:2", "positional argument cannot follow a keyword");
    /* Whole-array reductions beside axis reductions reduce over all declared axes: the
     * argument's dimensions must be declared, and the result is a 0-d array. */
    expect_language_error("kernel k(x: f64[]) -> (y: f64[], t: f64[]) {\n  y = sum(x, axis=0)\n"
                          "  t = sum(x)\n}\n",
                          "ax.fu:3:7", "needs the dimensions of its argument declared");
    expect_language_error("kernel k(x: f64[n, m]) -> (y: f64[m], t: f64) {\n"
                          "  y = sum(x, axis=0)\n  t = sum(x)\n}\n",
                          "ax.fu:3:7", "declare 't' as an array (f64[])");
    expect_language_error("kernel k(u: f64[n, m] clamp) -> (y: f64[]) {\n"
                          "  y = sum(u[0, 1], axis=0)\n}\n",
                          "ax.fu:2", "mixes axis reductions with a stencil load");
    expect_language_error("kernel k(x: f64[]) -> (y: f64[]) {\n  y = x + (0, 1)\n}\n", "ax.fu:2:13",
                          "expected ')'");
}

static void expect_launch_error(fusor_kernel *k, fusor_args *a, fusor_status want, const char *n1,
                                const char *n2) {
    fusor_status st = fusor_launch(k, a);
    CHECK_MSG(st == want, "status %s, want %s: %s", fusor_status_name(st), fusor_status_name(want),
              fusor_last_error());
    CHECK_MSG(strstr(fusor_last_error(), n1) != NULL, "'%s' not in: %s", n1, fusor_last_error());
    CHECK_MSG(strstr(fusor_last_error(), n2) != NULL, "'%s' not in: %s", n2, fusor_last_error());
}

static void test_launch_errors(void) {
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel mv(x: f64[n, k], w: f64[k]) -> (y: f64[n]) {\n"
                                  "  y = sum(x * w, axis=-1)\n}\n",
                                  "ax.fu", NULL, &k));
    double buf[64] = {0}, out[64];
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s3[1] = {3}, s2[1] = {2}, s5[1] = {5};
    fusor_array *x, *w4, *w3, *y2, *y5, *xin;
    CHECK_OK(fusor_array_wrap(ctx, buf, FUSOR_F64, 2, s23, NULL, &x));
    CHECK_OK(fusor_array_wrap(ctx, buf + 8, FUSOR_F64, 1, s4, NULL, &w4));
    CHECK_OK(fusor_array_wrap(ctx, buf + 16, FUSOR_F64, 1, s3, NULL, &w3));
    CHECK_OK(fusor_array_wrap(ctx, out, FUSOR_F64, 1, s2, NULL, &y2));
    CHECK_OK(fusor_array_wrap(ctx, out, FUSOR_F64, 1, s5, NULL, &y5));
    CHECK_OK(fusor_array_wrap(ctx, buf, FUSOR_F64, 1, s2, NULL, &xin));
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "w", w4));
    expect_launch_error(k, a, FUSOR_ERROR_SHAPE, "argument 'w' of kernel mv has dimension 'k' = 4",
                        "argument 'x' gives it 3");
    CHECK_OK(fusor_args_set_array(a, "x", w3));
    expect_launch_error(k, a, FUSOR_ERROR_SHAPE, "argument 'x' of kernel mv declares 2 dimensions",
                        "(3,)");
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "w", w3));
    CHECK_OK(fusor_args_set_array(a, "y", y5));
    expect_launch_error(k, a, FUSOR_ERROR_SHAPE, "output 'y' of kernel mv has shape (5,)", "(2,)");
    CHECK_OK(fusor_args_set_array(a, "y", xin)); /* the first two elements of x */
    expect_launch_error(k, a, FUSOR_ERROR_ALIAS, "output 'y'", "input 'x'");
    CHECK_OK(fusor_args_set_array(a, "y", y2));
    CHECK_OK(fusor_launch(k, a));
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a, &pl));
    CHECK(pl.target == FUSOR_TARGET_CPU);
    CHECK_MSG(strstr(pl.reason, "CPU target") != NULL, "%s", pl.reason);
    CHECK_MSG(!strcmp(fusor_args_last_target(a), "cpu"), "%s", fusor_args_last_target(a));
    /* An output that declares a dimension its value does not end with. */
    fusor_kernel *k2;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel m(x: f64[], w: f64[k]) -> (y: f64[k]) {\n"
                                  "  y = sum(x * w, axis=0)\n}\n",
                                  "ax.fu", NULL, &k2));
    fusor_args *a2;
    CHECK_OK(fusor_args_create(k2, &a2));
    CHECK_OK(fusor_args_set_array(a2, "x", x));
    CHECK_OK(fusor_args_set_array(a2, "w", w3));
    CHECK_OK(fusor_launch(k2, a2));
    fusor_kernel *k3;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel m(x: f64[], w: f64[k]) -> (y: f64[k]) {\n"
                                  "  y = sum(x * w, axis=1)\n}\n",
                                  "ax.fu", NULL, &k3));
    fusor_args *a3;
    CHECK_OK(fusor_args_create(k3, &a3));
    CHECK_OK(fusor_args_set_array(a3, "x", x));
    CHECK_OK(fusor_args_set_array(a3, "w", w3));
    expect_launch_error(k3, a3, FUSOR_ERROR_SHAPE, "output 'y' of kernel m has dimension 'k' = 2",
                        "argument 'w' gives it 3");
    /* The axis of an operand whose rank is only known at launch. */
    fusor_kernel *k4;
    CHECK_OK(fusor_kernel_compile(ctx, "kernel r(x: f64[]) -> (y: f64[]) { y = sum(x, axis=2) }",
                                  "ax.fu", NULL, &k4));
    fusor_args *a4;
    CHECK_OK(fusor_args_create(k4, &a4));
    CHECK_OK(fusor_args_set_array(a4, "x", x));
    expect_launch_error(k4, a4, FUSOR_ERROR_SHAPE, "sum() over axis 2 of argument 'x' (2, 3)",
                        "2 dimensions");
    /* The GPU target: runs there, or says that there is no device. */
    fusor_context *gctx;
    CHECK_OK(fusor_context_create(NULL, &gctx));
    CHECK_OK(fusor_context_set_target(gctx, FUSOR_TARGET_GPU));
    fusor_kernel *kg;
    CHECK_OK(fusor_kernel_compile(gctx, "kernel r(x: f64[]) -> (y: f64[]) { y = sum(x, axis=1) }",
                                  "ax.fu", NULL, &kg));
    fusor_args *ag;
    CHECK_OK(fusor_args_create(kg, &ag));
    CHECK_OK(fusor_args_set_array(ag, "x", x));
    fusor_status st = fusor_launch(kg, ag);
    CHECK_MSG(st == FUSOR_ERROR_NO_DEVICE || (st == FUSOR_OK && fusor_gpu_count() > 0),
              "%s: %s", fusor_status_name(st), fusor_last_error());
    fusor_args_destroy(ag);
    fusor_kernel_destroy(kg);
    fusor_context_destroy(gctx);
    fusor_args_destroy(a);
    fusor_args_destroy(a2);
    fusor_args_destroy(a3);
    fusor_args_destroy(a4);
    fusor_kernel_destroy(k);
    fusor_kernel_destroy(k2);
    fusor_kernel_destroy(k3);
    fusor_kernel_destroy(k4);
    fusor_array_destroy(x), fusor_array_destroy(w4), fusor_array_destroy(w3);
    fusor_array_destroy(y2), fusor_array_destroy(y5), fusor_array_destroy(xin);
}

/* The IR text shows the axis, keepdims and declared output dimensions. */
static void test_ir_text(void) {
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel n(x: f64[n, m]) -> (y: f64[n, m], s: f64[n]) {\n"
                                  "  y = x / sum(x, axis=1, keepdims=true)\n"
                                  "  s = mean(x, axis=-1)\n}\n",
                                  "ax.fu", NULL, &k));
    char *text = NULL;
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_IR, &text));
    CHECK_MSG(text && strstr(text, "axis=-1 keepdims"), "%s", text);
    CHECK_MSG(text && strstr(text, "count.i64 axis of %"), "%s", text);
    CHECK_MSG(text && strstr(text, "-> (y: f64[n, m], s: f64[n])"), "%s", text);
    fusor_free(text);
    /* The host code is each stage's, and so is the GPU code. */
    text = NULL;
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_LLVM, &text));
    CHECK_MSG(text && strstr(text, "stage 0: n.axis0") && strstr(text, "stage 2: n.store2"),
              "%.300s", text ? text : "");
    fusor_free(text);
    text = NULL;
    fusor_status st = fusor_kernel_emit(k, FUSOR_EMIT_CUDA, &text);
    CHECK_MSG(st == FUSOR_OK && strstr(text, "// stage 0: n.axis0 (an axis reduction)") &&
                  strstr(text, "fusor_pass0_axis(") && strstr(text, "// stage 2: n.store2"),
              "%s: %.300s", fusor_status_name(st), text ? text : fusor_last_error());
    fusor_free(text);
    fusor_kernel_destroy(k);
}

/* NumPy's gufunc loop dimensions: a parameter with fewer core dimensions than another
 * lines its loop dimensions up with the other's, so w of shape (b, k) beside x of shape
 * (b, n, k) gives each of the b matrices its own w.  Against C loops, by the compiled
 * code and the interpreter. */
static void test_gufunc_loop_dims(void) {
    enum { B = 3, N = 4, K = 37 };
    double x[B * N * K], w[B * K], y[B * N], z[B * N * K];
    for (int i = 0; i < B * N * K; i++) x[i] = rnd();
    for (int i = 0; i < B * K; i++) w[i] = rnd();
    fusor_kernel *mv, *sc;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel mv(x: f64[n, k], w: f64[k]) -> (y: f64[n]) {\n"
                                  "    y = sum(x * w, axis=-1)\n}\n",
                                  "mv.fu", NULL, &mv));
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel sc(x: f64[n, k], w: f64[k]) -> (z: f64[n, k]) {\n"
                                  "    z = x * w + 1.0\n}\n",
                                  "sc.fu", NULL, &sc));
    int64_t xs[3] = {B, N, K}, ws[2] = {B, K}, ys[2] = {B, N};
    fusor_array *X, *W, *Y, *Z;
    CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 3, xs, NULL, &X));
    CHECK_OK(fusor_array_wrap(ctx, w, FUSOR_F64, 2, ws, NULL, &W));
    CHECK_OK(fusor_array_wrap(ctx, y, FUSOR_F64, 2, ys, NULL, &Y));
    CHECK_OK(fusor_array_wrap(ctx, z, FUSOR_F64, 3, xs, NULL, &Z));
    for (int reference = 0; reference < 2; reference++) {
        fusor_args *a, *b;
        CHECK_OK(fusor_args_create(mv, &a));
        CHECK_OK(fusor_args_set_array(a, "x", X));
        CHECK_OK(fusor_args_set_array(a, "w", W));
        CHECK_OK(fusor_args_set_array(a, "y", Y));
        CHECK_OK(fusor_args_create(sc, &b));
        CHECK_OK(fusor_args_set_array(b, "x", X));
        CHECK_OK(fusor_args_set_array(b, "w", W));
        CHECK_OK(fusor_args_set_array(b, "z", Z));
        for (int i = 0; i < B * N; i++) y[i] = POISON;
        for (int i = 0; i < B * N * K; i++) z[i] = POISON;
        CHECK_OK(reference ? sched_launch_reference(mv, a) : fusor_launch(mv, a));
        CHECK_OK(reference ? sched_launch_reference(sc, b) : fusor_launch(sc, b));
        int bad = 0;
        for (int bb = 0; bb < B; bb++)
            for (int n = 0; n < N; n++) {
                double want = 0;
                for (int k = 0; k < K; k++) {
                    double p = x[(bb * N + n) * K + k] * w[bb * K + k];
                    want += p;
                    bad += z[(bb * N + n) * K + k] != p + 1.0;
                }
                bad += fabs(y[bb * N + n] - want) > 1e-12 * (fabs(want) > 1 ? fabs(want) : 1);
            }
        CHECK_MSG(bad == 0, "%s: %d wrong elements", reference ? "interpreter" : "compiled", bad);
        fusor_args_destroy(a);
        fusor_args_destroy(b);
    }
    /* Loop dimensions that do not broadcast are an error naming both arguments. */
    int64_t ws2[2] = {2, K};
    fusor_array *W2;
    CHECK_OK(fusor_array_wrap(ctx, w, FUSOR_F64, 2, ws2, NULL, &W2));
    fusor_args *c;
    CHECK_OK(fusor_args_create(sc, &c));
    CHECK_OK(fusor_args_set_array(c, "x", X));
    CHECK_OK(fusor_args_set_array(c, "w", W2));
    CHECK(fusor_launch(sc, c) == FUSOR_ERROR_SHAPE);
    CHECK_MSG(strstr(fusor_last_error(), "'x'") && strstr(fusor_last_error(), "'w'"), "%s",
              fusor_last_error());
    fusor_args_destroy(c);
    fusor_array_destroy(W2);
    fusor_array_destroy(X);
    fusor_array_destroy(W);
    fusor_array_destroy(Y);
    fusor_array_destroy(Z);
    fusor_kernel_destroy(mv);
    fusor_kernel_destroy(sc);
}

/* In place: an output may hold exactly an input's elements when it is written after every
 * axis reduction and no later statement reads that input; otherwise a clear refusal. */
static void test_in_place(void) {
    enum { R = 7, C = 300 };
    double x[R * C], orig[R * C], y[R * C];
    for (int i = 0; i < R * C; i++) orig[i] = x[i] = 1.0 + (i % 13) * 0.25;
    fusor_kernel *nrm, *two;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel nrm(x: f64[n, m]) -> (y: f64[n, m]) {\n"
                                  "    y = x / sum(x, axis=1, keepdims=true)\n}\n",
                                  "nrm.fu", NULL, &nrm));
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel two(x: f64[n, m]) -> (y: f64[n, m], z: f64[n, m]) {\n"
                                  "    y = x * 2.0\n    z = x - mean(x, axis=0)\n}\n",
                                  "two.fu", NULL, &two));
    int64_t sh[2] = {R, C};
    fusor_array *X, *Y;
    CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 2, sh, NULL, &X));
    CHECK_OK(fusor_array_wrap(ctx, y, FUSOR_F64, 2, sh, NULL, &Y));
    fusor_args *a;
    CHECK_OK(fusor_args_create(nrm, &a));
    CHECK_OK(fusor_args_set_array(a, "x", X));
    CHECK_OK(fusor_args_set_array(a, "y", X)); /* rows normalised in place */
    /* An unfused launch writes its outputs before it has read all of x: refused, x kept. */
    CHECK(fusor_launch_unfused(nrm, a) == FUSOR_ERROR_UNSUPPORTED);
    CHECK_MSG(strstr(fusor_last_error(), "in place") && !memcmp(x, orig, sizeof x), "%s",
              fusor_last_error());
    CHECK_OK(fusor_launch(nrm, a));
    int bad = 0;
    for (int r = 0; r < R; r++) {
        double sum = 0;
        for (int c = 0; c < C; c++) sum += orig[r * C + c];
        for (int c = 0; c < C; c++)
            bad += fabs(x[r * C + c] - orig[r * C + c] / sum) > 1e-15;
    }
    CHECK_MSG(bad == 0, "in-place normalisation: %d wrong", bad);
    fusor_args_destroy(a);
    /* z last, in place: y was computed from the original x first. */
    memcpy(x, orig, sizeof x);
    CHECK_OK(fusor_args_create(two, &a));
    CHECK_OK(fusor_args_set_array(a, "x", X));
    CHECK_OK(fusor_args_set_array(a, "y", Y));
    CHECK_OK(fusor_args_set_array(a, "z", X));
    CHECK_OK(fusor_launch(two, a));
    bad = 0;
    for (int c = 0; c < C; c++) {
        double m = 0;
        for (int r = 0; r < R; r++) m += orig[r * C + c];
        m /= R;
        for (int r = 0; r < R; r++) {
            bad += y[r * C + c] != 2.0 * orig[r * C + c];
            bad += fabs(x[r * C + c] - (orig[r * C + c] - m)) > 1e-12;
        }
    }
    CHECK_MSG(bad == 0, "z in place: %d wrong", bad);
    /* y in place: z, written after it, still reads x: refused, nothing written. */
    memcpy(x, orig, sizeof x);
    CHECK_OK(fusor_args_set_array(a, "y", X));
    CHECK_OK(fusor_args_set_array(a, "z", Y));
    expect_launch_error(two, a, FUSOR_ERROR_ALIAS, "output 'y'", "input 'x'");
    CHECK(memcmp(x, orig, sizeof x) == 0);
    fusor_args_destroy(a);
    fusor_array_destroy(X);
    fusor_array_destroy(Y);
    fusor_kernel_destroy(nrm);
    fusor_kernel_destroy(two);
}

/* A time loop of a kernel with axis reductions as a prepared launch: ping-pong between two
 * fields with fusor_prepared_swap, checked against the same loop in C; after the first
 * steps nothing is allocated (shapes, temporaries, partials are kept by the prepared
 * launch), which fu_alloc_fail_after proves. */
static void test_prepared_steps(void) {
    enum { R = 64, C = 600, STEPS = 12 };
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel relax(u: f64[n, m]) -> (v: f64[n, m], cs: f64[m]) {\n"
                                  "    v = u - 0.5 * mean(u, axis=1, keepdims=true)\n"
                                  "    cs = sum(u, axis=0)\n}\n",
                                  "relax.fu", NULL, &k));
    static double a[R * C], b[R * C], cs[C], hu[R * C], hv[R * C], hcs[C];
    for (int i = 0; i < R * C; i++) a[i] = hu[i] = 1.0 + (i * 7 % 29) * 0.125;
    for (int i = 0; i < R * C; i++) b[i] = NAN;
    int64_t sh[2] = {R, C}, shc[1] = {C};
    fusor_array *A, *B, *CS;
    CHECK_OK(fusor_array_wrap(ctx, a, FUSOR_F64, 2, sh, NULL, &A));
    CHECK_OK(fusor_array_wrap(ctx, b, FUSOR_F64, 2, sh, NULL, &B));
    CHECK_OK(fusor_array_wrap(ctx, cs, FUSOR_F64, 1, shc, NULL, &CS));
    fusor_args *args;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_array(args, "u", A));
    CHECK_OK(fusor_args_set_array(args, "v", B));
    CHECK_OK(fusor_args_set_array(args, "cs", CS));
    fusor_prepared *p;
    CHECK_OK(fusor_prepare(k, args, &p));
    double worst = 0;
    long failures = 0;
    int ok = 1;
    for (int step = 0; step < STEPS && ok; step++) {
        if (step == 2)
            fu_alloc_fail_after(0); /* steady state: any allocation fails */
        ok = fusor_prepared_launch(p) == FUSOR_OK;
        CHECK_MSG(ok, "step %d: %s", step, fusor_last_error());
        ok = ok && fusor_prepared_swap(p, "u", "v") == FUSOR_OK;
        for (int c = 0; c < C; c++) {
            hcs[c] = 0;
            for (int r = 0; r < R; r++) hcs[c] += hu[r * C + c];
        }
        for (int r = 0; r < R; r++) {
            double m = 0;
            for (int c = 0; c < C; c++) m += hu[r * C + c];
            m /= C;
            for (int c = 0; c < C; c++) hv[r * C + c] = hu[r * C + c] - 0.5 * m;
        }
        memcpy(hu, hv, sizeof hu);
        for (int c = 0; c < C; c++) {
            double d = fabs(cs[c] - hcs[c]) / (fabs(hcs[c]) + 1.0);
            worst = d > worst ? d : worst;
        }
    }
    failures = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(ok && failures == 0, "steps after the first two tried %ld allocations", failures);
    /* After an even number of steps the newest field is in a (u's array again). */
    for (int i = 0; i < R * C; i++) {
        double d = fabs(a[i] - hu[i]) / (fabs(hu[i]) + 1.0); /* values near 0: absolute */
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst < 1e-12, "prepared steps against the C loop: relative difference %g", worst);
    fusor_prepared_destroy(p);
    fusor_args_destroy(args);
    fusor_array_destroy(A);
    fusor_array_destroy(B);
    fusor_array_destroy(CS);
    fusor_kernel_destroy(k);
}

int main(void) {
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    fusor_context_set_target(ctx, FUSOR_TARGET_CPU);
    test_language_errors();
    test_launch_errors();
    test_gufunc_loop_dims();
    test_in_place();
    test_prepared_steps();
    test_ir_text();
    test_fixtures();
    test_random();
    fusor_context_destroy(ctx);
    return check_done();
}
