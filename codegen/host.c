/*
 * host.c — the host target: a TargetMachine for this CPU, the O3 pipeline, machine code,
 * and one process-wide ORC LLJIT that links the code and hands out its addresses.
 *
 *   cg_emit_module (own LLVMContext) -> LLVMRunPasses("default<On>", host TM)
 *     -> object file (own TM) -> LLJIT (shared; one ResourceTracker per kernel) -> lookups
 *
 * Each compilation owns its context and TargetMachine, so many threads compile at once;
 * only linking goes through the shared JIT, whose ExecutionSession is thread-safe.  The
 * JIT never sees IR, so its own (single, unlocked) compiler is never used.  Row functions
 * get a per-kernel suffix in the JIT (one JITDylib holds every kernel); emitted text keeps
 * the plain names.
 *
 * Vector math: before optimising, every call to a math function (llvm.sin.f64, tan, ...)
 * gets a "vector-function-abi-variant" attribute naming its vector versions (and those are
 * declared), which is how LLVM's loop vectoriser learns it may call them.  The library
 * depends on the context's fusor_math: SLEEF's 1-ulp functions (Sleef_sind8_u10avx512f,
 * ...) by default, glibc's libmvec (_ZGVeN8v_sin, ...; up to 4 ulp) for FUSOR_MATH_FAST,
 * none for FUSOR_MATH_SCALAR.  Both libraries are opened RTLD_GLOBAL so that the JIT's
 * process symbol generator resolves the names, and only functions found there (and ISAs
 * the CPU has: SSE2, AVX2, AVX-512) are mapped.  Doing this per call, rather than with
 * LLVM's process-wide -vector-library option, lets contexts choose, and gives AVX-512
 * variants that LLVM 16's LIBMVEC-X86 table lacks.
 *
 * The code model is LLVM's JIT default (large on x86-64): RuntimeDyld may place a
 * kernel's sections, and libm, more than 2 GiB apart.
 */
#include <dlfcn.h>
#include <elf.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "codegen.h"
#include "emit.h"
#include "error.h"
#include "strbuf.h"

/* ------------------------------------------------------------------ process-wide state */

static struct {
    pthread_once_t once, jit_once;
    fusor_status status, jit_status; /* FUSOR_OK once set up */
    char message[512], jit_message[512];
    char *triple, *cpu, *features;
    LLVMTargetRef target;
    int libmvec, sleef;
    void *libmvec_handle, *sleef_handle;
    int isa_avx2, isa_avx512; /* the vector ABIs the CPU can run */
    LLVMOrcLLJITRef jit;
    LLVMOrcJITDylibRef dylib;
} host = {.once = PTHREAD_ONCE_INIT, .jit_once = PTHREAD_ONCE_INIT};

static atomic_ulong host_serial;

/* What the JIT's session reported while this thread linked (ORC's default prints). */
static _Thread_local char jit_report[512];
static _Thread_local cg_timing last_timing;

static void take_error(LLVMErrorRef err, char *buf, size_t n) {
    char *msg = LLVMGetErrorMessage(err);
    snprintf(buf, n, "%s", msg);
    LLVMDisposeErrorMessage(msg);
}

static void report_jit_error(void *ctx, LLVMErrorRef err) {
    (void)ctx;
    take_error(err, jit_report, sizeof jit_report);
}

static void host_init(void) {
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        snprintf(host.message, sizeof host.message, "LLVM has no native target for this host");
        host.status = FUSOR_ERROR_UNSUPPORTED;
        return;
    }
    host.triple = LLVMGetDefaultTargetTriple();
    host.cpu = LLVMGetHostCPUName();
    host.features = LLVMGetHostCPUFeatures();
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(host.triple, &host.target, &msg)) {
        snprintf(host.message, sizeof host.message, "LLVM target %s: %s", host.triple, msg);
        LLVMDisposeMessage(msg);
        host.status = FUSOR_ERROR_UNSUPPORTED;
        return;
    }
    host.libmvec_handle = dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL);
    host.sleef_handle = dlopen("libsleef.so.3", RTLD_NOW | RTLD_GLOBAL);
    host.libmvec = host.libmvec_handle != NULL;
    host.sleef = host.sleef_handle != NULL;
    host.isa_avx2 = strstr(host.features, "+avx2") && strstr(host.features, "+fma");
    host.isa_avx512 = host.isa_avx2 && strstr(host.features, "+avx512f") != NULL;
    host.status = FUSOR_OK;
}

