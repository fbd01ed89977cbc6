/*
 * test_std_kernels.c — the standard kernels (every .fu file in kernels/std) end to end.
 *
 * Every kernel of every file (listed with fusor_source_kernels) is compiled and run by the
 * JIT and by the reference interpreter on random inputs — small, and above the parallel
 * threshold — into separately poisoned outputs, which must agree.  Then known values,
 * computed here independently of fusor: axpy and Horner evaluated in C, the dot product
 * of 1..n with itself (n(n+1)(2n+1)/6), a 3-4-5 norm, softmax summing to 1 with the
 * right ratios, log-sum-exp and mean/variance against long-double loops, and
 * Black–Scholes against put-call parity and an erfc-based price.
 */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "scheduler.h"

#ifndef FUSOR_SOURCE_DIR
#define FUSOR_SOURCE_DIR "."
#endif
#define STD_DIR FUSOR_SOURCE_DIR "/kernels/std"

static fusor_context *ctx;

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x853c49e6748fea9bull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* An owned 1-d array of n elements with values in [lo, hi). */
static fusor_array *random_array(fusor_dtype dt, int64_t n, double lo, double hi) {
    fusor_array *a = NULL;
    if (fusor_array_create(ctx, dt, 1, &n, &a) != FUSOR_OK)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = lo + (hi - lo) * urand();
        if (dt == FUSOR_F32)
            ((float *)fusor_array_data(a))[i] = (float)v;
        else if (dt == FUSOR_F16)
            ((uint16_t *)fusor_array_data(a))[i] = fusor_f16_from_f64(v);
        else
            ((double *)fusor_array_data(a))[i] = v;
    }
    return a;
}

static fusor_array *poisoned(fusor_dtype dt, int64_t n, unsigned char poison) {
    fusor_array *a = NULL;
    if (fusor_array_create(ctx, dt, 1, &n, &a) != FUSOR_OK)
        return NULL;
    memset(fusor_array_data(a), poison, (size_t)n * fusor_dtype_size(dt));
    return a;
}

static fusor_kernel *compile_std(const char *file, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", STD_DIR, file);
    char *src = check_read_file(path, NULL);
    fusor_kernel *k = NULL;
    if (!src) {
        CHECK_MSG(0, "cannot read %s", path);
        return NULL;
    }
    fusor_status st = fusor_kernel_compile(ctx, src, path, name, &k);
    CHECK_MSG(st == FUSOR_OK, "%s: kernel %s: %s", path, name, fusor_last_error());
    free(src);
    return k;
}

static double get_f64(const fusor_array *a, int64_t i) {
    if (fusor_array_dtype(a) == FUSOR_F16)
        return fusor_f16_to_f64(((const uint16_t *)fusor_array_data(a))[i]);
    return fusor_array_dtype(a) == FUSOR_F32 ? (double)((const float *)fusor_array_data(a))[i]
                                             : ((const double *)fusor_array_data(a))[i];
}

/* ------------------------------------------------------------------ JIT vs interpreter */

/* Tolerance for n-element runs, relative to max(1, |value|) (the inputs are of order 1, so
 * a difference of terms of that size, as in an option price near zero, is absolute): a
 * few ulp for libm functions, plus 2*gamma_n for anything computed from a sum of n
 * positive terms (the inputs are positive), the bound for summation in any order. */
static double tolerance(fusor_dtype dt, int64_t n) {
    if (dt == FUSOR_F16) /* an f32 result an ulp apart may round to the next half: 2^-10 */
        return 0x1p-10 + 2 * (double)n * 0x1p-24 / (1 - (double)n * 0x1p-24);
    double u = dt == FUSOR_F32 ? 0x1p-24 : 0x1p-53;
    return (dt == FUSOR_F32 ? 1e-5 : 1e-12) + 2 * (double)n * u / (1 - (double)n * u);
}

/* Runs kernel `name` of `file` on random inputs of n elements by the JIT and by the
 * interpreter and compares every output. */
