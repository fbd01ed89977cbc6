/*
 * nvptx.c — path 1 to PTX: the shared emitter with GPU pieces, libdevice, LLVM's NVPTX
 * back end.
 *
 *   cg_emit_module (gpu target: grid-stride index, libdevice math table, raw accumulators,
 *                   n-d strided addressing, a _vec variant per pass)
 *     -> wrap each row function in a .entry kernel taking one parameter-block pointer
 *        (gpu.h), with the block reduction and the one-block combine kernel around it
 *     -> link libdevice lazily (only what the kernels call is read), resolve
 *        __nvvm_reflect ourselves (FTZ, PREC_SQRT, ARCH), internalise all but the kernels
 *     -> a short pass pipeline (see nv_pipeline) and the NVPTX back end at
 *        CodeGenOpt::None -> PTX text
 *
 * Each compilation owns its LLVMContext and TargetMachine (thread-safe, like host.c);
 * LLVM's diagnostics are caught by a handler and become the error message, never printed.
 * Float semantics are IEEE by default: no FMA contraction (LLVM's default for NVPTX
 * without fast-math), div.rn and sqrt.rn, denormals kept.  The options switch on
 * flush-to-zero (an attribute on every function plus __CUDA_FTZ for libdevice),
 * f32 division as div.full.f32 (what nvcc gives for -prec-div=false) and approximate f32
 * sqrt (llvm.nvvm.sqrt.approx.f, and __CUDA_PREC_SQRT = 0 for libdevice's hypotf).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Core.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "alloc.h"
#include "codegen.h"
#include "emit.h"
#include "error.h"
#include "gpu.h"
#include "strbuf.h"

#define NV_TRIPLE "nvptx64-nvidia-cuda"

/* ------------------------------------------------------------------ process-wide state */

static struct {
    pthread_once_t once, libdevice_once;
    fusor_status status;
    char message[256];
    LLVMTargetRef target;
    char *libdevice; /* the file's bytes */
    size_t libdevice_len;
    char libdevice_path[512];
    char libdevice_why[512]; /* why it is missing */
} nv = {.once = PTHREAD_ONCE_INIT, .libdevice_once = PTHREAD_ONCE_INIT};

static void nv_init(void) {
#ifdef FUSOR_HAVE_NVPTX
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(NV_TRIPLE, &nv.target, &msg)) {
        snprintf(nv.message, sizeof nv.message, "LLVM has no NVPTX target: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        nv.status = FUSOR_ERROR_UNSUPPORTED;
    }
#else
    snprintf(nv.message, sizeof nv.message,
             "this fusor was built with an LLVM without the NVPTX back end; use the NVRTC path");
    nv.status = FUSOR_ERROR_UNSUPPORTED;
#endif
}

static fusor_status ensure_nvptx(void) {
    pthread_once(&nv.once, nv_init);
    return nv.status ? fu_error(nv.status, "%s", nv.message) : FUSOR_OK;
}

int cg_nvptx_available(void) {
    pthread_once(&nv.once, nv_init);
    return nv.status == FUSOR_OK;
}

static int read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ok = fseek(f, 0, SEEK_END) == 0;
    long n = ok ? ftell(f) : -1;
    ok = n > 0 && fseek(f, 0, SEEK_SET) == 0;
    char *p = ok ? fu_malloc((size_t)n) : NULL;
    ok = p && fread(p, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        fu_free(p);
        return 0;
    }
    *data = p;
    *len = (size_t)n;
    return 1;
}

/* Which libdevice a compilation would link, for persistent cache keys: its path and size
 * by the same search as libdevice_init, without reading it (a cache hit never needs it). */
void cg_nvptx_libdevice_tag(char *buf, size_t n) {
    const char *env = getenv("FUSOR_LIBDEVICE");
    const char *roots[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    struct stat sb;
    if (env && *env) {
        snprintf(buf, n, "%s %lld", env, stat(env, &sb) ? -1LL : (long long)sb.st_size);
        return;
    }
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char path[512];
        if (!roots[i] || !*roots[i])
            continue;
        snprintf(path, sizeof path, "%s/nvvm/libdevice/libdevice.10.bc", roots[i]);
        if (!stat(path, &sb)) {
            snprintf(buf, n, "%s %lld", path, (long long)sb.st_size);
            return;
        }
    }
    snprintf(buf, n, "no libdevice");
}

/* libdevice.10.bc: $FUSOR_LIBDEVICE when set (only there: an explicit choice), else in
 * the toolkit that $CUDA_HOME, $CUDA_PATH or /usr/local/cuda names. */
static void libdevice_init(void) {
    const char *env = getenv("FUSOR_LIBDEVICE");
    const char *roots[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    strbuf tried = {0};
    if (env && *env) {
        if (read_file(env, &nv.libdevice, &nv.libdevice_len)) {
            snprintf(nv.libdevice_path, sizeof nv.libdevice_path, "%s", env);
            return;
        }
        snprintf(nv.libdevice_why, sizeof nv.libdevice_why,
                 "libdevice (the CUDA toolkit's math library) cannot be read from "
                 "FUSOR_LIBDEVICE=%s",
                 env);
        return;
    }
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        if (!roots[i] || !*roots[i])
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/nvvm/libdevice/libdevice.10.bc", roots[i]);
        if (read_file(path, &nv.libdevice, &nv.libdevice_len)) {
            snprintf(nv.libdevice_path, sizeof nv.libdevice_path, "%s", path);
            sb_discard(&tried);
            return;
        }
        sb_printf(&tried, "%s%s", tried.len ? ", " : "", path);
    }
    snprintf(nv.libdevice_why, sizeof nv.libdevice_why,
             "libdevice.10.bc (the CUDA toolkit's math library) was not found (tried %s; set "
             "FUSOR_LIBDEVICE or CUDA_HOME)",
             tried.p ? tried.p : "nothing");
    sb_discard(&tried);
}

/* ------------------------------------------------------------------ options */

static const struct {
    int arch, ptx;
} arch_table[] = {
    /* The PTX ISA of each arch: the oldest that knows it, but at least 6.0 (shfl.sync). */
    {50, 60}, {52, 60}, {53, 60}, {60, 60}, {61, 60}, {62, 60}, {70, 60},
    {72, 61}, {75, 63}, {80, 70}, {86, 71}, {87, 74}, {89, 78}, {90, 78},
};

int cg_gpu_ptx_version(int arch) {
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (arch_table[i].arch == arch)
            return arch_table[i].ptx;
    return 0;
}

fusor_status cg_gpu_options_normalize(const fusor_gpu_options *in, fusor_gpu_options *out) {
    fusor_gpu_options o = {0};
    if (in)
        o = *in;
    if ((unsigned)o.path > FUSOR_GPU_PATH_NVRTC)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "GPU options: bad path %d", (int)o.path);
    if (o.arch == 0)
        o.arch = 80;
    if (!cg_gpu_ptx_version(o.arch)) {
        strbuf s = {0};
        for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
            sb_printf(&s, "%ssm_%d", i ? ", " : "", arch_table[i].arch);
        fusor_status st =
            fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "GPU options: unknown arch sm_%d (known: %s)",
                     o.arch, s.p ? s.p : "");
        sb_discard(&s);
        return st;
    }
    o.ftz = o.ftz != 0;
    o.approx_div = o.approx_div != 0;
    o.approx_sqrt = o.approx_sqrt != 0;
    *out = o;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ the GPU's cg_target */

static LLVMValueRef intrinsic0(LLVMModuleRef m, LLVMBuilderRef b, const char *name,
                               LLVMValueRef *args, unsigned nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(m, id, NULL, 0);
    LLVMTypeRef fty = LLVMIntrinsicGetType(LLVMGetModuleContext(m), id, NULL, 0);
    return LLVMBuildCall2(b, fty, fn, args, nargs, "");
}

static LLVMValueRef sreg(LLVMModuleRef m, LLVMBuilderRef b, const char *which) {
    char name[64];
    snprintf(name, sizeof name, "llvm.nvvm.read.ptx.sreg.%s", which);
    LLVMValueRef v = intrinsic0(m, b, name, NULL, 0);
    return LLVMBuildZExt(b, v, LLVMInt64TypeInContext(LLVMGetModuleContext(m)), which);
}

/* Grid stride: thread blockIdx.x * blockDim.x + threadIdx.x, stepping by all threads. */
static LLVMValueRef gpu_first(LLVMModuleRef m, LLVMBuilderRef b) {
    LLVMValueRef blk = LLVMBuildNUWMul(b, sreg(m, b, "ctaid.x"), sreg(m, b, "ntid.x"), "");
    return LLVMBuildNUWAdd(b, blk, sreg(m, b, "tid.x"), "gid");
}

static LLVMValueRef gpu_step(LLVMModuleRef m, LLVMBuilderRef b) {
    return LLVMBuildNUWMul(b, sreg(m, b, "nctaid.x"), sreg(m, b, "ntid.x"), "nthreads");
}

