/*
 * bench.c — `fusor bench`: how fast a kernel runs, measured against the machine's limit;
 * and `fusor cache`, `fusor info --bandwidth`.
 *
 * For every point (size x thread count) a kernel is launched on generated inputs (or the
 * .npy files given) until enough time has passed, and the median, min and max launch
 * time, the bytes it must move (each input read once, each output written once), GB/s
 * and the fraction of the machine's copy bandwidth (fusor_copy_bandwidth) are reported
 * beside the kernel's cold compile time (a fresh context, no disk cache), its cached
 * compile time (the same source again in the same context) and its launch overhead (a
 * one-element launch).  Everything goes through the public API.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fusor.h"
#include "io.h"

enum { EXIT_USAGE = 1, EXIT_LANGUAGE = 2, MAX_POINTS = 256, MAX_BIND = 64 };

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "fusor bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see fusor --help and docs/cli.md)\n");
    return EXIT_USAGE;
}

static int status_error(fusor_status st) {
    fprintf(stderr, "fusor: %s\n", fusor_last_error());
    return st == FUSOR_ERROR_LANGUAGE ? EXIT_LANGUAGE : EXIT_USAGE;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ options */

typedef struct bench_opts {
    const char *file, *expr, *kernel, *target, *plot, *math;
    fusor_dtype dtype;
    int have_dtype;
    int64_t sizes[MAX_POINTS];
    int nsizes;
    int64_t shape[FUSOR_MAX_DIMS]; /* --shape: every generated array has it (n = product) */
    int shape_ndim;
    int threads[64];
    int nthreads;
    int repeat; /* 0: as many as fit in the time budget */
    int json, csv, unfused, quiet;
    unsigned seed;
    int nbind;
    const char *bind[MAX_BIND];
} bench_opts;

/* "1e6", "250000", "2.5e5" */
static int parse_count(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 1 || v > 1e12 || v != floor(v))
        return -1;
    *out = (int64_t)v;
    return (int)(end - s);
}

/* "512x512", "64x128x128": the shape of every generated array, for kernels that declare
 * dimensions (stencils, gufunc signatures).  The point's n is the element count. */
static int parse_shape(const char *s, bench_opts *o) {
    int64_t n = 1;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 1 || v > 1000000000 || o->shape_ndim == FUSOR_MAX_DIMS ||
            n > INT64_C(1000000000000) / v)
            return -1;
        o->shape[o->shape_ndim++] = v;
        n *= v;
        s = end;
        if (*s == 'x')
            s++;
        else if (*s)
            return -1;
    }
    if (!o->shape_ndim)
        return -1;
    o->sizes[0] = n;
    o->nsizes = 1;
    return 0;
}

