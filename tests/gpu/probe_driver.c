/*
 * probe_driver.c — what the CUDA driver's own operations cost on this machine, without
 * fusor: a bare launch, a launch and a synchronisation, a stream-ordered pool allocation
 * and free, small uploads from pageable and pinned memory, and their combinations.  The
 * yardstick for fusor's launch overhead (bench_gpu's launch table): fusor cannot be
 * cheaper than the driver calls it makes.  Run by scripts/device-run.sh; not a test.
 *
 * The driver is opened with dlopen, as fusor opens it (no link against libcuda); without
 * one the probe says so and exits 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int res;
typedef unsigned long long dptr;
static struct {
    res (*init)(unsigned);
    res (*device_get)(int *, int);
    res (*ctx_retain)(void **, int);
    res (*ctx_set)(void *);
    res (*ctx_get)(void **);
    res (*module_load)(void **, const void *);
    res (*get_function)(void **, void *, const char *);
    res (*stream_create)(void **, unsigned);
    res (*stream_sync)(void *);
    res (*launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                  void *, void **, void **);
    res (*default_pool)(void **, int);
    res (*alloc_async)(dptr *, size_t, void *, void *);
    res (*free_async)(dptr, void *);
    res (*alloc)(dptr *, size_t);
    res (*alloc_host)(void **, size_t);
    res (*htod_async)(dptr, const void *, size_t, void *);
    res (*dtoh_async)(void *, dptr, size_t, void *);
} cu;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e6 * (double)t.tv_sec + 1e-3 * (double)t.tv_nsec;
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        res r_ = (x);                                                                              \
        if (r_) {                                                                                  \
            printf("probe_driver: %s failed (%d)\n", #x, r_);                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* k: one word incremented.  kb: what a fusor kernel of 1,000 elements does in one block,
 * each thread an element: the array's address from a parameter block in device memory,
 * then a load and a store of its element. */
static const char ptx[] =
    ".version 7.8\n.target sm_70\n.address_size 64\n"
    ".visible .entry k(.param .u64 p) { .reg .b64 %rd<3>; ld.param.u64 %rd1, [p];\n"
    "  ld.global.u64 %rd2, [%rd1]; add.s64 %rd2, %rd2, 1; st.global.u64 [%rd1], %rd2; ret; }\n"
    ".visible .entry kb(.param .u64 p) { .reg .b64 %rd<5>; .reg .b32 %r<2>; .reg .f64 %fd<2>;\n"
    "  ld.param.u64 %rd1, [p]; ld.global.u64 %rd2, [%rd1]; mov.u32 %r1, %tid.x;\n"
    "  mul.wide.u32 %rd3, %r1, 8; add.s64 %rd4, %rd2, %rd3; ld.global.f64 %fd1, [%rd4];\n"
    "  add.f64 %fd1, %fd1, 0d3FF0000000000000; st.global.f64 [%rd4], %fd1; ret; }\n";

enum { N = 2000 };
static void *s, *sb, *k, *kb, *pool, *ctx;
static dptr block_at; /* kb's parameter block */
static void *bargs[1] = {&block_at};
static dptr buf;
static void *args[1] = {&buf};
static unsigned char page[4096], *pinned;

/* One operation N times: host time and time until done per operation, the best of three
 * rounds (the machine's noise is one-sided). */
static void round_of(int what, double *host_us, double *done_us);
static void row(const char *name, int what) {
    double host = 1e30, done = 1e30;
    for (int r = 0; r < 3; r++) {
        double h, d;
        round_of(what, &h, &d);
        host = h < host ? h : host;
        done = d < done ? d : done;
    }
    printf("| %s | %.2f | %.2f |\n", name, host, done);
}

