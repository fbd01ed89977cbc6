/*
 * bench_cases.c — fusor against hand-written C loops, case by case, in one process.
 *
 *   fusor_bench_cases [--sizes 1e3,1e5,1e7] [--threads 1,2] [--cases a,b] [--json]
 *                     [--sweep] [--compile] [--math default|fast|scalar]
 *
 * Every case runs on the same inputs through fusor (public API, outputs bound, so a
 * launch allocates nothing) and through its C loop (c_loops.c, -O3 -march=native
 * -fopenmp: `libm` as written, `mvec` with -ffast-math so gcc calls glibc's vector math).
 * Each is timed by repeating it for at least 0.2 s (5 runs at least) and taking the
 * median; results are checked against the C loop.  --compile measures compile latency
 * and its breakdown (internal timers of the front end and codegen/host.c).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "c_loops.h"
#include "codegen.h"
#include "frontend.h"
#include "fusor.h"

#define CHECKED(call)                                                                              \
    do {                                                                                           \
        if ((call) != FUSOR_OK) {                                                                  \
            fprintf(stderr, "%s failed: %s\n", #call, fusor_last_error());                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ the cases */

typedef struct bufs {
    int64_t n;
    void *in[3];
    void *out[2];
    double scalar; /* a scalar output */
} bufs;

typedef struct bcase {
    const char *name, *source;
    int nin, nout;
    fusor_dtype dtype;
    const char *in_names[3], *out_names[2];
    const char *scalar_names[2];
    double scalar_values[2];
    double bytes_per_element; /* compulsory traffic, summed over the kernel's passes */
    int math;                 /* uses sin/cos/exp/log: the libm and mvec loops differ */
    void (*c)(bufs *b, int mvec);
} bcase;

static void run_triad(bufs *b, int m) {
    (m ? c_triad_mvec : c_triad_libm)(b->n, b->in[0], b->in[1], 0.5, b->out[0]);
}
static void run_saxpy(bufs *b, int m) {
    (m ? c_saxpy_mvec : c_saxpy_libm)(b->n, 0.5f, b->in[0], b->in[1]);
}
static void run_poly(bufs *b, int m) { (m ? c_poly_mvec : c_poly_libm)(b->n, b->in[0], b->out[0]); }
static void run_sincos(bufs *b, int m) {
    (m ? c_sincos_mvec : c_sincos_libm)(b->n, b->in[0], b->in[1], b->out[0]);
}
static void run_gauss(bufs *b, int m) {
    (m ? c_gauss_mvec : c_gauss_libm)(b->n, b->in[0], b->in[1], b->out[0]);
}
static void run_hypot(bufs *b, int m) {
    (m ? c_hypot_mvec : c_hypot_libm)(b->n, b->in[0], b->in[1], b->out[0]);
}
static void run_select(bufs *b, int m) {
    (m ? c_select_mvec : c_select_libm)(b->n, b->in[0], b->in[1], b->out[0]);
}
static void run_dot(bufs *b, int m) {
    b->scalar = (m ? c_dot_mvec : c_dot_libm)(b->n, b->in[0], b->in[1]);
}
static void run_softmax(bufs *b, int m) {
    (m ? c_softmax_mvec : c_softmax_libm)(b->n, b->in[0], b->out[0]);
}
static void run_bs(bufs *b, int m) {
    (m ? c_black_scholes_mvec : c_black_scholes_libm)(b->n, b->in[0], b->in[1], b->in[2], 0.02,
                                                      0.30, b->out[0], b->out[1]);
}
static void run_three(bufs *b, int m) {
    (m ? c_three_mvec : c_three_libm)(b->n, 0.5, b->in[0], b->in[1], b->out[0], b->out[1]);
}

