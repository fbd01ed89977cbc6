/*
 * test_ptx_features.c — what the PTX of both paths must contain, checked in its text (no
 * GPU needed): vector loads in the _vec kernels of contiguous f32 and f64 kernels, no
 * unused libdevice function, one parameter-block pointer per kernel even with 64 arrays
 * (and the array table where gpu.h puts it), the float flags (IEEE by default; ftz,
 * approximate division and sqrt on request), the arch and PTX ISA version, the in-memory
 * cache (compile once per arch, path and flags), the public API over it, and NVRTC's
 * log becoming the error message.
 */
#include <time.h>

#include "alloc.h"
#include "scheduler.h"
#include "test_ptx_util.h"

static const char *ptxas;
static int nvrtc_ok;

static char *ptx_of(const char *src, const char *name, fusor_gpu_options o) {
    const char *what = name ? name : "kernel";
    arena a;
    arena_init(&a);
    ir_kernel *k;
    ir_plan *plan;
    char *text = NULL;
    fusor_status st = ptx_build(&a, src, "features.fu", name, NULL, &k, &plan);
    cg_gpu_code *c = NULL;
    if (!st)
        st = cg_gpu_compile(k, plan, &o, &c);
    CHECK_MSG(st == FUSOR_OK, "%s: %s", what, fusor_last_error());
    if (!st) {
        text = strdup(c->ptx);
        if (ptxas)
            CHECK_MSG(ptx_assemble(ptxas, text, o.arch ? o.arch : 80, 0, what), "ptxas rejected %s",
                      what);
    }
    cg_gpu_code_free(c);
    arena_free(&a);
    return text;
}

/* The body of `.entry NAME(` up to the closing brace at column 0. */
static char *entry_body(const char *ptx, const char *name) {
    char head[128];
    snprintf(head, sizeof head, ".entry %s(", name);
    const char *p = strstr(ptx, head);
    if (!p)
        return NULL;
    const char *e = strstr(p, "\n}\n");
    return e ? strndup(p, (size_t)(e - p)) : NULL;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const fusor_gpu_path paths[2] = {FUSOR_GPU_PATH_NVPTX, FUSOR_GPU_PATH_NVRTC};
static const char *const path_names[2] = {"NVPTX", "NVRTC"};

static void test_vector_loads(void) {
    static const struct {
        const char *src, *load, *store;
    } cases[] = {
        {"kernel k(a: f32, x: f32[], y: f32[]) -> (z: f32[]) { z = a * x + y }", "ld.global.v4.f32",
         "st.global.v4.f32"},
        {"kernel k(a: f64, x: f64[], y: f64[]) -> (z: f64[]) { z = a * x + y }", "ld.global.v2.f64",
         "st.global.v2.f64"},
        /* f32 data with an f64 output: 2 lanes (16 bytes of f64), v2 for both */
        {"kernel k(x: f32[]) -> (z: f64[]) { z = f64(x) * 2.0 }", "ld.global.v2.f32",
         "st.global.v2.f64"},
        /* a reduction over f32: the loads are still vectors */
        {"kernel k(x: f32[]) -> (s: f32) { s = sum(x * x) }", "ld.global.v4.f32", NULL},
    };
    for (int path = 0; path < 1 + nvrtc_ok; path++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char *ptx = ptx_of(cases[i].src, NULL, (fusor_gpu_options){.path = paths[path]});
            char *vec = ptx ? entry_body(ptx, "fusor_pass0_vec") : NULL;
            char *contig = ptx ? entry_body(ptx, "fusor_pass0_contig") : NULL;
            CHECK_MSG(vec && contig, "%s: kernels missing", path_names[path]);
            if (vec && contig) {
                CHECK_MSG(strstr(vec, cases[i].load), "%s case %zu: no %s in the _vec kernel",
                          path_names[path], i, cases[i].load);
                if (cases[i].store)
                    CHECK_MSG(strstr(vec, cases[i].store), "%s case %zu: no %s", path_names[path],
                              i, cases[i].store);
                /* the scalar variant for unaligned arrays stays scalar */
                CHECK_MSG(!strstr(contig, ".v4.") && !strstr(contig, ".v2.f"),
                          "%s case %zu: the contiguous kernel has vector accesses",
                          path_names[path], i);
            }
            free(vec);
            free(contig);
            free(ptx);
        }
}

static void test_libdevice_pruned(void) {
    /* sin of f32: __nv_sinf only, none of libdevice's other ~350 functions */
    char *ptx =
        ptx_of("kernel k(x: f32[]) -> (z: f32[]) { z = sin(x) }", NULL, (fusor_gpu_options){0});
    if (ptx) {
        CHECK(strstr(ptx, "__nv_sinf") != NULL);
        static const char *const unused[] = {"__nv_cosf", "__nv_sin(",  "__nv_expf", "__nv_tanf",
                                             "__nv_powf", "__nv_fmodf", "__nv_logf", "__nv_sqrtf"};
        for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++)
            CHECK_MSG(!strstr(ptx, unused[i]), "%s is in the PTX", unused[i]);
        CHECK_MSG(count(ptx, ".func") <= 8, "%d .func in the PTX", count(ptx, ".func"));
        CHECK(strlen(ptx) < 40000);
    }
    free(ptx);
    /* no math function: nothing from libdevice at all */
    ptx = ptx_of("kernel k(x: f64[], y: f64[]) -> (z: f64[]) { z = x * y + 1.0 }", NULL,
                 (fusor_gpu_options){0});
    if (ptx)
        CHECK_MSG(!strstr(ptx, "__nv_") && !strstr(ptx, "__internal"), "libdevice in the PTX");
    free(ptx);
    /* two f64 functions: exactly those two */
    ptx = ptx_of("kernel k(x: f64[]) -> (z: f64[]) { z = exp(x) + arctan2(x, 2.0) }", NULL,
                 (fusor_gpu_options){0});
    if (ptx) {
        CHECK(strstr(ptx, "__nv_exp(") && strstr(ptx, "__nv_atan2("));
        CHECK(!strstr(ptx, "__nv_expf") && !strstr(ptx, "__nv_atan(") && !strstr(ptx, "__nv_sin"));
    }
    free(ptx);
}

