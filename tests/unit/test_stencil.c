/*
 * test_stencil.c — stencils (relative indexing with boundary handling) through the whole
 * public path: language errors, then every boundary mode on 1-D, 2-D and 3-D domains run
 * by the JIT with 1, 2 and 3 threads, by the reference interpreter and by loops written
 * here in C with their own boundary arithmetic.  All must agree bit for bit.  Outputs are
 * poisoned first, so an element left unwritten shows; with `interior` the border must
 * still hold the poison.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "scheduler.h"

static fusor_context *ctx;

/* A NaN with a payload no computation here produces: untouched elements keep it. */
static double poison(void) {
    uint64_t bits = 0x7ff4dead0000beefull;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ------------------------------------------------------------------ errors */

static void expect_language_error(const char *src, const char *needle1, const char *needle2) {
    fusor_kernel *k = NULL;
    fusor_status st = fusor_kernel_compile(ctx, src, "st.fu", NULL, &k);
    const char *msg = fusor_last_error();
    CHECK_MSG(st == FUSOR_ERROR_LANGUAGE, "%s: status %s", src, fusor_status_name(st));
    CHECK_MSG(strstr(msg, needle1) != NULL, "'%s' not in: %s", needle1, msg);
    CHECK_MSG(strstr(msg, needle2) != NULL, "'%s' not in: %s", needle2, msg);
    CHECK_MSG(strstr(msg, "st.fu:") != NULL, "no file:line:col in: %s", msg);
    fusor_kernel_destroy(k);
}

static void test_errors(void) {
    expect_language_error("kernel k(u: f64[]) -> (o: f64[]) {\n  o = u[-1]\n}\n", "st.fu:2:7",
                          "parameter 'u' is indexed with offsets on undeclared");
    expect_language_error("kernel k(u: f64[n] clamp) -> (o: f64[]) {\n  o = u[0, 1]\n}\n",
                          "rank mismatch", "'u' has 1 declared dimension but is indexed with 2");
    expect_language_error("kernel k(w: f64[n, m] wrap) -> (o: f64[]) {\n  o = w[1]\n}\n",
                          "rank mismatch", "'w'");
    expect_language_error("kernel k(u: f64[n]) -> (o: f64[]) {\n  o = u[1]\n}\n",
                          "'u' is indexed with offsets but declares no boundary", "st.fu:2:7");
    expect_language_error("kernel k(t: f64) -> (o: f64) {\n  o = t[1]\n}\n", "'t' is a scalar",
                          "st.fu:2");
    expect_language_error("kernel k(u: f64 clamp) -> (o: f64) {\n  o = u\n}\n",
                          "boundary 'clamp' needs an array with declared dimensions", "st.fu:1");
    expect_language_error("kernel k(u: f64[n] clamp) -> (o: f64[]) {\n  o = u[n]\n}\n",
                          "an integer offset", "st.fu:2");
    expect_language_error("kernel k(u: f64[n] clamp) -> (o: f64[]) {\n  let v = u\n  o = v[1]\n}\n",
                          "'v' is not a parameter", "st.fu:3");
    expect_language_error("kernel k(u: f64[n] clamp) -> (o: f64[n] zero) {\n  o = u[1]\n}\n",
                          "output 'o' declares a boundary", "st.fu:1");

    /* Launch-time: the bound array must have the declared rank; no in-place stencil. */
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel k(u: f64[n, m] clamp) -> (o: f64[]) {\n"
                                  "  o = u[0, 1] - u\n}\n",
                                  "st.fu", NULL, &k));
    double buf[12] = {0};
    int64_t s1[1] = {12}, s2[2] = {3, 4};
    fusor_array *a1, *a2;
    CHECK_OK(fusor_array_wrap(ctx, buf, FUSOR_F64, 1, s1, NULL, &a1));
    CHECK_OK(fusor_array_wrap(ctx, buf, FUSOR_F64, 2, s2, NULL, &a2));
    fusor_args *args;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_array(args, "u", a1));
    fusor_status st = fusor_launch(k, args);
    CHECK(st == FUSOR_ERROR_SHAPE);
    CHECK_MSG(strstr(fusor_last_error(), "'u'") && strstr(fusor_last_error(), "rank mismatch"),
              "%s", fusor_last_error());
    CHECK_OK(fusor_args_set_array(args, "u", a2));
    CHECK_OK(fusor_args_set_array(args, "o", a2));
    st = fusor_launch(k, args);
    CHECK(st == FUSOR_ERROR_ALIAS);
    CHECK_MSG(strstr(fusor_last_error(), "'u'") != NULL, "%s", fusor_last_error());
    fusor_args_destroy(args);
    fusor_array_destroy(a1);
    fusor_array_destroy(a2);
    fusor_kernel_destroy(k);
}

