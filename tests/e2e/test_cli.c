/*
 * test_cli.c — the `fusor` command line, driven as a user would (system() on temporary
 * files), against outputs NumPy computed (tests/e2e/data, scripts/gen_e2e_data.py).
 *
 * Checked: `run FILE --kernel K NAME=VALUE -o NAME=PATH` for kernels of several dtypes
 * (bit for bit where the arithmetic is IEEE-exact, within a few ulp for libm functions),
 * a 0-d .npy and a number as scalar inputs, Fortran-order input, scalar outputs printed
 * as `NAME = VALUE` that read back exactly (17 digits f64, 9 f32, bools as true/false),
 * `run -e` with arrays, weak literals and reductions, `--threads 1/2/3` giving the same
 * bytes, `compile --emit ir|llvm|asm`, `info`, `--version`/`--help`, and every documented
 * exit status: 1 for a bad command line or input (unknown option or command, missing file,
 * corrupt or unsupported .npy, shapes that do not broadcast, a missing -o, several kernels
 * without --kernel, which the message lists), 2 for a language error with file:line:col.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fusor.h"

#ifndef FUSOR_CLI
#error "FUSOR_CLI (the fusor binary's path) is set by tests/CMakeLists.txt"
#endif
#ifndef FUSOR_SOURCE_DIR
#define FUSOR_SOURCE_DIR "."
#endif
#define DATA FUSOR_SOURCE_DIR "/tests/e2e/data/"

static fusor_context *ctx;
static char tmp[256];

/* ------------------------------------------------------------------ running fusor */

typedef struct run {
    int status; /* exit status, or -1 when it did not exit normally */
    char *out, *err;
} run;

/* A file's bytes (NUL-terminated; *size receives the length unless NULL). */
static char *slurp_n(const char *path, size_t *size) {
    char *s = check_read_file(path, size);
    if (!s) { /* a missing file reads as empty */
        if (!(s = calloc(1, 1)))
            exit(2);
        if (size)
            *size = 0;
    }
    return s;
}
static char *slurp(const char *path) { return slurp_n(path, NULL); }

static void run_free(run *r) {
    free(r->out);
    free(r->err);
}

/* Runs `fusor ARGS` (ARGS formatted, already shell-quoted) in the data directory. */
static run fusor(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static run fusor(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s/stdout' 2>'%s/stderr'", DATA, FUSOR_CLI,
             args, tmp, tmp);
    run r;
    int w = system(cmd);
    r.status = w != -1 && WIFEXITED(w) ? WEXITSTATUS(w) : -1;
    char p[512];
    snprintf(p, sizeof p, "%s/stdout", tmp);
    r.out = slurp(p);
    snprintf(p, sizeof p, "%s/stderr", tmp);
    r.err = slurp(p);
    return r;
}

#define CHECK_RUN(r, want)                                                                         \
    CHECK_MSG((r).status == (want), "exit %d, want %d; stderr: %s", (r).status, (want), (r).err)

static const char *tmpfile_path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", tmp, name);
    return b;
}

/* ------------------------------------------------------------------ arrays */

static fusor_array *load(const char *path) {
    fusor_array *a = NULL;
    fusor_status st = fusor_npy_load(ctx, path, &a);
    CHECK_MSG(st == FUSOR_OK, "loading %s: %s", path, fusor_last_error());
    return st == FUSOR_OK ? a : NULL;
}

static int same_shape(const fusor_array *a, const fusor_array *b) {
    return fusor_array_ndim(a) == fusor_array_ndim(b) &&
           !memcmp(fusor_array_shape(a), fusor_array_shape(b),
                   sizeof(int64_t) * (size_t)fusor_array_ndim(a));
}