static LLVMValueRef table_load(LLVMBuilderRef b, LLVMTypeRef i64, LLVMValueRef table,
                               LLVMValueRef idx, const char *name) {
    LLVMValueRef p = LLVMBuildInBoundsGEP2(b, i64, table, &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(b, i64, p, name);
    LLVMSetAlignment(v, 8);
    return v;
}

/*
 * The strided variant's addressing (gpu.h): `table` is the parameter block at offset
 * CG_GPU_OFF_NDIM: [0] ndim, [1 + d] shape[d], [9 + 8a + d] byte stride of array a.  The
 * flat index is split into coordinates from the innermost dimension out; the outermost
 * coordinate is what remains, so an ndim-dimensional launch costs ndim - 1 divisions
 * (which NVPTX does in 32 bits when both operands fit).  The arithmetic is in the index's
 * width: i32 in the 32-bit variants, whose byte offsets the launcher proved fit int32.
 */
static LLVMValueRef table_load_as(LLVMBuilderRef b, LLVMTypeRef i64, LLVMTypeRef it,
                                  LLVMValueRef table, LLVMValueRef idx, const char *name) {
    LLVMValueRef v = table_load(b, i64, table, idx, name);
    return it == i64 ? v : LLVMBuildTrunc(b, v, it, name);
}

static void gpu_nd_offsets(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef table,
                           LLVMValueRef index, int narrays, const LLVMValueRef *bases,
                           LLVMValueRef *off) {
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx), it = LLVMTypeOf(index);
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
    LLVMValueRef zero = LLVMConstInt(i64, 0, 0), one = LLVMConstInt(i64, 1, 0);
    LLVMValueRef izero = LLVMConstInt(it, 0, 0);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ctx, fn, "unravel");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ctx, fn, "unravelled");
    LLVMValueRef top = LLVMBuildSub(b, table_load(b, i64, table, zero, "ndim"), one, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, top, zero, ""), body, done);

    LLVMPositionBuilderAtEnd(b, body);
    LLVMValueRef d = LLVMBuildPhi(b, i64, "d");
    LLVMValueRef rem = LLVMBuildPhi(b, it, "rem");
    for (int a = 0; a < narrays; a++) /* phis first: the running offsets */
        off[a] = bases[a] ? LLVMBuildPhi(b, it, "off") : NULL;
    LLVMValueRef ext = table_load_as(b, i64, it, table, LLVMBuildAdd(b, d, one, ""), "extent");
    LLVMValueRef q = LLVMBuildUDiv(b, rem, ext, "");
    LLVMValueRef c = LLVMBuildSub(b, rem, LLVMBuildMul(b, q, ext, ""), "coord");
    LLVMValueRef dn = LLVMBuildSub(b, d, one, "");
    LLVMBasicBlockRef bbs[2] = {pre, body};
    LLVMValueRef *next = off; /* reused: next[a] replaces off[a] once its phi is wired */
    for (int a = 0; a < narrays; a++) {
        if (!bases[a])
            continue;
        LLVMValueRef phi = off[a];
        LLVMValueRef si = LLVMBuildAdd(b, d, LLVMConstInt(i64, 9 + 8 * (unsigned)a, 0), "");
        next[a] = LLVMBuildAdd(
            b, phi, LLVMBuildMul(b, c, table_load_as(b, i64, it, table, si, "stride"), ""), "");
        LLVMValueRef vals[2] = {izero, next[a]};
        LLVMAddIncoming(phi, vals, bbs, 2);
    }
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, dn, zero, ""), body, done);
    LLVMValueRef dv[2] = {top, dn}, rv[2] = {index, q};
    LLVMAddIncoming(d, dv, bbs, 2);
    LLVMAddIncoming(rem, rv, bbs, 2);

    LLVMPositionBuilderAtEnd(b, done);
    LLVMValueRef outer = LLVMBuildPhi(b, it, "outer");
    LLVMAddIncoming(outer, rv, bbs, 2);
    for (int a = 0; a < narrays; a++) {
        if (!bases[a])
            continue;
        LLVMValueRef phi = LLVMBuildPhi(b, it, "");
        LLVMValueRef vals[2] = {izero, next[a]};
        LLVMAddIncoming(phi, vals, bbs, 2);
        off[a] = phi;
    }
    for (int a = 0; a < narrays; a++) {
        if (!bases[a])
            continue;
        LLVMValueRef s0 =
            table_load_as(b, i64, it, table, LLVMConstInt(i64, 9 + 8 * (unsigned)a, 0), "");
        off[a] = LLVMBuildAdd(b, off[a], LLVMBuildMul(b, outer, s0, ""), "offset");
    }
}

/* libdevice's functions (float one with an "f"), for the ops with no PTX instruction. */
static const struct {
    ir_op op;
    const char *f64, *f32;
} nv_math[] = {
    {IR_CBRT, "__nv_cbrt", "__nv_cbrtf"},    {IR_EXP, "__nv_exp", "__nv_expf"},
    {IR_EXP2, "__nv_exp2", "__nv_exp2f"},    {IR_EXPM1, "__nv_expm1", "__nv_expm1f"},
    {IR_LOG, "__nv_log", "__nv_logf"},       {IR_LOG2, "__nv_log2", "__nv_log2f"},
    {IR_LOG10, "__nv_log10", "__nv_log10f"}, {IR_LOG1P, "__nv_log1p", "__nv_log1pf"},
    {IR_SIN, "__nv_sin", "__nv_sinf"},       {IR_COS, "__nv_cos", "__nv_cosf"},
    {IR_TAN, "__nv_tan", "__nv_tanf"},       {IR_ASIN, "__nv_asin", "__nv_asinf"},
    {IR_ACOS, "__nv_acos", "__nv_acosf"},    {IR_ATAN, "__nv_atan", "__nv_atanf"},
    {IR_SINH, "__nv_sinh", "__nv_sinhf"},    {IR_COSH, "__nv_cosh", "__nv_coshf"},
    {IR_TANH, "__nv_tanh", "__nv_tanhf"},    {IR_ASINH, "__nv_asinh", "__nv_asinhf"},
    {IR_ACOSH, "__nv_acosh", "__nv_acoshf"}, {IR_ATANH, "__nv_atanh", "__nv_atanhf"},
    {IR_ATAN2, "__nv_atan2", "__nv_atan2f"}, {IR_HYPOT, "__nv_hypot", "__nv_hypotf"},
    {IR_POW, "__nv_pow", "__nv_powf"},       {IR_FMOD, "__nv_fmod", "__nv_fmodf"},
};

static const char *gpu_math_name(ir_op op, fusor_dtype d, unsigned flags) {
    int f32 = d == FUSOR_F32, ftz = (flags & CG_MATH_FTZ) != 0;
    if (op == IR_SQRT) {
        if (f32 && (flags & CG_MATH_APPROX_SQRT))
            return ftz ? "llvm.nvvm.sqrt.approx.ftz.f" : "llvm.nvvm.sqrt.approx.f";
        return "llvm.sqrt"; /* sqrt.rn */
    }
    if (op == IR_DIV) /* defined by define_div_full as nvcc's -prec-div=false does it */
        return f32 && (flags & CG_MATH_APPROX_DIV)
                   ? (ftz ? "__fusor_div_full_ftz_f32" : "__fusor_div_full_f32")
                   : NULL;
    for (size_t i = 0; i < sizeof nv_math / sizeof nv_math[0]; i++)
        if (nv_math[i].op == op)
            return f32 ? nv_math[i].f32 : nv_math[i].f64;
    return NULL;
}

static const char *gpu_math_plain(ir_op op, fusor_dtype d) { return gpu_math_name(op, d, 0); }

/* ------------------------------------------------------------------ kernels */

typedef struct nvb {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    const ir_kernel *k;
    const ir_plan *plan;
    int narrays;
    LLVMTypeRef i32, i64, ptr, gptr, fty_kernel;
    LLVMValueRef fn; /* the kernel being built */
    strbuf diag;     /* LLVM's diagnostics */
} nvb;

static void diag_handler(LLVMDiagnosticInfoRef di, void *p) {
    nvb *g = p;
    char *msg = LLVMGetDiagInfoDescription(di);
    if (LLVMGetDiagInfoSeverity(di) <= LLVMDSWarning && g->diag.len < 4000)
        sb_printf(&g->diag, "%s%s", g->diag.len ? "; " : "", msg);
    LLVMDisposeMessage(msg);
}

static LLVMValueRef ci64(nvb *g, long long v) {
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}
static LLVMValueRef ci32(nvb *g, int v) { return LLVMConstInt(g->i32, (unsigned)v, 1); }

static LLVMBasicBlockRef block(nvb *g, const char *name) {
    return LLVMAppendBasicBlockInContext(g->ctx, g->fn, name);
}

static LLVMValueRef call_fn(nvb *g, LLVMValueRef fn, LLVMValueRef *args, unsigned n) {
    return LLVMBuildCall2(g->b, LLVMGlobalGetValueType(fn), fn, args, n, "");
}