static void round_of(int what, double *host_us, double *done_us) {
    double t0 = now_us();
    for (int i = 0; i < N; i++) {
        dptr p;
        switch (what) {
        case 0: CHECK(cu.launch(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL)); break;
        case 1:
            CHECK(cu.launch(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
            CHECK(cu.stream_sync(s));
            break;
        case 2:
            CHECK(cu.alloc_async(&p, 4096, pool, s));
            CHECK(cu.free_async(p, s));
            break;
        case 3: CHECK(cu.htod_async(buf + 4096, page, 2048, s)); break;
        case 4: CHECK(cu.htod_async(buf + 4096, pinned, 2048, s)); break;
        case 5:
            CHECK(cu.htod_async(buf + 4096, page, 2048, s));
            CHECK(cu.launch(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
            break;
        case 6: CHECK(cu.dtoh_async(page, buf, 8, s)); break;
        case 7: CHECK(cu.ctx_set(ctx)); break; /* already current: what fusor skips now */
        case 8: {
            void *c;
            CHECK(cu.ctx_get(&c)); /* what it asks instead */
            break;
        }
        case 9: /* a stream that synchronises with the legacy default stream, as fusor's */
            CHECK(cu.launch(k, 1, 1, 1, 32, 1, 1, 0, sb, args, NULL));
            CHECK(cu.stream_sync(sb));
            break;
        case 10: CHECK(cu.dtoh_async(pinned, buf, 8, s)); break;
        case 11:
            CHECK(cu.launch(kb, 1, 1, 1, 1000, 1, 1, 0, sb, bargs, NULL));
            CHECK(cu.stream_sync(sb));
            break;
        }
    }
    double t1 = now_us();
    CHECK(cu.stream_sync(s));
    double t2 = now_us();
    *host_us = (t1 - t0) / N;
    *done_us = (t2 - t0) / N;
}

int main(void) {
    void *h = dlopen(getenv("FUSOR_CUDA_LIBRARY") ? getenv("FUSOR_CUDA_LIBRARY") : "libcuda.so.1",
                     RTLD_NOW);
    if (!h) {
        printf("SKIP: probe_driver: no CUDA driver (%s)\n", dlerror());
        return 0;
    }
    struct {
        void **fn;
        const char *name;
    } syms[] = {{(void **)&cu.init, "cuInit"},
                {(void **)&cu.device_get, "cuDeviceGet"},
                {(void **)&cu.ctx_retain, "cuDevicePrimaryCtxRetain"},
                {(void **)&cu.ctx_set, "cuCtxSetCurrent"},
                {(void **)&cu.ctx_get, "cuCtxGetCurrent"},
                {(void **)&cu.module_load, "cuModuleLoadData"},
                {(void **)&cu.get_function, "cuModuleGetFunction"},
                {(void **)&cu.stream_create, "cuStreamCreate"},
                {(void **)&cu.stream_sync, "cuStreamSynchronize"},
                {(void **)&cu.launch, "cuLaunchKernel"},
                {(void **)&cu.default_pool, "cuDeviceGetDefaultMemPool"},
                {(void **)&cu.alloc_async, "cuMemAllocFromPoolAsync"},
                {(void **)&cu.free_async, "cuMemFreeAsync"},
                {(void **)&cu.alloc, "cuMemAlloc_v2"},
                {(void **)&cu.alloc_host, "cuMemAllocHost_v2"},
                {(void **)&cu.htod_async, "cuMemcpyHtoDAsync_v2"},
                {(void **)&cu.dtoh_async, "cuMemcpyDtoHAsync_v2"}};
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].fn = dlsym(h, syms[i].name))) {
            printf("SKIP: probe_driver: the driver lacks %s\n", syms[i].name);
            return 0;
        }
    if (cu.init(0)) {
        printf("SKIP: probe_driver: cuInit failed (no device?)\n");
        return 0;
    }
    int dev;
    void *mod;
    CHECK(cu.device_get(&dev, 0));
    CHECK(cu.ctx_retain(&ctx, dev));
    CHECK(cu.ctx_set(ctx));
    CHECK(cu.module_load(&mod, ptx));
    CHECK(cu.get_function(&k, mod, "k"));
    CHECK(cu.get_function(&kb, mod, "kb"));
    CHECK(cu.stream_create(&s, 1)); /* non-blocking */
    CHECK(cu.stream_create(&sb, 0));
    CHECK(cu.default_pool(&pool, dev));
    CHECK(cu.alloc(&buf, 1 << 20));
    CHECK(cu.alloc_host((void **)&pinned, 1 << 20));
    memset(pinned, 0, 1 << 20);
    block_at = buf + 16384; /* its first word: the array, 1,000 doubles at buf + 32768 */
    dptr array_at = buf + 32768;
    memcpy(pinned + 16384, &array_at, 8);
    CHECK(cu.htod_async(buf, pinned, 1 << 20, s));
    for (int w = 0; w < 100; w++)
        CHECK(cu.launch(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL));
    CHECK(cu.stream_sync(s));
    printf(
        "\n| driver operation (%d times, best of 3 rounds) | host us each | us each until done |\n",
        N);
    printf("| --- | ---: | ---: |\n");
    row("cuLaunchKernel, queued", 0);
    row("cuLaunchKernel + cuStreamSynchronize", 1);
    row("cuMemAllocFromPoolAsync + cuMemFreeAsync (4 KB, default pool)", 2);
    row("cuMemcpyHtoDAsync 2 KB from pageable memory", 3);
    row("cuMemcpyHtoDAsync 2 KB from pinned memory", 4);
    row("2 KB pageable upload + launch", 5);
    row("cuMemcpyDtoHAsync 8 B to pageable memory", 6);
    row("cuCtxSetCurrent, the context already current", 7);
    row("cuCtxGetCurrent", 8);
    row("cuLaunchKernel + cuStreamSynchronize, a blocking stream", 9);
    row("cuMemcpyDtoHAsync 8 B to pinned memory", 10);
    row("a 1,000-element kernel as fusor's (1 block, parameter block), + sync, blocking stream",
        11);
    return 0;
}