static int parse_sizes(const char *s, bench_opts *o) {
    while (*s) {
        int64_t v;
        int n = parse_count(s, &v);
        if (n < 0 || o->nsizes == MAX_POINTS)
            return -1;
        o->sizes[o->nsizes++] = v;
        s += n;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return o->nsizes ? 0 : -1;
}

/* 1, 2, 5 per decade from lo to hi. */
static int parse_sweep(const char *s, bench_opts *o) {
    int64_t lo, hi;
    int n = parse_count(s, &lo);
    if (n < 0 || s[n] != ':' || parse_count(s + n + 1, &hi) < 0 || hi < lo)
        return -1;
    if (s[n + 1 + parse_count(s + n + 1, &hi)])
        return -1;
    static const int steps[3] = {1, 2, 5};
    for (double decade = pow(10, floor(log10((double)lo))); decade <= (double)hi; decade *= 10)
        for (int i = 0; i < 3; i++) {
            double v = decade * steps[i];
            if (v >= (double)lo && v <= (double)hi && o->nsizes < MAX_POINTS)
                o->sizes[o->nsizes++] = (int64_t)v;
        }
    return o->nsizes ? 0 : -1;
}

static int parse_threads(const char *s, bench_opts *o) {
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1024 || o->nthreads == 64)
            return -1;
        o->threads[o->nthreads++] = (int)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return o->nthreads ? 0 : -1;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        static const char *const with_value[] = {
            "-e",       "--kernel", "--size", "--sweep", "--shape", "--dtype", "--threads",
            "--target", "--repeat", "--plot", "--seed",  "--math",  NULL};
        int takes = 0;
        for (int k = 0; with_value[k]; k++)
            takes |= !strcmp(a, with_value[k]);
        if (takes && !v)
            return usage_error("%s needs a value", a);
        if (takes)
            i++;
        if (!strcmp(a, "-e")) {
            o->expr = v;
        } else if (!strcmp(a, "--kernel")) {
            o->kernel = v;
        } else if (!strcmp(a, "--size")) {
            if (o->nsizes || parse_sizes(v, o))
                return usage_error("bad --size '%s' (one of --size, --sweep, --shape)", v);
        } else if (!strcmp(a, "--shape")) {
            if (o->nsizes || parse_shape(v, o))
                return usage_error("bad --shape '%s' (e.g. 512x512; not with --size or --sweep)",
                                   v);
        } else if (!strcmp(a, "--sweep")) {
            if (o->nsizes || parse_sweep(v, o))
                return usage_error("bad --sweep '%s' (expected LO:HI, e.g. 1e3:1e8)", v);
        } else if (!strcmp(a, "--dtype")) {
            if (fusor_dtype_from_name(v, &o->dtype) != FUSOR_OK)
                return usage_error("unknown dtype '%s'", v);
            o->have_dtype = 1;
        } else if (!strcmp(a, "--threads")) {
            if (parse_threads(v, o))
                return usage_error("bad --threads '%s' (e.g. 1,2)", v);
        } else if (!strcmp(a, "--target")) {
            if (strcmp(v, "cpu") && strcmp(v, "gpu"))
                return usage_error("--target must be cpu or gpu, not '%s'", v);
            o->target = v;
        } else if (!strcmp(a, "--repeat")) {
            o->repeat = atoi(v);
            if (o->repeat < 1)
                return usage_error("bad --repeat '%s'", v);
        } else if (!strcmp(a, "--plot")) {
            o->plot = v;
        } else if (!strcmp(a, "--seed")) {
            o->seed = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--math")) {
            if (strcmp(v, "default") && strcmp(v, "fast") && strcmp(v, "scalar"))
                return usage_error("--math must be default, fast or scalar, not '%s'", v);
            o->math = v;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--csv")) {
            o->csv = 1;
        } else if (!strcmp(a, "--unfused")) {
            o->unfused = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (a[0] == '-') {
            return usage_error("unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (o->nbind == MAX_BIND)
                return usage_error("too many arguments%s", "");
            o->bind[o->nbind++] = a;
        } else if (!o->file && !o->expr) {
            o->file = a;
        } else {
            return usage_error("unexpected argument '%s' (inputs are NAME=VALUE)", a);
        }
    }
    if (!o->file == !o->expr)
        return usage_error("bench needs FILE.fu or -e EXPR (one)%s", "");
    if (o->expr && o->kernel)
        return usage_error("--kernel does not apply to -e%s", "");
    if (o->json && o->csv)
        return usage_error("--json or --csv, not both%s", "");
    if (o->unfused && o->target && !strcmp(o->target, "gpu"))
        return usage_error("--unfused runs on the CPU only, not with --target gpu%s", "");
    if (!o->nsizes)
        o->sizes[o->nsizes++] = 10000000;
    if (!o->nthreads)
        o->threads[o->nthreads++] = fusor_default_num_threads();
    if (!o->have_dtype)
        o->dtype = FUSOR_F64;
    return 0;
}

/* ------------------------------------------------------------------ the kernel */

typedef struct bench_kernel {
    const bench_opts *o;
    char *source;
    fusor_context *ctx;
    fusor_kernel *k;
    int nparams;
    fusor_param_info params[MAX_BIND];
    fusor_array *given[MAX_BIND]; /* .npy inputs */
    const char *literal[MAX_BIND];
} bench_kernel;

static fusor_status compile_in(fusor_context *ctx, const bench_opts *o, const char *source,
                               fusor_kernel **k) {
    return o->expr ? fusor_ufunc_create(ctx, o->expr, k)
                   : fusor_kernel_compile(ctx, source, o->file, o->kernel, k);
}

static fusor_status make_context(const bench_opts *o, int disk_cache, fusor_context **ctx) {
    fusor_context_options c = {.disk_cache = disk_cache};
    if (o->target)
        c.target = !strcmp(o->target, "gpu") ? FUSOR_TARGET_GPU : FUSOR_TARGET_CPU;
    if (o->math)
        c.math = !strcmp(o->math, "fast")     ? FUSOR_MATH_FAST
                 : !strcmp(o->math, "scalar") ? FUSOR_MATH_SCALAR
                                              : FUSOR_MATH_DEFAULT;
    return fusor_context_create(&c, ctx);
}

/* Binds what the command line gave: .npy files and numbers. */
static int bind_given(bench_kernel *b) {
    for (int i = 0; i < b->o->nbind; i++) {
        const char *spec = b->o->bind[i], *eq = strchr(spec, '=');
        int p = -1;
        for (int j = 0; j < b->nparams && p < 0; j++)
            if (!b->params[j].is_output && strlen(b->params[j].name) == (size_t)(eq - spec) &&
                !strncmp(b->params[j].name, spec, (size_t)(eq - spec)))
                p = j;
        if (p < 0)
            return usage_error("'%s' names no input of the kernel", spec);
        size_t n = strlen(eq + 1);
        if (n > 4 && !strcmp(eq + 1 + n - 4, ".npy")) {
            fusor_status st = fusor_npy_load(b->ctx, eq + 1, &b->given[p]);
            if (st)
                return status_error(st);
        } else {
            b->literal[p] = eq + 1;
        }
    }
    return 0;
}

static void fill_random(fusor_array *a, unsigned *seed) {
    int64_t n = fusor_array_size(a);
    void *d = fusor_array_data(a);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        double u = (double)(*seed >> 8) / (double)(1u << 24); /* [0, 1) */
        double x = 0.5 + 1.5 * u;                             /* positive: sqrt and log work */
        switch (fusor_array_dtype(a)) {
        case FUSOR_F64: ((double *)d)[i] = x; break;
        case FUSOR_F32: ((float *)d)[i] = (float)x; break;
        case FUSOR_F16: ((uint16_t *)d)[i] = fusor_f16_from_f64(x); break;
        case FUSOR_BOOL: ((uint8_t *)d)[i] = u < 0.5; break;
        case FUSOR_I8: ((int8_t *)d)[i] = (int8_t)(1 + 100 * u); break;
        case FUSOR_U8: ((uint8_t *)d)[i] = (uint8_t)(1 + 100 * u); break;
        case FUSOR_I16: ((int16_t *)d)[i] = (int16_t)(1 + 1000 * u); break;
        case FUSOR_U16: ((uint16_t *)d)[i] = (uint16_t)(1 + 1000 * u); break;
        case FUSOR_I32: ((int32_t *)d)[i] = (int32_t)(1 + 1e6 * u); break;
        case FUSOR_U32: ((uint32_t *)d)[i] = (uint32_t)(1 + 1e6 * u); break;
        case FUSOR_I64: ((int64_t *)d)[i] = (int64_t)(1 + 1e6 * u); break;
        case FUSOR_U64: ((uint64_t *)d)[i] = (uint64_t)(1 + 1e6 * u); break;
        default: break;
        }
    }
}