static LLVMValueRef helper(nvb *g, int p, const char *what) {
    char name[64];
    cg_pass_helper_name(name, sizeof name, p, what);
    return LLVMGetNamedFunction(g->mod, name);
}

/* A field of the parameter block. */
static LLVMValueRef param_field(nvb *g, LLVMValueRef P, size_t off, LLVMTypeRef t, const char *n) {
    LLVMValueRef idx = ci64(g, (long long)off);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(g->b, LLVMInt8TypeInContext(g->ctx), P, &idx, 1, "");
    if (t == NULL) /* its address, for the row function */
        return LLVMBuildAddrSpaceCast(g->b, p, g->ptr, "");
    LLVMValueRef v = LLVMBuildLoad2(g->b, t, p, n);
    LLVMSetAlignment(v, 8);
    return v;
}

static LLVMValueRef add_kernel(nvb *g, const char *name) {
    LLVMValueRef fn = LLVMAddFunction(g->mod, name, g->fty_kernel);
    LLVMSetFunctionCallConv(fn, LLVMPTXKernelCallConv);
    static const char *const attrs[] = {"noalias", "nocapture", "readonly"};
    for (size_t i = 0; i < 3; i++) {
        unsigned kind = LLVMGetEnumAttributeKindForName(attrs[i], strlen(attrs[i]));
        LLVMAddAttributeAtIndex(fn, 1, LLVMCreateEnumAttribute(g->ctx, kind, 0));
    }
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(g->ctx, nounwind, 0));
    g->fn = fn;
    LLVMPositionBuilderAtEnd(g->b, block(g, "entry"));
    return fn;
}

static LLVMValueRef words_alloca(nvb *g, int words, const char *name) {
    LLVMValueRef a = LLVMBuildAlloca(g->b, LLVMArrayType(g->i64, (unsigned)words), name);
    LLVMSetAlignment(a, 8);
    return a;
}

static LLVMValueRef word_ptr(nvb *g, LLVMValueRef base, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(g->b, g->i64, base, &idx, 1, "");
}

static LLVMValueRef load64(nvb *g, LLVMValueRef p) {
    LLVMValueRef v = LLVMBuildLoad2(g->b, g->i64, p, "");
    LLVMSetAlignment(v, 8);
    return v;
}

static void store64(nvb *g, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(g->b, v, p), 8);
}

/* acc = the warp's merge of acc over shuffles down by 16, 8, 4, 2, 1 (a fixed tree: lane
 * 0 ends with the whole warp).  A loop, not unrolled: it runs once per thread. */
static void warp_reduce(nvb *g, int p, LLVMValueRef merge, LLVMValueRef acc, LLVMValueRef tmp,
                        int words) {
    LLVMBuilderRef b = g->b;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b), loop = block(g, "shfl"),
                      done = block(g, "shfld");
    LLVMBuildBr(b, loop);
    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef delta = LLVMBuildPhi(b, g->i32, "delta");
    for (int w = 0; w < words; w++) {
        LLVMValueRef v = load64(g, word_ptr(g, acc, ci64(g, w)));
        int halves = cg_pass_word_bits(g->k, g->plan, p, w) > 32 ? 2 : 1;
        LLVMValueRef u = NULL;
        for (int h = 0; h < halves; h++) {
            LLVMValueRef part = h ? LLVMBuildLShr(b, v, ci64(g, 32), "") : v;
            LLVMValueRef args[4] = {ci32(g, -1), LLVMBuildTrunc(b, part, g->i32, ""), delta,
                                    ci32(g, 31)};
            LLVMValueRef x = intrinsic0(g->mod, b, "llvm.nvvm.shfl.sync.down.i32", args, 4);
            x = LLVMBuildZExt(b, x, g->i64, "");
            u = h ? LLVMBuildOr(b, u, LLVMBuildShl(b, x, ci64(g, 32), ""), "") : x;
        }
        store64(g, u, word_ptr(g, tmp, ci64(g, w)));
    }
    LLVMValueRef args[2] = {acc, tmp};
    call_fn(g, merge, args, 2);
    LLVMValueRef next = LLVMBuildLShr(b, delta, ci32(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, next, ci32(g, 0), ""), loop, done);
    LLVMValueRef dv[2] = {ci32(g, 16), next};
    LLVMBasicBlockRef db[2] = {pre, latch};
    LLVMAddIncoming(delta, dv, db, 2);
    LLVMPositionBuilderAtEnd(b, done);
}

/* The thread's linear id in its block, and the block's threads in *nthr: a stencil
 * kernel's block is 2-D (ntid.x a multiple of 32, so a warp never spans two rows of it). */
static LLVMValueRef block_tid(nvb *g, LLVMValueRef *nthr) {
    LLVMBuilderRef b = g->b;
    *nthr = LLVMBuildMul(b, sreg(g->mod, b, "ntid.x"), sreg(g->mod, b, "ntid.y"), "");
    return LLVMBuildAdd(b, sreg(g->mod, b, "tid.x"),
                        LLVMBuildMul(b, sreg(g->mod, b, "tid.y"), sreg(g->mod, b, "ntid.x"), ""),
                        "tid");
}

/*
 * void fusor_pass<p>_block(i64 *acc, i64 *dest): the block's merge of every thread's acc,
 * warps first, then warp 0 over the warps' results kept in shared memory; thread 0
 * stores the row in dest.  Every thread of the block calls it (it has a barrier).  One
 * out-of-line copy serves the pass's kernels and its reduce kernel.
 */
static LLVMValueRef block_fn(nvb *g, int p) {
    char name[64];
    snprintf(name, sizeof name, "fusor_pass%d_block", p);
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, name);
    if (fn)
        return fn;
    int words = cg_pass_words(g->k, g->plan, p);
    LLVMTypeRef params[2] = {g->ptr, g->ptr};
    fn = LLVMAddFunction(g->mod, name,
                         LLVMFunctionType(LLVMVoidTypeInContext(g->ctx), params, 2, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(g->ctx, noinline, 0));
    LLVMValueRef saved_fn = g->fn;
    LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(g->b);
    g->fn = fn;
    LLVMBuilderRef b = g->b;
    LLVMPositionBuilderAtEnd(b, block(g, "entry"));
    LLVMValueRef acc = LLVMGetParam(fn, 0), dest = LLVMGetParam(fn, 1);

    snprintf(name, sizeof name, "fusor_pass%d_smem", p);
    LLVMTypeRef sty = LLVMArrayType(g->i64, (unsigned)(words * (CG_GPU_MAX_BLOCK / 32)));
    LLVMValueRef smem = LLVMAddGlobalInAddressSpace(g->mod, sty, name, 3);
    LLVMSetInitializer(smem, LLVMGetUndef(sty));
    LLVMSetLinkage(smem, LLVMInternalLinkage);
    LLVMSetAlignment(smem, 8);
    LLVMValueRef merge = helper(g, p, "merge");
    LLVMValueRef tmp = words_alloca(g, words, "tmp");
    LLVMValueRef nthr, tid = block_tid(g, &nthr);
    LLVMValueRef lane = LLVMBuildAnd(b, tid, ci64(g, 31), "lane");
    LLVMValueRef warp = LLVMBuildLShr(b, tid, ci64(g, 5), "warp");
    LLVMValueRef nwarps = LLVMBuildLShr(b, nthr, ci64(g, 5), "nwarps");
    warp_reduce(g, p, merge, acc, tmp, words);

    LLVMBasicBlockRef put = block(g, "put"), sync = block(g, "sync"), w0 = block(g, "warp0");
    LLVMBasicBlockRef get = block(g, "get"), idle = block(g, "idle"), join = block(g, "join");
    LLVMBasicBlockRef out = block(g, "out"), done = block(g, "done");
    LLVMValueRef is_lane0 = LLVMBuildICmp(b, LLVMIntEQ, lane, ci64(g, 0), "");
    LLVMBuildCondBr(b, is_lane0, put, sync);
    LLVMPositionBuilderAtEnd(b, put);
    LLVMValueRef row = LLVMBuildMul(b, warp, ci64(g, words), "");
    for (int w = 0; w < words; w++) {
        LLVMValueRef at = LLVMBuildAdd(b, row, ci64(g, w), "");
        LLVMValueRef sp = LLVMBuildInBoundsGEP2(b, g->i64, smem, &at, 1, "");
        store64(g, load64(g, word_ptr(g, acc, ci64(g, w))), sp);
    }
    LLVMBuildBr(b, sync);
    LLVMPositionBuilderAtEnd(b, sync);
    intrinsic0(g->mod, b, "llvm.nvvm.barrier0", NULL, 0);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, warp, ci64(g, 0), ""), w0, done);
    LLVMPositionBuilderAtEnd(b, w0);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, lane, nwarps, ""), get, idle);
    LLVMPositionBuilderAtEnd(b, get);
    row = LLVMBuildMul(b, lane, ci64(g, words), "");
    for (int w = 0; w < words; w++) {
        LLVMValueRef at = LLVMBuildAdd(b, row, ci64(g, w), "");
        LLVMValueRef sp = LLVMBuildInBoundsGEP2(b, g->i64, smem, &at, 1, "");
        store64(g, load64(g, sp), word_ptr(g, acc, ci64(g, w)));
    }
    LLVMBuildBr(b, join);
    LLVMPositionBuilderAtEnd(b, idle);
    call_fn(g, helper(g, p, "init"), &acc, 1);
    LLVMBuildBr(b, join);
    LLVMPositionBuilderAtEnd(b, join);
    warp_reduce(g, p, merge, acc, tmp, words);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, lane, ci64(g, 0), ""), out, done);
    LLVMPositionBuilderAtEnd(b, out);
    for (int w = 0; w < words; w++)
        store64(g, load64(g, word_ptr(g, acc, ci64(g, w))), word_ptr(g, dest, ci64(g, w)));
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRetVoid(b);
    g->fn = saved_fn;
    LLVMPositionBuilderAtEnd(b, saved_bb);
    return fn;
}