#define BS_SOURCE                                                                                  \
    "kernel black_scholes(s: f64[], k: f64[], t: f64[], r: f64, v: f64) -> (call: f64[], "         \
    "put: f64[]) {\n"                                                                              \
    "    let sqrt_t = sqrt(t)\n"                                                                   \
    "    let d1 = (log(s / k) + (r + 0.5 * v * v) * t) / (v * sqrt_t)\n"                           \
    "    let d2 = d1 - v * sqrt_t\n"                                                               \
    "    let k1 = 1 / (1 + 0.2316419 * abs(d1))\n"                                                 \
    "    let k2 = 1 / (1 + 0.2316419 * abs(d2))\n"                                                 \
    "    let p1 = k1 * (0.319381530 + k1 * (-0.356563782 + k1 * (1.781477937 + k1 * "              \
    "(-1.821255978 + k1 * 1.330274429))))\n"                                                       \
    "    let p2 = k2 * (0.319381530 + k2 * (-0.356563782 + k2 * (1.781477937 + k2 * "              \
    "(-1.821255978 + k2 * 1.330274429))))\n"                                                       \
    "    let w1 = 1 - 0.3989422804014327 * exp(-0.5 * d1 * d1) * p1\n"                             \
    "    let w2 = 1 - 0.3989422804014327 * exp(-0.5 * d2 * d2) * p2\n"                             \
    "    let nd1 = where(d1 < 0, 1 - w1, w1)\n"                                                    \
    "    let nd2 = where(d2 < 0, 1 - w2, w2)\n"                                                    \
    "    let disc = k * exp(-r * t)\n"                                                             \
    "    call = s * nd1 - disc * nd2\n"                                                            \
    "    put = disc * (1 - nd2) - s * (1 - nd1)\n"                                                 \
    "}\n"

static const bcase cases[] = {
    {"triad",
     "kernel triad(b: f64[], c: f64[], s: f64) -> (a: f64[]) { a = b + s * c }",
     2,
     1,
     FUSOR_F64,
     {"b", "c"},
     {"a"},
     {"s"},
     {0.5},
     24,
     0,
     run_triad},
    {"saxpy_f32",
     "kernel saxpy(a: f32, x: f32[], y: f32[]) -> (y2: f32[]) { y2 = a * x + y }",
     2,
     1,
     FUSOR_F32,
     {"x", "y"},
     {"y2"},
     {"a"},
     {0.5},
     12,
     0,
     run_saxpy},
    {"polynomial",
     "kernel poly(x: f64[]) -> (p: f64[]) {\n"
     "    p = ((((((0.5 * x - 1.25) * x + 2.0) * x - 0.75) * x + 3.5) * x - 1.0) * x) + 0.25 }",
     1,
     1,
     FUSOR_F64,
     {"x"},
     {"p"},
     {0},
     {0},
     16,
     0,
     run_poly},
    {"sin2_cos2",
     "kernel sc(a: f64[], b: f64[]) -> (out: f64[]) { out = sin(a)**2 + cos(b)**2 }",
     2,
     1,
     FUSOR_F64,
     {"a", "b"},
     {"out"},
     {0},
     {0},
     24,
     1,
     run_sincos},
    {"exp_gauss",
     "kernel g(a: f64[], b: f64[]) -> (out: f64[]) { out = exp(-a*a) * b }",
     2,
     1,
     FUSOR_F64,
     {"a", "b"},
     {"out"},
     {0},
     {0},
     24,
     1,
     run_gauss},
    {"hypot",
     "kernel h(a: f64[], b: f64[]) -> (out: f64[]) { out = sqrt(a*a + b*b) }",
     2,
     1,
     FUSOR_F64,
     {"a", "b"},
     {"out"},
     {0},
     {0},
     24,
     0,
     run_hypot},
    {"where",
     "kernel w(a: f64[], b: f64[]) -> (out: f64[]) { out = where(a > b, a - b, b * 0.5) }",
     2,
     1,
     FUSOR_F64,
     {"a", "b"},
     {"out"},
     {0},
     {0},
     24,
     0,
     run_select},
    {"dot",
     "kernel dot(a: f64[], b: f64[]) -> (d: f64) { d = sum(a * b) }",
     2,
     0,
     FUSOR_F64,
     {"a", "b"},
     {"d"},
     {0},
     {0},
     16,
     0,
     run_dot},
    {"softmax",
     "kernel softmax(x: f64[]) -> (out: f64[]) {\n    let e = exp(x)\n    out = e / sum(e)\n}",
     1,
     1,
     FUSOR_F64,
     {"x"},
     {"out"},
     {0},
     {0},
     24,
     1,
     run_softmax},
    {"black_scholes",
     BS_SOURCE,
     3,
     2,
     FUSOR_F64,
     {"s", "k", "t"},
     {"call", "put"},
     {"r", "v"},
     {0.02, 0.30},
     40,
     1,
     run_bs},
    {"three_stmt",
     "kernel three(a: f64, x: f64[], y: f64[]) -> (v: f64[], w: f64[]) {\n"
     "    let u = a * x + y\n    v = sqrt(u * u + 1)\n    w = u - v\n}",
     2,
     2,
     FUSOR_F64,
     {"x", "y"},
     {"v", "w"},
     {"a"},
     {0.5},
     32,
     0,
     run_three},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ------------------------------------------------------------------ one case */

typedef struct runner {
    const bcase *c;
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_args *args;
    bufs fb, cb; /* fusor's and C's buffers (inputs shared) */
    fusor_array *arrays[5];
} runner;

static void fill(void *p, fusor_dtype dt, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double x = 0.5 + 1.5 * (double)(seed >> 8) / (double)(1u << 24);
        if (dt == FUSOR_F32)
            ((float *)p)[i] = (float)x;
        else
            ((double *)p)[i] = x;
    }
}