static void jit_init(void) {
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    LLVMOrcLLJITBuilderRef builder = NULL;
    if (!err) {
        builder = LLVMOrcCreateLLJITBuilder();
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
        err = LLVMOrcCreateLLJIT(&host.jit, builder);
    }
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (!err) {
        LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(host.jit),
                                                report_jit_error, NULL);
        host.dylib = LLVMOrcLLJITGetMainJITDylib(host.jit);
        err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
            &gen, LLVMOrcLLJITGetGlobalPrefix(host.jit), NULL, NULL);
    }
    if (err) {
        take_error(err, host.jit_message, sizeof host.jit_message);
        host.jit_status = FUSOR_ERROR_COMPILE;
        return;
    }
    LLVMOrcJITDylibAddGenerator(host.dylib, gen);
    host.jit_status = FUSOR_OK;
}

static fusor_status ensure_host(void) {
    pthread_once(&host.once, host_init);
    if (host.status)
        return fu_error(host.status, "%s", host.message);
    return FUSOR_OK;
}

static fusor_status ensure_jit(void) {
    pthread_once(&host.jit_once, jit_init);
    if (host.jit_status)
        return fu_error(host.jit_status, "LLVM JIT: %s", host.jit_message);
    return FUSOR_OK;
}

static fusor_status llvm_error(const char *what, LLVMErrorRef err) {
    char buf[512];
    take_error(err, buf, sizeof buf);
    return fu_error(FUSOR_ERROR_COMPILE, "%s: %s", what, buf);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void cg_host_last_timing(cg_timing *out) { *out = last_timing; }

/* ------------------------------------------------------------------ one compilation */

typedef struct host_build {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
} host_build;

static int opt_level(const cg_options *o) {
    int level = o ? o->opt_level : 3;
    return level < 0 ? 0 : level > 3 ? 3 : level;
}

static LLVMTargetMachineRef host_tm(int level) {
    static const LLVMCodeGenOptLevel cg[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                              LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
    return LLVMCreateTargetMachine(host.target, host.triple, host.cpu, host.features, cg[level],
                                   LLVMRelocDefault, LLVMCodeModelJITDefault);
}

/* ------------------------------------------------------------------ f16 on x86 */

/*
 * fusor computes f16 as f32 on widened operands, rounded back (emit.c).  The optimiser
 * narrows what it may (a compare of two widened halves is a compare of the halves; a
 * rounded fabs, floor or sqrt of a widened half is the half's), and LLVM 16's x86 back end,
 * without AVX512-FP16, then scalarises those on vectors of half through general registers
 * (abs over f16 ran 8x slower than over f32).  After optimisation, before code
 * generation, they are widened back: the same values (compares and these functions are
 * exact, or correctly rounded once), computed on vectors of float; and an integer
 * converted to half goes through float (exact below 2^24; larger is inf either way).
 * (Negation and copysign are emitted on the bits instead: emit.c f16_sign_op.)
 */
static const char *const half_widened[] = {
    "llvm.fabs",   "llvm.floor",     "llvm.ceil",    "llvm.trunc",     "llvm.rint",
    "llvm.round",  "llvm.roundeven", "llvm.sqrt",    "llvm.copysign",  "llvm.minnum",
    "llvm.maxnum", "llvm.minimum",   "llvm.maximum", "llvm.nearbyint",
};

static int is_half_vector(LLVMTypeRef t) {
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind &&
           LLVMGetTypeKind(LLVMGetElementType(t)) == LLVMHalfTypeKind;
}

/* Which of half_widened instruction i calls (its intrinsic ID), or 0. */
static unsigned half_intrinsic(LLVMValueRef i) {
    if (LLVMGetInstructionOpcode(i) != LLVMCall || !is_half_vector(LLVMTypeOf(i)))
        return 0;
    LLVMValueRef callee = LLVMGetCalledValue(i);
    unsigned id = callee && LLVMIsAFunction(callee) ? LLVMGetIntrinsicID(callee) : 0;
    for (size_t n = 0; id && n < sizeof half_widened / sizeof *half_widened; n++)
        if (id == LLVMLookupIntrinsicID(half_widened[n], strlen(half_widened[n])))
            return id;
    return 0;
}

/* The replacement of instruction i (built before it), or NULL to keep it. */
static LLVMValueRef widen_half(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef i) {
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMOpcode op = LLVMGetInstructionOpcode(i);
    LLVMTypeRef rt = LLVMTypeOf(i);
    LLVMValueRef a0 = LLVMGetNumOperands(i) ? LLVMGetOperand(i, 0) : NULL;
    int cmp = op == LLVMFCmp && is_half_vector(LLVMTypeOf(a0));
    int conv = (op == LLVMSIToFP || op == LLVMUIToFP) && is_half_vector(rt);
    unsigned id = cmp || conv ? 0 : half_intrinsic(i);
    if (!cmp && !conv && !id)
        return NULL;
    unsigned lanes = LLVMGetVectorSize(cmp ? LLVMTypeOf(a0) : rt);
    LLVMTypeRef ft = LLVMVectorType(LLVMFloatTypeInContext(ctx), lanes);
    LLVMPositionBuilderBefore(b, i);
    if (conv) { /* exact in float below 2^24; anything larger is inf in half either way */
        LLVMValueRef f =
            op == LLVMSIToFP ? LLVMBuildSIToFP(b, a0, ft, "") : LLVMBuildUIToFP(b, a0, ft, "");
        return LLVMBuildFPTrunc(b, f, rt, "");
    }
    LLVMValueRef args[3];
    int nargs = cmp ? 2 : LLVMGetNumArgOperands(i);
    for (int a = 0; a < nargs && a < 3; a++)
        args[a] = LLVMBuildFPExt(b, LLVMGetOperand(i, (unsigned)a), ft, "");
    if (cmp)
        return LLVMBuildFCmp(b, LLVMGetFCmpPredicate(i), args[0], args[1], "");
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(m, id, &ft, 1);
    LLVMValueRef r = LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)nargs, "");
    return LLVMBuildFPTrunc(b, r, rt, "");
}