/* A pointer field of the block, as a global-address-space pointer. */
static LLVMValueRef global_field(nvb *g, LLVMValueRef P, size_t off, const char *name) {
    LLVMValueRef p = param_field(g, P, off, g->ptr, name);
    return LLVMBuildAddrSpaceCast(g->b, p, g->gptr, name);
}

static void row_name(char *buf, size_t n, int p, int variant) {
    cg_pass_variant_name(buf, n, p, variant);
    strncat(buf, ".row", n - strlen(buf) - 1);
}

static void fold_if_last(nvb *g, int p, LLVMValueRef P, LLVMValueRef acc, LLVMValueRef tmp,
                         LLVMValueRef res, LLVMValueRef partials);

static void build_pass_kernel(nvb *g, int p, int variant) {
    char name[64], rname[80];
    cg_pass_variant_name(name, sizeof name, p, variant);
    row_name(rname, sizeof rname, p, variant);
    LLVMValueRef row = LLVMGetNamedFunction(g->mod, rname);
    add_kernel(g, name);
    LLVMValueRef P = LLVMGetParam(g->fn, 0);
    int words = cg_pass_words(g->k, g->plan, p);
    LLVMValueRef acc = LLVMConstPointerNull(g->ptr), tmp = acc, res = acc;
    if (words) { /* the fold's row and result too: every alloca in the entry block */
        acc = words_alloca(g, words, "acc");
        tmp = words_alloca(g, words, "row");
        res = words_alloca(g, words, "result");
        call_fn(g, helper(g, p, "init"), &acc, 1);
    }
    LLVMValueRef args[5] = {param_field(g, P, CG_GPU_OFF_ARRAYS(g->narrays), NULL, ""),
                            param_field(g, P, CG_GPU_OFF_NDIM, NULL, ""),
                            param_field(g, P, CG_GPU_OFF_N, g->i64, "n"),
                            param_field(g, P, CG_GPU_OFF_SLOTS, g->ptr, "slots"), acc};
    call_fn(g, row, args, 5);
    if (words) {
        LLVMValueRef partials = global_field(g, P, CG_GPU_OFF_PARTIALS, "partials");
        LLVMValueRef blk = sreg(g->mod, g->b, "ctaid.x");
        if (variant == CG_STENCIL) { /* the linear block id, x fastest */
            LLVMValueRef yz = LLVMBuildAdd(
                g->b, sreg(g->mod, g->b, "ctaid.y"),
                LLVMBuildMul(g->b, sreg(g->mod, g->b, "ctaid.z"), sreg(g->mod, g->b, "nctaid.y"), ""),
                "");
            blk = LLVMBuildAdd(g->b, blk, LLVMBuildMul(g->b, yz, sreg(g->mod, g->b, "nctaid.x"), ""),
                               "block");
        }
        LLVMValueRef at = LLVMBuildMul(g->b, blk, ci64(g, words), "");
        LLVMValueRef dest = LLVMBuildInBoundsGEP2(g->b, g->i64, partials, &at, 1, "");
        LLVMValueRef bargs[2] = {acc, LLVMBuildAddrSpaceCast(g->b, dest, g->ptr, "")};
        call_fn(g, block_fn(g, p), bargs, 2);
        fold_if_last(g, p, P, acc, tmp, res, partials);
    }
    LLVMBuildRetVoid(g->b);
}

/* acc = merge(acc, partial row `row` of pass p), the row read through tmp (its words);
 * volatile loads for rows other blocks of the running kernel wrote. */
static void merge_row(nvb *g, int p, LLVMValueRef acc, LLVMValueRef tmp, LLVMValueRef partials,
                      LLVMValueRef row, int vol) {
    int words = cg_pass_words(g->k, g->plan, p);
    LLVMValueRef at = LLVMBuildMul(g->b, row, ci64(g, words), "");
    for (int w = 0; w < words; w++) {
        LLVMValueRef idx = LLVMBuildAdd(g->b, at, ci64(g, w), "");
        LLVMValueRef v = load64(g, LLVMBuildInBoundsGEP2(g->b, g->i64, partials, &idx, 1, ""));
        LLVMSetVolatile(v, vol);
        store64(g, v, word_ptr(g, tmp, ci64(g, w)));
    }
    LLVMValueRef margs[2] = {acc, tmp};
    call_fn(g, helper(g, p, "merge"), margs, 2);
}

/*
 * The end of a pass kernel with reductions, after the block has written its partial row:
 * the block's thread 0 publishes the row (a fence) and takes a ticket (an atomic add on
 * the pass's ticket word, slots[nslots + p]); the block that draws the last ticket folds
 * rows 0..npartials-1 in order (thread t: rows t, t + threads, ...; then the block merge),
 * stores the results in the slots the next pass reads, runs the finish (when this is the
 * kernel's last pass) and puts the ticket back to 0 for the next launch.  No kernel of its
 * own, so a whole-array reduction is one launch.  acc is free to reuse; tmp and res are
 * `words` words each (a row read, the block's result).
 */
static void fold_if_last(nvb *g, int p, LLVMValueRef P, LLVMValueRef acc, LLVMValueRef tmp,
                         LLVMValueRef res, LLVMValueRef partials) {
    LLVMBuilderRef b = g->b;
    char name[64];
    snprintf(name, sizeof name, "fusor_pass%d_last", p);
    LLVMValueRef flag = LLVMGetNamedGlobal(g->mod, name);
    if (!flag) {
        flag = LLVMAddGlobalInAddressSpace(g->mod, g->i32, name, 3);
        LLVMSetInitializer(flag, LLVMGetUndef(g->i32));
        LLVMSetLinkage(flag, LLVMInternalLinkage);
        LLVMSetAlignment(flag, 4);
    }
    LLVMValueRef nthr, tid = block_tid(g, &nthr);
    LLVMValueRef npart = param_field(g, P, CG_GPU_OFF_NPARTIALS, g->i64, "npartials");
    LLVMValueRef slots = param_field(g, P, CG_GPU_OFF_SLOTS, g->ptr, "slots");
    LLVMValueRef gslots = LLVMBuildAddrSpaceCast(b, slots, g->gptr, "");
    LLVMValueRef at = ci64(g, (long long)g->plan->nslots + p);
    LLVMValueRef ticket = LLVMBuildInBoundsGEP2(b, g->i64, gslots, &at, 1, "ticket");
    LLVMValueRef is0 = LLVMBuildICmp(b, LLVMIntEQ, tid, ci64(g, 0), "");

    LLVMBasicBlockRef draw = block(g, "draw"), sync = block(g, "drawn"), last = block(g, "last"),
                      loop = block(g, "fold"), folded = block(g, "folded"), fin = block(g, "final"),
                      done = block(g, "done");
    LLVMBuildCondBr(b, is0, draw, sync);
    LLVMPositionBuilderAtEnd(b, draw);
    intrinsic0(g->mod, b, "llvm.nvvm.membar.gl", NULL, 0);
    LLVMValueRef old = LLVMBuildAtomicRMW(b, LLVMAtomicRMWBinOpAdd, ticket, ci64(g, 1),
                                          LLVMAtomicOrderingMonotonic, 0);
    LLVMValueRef lastv =
        LLVMBuildICmp(b, LLVMIntEQ, old, LLVMBuildSub(b, npart, ci64(g, 1), ""), "");
    LLVMSetAlignment(LLVMBuildStore(b, LLVMBuildZExt(b, lastv, g->i32, ""), flag), 4);
    LLVMBuildBr(b, sync);
    LLVMPositionBuilderAtEnd(b, sync);
    intrinsic0(g->mod, b, "llvm.nvvm.barrier0", NULL, 0);
    LLVMValueRef f = LLVMBuildLoad2(b, g->i32, flag, "");
    LLVMSetAlignment(f, 4);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, f, ci32(g, 0), ""), last, done);

    LLVMPositionBuilderAtEnd(b, last);
    intrinsic0(g->mod, b, "llvm.nvvm.membar.gl", NULL, 0);
    call_fn(g, helper(g, p, "init"), &acc, 1);
    /* 32-bit row numbers (a grid has fewer than 2^31 blocks), as in the _32 variants */
    LLVMValueRef tid32 = LLVMBuildTrunc(b, tid, g->i32, ""),
                 nthr32 = LLVMBuildTrunc(b, nthr, g->i32, "");
    LLVMValueRef np32 = LLVMBuildTrunc(b, npart, g->i32, "");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, tid32, np32, ""), loop, folded);
    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef i = LLVMBuildPhi(b, g->i32, "i");
    merge_row(g, p, acc, tmp, partials, LLVMBuildZExt(b, i, g->i64, ""), 1);
    LLVMValueRef next = LLVMBuildAdd(b, i, nthr32, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, next, np32, ""), loop, folded);
    LLVMValueRef iv[2] = {tid32, next};
    LLVMBasicBlockRef ib[2] = {last, latch};
    LLVMAddIncoming(i, iv, ib, 2);
    LLVMPositionBuilderAtEnd(b, folded);
    LLVMValueRef bargs[2] = {acc, res};
    call_fn(g, block_fn(g, p), bargs, 2);
    LLVMBuildCondBr(b, is0, fin, done);
    LLVMPositionBuilderAtEnd(b, fin);
    LLVMValueRef fargs[2] = {res, slots};
    call_fn(g, helper(g, p, "final"), fargs, 2);
    if (cg_gpu_finish_in_pass(g->k, g->plan, p)) {
        LLVMValueRef args[2] = {slots, param_field(g, P, CG_GPU_OFF_OUTS, g->ptr, "outs")};
        call_fn(g, LLVMGetNamedFunction(g->mod, CG_FINISH_NAME ".row"), args, 2);
    }
    LLVMValueRef zero = LLVMBuildStore(b, ci64(g, 0), ticket);
    LLVMSetAlignment(zero, 8);
    LLVMSetVolatile(zero, 1);
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, done);
}

