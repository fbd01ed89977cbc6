/*
 * test_api.c — the public C API end to end: every function, and every error path a user
 * can reach, with the status and a key phrase of the message checked.  Outputs are
 * poisoned before each launch and checked untouched after a failed one.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "scheduler.h"

#define EXPECT_ERR(expr, status, phrase)                                                   \
    do {                                                                                   \
        fusor_status st_ = (expr);                                                         \
        CHECK_MSG(st_ == (status), "%s: got %s (%s)", #expr, fusor_status_name(st_),        \
                  fusor_last_error());                                                     \
        CHECK_MSG(strstr(fusor_last_error(), (phrase)) != NULL, "%s: message '%s' lacks '%s'", \
                  #expr, fusor_last_error(), (phrase));                                    \
    } while (0)

static const char *src = "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[], m: f64) {\n"
                         "    z = a * x + y\n"
                         "    m = min(z)\n"
                         "}\n"
                         "kernel twice(x: i32[]) -> (y: i32[]) { y = x * 2 }\n";

static fusor_array *wrap1(fusor_context *c, void *p, fusor_dtype dt, int64_t n) {
    fusor_array *a = NULL;
    int64_t shape[1] = {n};
    fusor_status st = fusor_array_wrap(c, p, dt, 1, shape, NULL, &a);
    if (st != FUSOR_OK) fprintf(stderr, "wrap failed: %s\n", fusor_last_error());
    return a;
}

static void test_basics(void) {
    CHECK(!strcmp(fusor_version(), FUSOR_VERSION_STRING));
    CHECK(!strcmp(fusor_status_name(FUSOR_ERROR_SHAPE), "FUSOR_ERROR_SHAPE"));
    CHECK(fusor_dtype_size(FUSOR_F32) == 4 && fusor_dtype_size(FUSOR_BOOL) == 1);
    CHECK(!strcmp(fusor_dtype_name(FUSOR_U16), "u16"));
    fusor_dtype d;
    CHECK_OK(fusor_dtype_from_name("float32", &d));
    CHECK(d == FUSOR_F32);
    CHECK_OK(fusor_dtype_from_name("float16", &d));
    CHECK(d == FUSOR_F16 && fusor_dtype_size(FUSOR_F16) == 2);
    EXPECT_ERR(fusor_dtype_from_name("f128", &d), FUSOR_ERROR_INVALID_ARGUMENT, "unknown dtype");
    char *info = NULL;
    CHECK_OK(fusor_runtime_info(&info));
    CHECK(info && strstr(info, "LLVM 16") && strstr(info, "default threads") &&
          strstr(info, "CUDA driver"));
    fusor_free(info);

    fusor_context *c = NULL;
    fusor_context_options bad = {.opt_level = 7};
    EXPECT_ERR(fusor_context_create(&bad, &c), FUSOR_ERROR_INVALID_ARGUMENT, "opt_level");
    CHECK(c == NULL);
    EXPECT_ERR(fusor_context_create(NULL, NULL), FUSOR_ERROR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERR(fusor_context_set_target(NULL, FUSOR_TARGET_CPU), FUSOR_ERROR_INVALID_ARGUMENT,
               "NULL");
    fusor_context_destroy(NULL);
    fusor_kernel_destroy(NULL);
    fusor_args_destroy(NULL);
    fusor_array_destroy(NULL);
}

static void test_threads(void) {
    int def = fusor_default_num_threads();
    CHECK(def >= 1);
    CHECK_OK(fusor_set_num_threads(3));
    CHECK(fusor_get_num_threads() == 3);
    CHECK_OK(fusor_set_num_threads(0));
    CHECK(fusor_get_num_threads() == def);
    EXPECT_ERR(fusor_set_num_threads(-1), FUSOR_ERROR_INVALID_ARGUMENT, "-1");
}

static void test_launch_and_errors(fusor_context *c) {
    fusor_kernel *k = NULL;
    EXPECT_ERR(fusor_kernel_compile(c, src, "two.fu", NULL, &k), FUSOR_ERROR_INVALID_ARGUMENT,
               "axpy, twice");
    EXPECT_ERR(fusor_kernel_compile(c, src, "two.fu", "axpi", &k), FUSOR_ERROR_INVALID_ARGUMENT,
               "axpy");
    EXPECT_ERR(fusor_kernel_compile(c, "kernel k(x: f64[]) -> (y: f64[]) { y = x + q }", "k.fu",
                                    NULL, &k),
               FUSOR_ERROR_LANGUAGE, "k.fu:1:");
    CHECK(k == NULL);
    char *names = NULL;
    CHECK_OK(fusor_source_kernels(src, "two.fu", &names));
    CHECK(names && !strcmp(names, "axpy, twice"));
    fusor_free(names);

    CHECK_OK(fusor_kernel_compile(c, src, "two.fu", "axpy", &k));
    REQUIRE_VOID(k);
    CHECK(!strcmp(fusor_kernel_name(k), "axpy"));
    CHECK(fusor_kernel_num_params(k) == 5);
    fusor_param_info pi;
    CHECK_OK(fusor_kernel_param(k, 3, &pi));
    CHECK(!strcmp(pi.name, "z") && pi.is_output && pi.is_array == 1 && pi.dtype == FUSOR_F64);
    EXPECT_ERR(fusor_kernel_param(k, 5, &pi), FUSOR_ERROR_INVALID_ARGUMENT, "out of range");

    enum { N = 100 };
    double x[N], y[N], z[N], w[N];
    float xf[N];
    for (int i = 0; i < N; i++) {
        x[i] = i - 50;
        y[i] = 0.5 * i;
        z[i] = w[i] = NAN;
        xf[i] = 1;
    }
    fusor_array *ax = wrap1(c, x, FUSOR_F64, N), *ay = wrap1(c, y, FUSOR_F64, N);
    fusor_array *az = wrap1(c, z, FUSOR_F64, N), *aw = wrap1(c, w, FUSOR_F64, N - 1);
    fusor_array *axf = wrap1(c, xf, FUSOR_F32, N);
    fusor_args *a = NULL;
    CHECK_OK(fusor_args_create(k, &a));

    EXPECT_ERR(fusor_args_set_array(a, "q", ax), FUSOR_ERROR_INVALID_ARGUMENT, "x, y, z, m");
    EXPECT_ERR(fusor_args_set_f64(a, "x", 1.0), FUSOR_ERROR_SHAPE, "is an array");
    EXPECT_ERR(fusor_args_set_array(a, "m", ax), FUSOR_ERROR_INVALID_ARGUMENT, "scalar");
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_INVALID_ARGUMENT, "missing argument 'a'");
    double m = 0;
    EXPECT_ERR(fusor_args_get_f64(a, "m", &m), FUSOR_ERROR_INVALID_ARGUMENT, "no launch");

    CHECK_OK(fusor_args_set_f64(a, "a", 2.0));
    CHECK_OK(fusor_args_set_array(a, "x", axf));
    CHECK_OK(fusor_args_set_array(a, "y", ay));
    CHECK_OK(fusor_args_set_array(a, "z", az));
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_DTYPE, "'x' of kernel axpy has dtype f32");
    CHECK_OK(fusor_args_set_array(a, "x", ax));
    CHECK_OK(fusor_args_set_array(a, "y", aw));
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_SHAPE, "do not broadcast");
    CHECK(isnan(z[0]) && isnan(z[N - 1])); /* nothing written */
    CHECK_OK(fusor_args_set_array(a, "y", ay));
    CHECK_OK(fusor_launch(k, a));
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= z[i] == 2.0 * x[i] + y[i];
    CHECK(ok);
    CHECK_OK(fusor_args_get_f64(a, "m", &m));
    CHECK(m == 2.0 * -50 + 0);
    fusor_dtype dt;
    double mv = 0;
    CHECK_OK(fusor_args_get_scalar(a, "m", &dt, &mv));
    CHECK(dt == FUSOR_F64 && mv == m);
    EXPECT_ERR(fusor_args_get_scalar(a, "z", &dt, &mv), FUSOR_ERROR_INVALID_ARGUMENT, "array");
    fusor_array *got = NULL;
    CHECK_OK(fusor_args_get_array(a, "z", &got));
    CHECK(got == az);
    fusor_array_destroy(got);
    EXPECT_ERR(fusor_args_get_array(a, "m", &got), FUSOR_ERROR_INVALID_ARGUMENT, "scalar");
    CHECK(!strcmp(fusor_args_last_target(a), "cpu"));
    CHECK(fusor_args_last_threads(a) == 1); /* 100 elements run on the caller */

    /* Output of the wrong shape, and of the wrong dtype. */
    CHECK_OK(fusor_args_set_array(a, "z", aw));
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_SHAPE, "output 'z'");
    CHECK_OK(fusor_args_set_array(a, "z", axf));
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_DTYPE, "output 'z'");

    /* In place: z is x. */
    CHECK_OK(fusor_args_set_array(a, "z", ax));
    CHECK_OK(fusor_launch(k, a));
    ok = 1;
    for (int i = 0; i < N; i++) ok &= x[i] == 2.0 * (i - 50) + y[i];
    CHECK(ok);

    /* Partial overlap: z is x shifted by one element. */
    fusor_array *shifted = wrap1(c, x + 1, FUSOR_F64, N - 1), *ysub = wrap1(c, y, FUSOR_F64, N - 1);
    fusor_array *xsub = wrap1(c, x, FUSOR_F64, N - 1);
    CHECK_OK(fusor_args_set_array(a, "x", xsub));
    CHECK_OK(fusor_args_set_array(a, "y", ysub));
    CHECK_OK(fusor_args_set_array(a, "z", shifted));
    double before = x[1];
    EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_ALIAS, "overlaps input 'x'");
    CHECK(x[1] == before);

    /* Unbound output: allocated with the broadcast shape. */
    fusor_args *b = NULL;
    CHECK_OK(fusor_args_create(k, &b));
    CHECK_OK(fusor_args_set_literal(b, "a", "3"));
    CHECK_OK(fusor_args_set_array(b, "x", ay));
    CHECK_OK(fusor_args_set_array(b, "y", ay));
    CHECK_OK(fusor_launch(k, b));
    CHECK_OK(fusor_args_get_array(b, "z", &got));
    CHECK(got && fusor_array_ndim(got) == 1 && fusor_array_shape(got)[0] == N &&
          fusor_array_dtype(got) == FUSOR_F64);
    CHECK(got && ((double *)fusor_array_data(got))[10] == 4.0 * y[10]);
    fusor_array_destroy(got);
    EXPECT_ERR(fusor_args_set_literal(b, "a", "abc"), FUSOR_ERROR_INVALID_ARGUMENT,
               "not a number");

    /* min() of an empty domain. */
    fusor_array *e = wrap1(c, x, FUSOR_F64, 0);
    CHECK_OK(fusor_args_set_array(b, "x", e));
    CHECK_OK(fusor_args_set_array(b, "y", e));
    EXPECT_ERR(fusor_launch(k, b), FUSOR_ERROR_VALUE, "min() of an empty domain");

    /* The argument set belongs to its kernel. */
    fusor_kernel *k2 = NULL;
    CHECK_OK(fusor_kernel_compile(c, src, "two.fu", "twice", &k2));
    EXPECT_ERR(fusor_launch(k2, b), FUSOR_ERROR_INVALID_ARGUMENT, "made for kernel axpy");

    /* Without a usable GPU, asking for one is a clear status (the gpu-labelled tests
     * cover machines that have one). */
    if (fusor_gpu_status() != FUSOR_OK) {
        CHECK(fusor_gpu_count() == 0);
        CHECK_OK(fusor_context_set_target(c, FUSOR_TARGET_GPU));
        EXPECT_ERR(fusor_launch(k, a), FUSOR_ERROR_NO_DEVICE, "GPU");
        CHECK_OK(fusor_context_set_target(c, FUSOR_TARGET_AUTO));
    }

    char *text = NULL;
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_IR, &text));
    /* min(z) and the store of z share one pass over memory. */
    CHECK(text && strstr(text, "pass 0: reduce") && strstr(text, "; store z") &&
          !strstr(text, "pass 1"));
    fusor_free(text);
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_LLVM, &text));
    CHECK(text && strstr(text, "define"));
    fusor_free(text);
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_ASM, &text));
    CHECK(text && strstr(text, "fusor_pass0_contig"));
    fusor_free(text);

    fusor_args_destroy(a);
    fusor_args_destroy(b);
    fusor_kernel_destroy(k);
    fusor_kernel_destroy(k2);
    fusor_array *arrays[] = {ax, ay, az, aw, axf, shifted, ysub, xsub, e};
    for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) fusor_array_destroy(arrays[i]);
}