/* ------------------------------------------------------------------ boundaries */

enum { CLAMP, WRAP, ZERO, MIRROR, INTERIOR, NMODES };
static const char *const mode_name[NMODES] = {"clamp", "wrap", "zero", "mirror", "interior"};

/* Index i of a dimension of n elements under mode m, or -1 for a zero read; written here
 * independently of fusor (mirror reflects step by step, as NumPy's pad mode 'reflect'). */
static int64_t remap(int m, int64_t i, int64_t n) {
    if (i >= 0 && i < n)
        return i;
    switch (m) {
    case CLAMP: return i < 0 ? 0 : n - 1;
    case WRAP: return ((i % n) + n) % n;
    case MIRROR:
        if (n == 1)
            return 0;
        while (i < 0 || i >= n)
            i = i < 0 ? -i : 2 * (n - 1) - i;
        return i;
    default: return -1;
    }
}

typedef struct grid {
    int ndim, mode;
    int64_t shape[3];
    const double *u;
} grid;

/* u at (i, j, k) + offsets, as the boundary says. */
static double at(const grid *g, int64_t i, int64_t j, int64_t k) {
    int64_t idx[3] = {i, j, k}, flat = 0;
    for (int d = 0; d < g->ndim; d++) {
        int64_t r = remap(g->mode, idx[d], g->shape[d]);
        if (r < 0)
            return 0.0;
        flat = flat * g->shape[d] + r;
    }
    return g->u[flat];
}

/* The kernels, one per rank, in the language and in C with the same operation order. */
static const char *const src_1d = "kernel s1(u: f64[n] %s, w: f64[]) -> (o: f64[]) {\n"
                                  "  o = 0.25*u[-2] + u[-1] - 2.0*u[0] + 0.5*u[+1] + 3.0*u[2] + w\n"
                                  "}\n";
static const char *const src_2d =
    "kernel s2(u: f64[n, m] %s, w: f64[]) -> (o: f64[]) {\n"
    "  o = (u[-1, 0] + u[1, 0] + u[0, -1] + u[0, 1] - 4.0*u[0, 0] + 0.5*u[1, 1]\n"
    "       + 0.125*u[-2, +1] + w)\n"
    "}\n";
static const char *const src_3d =
    "kernel s3(u: f64[n, m, l] %s, w: f64[]) -> (o: f64[]) {\n"
    "  o = (u[-1, 0, 0] + 2.0*u[1, 0, 0] + u[0, -1, 0] + u[0, 1, 0] + u[0, 0, -1]\n"
    "       + 3.0*u[0, 0, 1] - 6.0*u[0, 0, 0] + 0.5*u[1, 1, -1] + w)\n"
    "}\n";
/* Halo per side and rank: [rank][dim] lo, hi (for interior). */
static const int halo_lo[3][3] = {{2}, {2, 1}, {1, 1, 1}};
static const int halo_hi[3][3] = {{2}, {1, 1}, {1, 1, 1}};