/* --target gpu: the arrays live on the GPU (copied there before any timing), as a GPU
 * code keeps them, so that a launch times the kernel and not the PCIe link. */
static int on_gpu(const bench_opts *o) { return o->target && !strcmp(o->target, "gpu"); }

/* A copy of host array h in the memory of the GPU (h is released). */
static fusor_status to_device(bench_kernel *b, fusor_array **h) {
    fusor_array *d;
    fusor_status st =
        fusor_array_create_on(b->ctx, FUSOR_MEMORY_DEVICE, fusor_context_device(b->ctx), fusor_array_dtype(*h),
                              fusor_array_ndim(*h), fusor_array_shape(*h), &d);
    if (!st && (st = fusor_array_copy(d, *h, NULL)))
        fusor_array_destroy(d);
    if (st)
        return st;
    fusor_array_destroy(*h);
    *h = d;
    return FUSOR_OK;
}

/* One argument set of n elements: generated arrays, numbers, and outputs allocated by a
 * first launch and then bound, so that timed launches allocate nothing.  *bytes: what a
 * launch must read and write. */
static fusor_status make_args(bench_kernel *b, int64_t n, fusor_args **out, double *bytes) {
    fusor_args *a;
    fusor_status st = fusor_args_create(b->k, &a);
    unsigned seed = b->o->seed * 2654435761u + 17;
    *bytes = 0;
    for (int p = 0; p < b->nparams && !st; p++) {
        const fusor_param_info *pi = &b->params[p];
        if (pi->is_output)
            continue;
        if (b->given[p]) {
            fusor_array *g = b->given[p];
            fusor_array_retain(g);
            if (on_gpu(b->o))
                st = to_device(b, &g);
            if (!st)
                st = fusor_args_set_array(a, pi->name, g);
            *bytes += (double)fusor_array_size(g) * (double)fusor_dtype_size(fusor_array_dtype(g));
            fusor_array_destroy(g);
        } else if (b->literal[p] || pi->is_array == 0) {
            const char *v =
                b->literal[p] ? b->literal[p]
                : pi->dtype == FUSOR_F32 || pi->dtype == FUSOR_F64 || pi->dtype == FUSOR_F16 ? "0.5"
                : pi->dtype == FUSOR_BOOL ? "true"
                                          : "3";
            st = fusor_args_set_literal(a, pi->name, v);
        } else {
            fusor_dtype dt = pi->dtype == FUSOR_NUM_DTYPES ? b->o->dtype : pi->dtype;
            fusor_array *arr;
            /* With --shape, n is its element count, or 1 (the launch-overhead point: the
             * same rank, every extent 1). */
            int64_t ones[FUSOR_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 1};
            st = b->o->shape_ndim
                     ? fusor_array_create(b->ctx, dt, b->o->shape_ndim,
                                          n == 1 ? ones : b->o->shape, &arr)
                     : fusor_array_create(b->ctx, dt, 1, &n, &arr);
            if (st)
                break;
            fill_random(arr, &seed);
            if (on_gpu(b->o) && (st = to_device(b, &arr)))
                break;
            st = fusor_args_set_array(a, pi->name, arr);
            *bytes += (double)n * (double)fusor_dtype_size(dt);
            fusor_array_destroy(arr);
        }
    }
    if (!st)
        st = fusor_launch(b->k, a);
    for (int p = 0; p < b->nparams && !st; p++) {
        fusor_array *r;
        if (!b->params[p].is_output || fusor_args_get_array(a, b->params[p].name, &r))
            continue;
        *bytes += (double)fusor_array_size(r) * (double)fusor_dtype_size(fusor_array_dtype(r));
        st = fusor_args_set_array(a, b->params[p].name, r);
        fusor_array_destroy(r);
    }
    if (st) {
        fusor_args_destroy(a);
        return st;
    }
    *out = a;
    return FUSOR_OK;
}

