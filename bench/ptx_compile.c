/*
 * ptx_compile.c — how long it takes to get PTX for a kernel, by each path: LLVM NVPTX
 * (with libdevice) and CUDA C through NVRTC.  Not a test: it prints numbers (the table
 * in docs/codegen.md comes from here).
 *
 * Through the public API: a fresh context per round, fusor_kernel_compile (not timed),
 * then fusor_kernel_emit(FUSOR_EMIT_PTX) twice — the first call compiles ("cold"), the
 * second finds the PTX in the context's cache ("cached").  Cold compiles are also shown in
 * CPU time, which a busy shared machine disturbs far less than wall time.  The first cold compile
 * of each path in the process is shown apart (LLVM's NVPTX set-up, reading libdevice, loading
 * NVRTC).  Usage: fusor_bench_ptx_compile [rounds] (default 15).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen.h"
#include "fusor.h"
#include "gpu.h"

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
/* CPU time of the process: stable on a shared machine, where wall time is not. */
static double cpu_ms(void) { return clock_ms(CLOCK_PROCESS_CPUTIME_ID); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) {
        s[n] = 0;
    } else {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct result {
    double first, cold, cold_cpu, cached;
    size_t bytes;
    int ok;
} result;

typedef struct sample {
    double cold, cold_cpu, cached;
} sample;

/* One round: a new context, the kernel, two emits.  Returns 0 on failure. */
static int round_trip(const char *src, const char *file, const char *name, fusor_gpu_path path,
                      sample *t, size_t *bytes) {
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    char *a = NULL, *b = NULL;
    fusor_gpu_options o = {.path = path, .arch = 80};
    int ok = fusor_context_create(NULL, &ctx) == FUSOR_OK &&
             fusor_context_set_gpu_options(ctx, &o) == FUSOR_OK &&
             fusor_kernel_compile(ctx, src, file, name, &k) == FUSOR_OK;
    if (ok) {
        double c0 = cpu_ms(), t0 = now_ms();
        ok = fusor_kernel_emit(k, FUSOR_EMIT_PTX, &a) == FUSOR_OK;
        double t1 = now_ms(), c1 = cpu_ms();
        ok = ok && fusor_kernel_emit(k, FUSOR_EMIT_PTX, &b) == FUSOR_OK;
        double t2 = now_ms();
        t->cold = t1 - t0;
        t->cold_cpu = c1 - c0;
        t->cached = t2 - t1;
        *bytes = a ? strlen(a) : 0;
    }
    if (!ok)
        fprintf(stderr, "  %s by %s: %s\n", name, path == FUSOR_GPU_PATH_NVRTC ? "NVRTC" : "NVPTX",
                fusor_last_error());
    fusor_free(a);
    fusor_free(b);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    return ok;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static result measure(const char *src, const char *file, const char *name, fusor_gpu_path path,
                      int rounds) {
    result r = {0};
    double *cold = calloc((size_t)rounds, sizeof *cold);
    double *cpu = calloc((size_t)rounds, sizeof *cpu);
    double *cached = calloc((size_t)rounds, sizeof *cached);
    sample t;
    r.ok = round_trip(src, file, name, path, &t, &r.bytes);
    r.first = t.cold;
    for (int i = 0; i < rounds && r.ok; i++) {
        r.ok = round_trip(src, file, name, path, &t, &r.bytes);
        cold[i] = t.cold;
        cpu[i] = t.cold_cpu;
        cached[i] = t.cached;
    }
    if (r.ok) {
        r.cold = median(cold, rounds);
        r.cold_cpu = median(cpu, rounds);
        r.cached = median(cached, rounds);
    }
    free(cold);
    free(cpu);
    free(cached);
    return r;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1)
        rounds = 1;
    static const struct {
        const char *file, *name, *what;
    } cases[] = {
        {"blas1.fu", "saxpy", "z = a*x + y (f32)"},
        {"finance.fu", "black_scholes", "Black-Scholes (f64: exp, log, sqrt)"},
        {"stats.fu", "softmax", "softmax: 3 passes, 2 reductions"},
    };
    printf("PTX compile latency, sm_80, median of %d rounds (first: the first compile in the "
           "process), ms\n\n",
           rounds);
    printf("| kernel | path | first | cold | cold (CPU time) | cached | PTX bytes | NVRTC / NVPTX "
           "(cold CPU) |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/kernels/std/%s", FUSOR_SOURCE_DIR, cases[i].file);
        char *src = slurp(path);
        if (!src) {
            fprintf(stderr, "cannot read %s\n", path);
            return 1;
        }
        result nv = measure(src, cases[i].file, cases[i].name, FUSOR_GPU_PATH_NVPTX, rounds);
        cg_timing t;
        cg_nvptx_last_timing(&t);
        result rt = measure(src, cases[i].file, cases[i].name, FUSOR_GPU_PATH_NVRTC, rounds);
        if (nv.ok)
            printf("| %s | NVPTX | %.1f | %.1f | %.1f | %.3f | %zu | |\n", cases[i].name, nv.first,
                   nv.cold, nv.cold_cpu, nv.cached, nv.bytes);
        if (rt.ok)
            printf("| %s | NVRTC | %.1f | %.1f | %.1f | %.3f | %zu | %.1fx |\n", cases[i].name,
                   rt.first, rt.cold, rt.cold_cpu, rt.cached, rt.bytes,
                   nv.ok ? rt.cold_cpu / nv.cold_cpu : 0.0);
        if (nv.ok)
            fprintf(stderr,
                    "  %s (%s), NVPTX phases of the last compile: IR %.2f, libdevice %.2f, "
                    "passes %.2f, PTX %.2f ms\n",
                    cases[i].name, cases[i].what, t.emit_ms, t.link_ms, t.opt_ms, t.codegen_ms);
        free(src);
    }
    return 0;
}