static double hand_point(const grid *g, int64_t i, int64_t j, int64_t k, double w) {
    switch (g->ndim) {
    case 1:
        return 0.25 * at(g, i - 2, 0, 0) + at(g, i - 1, 0, 0) - 2.0 * at(g, i, 0, 0) +
               0.5 * at(g, i + 1, 0, 0) + 3.0 * at(g, i + 2, 0, 0) + w;
    case 2:
        return at(g, i - 1, j, 0) + at(g, i + 1, j, 0) + at(g, i, j - 1, 0) + at(g, i, j + 1, 0) -
               4.0 * at(g, i, j, 0) + 0.5 * at(g, i + 1, j + 1, 0) +
               0.125 * at(g, i - 2, j + 1, 0) + w;
    default:
        return at(g, i - 1, j, k) + 2.0 * at(g, i + 1, j, k) + at(g, i, j - 1, k) +
               at(g, i, j + 1, k) + at(g, i, j, k - 1) + 3.0 * at(g, i, j, k + 1) -
               6.0 * at(g, i, j, k) + 0.5 * at(g, i + 1, j + 1, k - 1) + w;
    }
}

/* The hand-written loop: o over the whole domain, or over the interior (rest untouched). */
static void hand(const grid *g, const double *w, double *o) {
    int64_t n[3] = {1, 1, 1}, lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int d = 0; d < g->ndim; d++) {
        n[d] = g->shape[d];
        if (g->mode == INTERIOR)
            lo[d] = halo_lo[g->ndim - 1][d], hi[d] = halo_hi[g->ndim - 1][d];
    }
    for (int64_t i = lo[0]; i < n[0] - hi[0]; i++)
        for (int64_t j = lo[1]; j < n[1] - hi[1]; j++)
            for (int64_t k = lo[2]; k < n[2] - hi[2]; k++) {
                int64_t f = (i * n[1] + j) * n[2] + k;
                o[f] = hand_point(g, i, j, k, w[f]);
            }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 4.0 - 2.0;
}

typedef enum backend { JIT1, JIT2, JIT3, REF, UNFUSED, NB } backend;
static const char *const backend_name[NB] = {"jit 1 thread", "jit 2 threads", "jit 3 threads",
                                             "interpreter", "unfused, 2 threads"};

/* One launch by backend b (the unfused launch reads shifted views and padded copies). */
static fusor_status launch_by(backend b, fusor_kernel *k, fusor_args *a) {
    fusor_set_num_threads(b == REF ? 1 : b == UNFUSED ? 2 : (int)b + 1);
    return b == REF       ? sched_launch_reference(k, a)
           : b == UNFUSED ? fusor_launch_unfused(k, a)
                          : fusor_launch(k, a);
}

/* strided: u is a view of every other element of a larger buffer (the strided row
 * functions run). */