static void widen_half_vectors(LLVMModuleRef m) {
    LLVMBuilderRef b = LLVMCreateBuilderInContext(LLVMGetModuleContext(m));
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
        for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
            for (LLVMValueRef i = LLVMGetFirstInstruction(bb), next; i; i = next) {
                next = LLVMGetNextInstruction(i);
                LLVMValueRef r = widen_half(m, b, i);
                if (!r)
                    continue;
                LLVMReplaceAllUsesWith(i, r);
                LLVMInstructionEraseFromParent(i);
            }
    LLVMDisposeBuilder(b);
}

static fusor_status optimise(host_build *hb, int level) {
    LLVMSetTarget(hb->mod, host.triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(hb->tm);
    LLVMSetModuleDataLayout(hb->mod, dl);
    LLVMDisposeTargetData(dl);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(opts, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, level >= 2);
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level);
    LLVMErrorRef err = LLVMRunPasses(hb->mod, pipeline, hb->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (err)
        return llvm_error("LLVM optimisation failed", err);
    if (!strncmp(host.triple, "x86_64", 6))
        widen_half_vectors(hb->mod);
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ vector math */

/* The math functions that have vector versions, by their C library name (f64). */
static const struct {
    const char *name;
    int arity;
    const char *sleef_ulp; /* SLEEF's accuracy suffix: u10 (1 ulp), u05 for hypot; NULL: not
                              SLEEF's (its asinh and acosh overflow to inf for large x) */
} vec_math[] = {
    {"sin", 1, "u10"},  {"cos", 1, "u10"},   {"tan", 1, "u10"},   {"asin", 1, "u10"},
    {"acos", 1, "u10"}, {"atan", 1, "u10"},  {"sinh", 1, "u10"},  {"cosh", 1, "u10"},
    {"tanh", 1, "u10"}, {"asinh", 1, NULL},  {"acosh", 1, NULL},  {"atanh", 1, "u10"},
    {"exp", 1, "u10"},  {"exp2", 1, "u10"},  {"expm1", 1, "u10"}, {"log", 1, "u10"},
    {"log2", 1, "u10"}, {"log10", 1, "u10"}, {"log1p", 1, "u10"}, {"cbrt", 1, "u10"},
    {"pow", 2, "u10"},  {"atan2", 2, "u10"}, {"hypot", 2, "u05"},
};

/* Which vec_math entry and precision a called function is ("llvm.sin.f64", "tanf"). */
static int math_function(const char *callee, size_t len, int *f32) {
    char base[32];
    if (len >= sizeof base)
        return -1;
    memcpy(base, callee, len);
    base[len] = 0;
    if (!strncmp(base, "llvm.", 5)) {
        char *dot = strrchr(base + 5, '.');
        if (!dot || (strcmp(dot, ".f64") && strcmp(dot, ".f32")))
            return -1;
        *f32 = !strcmp(dot, ".f32");
        *dot = 0;
        memmove(base, base + 5, strlen(base + 5) + 1);
    } else {
        *f32 = 0;
        for (size_t i = 0; i < sizeof vec_math / sizeof vec_math[0]; i++)
            if (!strcmp(base, vec_math[i].name))
                return (int)i;
        size_t n = strlen(base);
        if (n < 2 || base[n - 1] != 'f')
            return -1;
        base[n - 1] = 0;
        *f32 = 1;
    }
    for (size_t i = 0; i < sizeof vec_math / sizeof vec_math[0]; i++)
        if (!strcmp(base, vec_math[i].name))
            return (int)i;
    return -1;
}

/* The vector version of function f with `lanes` lanes in `buf`, or 0 when the library
 * or the CPU has none. */
static int vector_name(int math, int f, int f32, int isa, char *buf, size_t n, int *lanes) {
    static const char *const sleef_isa[3] = {"sse2", "avx2", "avx512f"};
    static const char libmvec_isa[3] = {'b', 'd', 'e'};
    if (isa == 1 && !host.isa_avx2)
        return 0;
    if (isa == 2 && !host.isa_avx512)
        return 0;
    *lanes = (f32 ? 4 : 2) << isa;
    void *lib;
    if (math == FUSOR_MATH_FAST && host.libmvec) {
        lib = host.libmvec_handle;
        snprintf(buf, n, "_ZGV%cN%d%s_%s%s", libmvec_isa[isa], *lanes,
                 vec_math[f].arity == 2 ? "vv" : "v", vec_math[f].name, f32 ? "f" : "");
    } else if (math == FUSOR_MATH_DEFAULT && host.sleef && vec_math[f].sleef_ulp) {
        lib = host.sleef_handle;
        snprintf(buf, n, "Sleef_%s%c%d_%s%s", vec_math[f].name, f32 ? 'f' : 'd', *lanes,
                 vec_math[f].sleef_ulp, sleef_isa[isa]);
    } else {
        return 0;
    }
    return dlsym(lib, buf) != NULL;
}

/* Names the vector versions of every math call of the module (see the top of the file),
 * unless `math` is scalar.  Returns how many math calls the module makes. */
static int map_vector_math(LLVMModuleRef m, int math) {
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMValueRef used[256];
    int nused = 0, ncalls = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
            for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in;
                 in = LLVMGetNextInstruction(in)) {
                if (LLVMGetInstructionOpcode(in) != LLVMCall)
                    continue;
                LLVMValueRef callee = LLVMGetCalledValue(in);
                size_t len;
                const char *name = callee ? LLVMGetValueName2(callee, &len) : NULL;
                int f32, f = name ? math_function(name, len, &f32) : -1;
                if (f < 0)
                    continue;
                ncalls++;
                if (math == FUSOR_MATH_SCALAR)
                    continue;
                char attr[1024] = "";
                size_t at = 0;
                for (int isa = 0; isa < 3; isa++) {
                    char vname[64];
                    int lanes;
                    if (!vector_name(math, f, f32, isa, vname, sizeof vname, &lanes))
                        continue;
                    LLVMValueRef decl = LLVMGetNamedFunction(m, vname);
                    if (!decl) {
                        LLVMTypeRef elt =
                            f32 ? LLVMFloatTypeInContext(ctx) : LLVMDoubleTypeInContext(ctx);
                        LLVMTypeRef vt = LLVMVectorType(elt, (unsigned)lanes);
                        LLVMTypeRef params[2] = {vt, vt};
                        decl = LLVMAddFunction(
                            m, vname, LLVMFunctionType(vt, params, (unsigned)vec_math[f].arity, 0));
                        if (nused < 256)
                            used[nused++] = decl;
                    }
                    at += (size_t)snprintf(
                        attr + at, sizeof attr - at, "%s_ZGV_LLVM_N%d%s_%.*s(%s)", at ? "," : "",
                        lanes, vec_math[f].arity == 2 ? "vv" : "v", (int)len, name, vname);
                    if (at >= sizeof attr)
                        return ncalls;
                }
                if (!at)
                    continue;
                static const char key[] = "vector-function-abi-variant";
                LLVMAddCallSiteAttribute(
                    in, LLVMAttributeFunctionIndex,
                    LLVMCreateStringAttribute(ctx, key, sizeof key - 1, attr, (unsigned)at));
            }
    }
    if (!nused)
        return ncalls;
    /* Kept alive until the vectoriser has seen them, as LLVM's own mapping pass does. */
    LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
    LLVMValueRef g = LLVMAddGlobal(m, LLVMArrayType(ptr, (unsigned)nused), "llvm.compiler.used");
    LLVMSetLinkage(g, LLVMAppendingLinkage);
    LLVMSetSection(g, "llvm.metadata");
    LLVMSetInitializer(g, LLVMConstArray(ptr, used, (unsigned)nused));
    return ncalls;
}