/* Arrays for fusor and the C loops alike, on huge pages when large, as NumPy's (and
 * fusor's own, fu_aligned_alloc) are: the peers' numbers come from such arrays too. */
static void *alloc_array(fusor_dtype dt, int64_t n) {
    size_t bytes = fusor_dtype_size(dt) * (size_t)(n ? n : 1), huge = (size_t)2 << 20;
    int big = bytes >= 2 * huge;
    void *p = aligned_alloc(big ? huge : 64, (bytes + huge - 1) / huge * huge);
    if (!p)
        exit(1);
    if (big)
        madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
    memset(p, 0, bytes); /* first touch before timing */
    return p;
}

static void runner_init(runner *r, const bcase *c, int64_t n, fusor_math math) {
    memset(r, 0, sizeof *r);
    r->c = c;
    fusor_context_options o = {.math = math};
    CHECKED(fusor_context_create(&o, &r->ctx));
    CHECKED(fusor_kernel_compile(r->ctx, c->source, c->name, NULL, &r->k));
    CHECKED(fusor_args_create(r->k, &r->args));
    r->fb.n = r->cb.n = n;
    int64_t shape[1] = {n};
    for (int i = 0; i < c->nin; i++) {
        void *p = alloc_array(c->dtype, n);
        fill(p, c->dtype, n, 7u * (unsigned)i + 1);
        r->fb.in[i] = r->cb.in[i] = p;
        CHECKED(fusor_array_wrap(r->ctx, p, c->dtype, 1, shape, NULL, &r->arrays[i]));
        CHECKED(fusor_args_set_array(r->args, c->in_names[i], r->arrays[i]));
    }
    for (int i = 0; i < 2 && c->scalar_names[i]; i++)
        CHECKED(fusor_args_set_f64(r->args, c->scalar_names[i], c->scalar_values[i]));
    if (c->c == run_saxpy) { /* in place, y = a*x + y: C gets its own copy of y */
        r->cb.in[1] = r->cb.out[0] = alloc_array(c->dtype, n);
        memcpy(r->cb.in[1], r->fb.in[1], sizeof(float) * (size_t)n);
        r->fb.out[0] = r->fb.in[1];
        CHECKED(fusor_args_set_array(r->args, c->out_names[0], r->arrays[1]));
        return;
    }
    for (int j = 0; j < c->nout; j++) {
        r->fb.out[j] = alloc_array(c->dtype, n);
        r->cb.out[j] = alloc_array(c->dtype, n);
        CHECKED(
            fusor_array_wrap(r->ctx, r->fb.out[j], c->dtype, 1, shape, NULL, &r->arrays[3 + j]));
        CHECKED(fusor_args_set_array(r->args, c->out_names[j], r->arrays[3 + j]));
    }
}