static void run_case(int ndim, int mode, const int64_t *shape, int strided) {
    char src[1024];
    const char *fmt = ndim == 1 ? src_1d : ndim == 2 ? src_2d : src_3d;
    snprintf(src, sizeof src, fmt, mode_name[mode]);
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx, src, "stencil.fu", NULL, &k));
    if (!k)
        return;
    int64_t size = 1;
    for (int d = 0; d < ndim; d++)
        size *= shape[d];
    double *u = malloc(sizeof(double) * (size_t)size), *w = malloc(sizeof(double) * (size_t)size);
    double *want = malloc(sizeof(double) * (size_t)size),
           *got = malloc(sizeof(double) * (size_t)size);
    for (int64_t e = 0; e < size; e++)
        u[e] = rnd(), w[e] = rnd(), want[e] = poison();
    grid g = {.ndim = ndim, .mode = mode, .u = u};
    memcpy(g.shape, shape, sizeof(int64_t) * (size_t)ndim);
    hand(&g, w, want);

    fusor_array *ua, *wa, *oa;
    double *ubig = malloc(sizeof(double) * (size_t)size * 2);
    int64_t ustrides[3];
    for (int d = ndim - 1, step = 2 * (int)sizeof(double); d >= 0; d--) {
        ustrides[d] = step;
        step *= (int)shape[d];
    }
    for (int64_t e = 0; e < size; e++)
        ubig[2 * e] = u[e], ubig[2 * e + 1] = poison();
    if (strided)
        CHECK_OK(fusor_array_wrap(ctx, ubig, FUSOR_F64, ndim, shape, ustrides, &ua));
    else
        CHECK_OK(fusor_array_wrap(ctx, u, FUSOR_F64, ndim, shape, NULL, &ua));
    CHECK_OK(fusor_array_wrap(ctx, w, FUSOR_F64, ndim, shape, NULL, &wa));
    CHECK_OK(fusor_array_wrap(ctx, got, FUSOR_F64, ndim, shape, NULL, &oa));
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "u", ua));
    CHECK_OK(fusor_args_set_array(a, "w", wa));
    CHECK_OK(fusor_args_set_array(a, "o", oa));
    for (int b = 0; b < NB; b++) {
        for (int64_t e = 0; e < size; e++)
            got[e] = poison();
        fusor_status st = launch_by((backend)b, k, a);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", backend_name[b], fusor_last_error());
        int64_t bad = -1;
        for (int64_t e = 0; e < size && bad < 0; e++)
            if (memcmp(&got[e], &want[e], sizeof(double)))
                bad = e;
        CHECK_MSG(bad < 0, "%dD %s shape %lld...%s, %s: element %lld is %.17g, want %.17g", ndim,
                  mode_name[mode], (long long)shape[0], strided ? " strided" : "", backend_name[b],
                  (long long)bad, bad >= 0 ? got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
    }
    fusor_set_num_threads(0);
    fusor_args_destroy(a);
    fusor_array_destroy(ua);
    fusor_array_destroy(wa);
    fusor_array_destroy(oa);
    fusor_kernel_destroy(k);
    free(u), free(w), free(want), free(got), free(ubig);
}

static void test_boundaries(void) {
    static const int64_t s1[][1] = {{1}, {2}, {3}, {5}, {37}, {4099}};
    static const int64_t s2[][2] = {{3, 3}, {4, 9}, {17, 23}, {200, 300}};
    static const int64_t s3[][3] = {{3, 3, 3}, {5, 6, 7}, {12, 40, 70}};
    for (int m = 0; m < NMODES; m++) {
        for (size_t i = 0; i < sizeof s1 / sizeof *s1; i++)
            run_case(1, m, s1[i], 0);
        for (size_t i = 0; i < sizeof s2 / sizeof *s2; i++)
            run_case(2, m, s2[i], 0);
        for (size_t i = 0; i < sizeof s3 / sizeof *s3; i++)
            run_case(3, m, s3[i], 0);
        run_case(1, m, s1[4], 1);
        run_case(2, m, s2[2], 1);
        run_case(3, m, s3[1], 1);
        /* Large enough slices that the CPU walks the box in cache tiles (run.c): rows cut
         * along x; planes cut along y; both, with a partial last tile. */
        static const int64_t t2[2] = {9, 16000}, t3[3] = {9, 130, 140}, t3w[3] = {3, 4, 20000};
        run_case(2, m, t2, 0);
        run_case(3, m, t3, 0);
        run_case(3, m, t3w, m == 0);
    }
}