char *cg_host_cache_tag(const cg_options *o) {
    if (ensure_host())
        return NULL;
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    int math = o ? o->math : 0;
    const char *lib = math == FUSOR_MATH_SCALAR                  ? "libm"
                      : math == FUSOR_MATH_FAST && host.libmvec  ? "libmvec"
                      : math == FUSOR_MATH_DEFAULT && host.sleef ? "sleef-u10"
                                                                 : "libm";
    strbuf s = {0};
    sb_printf(&s, "llvm %u.%u.%u|%s|%s|%s|%s|O%d", major, minor, patch, host.triple, host.cpu,
              host.features, lib, opt_level(o));
    return sb_take(&s);
}

/* Kernels without vector math calls stream memory: on AVX-512 machines their loops are
 * vectorised 256 bits wide ("prefer-vector-width"), as LLVM already does for most Intel
 * CPUs.  Measured on AMD Zen 4 (bench_cases, 1e7 f64, one thread): triad 0.90-0.93 of the
 * C loop with 512-bit vectors, 1.08-1.10 with 256-bit ones; `where` 0.81 -> 0.86-0.89; dot
 * and the three-statement kernel up 2-4%.  Math-heavy kernels keep 512 bits: SLEEF's 8-lane
 * functions are twice as fast there (sin2_cos2 27.6 ms against 48.9 ms). */