static void runner_free(runner *r) {
    for (int i = 0; i < 5; i++)
        fusor_array_destroy(r->arrays[i]);
    for (int i = 0; i < r->c->nin; i++)
        free(r->fb.in[i]);
    if (r->c->c == run_saxpy) {
        free(r->cb.in[1]);
    } else {
        for (int j = 0; j < r->c->nout; j++) {
            free(r->fb.out[j]);
            free(r->cb.out[j]);
        }
    }
    fusor_args_destroy(r->args);
    fusor_kernel_destroy(r->k);
    fusor_context_destroy(r->ctx);
}

static void launch_fusor(runner *r) {
    CHECKED(fusor_launch(r->k, r->args));
    if (r->c->nout == 0)
        CHECKED(fusor_args_get_f64(r->args, r->c->out_names[0], &r->fb.scalar));
}

typedef struct stat3 {
    double median, min;
} stat3;

static void run_one(runner *r, int which) {
    if (which)
        r->c->c(&r->cb, which == 2);
    else
        launch_fusor(r);
}

/* Median of repeated runs (0.2 s or at least 5 runs); which: 0 fusor, 1 C libm, 2 C mvec. */
static stat3 time_it(runner *r, int which) {
    enum { CAP = 200000 };
    static double v[CAP];
    int n = 0;
    /* Let the other contestant's idle threads (fusor's pool, libgomp's team) stop spinning
     * first, so neither is timed against the other's spinning workers. */
    usleep(3000);
    double start = now();
    for (int warm = 0; warm < 2; warm++)
        which ? r->c->c(&r->cb, which == 2) : launch_fusor(r);
    while (n < CAP && (n < 5 || now() - start < 0.2)) {
        double t0 = now();
        if (which)
            r->c->c(&r->cb, which == 2);
        else
            launch_fusor(r);
        v[n++] = now() - t0;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return (stat3){v[n / 2], v[0]};
}

/* Large sizes: the three contestants take turns, one run each per round (at least 7
 * rounds and 0.6 s), so that a busy neighbour slows them alike; medians of each. */
static void time_rounds(runner *r, stat3 out[3]) {
    enum { CAP = 4096 };
    static double v[3][CAP];
    int n = 0;
    for (int w = 0; w < 3; w++)
        run_one(r, w);
    double start = now();
    while (n < CAP && (n < 7 || now() - start < 0.6)) {
        for (int w = 0; w < 3; w++) {
            usleep(2000);
            double t0 = now();
            run_one(r, w);
            v[w][n] = now() - t0;
        }
        n++;
    }
    for (int w = 0; w < 3; w++) {
        qsort(v[w], (size_t)n, sizeof(double), cmp_double);
        out[w] = (stat3){v[w][n / 2], v[w][0]};
    }
}

/* Largest relative difference between fusor's and C's outputs. */
static double max_rel_diff(const runner *r) {
    const bcase *c = r->c;
    if (c->nout == 0)
        return fabs(r->fb.scalar - r->cb.scalar) / fmax(fabs(r->cb.scalar), 1e-300);
    double worst = 0;
    for (int j = 0; j < c->nout; j++)
        for (int64_t i = 0; i < r->fb.n; i++) {
            double a, b;
            if (c->dtype == FUSOR_F32) {
                a = ((float *)r->fb.out[j])[i];
                b = ((float *)r->cb.out[j])[i];
            } else {
                a = ((double *)r->fb.out[j])[i];
                b = ((double *)r->cb.out[j])[i];
            }
            double d = fabs(a - b) / fmax(fabs(b), 1e-12);
            if (d > worst)
                worst = d;
        }
    return worst;
}

/* ------------------------------------------------------------------ compile latency */

static double ms_since(double t0) { return (now() - t0) * 1e3; }

static void compile_breakdown(int json) {
    const char *src = cases[NCASES - 1].source; /* the 3-statement kernel */
    fusor_context *ctx;
    fusor_kernel *k;
    /* Warm LLVM up once: the first compile of a process also initialises LLVM and the JIT. */
    fusor_context_options nodisk = {.disk_cache = -1};
    CHECKED(fusor_context_create(&nodisk, &ctx));
    double t0 = now();
    CHECKED(fusor_kernel_compile(ctx, src, "three.fu", NULL, &k));
    double first = ms_since(t0);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);

    enum { R = 15 };
    double parse[R], check[R], plan[R], emit[R], opt[R], cg[R], link[R], total[R], cold[R],
        cached[R], disk[R];
    for (int i = 0; i < R; i++) {
        arena a;
        arena_init(&a);
        fe_program *p;
        ir_kernel *ir;
        ir_plan *pl;
        cg_compiled *code;
        t0 = now();
        CHECKED(fe_parse(&a, src, "three.fu", &p));
        parse[i] = ms_since(t0);
        t0 = now();
        CHECKED(fe_check(&a, p, 0, NULL, &ir));
        check[i] = ms_since(t0);
        t0 = now();
        CHECKED(ir_plan_build(ir, &pl));
        plan[i] = ms_since(t0);
        cg_options o = {.opt_level = 3};
        CHECKED(cg_host_compile(ir, pl, &o, &code));
        cg_timing tm;
        cg_host_last_timing(&tm);
        emit[i] = tm.emit_ms;
        opt[i] = tm.opt_ms;
        cg[i] = tm.codegen_ms;
        link[i] = tm.link_ms;
        total[i] = tm.total_ms;
        cg_compiled_free(code);
        arena_free(&a);

        /* The public path: a fresh context without and then with the disk cache. */
        CHECKED(fusor_context_create(&nodisk, &ctx));
        t0 = now();
        CHECKED(fusor_kernel_compile(ctx, src, "three.fu", NULL, &k));
        cold[i] = ms_since(t0);
        fusor_kernel *k2;
        t0 = now();
        CHECKED(fusor_kernel_compile(ctx, src, "three.fu", NULL, &k2));
        cached[i] = ms_since(t0);
        fusor_kernel_destroy(k2);
        fusor_kernel_destroy(k);
        fusor_context_destroy(ctx);
        fusor_context_options withdisk = {.disk_cache = 1};
        CHECKED(fusor_context_create(&withdisk, &ctx));
        CHECKED(fusor_kernel_compile(ctx, src, "three.fu", NULL, &k)); /* stores it */
        fusor_kernel_destroy(k);
        fusor_context_destroy(ctx);
        CHECKED(fusor_context_create(&withdisk, &ctx));
        t0 = now();
        CHECKED(fusor_kernel_compile(ctx, src, "three.fu", NULL, &k));
        disk[i] = ms_since(t0);
        fusor_kernel_destroy(k);
        fusor_context_destroy(ctx);
    }
    double *all[] = {parse, check, plan, emit, opt, cg, link, total, cold, cached, disk};
    const char *names[] = {"parse",        "check_ir",       "plan",           "emit_llvm_ir",
                           "llvm_o3",      "machine_code",   "jit_link",       "codegen_total",
                           "cold_compile", "cached_compile", "disk_cache_load"};
    for (int j = 0; j < 11; j++)
        qsort(all[j], R, sizeof(double), cmp_double);
    if (json) {
        printf("{\"compile\": \"three_stmt\", \"first_in_process_ms\": %.4f", first);
        for (int j = 0; j < 11; j++)
            printf(", \"%s_ms\": %.6f", names[j], all[j][R / 2]);
        printf("}\n");
    } else {
        printf("compile latency of the 3-statement kernel (median of %d; first in process %.2f "
               "ms)\n",
               R, first);
        for (int j = 0; j < 11; j++)
            printf("  %-16s %10.4f ms\n", names[j], all[j][R / 2]);
    }
}