/* Compiling the same kernel twice compiles once; a ufunc compiles once per dtype set. */
static void test_cache_and_ufunc(void) {
    fusor_context *c = NULL;
    CHECK_OK(fusor_context_create(NULL, &c));
    fusor_kernel *k1 = NULL, *k2 = NULL, *uf = NULL;
    CHECK_OK(fusor_kernel_compile(c, src, "a.fu", "twice", &k1));
    CHECK_OK(fusor_kernel_compile(c, src, "b.fu", "twice", &k2));
    CHECK(sched_compile_count(c) == 1);

    CHECK_OK(fusor_ufunc_create(c, "x * y + 1", &uf));
    int32_t xi[4] = {1, 2, 3, 4};
    float yf[4] = {0.5f, 1, 2, 4};
    fusor_array *ax = wrap1(c, xi, FUSOR_I32, 4), *ay = wrap1(c, yf, FUSOR_F32, 4);
    for (int rep = 0; rep < 3; rep++) {
        fusor_args *a = NULL;
        CHECK_OK(fusor_args_create(uf, &a));
        CHECK_OK(fusor_args_set_array(a, "x", ax));
        CHECK_OK(fusor_args_set_array(a, "y", rep == 2 ? ax : ay));
        CHECK_OK(fusor_launch(uf, a));
        fusor_array *out = NULL;
        CHECK_OK(fusor_args_get_array(a, "out", &out));
        if (out && rep < 2) { /* i32 * f32 is f64 in NumPy 2 */
            CHECK(fusor_array_dtype(out) == FUSOR_F64);
            CHECK(((double *)fusor_array_data(out))[3] == 17.0);
        } else if (out) {
            CHECK(fusor_array_dtype(out) == FUSOR_I32);
            CHECK(((int32_t *)fusor_array_data(out))[3] == 17);
        }
        fusor_array_destroy(out);
        fusor_args_destroy(a);
    }
    CHECK(sched_compile_count(c) == 3);

    /* A scalar expression: `out` is a scalar; a literal argument acts as a literal. */
    fusor_kernel *s = NULL;
    CHECK_OK(fusor_ufunc_create(c, "sum(x) * t", &s));
    fusor_args *a = NULL;
    CHECK_OK(fusor_args_create(s, &a));
    CHECK_OK(fusor_args_set_array(a, "x", ax));
    CHECK_OK(fusor_args_set_literal(a, "t", "0.5"));
    CHECK_OK(fusor_launch(s, a));
    double v = 0;
    CHECK_OK(fusor_args_get_f64(a, "out", &v));
    CHECK(v == 5.0);
    char *text = NULL;
    EXPECT_ERR(fusor_kernel_emit(s, FUSOR_EMIT_IR, &text), FUSOR_ERROR_UNSUPPORTED, "generic");
    fusor_args_destroy(a);
    fusor_kernel_destroy(s);
    fusor_array_destroy(ax);
    fusor_array_destroy(ay);
    fusor_kernel_destroy(k1);
    fusor_kernel_destroy(k2);
    fusor_kernel_destroy(uf);
    fusor_context_destroy(c);
}