typedef struct timing {
    double median, min, max;
    int runs;
} timing;

/* Launches repeatedly: --repeat times, or until 0.25 s (at least 5, at most 100000). */
static fusor_status time_launches(bench_kernel *b, fusor_args *a, int unfused, timing *t) {
    int cap = b->o->repeat ? b->o->repeat : 100000;
    double *v = malloc(sizeof(double) * (size_t)cap);
    if (!v)
        return FUSOR_ERROR_OUT_OF_MEMORY;
    fusor_status st = unfused ? fusor_launch_unfused(b->k, a) : fusor_launch(b->k, a); /* warm */
    int n = 0;
    double start = now();
    while (!st && n < cap) {
        double t0 = now();
        st = unfused ? fusor_launch_unfused(b->k, a) : fusor_launch(b->k, a);
        v[n++] = now() - t0;
        if (!b->o->repeat && n >= 5 && now() - start > 0.25)
            break;
    }
    if (!st) {
        t->runs = n;
        t->min = t->max = v[0];
        for (int i = 1; i < n; i++) {
            if (v[i] < t->min)
                t->min = v[i];
            if (v[i] > t->max)
                t->max = v[i];
        }
        t->median = median(v, n);
    }
    free(v);
    return st;
}

static int is_generic(const fusor_kernel *k) {
    for (int p = 0; p < fusor_kernel_num_params(k); p++) {
        fusor_param_info pi;
        fusor_kernel_param(k, p, &pi);
        if (pi.dtype == FUSOR_NUM_DTYPES)
            return 1;
    }
    return 0;
}

typedef struct kernel_costs {
    double cold, cached, overhead;
} kernel_costs;

/* Cold compile: a fresh context without the disk cache (median of 3, after one compile
 * that pays LLVM's start-up); for a generic kernel the first launch's specialisation is
 * part of it.  Cached: the same source again in a context that has compiled it. */