static void jit_vs_reference(const char *file, const char *name, int64_t n) {
    fusor_kernel *k = compile_std(file, name);
    if (!k)
        return;
    int np = fusor_kernel_num_params(k);
    fusor_args *args[2] = {NULL, NULL};
    fusor_array *outs[2][16] = {{NULL}};
    CHECK_OK(fusor_args_create(k, &args[0]));
    CHECK_OK(fusor_args_create(k, &args[1]));
    for (int i = 0; i < np && i < 16; i++) {
        fusor_param_info p;
        CHECK_OK(fusor_kernel_param(k, i, &p));
        fusor_dtype dt = p.dtype == FUSOR_NUM_DTYPES ? FUSOR_F64 : p.dtype;
        if (!p.is_output) {
            /* Positive inputs keep every std kernel in its domain (logs, sqrt, prices). */
            if (p.is_array) {
                fusor_array *a = random_array(dt, n, 0.25, 2.0);
                for (int r = 0; r < 2; r++)
                    CHECK_OK(fusor_args_set_array(args[r], p.name, a));
                fusor_array_destroy(a);
            } else {
                double v = 0.05 + 0.5 * urand();
                for (int r = 0; r < 2; r++) {
                    if (dt == FUSOR_F32) {
                        float f = (float)v;
                        CHECK_OK(fusor_args_set_scalar(args[r], p.name, FUSOR_F32, &f));
                    } else {
                        CHECK_OK(fusor_args_set_f64(args[r], p.name, v));
                    }
                }
            }
        } else if (p.is_array) {
            for (int r = 0; r < 2; r++) {
                outs[r][i] = poisoned(dt, n, r ? 0x5A : 0xA5);
                CHECK_OK(fusor_args_set_array(args[r], p.name, outs[r][i]));
            }
        }
    }
    fusor_status s0 = fusor_launch(k, args[0]);
    CHECK_MSG(s0 == FUSOR_OK, "%s (n=%lld) on the JIT: %s", name, (long long)n, fusor_last_error());
    fusor_status s1 = sched_launch_reference(k, args[1]);
    CHECK_MSG(s1 == FUSOR_OK, "%s (n=%lld) on the interpreter: %s", name, (long long)n,
              fusor_last_error());
    if (n > 32768 && s0 == FUSOR_OK && fusor_default_num_threads() > 1)
        CHECK_MSG(fusor_args_last_threads(args[0]) > 1, "%s: n=%lld ran on %d thread(s)", name,
                  (long long)n, fusor_args_last_threads(args[0]));
    for (int i = 0; i < np && i < 16 && s0 == FUSOR_OK && s1 == FUSOR_OK; i++) {
        fusor_param_info p;
        fusor_kernel_param(k, i, &p);
        if (!p.is_output)
            continue;
        fusor_dtype dt = p.dtype == FUSOR_NUM_DTYPES ? FUSOR_F64 : p.dtype;
        double tol = tolerance(dt, n);
        if (p.is_array) {
            int64_t bad = 0, first = -1;
            for (int64_t e = 0; e < n; e++) {
                double a = get_f64(outs[0][i], e), b = get_f64(outs[1][i], e);
                if (!(a == b || fabs(a - b) <= tol * fmax(1, fabs(b)))) {
                    if (first < 0)
                        first = e;
                    bad++;
                }
            }
            CHECK_MSG(bad == 0,
                      "%s.%s (n=%lld): %lld elements differ; first [%lld]: jit %.17g, "
                      "interpreter %.17g",
                      name, p.name, (long long)n, (long long)bad, (long long)first,
                      first >= 0 ? get_f64(outs[0][i], first) : 0,
                      first >= 0 ? get_f64(outs[1][i], first) : 0);
        } else {
            double a = NAN, b = NAN;
            CHECK_OK(fusor_args_get_f64(args[0], p.name, &a));
            CHECK_OK(fusor_args_get_f64(args[1], p.name, &b));
            CHECK_MSG(a == b || fabs(a - b) <= tol * fmax(1, fabs(b)),
                      "%s.%s (n=%lld): jit %.17g, interpreter %.17g", name, p.name, (long long)n, a,
                      b);
        }
    }
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < 16; i++)
            fusor_array_destroy(outs[r][i]);
        fusor_args_destroy(args[r]);
    }
    fusor_kernel_destroy(k);
}