static void prefer_256_bits(LLVMModuleRef m) {
    if (!host.isa_avx512)
        return;
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    const char key[] = "prefer-vector-width", val[] = "256";
    LLVMAttributeRef a = LLVMCreateStringAttribute(ctx, key, sizeof key - 1, val, sizeof val - 1);
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn))
        if (!LLVMIsDeclaration(fn))
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
}

/* Emits and optimises the kernel's module in a fresh context. */
static fusor_status build(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                          host_build *hb) {
    memset(hb, 0, sizeof *hb);
    fusor_status st = ensure_host();
    if (st)
        return st;
    int level = opt_level(o);
    memset(&last_timing, 0, sizeof last_timing);
    double t0 = now_ms();
    hb->ctx = LLVMContextCreate();
    st = cg_emit_module(k, plan, &cg_host_target, hb->ctx, &hb->mod);
    if (st)
        return st;
    if (!map_vector_math(hb->mod, o ? o->math : FUSOR_MATH_DEFAULT))
        prefer_256_bits(hb->mod);
    double t1 = now_ms();
    hb->tm = host_tm(level);
    st = optimise(hb, level);
    double t2 = now_ms();
    last_timing.emit_ms = t1 - t0;
    last_timing.opt_ms = t2 - t1;
    return st;
}

static void build_free(host_build *hb) {
    if (hb->mod)
        LLVMDisposeModule(hb->mod);
    if (hb->tm)
        LLVMDisposeTargetMachine(hb->tm);
    if (hb->ctx)
        LLVMContextDispose(hb->ctx);
}