/* fusor_finish: thread 0 of block 0 computes the scalar outputs. */
static void build_finish_kernel(nvb *g) {
    LLVMValueRef row = LLVMGetNamedFunction(g->mod, CG_FINISH_NAME ".row");
    add_kernel(g, CG_FINISH_NAME);
    LLVMBuilderRef b = g->b;
    LLVMValueRef P = LLVMGetParam(g->fn, 0);
    LLVMValueRef who = LLVMBuildOr(b, sreg(g->mod, b, "tid.x"), sreg(g->mod, b, "ctaid.x"), "");
    LLVMBasicBlockRef run = block(g, "run"), done = block(g, "done");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, who, ci64(g, 0), ""), run, done);
    LLVMPositionBuilderAtEnd(b, run);
    LLVMValueRef args[2] = {param_field(g, P, CG_GPU_OFF_SLOTS, g->ptr, "slots"),
                            param_field(g, P, CG_GPU_OFF_OUTS, g->ptr, "outs")};
    call_fn(g, row, args, 2);
    LLVMBuildBr(b, done);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRetVoid(b);
}

/* Stores canonical value v (an ir_value's 64 bits, ir.h) at p as an element of dtype d. */
static void store_canonical(nvb *g, LLVMValueRef v, LLVMValueRef p, fusor_dtype d) {
    LLVMBuilderRef b = g->b;
    LLVMTypeRef f64 = LLVMDoubleTypeInContext(g->ctx);
    if (d == FUSOR_F64) {
        v = LLVMBuildBitCast(b, v, f64, "");
    } else if (d == FUSOR_F32 || d == FUSOR_F16) { /* exact: the value fits the dtype */
        LLVMTypeRef t = d == FUSOR_F32 ? LLVMFloatTypeInContext(g->ctx) : LLVMHalfTypeInContext(g->ctx);
        v = LLVMBuildFPTrunc(b, LLVMBuildBitCast(b, v, f64, ""), t, "");
    } else if (d == FUSOR_BOOL) {
        v = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, v, ci64(g, 0), ""),
                          LLVMInt8TypeInContext(g->ctx), "");
    } else if (fusor_dtype_size(d) < 8) {
        v = LLVMBuildTrunc(b, v, LLVMIntTypeInContext(g->ctx, 8 * (unsigned)fusor_dtype_size(d)), "");
    }
    LLVMSetAlignment(LLVMBuildStore(b, v, p), (unsigned)fusor_dtype_size(d));
}

/* The result from acc's words: `final` (its slots in `mine`), stored at outp as dtype rd. */
static void final_store(nvb *g, LLVMValueRef acc, LLVMValueRef mine, LLVMValueRef slot,
                        LLVMValueRef outp, fusor_dtype rd) {
    LLVMValueRef fargs[2] = {acc, mine};
    call_fn(g, helper(g, 0, "final"), fargs, 2);
    store_canonical(g, load64(g, slot), outp, rd);
}

/* The block merge of every thread's acc into res, then thread 0's final_store; a barrier
 * after, as the next result reuses the merge's shared memory. */
static void block_final_store(nvb *g, LLVMValueRef acc, LLVMValueRef res, LLVMValueRef mine,
                              LLVMValueRef slot, LLVMValueRef outp, fusor_dtype rd) {
    LLVMBuilderRef b = g->b;
    LLVMValueRef bargs[2] = {acc, res};
    call_fn(g, block_fn(g, 0), bargs, 2);
    LLVMBasicBlockRef put = block(g, "put"), next = block(g, "next");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, sreg(g->mod, b, "tid.x"), ci64(g, 0), ""), put,
                    next);
    LLVMPositionBuilderAtEnd(b, put);
    final_store(g, res, mine, slot, outp, rd);
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
    intrinsic0(g->mod, b, "llvm.nvvm.barrier0", NULL, 0);
}

/*
 * An AXIS stage's kernels (gpu.h), by `mode` (CG_AXK_*):
 *   THREAD   fusor_pass0_axis: a grid-stride loop over (chunk, result) pairs, the results
 *            fastest (neighbouring threads, neighbouring results); each thread folds its
 *            result's chunk of the axis with the CG_AXIS row.  With one chunk (the whole
 *            axis) it then runs `final` and stores the result; with more it writes its raw
 *            words to the result's chunk row in partials, as SPLIT.
 *   BLOCK    fusor_pass0_axisblk: a block-stride loop over the results; the block's threads
 *            fold the axis with the CG_AXISBLK row, the block merge, then thread 0 finals
 *            and stores.
 *   SPLIT    fusor_pass0_axissplit: a block-stride loop over (result, chunk) pairs; the
 *            block folds that chunk of the axis (the CG_AXISBLK row over the chunk's
 *            elements) into its row of raw words in partials.
 *   FOLD     fusor_pass0_axisfold: a grid-stride loop over the results, merging each
 *            result's chunk rows in order, then `final` and the store.
 *   FOLDBLK  fusor_pass0_axisfoldblk: a block-stride loop over the results, the block's
 *            threads merging the chunk rows (thread t rows t, t + ntid, ...), the block
 *            merge, then thread 0 finals and stores: for many chunks per result.
 * Each finds its result's elements from the result-domain table (gpu_nd_offsets).
 */