static fusor_status measure_compile(bench_kernel *b, kernel_costs *c) {
    double cold[4];
    fusor_status st = FUSOR_OK;
    for (int r = 0; r < 4 && !st; r++) {
        fusor_context *ctx;
        fusor_kernel *k = NULL;
        fusor_args *a = NULL;
        if ((st = make_context(b->o, -1, &ctx)))
            break;
        double t0 = now();
        st = compile_in(ctx, b->o, b->source, &k);
        if (!st && is_generic(k)) { /* specialised at the first launch */
            bench_kernel tmp = *b;
            tmp.k = k;
            tmp.ctx = ctx;
            double bytes;
            st = make_args(&tmp, 1, &a, &bytes);
        }
        cold[r] = now() - t0;
        fusor_args_destroy(a);
        fusor_kernel_destroy(k);
        fusor_context_destroy(ctx);
    }
    if (st)
        return st;
    c->cold = median(cold + 1, 3);
    double cached[101];
    for (int r = 0; r < 101 && !st; r++) {
        fusor_kernel *k = NULL;
        double t0 = now();
        st = compile_in(b->ctx, b->o, b->source, &k);
        cached[r] = now() - t0;
        fusor_kernel_destroy(k);
    }
    if (!st)
        c->cached = median(cached, 101);
    return st;
}

/* Launch overhead: the median of a one-element launch. */
static fusor_status measure_overhead(bench_kernel *b, kernel_costs *c) {
    fusor_args *a = NULL; /* make_args leaves it unset when it fails */
    double bytes;
    fusor_status st = make_args(b, 1, &a, &bytes);
    timing t;
    if (!st)
        st = time_launches(b, a, 0, &t);
    if (!st)
        c->overhead = t.median;
    fusor_args_destroy(a);
    return st;
}

/* ------------------------------------------------------------------ output */

typedef struct point {
    int64_t n;
    int threads, unfused;
    timing t;
    double bytes, gbps, fraction;
} point;

static void format_time(char *buf, size_t n, double s) {
    if (s < 1e-6)
        snprintf(buf, n, "%.0f ns", s * 1e9);
    else if (s < 1e-3)
        snprintf(buf, n, "%.2f us", s * 1e6);
    else if (s < 1)
        snprintf(buf, n, "%.2f ms", s * 1e3);
    else
        snprintf(buf, n, "%.2f s", s);
}

static const char *mode_name(const point *p) { return p->unfused ? "unfused" : "fused"; }

static void print_point(const bench_opts *o, const char *kernel, const char *dtype,
                        const kernel_costs *c, const point *p, int first) {
    const char *target = o->target ? o->target : "cpu";
    if (o->json) {
        printf("{\"kernel\": \"%s\", \"mode\": \"%s\", \"n\": %lld, \"dtype\": \"%s\", "
               "\"threads\": %d, \"target\": \"%s\", \"median_s\": %.9g, \"min_s\": %.9g, "
               "\"max_s\": %.9g, \"runs\": %d, \"bytes\": %.0f, \"gbps\": %.6g, "
               "\"copy_bw_fraction\": %.4f, \"compile_cold_s\": %.6g, "
               "\"compile_cached_s\": %.6g, \"launch_overhead_s\": %.6g}\n",
               kernel, mode_name(p), (long long)p->n, dtype, p->threads, target, p->t.median,
               p->t.min, p->t.max, p->t.runs, p->bytes, p->gbps, p->fraction, c->cold, c->cached,
               c->overhead);
    } else if (o->csv) {
        if (first)
            printf("kernel,mode,n,dtype,threads,target,median_s,min_s,max_s,runs,bytes,gbps,"
                   "copy_bw_fraction,compile_cold_s,compile_cached_s,launch_overhead_s\n");
        printf("%s,%s,%lld,%s,%d,%s,%.9g,%.9g,%.9g,%d,%.0f,%.6g,%.4f,%.6g,%.6g,%.6g\n", kernel,
               mode_name(p), (long long)p->n, dtype, p->threads, target, p->t.median, p->t.min,
               p->t.max, p->t.runs, p->bytes, p->gbps, p->fraction, c->cold, c->cached,
               c->overhead);
    } else {
        if (first)
            printf("%12s %7s %8s %11s %11s %11s %12s %9s %8s\n", "n", "threads", "mode", "median",
                   "min", "max", "bytes", "GB/s", "of copy");
        char md[32], mn[32], mx[32];
        format_time(md, sizeof md, p->t.median);
        format_time(mn, sizeof mn, p->t.min);
        format_time(mx, sizeof mx, p->t.max);
        printf("%12lld %7d %8s %11s %11s %11s %12.0f %9.2f %7.0f%%\n", (long long)p->n, p->threads,
               mode_name(p), md, mn, mx, p->bytes, p->gbps, 100 * p->fraction);
    }
    fflush(stdout);
}