static void test_64_arrays(void) {
    /* 60 inputs and 4 outputs: 64 arrays, far beyond 64 kernel arguments' worth of
     * pointers and strides, through one parameter-block pointer. */
    char src[8192];
    int n = snprintf(src, sizeof src, "kernel wide(");
    for (int i = 0; i < 60; i++)
        n += snprintf(src + n, sizeof src - (size_t)n, "%sx%d: f32[]", i ? ", " : "", i);
    n += snprintf(src + n, sizeof src - (size_t)n, ") -> (");
    for (int j = 0; j < 4; j++)
        n += snprintf(src + n, sizeof src - (size_t)n, "%sy%d: f32[]", j ? ", " : "", j);
    n += snprintf(src + n, sizeof src - (size_t)n, ") {\n");
    for (int j = 0; j < 4; j++) {
        n += snprintf(src + n, sizeof src - (size_t)n, "    y%d = x%d", j, j);
        for (int i = j + 1; i < 60; i += 4)
            n += snprintf(src + n, sizeof src - (size_t)n, " + x%d", i);
        n += snprintf(src + n, sizeof src - (size_t)n, "\n");
    }
    snprintf(src + n, sizeof src - (size_t)n, "}\n");
    for (int path = 0; path < 1 + nvrtc_ok; path++) {
        char *ptx = ptx_of(src, "wide", (fusor_gpu_options){.path = paths[path], .arch = 90});
        if (!ptx)
            continue;
        for (int v = 0; v < 3; v++) {
            static const char *const names[] = {"fusor_pass0_contig", "fusor_pass0_vec",
                                                "fusor_pass0_strided"};
            char *body = entry_body(ptx, names[v]);
            CHECK_MSG(body != NULL, "%s: no %s", path_names[path], names[v]);
            if (body) {
                /* exactly one kernel parameter, the block pointer */
                CHECK_MSG(strstr(body, "_param_0") && !strstr(body, "_param_1"),
                          "%s: %s takes more than one parameter", path_names[path], names[v]);
            }
            free(body);
        }
        /* The last array's pointer is read from offset 112 + 64 * 64 + 63 * 8. */
        char off[32];
        snprintf(off, sizeof off, "+%zu]", CG_GPU_OFF_ARRAYS(64) + 63 * 8);
        if (path == 0)
            CHECK_MSG(strstr(ptx, off) != NULL, "no load from %s", off);
        free(ptx);
    }
}