/* ------------------------------------------------------------------ main */

static int parse_list(const char *s, double *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s)
            break;
    }
    return n;
}

int main(int argc, char **argv) {
    double sizes[32] = {1e3, 1e5, 1e7}, threads[16] = {1, 2};
    int nsizes = 3, nthreads = 2, json = 0, compile = 0, run_cases = 1;
    const char *only = NULL;
    fusor_math math = FUSOR_MATH_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--sizes")) {
            nsizes = parse_list(v, sizes, 32);
            i++;
        } else if (!strcmp(argv[i], "--sweep")) {
            nsizes = 0;
            for (double d = 1e3; d <= 1e8; d *= 10)
                for (int m = 1; m <= 5; m += m == 1 ? 1 : 3)
                    sizes[nsizes++] = d * m;
            sizes[nsizes - 2] = 1e8; /* 1e8 is the last point */
            nsizes--;
        } else if (!strcmp(argv[i], "--threads")) {
            nthreads = parse_list(v, threads, 16);
            i++;
        } else if (!strcmp(argv[i], "--cases")) {
            only = v;
            i++;
        } else if (!strcmp(argv[i], "--math")) {
            math = !strcmp(v, "fast")     ? FUSOR_MATH_FAST
                   : !strcmp(v, "scalar") ? FUSOR_MATH_SCALAR
                                          : FUSOR_MATH_DEFAULT;
            i++;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--compile")) {
            compile = 1;
        } else if (!strcmp(argv[i], "--compile-only")) {
            compile = 1;
            run_cases = 0;
        } else {
            fprintf(stderr,
                    "usage: %s [--sizes 1e3,1e5,1e7] [--sweep] [--threads 1,2] "
                    "[--cases a,b] [--math default|fast|scalar] [--json] [--compile]\n",
                    argv[0]);
            return 1;
        }
    }
    double bw = 0;
    int bw_threads = 0;
    CHECKED(fusor_copy_bandwidth(0, &bw, &bw_threads));
    if (!json)
        printf("copy bandwidth %.2f GB/s (%d threads); ratio = C time / fusor time (>1: fusor "
               "faster)\n%-14s %10s %3s %11s %11s %11s %7s %7s %7s %6s %9s\n",
               bw / 1e9, bw_threads, "case", "n", "thr", "fusor", "C libm", "C mvec", "vsC",
               "vsMvec", "GB/s", "ofBW", "maxrel");
    for (int ci = 0; ci < NCASES && run_cases; ci++) {
        const bcase *c = &cases[ci];
        if (only) {
            const char *p = strstr(only, c->name);
            size_t l = strlen(c->name);
            if (!p || (p[l] && p[l] != ','))
                continue;
        }
        for (int si = 0; si < nsizes; si++) {
            runner r;
            runner_init(&r, c, (int64_t)sizes[si], math);
            for (int ti = 0; ti < nthreads; ti++) {
                int t = (int)threads[ti];
                fusor_set_num_threads(t);
                omp_set_num_threads(t);
                /* Checked first, from the same inputs (saxpy updates y in place). */
                if (c->c == run_saxpy)
                    memcpy(r.cb.in[1], r.fb.in[1], sizeof(float) * (size_t)r.fb.n);
                launch_fusor(&r);
                c->c(&r.cb, 0);
                double rel = max_rel_diff(&r);
                stat3 t3[3];
                if (r.fb.n >= 1000000) {
                    time_rounds(&r, t3);
                } else {
                    for (int w = 0; w < 3; w++)
                        t3[w] = time_it(&r, w);
                }
                stat3 f = t3[0], cl = t3[1], cm = t3[2];
                double gbps = c->bytes_per_element * (double)r.fb.n / f.median / 1e9;
                if (json)
                    printf("{\"case\": \"%s\", \"n\": %lld, \"threads\": %d, \"dtype\": \"%s\", "
                           "\"fusor_s\": %.9g, \"fusor_min_s\": %.9g, \"c_libm_s\": %.9g, "
                           "\"c_mvec_s\": %.9g, \"bytes\": %.0f, \"gbps\": %.6g, "
                           "\"copy_bw_fraction\": %.4f, \"max_rel_diff\": %.3g, "
                           "\"math\": %d}\n",
                           c->name, (long long)r.fb.n, t, fusor_dtype_name(c->dtype), f.median,
                           f.min, cl.median, cm.median, c->bytes_per_element * (double)r.fb.n, gbps,
                           gbps / (bw / 1e9), rel, c->math);
                else
                    printf("%-14s %10lld %3d %9.2fus %9.2fus %9.2fus %7.2f %7.2f %7.2f %5.0f%% "
                           "%9.1e\n",
                           c->name, (long long)r.fb.n, t, f.median * 1e6, cl.median * 1e6,
                           cm.median * 1e6, cl.median / f.median, cm.median / f.median, gbps,
                           100 * gbps / (bw / 1e9), rel);
                fflush(stdout);
            }
            runner_free(&r);
        }
    }
    fusor_set_num_threads(0);
    if (compile)
        compile_breakdown(json);
    return 0;
}