static fusor_status emit_buffer(host_build *hb, LLVMCodeGenFileType kind,
                                LLVMMemoryBufferRef *out) {
    char *msg = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(hb->tm, hb->mod, kind, &msg, out))
        return FUSOR_OK;
    fusor_status st =
        fu_error(FUSOR_ERROR_COMPILE, "LLVM code generation failed: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return st;
}

/* ------------------------------------------------------------------ the JIT */

typedef struct host_jit {
    LLVMOrcResourceTrackerRef rt;
    unsigned long serial;
} host_jit;

/* Every kernel lives in the one JITDylib, so its definitions get a unique suffix. */
static void rename_definitions(LLVMModuleRef m, unsigned long serial) {
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        char buf[128];
        int n = snprintf(buf, sizeof buf, "%.*s.k%016lx", (int)len, name, serial);
        LLVMSetValueName2(f, buf, (size_t)n);
    }
}

static fusor_status lookup(host_jit *hj, const char *name, void **out) {
    char full[128];
    snprintf(full, sizeof full, "%s.k%016lx", name, hj->serial);
    jit_report[0] = 0;
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err = LLVMOrcLLJITLookup(host.jit, &addr, full);
    if (err) {
        char buf[512];
        take_error(err, buf, sizeof buf);
        return fu_error(FUSOR_ERROR_COMPILE, "LLVM JIT could not link %s: %s%s%s", name, buf,
                        jit_report[0] ? "; " : "", jit_report);
    }
    *out = (void *)(uintptr_t)addr;
    return FUSOR_OK;
}

static fusor_status lookup_all(cg_compiled *c, const ir_kernel *k, const ir_plan *plan,
                               host_jit *hj) {
    char name[64];
    fusor_status st = FUSOR_OK;
    for (int p = 0; p < plan->npasses && !st; p++) {
        void *f = NULL, *g = NULL;
        cg_pass_variant_name(name, sizeof name, p, CG_CONTIG);
        st = lookup(hj, name, &f);
        cg_pass_variant_name(name, sizeof name, p, CG_STRIDED);
        if (!st)
            st = lookup(hj, name, &g);
        c->contig[p] = (cg_pass_fn)(uintptr_t)f;
        c->strided[p] = (cg_pass_fn)(uintptr_t)g;
        if (st || !cg_pass_notag(k, plan, p)) /* the no-tag pair (emit.h) */
            continue;
        cg_pass_variant_name(name, sizeof name, p, CG_CONTIG_NT);
        st = lookup(hj, name, &f);
        cg_pass_variant_name(name, sizeof name, p, CG_STRIDED_NT);
        if (!st)
            st = lookup(hj, name, &g);
        c->contig_nt[p] = st ? NULL : (cg_pass_fn)(uintptr_t)f;
        c->strided_nt[p] = st ? NULL : (cg_pass_fn)(uintptr_t)g;
    }
    if (!st && plan->has_scalar_outputs) {
        void *f = NULL;
        st = lookup(hj, CG_FINISH_NAME, &f);
        c->finish = (cg_finish_fn)(uintptr_t)f;
    }
    return st;
}

static cg_compiled *compiled_new(int npasses) {
    cg_compiled *c = fu_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->npasses = npasses;
    size_t n = (size_t)(npasses ? npasses : 1);
    c->contig = fu_calloc(n, sizeof *c->contig);
    c->strided = fu_calloc(n, sizeof *c->strided);
    c->contig_nt = fu_calloc(n, sizeof *c->contig_nt);
    c->strided_nt = fu_calloc(n, sizeof *c->strided_nt);
    c->jit = fu_calloc(1, sizeof(host_jit));
    if (!c->contig || !c->strided || !c->contig_nt || !c->strided_nt || !c->jit) {
        cg_compiled_free(c);
        return NULL;
    }
    return c;
}

/* Hands the object to the JIT under the kernel's own tracker and looks its code up. */
static fusor_status link_object(LLVMMemoryBufferRef obj, const ir_kernel *k, const ir_plan *plan,
                                cg_compiled *c) {
    host_jit *hj = c->jit;
    hj->rt = LLVMOrcJITDylibCreateResourceTracker(host.dylib);
    LLVMErrorRef err = LLVMOrcLLJITAddObjectFileWithRT(host.jit, hj->rt, obj);
    if (err)
        return llvm_error("LLVM JIT rejected the object", err);
    return lookup_all(c, k, plan, hj);
}