static void test_flags(void) {
    const char *src = "kernel k(x: f32[], y: f32[]) -> (z: f32[]) { z = sqrt(x) / y + x * y }";
    for (int path = 0; path < 1 + nvrtc_ok; path++) {
        fusor_gpu_options o = {.path = paths[path]};
        char *ieee = ptx_of(src, NULL, o);
        o.ftz = 1;
        char *ftz = ptx_of(src, NULL, o);
        o.ftz = 0;
        o.approx_div = 1;
        char *adiv = ptx_of(src, NULL, o);
        o.approx_div = 0;
        o.approx_sqrt = 1;
        char *asqrt = ptx_of(src, NULL, o);
        if (ieee && ftz && adiv && asqrt) {
            const char *p = path_names[path];
            CHECK_MSG(strstr(ieee, "div.rn.f32") && strstr(ieee, "sqrt.rn.f32"), "%s IEEE", p);
            CHECK_MSG(!strstr(ieee, ".ftz") && !strstr(ieee, ".approx"), "%s IEEE", p);
            CHECK_MSG(!strstr(ieee, "fma."), "%s: contracted a*b+c into an FMA", p);
            CHECK_MSG(strstr(ftz, ".ftz.f32") != NULL, "%s ftz", p);
            CHECK_MSG(strstr(adiv, "div.full.f32") && strstr(adiv, "sqrt.rn.f32"), "%s div", p);
            CHECK_MSG(strstr(asqrt, "sqrt.approx") && strstr(asqrt, "div.rn.f32"), "%s sqrt", p);
        }
        free(ieee);
        free(ftz);
        free(adiv);
        free(asqrt);
    }
}