static void build_axis_kernel(nvb *g, int mode) {
    char name[64], rname[80];
    cg_pass_helper_name(name, sizeof name, 0, cg_axis_kernels[mode]);
    row_name(rname, sizeof rname, 0, mode == CG_AXK_THREAD ? CG_AXIS : CG_AXISBLK);
    LLVMValueRef row = LLVMGetNamedFunction(g->mod, rname);
    add_kernel(g, name);
    LLVMBuilderRef b = g->b;
    LLVMTypeRef i8 = LLVMInt8TypeInContext(g->ctx);
    LLVMValueRef P = LLVMGetParam(g->fn, 0);
    int n = g->narrays, words = cg_pass_words(g->k, g->plan, 0);
    int by_block = mode == CG_AXK_BLOCK || mode == CG_AXK_SPLIT || mode == CG_AXK_FOLDBLK;
    int32_t red = g->plan->passes[0].reductions[0];
    fusor_dtype rd = g->k->outputs[0].dtype;
    LLVMValueRef nres = param_field(g, P, CG_GPU_OFF_N, g->i64, "n");
    LLVMValueRef len = param_field(g, P, CG_GPU_OFF_AXLEN(n), g->i64, "axlen");
    LLVMValueRef chunk = param_field(g, P, CG_GPU_OFF_AXCHUNK(n), g->i64, "chunk");
    LLVMValueRef nchunks = param_field(g, P, CG_GPU_OFF_AXNCHUNKS(n), g->i64, "nchunks");
    LLVMValueRef table = param_field(g, P, CG_GPU_OFF_NDIM, NULL, "");
    LLVMValueRef axstr = param_field(g, P, CG_GPU_OFF_AXSTRIDES(n), NULL, "");
    LLVMValueRef slots = param_field(g, P, CG_GPU_OFF_SLOTS, g->ptr, "slots");
    LLVMValueRef partials = global_field(g, P, CG_GPU_OFF_PARTIALS, "partials");
    LLVMValueRef acc = words_alloca(g, words, "acc"), res = words_alloca(g, words, "res");
    LLVMValueRef mine = words_alloca(g, g->plan->nslots, "mine"); /* final's slots */
    LLVMTypeRef pty = LLVMArrayType(g->ptr, (unsigned)n);
    LLVMValueRef ptrs = LLVMBuildAlloca(b, pty, "ptrs");
    LLVMValueRef *bases = fu_calloc((size_t)n, sizeof *bases), *off = fu_calloc((size_t)n, sizeof *off);
    if (!bases || !off) { /* the module is then incomplete: verify() reports it */
        fu_free(bases);
        fu_free(off);
        LLVMBuildRetVoid(b);
        return;
    }
    for (int a = 0; a < n; a++)
        bases[a] = param_field(g, P, CG_GPU_OFF_ARRAYS(n) + 8 * (size_t)a, g->ptr, "base");
    LLVMValueRef first = by_block ? sreg(g->mod, b, "ctaid.x") : gpu_first(g->mod, b);
    LLVMValueRef step = by_block ? sreg(g->mod, b, "nctaid.x") : gpu_step(g->mod, b);
    LLVMValueRef count = mode == CG_AXK_SPLIT || mode == CG_AXK_THREAD
                             ? LLVMBuildMul(b, nres, nchunks, "items")
                             : nres;
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(b), loop = block(g, "result"),
                      done = block(g, "done");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, first, count, ""), loop, done);
    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef item = LLVMBuildPhi(b, g->i64, "item");
    LLVMValueRef r = mode == CG_AXK_SPLIT ? LLVMBuildSDiv(b, item, nchunks, "r") : item;
    LLVMValueRef tc = NULL; /* CG_AXK_THREAD: the item's chunk, 0 without a split */
    LLVMBasicBlockRef body = LLVMGetInsertBlock(b);
    if (mode == CG_AXK_THREAD) { /* item = chunk * nres + result; no division unless split */
        LLVMBasicBlockRef divide = block(g, "divide"), joined = block(g, "joined");
        LLVMValueRef split = LLVMBuildICmp(b, LLVMIntSGT, nchunks, ci64(g, 1), "split");
        LLVMBuildCondBr(b, split, divide, joined);
        LLVMPositionBuilderAtEnd(b, divide);
        LLVMValueRef q = LLVMBuildUDiv(b, item, nres, "");
        LLVMBuildBr(b, joined);
        LLVMPositionBuilderAtEnd(b, joined);
        tc = LLVMBuildPhi(b, g->i64, "tc");
        LLVMValueRef cv[2] = {ci64(g, 0), q};
        LLVMBasicBlockRef cb[2] = {body, divide};
        LLVMAddIncoming(tc, cv, cb, 2);
        r = LLVMBuildSub(b, item, LLVMBuildMul(b, tc, nres, ""), "r");
    }
    gpu_nd_offsets(g->mod, b, table, r, n, bases, off);
    LLVMValueRef outp = LLVMBuildGEP2(b, i8, bases[g->k->nparams], &off[g->k->nparams], 1, "out");
    LLVMValueRef slot = word_ptr(g, mine, ci64(g, g->k->nodes[red].slot));
    if (mode == CG_AXK_FOLD || mode == CG_AXK_FOLDBLK) { /* the result's chunk rows */
        call_fn(g, helper(g, 0, "init"), &acc, 1);
        int blk = mode == CG_AXK_FOLDBLK;
        LLVMValueRef c0 = blk ? sreg(g->mod, b, "tid.x") : ci64(g, 0);
        LLVMValueRef cstep = blk ? sreg(g->mod, b, "ntid.x") : ci64(g, 1);
        LLVMBasicBlockRef pre = LLVMGetInsertBlock(b), fold = block(g, "fold"),
                          folded = block(g, "folded");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, c0, nchunks, ""), fold, folded);
        LLVMPositionBuilderAtEnd(b, fold);
        LLVMValueRef c = LLVMBuildPhi(b, g->i64, "c");
        merge_row(g, 0, acc, res, partials,
                  LLVMBuildAdd(b, LLVMBuildMul(b, r, nchunks, ""), c, "row"), 0);
        LLVMValueRef cn = LLVMBuildAdd(b, c, cstep, "");
        LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, cn, nchunks, ""), fold, folded);
        LLVMValueRef cv[2] = {c0, cn};
        LLVMBasicBlockRef cb[2] = {pre, latch};
        LLVMAddIncoming(c, cv, cb, 2);
        LLVMPositionBuilderAtEnd(b, folded);
        if (blk)
            block_final_store(g, acc, res, mine, slot, outp, rd);
        else
            final_store(g, acc, mine, slot, outp, rd);
    } else {
        /* This item's part of the axis: all of it, or chunk c of a split. */
        LLVMValueRef lo = ci64(g, 0), part = len;
        int chunked = mode == CG_AXK_SPLIT || mode == CG_AXK_THREAD;
        if (chunked) {
            LLVMValueRef c = mode == CG_AXK_THREAD
                                 ? tc
                                 : LLVMBuildSub(b, item, LLVMBuildMul(b, r, nchunks, ""), "c");
            lo = LLVMBuildMul(b, c, chunk, "lo");
            LLVMValueRef left = LLVMBuildSub(b, len, lo, "");
            part = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, chunk, ""), left, chunk, "");
            part = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, part, ci64(g, 0), ""),
                                   ci64(g, 0), part, "part");
        }
        for (int a = 0; a < n; a++) {
            LLVMValueRef idx[2] = {ci64(g, 0), ci64(g, a)};
            LLVMValueRef at = LLVMBuildInBoundsGEP2(b, pty, ptrs, idx, 2, "");
            LLVMValueRef o = off[a];
            if (chunked) {
                LLVMValueRef ai = ci64(g, a);
                LLVMValueRef sa = load64(g, LLVMBuildInBoundsGEP2(b, g->i64, axstr, &ai, 1, ""));
                o = LLVMBuildAdd(b, o, LLVMBuildMul(b, lo, sa, ""), "");
            }
            store64(g, LLVMBuildPtrToInt(b, LLVMBuildGEP2(b, i8, bases[a], &o, 1, ""), g->i64, ""),
                    at);
        }
        call_fn(g, helper(g, 0, "init"), &acc, 1);
        LLVMValueRef args[5] = {
            LLVMBuildInBoundsGEP2(b, pty, ptrs, (LLVMValueRef[]){ci64(g, 0)}, 1, ""), axstr, part,
            slots, acc};
        call_fn(g, row, args, 5);
        if (chunked && words == 3) {
            /* A float min/max's last-zero tag (2i + sign, -1 for none) counts from the
             * chunk's start: made the axis index, so merging chunks keeps the later zero. */
            LLVMValueRef tp = word_ptr(g, acc, ci64(g, 2)), tag = load64(g, tp);
            LLVMValueRef moved = LLVMBuildAdd(b, tag, LLVMBuildShl(b, lo, ci64(g, 1), ""), "");
            store64(g,
                    LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, tag, ci64(g, 0), ""), moved,
                                    tag, ""),
                    tp);
        }
        if (mode == CG_AXK_SPLIT) { /* the block's row of raw words */
            LLVMValueRef at = LLVMBuildMul(b, item, ci64(g, words), "");
            LLVMValueRef dest = LLVMBuildInBoundsGEP2(b, g->i64, partials, &at, 1, "");
            LLVMValueRef bargs[2] = {acc, LLVMBuildAddrSpaceCast(b, dest, g->ptr, "")};
            call_fn(g, block_fn(g, 0), bargs, 2);
            intrinsic0(g->mod, b, "llvm.nvvm.barrier0", NULL, 0);
        } else if (mode == CG_AXK_BLOCK) {
            block_final_store(g, acc, res, mine, slot, outp, rd);
        } else { /* CG_AXK_THREAD: the result, or the raw words of its chunk */
            LLVMBasicBlockRef whole = block(g, "whole"), row = block(g, "chunkrow"),
                              next = block(g, "next");
            LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, nchunks, ci64(g, 1), ""), row, whole);
            LLVMPositionBuilderAtEnd(b, whole);
            final_store(g, acc, mine, slot, outp, rd);
            LLVMBuildBr(b, next);
            LLVMPositionBuilderAtEnd(b, row);
            LLVMValueRef at = LLVMBuildMul(
                b, LLVMBuildAdd(b, LLVMBuildMul(b, r, nchunks, ""), tc, ""), ci64(g, words), "");
            for (int w = 0; w < words; w++) {
                LLVMValueRef wi = LLVMBuildAdd(b, at, ci64(g, w), "");
                store64(g, load64(g, word_ptr(g, acc, ci64(g, w))),
                        LLVMBuildInBoundsGEP2(b, g->i64, partials, &wi, 1, ""));
            }
            LLVMBuildBr(b, next);
            LLVMPositionBuilderAtEnd(b, next);
        }
    }
    LLVMValueRef nx = LLVMBuildAdd(b, item, step, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, nx, count, ""), loop, done);
    LLVMValueRef rv[2] = {first, nx};
    LLVMBasicBlockRef rb[2] = {entry, latch};
    LLVMAddIncoming(item, rv, rb, 2);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRetVoid(b);
    fu_free(bases);
    fu_free(off);
}