/* Every kernel of every .fu file in kernels/std; returns how many kernels there were. */
static int all_std_kernels(void) {
    DIR *d = opendir(STD_DIR);
    REQUIRE(d != NULL);
    int count = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        size_t len = strlen(ent->d_name);
        if (len < 4 || strcmp(ent->d_name + len - 3, ".fu"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", STD_DIR, ent->d_name);
        char *src = check_read_file(path, NULL);
        char *names = NULL;
        CHECK_MSG(src && fusor_source_kernels(src, path, &names) == FUSOR_OK, "%s: %s", path,
                  fusor_last_error());
        for (char *nm = names ? strtok(names, ", ") : NULL; nm; nm = strtok(NULL, ", ")) {
            count++;
            jit_vs_reference(ent->d_name, nm, 1000);
            jit_vs_reference(ent->d_name, nm, 50001);
            jit_vs_reference(ent->d_name, nm, 1);
        }
        fusor_free(names);
        free(src);
    }
    closedir(d);
    return count;
}

/* ------------------------------------------------------------------ known values */

/* A launch of `file`'s kernel `name` with arrays and f64 scalars bound by name; returns
 * the argument set (the caller destroys it) or NULL. */
typedef struct bind {
    const char *name;
    fusor_array *array; /* or NULL for a scalar */
    double value;
} bind;

static fusor_args *launch(const char *file, const char *name, const bind *b, int nb,
                          fusor_kernel **kout) {
    fusor_kernel *k = compile_std(file, name);
    *kout = k;
    if (!k)
        return NULL;
    fusor_args *a = NULL;
    CHECK_OK(fusor_args_create(k, &a));
    for (int i = 0; i < nb; i++) {
        if (b[i].array) {
            CHECK_OK(fusor_args_set_array(a, b[i].name, b[i].array));
            continue;
        }
        fusor_param_info p = {0};
        for (int j = 0; j < fusor_kernel_num_params(k); j++) {
            fusor_kernel_param(k, j, &p);
            if (!strcmp(p.name, b[i].name))
                break;
        }
        if (p.dtype == FUSOR_F32) {
            float f = (float)b[i].value;
            CHECK_OK(fusor_args_set_scalar(a, b[i].name, FUSOR_F32, &f));
        } else {
            CHECK_OK(fusor_args_set_f64(a, b[i].name, b[i].value));
        }
    }
    fusor_status st = fusor_launch(k, a);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", name, fusor_last_error());
    if (st != FUSOR_OK) {
        fusor_args_destroy(a);
        return NULL;
    }
    return a;
}

static double scalar_out(fusor_args *a, const char *name) {
    double v = NAN;
    if (a)
        CHECK_OK(fusor_args_get_f64(a, name, &v));
    return v;
}

static void test_axpy_known(void) {
    const int64_t n = 40001;
    fusor_array *x = random_array(FUSOR_F32, n, -3, 3), *y = random_array(FUSOR_F32, n, -3, 3);
    fusor_array *z = poisoned(FUSOR_F32, n, 0xA5);
    fusor_kernel *k;
    bind b[] = {{"a", NULL, 1.75}, {"x", x, 0}, {"y", y, 0}, {"z", z, 0}};
    fusor_args *a = launch("blas1.fu", "saxpy", b, 4, &k);
    int64_t bad = 0;
    const float *px = fusor_array_data(x), *py = fusor_array_data(y), *pz = fusor_array_data(z);
    for (int64_t i = 0; i < n && a; i++) {
        volatile float t = 1.75f * px[i]; /* float arithmetic, no contraction */
        float want = t + py[i];
        bad += memcmp(&want, &pz[i], sizeof want) != 0;
    }
    CHECK_MSG(a && bad == 0, "saxpy: %lld of %lld elements differ from C", (long long)bad,
              (long long)n);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    /* daxpy and axpby on doubles, bit for bit. */
    fusor_array *xd = random_array(FUSOR_F64, n, -3, 3), *yd = random_array(FUSOR_F64, n, -3, 3);
    fusor_array *zd = poisoned(FUSOR_F64, n, 0x5A);
    bind b2[] = {{"a", NULL, -0.5}, {"b", NULL, 2.25}, {"x", xd, 0}, {"y", yd, 0}, {"z", zd, 0}};
    a = launch("blas1.fu", "axpby", b2, 5, &k);
    const double *dx = fusor_array_data(xd), *dy = fusor_array_data(yd), *dz = fusor_array_data(zd);
    bad = 0;
    for (int64_t i = 0; i < n && a; i++) {
        volatile double t1 = -0.5 * dx[i], t2 = 2.25 * dy[i];
        bad += t1 + t2 != dz[i];
    }
    CHECK_MSG(a && bad == 0, "axpby: %lld of %lld elements differ from C", (long long)bad,
              (long long)n);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_array_destroy(xd);
    fusor_array_destroy(yd);
    fusor_array_destroy(zd);
}

static void test_dot_norm_known(void) {
    /* dot(1..n, 1..n) = n(n+1)(2n+1)/6, exact in f64 (every partial sum is an integer
     * below 2^53). */
    const int64_t n = 60000;
    fusor_array *x = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &n, &x));
    for (int64_t i = 0; i < n; i++)
        ((double *)fusor_array_data(x))[i] = (double)(i + 1);
    fusor_kernel *k;
    bind b[] = {{"x", x, 0}, {"y", x, 0}};
    fusor_args *a = launch("blas1.fu", "dot", b, 2, &k);
    double want = (double)n * (double)(n + 1) * (double)(2 * n + 1) / 6;
    CHECK_MSG(scalar_out(a, "d") == want, "dot(1..n, 1..n) = %.17g, want %.17g", scalar_out(a, "d"),
              want);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    int64_t two = 2;
    fusor_array *v = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &two, &v));
    ((double *)fusor_array_data(v))[0] = 3;
    ((double *)fusor_array_data(v))[1] = -4;
    bind b2[] = {{"x", v, 0}};
    a = launch("blas1.fu", "norm2", b2, 1, &k);
    CHECK_MSG(scalar_out(a, "n") == 5.0, "norm2([3, -4]) = %.17g", scalar_out(a, "n"));
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(v);
    fusor_array_destroy(x);
}