/* ------------------------------------------------------------------ objects on disk
 *
 * A kernel's function names carry its JIT serial as ".k" and 16 hex digits.  The copy of
 * the object kept on disk has serial 0 there; loading it writes the new serial into the
 * same bytes.  Only ELF string tables are touched, and the names keep their length, so
 * symbols and relocations stay as the compiler wrote them. */

/* Replaces every ".k<from>" with ".k<to>" in the object's string tables; 0 when the
 * bytes are not a well-formed ELF64 object. */
static int patch_serial(unsigned char *obj, size_t n, unsigned long from, unsigned long to) {
    Elf64_Ehdr eh;
    if (n < sizeof eh)
        return 0;
    memcpy(&eh, obj, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > n ||
        (n - eh.e_shoff) / sizeof(Elf64_Shdr) < eh.e_shnum)
        return 0;
    char pat[20], rep[20];
    snprintf(pat, sizeof pat, ".k%016lx", from);
    snprintf(rep, sizeof rep, ".k%016lx", to);
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, obj + eh.e_shoff + i * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_STRTAB)
            continue;
        if (sh.sh_offset > n || sh.sh_size > n - sh.sh_offset)
            return 0;
        unsigned char *p = obj + sh.sh_offset, *end = p + sh.sh_size;
        for (; p + 18 <= end; p++)
            if (p[0] == '.' && p[1] == 'k' && !memcmp(p, pat, 18))
                memcpy(p, rep, 18);
    }
    return 1;
}

/* Links an object (a serial-0 copy made by cg_host_compile_object) into the JIT. */
fusor_status cg_host_load_object(const ir_kernel *k, const ir_plan *plan, const void *object,
                                 size_t size, cg_compiled **out) {
    if (!k || !plan || !object || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_host_load_object: NULL");
    fusor_status st = ensure_host();
    if (!st)
        st = ensure_jit();
    if (st)
        return st;
    double t0 = now_ms();
    unsigned long serial = atomic_fetch_add(&host_serial, 1) + 1;
    unsigned char *copy = fu_malloc(size ? size : 1);
    if (!copy)
        return fu_oom("a cached kernel");
    memcpy(copy, object, size);
    if (!patch_serial(copy, size, 0, serial)) {
        fu_free(copy);
        return fu_error(FUSOR_ERROR_COMPILE, "a cached kernel object is not an ELF64 object");
    }
    LLVMMemoryBufferRef obj =
        LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)copy, size, "fusor-cached");
    fu_free(copy);
    cg_compiled *c = compiled_new(plan->npasses);
    if (!c) {
        LLVMDisposeMemoryBuffer(obj);
        return fu_oom("a compiled kernel");
    }
    ((host_jit *)c->jit)->serial = serial;
    st = link_object(obj, k, plan, c);
    if (st) {
        cg_compiled_free(c);
        return st;
    }
    memset(&last_timing, 0, sizeof last_timing);
    last_timing.link_ms = last_timing.total_ms = now_ms() - t0;
    *out = c;
    return FUSOR_OK;
}

fusor_status cg_host_compile(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                             cg_compiled **out) {
    return cg_host_compile_object(k, plan, o, out, NULL, NULL);
}