static void progress(const bench_opts *o, int done, int total, int64_t n, int threads) {
    if (o->quiet || !isatty(2) || total < 2)
        return;
    int width = 30, filled = total ? width * done / total : width;
    fprintf(stderr, "\r[%.*s%*s] %d/%d", filled, "##############################", width - filled,
            "", done, total);
    if (done < total)
        fprintf(stderr, "  n=%lld threads=%d ", (long long)n, threads);
    if (done == total)
        fprintf(stderr, "\r%*s\r", width + 40, "");
    fflush(stderr);
}

/* GB/s against size (log scale) for each thread count and mode, and the copy bandwidth
 * as a dashed line. */
static int write_plot(const char *path, const char *title, const point *pts, int npts,
                      double copy_gbps) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fusor: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    const double W = 720, H = 420, L = 70, R = 170, T = 40, B = 50;
    double xmin = 1e300, xmax = 0, ymax = copy_gbps;
    for (int i = 0; i < npts; i++) {
        if (pts[i].n < xmin)
            xmin = (double)pts[i].n;
        if (pts[i].n > xmax)
            xmax = (double)pts[i].n;
        if (pts[i].gbps > ymax)
            ymax = pts[i].gbps;
    }
    double lx0 = floor(log10(xmin)), lx1 = ceil(log10(xmax));
    if (lx1 <= lx0)
        lx1 = lx0 + 1;
    ymax = ymax <= 0 ? 1 : ymax * 1.1;
#define PX(n) (L + (W - L - R) * (log10((double)(n)) - lx0) / (lx1 - lx0))
#define PY(g) (H - B - (H - T - B) * (g) / ymax)
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.0f\" y=\"22\" font-size=\"14\">%s</text>\n",
            W, H, L, title);
    for (double e = lx0; e <= lx1; e++)
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">1e%.0f</text>\n",
                PX(pow(10, e)), T, PX(pow(10, e)), H - B, PX(pow(10, e)), H - B + 16, e);
    for (int i = 0; i <= 5; i++) {
        double g = ymax * i / 5;
        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
                L, PY(g), W - R, PY(g), L - 6, PY(g) + 4, g);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">elements</text>\n"
            "<text transform=\"translate(16,%.0f) rotate(-90)\" text-anchor=\"middle\">GB/s"
            "</text>\n",
            (L + W - R) / 2, H - 12, (T + H - B) / 2);
    static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c",
                                          "#9467bd", "#ff7f0e", "#8c564b"};
    int series = 0;
    for (int i = 0; i < npts; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= pts[j].threads == pts[i].threads && pts[j].unfused == pts[i].unfused;
        if (seen)
            continue;
        const char *c = colours[series % 6];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", c,
                pts[i].unfused ? " stroke-dasharray=\"2,3\"" : "");
        for (int j = i; j < npts; j++)
            if (pts[j].threads == pts[i].threads && pts[j].unfused == pts[i].unfused)
                fprintf(f, "%.1f,%.1f ", PX(pts[j].n), PY(pts[j].gbps));
        fprintf(f, "\"/>\n<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">fusor %s, %d thread%s</text>\n",
                W - R + 10, T + 16.0 * series, c, mode_name(&pts[i]), pts[i].threads,
                pts[i].threads == 1 ? "" : "s");
        series++;
    }
    if (copy_gbps > 0)
        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#555\" "
                "stroke-dasharray=\"6,4\"/>\n<text x=\"%.0f\" y=\"%.0f\" fill=\"#555\">copy "
                "bandwidth %.1f GB/s</text>\n",
                L, PY(copy_gbps), W - R, PY(copy_gbps), W - R + 10, T + 16.0 * series, copy_gbps);
    fprintf(f, "</svg>\n");
#undef PX
#undef PY
    return fclose(f) ? EXIT_USAGE : 0;
}

/* The GPU's own copy bandwidth (device to device, bytes read plus written), the yardstick
 * of --target gpu as the STREAM-style copy is the CPU's: two arrays of up to 256 MiB, the
 * best of 5 rounds of 4 copies queued on a stream. */