static void test_blend_known(void) {
    const int64_t n = 33333;
    fusor_array *x = random_array(FUSOR_F32, n, -1, 1), *y = random_array(FUSOR_F32, n, -1, 1);
    fusor_array *z = poisoned(FUSOR_F32, n, 0xA5);
    fusor_kernel *k;
    bind b[] = {{"x", x, 0}, {"y", y, 0}, {"t", NULL, 0.25}, {"z", z, 0}};
    fusor_args *a = launch("blas1.fu", "blend", b, 4, &k);
    const float *px = fusor_array_data(x), *py = fusor_array_data(y), *pz = fusor_array_data(z);
    int64_t bad = 0;
    long double total = 0, mag = 0;
    for (int64_t i = 0; i < n && a; i++) {
        volatile float d = py[i] - px[i];
        volatile float td = 0.25f * d;
        float want = px[i] + td;
        bad += want != pz[i];
        total += want;
        mag += fabsl((long double)want);
    }
    CHECK_MSG(a && bad == 0, "blend: %lld of %lld elements differ from C", (long long)bad,
              (long long)n);
    /* total = sum(f64(z)): within 2*gamma_n * sum|z| of the exact sum. */
    double got = scalar_out(a, "total");
    double bound = 2.0 * (double)n * 0x1p-53 * (double)mag;
    CHECK_MSG(fabs(got - (double)total) <= bound, "blend total %.17g, want %.17Lg (bound %g)", got,
              total, bound);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
}