/* Many threads compiling and launching on one context at once. */
typedef struct worker {
    fusor_context *c;
    int id, failures;
} worker;

static void *work(void *p) {
    worker *w = p;
    for (int rep = 0; rep < 4; rep++) {
        char src2[256];
        snprintf(src2, sizeof src2, "kernel k(x: f64[]) -> (y: f64[], s: f64) { y = x * %d; "
                 "s = sum(y) }", 1 + (w->id + rep) % 3);
        fusor_kernel *k = NULL;
        fusor_args *a = NULL;
        double x[50000];
        for (int i = 0; i < 50000; i++) x[i] = 1;
        fusor_array *ax = wrap1(w->c, x, FUSOR_F64, 50000);
        double s = 0;
        if (fusor_kernel_compile(w->c, src2, "t.fu", NULL, &k) != FUSOR_OK ||
            fusor_args_create(k, &a) != FUSOR_OK || fusor_args_set_array(a, "x", ax) != FUSOR_OK ||
            fusor_launch(k, a) != FUSOR_OK || fusor_args_get_f64(a, "s", &s) != FUSOR_OK ||
            s != 50000.0 * (1 + (w->id + rep) % 3))
            w->failures++;
        fusor_args_destroy(a);
        fusor_kernel_destroy(k);
        fusor_array_destroy(ax);
    }
    return NULL;
}

static void test_many_threads(void) {
    fusor_context *c = NULL;
    CHECK_OK(fusor_context_create(NULL, &c));
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){c, i, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CHECK_MSG(failures == 0, "%d failures", failures);
    /* Three distinct kernels; threads racing to compile the same one may each compile it
     * (the first to finish is kept), so at most one compile per thread per kernel. */
    CHECK(sched_compile_count(c) <= 3 * 8);
    fusor_context_destroy(c);
}

int main(void) {
    test_basics();
    test_threads();
    fusor_context *c = NULL;
    CHECK_OK(fusor_context_create(NULL, &c));
    if (c) test_launch_and_errors(c);
    fusor_context_destroy(c);
    test_cache_and_ufunc();
    test_many_threads();
    return check_done();
}