static void add_string_attr(nvb *g, LLVMValueRef fn, const char *k, const char *v) {
    LLVMAddAttributeAtIndex(
        fn, LLVMAttributeFunctionIndex,
        LLVMCreateStringAttribute(g->ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

/* The emitter's functions become internal and always inlined; the row functions make
 * way for the kernels that take their names. */
static void hide_emitted(nvb *g) {
    unsigned inl = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        LLVMSetLinkage(f, LLVMInternalLinkage);
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(g->ctx, inl, 0));
    }
    char name[64], rname[80];
    for (int p = 0; p < g->plan->npasses; p++)
        for (int v = CG_CONTIG; v <= CG_AXISBLK; v++) {
            cg_pass_variant_name(name, sizeof name, p, v);
            row_name(rname, sizeof rname, p, v);
            LLVMValueRef f = LLVMGetNamedFunction(g->mod, name);
            if (f)
                LLVMSetValueName2(f, rname, strlen(rname));
        }
    LLVMValueRef f = LLVMGetNamedFunction(g->mod, CG_FINISH_NAME);
    if (f)
        LLVMSetValueName2(f, CG_FINISH_NAME ".row", strlen(CG_FINISH_NAME ".row"));
}

static int needs_libdevice(LLVMModuleRef m) {
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        if (LLVMIsDeclaration(f) && len > 5 && !strncmp(name, "__nv_", 5))
            return 1;
    }
    return 0;
}

/* Links the libdevice functions the kernels call (and what they call), reading only
 * those: every definition is made linkonce_odr, which the IR linker copies only when
 * referenced. */
static fusor_status link_libdevice(nvb *g) {
    pthread_once(&nv.libdevice_once, libdevice_init);
    if (!nv.libdevice)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "%s", nv.libdevice_why);
    LLVMMemoryBufferRef buf =
        LLVMCreateMemoryBufferWithMemoryRange(nv.libdevice, nv.libdevice_len, "libdevice.10.bc", 0);
    LLVMModuleRef lib = NULL;
    if (LLVMGetBitcodeModuleInContext2(g->ctx, buf, &lib))
        return fu_error(FUSOR_ERROR_COMPILE, "cannot read %s: %s", nv.libdevice_path,
                        g->diag.p ? g->diag.p : "not LLVM bitcode");
    for (LLVMValueRef f = LLVMGetFirstFunction(lib); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && LLVMGetLinkage(f) == LLVMExternalLinkage)
            LLVMSetLinkage(f, LLVMLinkOnceODRLinkage);
    /* The same layout and triple as the kernels, so the linker has nothing to warn of. */
    LLVMSetDataLayout(lib, LLVMGetDataLayoutStr(g->mod));
    LLVMSetTarget(lib, LLVMGetTarget(g->mod));
    if (LLVMLinkModules2(g->mod, lib)) /* consumes lib */
        return fu_error(FUSOR_ERROR_COMPILE, "linking libdevice failed: %s",
                        g->diag.p ? g->diag.p : "?");
    return FUSOR_OK;
}

/* The string a __nvvm_reflect call asks about (its argument is a constant C string). */
static const char *reflect_name(LLVMValueRef call, size_t *len) {
    LLVMValueRef a = LLVMGetOperand(call, 0);
    while (a && LLVMIsAConstantExpr(a))
        a = LLVMGetOperand(a, 0);
    if (!a || !LLVMIsAGlobalVariable(a) || !LLVMGetInitializer(a))
        return NULL;
    return LLVMGetAsString(LLVMGetInitializer(a), len);
}

/* Replaces every __nvvm_reflect call by the value fusor's options give it (LLVM 16's
 * NVVMReflect knows __CUDA_FTZ and __CUDA_ARCH only; libdevice also asks
 * __CUDA_PREC_SQRT, which must be 1 for IEEE sqrt in hypotf). */
static void resolve_reflect(nvb *g, const fusor_gpu_options *o) {
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, "__nvvm_reflect");
    if (!fn)
        return;
    LLVMUseRef u;
    while ((u = LLVMGetFirstUse(fn)) != NULL) {
        LLVMValueRef call = LLVMGetUser(u);
        if (!LLVMIsACallInst(call))
            break;
        size_t len = 0;
        const char *s = reflect_name(call, &len);
        long v = 0;
        if (s && !strncmp(s, "__CUDA_FTZ", len))
            v = o->ftz;
        else if (s && !strncmp(s, "__CUDA_PREC_SQRT", len))
            v = !o->approx_sqrt;
        else if (s && !strncmp(s, "__CUDA_PREC_DIV", len))
            v = !o->approx_div;
        else if (s && !strncmp(s, "__CUDA_ARCH", len))
            v = o->arch * 10;
        LLVMReplaceAllUsesWith(call, LLVMConstInt(LLVMTypeOf(call), (unsigned long long)v, 1));
        LLVMInstructionEraseFromParent(call);
    }
}

/* Only the kernels stay visible; everything else may be inlined and dropped. */
static void internalize(nvb *g, const fusor_gpu_options *o) {
    for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        if (LLVMGetFunctionCallConv(f) != LLVMPTXKernelCallConv)
            LLVMSetLinkage(f, LLVMInternalLinkage);
        if (o->ftz)
            add_string_attr(g, f, "denormal-fp-math-f32", "preserve-sign,preserve-sign");
    }
    unsigned always = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    unsigned never = LLVMGetEnumAttributeKindForName("noinline", 8);
    for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f)) {
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        if (LLVMIsDeclaration(f) || len < 5 || strncmp(name, "__nv_", 5))
            continue;
        LLVMRemoveEnumAttributeAtIndex(f, LLVMAttributeFunctionIndex, always);
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(g->ctx, never, 0));
    }
    for (LLVMValueRef v = LLVMGetFirstGlobal(g->mod); v; v = LLVMGetNextGlobal(v))
        if (!LLVMIsDeclaration(v))
            LLVMSetLinkage(v, LLVMInternalLinkage);
}

static fusor_status verify(nvb *g, const char *when) {
    char *msg = NULL;
    if (!LLVMVerifyModule(g->mod, LLVMReturnStatusAction, &msg)) {
        LLVMDisposeMessage(msg);
        return FUSOR_OK;
    }
    fusor_status st =
        fu_error(FUSOR_ERROR_COMPILE, "NVPTX codegen produced invalid LLVM IR (%s): %s", when, msg);
    LLVMDisposeMessage(msg);
    return st;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static _Thread_local cg_timing nv_timing;

void cg_nvptx_last_timing(cg_timing *out) { *out = nv_timing; }

static double now_ms(void);

/* f32 division without IEEE rounding is div.full.f32 (2 ulp over the whole range), as
 * nvcc and NVRTC give for -prec-div=false; LLVM 16 has no intrinsic for it, so the
 * emitter's calls get a body of inline PTX. */
static void define_div_full(nvb *g) {
    static const char *const names[2] = {"__fusor_div_full_f32", "__fusor_div_full_ftz_f32"};
    static const char *const asms[2] = {"div.full.f32 $0, $1, $2;", "div.full.ftz.f32 $0, $1, $2;"};
    for (int i = 0; i < 2; i++) {
        LLVMValueRef fn = LLVMGetNamedFunction(g->mod, names[i]);
        if (!fn || !LLVMIsDeclaration(fn))
            continue;
        LLVMTypeRef fty = LLVMGlobalGetValueType(fn);
        LLVMValueRef asm_ = LLVMGetInlineAsm(fty, (char *)asms[i], strlen(asms[i]), "=f,f,f", 6, 0,
                                             0, LLVMInlineAsmDialectATT, 0);
        LLVMSetLinkage(fn, LLVMInternalLinkage);
        g->fn = fn;
        LLVMPositionBuilderAtEnd(g->b, block(g, "entry"));
        LLVMValueRef args[2] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)};
        LLVMBuildRet(g->b, LLVMBuildCall2(g->b, fty, asm_, args, 2, ""));
    }
}