/* Reductions cover only the interior; an i64 sum is exact, so compared with a C loop. */
static void test_interior_reduction(void) {
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel r(u: i64[n, m] interior) -> (d: i64[], s: i64, "
                                  "mx: i64, mn: f64) {\n"
                                  "  d = u[0, 1] - u[0, -1] + u[-1, 0]\n"
                                  "  s = sum(d)\n"
                                  "  mx = max(u[1, 1])\n"
                                  "  mn = mean(d)\n"
                                  "}\n",
                                  "r.fu", NULL, &k));
    if (!k)
        return;
    enum { R = 150, C = 301 };
    static int64_t u[R * C], d[R * C];
    for (int e = 0; e < R * C; e++)
        u[e] = (int64_t)(rnd() * 1000);
    /* The halo: u[0, -1], u[-1, 0] cut one from the start of both dimensions, u[0, 1]
     * and u[1, 1] one from their ends. */
    int64_t want_s = 0, want_mx = INT64_MIN;
    for (int i = 1; i < R - 1; i++)
        for (int j = 1; j < C - 1; j++) {
            want_s += u[i * C + j + 1] - u[i * C + j - 1] + u[(i - 1) * C + j];
            if (u[(i + 1) * C + j + 1] > want_mx)
                want_mx = u[(i + 1) * C + j + 1];
        }
    int64_t shape[2] = {R, C};
    fusor_array *ua, *da;
    CHECK_OK(fusor_array_wrap(ctx, u, FUSOR_I64, 2, shape, NULL, &ua));
    CHECK_OK(fusor_array_wrap(ctx, d, FUSOR_I64, 2, shape, NULL, &da));
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "u", ua));
    CHECK_OK(fusor_args_set_array(a, "d", da));
    for (int b = 0; b < NB; b++) {
        for (int e = 0; e < R * C; e++)
            d[e] = -7;
        fusor_status st = launch_by((backend)b, k, a);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", backend_name[b], fusor_last_error());
        int64_t s = 0, mx = 0;
        fusor_dtype dt;
        CHECK_OK(fusor_args_get_scalar(a, "s", &dt, &s));
        CHECK_OK(fusor_args_get_scalar(a, "mx", &dt, &mx));
        double mn = 0; /* the values are small integers: every sum is exact */
        CHECK_OK(fusor_args_get_f64(a, "mn", &mn));
        CHECK_MSG(mn == (double)want_s / ((R - 2) * (C - 2)), "%s: mean %.17g over the interior",
                  backend_name[b], mn);
        CHECK_MSG(s == want_s, "%s: sum %lld, want %lld", backend_name[b], (long long)s,
                  (long long)want_s);
        CHECK_MSG(mx == want_mx, "%s: max %lld, want %lld", backend_name[b], (long long)mx,
                  (long long)want_mx);
        int bad = 0;
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) {
                int inside = i >= 1 && i < R - 1 && j >= 1 && j < C - 1;
                int64_t want =
                    inside ? u[i * C + j + 1] - u[i * C + j - 1] + u[(i - 1) * C + j] : -7;
                bad += d[i * C + j] != want;
            }
        CHECK_MSG(bad == 0, "%s: %d elements of d wrong", backend_name[b], bad);
    }
    fusor_set_num_threads(0);
    fusor_args_destroy(a);
    fusor_array_destroy(ua);
    fusor_array_destroy(da);
    fusor_kernel_destroy(k);
}

/* Equal stencil loads share one node; u[0, 0] is u; the IR text shows offsets, boundaries. */
static void test_ir(void) {
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel h(u: f32[n, m] wrap) -> (o: f32[]) {\n"
                                  "  o = u[0, 1] * u[0, +1] + u[0, 0] * u + u[-3, 0]\n"
                                  "}\n",
                                  "h.fu", NULL, &k));
    if (!k)
        return;
    char *ir = NULL;
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_IR, &ir));
    if (ir) {
        int loads = 0, offset_loads = 0;
        for (const char *p = strstr(ir, "input.f32 u"); p; p = strstr(p + 1, "input.f32 u"))
            loads++;
        for (const char *p = strstr(ir, "] wrap  ;"); p; p = strstr(p + 1, "] wrap  ;"))
            offset_loads++;
        CHECK_MSG(loads == 3 && offset_loads == 2, "%d loads, %d offset loads:\n%s", loads,
                  offset_loads, ir);
        CHECK_MSG(strstr(ir, "u[+0, +1] wrap") && strstr(ir, "u[-3, +0] wrap") &&
                      strstr(ir, "(u: f32[n, m] wrap)"),
                  "%s", ir);
    }
    fusor_free(ir);
    fusor_kernel_destroy(k);
}