static void test_elementwise_known(void) {
    const int64_t n = 1001;
    fusor_array *x = random_array(FUSOR_F64, n, -30, 30), *y = poisoned(FUSOR_F64, n, 0xA5);
    fusor_kernel *k;
    bind b[] = {{"x", x, 0}, {"y", y, 0}};
    const double *px = fusor_array_data(x), *py = fusor_array_data(y);

    fusor_args *a = launch("elementwise.fu", "sigmoid", b, 2, &k);
    double worst = 0;
    for (int64_t i = 0; i < n && a; i++) {
        double want = 1 / (1 + exp(-px[i]));
        worst = fmax(worst, fabs(py[i] - want) / want);
    }
    CHECK_MSG(a && worst <= 8 * DBL_EPSILON, "sigmoid: relative error %g", worst);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    a = launch("elementwise.fu", "clamp01", b, 2, &k);
    int64_t bad = 0;
    for (int64_t i = 0; i < n && a; i++)
        bad += py[i] != fmin(fmax(px[i], 0.0), 1.0);
    CHECK_MSG(a && bad == 0, "clamp01: %lld elements differ", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    bind b3[] = {{"x", x, 0},        {"c0", NULL, 1.5}, {"c1", NULL, -2},
                 {"c2", NULL, 0.25}, {"c3", NULL, 3},   {"y", y, 0}};
    a = launch("elementwise.fu", "poly3", b3, 6, &k);
    bad = 0;
    for (int64_t i = 0; i < n && a; i++) {
        volatile double h = 3 * px[i];
        h = h + 0.25;
        h = h * px[i];
        h = h + -2.0;
        h = h * px[i];
        bad += h + 1.5 != py[i];
    }
    CHECK_MSG(a && bad == 0, "poly3: %lld elements differ from Horner in C", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    fusor_array *x2 = random_array(FUSOR_F64, n, -5, 5), *d = poisoned(FUSOR_F64, n, 0x5A);
    bind b4[] = {{"x", x, 0}, {"y", x2, 0}, {"d", d, 0}};
    a = launch("elementwise.fu", "distance", b4, 3, &k);
    bad = 0;
    const double *px2 = fusor_array_data(x2), *pd = fusor_array_data(d);
    for (int64_t i = 0; i < n && a; i++)
        bad += fabs(pd[i] - hypot(px[i], px2[i])) > 2 * DBL_EPSILON * pd[i];
    CHECK_MSG(a && bad == 0, "distance: %lld elements differ from hypot", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    fusor_array *xf = random_array(FUSOR_F32, n, -2, 2), *yf = poisoned(FUSOR_F32, n, 0xA5);
    bind b5[] = {{"x", xf, 0}, {"y", yf, 0}};
    a = launch("elementwise.fu", "relu", b5, 2, &k);
    bad = 0;
    const float *pxf = fusor_array_data(xf), *pyf = fusor_array_data(yf);
    for (int64_t i = 0; i < n && a; i++)
        bad += pyf[i] != (pxf[i] > 0 ? pxf[i] : 0.0f);
    CHECK_MSG(a && bad == 0, "relu: %lld elements differ", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(xf);
    fusor_array_destroy(yf);
    fusor_array_destroy(x2);
    fusor_array_destroy(d);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
}

static void test_stats_known(void) {
    const int64_t n = 45000;
    fusor_array *x = random_array(FUSOR_F64, n, -20, 20), *p = poisoned(FUSOR_F64, n, 0xA5);
    const double *px = fusor_array_data(x), *pp = fusor_array_data(p);
    fusor_kernel *k;
    bind b[] = {{"x", x, 0}, {"p", p, 0}};
    fusor_args *a = launch("stats.fu", "softmax", b, 2, &k);
    long double sum = 0, m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        m = fmaxl(m, px[i]);
    int64_t bad = 0;
    for (int64_t i = 0; i < n && a; i++) {
        sum += pp[i];
        /* p_i / p_0 = exp(x_i - x_0) */
        double ratio = pp[i] / pp[0], want = exp(px[i] - px[0]);
        bad += !(fabs(ratio - want) <= 1e-12 * want);
    }
    CHECK_MSG(a && fabsl(sum - 1) <= 1e-12, "softmax sums to %.17Lg", sum);
    CHECK_MSG(a && bad == 0, "softmax: %lld ratios differ from exp(x_i - x_0)", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    bind b2[] = {{"x", x, 0}};
    a = launch("stats.fu", "logsumexp", b2, 1, &k);
    long double se = 0;
    for (int64_t i = 0; i < n; i++)
        se += expl((long double)px[i] - m);
    double want = (double)(m + logl(se));
    CHECK_MSG(fabs(scalar_out(a, "r") - want) <= 1e-13 * fabs(want), "logsumexp %.17g, want %.17g",
              scalar_out(a, "r"), want);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    a = launch("stats.fu", "mean_var", b2, 1, &k);
    long double mu = 0, var = 0;
    for (int64_t i = 0; i < n; i++)
        mu += px[i];
    mu /= n;
    for (int64_t i = 0; i < n; i++)
        var += ((long double)px[i] - mu) * ((long double)px[i] - mu);
    var /= n;
    /* |mean error| <= gamma_n * mean|x| (at most 20 here); the variance, from a mean that
     * close, is within the same few 1e-11 relative. */
    CHECK_MSG(fabs(scalar_out(a, "m") - (double)mu) <= 2 * n * DBL_EPSILON * 20,
              "mean %.17g, want %.17Lg", scalar_out(a, "m"), mu);
    CHECK_MSG(fabs(scalar_out(a, "v") - (double)var) <= 1e-10 * (double)var,
              "variance %.17g, want %.17Lg", scalar_out(a, "v"), var);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);

    fusor_array *xf = random_array(FUSOR_F32, n, -2, 2), *yf = poisoned(FUSOR_F32, n, 0x5A);
    bind b3[] = {{"x", xf, 0}, {"eps", NULL, 1e-5}, {"y", yf, 0}};
    a = launch("stats.fu", "rms_norm", b3, 3, &k);
    const float *pxf = fusor_array_data(xf), *pyf = fusor_array_data(yf);
    long double ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (long double)pxf[i] * pxf[i];
    long double scale = 1 / sqrtl(ss / n + 1e-5L);
    /* f32 sums of n positive terms: relative error within gamma_n (f32); y = x / sqrt(.)
     * carries half of it, plus a few f32 roundings. */
    double tol = (double)n * 0x1p-24 + 1e-6;
    bad = 0;
    for (int64_t i = 0; i < n && a; i++) {
        double want2 = (double)(pxf[i] * scale);
        bad += !(fabs(pyf[i] - want2) <= tol * fabs(want2) + 1e-30);
    }
    CHECK_MSG(a && bad == 0, "rms_norm: %lld elements off", (long long)bad);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(xf);
    fusor_array_destroy(yf);
    fusor_array_destroy(x);
    fusor_array_destroy(p);
}

/* The standard normal CDF from erfc (accurate to a few ulp). */
static double norm_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static void test_black_scholes_known(void) {
    const int64_t n = 40000;
    fusor_array *s = random_array(FUSOR_F64, n, 50, 150), *kk = random_array(FUSOR_F64, n, 50, 150);
    fusor_array *t = random_array(FUSOR_F64, n, 0.1, 3);
    fusor_array *call = poisoned(FUSOR_F64, n, 0xA5), *put = poisoned(FUSOR_F64, n, 0x5A);
    const double r = 0.03, v = 0.25;
    fusor_kernel *k;
    bind b[] = {{"s", s, 0},    {"k", kk, 0},      {"t", t, 0},    {"r", NULL, r},
                {"v", NULL, v}, {"call", call, 0}, {"put", put, 0}};
    fusor_args *a = launch("finance.fu", "black_scholes", b, 7, &k);
    const double *ps = fusor_array_data(s), *pk = fusor_array_data(kk), *pt = fusor_array_data(t);
    const double *pc = fusor_array_data(call), *pp = fusor_array_data(put);
    int64_t parity_bad = 0, price_bad = 0;
    double worst = 0;
    for (int64_t i = 0; i < n && a; i++) {
        double disc = pk[i] * exp(-r * pt[i]);
        /* Put-call parity: C - P = S - K e^{-rT}, whatever N() approximates. */
        parity_bad += !(fabs((pc[i] - pp[i]) - (ps[i] - disc)) <= 1e-9 * ps[i]);
        double d1 = (log(ps[i] / pk[i]) + (r + 0.5 * v * v) * pt[i]) / (v * sqrt(pt[i]));
        double d2 = d1 - v * sqrt(pt[i]);
        double want = ps[i] * norm_cdf(d1) - disc * norm_cdf(d2);
        /* The Abramowitz-Stegun N() is within 7.5e-8, so the price within 7.5e-8 (S + K). */
        double err = fabs(pc[i] - want);
        worst = fmax(worst, err);
        price_bad += !(err <= 7.5e-8 * (ps[i] + disc) + 1e-12);
    }
    CHECK_MSG(a && parity_bad == 0, "black_scholes: put-call parity fails for %lld of %lld",
              (long long)parity_bad, (long long)n);
    CHECK_MSG(a && price_bad == 0, "black_scholes: %lld calls off the erfc price (worst %g)",
              (long long)price_bad, worst);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_array_destroy(s);
    fusor_array_destroy(kk);
    fusor_array_destroy(t);
    fusor_array_destroy(call);
    fusor_array_destroy(put);
}

int main(void) {
    /* The default math mode; no disk cache, so that every kernel is compiled here. */
    fusor_context_options o = {.target = FUSOR_TARGET_CPU, .disk_cache = -1};
    REQUIRE(fusor_context_create(&o, &ctx) == FUSOR_OK);
    int count = all_std_kernels();
    CHECK_MSG(count >= 17, "only %d standard kernels found in %s", count, STD_DIR);
    printf("%d standard kernels compared with the interpreter\n", count);
    test_axpy_known();
    test_dot_norm_known();
    test_blend_known();
    test_elementwise_known();
    test_stats_known();
    test_black_scholes_known();
    fusor_context_destroy(ctx);
    return check_done();
}