static fusor_status build_module(nvb *g, const fusor_gpu_options *o) {
    double t0 = now_ms();
    cg_target t = {.index_first = gpu_first,
                   .index_step = gpu_step,
                   .math_name = gpu_math_plain,
                   .elem_align = 0,
                   .gpu = 1,
                   .nd_offsets = gpu_nd_offsets,
                   .math_name_ex = gpu_math_name,
                   .sreg = sreg,
                   .math_flags = (o->ftz ? CG_MATH_FTZ : 0) |
                                 (o->approx_div ? CG_MATH_APPROX_DIV : 0) |
                                 (o->approx_sqrt ? CG_MATH_APPROX_SQRT : 0)};
    fusor_status st = cg_emit_module(g->k, g->plan, &t, g->ctx, &g->mod);
    if (st)
        return st;
    LLVMSetTarget(g->mod, NV_TRIPLE);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(g->tm);
    LLVMSetModuleDataLayout(g->mod, dl);
    LLVMDisposeTargetData(dl);
    g->b = LLVMCreateBuilderInContext(g->ctx);
    define_div_full(g);
    hide_emitted(g);
    int stencil = cg_gpu_is_stencil(g->k, NULL);
    if (g->k->axis_stage) { /* emit.c checked: one pass, one reduction */
        for (int mode = 0; mode < CG_AXK_COUNT; mode++)
            build_axis_kernel(g, mode);
    }
    for (int p = 0; p < g->plan->npasses && !g->k->axis_stage; p++) {
        for (int v = CG_CONTIG; v < CG_NUM_VARIANTS; v++)
            if (stencil ? v == CG_STENCIL : v != CG_STENCIL)
                build_pass_kernel(g, p, v);
    }
    if (g->plan->has_scalar_outputs && !g->k->axis_stage &&
        !cg_gpu_finish_in_pass(g->k, g->plan, g->plan->npasses - 1))
        build_finish_kernel(g);
    st = verify(g, "kernels");
    double t1 = now_ms();
    nv_timing.emit_ms = t1 - t0;
    if (!st && needs_libdevice(g->mod))
        st = link_libdevice(g);
    nv_timing.link_ms = now_ms() - t1;
    if (st)
        return st;
    resolve_reflect(g, o);
    internalize(g, o);
    return verify(g, "after linking libdevice");
}

/*
 * The pipeline, and a back end at CodeGenOpt::None.  PTX is not machine code: ptxas (or
 * the driver's JIT) schedules, allocates registers and strength-reduces it again, so
 * what LLVM must do is what ptxas cannot: inline the row functions into the kernels,
 * turn the accumulators into registers (SROA), fold __nvvm_reflect's answers through
 * libdevice, CSE, prove pointers global (ld.global) and join the _vec variant's accesses
 * into vector loads and stores (ld.global.v4.f32).  Unrolling is left to ptxas: LLVM's
 * runtime unrolling of the reducing passes' _vec loops (four vector loads in flight per
 * thread) left a sum over device memory where it was on an H200 (75-78% of the copy
 * bandwidth) and made softmax compile 38% longer.  The emitter's loops are already
 * branch-free with uniform work outside them.  Measured on a one-statement kernel:
 * default<O3> plus the default back end 20 ms, this 3.3 ms, for PTX of the same shape
 * (docs/codegen.md).
 */
static const char nv_pipeline[] =
    "always-inline,function(sroa,early-cse,instcombine,simplifycfg,infer-address-spaces,"
    "load-store-vectorizer),globaldce";

static fusor_status optimise(nvb *g) {
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(g->mod, nv_pipeline, g->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (!err)
        return FUSOR_OK;
    char *msg = LLVMGetErrorMessage(err);
    fusor_status st = fu_error(FUSOR_ERROR_COMPILE, "LLVM optimisation (NVPTX) failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return st;
}

/*
 * LLVM 16's NVPTX back end converts a signed i1 to floating point as 0 or +1 (its
 * instruction patterns select 1, then cvt.rn.f*.s32), but a signed i1 that is set is -1.
 * instcombine creates such conversions from ordinary integer code (a floor division of
 * a negated 0/1 value folds to `sitofp i1`), so a kernel could compute +1 where NumPy
 * and the CPU give -1.  Before code generation every `sitofp i1` (scalar or vector)
 * becomes the select it means: -1.0 where set, 0.0 elsewhere.  Returns how many.
 */
static int lower_signed_bool_to_fp(nvb *g) {
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(g->mod); f; f = LLVMGetNextFunction(f)) {
        for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb)) {
            LLVMValueRef in = LLVMGetFirstInstruction(bb);
            while (in) {
                LLVMValueRef next = LLVMGetNextInstruction(in);
                if (LLVMGetInstructionOpcode(in) == LLVMSIToFP) {
                    LLVMValueRef x = LLVMGetOperand(in, 0);
                    LLVMTypeRef xt = LLVMTypeOf(x), ft = LLVMTypeOf(in);
                    int vec = LLVMGetTypeKind(xt) == LLVMVectorTypeKind;
                    LLVMTypeRef et = vec ? LLVMGetElementType(xt) : xt;
                    if (LLVMGetTypeKind(et) == LLVMIntegerTypeKind && LLVMGetIntTypeWidth(et) == 1) {
                        LLVMTypeRef fe = vec ? LLVMGetElementType(ft) : ft;
                        LLVMValueRef m1 = LLVMConstReal(fe, -1.0), z = LLVMConstReal(fe, 0.0);
                        if (vec) {
                            unsigned w = LLVMGetVectorSize(xt);
                            LLVMValueRef a[64], b[64];
                            if (w > 64) {
                                in = next;
                                continue;
                            }
                            for (unsigned i = 0; i < w; i++)
                                a[i] = m1, b[i] = z;
                            m1 = LLVMConstVector(a, w);
                            z = LLVMConstVector(b, w);
                        }
                        LLVMPositionBuilderBefore(g->b, in);
                        LLVMValueRef s = LLVMBuildSelect(g->b, x, m1, z, "");
                        LLVMReplaceAllUsesWith(in, s);
                        LLVMInstructionEraseFromParent(in);
                        n++;
                    }
                }
                in = next;
            }
        }
    }
    return n;
}

static fusor_status emit_ptx(nvb *g, cg_gpu_code *c) {
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(g->tm, g->mod, LLVMAssemblyFile, &msg, &buf)) {
        fusor_status st =
            fu_error(FUSOR_ERROR_COMPILE, "NVPTX code generation failed: %s%s%s", msg ? msg : "?",
                     g->diag.len ? "; " : "", g->diag.p ? g->diag.p : "");
        LLVMDisposeMessage(msg);
        return st;
    }
    size_t n = LLVMGetBufferSize(buf);
    c->ptx = fu_malloc(n + 1);
    if (c->ptx) {
        memcpy(c->ptx, LLVMGetBufferStart(buf), n);
        c->ptx[n] = 0;
        c->ptx_len = strlen(c->ptx); /* the buffer may end in a NUL */
    }
    LLVMDisposeMemoryBuffer(buf);
    return c->ptx ? FUSOR_OK : fu_oom("the PTX text");
}

fusor_status cg_nvptx_compile(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *opt,
                              cg_gpu_code **out) {
    if (!k || !plan || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_nvptx_compile: NULL");
    *out = NULL;
    fusor_gpu_options o;
    fusor_status st = cg_gpu_options_normalize(opt, &o);
    if (!st)
        st = ensure_nvptx();
    if (st)
        return st;
    double t0 = now_ms();
    memset(&nv_timing, 0, sizeof nv_timing);
    cg_gpu_code *c = NULL;
    st = cg_gpu_code_new(k, plan, &c);
    if (st)
        return st;
    c->path = FUSOR_GPU_PATH_NVPTX;
    c->arch = o.arch;
    nvb g;
    memset(&g, 0, sizeof g);
    g.k = k;
    g.plan = plan;
    g.narrays = k->nparams + k->noutputs;
    g.ctx = LLVMContextCreate();
    LLVMContextSetDiagnosticHandler(g.ctx, diag_handler, &g);
    g.i32 = LLVMInt32TypeInContext(g.ctx);
    g.i64 = LLVMInt64TypeInContext(g.ctx);
    g.ptr = LLVMPointerTypeInContext(g.ctx, 0);
    g.gptr = LLVMPointerTypeInContext(g.ctx, 1);
    g.fty_kernel = LLVMFunctionType(LLVMVoidTypeInContext(g.ctx), &g.gptr, 1, 0);
    char cpu[16], features[16];
    snprintf(cpu, sizeof cpu, "sm_%d", o.arch);
    snprintf(features, sizeof features, "+ptx%d", cg_gpu_ptx_version(o.arch));
    g.tm = LLVMCreateTargetMachine(nv.target, NV_TRIPLE, cpu, features, LLVMCodeGenLevelNone,
                                   LLVMRelocDefault, LLVMCodeModelDefault);
    st = g.tm ? build_module(&g, &o) : fu_error(FUSOR_ERROR_COMPILE, "no NVPTX target machine");
    double t1 = now_ms();
    if (!st)
        st = optimise(&g);
    if (!st)
        lower_signed_bool_to_fp(&g);
    double t2 = now_ms();
    if (!st)
        st = emit_ptx(&g, c);
    nv_timing.opt_ms = t2 - t1;
    nv_timing.codegen_ms = now_ms() - t2;
    if (g.b)
        LLVMDisposeBuilder(g.b);
    if (g.mod)
        LLVMDisposeModule(g.mod);
    if (g.tm)
        LLVMDisposeTargetMachine(g.tm);
    LLVMContextDispose(g.ctx);
    sb_discard(&g.diag);
    if (st) {
        cg_gpu_code_free(c);
        return st;
    }
    c->compile_ms = nv_timing.total_ms = now_ms() - t0;
    *out = c;
    return FUSOR_OK;
}