fusor_status cg_host_compile_object(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                                    cg_compiled **out, void **object, size_t *size) {
    if (object)
        *object = NULL;
    if (!k || !plan || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_host_compile: NULL");
    fusor_status st = ensure_host();
    if (!st)
        st = ensure_jit();
    if (st)
        return st;
    double t0 = now_ms();
    host_build hb;
    st = build(k, plan, o, &hb);
    cg_compiled *c = NULL;
    LLVMMemoryBufferRef obj = NULL;
    unsigned long serial = atomic_fetch_add(&host_serial, 1) + 1;
    double t1 = now_ms();
    if (!st) {
        rename_definitions(hb.mod, serial);
        st = emit_buffer(&hb, LLVMObjectFile, &obj);
    }
    double t2 = now_ms();
    build_free(&hb);
    if (!st && !(c = compiled_new(plan->npasses)))
        st = fu_oom("a compiled kernel");
    if (st) {
        if (obj)
            LLVMDisposeMemoryBuffer(obj);
        return st;
    }
    if (object) { /* a copy with serial 0 for the disk cache; none when it cannot be made */
        size_t n = LLVMGetBufferSize(obj);
        unsigned char *copy = fu_malloc(n ? n : 1);
        if (copy) {
            memcpy(copy, LLVMGetBufferStart(obj), n);
            if (patch_serial(copy, n, serial, 0)) {
                *object = copy;
                *size = n;
            } else {
                fu_free(copy);
            }
        }
    }
    ((host_jit *)c->jit)->serial = serial;
    st = link_object(obj, k, plan, c); /* the JIT owns obj from here */
    if (st) {
        cg_compiled_free(c);
        if (object) {
            fu_free(*object);
            *object = NULL;
        }
        return st;
    }
    double t3 = now_ms();
    last_timing.codegen_ms = t2 - t1;
    last_timing.link_ms = t3 - t2;
    last_timing.total_ms = t3 - t0;
    *out = c;
    return FUSOR_OK;
}

void cg_compiled_free(cg_compiled *c) {
    if (!c)
        return;
    host_jit *hj = c->jit;
    if (hj && hj->rt) {
        LLVMErrorRef err = LLVMOrcResourceTrackerRemove(hj->rt);
        if (err)
            LLVMConsumeError(err); /* nothing to report from a destructor */
        LLVMOrcReleaseResourceTracker(hj->rt);
        /* The kernel's interned symbol names would otherwise stay in the pool. */
        LLVMOrcSymbolStringPoolClearDeadEntries(
            LLVMOrcExecutionSessionGetSymbolStringPool(LLVMOrcLLJITGetExecutionSession(host.jit)));
    }
    fu_free(hj);
    fu_free(c->contig);
    fu_free(c->strided);
    fu_free(c->contig_nt);
    fu_free(c->strided_nt);
    fu_free(c);
}

/* ------------------------------------------------------------------ text */

static char *copy_text(const char *p, size_t n) {
    char *s = fu_malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static fusor_status module_text(host_build *hb, fusor_emit what, char **text) {
    if (what == FUSOR_EMIT_LLVM) {
        char *ir = LLVMPrintModuleToString(hb->mod);
        *text = fu_strdup(ir);
        LLVMDisposeMessage(ir);
    } else {
        LLVMMemoryBufferRef buf;
        fusor_status st = emit_buffer(hb, LLVMAssemblyFile, &buf);
        if (st)
            return st;
        *text = copy_text(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
        LLVMDisposeMemoryBuffer(buf);
    }
    return *text ? FUSOR_OK : fu_oom("the kernel's text");
}

fusor_status cg_host_emit(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                          fusor_emit what, char **text) {
    if (!k || !plan || !text)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_host_emit: NULL");
    if (what != FUSOR_EMIT_LLVM && what != FUSOR_EMIT_ASM)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "cg_host_emit: only LLVM IR or assembly (the IR is ir_print's)");
    host_build hb;
    fusor_status st = build(k, plan, o, &hb);
    if (!st)
        st = module_text(&hb, what, text);
    build_free(&hb);
    return st;
}

char *cg_host_describe(void) {
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    strbuf s = {0};
    sb_printf(&s, "LLVM %u.%u.%u", major, minor, patch);
    if (ensure_host()) {
        sb_printf(&s, "; host target unavailable: %s", host.message);
        return sb_take(&s);
    }
    sb_printf(&s, "; host CPU: %s; features:", host.cpu);
    /* Only the enabled features ("+avx2"); LLVM also lists every disabled one. */
    const char *f = host.features;
    int first = 1;
    while (f && *f) {
        size_t len = strcspn(f, ",");
        if (*f == '+') {
            sb_printf(&s, "%s%.*s", first ? " " : ",", (int)len, f);
            first = 0;
        }
        f += len + (f[len] == ',');
    }
    sb_printf(&s, "; vector math: %s (default, <= 1 ulp), %s (FUSOR_MATH_FAST, <= 4 ulp)",
              host.sleef ? "SLEEF u10" : "none: libsleef.so.3 not found, scalar libm",
              host.libmvec ? "glibc libmvec" : "none: libmvec.so.1 not found");
    return sb_take(&s);
}