/* Two parameters with different boundaries and dtypes in one kernel: v's interior halo
 * bounds the domain, u clamps (f32 and i32, zero reads of i32 as well). */
static void test_mixed(void) {
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(ctx,
                                  "kernel mx(u: f32[n, m] clamp, v: f64[a, b] interior,\n"
                                  "          z: i32[n, m] zero) -> (o: f64[]) {\n"
                                  "  o = u[-2, 1] * v[0, -1] + v[1, 0] + z[0, 3] - z[-1, -1]\n"
                                  "}\n",
                                  "mx.fu", NULL, &k));
    if (!k)
        return;
    enum { R = 41, C = 53 };
    static float u[R * C];
    static double v[R * C], o[R * C], want[R * C];
    static int32_t z[R * C];
    for (int e = 0; e < R * C; e++) {
        u[e] = (float)rnd(), v[e] = rnd(), z[e] = (int32_t)(rnd() * 1e6);
        want[e] = poison();
    }
    for (int i = 0; i < R - 1; i++)
        for (int j = 1; j < C; j++) {
            int ui = i - 2 < 0 ? 0 : i - 2, uj = j + 1 > C - 1 ? C - 1 : j + 1;
            double z1 = j + 3 < C ? z[i * C + j + 3] : 0, z2 = i >= 1 ? z[(i - 1) * C + j - 1] : 0;
            want[i * C + j] =
                (double)u[ui * C + uj] * v[i * C + j - 1] + v[(i + 1) * C + j] + z1 - z2;
        }
    int64_t shape[2] = {R, C};
    fusor_array *ua, *va, *za, *oa;
    CHECK_OK(fusor_array_wrap(ctx, u, FUSOR_F32, 2, shape, NULL, &ua));
    CHECK_OK(fusor_array_wrap(ctx, v, FUSOR_F64, 2, shape, NULL, &va));
    CHECK_OK(fusor_array_wrap(ctx, z, FUSOR_I32, 2, shape, NULL, &za));
    CHECK_OK(fusor_array_wrap(ctx, o, FUSOR_F64, 2, shape, NULL, &oa));
    fusor_args *a;
    CHECK_OK(fusor_args_create(k, &a));
    CHECK_OK(fusor_args_set_array(a, "u", ua));
    CHECK_OK(fusor_args_set_array(a, "v", va));
    CHECK_OK(fusor_args_set_array(a, "z", za));
    CHECK_OK(fusor_args_set_array(a, "o", oa));
    for (int b = 0; b < NB; b++) {
        for (int e = 0; e < R * C; e++)
            o[e] = poison();
        fusor_status st = launch_by((backend)b, k, a);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", backend_name[b], fusor_last_error());
        int bad = 0;
        for (int e = 0; e < R * C; e++)
            bad += memcmp(&o[e], &want[e], sizeof(double)) != 0;
        CHECK_MSG(bad == 0, "%s: %d elements differ", backend_name[b], bad);
    }
    fusor_set_num_threads(0);
    fusor_args_destroy(a);
    fusor_array_destroy(ua);
    fusor_array_destroy(va);
    fusor_array_destroy(za);
    fusor_array_destroy(oa);
    fusor_kernel_destroy(k);
}

int main(void) {
    fusor_context_options o = {0};
    o.disk_cache = -1;
    if (fusor_context_create(&o, &ctx) != FUSOR_OK) {
        fprintf(stderr, "context: %s\n", fusor_last_error());
        return 1;
    }
    test_errors();
    test_boundaries();
    test_interior_reduction();
    test_ir();
    test_mixed();
    fusor_context_destroy(ctx);
    return check_done();
}
