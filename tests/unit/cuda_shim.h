/*
 * cuda_shim.h — CUDA's built-ins for the host C++ compiler, so that tests can run the CUDA C
 * that fusor prints for NVRTC on the CPU: one std::thread per CUDA thread of a block,
 * pthread barriers for __syncthreads and the warp shuffles, PTX's half conversions as the
 * compiler's _Float16, CUDA's vector types.  A test appends its launcher (1-D or 2-D
 * blocks) to CUDA_SHIM, then each program's CUDA C with cuda_shim_program, and builds
 * and opens the lot with cuda_shim_open.
 */
#ifndef FUSOR_TEST_CUDA_SHIM_H
#define FUSOR_TEST_CUDA_SHIM_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes program i's CUDA C (`text`, from cg_cuda_source) into one C++ file of many
 * programs: the prelude with the first program only, then its kernels in namespace p<i>
 * without C linkage (which would clash between programs).  The caller adds its table of
 * kernels after the closing brace. */
static inline void cuda_shim_program(FILE *f, int i, const char *text) {
    const char *body = strstr(text, "\n// kernel ");
    if (i == 0)
        fwrite(text, 1, (size_t)(body + 1 - text), f);
    fprintf(f, "namespace p%d {\n", i);
    for (const char *s = body; *s;) {
        const char *e = strstr(s, "extern \"C\" ");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        fwrite(s, 1, n, f);
        s += n + (e ? 11 : 0);
    }
    fprintf(f, "}\n");
}

/* Writes a C++ file (write_source(path): nonzero on success) named after `tag` in /tmp,
 * compiles it with the host C++ compiler `cxx` (at -O`opt`) into a shared object and
 * opens it.  Returns the handle (both files are gone by then), or NULL with what failed in
 * why (a rejected source is kept, and named there). */
static inline void *cuda_shim_open(const char *cxx, const char *tag, int opt,
                                   int (*write_source)(const char *path), char *why, size_t n) {
    char cpp[128], so[140], cmd[1024];
    snprintf(cpp, sizeof cpp, "/tmp/fusor_%s_XXXXXX.cpp", tag);
    int fd = mkstemps(cpp, 4);
    if (fd < 0) {
        snprintf(why, n, "cannot make a file like %s", cpp);
        return NULL;
    }
    close(fd);
    snprintf(so, sizeof so, "%.*s.so", (int)(strlen(cpp) - 4), cpp);
    if (!write_source(cpp)) {
        snprintf(why, n, "cannot write %s", cpp);
        unlink(cpp);
        return NULL;
    }
    snprintf(cmd, sizeof cmd,
             "'%s' -std=c++17 -O%d -ffp-contract=off -w -shared -fPIC -pthread -o '%s' '%s'", cxx,
             opt, so, cpp);
    if (system(cmd) != 0) {
        snprintf(why, n, "the host C++ compiler rejected the CUDA C (kept in %s)", cpp);
        unlink(so);
        return NULL;
    }
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        snprintf(why, n, "%s", dlerror());
    unlink(cpp);
    unlink(so);
    return lib;
}

/* A test's CUDA C built and opened (cuda_shim_open at -O1) with its launcher `entry` in
 * *fn.  With no C++ compiler known at configure time (cxx empty) it says SKIP and returns
 * NULL; otherwise NULL (or *fn NULL) means a failure, described in why. */
static inline void *cuda_shim_load(const char *cxx, const char *tag,
                                   int (*write_source)(const char *path), const char *entry,
                                   void **fn, char *why, size_t n) {
    *fn = NULL;
    if (!cxx[0]) {
        printf("SKIP: no C++ compiler known at configure time; the CUDA C is not run\n");
        return NULL;
    }
    void *lib = cuda_shim_open(cxx, tag, 1, write_source, why, n);
    if (lib && !(*fn = dlsym(lib, entry)))
        snprintf(why, n, "the CUDA C library has no %s", entry);
    return lib;
}