static double elem_f64(const fusor_array *a, int64_t i) {
    const char *p =
        (const char *)fusor_array_data(a) + i * (int64_t)fusor_dtype_size(fusor_array_dtype(a));
    switch (fusor_array_dtype(a)) {
    case FUSOR_F32: {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    case FUSOR_F64: {
        double v;
        memcpy(&v, p, 8);
        return v;
    }
    default: return NAN;
    }
}

/*
 * Compares the .npy fusor wrote with NumPy's expected one: same dtype and shape, and
 * elements bit for bit (ulps == 0; NaN equals NaN) or within `ulps` units in the last
 * place of the expected value (for libm functions, whose last bit NumPy's and glibc's
 * implementations may round differently).  Both files are C order (fusor_npy_save).
 */
static void check_npy(const char *got_path, const char *want_name, double ulps) {
    char want_path[512];
    snprintf(want_path, sizeof want_path, "%s%s", DATA, want_name);
    fusor_array *got = load(got_path), *want = load(want_path);
    if (!got || !want)
        goto done;
    CHECK_MSG(fusor_array_dtype(got) == fusor_array_dtype(want), "%s: dtype %s, NumPy %s",
              want_name, fusor_dtype_name(fusor_array_dtype(got)),
              fusor_dtype_name(fusor_array_dtype(want)));
    CHECK_MSG(same_shape(got, want), "%s: shape differs", want_name);
    if (fusor_array_dtype(got) != fusor_array_dtype(want) || !same_shape(got, want))
        goto done;
    int64_t n = fusor_array_size(got), bad = 0, first = -1;
    size_t es = fusor_dtype_size(fusor_array_dtype(got));
    fusor_dtype dt = fusor_array_dtype(got);
    for (int64_t i = 0; i < n; i++) {
        int ok;
        if (dt == FUSOR_F32 || dt == FUSOR_F64) {
            double a = elem_f64(got, i), b = elem_f64(want, i);
            double ulp = dt == FUSOR_F32 ? ldexp(1.0, ilogb(b) - 23) : ldexp(1.0, ilogb(b) - 52);
            ok = (isnan(a) && isnan(b)) ||
                 (ulps == 0 ? !memcmp((const char *)fusor_array_data(got) + i * (int64_t)es,
                                      (const char *)fusor_array_data(want) + i * (int64_t)es, es)
                            : a == b || fabs(a - b) <= ulps * ulp);
        } else {
            ok = !memcmp((const char *)fusor_array_data(got) + i * (int64_t)es,
                         (const char *)fusor_array_data(want) + i * (int64_t)es, es);
        }
        if (!ok && first < 0)
            first = i;
        bad += !ok;
    }
    CHECK_MSG(bad == 0, "%s: %lld of %lld elements differ from NumPy (first at %lld)", want_name,
              (long long)bad, (long long)n, (long long)first);
done:
    fusor_array_destroy(got);
    fusor_array_destroy(want);
}

/* The value printed for `name` ("name = value" on a line of stdout), or NULL. */
static const char *printed(const run *r, const char *name, char *buf, size_t n) {
    size_t len = strlen(name);
    for (const char *line = r->out; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t ll = end ? (size_t)(end - line) : strlen(line);
        if (ll > len + 3 && !strncmp(line, name, len) && !strncmp(line + len, " = ", 3)) {
            size_t vl = ll - len - 3 < n - 1 ? ll - len - 3 : n - 1;
            memcpy(buf, line + len + 3, vl);
            buf[vl] = 0;
            return buf;
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

/* Reads back a printed f64 and compares its bits with `want`. */
static void check_printed_f64(const run *r, const char *name, double want) {
    char v[128];
    const char *s = printed(r, name, v, sizeof v);
    CHECK_MSG(s != NULL, "no '%s = ...' in: %s", name, r->out);
    if (!s)
        return;
    char *end;
    double got = strtod(s, &end);
    CHECK_MSG(*end == 0 && !memcmp(&got, &want, sizeof got), "%s = %s does not read back as %.17g",
              name, s, want);
}

static void check_printed_text(const run *r, const char *name, const char *want) {
    char v[128];
    const char *s = printed(r, name, v, sizeof v);
    CHECK_MSG(s && !strcmp(s, want), "%s printed as '%s', want '%s'", name, s ? s : "(nothing)",
              want);
}

/* ------------------------------------------------------------------ run FILE */

static void test_run_file(void) {
    /* poly with the scalar c as a 0-d .npy and as a number, x in C and Fortran order. */
    run r = fusor("run kernels.fu --kernel poly x=x_f64.npy c=c_0d.npy -o y='%s'",
                  tmpfile_path("y.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("y.npy"), "poly_y.npy", 0);
    run_free(&r);
    r = fusor("run kernels.fu --kernel poly x=x_f64_fortran.npy c=2.5 -o y='%s'",
              tmpfile_path("y2.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("y2.npy"), "poly_y.npy", 0);
    run_free(&r);

    r = fusor("run kernels.fu --kernel ints a=a_i32.npy b=b_i16.npy -o s='%s' -o q='%s' -o r='%s'",
              tmpfile_path("s.npy"), tmpfile_path("q.npy"), tmpfile_path("r.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("s.npy"), "ints_s.npy", 0);
    check_npy(tmpfile_path("q.npy"), "ints_q.npy", 0);
    check_npy(tmpfile_path("r.npy"), "ints_r.npy", 0);
    run_free(&r);

    r = fusor("run kernels.fu --kernel mixed u=u_u8.npy i=i_i8.npy -o m='%s' -o f='%s'",
              tmpfile_path("m.npy"), tmpfile_path("f.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("m.npy"), "mixed_m.npy", 0);
    check_npy(tmpfile_path("f.npy"), "mixed_f.npy", 0);
    run_free(&r);

    /* NumPy's float32 sin/cos/exp and glibc's may each be off by an ulp or two. */
    r = fusor("run kernels.fu --kernel trig x=x_f32.npy -o y='%s'", tmpfile_path("t.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("t.npy"), "trig_y.npy", 8);
    run_free(&r);

    /* A number for a declared i8 scalar is converted to i8 (the sum wraps in i8). */
    r = fusor("run kernels.fu --kernel small a=a_i8.npy k=-5 -o y='%s'", tmpfile_path("sm.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("sm.npy"), "small_y.npy", 0);
    run_free(&r);

    r = fusor("run kernels.fu --kernel compare x=x_f64.npy y=y_f64.npy -o gt='%s'",
              tmpfile_path("gt.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("gt.npy"), "compare_gt.npy", 0);
    fusor_array *aa = load(DATA "compare_any_all.npy");
    if (aa) {
        const uint8_t *v = fusor_array_data(aa);
        check_printed_text(&r, "any_gt", v[0] ? "true" : "false");
        check_printed_text(&r, "all_gt", v[1] ? "true" : "false");
    }
    fusor_array_destroy(aa);
    run_free(&r);
}

static void test_scalar_outputs(void) {
    /* 17 significant digits for f64 and 9 for f32 read back to the same bits. */
    run r = fusor("run kernels.fu --kernel third x=1");
    CHECK_RUN(r, 0);
    check_printed_f64(&r, "d", 1.0 / 3.0);
    char v[128];
    const char *s = printed(&r, "s", v, sizeof v);
    float want = 1.0f / 3.0f, got = s ? strtof(s, NULL) : NAN;
    CHECK_MSG(s && !memcmp(&got, &want, sizeof got), "s = %s does not read back as %.9g",
              s ? s : "(nothing)", (double)want);
    check_printed_text(&r, "i", "7");
    check_printed_text(&r, "b", "true");
    run_free(&r);

    r = fusor("run kernels.fu --kernel third x=0.1");
    CHECK_RUN(r, 0);
    check_printed_f64(&r, "d", 0.1 / 3);
    check_printed_text(&r, "i", "0");
    check_printed_text(&r, "b", "false");
    run_free(&r);

    /* Reductions against NumPy: max and the count exactly, the sum within 2*gamma_n of
     * sum|x| (any summation order), the mean likewise over n. */
    fusor_array *e = load(DATA "stats_expected.npy");
    r = fusor("run kernels.fu --kernel stats x=x_f64.npy");
    CHECK_RUN(r, 0);
    if (e) {
        const double *w = fusor_array_data(e);
        double n = 20, bound = 2 * n * 0x1p-53 / (1 - n * 0x1p-53) * w[4];
        char buf[128];
        const char *t = printed(&r, "total", buf, sizeof buf);
        CHECK_MSG(t && fabs(strtod(t, NULL) - w[0]) <= bound, "total = %s, NumPy %.17g", t, w[0]);
        check_printed_f64(&r, "largest", w[1]);
        t = printed(&r, "avg", buf, sizeof buf);
        CHECK_MSG(t && fabs(strtod(t, NULL) - w[2]) <= bound / n + 0x1p-52 * fabs(w[2]),
                  "avg = %s, NumPy %.17g", t, w[2]);
        snprintf(buf, sizeof buf, "%.0f", w[3]);
        check_printed_text(&r, "positive", buf);
    }
    fusor_array_destroy(e);
    run_free(&r);
}

/* ------------------------------------------------------------------ run -e */

static void test_run_expr(void) {
    run r =
        fusor("run -e 'sqrt(a*a + b*b)' a=p_f64.npy b=q_f64.npy -o '%s'", tmpfile_path("h.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("h.npy"), "hypot_out.npy", 0);
    run_free(&r);

    /* Weak literals: i8 * 2 + 1 stays i8; a number bound on the command line is a literal
     * too, so f32 * 2.5 stays f32. */
    r = fusor("run -e 'a * 2 + 1' a=a_i8.npy -o '%s'", tmpfile_path("w.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("w.npy"), "weak_out.npy", 0);
    run_free(&r);
    r = fusor("run -e 'a * s' a=x_f32.npy s=2.5 -o '%s'", tmpfile_path("sc.npy"));
    CHECK_RUN(r, 0);
    check_npy(tmpfile_path("sc.npy"), "scaled_out.npy", 0);
    run_free(&r);

    /* A reduction prints `out = ...`; with -o it is also written as a 0-d .npy. */
    fusor_array *e = load(DATA "sum_p.npy");
    r = fusor("run -e 'sum(a)' a=p_f64.npy -o '%s'", tmpfile_path("sum.npy"));
    CHECK_RUN(r, 0);
    if (e) {
        const double *w = fusor_array_data(e);
        char buf[128];
        const char *t = printed(&r, "out", buf, sizeof buf);
        double bound = 2 * 17 * 0x1p-53 * w[1] * 1.01;
        CHECK_MSG(t && fabs(strtod(t, NULL) - w[0]) <= bound, "sum: out = %s, NumPy %.17g", t,
                  w[0]);
        fusor_array *s = load(tmpfile_path("sum.npy"));
        CHECK(s && fusor_array_ndim(s) == 0 && fusor_array_dtype(s) == FUSOR_F64);
        if (s && t)
            CHECK(*(const double *)fusor_array_data(s) == strtod(t, NULL));
        fusor_array_destroy(s);
    }
    fusor_array_destroy(e);
    run_free(&r);

    /* A 0-d .npy is a scalar of its dtype; bools print as true/false. */
    r = fusor("run -e 'c * 2' c=c_0d.npy");
    CHECK_RUN(r, 0);
    check_printed_f64(&r, "out", 5.0);
    run_free(&r);
    r = fusor("run -e 'any(a > 3.99)' a=x_f64.npy");
    CHECK_RUN(r, 0);
    check_printed_text(&r, "out", "true");
    run_free(&r);
    r = fusor("run -e 'all(a > -100) & (sum(a > 100) == 0)' a=x_f64.npy");
    CHECK_RUN(r, 0);
    check_printed_text(&r, "out", "true");
    run_free(&r);
    r = fusor("run -e 'any(a > 100)' a=x_f64.npy");
    CHECK_RUN(r, 0);
    check_printed_text(&r, "out", "false");
    run_free(&r);
}

/* ------------------------------------------------------------------ threads */

/* Runs `expr` on big.npy with 1, 2 and 3 threads (in the math mode `math`, through
 * FUSOR_MATH) and checks that the output file, or the printed scalar, has the same bytes. */
static void same_for_all_thread_counts(const char *expr, const char *math, int64_t n, int array) {
    setenv("FUSOR_MATH", math, 1);
    char *first = NULL;
    size_t first_size = 0;
    for (int t = 1; t <= 3; t++) {
        char out[64];
        snprintf(out, sizeof out, "big_out%d.npy", t);
        run r = fusor("run -e '%s' x='%s' --threads %d -v -o '%s'", expr, tmpfile_path("big.npy"),
                      t, tmpfile_path(out));
        CHECK_RUN(r, 0);
        char want[64];
        snprintf(want, sizeof want, "with %d thread", t);
        CHECK_MSG(strstr(r.err, want) != NULL, "-v with --threads %d says: %s", t, r.err);
        size_t size = strlen(r.out);
        char *bytes = array ? slurp_n(tmpfile_path(out), &size) : strdup(r.out);
        if (array)
            CHECK_MSG(size > (size_t)n * 8, "--threads %d wrote %zu bytes", t, size);
        if (!first) {
            first = bytes;
            first_size = size;
        } else {
            CHECK_MSG(size == first_size && !memcmp(first, bytes, size),
                      "FUSOR_MATH=%s fusor run -e '%s' --threads %d: other bytes than with "
                      "--threads 1",
                      math, expr, t);
            free(bytes);
        }
        run_free(&r);
    }
    free(first);
    unsetenv("FUSOR_MATH");
}

static void test_threads(void) {
    /* Above the parallel threshold: the bytes must not depend on the thread count (docs/
     * architecture.md), whichever math library computes sin. */
    int64_t n = 100003;
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &n, &a));
    if (!a)
        return;
    double *p = fusor_array_data(a);
    for (int64_t i = 0; i < n; i++)
        p[i] = sin((double)i * 0.37) * 10;
    CHECK_OK(fusor_npy_save(tmpfile_path("big.npy"), a));
    fusor_array_destroy(a);
    static const char *const maths[] = {"default", "fast", "scalar"};
    for (int m = 0; m < 3; m++) {
        same_for_all_thread_counts("sin(x) * x - 3 * x + 1", maths[m], n, 1);
        same_for_all_thread_counts("sum(exp(x) * x)", maths[m], n, 0);
    }
}

/* ------------------------------------------------------------------ compile, info */

static void test_compile_info(void) {
    run r = fusor("compile kernels.fu --kernel poly --emit ir");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "poly") && strstr(r.out, "input"), "--emit ir: %s", r.out);
    run_free(&r);
    r = fusor("compile kernels.fu --kernel stats --emit llvm");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "define") && strstr(r.out, "fusor_pass0"), "--emit llvm: %.300s",
              r.out);
    run_free(&r);
    r = fusor("compile kernels.fu --kernel trig --emit asm");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "fusor_pass0") && (strstr(r.out, "ret") || strstr(r.out, ".text")),
              "--emit asm: %.300s", r.out);
    run_free(&r);
    r = fusor("compile kernels.fu --kernel poly --emit wasm");
    CHECK_RUN(r, 1);
    run_free(&r);

    /* PTX needs no GPU. */
    r = fusor("compile kernels.fu --kernel poly --emit ptx");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, ".entry") != NULL, "--emit ptx: %.300s", r.out);
    run_free(&r);

    /* The kernel cache lives in FUSOR_CACHE_DIR (this test's directory), holds what the
     * runs above compiled, and empties. */
    r = fusor("cache dir");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, tmp) != NULL, "cache dir: %s", r.out);
    run_free(&r);
    r = fusor("cache list");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "poly") != NULL, "cache list: %s", r.out);
    run_free(&r);
    r = fusor("cache clear");
    CHECK_RUN(r, 0);
    run_free(&r);
    r = fusor("cache list");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "poly") == NULL, "cache list after clear: %s", r.out);
    run_free(&r);

    r = fusor("info");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "LLVM") && strstr(r.out, "thread"), "info: %s", r.out);
    run_free(&r);
    r = fusor("--version");
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, fusor_version()) != NULL, "--version: %s", r.out);
    run_free(&r);
    r = fusor("--help");
    CHECK_RUN(r, 0);
    CHECK(strstr(r.out, "usage") != NULL);
    run_free(&r);
}

/* ------------------------------------------------------------------ exit statuses */

static void test_exit_statuses(void) {
    struct {
        const char *args;
        int status;
        const char *stderr_has; /* NULL: anything */
    } cases[] = {
        {"", 1, "usage"},
        {"frobnicate", 1, "frobnicate"},
        {"run kernels.fu --kernel poly --bogus x=x_f64.npy c=1", 1, "--bogus"},
        {"run no_such_file.fu x=x_f64.npy", 1, "no_such_file.fu"},
        {"run kernels.fu --kernel poly x=no_such.npy c=1 -o y=/dev/null", 1, "no_such.npy"},
        {"run kernels.fu --kernel poly x=corrupt.npy c=1 -o y=/dev/null", 1, "corrupt.npy"},
        {"run kernels.fu --kernel poly x=truncated.npy c=1 -o y=/dev/null", 1, "truncated.npy"},
        {"run kernels.fu --kernel poly x=x_complex.npy c=1 -o y=/dev/null", 1, "x_complex.npy"},
        {"run kernels.fu --kernel compare x=x_f64.npy y=p_f64.npy -o gt=/dev/null", 1, "broadcast"},
        {"run kernels.fu --kernel poly x=a_i32.npy c=1 -o y=/dev/null", 1, "x"},
        {"run kernels.fu --kernel poly x=x_f64.npy c=1", 1, "-o"},
        {"run kernels.fu --kernel poly x=x_f64.npy -o y=/dev/null", 1, "'c'"},
        {"run kernels.fu --kernel nosuch x=x_f64.npy", 1, "poly"},
        {"run kernels.fu x=x_f64.npy c=1", 1,
         "poly, ints, mixed, trig, compare, stats, third, small"},
        {"run kernels.fu --kernel small a=a_i8.npy k=300 -o y=/dev/null", 1, "300"},
        {"cache bogus", 1, "cache"},
        {"run kernels.fu --kernel poly x=x_f64.npy c=1 --threads many", 1, "many"},
        {"run kernels.fu --kernel poly x=x_f64.npy c=1 --target tpu", 1, "tpu"},
        {"run -e 'a +' a=x_f64.npy", 2, NULL},
        {"compile bad.fu --emit ir", 2, "bad.fu:4:13"},
        {"run bad.fu x=x_f64.npy -o y=/dev/null", 2, "bad.fu:4:13"},
        {"compile no_such_file.fu --emit ir", 1, "no_such_file.fu"},
        {"info extra", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r = fusor("%s", cases[i].args);
        CHECK_MSG(r.status == cases[i].status, "fusor %s: exit %d, want %d; stderr: %s",
                  cases[i].args, r.status, cases[i].status, r.err);
        if (cases[i].stderr_has)
            CHECK_MSG(strstr(r.err, cases[i].stderr_has) != NULL,
                      "fusor %s: stderr does not mention '%s': %s", cases[i].args,
                      cases[i].stderr_has, r.err);
        CHECK_MSG(r.status == 0 || r.err[0], "fusor %s failed silently", cases[i].args);
        run_free(&r);
    }
    /* A language error shows the line and a caret under column 13. */
    run r = fusor("compile bad.fu --emit ir");
    CHECK_MSG(strstr(r.err, "y = t + undefined_name") && strstr(r.err, "\n            ^"),
              "no source line and caret: %s", r.err);
    run_free(&r);
}

static void remove_tmp(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s/fusor_cli_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    REQUIRE(mkdtemp(tmp) != NULL);
    /* The fusor processes keep their kernel cache here, not in the user's home. */
    REQUIRE(setenv("FUSOR_CACHE_DIR", tmp, 1) == 0);
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE(access(FUSOR_CLI, X_OK) == 0);
    test_run_file();
    test_scalar_outputs();
    test_run_expr();
    test_threads();
    test_compile_info();
    test_exit_statuses();
    fusor_context_destroy(ctx);
    remove_tmp();
    return check_done();
}