static fusor_status gpu_copy_bandwidth(fusor_context *ctx, double *bw) {
    fusor_array *x = NULL, *y = NULL;
    fusor_stream *s = NULL;
    fusor_status st = FUSOR_ERROR_OUT_OF_MEMORY;
    int64_t n = (int64_t)32 << 20; /* f64 elements: 256 MiB */
    int dev = fusor_context_device(ctx);
    for (; n >= ((int64_t)1 << 20) && st; n /= 2) {
        st = fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, dev, FUSOR_F64, 1, &n, &x);
        if (!st && (st = fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, dev, FUSOR_F64, 1, &n, &y)))
            fusor_array_destroy(x);
        if (st)
            x = y = NULL;
    }
    n *= 2; /* the loop halved it once more on the way out */
    if (!st)
        st = fusor_stream_create(ctx, &s);
    double best = 1e30;
    for (int r = 0; r <= 5 && !st; r++) {
        double t0 = now();
        for (int c = 0; c < 4 && !st; c++)
            st = fusor_array_copy(y, x, s);
        if (!st)
            st = fusor_stream_synchronize(s);
        double t = (now() - t0) / 4;
        if (r && t < best) /* round 0 warms up */
            best = t;
    }
    if (!st)
        *bw = 16.0 * (double)n / best;
    fusor_stream_destroy(s);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    return st;
}

/* ------------------------------------------------------------------ the command */

int fusor_cmd_bench(int argc, char **argv) {
    bench_opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    bench_kernel b = {.o = &o};
    if (o.file && !(b.source = tool_read_file(o.file)))
        return EXIT_USAGE;
    fusor_status st = make_context(&o, 0, &b.ctx);
    if (!st)
        st = compile_in(b.ctx, &o, b.source, &b.k);
    point *pts = calloc((size_t)o.nsizes * (size_t)o.nthreads * 2, sizeof *pts);
    if (!st && !pts)
        st = FUSOR_ERROR_OUT_OF_MEMORY;
    if (st) {
        rc = status_error(st);
        goto done;
    }
    b.nparams = fusor_kernel_num_params(b.k);
    if (b.nparams > MAX_BIND) {
        rc = usage_error("the kernel has too many parameters%s", "");
        goto done;
    }
    for (int p = 0; p < b.nparams; p++)
        fusor_kernel_param(b.k, p, &b.params[p]);
    if ((rc = bind_given(&b)))
        goto done;

    double copy_bw = 0;
    int bw_threads = 0;
    kernel_costs costs = {0};
    if ((st = on_gpu(&o) ? gpu_copy_bandwidth(b.ctx, &copy_bw)
                         : fusor_copy_bandwidth(0, &copy_bw, &bw_threads)) ||
        (st = measure_compile(&b, &costs)) || (st = measure_overhead(&b, &costs))) {
        rc = status_error(st);
        goto done;
    }
    const char *kname = o.expr ? o.expr : fusor_kernel_name(b.k);
    char dtype[16];
    snprintf(dtype, sizeof dtype, "%s", fusor_dtype_name(o.dtype));
    for (int p = 0; p < b.nparams && !o.have_dtype; p++)
        if (!b.params[p].is_output && b.params[p].is_array == 1) {
            snprintf(dtype, sizeof dtype, "%s", fusor_dtype_name(b.params[p].dtype));
            break;
        }
    if (!o.json && !o.csv) {
        char cold[32], cached[32], over[32];
        format_time(cold, sizeof cold, costs.cold);
        format_time(cached, sizeof cached, costs.cached);
        format_time(over, sizeof over, costs.overhead);
        if (on_gpu(&o))
            printf("kernel %s (%s, gpu: arrays in GPU %d's memory); device-to-device copy "
                   "bandwidth %.1f GB/s\n",
                   kname, dtype, fusor_context_device(b.ctx), copy_bw / 1e9);
        else
            printf("kernel %s (%s, %s); copy bandwidth %.1f GB/s (%d threads)\n", kname, dtype,
                   o.target ? o.target : "cpu", copy_bw / 1e9, bw_threads);
        printf("compile: cold %s, cached %s; launch overhead %s (one element)\n", cold, cached,
               over);
    }
    int npts = 0, total = o.nsizes * o.nthreads * (o.unfused ? 2 : 1);
    for (int si = 0; si < o.nsizes && !st; si++) {
        fusor_args *a = NULL;
        double bytes = 0;
        if ((st = make_args(&b, o.sizes[si], &a, &bytes)))
            break;
        for (int ti = 0; ti < o.nthreads && !st; ti++) {
            for (int uf = 0; uf <= o.unfused && !st; uf++) {
                progress(&o, npts, total, o.sizes[si], o.threads[ti]);
                point *p = &pts[npts];
                p->n = o.sizes[si];
                p->threads = o.threads[ti];
                p->unfused = uf;
                p->bytes = bytes;
                if ((st = fusor_set_num_threads(p->threads)))
                    break;
                if ((st = time_launches(&b, a, uf, &p->t)))
                    break;
                p->gbps = bytes / p->t.median / 1e9;
                p->fraction = copy_bw > 0 ? p->gbps / (copy_bw / 1e9) : 0;
                print_point(&o, kname, dtype, &costs, p, npts == 0);
                npts++;
            }
        }
        fusor_args_destroy(a);
    }
    progress(&o, total, total, 0, 0);
    fusor_set_num_threads(0);
    if (st) {
        rc = status_error(st);
        goto done;
    }
    if (o.plot) {
        char title[300];
        snprintf(title, sizeof title, "fusor bench: %.200s (%s)", kname, dtype);
        for (char *c = title; *c; c++)
            if (*c == '<' || *c == '>' || *c == '&')
                *c = ' ';
        rc = write_plot(o.plot, title, pts, npts, copy_bw / 1e9);
    }
done:
    free(pts);
    for (int p = 0; p < MAX_BIND; p++)
        fusor_array_destroy(b.given[p]);
    fusor_kernel_destroy(b.k);
    fusor_context_destroy(b.ctx);
    free(b.source);
    return rc;
}