/* A launcher of 1-D blocks: fu_launch(kernel, parameter block, grid, block). */
#define CUDA_SHIM_LAUNCH1 \
    "typedef void (*fu_kernel)(const char *);\n" \
    "extern \"C\" void fu_launch(fu_kernel k, const char *P, unsigned grid, unsigned block) {\n" \
    "    gridDim = {grid, 1, 1};\n" \
    "    blockDim = {block, 1, 1};\n" \
    "    for (unsigned b = 0; b < grid; b++) {\n" \
    "        blockIdx = {b, 0, 0};\n" \
    "        pthread_barrier_init(&fu_block_bar, nullptr, block);\n" \
    "        for (unsigned w = 0; w * 32 < block; w++)\n" \
    "            pthread_barrier_init(&fu_warp_bar[w], nullptr, block - w * 32 < 32 ? block - w * " \
    "32 : 32);\n" \
    "        std::vector<std::thread> ts;\n" \
    "        for (unsigned t = 0; t < block; t++)\n" \
    "            ts.emplace_back([=] { threadIdx = {t, 0, 0}; k(P); });\n" \
    "        for (auto &t : ts) t.join();\n" \
    "        pthread_barrier_destroy(&fu_block_bar);\n" \
    "        for (unsigned w = 0; w * 32 < block; w++) pthread_barrier_destroy(&fu_warp_bar[w]);\n" \
    "    }\n" \
    "}\n"

#define CUDA_SHIM \
    "#include <cmath>\n" \
    "#include <cstring>\n" \
    "#include <thread>\n" \
    "#include <vector>\n" \
    "#include <pthread.h>\n" \
    "using std::isnan; using std::isinf; using std::isfinite;\n" \
    "#define __device__\n" \
    "#define __forceinline__ inline\n" \
    "#define __noinline__\n" \
    "#define __global__\n" \
    "#define __shared__ static\n" \
    "#define __builtin_assume(x) ((void)0)\n" \
    "#define __isGlobal(p) true\n" \
    "struct fu_dim3 { unsigned x, y, z; };\n" \
    "static thread_local fu_dim3 threadIdx;\n" \
    "static fu_dim3 blockIdx, blockDim, gridDim;\n" \
    "static pthread_barrier_t fu_block_bar, fu_warp_bar[32];\n" \
    "static unsigned long long fu_lane[32][32];\n" \
    "static void __syncthreads() { pthread_barrier_wait(&fu_block_bar); }\n" \
    "static void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }\n" \
    "static unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {\n" \
    "    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);\n" \
    "}\n" \
    "template <class T> static T __shfl_down_sync(unsigned, T v, int d) {\n" \
    "    unsigned t = threadIdx.x + threadIdx.y * blockDim.x, lane = t & 31, warp = t >> 5;\n" \
    "    fu_lane[warp][lane] = (unsigned long long)v;\n" \
    "    pthread_barrier_wait(&fu_warp_bar[warp]);\n" \
    "    T r = (T)fu_lane[warp][lane + d < 32 ? lane + d : lane];\n" \
    "    pthread_barrier_wait(&fu_warp_bar[warp]);\n" \
    "    return r;\n" \
    "}\n" \
    "template <class A, class B> static A fu_bits(B b) { A a; memcpy(&a, &b, sizeof a); return a; " \
    "}\n" \
    "static float __int_as_float(int x) { return fu_bits<float>(x); }\n" \
    "static float __uint_as_float(unsigned x) { return fu_bits<float>(x); }\n" \
    "static int __float_as_int(float x) { return fu_bits<int>(x); }\n" \
    "static double __longlong_as_double(long long x) { return fu_bits<double>(x); }\n" \
    "static long long __double_as_longlong(double x) { return fu_bits<long long>(x); }\n" \
    "// PTX's cvt between half and float/double: the host compiler's _Float16.\n" \
    "static float fu_h2f(unsigned short h) { return (float)fu_bits<_Float16>(h); }\n" \
    "static unsigned short fu_f2h(float f) { return fu_bits<unsigned short>((_Float16)f); }\n" \
    "static unsigned short fu_d2h(double d) { return fu_bits<unsigned short>((_Float16)d); }\n" \
    "#define FU_V2(N, T) struct alignas(2 * sizeof(T)) N { T x, y; };\n" \
    "#define FU_V4(N, T) struct alignas(4 * sizeof(T)) N { T x, y, z, w; };\n" \
    "FU_V2(char2, signed char) FU_V2(uchar2, unsigned char) FU_V2(short2, short)\n" \
    "FU_V2(ushort2, unsigned short) FU_V2(int2, int) FU_V2(uint2, unsigned) FU_V2(float2, float)\n" \
    "FU_V2(longlong2, long long) FU_V2(ulonglong2, unsigned long long) FU_V2(double2, double)\n" \
    "FU_V4(char4, signed char) FU_V4(uchar4, unsigned char) FU_V4(short4, short)\n" \
    "FU_V4(ushort4, unsigned short) FU_V4(int4, int) FU_V4(uint4, unsigned) FU_V4(float4, float)\n"

#endif
