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
 * The loop vectoriser calls glibc's libmvec (_ZGVdN4v_sin, ...) through
 * -vector-library=LIBMVEC-X86, set once for the process; libmvec.so.1 is opened
 * RTLD_GLOBAL so that the JIT's process symbol generator resolves those names.  Without
 * libmvec the option is not set and math stays scalar.
 *
 * The code model is LLVM's JIT default (large on x86-64): RuntimeDyld may place a
 * kernel's sections, and libm, more than 2 GiB apart.
 */
#include <dlfcn.h>
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
    int libmvec;
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
    if (dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL)) {
        const char *argv[] = {"fusor", "-vector-library=LIBMVEC-X86"};
        LLVMParseCommandLineOptions(2, argv, NULL);
        host.libmvec = 1;
    }
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
    return err ? llvm_error("LLVM optimisation failed", err) : FUSOR_OK;
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
        int n = snprintf(buf, sizeof buf, "%.*s.k%lu", (int)len, name, serial);
        LLVMSetValueName2(f, buf, (size_t)n);
    }
}

static fusor_status lookup(host_jit *hj, const char *name, void **out) {
    char full[128];
    snprintf(full, sizeof full, "%s.k%lu", name, hj->serial);
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

static fusor_status lookup_all(cg_compiled *c, const ir_plan *plan, host_jit *hj) {
    char name[64];
    fusor_status st = FUSOR_OK;
    for (int p = 0; p < plan->npasses && !st; p++) {
        void *f = NULL, *g = NULL;
        cg_pass_fn_name(name, sizeof name, p, 0);
        st = lookup(hj, name, &f);
        cg_pass_fn_name(name, sizeof name, p, 1);
        if (!st)
            st = lookup(hj, name, &g);
        c->contig[p] = (cg_pass_fn)(uintptr_t)f;
        c->strided[p] = (cg_pass_fn)(uintptr_t)g;
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
    c->jit = fu_calloc(1, sizeof(host_jit));
    if (!c->contig || !c->strided || !c->jit) {
        cg_compiled_free(c);
        return NULL;
    }
    return c;
}

/* Hands the object to the JIT under the kernel's own tracker and looks its code up. */
static fusor_status link_object(LLVMMemoryBufferRef obj, const ir_plan *plan, cg_compiled *c) {
    host_jit *hj = c->jit;
    hj->rt = LLVMOrcJITDylibCreateResourceTracker(host.dylib);
    LLVMErrorRef err = LLVMOrcLLJITAddObjectFileWithRT(host.jit, hj->rt, obj);
    if (err)
        return llvm_error("LLVM JIT rejected the object", err);
    return lookup_all(c, plan, hj);
}

fusor_status cg_host_compile(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                             cg_compiled **out) {
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
    ((host_jit *)c->jit)->serial = serial;
    st = link_object(obj, plan, c); /* the JIT owns obj from here */
    if (st) {
        cg_compiled_free(c);
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
    sb_printf(&s, "; vector math: %s", host.libmvec ? "libmvec" : "none (libmvec.so.1 not found)");
    return sb_take(&s);
}