static void test_arch(void) {
    const char *src = "kernel k(x: f32[]) -> (z: f32[]) { z = x + 1.0 }";
    char *p80 = ptx_of(src, NULL, (fusor_gpu_options){0});
    char *p90 = ptx_of(src, NULL, (fusor_gpu_options){.arch = 90});
    char *p86 = ptx_of(src, NULL, (fusor_gpu_options){.arch = 86});
    if (p80 && p90 && p86) {
        CHECK(strstr(p80, ".target sm_80") && strstr(p80, ".version 7.0"));
        CHECK(strstr(p90, ".target sm_90") && strstr(p90, ".version 7.8"));
        CHECK(strstr(p86, ".target sm_86") && strstr(p86, ".version 7.1"));
    }
    free(p80);
    free(p90);
    free(p86);
    if (nvrtc_ok) {
        char *n90 =
            ptx_of(src, NULL, (fusor_gpu_options){.path = FUSOR_GPU_PATH_NVRTC, .arch = 90});
        CHECK(n90 && strstr(n90, ".target sm_90"));
        free(n90);
    }
    fusor_gpu_options out;
    fusor_status st = cg_gpu_options_normalize(&(fusor_gpu_options){.arch = 81}, &out);
    CHECK(st == FUSOR_ERROR_INVALID_ARGUMENT && strstr(fusor_last_error(), "sm_81") &&
          strstr(fusor_last_error(), "sm_90"));
    CHECK(cg_gpu_options_normalize(&(fusor_gpu_options){.path = 7}, &out) ==
          FUSOR_ERROR_INVALID_ARGUMENT);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_api_and_cache(void) {
    fusor_context *ctx;
    fusor_kernel *k, *g;
    REQUIRE_VOID(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE_VOID(fusor_kernel_compile(ctx,
                                      "kernel dot2(x: f32[], y: f32[]) -> (d: f32, m: f64) {"
                                      " d = sum(x * y)\n m = max(f64(x)) }",
                                      "dot2.fu", NULL, &k) == FUSOR_OK);
    sched_spec *s = k->spec;
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    double t0 = now_ms();
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &a));
    double t1 = now_ms();
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &b));
    double t2 = now_ms();
    CHECK(a && b && !strcmp(a, b));
    CHECK(cg_gpu_cache_compiles(s->gpu_cache) == 1);
    CHECK_MSG(t2 - t1 < (t1 - t0) / 5 + 0.5, "cached %.3f ms, cold %.3f ms", t2 - t1, t1 - t0);
    /* Both reductions fold in the pass's last block (a ticket: atom.global.add), which also
     * runs the finish: no kernels of their own. */
    CHECK(a && strstr(a, ".entry fusor_pass0_contig(") && strstr(a, "atom.global.add.u64") &&
          !strstr(a, "_reduce(") && !strstr(a, ".entry fusor_finish("));
    fusor_gpu_path path = FUSOR_GPU_PATH_AUTO;
    CHECK_OK(fusor_kernel_gpu_path(k, &path));
    CHECK(path == FUSOR_GPU_PATH_NVPTX);
    CHECK(cg_gpu_cache_compiles(s->gpu_cache) == 1);

    /* another arch compiles again; coming back to sm_80 does not */
    CHECK_OK(fusor_context_set_gpu_options(ctx, &(fusor_gpu_options){.arch = 90}));
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &c));
    CHECK(c && strstr(c, ".target sm_90"));
    CHECK(cg_gpu_cache_compiles(s->gpu_cache) == 2);
    CHECK_OK(fusor_context_set_gpu_options(ctx, NULL));
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &d));
    CHECK(d && a && !strcmp(a, d));
    CHECK(cg_gpu_cache_compiles(s->gpu_cache) == 2);
    fusor_free(c);
    fusor_free(d);
    c = d = NULL;

    /* the NVRTC path, recorded as such; the CUDA C text */
    if (nvrtc_ok) {
        CHECK_OK(
            fusor_context_set_gpu_options(ctx, &(fusor_gpu_options){.path = FUSOR_GPU_PATH_NVRTC}));
        CHECK_OK(fusor_kernel_gpu_path(k, &path));
        CHECK(path == FUSOR_GPU_PATH_NVRTC);
        CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &c));
        CHECK(c && strstr(c, "NVVM") && strstr(c, ".entry fusor_pass0_vec("));
        CHECK(cg_gpu_cache_compiles(s->gpu_cache) == 3);
    }
    CHECK_OK(fusor_kernel_emit(k, FUSOR_EMIT_CUDA, &d));
    CHECK(d && strstr(d, "extern \"C\" __global__ void fusor_pass0_contig("));
    CHECK(d && strstr(d, "fusor_pass0_block") && strstr(d, "__shfl_down_sync"));
    fusor_free(a);
    fusor_free(b);
    fusor_free(c);
    fusor_free(d);

    /* errors */
    CHECK(fusor_context_set_gpu_options(ctx, &(fusor_gpu_options){.arch = 12}) ==
          FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_context_set_gpu_options(NULL, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_kernel_gpu_path(k, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    REQUIRE_VOID(fusor_ufunc_create(ctx, "a * 2", &g) == FUSOR_OK);
    char *t = NULL;
    CHECK(fusor_kernel_emit(g, FUSOR_EMIT_PTX, &t) == FUSOR_ERROR_UNSUPPORTED && !t);
    CHECK(fusor_kernel_gpu_path(g, &path) == FUSOR_ERROR_UNSUPPORTED);
    fusor_kernel_destroy(g);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
}

static void test_nvrtc_log(void) {
    if (!nvrtc_ok)
        return;
    const char *opts[] = {"--gpu-architecture=compute_80"};
    char *ptx = NULL;
    size_t len = 0;
    fusor_status st = cg_nvrtc_ptx("extern \"C\" __global__ void f() { undeclared_thing(); }",
                                   "broken.cu", opts, 1, &ptx, &len);
    CHECK(st == FUSOR_ERROR_COMPILE && ptx == NULL);
    CHECK_MSG(strstr(fusor_last_error(), "broken.cu") &&
                  strstr(fusor_last_error(), "undeclared_thing"),
              "%s", fusor_last_error());
    st = cg_nvrtc_ptx("extern \"C\" __global__ void f() {}", "ok.cu", opts, 1, &ptx, &len);
    CHECK(st == FUSOR_OK && ptx && len == strlen(ptx) && strstr(ptx, ".entry f"));
    fu_free(ptx);
}

/* The 32-bit index variants really compute their indices in 32 bits: in _contig32 the
 * grid-stride loop's counter steps with add.s32 and is compared with setp.*.s32, and an
 * element address widens it once (cvt.s64.s32 or mul.wide.s32); the 64-bit _contig steps
 * in 64 bits.  _strided32 unravels the flat index with 32-bit division.  Both paths. */
static void test_index32_variants(void) {
    const char *src = "kernel k(x: f32[], y: f32[]) -> (z: f32[], t: f32) { z = x * y + 1; "
                      "t = sum(x) }";
    for (int pi = 0; pi < 2; pi++) {
        if (paths[pi] == FUSOR_GPU_PATH_NVRTC && !nvrtc_ok)
            continue;
        for (int arch = 80; arch <= 90; arch += 10) {
            fusor_gpu_options o = {.path = paths[pi], .arch = arch};
            char *ptx = ptx_of(src, NULL, o);
            if (!ptx)
                continue;
            const char *pn = pi ? "nvrtc" : "nvptx";
            char *c32 = entry_body(ptx, "fusor_pass0_contig32");
            char *c64 = entry_body(ptx, "fusor_pass0_contig");
            char *s32 = entry_body(ptx, "fusor_pass0_strided32");
            char *v32 = entry_body(ptx, "fusor_pass0_vec32");
            CHECK_MSG(c32 && c64 && s32 && v32, "%s sm_%d: the 32-bit variants are missing", pn,
                      arch);
            if (c32 && c64 && s32 && v32) {
                CHECK_MSG(count(c32, "add.s32") >= 1 && count(c32, ".s32 \t%p") +
                                                                count(c32, "setp.lt.s32") +
                                                                count(c32, "setp.ge.s32") >=
                                                            1,
                          "%s sm_%d: _contig32 does not step and compare a 32-bit index:\n%s", pn,
                          arch, c32);
                CHECK_MSG(count(c32, "cvt.s64.s32") + count(c32, "mul.wide.s32") >= 1,
                          "%s sm_%d: _contig32 does not widen its index for addresses", pn, arch);
                CHECK_MSG(count(c32, "setp.lt.s64") + count(c32, "setp.ge.s64") == 0,
                          "%s sm_%d: _contig32 compares a 64-bit index", pn, arch);
                CHECK_MSG(count(c64, "setp.lt.s64") + count(c64, "setp.ge.s64") >= 1,
                          "%s sm_%d: _contig does not use a 64-bit index", pn, arch);
                CHECK_MSG(count(s32, "div.u64") + count(s32, "rem.u64") == 0 &&
                              count(s32, "div.u32") + count(s32, "rem.u32") >= 1,
                          "%s sm_%d: _strided32 does not unravel in 32 bits", pn, arch);
                CHECK_MSG(count(v32, "ld.global.v4.f32") + count(v32, "ld.global.nc.v4.f32") >= 1,
                          "%s sm_%d: _vec32 lost its vector loads", pn, arch);
            }
            free(c32);
            free(c64);
            free(s32);
            free(v32);
            free(ptx);
        }
    }
}

/* f16 arrays: 16-bit loads and stores and conversions to and from f32, on both paths. */
static void test_f16_ptx(void) {
    const char *src = "kernel h(x: f16[], y: f16[]) -> (z: f16[], s: f16) { z = sin(x) * y; "
                      "s = sum(x) }";
    for (int pi = 0; pi < 2; pi++) {
        if (paths[pi] == FUSOR_GPU_PATH_NVRTC && !nvrtc_ok)
            continue;
        for (int arch = 80; arch <= 90; arch += 10) {
            fusor_gpu_options o = {.path = paths[pi], .arch = arch};
            char *ptx = ptx_of(src, NULL, o);
            if (!ptx)
                continue;
            char *c = entry_body(ptx, "fusor_pass0_contig");
            CHECK_MSG(c && count(c, "ld.global.") && count(c, ".b16") + count(c, ".u16") >= 2 &&
                          count(c, "cvt.f32.f16") >= 1 && count(c, "cvt.rn.f16.f32") >= 1,
                      "%s sm_%d: f16 loads, stores or conversions missing:\n%s",
                      pi ? "nvrtc" : "nvptx", arch, c ? c : "(no _contig)");
            free(c);
            free(ptx);
        }
    }
}

/* A signed bool converted to floating point is -1 where set: LLVM 16's NVPTX back end
 * would turn `sitofp i1` (which instcombine makes of this kernel's floor division) into
 * "selp 1, 0" and a signed convert, +1; codegen/nvptx.c rewrites it as a select of -1.0.
 * Found by test_gpu_differential on an H200 (atan2 got +1 where NumPy says -1). */
static void test_signed_bool_to_float(void) {
    const char *src = "kernel k(x: bool[]) -> (y: f64[]) {\n"
                      "    let t = isinf(isfinite(x == 2)) >= i32(0 & x) & clip(where(x, x, 7), -6, -4)\n"
                      "    y = arctan2(~fmod(x, t) // max(t), u64(x))\n}\n";
    char *ptx = ptx_of(src, NULL, (fusor_gpu_options){.path = FUSOR_GPU_PATH_NVPTX, .arch = 90});
    char *body = ptx ? entry_body(ptx, "fusor_pass1_contig") : NULL;
    CHECK_MSG(body && strstr(body, "0dBFF0000000000000"), "no -1.0 in fusor_pass1_contig");
    /* no register set by "selp.u32 %rN, 1, 0" is then converted as signed */
    char set[16][16];
    int nset = 0;
    for (char *line = body ? strtok(body, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char reg[16], src[16];
        int one, zero;
        if (sscanf(line, " selp.u32 %15[^,], %d, %d", reg, &one, &zero) == 3 && one == 1 &&
            zero == 0 && nset < 16)
            strcpy(set[nset++], reg);
        if (sscanf(line, " cvt.rn.f64.s32 %*[^,], %15[^;]", src) == 1)
            for (int i = 0; i < nset; i++)
                CHECK_MSG(strcmp(src, set[i]), "%s (selp 1, 0) converted as signed", src);
    }
    free(body);
    free(ptx);
}

int main(void) {
    /* The counts of compiles below are the in-memory cache's: PTX that an earlier run left
     * in the disk cache would be found there and not compiled. */
    setenv("FUSOR_CACHE", "0", 1);
    ptxas = ptx_ptxas();
    nvrtc_ok = cg_nvrtc_available() == FUSOR_OK;
    if (!nvrtc_ok)
        printf("SKIP: the NVRTC checks: %s\n", fusor_last_error());
    REQUIRE(cg_nvptx_available());
    test_vector_loads();
    test_libdevice_pruned();
    test_64_arrays();
    test_flags();
    test_arch();
    test_api_and_cache();
    test_nvrtc_log();
    test_index32_variants();
    test_f16_ptx();
    test_signed_bool_to_float();
    return check_done();
}