int fusor_cmd_bandwidth(int remeasure) {
    double bw;
    int threads;
    fusor_status st = fusor_copy_bandwidth(remeasure, &bw, &threads);
    if (st)
        return status_error(st);
    printf("copy bandwidth: %.2f GB/s (%d thread%s, STREAM-style copy, reads plus writes)\n",
           bw / 1e9, threads, threads == 1 ? "" : "s");
    return 0;
}

static int cache_usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "fusor cache: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see fusor --help and docs/cli.md)\n");
    return EXIT_USAGE;
}

/* "1048576", "64K", "512M", "2G" (powers of 1024); 0 for anything else. */
static uint64_t parse_size(const char *text) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-') return 0;
    int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
              : *end == 'G' || *end == 'g' ? 30 : 0;
    if (shift) end++;
    if (*end || v > (UINT64_MAX >> shift)) return 0;
    return (uint64_t)v << shift;
}

int fusor_cmd_cache(int argc, char **argv) {
    int trim = argc >= 1 && !strcmp(argv[0], "trim");
    if ((trim && argc > 2) || (!trim && argc != 1) ||
        (!trim && strcmp(argv[0], "list") && strcmp(argv[0], "clear") &&
         strcmp(argv[0], "stats") && strcmp(argv[0], "dir")))
        return cache_usage_error("cache needs one of list, clear, stats, dir, trim [SIZE]%s", "");
    char *text = NULL;
    fusor_status st;
    if (trim) {
        uint64_t max = argc == 2 ? parse_size(argv[1]) : 0;
        if (argc == 2 && !max)
            return cache_usage_error("cache trim: '%s' is not a size (bytes, or with K, M, G)",
                                     argv[1]);
        long n = 0;
        st = fusor_cache_trim(max, &n);
        if (!st)
            printf("removed %ld entr%s\n", n, n == 1 ? "y" : "ies");
    } else if (!strcmp(argv[0], "clear")) {
        long n = 0;
        st = fusor_cache_clear(&n);
        if (!st)
            printf("removed %ld entr%s\n", n, n == 1 ? "y" : "ies");
    } else {
        st = !strcmp(argv[0], "list")    ? fusor_cache_list(&text)
             : !strcmp(argv[0], "stats") ? fusor_cache_stats(&text)
                                         : fusor_cache_dir(&text);
        if (!st)
            printf("%s%s", text, !strcmp(argv[0], "dir") ? "\n" : "");
    }
    fusor_free(text);
    return st ? status_error(st) : 0;
}
