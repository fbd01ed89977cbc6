/*
 * emit.c — the target-neutral emitter: one ir_plan becomes row functions in LLVM IR.
 *
 *   for each pass p, for each addressing (contig, strided):
 *     entry:  load the array bases (and strides) the pass touches;
 *             compute the UNIFORM nodes it needs (from constants and launch slots);
 *             i = index_first(); if (i < n) enter the loop
 *     loop:   load inputs at i, compute the VARYING nodes, fold reductions into
 *             loop-carried values, store the outputs (after every load of the iteration,
 *             so an output that is exactly an input is read before it is written);
 *             i += index_step()
 *     exit:   acc[r] = combine(acc[r], the row's value of reduction r)
 *   fusor_finish: the scalar outputs, from the slots.
 *
 * Arrays are either the same view or disjoint (the launcher checks), so each loop carries
 * llvm.loop.parallel_accesses: the vectoriser needs no run-time overlap checks, and an
 * in-place update still vectorises.  The per-element semantics are ir.h's, written to
 * agree bit for bit with scalar.c; every op is branch-free (selects), so the loop body is
 * one basic block and integer division never traps.
 *
 * f16 is stored as LLVM `half` and computed as NumPy computes float16: every op on f16
 * widens its operands to float, computes the f32 op and rounds the result to half
 * (emit_f16_node); f16 reductions carry f32 and are rounded once at the end.  LLVM turns
 * the conversions into F16C's vcvtph2ps/vcvtps2ph on x86 and cvt on NVPTX.
 *
 * The LLVM 16 C API cannot set fast-math flags or make distinct metadata, so a tiny
 * template module (parsed into the same context) provides the one `fadd reassoc` that a
 * float sum needs and a distinct access group; both are cloned from it.
 */
#include "emit.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/IRReader.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

enum { ARG_PTRS, ARG_STRIDES, ARG_N, ARG_SLOTS, ARG_ACC };
enum { CG_MAX_LANES = 4 };

typedef struct emitter {
    LLVMContextRef ctx;
    LLVMModuleRef mod, tmpl;
    LLVMBuilderRef b;
    const ir_kernel *k;
    const ir_plan *plan;
    const cg_target *t;
    LLVMTypeRef i1, i8, i64, f16, f32, f64, ptr;
    LLVMValueRef access_group;    /* metadata as value */
    LLVMValueRef fadd_reassoc[2]; /* template instructions: f32, f64 */
    unsigned md_access_group, md_loop;
    /* the function being emitted */
    LLVMValueRef fn;
    int pass;    /* -1 for fusor_finish */
    int strided; /* addressing of array elements */
    int axis;    /* an axis row (CG_AXIS, CG_AXISBLK): strided by per-array steps even on a GPU */
    int in_loop; /* accesses get the access group */
    LLVMValueRef index;           /* of type itype */
    LLVMTypeRef itype;            /* i64, or i32 in a GPU variant with 32-bit indices */
    LLVMValueRef *val;            /* [nnodes] */
    char *need;                   /* [nnodes] */
    struct reduction *red;        /* [nnodes]: the pass's reductions */
    int32_t *array_of;            /* [nnodes]: the array an INPUT reads (ir_stencil_loads) */
    size_t narrays;               /* nparams + noutputs + stencil loads (+1) */
    LLVMValueRef *base, *step;    /* [narrays]: element pointer, byte stride */
    LLVMValueRef *off;            /* [nparams + noutputs]: GPU strided byte offsets (nd_offsets) */
    LLVMValueRef *lane_val;       /* [CG_MAX_LANES * nnodes]: a CG_VEC iteration's loads, stores */
    LLVMBasicBlockRef pre, latch; /* the last loop's preheader and latch */
    unsigned lanes0;              /* > 0: accesses belong to lane 0 of a CG_VEC iteration */
    LLVMValueRef spread;          /* non-NULL: emit_lanes' lanes lie this far apart (axis rows) */
    LLVMValueRef index_next;      /* the last loop's index after its increment */
    /* CG_STENCIL: rows of the box (emit.h) */
    int stencil;                  /* emitting the stencil variant */
    int notag;                    /* a _contignt/_stridednt variant: no zero tag */
    int fast;                     /* the middle of a row: no load leaves the array along x */
    LLVMValueRef xfull;           /* the element's last-dimension index in the full domain */
    LLVMValueRef full_last;       /* the full domain's last extent */
    LLVMValueRef xfull_origin;    /* the box's origin along the last dimension */
    LLVMValueRef row_flat;        /* the flat box index of the row's element 0 */
    LLVMValueRef *rowbase;        /* [narrays]: the row's element 0 (stencil loads: remapped) */
    LLVMValueRef *rowzero;        /* [narrays]: ZERO stencil loads, i1: the row is outside */
    int libm_calls;               /* math function calls emitted so far (loop_id) */
    fusor_status err;
} emitter;

/* ------------------------------------------------------------------ types and values */

static int is_float(fusor_dtype d) { return d == FUSOR_F32 || d == FUSOR_F64 || d == FUSOR_F16; }
static int is_signed(fusor_dtype d) { return d >= FUSOR_I8 && d <= FUSOR_I64; }
/* What a reduction of dtype d carries: f16 accumulates in f32 (scalar.h). */
static fusor_dtype carry_dtype(fusor_dtype d) { return d == FUSOR_F16 ? FUSOR_F32 : d; }
static unsigned dt_bits(fusor_dtype d) {
    return d == FUSOR_BOOL ? 1 : (unsigned)fusor_dtype_size(d) * 8;
}

static LLVMTypeRef ty(emitter *e, fusor_dtype d) {
    if (d == FUSOR_F32)
        return e->f32;
    if (d == FUSOR_F64)
        return e->f64;
    if (d == FUSOR_F16)
        return e->f16;
    return LLVMIntTypeInContext(e->ctx, dt_bits(d));
}

/* In memory a bool is one byte holding 0 or 1. */
static LLVMTypeRef mem_ty(emitter *e, fusor_dtype d) { return d == FUSOR_BOOL ? e->i8 : ty(e, d); }

static LLVMValueRef const_of(emitter *e, fusor_dtype d, ir_value v) {
    if (is_float(d))
        return LLVMConstReal(ty(e, d), v.f);
    if (d == FUSOR_BOOL)
        return LLVMConstInt(e->i1, v.i != 0, 0);
    return LLVMConstInt(ty(e, d), v.u, 0); /* APInt truncates to the width */
}

static LLVMValueRef cint(emitter *e, fusor_dtype d, int64_t v) {
    return const_of(e, d, (ir_value){.i = v});
}

static LLVMValueRef cfp(emitter *e, fusor_dtype d, double v) { return LLVMConstReal(ty(e, d), v); }

static LLVMValueRef int_min(emitter *e, fusor_dtype d) {
    return LLVMConstInt(ty(e, d), 1ull << (dt_bits(d) - 1), 0);
}

static LLVMValueRef arg(emitter *e, unsigned i) { return LLVMGetParam(e->fn, i); }

/* ------------------------------------------------------------------ calls */

static LLVMValueRef call_intrinsic(emitter *e, const char *name, LLVMTypeRef *tys, int ntys,
                                   LLVMValueRef *args, int nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->mod, id, tys, (size_t)ntys);
    LLVMTypeRef fty = LLVMIntrinsicGetType(e->ctx, id, tys, (size_t)ntys);
    return LLVMBuildCall2(e->b, fty, fn, args, (unsigned)nargs, "");
}

/* An overloaded float intrinsic of one or two operands of the same type. */
static LLVMValueRef fp_intrinsic(emitter *e, const char *name, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = {a, b};
    return call_intrinsic(e, name, &t, 1, args, b ? 2 : 1);
}

static void add_fn_attr(emitter *e, LLVMValueRef fn, unsigned idx, const char *name, uint64_t v) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    if (kind)
        LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(e->ctx, kind, v));
}

/* A C library function without side effects (errno is never read), so LLVM may hoist,
 * fold and vectorise calls to it. */
static LLVMValueRef libm_call(emitter *e, const char *name, LLVMValueRef a, LLVMValueRef b) {
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef fn = LLVMGetNamedFunction(e->mod, name);
    if (!fn) {
        LLVMTypeRef params[2] = {t, t};
        fn = LLVMAddFunction(e->mod, name, LLVMFunctionType(t, params, b ? 2 : 1, 0));
        add_fn_attr(e, fn, LLVMAttributeFunctionIndex, "nounwind", 0);
        add_fn_attr(e, fn, LLVMAttributeFunctionIndex, "willreturn", 0);
        add_fn_attr(e, fn, LLVMAttributeFunctionIndex, "nosync", 0);
        add_fn_attr(e, fn, LLVMAttributeFunctionIndex, "memory", 0); /* memory(none) */
    }
    LLVMValueRef args[2] = {a, b};
    return LLVMBuildCall2(e->b, LLVMGlobalGetValueType(fn), fn, args, b ? 2 : 1, "");
}

static const char *math_name(emitter *e, ir_op op, fusor_dtype d) {
    if (e->t->math_name_ex)
        return e->t->math_name_ex(op, d, e->t->math_flags);
    return e->t->math_name(op, d);
}

/* A target's function for `name`: an overloaded intrinsic (llvm.sin), one of fixed type
 * (llvm.nvvm.sqrt.approx.f, declared by name like a library function), or a library
 * function. */
static LLVMValueRef named_call(emitter *e, const char *name, LLVMValueRef a, LLVMValueRef b) {
    if (!strncmp(name, "llvm.", 5) &&
        LLVMIntrinsicIsOverloaded(LLVMLookupIntrinsicID(name, strlen(name))))
        return fp_intrinsic(e, name, a, b);
    return libm_call(e, name, a, b);
}

static LLVMValueRef math_call(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a, LLVMValueRef b) {
    const char *name = math_name(e, op, d);
    if (op != IR_SQRT) /* a vector instruction; the others become (vector) math calls */
        e->libm_calls++;
    if (!name) {
        e->err = fu_error(FUSOR_ERROR_INTERNAL, "codegen: no math function for %s of %s",
                          ir_op_name(op), fusor_dtype_name(d));
        return LLVMGetUndef(ty(e, d));
    }
    return named_call(e, name, a, b);
}

/* Float division and C fmod: the instruction, unless a GPU target maps them (approximate
 * f32 division; libdevice's exact fmod, as NVPTX expands frem inexactly). */
static LLVMValueRef fp_div(emitter *e, fusor_dtype d, LLVMValueRef a, LLVMValueRef b) {
    const char *name = e->t->math_name_ex ? math_name(e, IR_DIV, d) : NULL;
    return name ? named_call(e, name, a, b) : LLVMBuildFDiv(e->b, a, b, "");
}

static LLVMValueRef fp_rem(emitter *e, fusor_dtype d, LLVMValueRef a, LLVMValueRef b) {
    const char *name = e->t->math_name_ex ? math_name(e, IR_FMOD, d) : NULL;
    return name ? named_call(e, name, a, b) : LLVMBuildFRem(e->b, a, b, "");
}

/* ------------------------------------------------------------------ small helpers */

static LLVMValueRef sel(emitter *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(e->b, c, a, b, "");
}
static LLVMValueRef icmp(emitter *e, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildICmp(e->b, p, a, b, "");
}
static LLVMValueRef fcmp(emitter *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(e->b, p, a, b, "");
}
static LLVMValueRef is_nan(emitter *e, LLVMValueRef a) { return fcmp(e, LLVMRealUNO, a, a); }

/* Float min/max in NumPy's element-wise form: NaN if either is NaN, else the strict
 * comparison's winner, b on ties (so minimum(0.0, -0.0) is -0.0). */
static LLVMValueRef fp_minmax(emitter *e, int is_max, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef lt = fcmp(e, is_max ? LLVMRealOGT : LLVMRealOLT, a, b);
    return sel(e, is_nan(e, a), a, sel(e, lt, a, b));
}

/* fmin/fmax as scalar.c: the non-NaN operand, b on ties (as the element-wise
 * minimum), so a platform's fmin tie rule never shows. */
static LLVMValueRef fp_fminmax(emitter *e, int is_max, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef lt = fcmp(e, is_max ? LLVMRealOGT : LLVMRealOLT, a, b);
    return sel(e, LLVMBuildOr(e->b, is_nan(e, b), lt, ""), a, b);
}

static LLVMValueRef int_minmax(emitter *e, fusor_dtype d, int is_max, LLVMValueRef a,
                               LLVMValueRef b) {
    LLVMIntPredicate p =
        is_signed(d) ? (is_max ? LLVMIntSGT : LLVMIntSLT) : (is_max ? LLVMIntUGT : LLVMIntULT);
    return sel(e, icmp(e, p, a, b), a, b);
}

/* ------------------------------------------------------------------ casts */

/* f64 -> f32 rounded to odd (truncated, then the last bit set when inexact): rounding
 * that to half is the correctly rounded f64 -> f16 conversion (f32 keeps more than two
 * bits beyond half's), so the host converts with vcvtpd2ps and vcvtps2ph; LLVM 16 calls
 * a scalar soft-float routine per element for a direct fptrunc to half on x86 without
 * AVX512-FP16.  Overflow, infinities and NaNs come out as the direct conversion's. */
static LLVMValueRef f64_to_f32_odd(emitter *e, LLVMValueRef d) {
    LLVMBuilderRef b = e->b;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->ctx);
    LLVMValueRef f = LLVMBuildFPTrunc(b, d, e->f32, "");
    LLVMValueRef back = LLVMBuildFPExt(b, f, e->f64, "");
    LLVMValueRef bits = LLVMBuildBitCast(b, f, i32, "");
    /* rounded away from zero: one step back toward it (the sign bit is untouched) */
    LLVMValueRef away = fcmp(e, LLVMRealOGT, fp_intrinsic(e, "llvm.fabs", back, NULL),
                             fp_intrinsic(e, "llvm.fabs", d, NULL));
    bits = sel(e, away, LLVMBuildSub(b, bits, LLVMConstInt(i32, 1, 0), ""), bits);
    LLVMValueRef odd = LLVMBuildOr(b, bits, LLVMConstInt(i32, 1, 0), "");
    bits = sel(e, fcmp(e, LLVMRealUNE, back, d), odd, bits);
    return LLVMBuildBitCast(b, bits, e->f32, "");
}

/* float -> integer truncating toward zero, saturating at the type's limits, NaN -> 0
 * (llvm.fptosi.sat's meaning), as selects around a plain conversion of an in-range value:
 * LLVM 16's x86 back end scalarises the vector forms of the intrinsic (8 ns an element
 * instead of well under one).  The bounds (-2^(w-1) and 2^(w-1), or 0 and 2^w) are exact
 * floats; what lies outside them converts as 0 and is then replaced. */
static LLVMValueRef fp_to_int_sat(emitter *e, LLVMValueRef v, fusor_dtype from, fusor_dtype to) {
    LLVMBuilderRef b = e->b;
    LLVMTypeRef t = ty(e, to);
    unsigned w = dt_bits(to);
    int s = is_signed(to);
    LLVMValueRef lo = cfp(e, from, s ? -ldexp(1.0, (int)w - 1) : 0.0);
    LLVMValueRef hi = cfp(e, from, ldexp(1.0, s ? (int)w - 1 : (int)w));
    LLVMValueRef in = LLVMBuildAnd(b, fcmp(e, LLVMRealOGE, v, lo), fcmp(e, LLVMRealOLT, v, hi), "");
    LLVMValueRef x = sel(e, in, v, cfp(e, from, 0.0));
    LLVMValueRef r = s ? LLVMBuildFPToSI(b, x, t, "") : LLVMBuildFPToUI(b, x, t, "");
    LLVMValueRef max = s ? LLVMConstNot(int_min(e, to)) : LLVMConstAllOnes(t);
    r = sel(e, fcmp(e, LLVMRealOGE, v, hi), max, r);
    return s ? sel(e, fcmp(e, LLVMRealOLT, v, lo), int_min(e, to), r) : r;
}

static LLVMValueRef cast(emitter *e, LLVMValueRef v, fusor_dtype from, fusor_dtype to) {
    LLVMBuilderRef b = e->b;
    LLVMTypeRef t = ty(e, to);
    if (from == to)
        return v;
    if (to == FUSOR_BOOL) {
        if (is_float(from))
            return fcmp(e, LLVMRealUNE, v, cfp(e, from, 0.0)); /* NaN: true */
        return icmp(e, LLVMIntNE, v, cint(e, from, 0));
    }
    if (from == FUSOR_F16 && to != FUSOR_F64) { /* exact in f32, then as f32 converts */
        v = LLVMBuildFPExt(b, v, e->f32, "");
        from = FUSOR_F32;
        if (to == FUSOR_F32)
            return v;
    }
    if (to == FUSOR_F16 && !is_float(from)) {
        /* Through f32: exact below 2^24, and anything larger is inf in half anyway. */
        v = cast(e, v, from, FUSOR_F32);
        from = FUSOR_F32;
    }
    if (from == FUSOR_F64 && to == FUSOR_F16 && !e->t->gpu)
        return LLVMBuildFPTrunc(b, f64_to_f32_odd(e, v), t, "");
    if (is_float(from) && is_float(to))
        return dt_bits(to) > dt_bits(from) ? LLVMBuildFPExt(b, v, t, "")
                                           : LLVMBuildFPTrunc(b, v, t, "");
    if (is_float(from) && !e->t->gpu)
        return fp_to_int_sat(e, v, from, to);
    if (is_float(from)) {
        LLVMTypeRef tys[2] = {t, LLVMTypeOf(v)};
        return call_intrinsic(e, is_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat", tys, 2, &v,
                              1);
    }
    if (is_float(to))
        return is_signed(from) ? LLVMBuildSIToFP(b, v, t, "") : LLVMBuildUIToFP(b, v, t, "");
    if (dt_bits(to) < dt_bits(from))
        return LLVMBuildTrunc(b, v, t, "");
    if (dt_bits(to) == dt_bits(from))
        return v;
    return is_signed(from) ? LLVMBuildSExt(b, v, t, "") : LLVMBuildZExt(b, v, t, "");
}

/* ------------------------------------------------------------------ unary ops */

static LLVMValueRef emit_sign(emitter *e, fusor_dtype d, LLVMValueRef a) {
    if (is_float(d)) {
        /* NumPy's: +-0 gives +0, NaN gives a. */
        LLVMValueRef zero = cfp(e, d, 0.0);
        LLVMValueRef r = sel(e, fcmp(e, LLVMRealOEQ, a, zero), zero, a);
        r = sel(e, fcmp(e, LLVMRealOLT, a, zero), cfp(e, d, -1.0), r);
        return sel(e, fcmp(e, LLVMRealOGT, a, zero), cfp(e, d, 1.0), r);
    }
    if (d == FUSOR_BOOL)
        return a;
    LLVMValueRef zero = cint(e, d, 0);
    if (!is_signed(d))
        return LLVMBuildZExt(e->b, icmp(e, LLVMIntNE, a, zero), ty(e, d), "");
    LLVMValueRef pos = LLVMBuildZExt(e->b, icmp(e, LLVMIntSGT, a, zero), ty(e, d), "");
    LLVMValueRef neg = LLVMBuildZExt(e->b, icmp(e, LLVMIntSLT, a, zero), ty(e, d), "");
    return LLVMBuildSub(e->b, pos, neg, "");
}

static LLVMValueRef emit_abs(emitter *e, fusor_dtype d, LLVMValueRef a) {
    if (is_float(d))
        return fp_intrinsic(e, "llvm.fabs", a, NULL);
    if (!is_signed(d))
        return a;
    return sel(e, icmp(e, LLVMIntSLT, a, cint(e, d, 0)), LLVMBuildNeg(e->b, a, ""), a);
}

static LLVMValueRef emit_reciprocal(emitter *e, fusor_dtype d, LLVMValueRef a) {
    if (is_float(d))
        return fp_div(e, d, cfp(e, d, 1.0), a);
    LLVMValueRef zero = icmp(e, LLVMIntEQ, a, cint(e, d, 0));
    LLVMValueRef den = sel(e, zero, cint(e, d, 1), a);
    LLVMValueRef one = cint(e, d, 1);
    LLVMValueRef q =
        is_signed(d) ? LLVMBuildSDiv(e->b, one, den, "") : LLVMBuildUDiv(e->b, one, den, "");
    return sel(e, zero, cint(e, d, 0), q);
}

static LLVMValueRef emit_rounding(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a) {
    if (!is_float(d))
        return a;
    const char *name = op == IR_FLOOR   ? "llvm.floor"
                       : op == IR_CEIL  ? "llvm.ceil"
                       : op == IR_TRUNC ? "llvm.trunc"
                                        : "llvm.rint";
    return fp_intrinsic(e, name, a, NULL);
}

static LLVMValueRef emit_fpclass(emitter *e, ir_op op, fusor_dtype ad, LLVMValueRef a) {
    if (!is_float(ad))
        return LLVMConstInt(e->i1, op == IR_ISFINITE, 0);
    if (op == IR_ISNAN)
        return is_nan(e, a);
    LLVMValueRef mag = fp_intrinsic(e, "llvm.fabs", a, NULL);
    LLVMValueRef inf = cfp(e, ad, INFINITY);
    return fcmp(e, op == IR_ISINF ? LLVMRealOEQ : LLVMRealOLT, mag, inf);
}

static LLVMValueRef emit_unary(emitter *e, const ir_node *nd, fusor_dtype ad, LLVMValueRef a) {
    fusor_dtype d = (fusor_dtype)nd->dtype;
    LLVMBuilderRef b = e->b;
    switch ((ir_op)nd->op) {
    case IR_CAST: return cast(e, a, ad, d);
    case IR_NEG: return is_float(d) ? LLVMBuildFNeg(b, a, "") : LLVMBuildNeg(b, a, "");
    case IR_NOT: return LLVMBuildNot(b, a, "");
    case IR_ABS: return emit_abs(e, d, a);
    case IR_SIGN: return emit_sign(e, d, a);
    case IR_SQUARE: return is_float(d) ? LLVMBuildFMul(b, a, a, "") : LLVMBuildMul(b, a, a, "");
    case IR_RECIPROCAL: return emit_reciprocal(e, d, a);
    case IR_FLOOR:
    case IR_CEIL:
    case IR_TRUNC:
    case IR_RINT: return emit_rounding(e, (ir_op)nd->op, d, a);
    case IR_ISNAN:
    case IR_ISINF:
    case IR_ISFINITE: return emit_fpclass(e, (ir_op)nd->op, ad, a);
    default: return math_call(e, (ir_op)nd->op, d, a, NULL);
    }
}

/* ------------------------------------------------------------------ integer division */

/* Integer floor division, modulo and C remainder without traps: the divisor becomes 1
 * where it is 0 (the result is then forced to 0) and where MIN / -1 would overflow
 * (MIN / 1 == MIN is the wrapped quotient, and the remainder 0 is right). */
static LLVMValueRef int_divmod(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a,
                               LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    LLVMValueRef zero = cint(e, d, 0);
    LLVMValueRef bzero = icmp(e, LLVMIntEQ, b, zero);
    LLVMValueRef bad = bzero;
    int sgn = is_signed(d);
    if (sgn) {
        LLVMValueRef ovf = LLVMBuildAnd(bd, icmp(e, LLVMIntEQ, a, int_min(e, d)),
                                        icmp(e, LLVMIntEQ, b, cint(e, d, -1)), "");
        bad = LLVMBuildOr(bd, bzero, ovf, "");
    }
    LLVMValueRef den = sel(e, bad, cint(e, d, 1), b);
    LLVMValueRef r;
    if (op == IR_FLOORDIV) {
        r = sgn ? LLVMBuildSDiv(bd, a, den, "") : LLVMBuildUDiv(bd, a, den, "");
    } else {
        r = sgn ? LLVMBuildSRem(bd, a, den, "") : LLVMBuildURem(bd, a, den, "");
    }
    if (sgn && op != IR_FMOD) {
        /* Floor: a nonzero remainder whose sign differs from the divisor's moves the
         * quotient down by one and the remainder up by the divisor. */
        LLVMValueRef rem = op == IR_FLOORDIV ? LLVMBuildSRem(bd, a, den, "") : r;
        LLVMValueRef fix =
            LLVMBuildAnd(bd, icmp(e, LLVMIntNE, rem, zero),
                         icmp(e, LLVMIntSLT, LLVMBuildXor(bd, rem, den, ""), zero), "");
        r = op == IR_FLOORDIV ? LLVMBuildSub(bd, r, LLVMBuildZExt(bd, fix, ty(e, d), ""), "")
                              : sel(e, fix, LLVMBuildAdd(bd, r, den, ""), r);
    }
    return sel(e, bzero, zero, r);
}

/* NumPy's npy_divmod for floats: the quotient (FLOORDIV) or the remainder (MOD). */
static LLVMValueRef fp_divmod(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a, LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    LLVMValueRef zero = cfp(e, d, 0.0);
    LLVMValueRef mod = fp_rem(e, d, a, b);
    LLVMValueRef bzero = fcmp(e, LLVMRealOEQ, b, zero);
    LLVMValueRef modnz = fcmp(e, LLVMRealUNE, mod, zero); /* `if (mod)`: NaN is true */
    LLVMValueRef adj = LLVMBuildAnd(
        bd, modnz,
        LLVMBuildXor(bd, fcmp(e, LLVMRealOLT, b, zero), fcmp(e, LLVMRealOLT, mod, zero), ""), "");
    if (op == IR_MOD) {
        LLVMValueRef m = sel(e, adj, LLVMBuildFAdd(bd, mod, b, ""), mod);
        m = sel(e, modnz, m, fp_intrinsic(e, "llvm.copysign", zero, b));
        return sel(e, bzero, mod, m);
    }
    LLVMValueRef quot = LLVMBuildFDiv(bd, a, b, "");
    LLVMValueRef div = LLVMBuildFDiv(bd, LLVMBuildFSub(bd, a, mod, ""), b, "");
    div = sel(e, adj, LLVMBuildFSub(bd, div, cfp(e, d, 1.0), ""), div);
    LLVMValueRef fl = fp_intrinsic(e, "llvm.floor", div, NULL);
    LLVMValueRef up = fcmp(e, LLVMRealOGT, LLVMBuildFSub(bd, div, fl, ""), cfp(e, d, 0.5));
    fl = sel(e, up, LLVMBuildFAdd(bd, fl, cfp(e, d, 1.0), ""), fl);
    LLVMValueRef q =
        sel(e, fcmp(e, LLVMRealUNE, div, zero), fl, fp_intrinsic(e, "llvm.copysign", zero, quot));
    return sel(e, bzero, quot, q);
}

/* ------------------------------------------------------------------ shifts and powers */

static LLVMValueRef emit_shift(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a,
                               LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    unsigned w = dt_bits(d);
    LLVMValueRef big = icmp(e, LLVMIntUGE, b, cint(e, d, w)); /* also b < 0 */
    if (op == IR_SHR && is_signed(d)) /* shifting by w - 1 leaves the sign: 0 or -1 */
        return LLVMBuildAShr(bd, a, sel(e, big, cint(e, d, w - 1), b), "");
    LLVMValueRef amt = LLVMBuildAnd(bd, b, cint(e, d, w - 1), "");
    LLVMValueRef r = op == IR_SHL ? LLVMBuildShl(bd, a, amt, "") : LLVMBuildLShr(bd, a, amt, "");
    return sel(e, big, cint(e, d, 0), r);
}

/* Exact integer power by squaring, unrolled over the exponent's bits (branch-free, so it
 * vectorises; a constant exponent folds to a few multiplies). */
static LLVMValueRef int_pow(emitter *e, fusor_dtype d, LLVMValueRef a, LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    unsigned w = dt_bits(d);
    LLVMValueRef res = cint(e, d, 1), base = a;
    for (unsigned i = 0; i < w; i++) {
        LLVMValueRef bit = LLVMBuildAnd(bd, b, LLVMConstInt(ty(e, d), 1ull << i, 0), "");
        LLVMValueRef set = icmp(e, LLVMIntNE, bit, cint(e, d, 0));
        res = sel(e, set, LLVMBuildMul(bd, res, base, ""), res);
        if (i + 1 < w)
            base = LLVMBuildMul(bd, base, base, "");
    }
    if (!is_signed(d))
        return res;
    /* A negative exponent: the truncated true value (1, +-1 or 0). */
    LLVMValueRef one = cint(e, d, 1), m1 = cint(e, d, -1);
    LLVMValueRef odd = icmp(e, LLVMIntNE, LLVMBuildAnd(bd, b, one, ""), cint(e, d, 0));
    LLVMValueRef negr = sel(e, icmp(e, LLVMIntEQ, a, one), one,
                            sel(e, icmp(e, LLVMIntEQ, a, m1), sel(e, odd, m1, one), cint(e, d, 0)));
    return sel(e, icmp(e, LLVMIntSLT, b, cint(e, d, 0)), negr, res);
}

/* ------------------------------------------------------------------ binary ops */

static LLVMValueRef emit_compare(emitter *e, ir_op op, fusor_dtype ad, LLVMValueRef a,
                                 LLVMValueRef b) {
    static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOGT,
                                           LLVMRealOGE, LLVMRealOEQ, LLVMRealUNE};
    static const LLVMIntPredicate si[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT,
                                          LLVMIntSGE, LLVMIntEQ,  LLVMIntNE};
    static const LLVMIntPredicate ui[] = {LLVMIntULT, LLVMIntULE, LLVMIntUGT,
                                          LLVMIntUGE, LLVMIntEQ,  LLVMIntNE};
    int i = op - IR_LT;
    if (is_float(ad))
        return fcmp(e, fp[i], a, b);
    return icmp(e, is_signed(ad) ? si[i] : ui[i], a, b);
}

static LLVMValueRef emit_arith(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a,
                               LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    int fl = is_float(d);
    switch (op) {
    case IR_ADD: return fl ? LLVMBuildFAdd(bd, a, b, "") : LLVMBuildAdd(bd, a, b, "");
    case IR_SUB: return fl ? LLVMBuildFSub(bd, a, b, "") : LLVMBuildSub(bd, a, b, "");
    case IR_MUL: return fl ? LLVMBuildFMul(bd, a, b, "") : LLVMBuildMul(bd, a, b, "");
    case IR_DIV: return fp_div(e, d, a, b);
    case IR_FLOORDIV:
    case IR_MOD: return fl ? fp_divmod(e, op, d, a, b) : int_divmod(e, op, d, a, b);
    case IR_FMOD: return fl ? fp_rem(e, d, a, b) : int_divmod(e, op, d, a, b);
    case IR_POW: return fl ? math_call(e, op, d, a, b) : int_pow(e, d, a, b);
    case IR_AND: return LLVMBuildAnd(bd, a, b, "");
    case IR_OR: return LLVMBuildOr(bd, a, b, "");
    case IR_XOR: return LLVMBuildXor(bd, a, b, "");
    case IR_SHL:
    case IR_SHR: return emit_shift(e, op, d, a, b);
    case IR_COPYSIGN: return fp_intrinsic(e, "llvm.copysign", a, b);
    case IR_MINIMUM:
    case IR_MAXIMUM:
        return fl ? fp_minmax(e, op == IR_MAXIMUM, a, b) : int_minmax(e, d, op == IR_MAXIMUM, a, b);
    case IR_FMIN:
    case IR_FMAX:
        return fl ? fp_fminmax(e, op == IR_FMAX, a, b) : int_minmax(e, d, op == IR_FMAX, a, b);
    default: return math_call(e, op, d, a, b); /* ATAN2, HYPOT */
    }
}

/* ------------------------------------------------------------------ memory */

/* Applies the loop's access group so llvm.loop.parallel_accesses covers the access. */
static LLVMValueRef mark_access(emitter *e, LLVMValueRef inst, fusor_dtype d) {
    unsigned al = e->t->elem_align ? e->t->elem_align : (unsigned)fusor_dtype_size(d);
    if (e->lanes0)
        al = e->lanes0 * (unsigned)fusor_dtype_size(d);
    LLVMSetAlignment(inst, al);
    if (e->in_loop)
        LLVMSetMetadata(inst, e->md_access_group, e->access_group);
    return inst;
}

static LLVMValueRef elem_ptr(emitter *e, int array, fusor_dtype d) {
    LLVMValueRef idx = e->index;
    if (e->stencil) { /* a plain array or output of a stencil kernel: the row's x_full */
        LLVMValueRef off = LLVMBuildMul(e->b, e->xfull, e->step[array], "");
        return LLVMBuildInBoundsGEP2(e->b, e->i8, e->rowbase[array], &off, 1, "");
    }
    if (!e->strided)
        return LLVMBuildInBoundsGEP2(e->b, mem_ty(e, d), e->base[array], &idx, 1, "");
    if (e->t->nd_offsets && !e->axis)
        return LLVMBuildInBoundsGEP2(e->b, e->i8, e->base[array], &e->off[array], 1, "");
    LLVMValueRef off = LLVMBuildMul(e->b, idx, e->step[array], "");
    return LLVMBuildInBoundsGEP2(e->b, e->i8, e->base[array], &off, 1, "");
}

static LLVMValueRef load_elem(emitter *e, int array, fusor_dtype d, const char *name) {
    LLVMValueRef v = LLVMBuildLoad2(e->b, mem_ty(e, d), elem_ptr(e, array, d), name);
    mark_access(e, v, d);
    return d == FUSOR_BOOL ? icmp(e, LLVMIntNE, v, LLVMConstInt(e->i8, 0, 0)) : v;
}

static void store_elem(emitter *e, int array, fusor_dtype d, LLVMValueRef v) {
    if (d == FUSOR_BOOL)
        v = LLVMBuildZExt(e->b, v, e->i8, "");
    mark_access(e, LLVMBuildStore(e->b, v, elem_ptr(e, array, d)), d);
}

/* Canonical ir_value <-> the dtype's LLVM value (ir.h: bool and signed integers
 * sign-extended in .i, unsigned zero-extended in .u, f32 widened to double in .f). */
static LLVMValueRef canon_load(emitter *e, LLVMValueRef base, int index, fusor_dtype d,
                               const char *name) {
    LLVMValueRef idx = LLVMConstInt(e->i64, (unsigned long long)index, 0);
    LLVMTypeRef t = is_float(d) ? e->f64 : e->i64;
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, t, base, &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(e->b, t, p, name);
    LLVMSetAlignment(v, 8);
    if (d == FUSOR_BOOL)
        return icmp(e, LLVMIntNE, v, LLVMConstInt(e->i64, 0, 0));
    if (d == FUSOR_F32 || d == FUSOR_F16)
        return LLVMBuildFPTrunc(e->b, v, ty(e, d), ""); /* exact: the value is canonical */
    if (is_float(d) || dt_bits(d) == 64)
        return v;
    return LLVMBuildTrunc(e->b, v, ty(e, d), "");
}

static void canon_store(emitter *e, LLVMValueRef base, int index, fusor_dtype d, LLVMValueRef v) {
    LLVMValueRef idx = LLVMConstInt(e->i64, (unsigned long long)index, 0);
    LLVMTypeRef t = is_float(d) ? e->f64 : e->i64;
    if (d == FUSOR_F32 || d == FUSOR_F16)
        v = LLVMBuildFPExt(e->b, v, e->f64, "");
    else if (!is_float(d) && dt_bits(d) < 64)
        v = is_signed(d) ? LLVMBuildSExt(e->b, v, e->i64, "") : LLVMBuildZExt(e->b, v, e->i64, "");
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, t, base, &idx, 1, "");
    LLVMSetAlignment(LLVMBuildStore(e->b, v, p), 8);
}

/* ------------------------------------------------------------------ stencils (GPU) */

/* Index i of a dimension of n elements mapped by boundary b as ir_boundary_index does;
 * *inside (when not NULL) receives i1 "0 <= i < n".  ZERO gives 0 outside (a safe address:
 * the caller replaces the value), INTERIOR and NONE leave i as it is. */
static LLVMValueRef stencil_remap(emitter *e, ir_boundary b, LLVMValueRef i, LLVMValueRef n,
                                  LLVMValueRef *inside) {
    LLVMValueRef zero = LLVMConstInt(e->i64, 0, 0), one = LLVMConstInt(e->i64, 1, 0);
    LLVMValueRef in = icmp(e, LLVMIntULT, i, n);
    if (inside)
        *inside = in;
    LLVMValueRef r = i;
    switch (b) {
    case IR_BOUND_CLAMP:
        r = sel(e, icmp(e, LLVMIntSLT, i, zero), zero, LLVMBuildSub(e->b, n, one, ""));
        break;
    case IR_BOUND_WRAP: {
        LLVMValueRef m = LLVMBuildSRem(e->b, i, n, "");
        r = sel(e, icmp(e, LLVMIntSLT, m, zero), LLVMBuildAdd(e->b, m, n, ""), m);
        break;
    }
    case IR_BOUND_MIRROR: { /* period 2(n-1); n == 1 reads element 0 */
        LLVMValueRef single = icmp(e, LLVMIntEQ, n, one);
        LLVMValueRef per = LLVMBuildShl(e->b, LLVMBuildSub(e->b, n, one, ""), one, "");
        per = sel(e, single, one, per);
        LLVMValueRef m = LLVMBuildSRem(e->b, i, per, "");
        m = sel(e, icmp(e, LLVMIntSLT, m, zero), LLVMBuildAdd(e->b, m, per, ""), m);
        m = sel(e, icmp(e, LLVMIntSLT, m, n), m, LLVMBuildSub(e->b, per, m, ""));
        r = sel(e, single, zero, m);
        break;
    }
    case IR_BOUND_ZERO: r = zero; break;
    default: return i;
    }
    return sel(e, in, i, r);
}

/* Stencil load node i at the current element of a CG_STENCIL row (emit.h). */
static LLVMValueRef stencil_load(emitter *e, int32_t i) {
    const ir_node *nd = &e->k->nodes[i];
    fusor_dtype d = (fusor_dtype)nd->dtype;
    int a = e->array_of[i], last = ir_param_ndims(e->k, (int)nd->imm.i) - 1;
    ir_boundary bd = ir_param_boundary(e->k, (int)nd->imm.i);
    LLVMValueRef col = LLVMBuildAdd(e->b, e->xfull, LLVMConstInt(e->i64, (uint64_t)(int64_t)nd->off[last], 1), "");
    LLVMValueRef inside = NULL;
    if (!e->fast && bd != IR_BOUND_INTERIOR)
        col = stencil_remap(e, bd, col, e->full_last, &inside);
    LLVMValueRef off = LLVMBuildMul(e->b, col, e->step[a], "");
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->i8, e->rowbase[a], &off, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(e->b, mem_ty(e, d), p, nd->off[last] < 0 ? "west" : "east");
    mark_access(e, v, d);
    if (d == FUSOR_BOOL)
        v = icmp(e, LLVMIntNE, v, LLVMConstInt(e->i8, 0, 0));
    if (bd == IR_BOUND_ZERO) {
        LLVMValueRef ok = LLVMBuildNot(e->b, e->rowzero[a], "");
        if (inside)
            ok = LLVMBuildAnd(e->b, ok, inside, "");
        v = sel(e, ok, v, LLVMConstNull(ty(e, d)));
    }
    return v;
}

/* ------------------------------------------------------------------ nodes */

static LLVMValueRef emit_leaf(emitter *e, int32_t i) {
    const ir_node *nd = &e->k->nodes[i];
    fusor_dtype d = (fusor_dtype)nd->dtype;
    LLVMValueRef slots = arg(e, e->pass < 0 ? 0 : ARG_SLOTS);
    switch ((ir_op)nd->op) {
    case IR_CONST: return const_of(e, d, nd->imm);
    case IR_COUNT: return canon_load(e, slots, e->plan->count_slot, FUSOR_I64, "count");
    case IR_INPUT: {
        const ir_param *p = &e->k->params[nd->imm.i];
        if (p->is_array) {
            if (e->pass < 0 || !e->in_loop)
                break; /* an array read outside a loop */
            if (e->stencil && ir_is_stencil_load(e->k, nd))
                return stencil_load(e, i);
            return load_elem(e, e->array_of[i], d, p->name);
        }
        return canon_load(e, slots, (int)nd->imm.i, d, p->name);
    }
    default: /* a reduction computed by an earlier pass */
        if (nd->slot < 0 || (e->pass >= 0 && nd->pass >= e->pass))
            break;
        return canon_load(e, slots, nd->slot, d, ir_op_name((ir_op)nd->op));
    }
    e->err = fu_error(FUSOR_ERROR_INTERNAL, "codegen: node %%%d (%s) is not available in %s %d", i,
                      ir_op_name((ir_op)nd->op), e->pass < 0 ? "finish" : "pass", e->pass);
    return LLVMGetUndef(ty(e, d));
}

static int is_leaf(ir_op op) {
    return op == IR_CONST || op == IR_INPUT || op == IR_COUNT || ir_op_is_reduction(op);
}

static LLVMValueRef emit_op(emitter *e, const ir_node *nd, fusor_dtype ad, LLVMValueRef a,
                            LLVMValueRef b) {
    ir_op op = (ir_op)nd->op;
    switch (ir_op_arity(op)) {
    case 1: return emit_unary(e, nd, ad, a);
    case 2:
        if (ir_op_is_comparison(op))
            return emit_compare(e, op, ad, a, b);
        return emit_arith(e, op, (fusor_dtype)nd->dtype, a, b);
    default: return sel(e, a, b, e->val[nd->c]); /* WHERE */
    }
}

static LLVMValueRef widen_f16(emitter *e, LLVMValueRef v, int32_t node) {
    if (node < 0 || e->k->nodes[node].dtype != FUSOR_F16)
        return v;
    return LLVMBuildFPExt(e->b, v, e->f32, "");
}

/*
 * The sign operations of f16 on the host, on the bits: negation flips the sign, copysign
 * takes b's, and a NaN a is made quiet as widening it to f32 would (so both are the f32
 * op's result, exactly).  In the widened form, the optimiser and code generator fold them
 * back to halves, which LLVM 16's x86 back end then takes one by one.
 */
static LLVMValueRef f16_sign_op(emitter *e, ir_op op, LLVMValueRef a, LLVMValueRef b) {
    LLVMBuilderRef bd = e->b;
    LLVMTypeRef i16 = LLVMInt16TypeInContext(e->ctx);
    LLVMValueRef bits = LLVMBuildBitCast(bd, a, i16, "");
    LLVMValueRef mag = LLVMBuildAnd(bd, bits, LLVMConstInt(i16, 0x7fff, 0), "");
    LLVMValueRef nan = icmp(e, LLVMIntUGT, mag, LLVMConstInt(i16, 0x7c00, 0));
    bits = sel(e, nan, LLVMBuildOr(bd, bits, LLVMConstInt(i16, 0x0200, 0), ""), bits);
    LLVMValueRef sign = LLVMConstInt(i16, 0x8000, 0);
    if (op == IR_NEG)
        bits = LLVMBuildXor(bd, bits, sign, "");
    else /* COPYSIGN */
        bits = LLVMBuildOr(bd, LLVMBuildAnd(bd, bits, LLVMConstInt(i16, 0x7fff, 0), ""),
                           LLVMBuildAnd(bd, LLVMBuildBitCast(bd, b, i16, ""), sign, ""), "");
    return LLVMBuildBitCast(bd, bits, e->f16, "");
}

/* An op on f16 (other than a cast or a select, which convert or pick exactly): the f32 op
 * on the widened operands, rounded to half, as NumPy's float16 loops compute. */
static LLVMValueRef emit_f16_node(emitter *e, const ir_node *nd) {
    if ((nd->op == IR_NEG || nd->op == IR_COPYSIGN) && nd->dtype == FUSOR_F16 && !e->t->gpu)
        return f16_sign_op(e, (ir_op)nd->op, e->val[nd->a], nd->b >= 0 ? e->val[nd->b] : NULL);
    ir_node f = *nd;
    if (f.dtype == FUSOR_F16)
        f.dtype = FUSOR_F32;
    if (f.adtype == FUSOR_F16)
        f.adtype = FUSOR_F32;
    fusor_dtype ad = carry_dtype((fusor_dtype)e->k->nodes[nd->a].dtype);
    LLVMValueRef a = widen_f16(e, e->val[nd->a], nd->a);
    LLVMValueRef b = nd->b >= 0 ? widen_f16(e, e->val[nd->b], nd->b) : NULL;
    ir_op op = (ir_op)nd->op;
    if (op == IR_MINIMUM || op == IR_MAXIMUM || op == IR_FMIN || op == IR_FMAX) {
        LLVMValueRef t = a; /* f16 ties give a (ir.h) */
        a = b;
        b = t;
    }
    LLVMValueRef r = emit_op(e, &f, ad, a, b);
    return nd->dtype == FUSOR_F16 ? LLVMBuildFPTrunc(e->b, r, e->f16, "") : r;
}

static LLVMValueRef emit_node(emitter *e, int32_t i) {
    const ir_node *nd = &e->k->nodes[i];
    ir_op op = (ir_op)nd->op;
    if (is_leaf(op))
        return emit_leaf(e, i);
    fusor_dtype ad = (fusor_dtype)e->k->nodes[nd->a].dtype;
    int f16 = nd->dtype == FUSOR_F16 || ad == FUSOR_F16;
    if (f16 && op != IR_CAST && op != IR_WHERE)
        return emit_f16_node(e, nd);
    return emit_op(e, nd, ad, e->val[nd->a], nd->b >= 0 ? e->val[nd->b] : NULL);
}

/* Marks what the roots need; a reduction's value comes from its slot, so its operand is
 * needed only when this pass computes it (and then the root is the operand). */
static void mark_needed(emitter *e) {
    for (int32_t i = e->k->nnodes - 1; i >= 0; i--) {
        const ir_node *nd = &e->k->nodes[i];
        if (!e->need[i] || is_leaf((ir_op)nd->op))
            continue;
        if (nd->a >= 0)
            e->need[nd->a] = 1;
        if (nd->b >= 0)
            e->need[nd->b] = 1;
        if (nd->c >= 0)
            e->need[nd->c] = 1;
    }
}

/* Emits the needed nodes of one shape, in topological order. */
static void emit_nodes(emitter *e, ir_shape shape) {
    for (int32_t i = 0; i < e->k->nnodes && e->err == FUSOR_OK; i++)
        if (e->need[i] && e->k->nodes[i].shape == shape)
            e->val[i] = emit_node(e, i);
}

/* ------------------------------------------------------------------ reductions */

typedef struct reduction {
    const ir_node *nd;
    fusor_dtype d;
    int ncarry;           /* loop-carried values: 1, or 3 for a keyed float MIN/MAX */
    LLVMValueRef init[3]; /* identity of the carried values */
    LLVMValueRef
        start[3]; /* what they hold entering the current loop (init, or an earlier loop's out) */
    LLVMValueRef phi[3], cur[3], next[3]; /* in the loop: header phi, after the lanes so far */
    LLVMValueRef out[3];                  /* after the loop (exit phis) */
    int word;                             /* GPU: its first raw word in acc */
} reduction;

/* The float's bits as a signed integer ordered like the float's total order (-0 < +0), so
 * a float min/max becomes an integer one that the vectoriser knows; the map is its own
 * inverse. */
static LLVMValueRef fp_key(emitter *e, fusor_dtype d, LLVMValueRef v, int to_key) {
    LLVMTypeRef it = LLVMIntTypeInContext(e->ctx, dt_bits(d));
    LLVMValueRef bits = to_key ? LLVMBuildBitCast(e->b, v, it, "") : v;
    unsigned w = dt_bits(d);
    LLVMValueRef sign = LLVMBuildAShr(e->b, bits, LLVMConstInt(it, w - 1, 0), "");
    LLVMValueRef mask = LLVMBuildLShr(e->b, sign, LLVMConstInt(it, 1, 0), "");
    LLVMValueRef key = LLVMBuildXor(e->b, bits, mask, "");
    return to_key ? key : LLVMBuildBitCast(e->b, key, ty(e, d), "");
}

/* fp_key of +-inf, the identity of a keyed MIN (+inf) or MAX (-inf). */
static LLVMValueRef fp_key_inf(emitter *e, fusor_dtype d, int negative) {
    uint64_t bits;
    if (d == FUSOR_F64) {
        double v = negative ? -INFINITY : INFINITY;
        memcpy(&bits, &v, sizeof v);
        if (negative)
            bits ^= UINT64_MAX >> 1;
    } else {
        float v = negative ? -INFINITY : INFINITY;
        uint32_t b32;
        memcpy(&b32, &v, sizeof v);
        if (negative)
            b32 ^= UINT32_MAX >> 1;
        bits = b32;
    }
    return LLVMConstInt(LLVMIntTypeInContext(e->ctx, dt_bits(d)), bits, 0);
}

/* The type of the zero tag of a keyed float MIN/MAX carrying dtype d (keyed_step).  A
 * host row function's tag is its element's index within the call, and host runners call
 * them over at most HOST_BLOCK elements (run.c): as wide as the float, so that an f32
 * tag does not halve the vector width.  GPU partials (raw words) and stencil rows (flat
 * box index) keep 64 bits. */
static LLVMTypeRef tag_type(emitter *e, fusor_dtype d) {
    return e->t->gpu || e->stencil || d == FUSOR_F64 ? e->i64 : LLVMInt32TypeInContext(e->ctx);
}

static void reduction_init(emitter *e, reduction *r, const ir_node *nd) {
    fusor_dtype d = carry_dtype((fusor_dtype)nd->dtype);
    ir_op op = (ir_op)nd->op;
    r->nd = nd;
    r->d = d;
    r->ncarry = 1;
    if (ir_is_float_minmax(nd)) {
        r->ncarry = 3;
        r->init[0] = fp_key_inf(e, d, op == IR_MAX);
        r->init[1] = LLVMConstInt(e->i1, 0, 0);
        r->init[2] = LLVMConstInt(tag_type(e, d), (unsigned long long)-1, 1);
        memcpy(r->start, r->init, sizeof r->init);
        return;
    }
    switch (op) {
    case IR_SUM: r->init[0] = is_float(d) ? cfp(e, d, -0.0) : cint(e, d, 0); break;
    case IR_PROD: r->init[0] = is_float(d) ? cfp(e, d, 1.0) : cint(e, d, 1); break;
    case IR_MIN:
        r->init[0] = is_signed(d) ? LLVMConstNot(int_min(e, d)) : LLVMConstAllOnes(ty(e, d));
        break;
    case IR_MAX: r->init[0] = is_signed(d) ? int_min(e, d) : cint(e, d, 0); break;
    case IR_ANY: r->init[0] = LLVMConstInt(e->i1, 0, 0); break;
    default: r->init[0] = LLVMConstInt(e->i1, 1, 0); break; /* ALL */
    }
    r->start[0] = r->init[0];
}

/* The float sum's accumulate: the only reassociable instruction, cloned from the
 * template so that the vectoriser may split it into lane partials. */
static LLVMValueRef fadd_reassoc(emitter *e, fusor_dtype d, LLVMValueRef acc, LLVMValueRef v) {
    LLVMValueRef inst = LLVMInstructionClone(e->fadd_reassoc[d == FUSOR_F64]);
    LLVMSetOperand(inst, 0, acc);
    LLVMSetOperand(inst, 1, v);
    LLVMInsertIntoBuilderWithName(e->b, inst, "sum");
    return inst;
}

/* Folds v into a (SUM and PROD in the dtype; MIN and MAX NaN-propagating). */
static LLVMValueRef combine(emitter *e, ir_op op, fusor_dtype d, LLVMValueRef a, LLVMValueRef v,
                            int in_loop) {
    LLVMBuilderRef b = e->b;
    int fl = is_float(d);
    switch (op) {
    case IR_SUM:
        if (fl)
            return in_loop ? fadd_reassoc(e, d, a, v) : LLVMBuildFAdd(b, a, v, "");
        return LLVMBuildAdd(b, a, v, "");
    case IR_PROD: return fl ? LLVMBuildFMul(b, a, v, "") : LLVMBuildMul(b, a, v, "");
    case IR_MIN:
    case IR_MAX:
        return fl ? fp_minmax(e, op == IR_MAX, a, v) : int_minmax(e, d, op == IR_MAX, a, v);
    case IR_ANY: return LLVMBuildOr(b, a, v, "");
    default: return LLVMBuildAnd(b, a, v, ""); /* ALL */
    }
}

/*
 * A float MIN/MAX carries three values that all vectorise as integer or boolean
 * reductions: the extreme as an integer key, whether a NaN was seen, and (2i + sign bit)
 * of the last zero, since scalar.c's fold keeps the later of +0 and -0.
 */
static void keyed_step(emitter *e, reduction *r, LLVMValueRef v) {
    LLVMBuilderRef b = e->b;
    LLVMValueRef key = fp_key(e, r->d, v, 1);
    LLVMValueRef better = icmp(e, r->nd->op == IR_MAX ? LLVMIntSGT : LLVMIntSLT, key, r->cur[0]);
    r->next[0] = sel(e, better, key, r->cur[0]);
    r->next[1] = LLVMBuildOr(b, r->cur[1], is_nan(e, v), "");
    if (e->notag) { /* the runner redoes the pass if the result is a zero */
        r->next[2] = r->cur[2];
        return;
    }
    unsigned w = dt_bits(r->d);
    LLVMValueRef bits = LLVMBuildBitCast(b, v, LLVMIntTypeInContext(e->ctx, w), "");
    LLVMValueRef sign = LLVMBuildLShr(b, bits, LLVMConstInt(LLVMTypeOf(bits), w - 1, 0), "");
    LLVMTypeRef tt = tag_type(e, r->d);
    LLVMValueRef at = LLVMBuildIntCast2(b, e->index, tt, 0, "");
    if (e->stencil)
        at = LLVMBuildAdd(b, e->row_flat, at, "");
    LLVMValueRef tag = LLVMBuildOr(b, LLVMBuildShl(b, at, LLVMConstInt(tt, 1, 0), ""),
                                   LLVMBuildIntCast2(b, sign, tt, 0, ""), "");
    tag = sel(e, fcmp(e, LLVMRealOEQ, v, cfp(e, r->d, 0.0)), tag, r->init[2]);
    r->next[2] = sel(e, icmp(e, LLVMIntSGT, tag, r->cur[2]), tag, r->cur[2]);
}

static void reduction_step(emitter *e, reduction *r) {
    LLVMValueRef v = widen_f16(e, e->val[r->nd->a], r->nd->a);
    if (r->ncarry == 1)
        r->next[0] = combine(e, (ir_op)r->nd->op, r->d, r->cur[0], v, 1);
    else
        keyed_step(e, r, v);
    memcpy(r->cur, r->next, sizeof r->next);
}

/* After the loop: the row's value of the reduction, from the values the loop carried
 * (or their identities when it did not run). */
static LLVMValueRef reduction_value(emitter *e, reduction *r, LLVMValueRef *fin) {
    if (r->ncarry == 1)
        return fin[0];
    LLVMValueRef v = fp_key(e, r->d, fin[0], 0);
    LLVMValueRef neg = LLVMBuildTrunc(e->b, fin[2], e->i1, "");
    LLVMValueRef zero = sel(e, neg, cfp(e, r->d, -0.0), cfp(e, r->d, 0.0));
    v = sel(e, fcmp(e, LLVMRealOEQ, v, cfp(e, r->d, 0.0)), zero, v);
    return sel(e, fin[1], cfp(e, r->d, NAN), v);
}

/* ------------------------------------------------------------------ row functions */

static LLVMValueRef add_row_fn(emitter *e, const char *name, int nparams) {
    LLVMTypeRef params[5] = {e->ptr, e->ptr, e->i64, e->ptr, e->ptr};
    if (nparams == 2)
        params[1] = e->ptr; /* fusor_finish(slots, outs) */
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(e->ctx), params, (unsigned)nparams, 0);
    LLVMValueRef fn = LLVMAddFunction(e->mod, name, fty);
    add_fn_attr(e, fn, LLVMAttributeFunctionIndex, "nounwind", 0);
    for (int i = 0; i < nparams; i++) {
        if (LLVMGetTypeKind(params[i]) != LLVMPointerTypeKind)
            continue;
        add_fn_attr(e, fn, (unsigned)i + 1, "noalias", 0);
        add_fn_attr(e, fn, (unsigned)i + 1, "nocapture", 0);
        if (i != nparams - 1)
            add_fn_attr(e, fn, (unsigned)i + 1, "readonly", 0);
    }
    return fn;
}

static void load_array(emitter *e, int array) {
    if (e->base[array])
        return;
    LLVMValueRef idx = LLVMConstInt(e->i64, (unsigned long long)array, 0);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->ptr, arg(e, ARG_PTRS), &idx, 1, "");
    e->base[array] = LLVMBuildLoad2(e->b, e->ptr, p, "base");
    if (e->t->gpu) /* arrays live in global memory: ld.global / st.global */
        e->base[array] = LLVMBuildAddrSpaceCast(e->b, e->base[array],
                                                LLVMPointerTypeInContext(e->ctx, 1), "gbase");
    if (!e->strided || (e->t->nd_offsets && !e->axis))
        return;
    p = LLVMBuildInBoundsGEP2(e->b, e->i64, arg(e, ARG_STRIDES), &idx, 1, "");
    e->step[array] = LLVMBuildLoad2(e->b, e->i64, p, "stride");
}

static void reset_fn_state(emitter *e) {
    size_t nn = (size_t)e->k->nnodes, na = e->narrays;
    memset(e->val, 0, nn * sizeof *e->val);
    memset(e->need, 0, nn);
    memset(e->base, 0, na * sizeof *e->base);
    memset(e->step, 0, na * sizeof *e->step);
    memset(e->off, 0, na * sizeof *e->off);
    e->in_loop = 0;
    e->lanes0 = 0;
    e->stencil = e->fast = e->axis = 0;
}

/* Loop metadata: !{self, !{"llvm.loop.parallel_accesses", group}} and, for the strided
 * variant, vectorize.width 1.  With run-time strides the vectoriser can only gather,
 * which measured no faster than scalar loops here and made compiles ~30% slower (as did
 * interleaving the scalar loop).
 *
 * On the host a contiguous loop that calls no math function (`streaming`: it moves
 * memory) is interleaved twice, not LLVM's default 4 times: four vectors of every stream
 * per iteration made in-place and select kernels slower than the C loop on AMD Zen 4
 * (bench_cases, 1e7, one thread: saxpy_f32 in place 0.85-0.88 of the C loop, `where`
 * 0.84-0.86; twice: 0.97-1.01 and 0.94-0.99, triad and dot unchanged or better).  Loops
 * with math calls keep the default: there it measured 1.5x slower (sin2_cos2). */
static LLVMValueRef loop_id(emitter *e, int streaming) {
    LLVMContextRef cx = e->ctx;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(cx);
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(cx, NULL, 0);
    const char *pa_s = "llvm.loop.parallel_accesses", *vw_s = "llvm.loop.vectorize.width";
    const char *il_s = "llvm.loop.interleave.count";
    LLVMMetadataRef pa[2] = {LLVMMDStringInContext2(cx, pa_s, strlen(pa_s)),
                             LLVMValueAsMetadata(e->access_group)};
    LLVMMetadataRef vw[2] = {LLVMMDStringInContext2(cx, vw_s, strlen(vw_s)),
                             LLVMValueAsMetadata(LLVMConstInt(i32, 1, 0))};
    LLVMMetadataRef il[2] = {LLVMMDStringInContext2(cx, il_s, strlen(il_s)),
                             LLVMValueAsMetadata(LLVMConstInt(i32, 2, 0))};
    LLVMMetadataRef ops[3] = {tmp, LLVMMDNodeInContext2(cx, pa, 2)};
    int n = 2;
    if (e->strided)
        ops[n++] = LLVMMDNodeInContext2(cx, vw, 2);
    else if (!e->t->gpu && streaming)
        ops[n++] = LLVMMDNodeInContext2(cx, il, 2);
    LLVMMetadataRef id = LLVMMDNodeInContext2(cx, ops, (size_t)n);
    LLVMMetadataReplaceAllUsesWith(tmp, id); /* a self-reference makes it distinct */
    return LLVMMetadataAsValue(cx, id);
}

/* One lane of an iteration: the element at e->index. */
static void emit_body(emitter *e, const ir_pass *ps, reduction *red) {
    if (e->stencil)
        e->xfull = LLVMBuildNSWAdd(e->b, e->index, e->xfull_origin, "xfull");
    if (e->strided && e->t->nd_offsets && !e->axis)
        e->t->nd_offsets(e->mod, e->b, arg(e, ARG_STRIDES), e->index,
                         e->k->nparams + e->k->noutputs, e->base, e->off);
    emit_nodes(e, IR_VARYING);
    if (e->err)
        return;
    for (int r = 0; r < ps->nreductions; r++)
        reduction_step(e, &red[r]);
    for (int s = 0; s < ps->nstores; s++) {
        const ir_output *o = &e->k->outputs[ps->stores[s]];
        store_elem(e, e->k->nparams + ps->stores[s], o->dtype, e->val[o->node]);
    }
}

/* Lanes l = 0..lanes-1 of group k (elements k*lanes + l): every lane's loads first and
 * every store last, so that each array's accesses sit side by side in one basic block
 * (math functions inlined on a GPU branch) where the load/store vectoriser joins them.
 * With e->spread the lanes are elements k + l*spread instead (an axis row's unrolled
 * iteration: its loads in flight together, folded in the same order as one by one). */
static void emit_lanes(emitter *e, const ir_pass *ps, reduction *red, LLVMValueRef k, int lanes) {
    int32_t nn = e->k->nnodes;
    LLVMValueRef at =
        e->spread ? k : LLVMBuildNSWMul(e->b, k, LLVMConstInt(e->itype, (unsigned)lanes, 0), "");
    LLVMValueRef index[CG_MAX_LANES];
    for (int l = 0; l < lanes; l++) {
        LLVMValueRef d = e->spread ? LLVMBuildNSWMul(e->b, e->spread,
                                                     LLVMConstInt(e->itype, (unsigned)l, 0), "")
                                   : LLVMConstInt(e->itype, (unsigned)l, 0);
        index[l] = l ? LLVMBuildNSWAdd(e->b, at, d, "") : at;
    }
    unsigned vec = e->spread ? 0 : (unsigned)lanes;
    for (int l = 0; l < lanes; l++) {
        e->index = index[l];
        e->lanes0 = l == 0 ? vec : 0;
        for (int32_t i = 0; i < nn; i++)
            if (e->need[i] && e->k->nodes[i].shape == IR_VARYING && e->k->nodes[i].op == IR_INPUT)
                e->lane_val[l * nn + i] = emit_node(e, i);
    }
    e->lanes0 = 0;
    for (int l = 0; l < lanes && !e->err; l++) {
        e->index = index[l];
        for (int32_t i = 0; i < nn; i++)
            if (e->need[i] && e->k->nodes[i].shape == IR_VARYING && e->k->nodes[i].op == IR_INPUT)
                e->val[i] = e->lane_val[l * nn + i];
        for (int32_t i = 0; i < nn && !e->err; i++)
            if (e->need[i] && e->k->nodes[i].shape == IR_VARYING && e->k->nodes[i].op != IR_INPUT)
                e->val[i] = emit_node(e, i);
        for (int r = 0; r < ps->nreductions; r++)
            reduction_step(e, &red[r]);
        for (int s = 0; s < ps->nstores; s++) /* the values to store, kept by lane */
            e->lane_val[l * nn + e->k->outputs[ps->stores[s]].node] =
                e->val[e->k->outputs[ps->stores[s]].node];
    }
    for (int l = 0; l < lanes && !e->err; l++) {
        e->index = index[l];
        e->lanes0 = l == 0 ? vec : 0;
        for (int s = 0; s < ps->nstores; s++) {
            const ir_output *o = &e->k->outputs[ps->stores[s]];
            store_elem(e, e->k->nparams + ps->stores[s], o->dtype, e->lane_val[l * nn + o->node]);
        }
    }
    e->lanes0 = 0;
}

/* `for (k = first; k < limit; k += step)` from the builder's block, each iteration doing
 * elements k*lanes .. k*lanes + lanes-1 (k itself when lanes is 1).  Reductions enter
 * with their `start` values; the loop leaves e->pre and e->latch for exit_values. */
static void emit_loop(emitter *e, const ir_pass *ps, reduction *red, LLVMValueRef first,
                      LLVMValueRef step, LLVMValueRef limit, int lanes, LLVMBasicBlockRef loop,
                      LLVMBasicBlockRef exit) {
    LLVMBuilderRef b = e->b;
    e->pre = LLVMGetInsertBlock(b);
    LLVMBuildCondBr(b, icmp(e, LLVMIntSLT, first, limit), loop, exit);

    LLVMPositionBuilderAtEnd(b, loop);
    e->in_loop = 1;
    LLVMValueRef idx = LLVMBuildPhi(b, e->itype, "i");
    for (int r = 0; r < ps->nreductions; r++)
        for (int j = 0; j < red[r].ncarry; j++)
            red[r].cur[j] = red[r].phi[j] = LLVMBuildPhi(b, LLVMTypeOf(red[r].init[j]), "acc");
    e->index = idx;
    int calls = e->libm_calls;
    if (lanes == 1)
        emit_body(e, ps, red);
    else
        emit_lanes(e, ps, red, idx, lanes);
    if (e->err)
        return;
    LLVMValueRef next = LLVMBuildNSWAdd(b, idx, step, "i.next");
    e->index_next = next;
    e->latch = LLVMGetInsertBlock(b);
    LLVMValueRef br = LLVMBuildCondBr(b, icmp(e, LLVMIntSLT, next, limit), loop, exit);
    LLVMSetMetadata(br, e->md_loop, loop_id(e, e->libm_calls == calls));
    LLVMValueRef in_v[2] = {first, next};
    LLVMBasicBlockRef in_b[2] = {e->pre, e->latch};
    LLVMAddIncoming(idx, in_v, in_b, 2);
    for (int r = 0; r < ps->nreductions; r++)
        for (int j = 0; j < red[r].ncarry; j++) {
            LLVMValueRef vals[2] = {red[r].start[j], red[r].next[j]};
            LLVMAddIncoming(red[r].phi[j], vals, in_b, 2);
        }
    e->in_loop = 0;
}

/* At the top of the loop's exit block: what each reduction carries out (its start
 * value when the loop did not run). */
static void exit_values(emitter *e, const ir_pass *ps, reduction *red) {
    LLVMBasicBlockRef bbs[2] = {e->pre, e->latch};
    for (int r = 0; r < ps->nreductions; r++)
        for (int j = 0; j < red[r].ncarry; j++) {
            LLVMValueRef vals[2] = {red[r].start[j], red[r].next[j]};
            red[r].out[j] = LLVMBuildPhi(e->b, LLVMTypeOf(red[r].init[j]), "");
            LLVMAddIncoming(red[r].out[j], vals, bbs, 2);
        }
}

/* GPU raw words (emit.h): a word <-> the value a reduction carries. */
static LLVMValueRef word_load(emitter *e, LLVMValueRef base, int w, LLVMTypeRef t) {
    LLVMValueRef idx = LLVMConstInt(e->i64, (unsigned)w, 0);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->i64, base, &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(e->b, e->i64, p, "");
    LLVMSetAlignment(v, 8);
    if (t == e->f64)
        return LLVMBuildBitCast(e->b, v, t, "");
    if (t == e->f32)
        return LLVMBuildBitCast(e->b, LLVMBuildTrunc(e->b, v, LLVMInt32TypeInContext(e->ctx), ""),
                                t, "");
    return t == e->i64 ? v : LLVMBuildTrunc(e->b, v, t, "");
}

static void word_store(emitter *e, LLVMValueRef base, int w, LLVMValueRef v) {
    LLVMTypeRef t = LLVMTypeOf(v);
    if (t == e->f64)
        v = LLVMBuildBitCast(e->b, v, e->i64, "");
    else if (t == e->f32)
        v = LLVMBuildZExt(e->b, LLVMBuildBitCast(e->b, v, LLVMInt32TypeInContext(e->ctx), ""),
                          e->i64, "");
    else if (t != e->i64)
        v = LLVMBuildZExt(e->b, v, e->i64, "");
    LLVMValueRef idx = LLVMConstInt(e->i64, (unsigned)w, 0);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->i64, base, &idx, 1, "");
    LLVMSetAlignment(LLVMBuildStore(e->b, v, p), 8);
}

/* Merges carried value j of two raw accumulators; b holds the later elements. */
static LLVMValueRef raw_merge(emitter *e, reduction *r, int j, LLVMValueRef a, LLVMValueRef b) {
    if (r->ncarry == 1)
        return combine(e, (ir_op)r->nd->op, r->d, a, b, 0);
    if (j == 1)
        return LLVMBuildOr(e->b, a, b, "");
    LLVMIntPredicate p = j == 2 || r->nd->op == IR_MAX ? LLVMIntSGT : LLVMIntSLT;
    return sel(e, icmp(e, p, b, a), b, a);
}

/* After the loop: acc[r] = combine(acc[r], the row's value); on a GPU the raw words are
 * merged instead. */
static void emit_fold(emitter *e, const ir_pass *ps, reduction *red) {
    for (int r = 0; r < ps->nreductions; r++) {
        if (e->t->gpu) {
            for (int j = 0; j < red[r].ncarry; j++) {
                LLVMValueRef old =
                    word_load(e, arg(e, ARG_ACC), red[r].word + j, LLVMTypeOf(red[r].init[j]));
                word_store(e, arg(e, ARG_ACC), red[r].word + j,
                           raw_merge(e, &red[r], j, old, red[r].out[j]));
            }
            continue;
        }
        LLVMValueRef row = reduction_value(e, &red[r], red[r].out);
        ir_op op = (ir_op)red[r].nd->op;
        LLVMValueRef old = canon_load(e, arg(e, ARG_ACC), r, red[r].d, "");
        canon_store(e, arg(e, ARG_ACC), r, red[r].d, combine(e, op, red[r].d, old, row, 0));
    }
}

/* Marks what pass p needs, from its stores and the operands of its reductions. */
static void mark_pass(emitter *e, int p) {
    const ir_pass *ps = &e->plan->passes[p];
    for (int s = 0; s < ps->nstores; s++)
        e->need[e->k->outputs[ps->stores[s]].node] = 1;
    for (int r = 0; r < ps->nreductions; r++)
        e->need[e->k->nodes[ps->reductions[r]].a] = 1;
    mark_needed(e);
}

static void init_reductions(emitter *e, const ir_pass *ps, reduction *red) {
    int w = 0;
    for (int r = 0; r < ps->nreductions; r++) {
        reduction_init(e, &red[r], &e->k->nodes[ps->reductions[r]]);
        red[r].word = w;
        w += red[r].ncarry;
    }
}

/* A loop ahead of the one that takes the elements one by one (emit_loop's arguments, its
 * blocks named `name` and `exit_name`), left at its exit with the reductions' values
 * carried on as the next loop's start.  0 on an error. */
static int lead_loop(emitter *e, const ir_pass *ps, reduction *red, LLVMValueRef first,
                     LLVMValueRef step, LLVMValueRef limit, int lanes, const char *name,
                     const char *exit_name) {
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, exit_name);
    emit_loop(e, ps, red, first, step, limit, lanes, loop, exit);
    if (e->err)
        return 0;
    LLVMPositionBuilderAtEnd(e->b, exit);
    exit_values(e, ps, red);
    for (int r = 0; r < ps->nreductions; r++)
        memcpy(red[r].start, red[r].out, sizeof red[r].out);
    return 1;
}

static void emit_pass_fn(emitter *e, int p, int variant) {
    const ir_pass *ps = &e->plan->passes[p];
    char name[64];
    cg_pass_variant_name(name, sizeof name, p, variant);
    e->fn = add_row_fn(e, name, 5);
    e->pass = p;
    int i32 = variant >= CG_CONTIG32 && variant <= CG_VEC32;
    if (i32)
        variant -= CG_CONTIG32;
    e->notag = variant == CG_CONTIG_NT || variant == CG_STRIDED_NT;
    if (e->notag)
        variant = variant == CG_CONTIG_NT ? CG_CONTIG : CG_STRIDED;
    e->itype = i32 ? LLVMInt32TypeInContext(e->ctx) : e->i64;
    reset_fn_state(e);
    e->axis = variant == CG_AXIS || variant == CG_AXISBLK;
    e->strided = variant == CG_STRIDED || e->axis;
    mark_pass(e, p);

    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry");
    LLVMPositionBuilderAtEnd(e->b, entry);
    for (int32_t i = 0; i < e->k->nnodes; i++) {
        const ir_node *nd = &e->k->nodes[i];
        if (e->need[i] && nd->op == IR_INPUT && e->k->params[nd->imm.i].is_array)
            load_array(e, e->array_of[i]);
    }
    for (int s = 0; s < ps->nstores; s++)
        load_array(e, e->k->nparams + ps->stores[s]);
    emit_nodes(e, IR_UNIFORM);

    reduction *red = e->red;
    init_reductions(e, ps, red);
    if (e->err)
        return;
    LLVMValueRef first, step, n = arg(e, ARG_N);
    if (variant == CG_AXIS) { /* one thread walks the whole axis */
        first = LLVMConstInt(e->i64, 0, 0);
        step = LLVMConstInt(e->i64, 1, 0);
    } else if (variant == CG_AXISBLK) { /* the block's threads share it */
        first = e->t->sreg(e->mod, e->b, "tid.x");
        step = e->t->sreg(e->mod, e->b, "ntid.x");
    } else {
        first = e->t->index_first(e->mod, e->b);
        step = e->t->index_step(e->mod, e->b);
    }
    if (i32) { /* the launcher checked that n + step and every byte offset fit int32 */
        first = LLVMBuildTrunc(e->b, first, e->itype, "gid32");
        step = LLVMBuildTrunc(e->b, step, e->itype, "nthreads32");
        n = LLVMBuildTrunc(e->b, n, e->itype, "n32");
    }
    if (variant == CG_VEC) {
        /* Whole groups of `lanes`, then the last n % lanes elements one by one. */
        int lanes = cg_pass_vec_lanes(e->k, e->plan, p);
        LLVMValueRef groups =
            LLVMBuildSDiv(e->b, n, LLVMConstInt(e->itype, (unsigned)lanes, 0), "");
        if (!lead_loop(e, ps, red, first, step, groups, lanes, "vloop", "vexit"))
            return;
        LLVMValueRef done =
            LLVMBuildNSWMul(e->b, groups, LLVMConstInt(e->itype, (unsigned)lanes, 0), "");
        first = LLVMBuildNSWAdd(e->b, done, first, "");
    }
    if (e->axis && e->t->sreg) {
        /* A GPU axis row: four elements an iteration (i, i + step, i + 2 step, i + 3 step,
         * loads first), so that each thread has four loads in flight, then the rest one by
         * one; each thread folds its elements in the same order either way. */
        enum { U = 4 };
        LLVMValueRef span = LLVMBuildNSWMul(e->b, step, LLVMConstInt(e->i64, U, 0), "span");
        LLVMValueRef last = LLVMBuildNSWSub(
            e->b, n, LLVMBuildNSWMul(e->b, step, LLVMConstInt(e->i64, U - 1, 0), ""), "ulimit");
        e->spread = step;
        int ok = lead_loop(e, ps, red, first, span, last, U, "uloop", "uexit");
        e->spread = NULL;
        if (!ok)
            return;
        LLVMValueRef at = LLVMBuildPhi(e->b, e->i64, "i.rest");
        LLVMValueRef av[2] = {first, e->index_next};
        LLVMBasicBlockRef ab[2] = {e->pre, e->latch};
        LLVMAddIncoming(at, av, ab, 2);
        first = at;
    }
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "loop");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "exit");
    emit_loop(e, ps, red, first, step, n, 1, loop, exit);
    if (e->err)
        return;
    LLVMPositionBuilderAtEnd(e->b, exit);
    exit_values(e, ps, red);
    emit_fold(e, ps, red);
    LLVMBuildRetVoid(e->b);
}

/* ------------------------------------------------------------------ the stencil variant */

/* Word idx of the CG_STENCIL variant's table (the parameter block from CG_GPU_OFF_NDIM). */
static LLVMValueRef tab(emitter *e, int idx, const char *name) {
    LLVMValueRef i = LLVMConstInt(e->i64, (unsigned)idx, 0);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(e->b, e->i64, arg(e, ARG_STRIDES), &i, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(e->b, e->i64, p, name);
    LLVMSetAlignment(v, 8);
    return v;
}

static LLVMValueRef smin64(emitter *e, LLVMValueRef a, LLVMValueRef b) {
    return sel(e, icmp(e, LLVMIntSLT, a, b), a, b);
}
static LLVMValueRef smax64(emitter *e, LLVMValueRef a, LLVMValueRef b) {
    return sel(e, icmp(e, LLVMIntSGT, a, b), a, b);
}

/* `for (i = first; i < limit; i += step)` around stencil rows (no carried values: the
 * reductions live in allocas there). */
typedef struct sloop {
    LLVMBasicBlockRef pre, body, exit;
    LLVMValueRef first, idx, step, limit;
} sloop;

static LLVMValueRef sloop_begin(emitter *e, sloop *l, LLVMValueRef first, LLVMValueRef step,
                                LLVMValueRef limit, const char *name) {
    l->pre = LLVMGetInsertBlock(e->b);
    l->body = LLVMAppendBasicBlockInContext(e->ctx, e->fn, name);
    l->exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "");
    l->first = first;
    l->step = step;
    l->limit = limit;
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, first, limit), l->body, l->exit);
    LLVMPositionBuilderAtEnd(e->b, l->body);
    return l->idx = LLVMBuildPhi(e->b, e->i64, name);
}

static void sloop_end(emitter *e, sloop *l) {
    LLVMValueRef next = LLVMBuildNSWAdd(e->b, l->idx, l->step, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    LLVMBuildCondBr(e->b, icmp(e, LLVMIntSLT, next, l->limit), l->body, l->exit);
    LLVMValueRef v[2] = {l->first, next};
    LLVMBasicBlockRef bb[2] = {l->pre, latch};
    LLVMAddIncoming(l->idx, v, bb, 2);
    LLVMPositionBuilderAtEnd(e->b, l->exit);
}

/* The declared rank of the kernel's stencil parameters (all equal the domain's). */
static int stencil_rank(const ir_kernel *k) {
    int r = 0;
    for (int p = 0; p < k->nparams; p++)
        if (ir_param_boundary(k, p) != IR_BOUND_NONE && ir_param_ndims(k, p) > r)
            r = ir_param_ndims(k, p);
    return r;
}

/* Per row: every array's row pointer; stencil loads remapped along the outer dimensions. */
static void stencil_rows(emitter *e, int D, const LLVMValueRef *idx, const LLVMValueRef *full) {
    const ir_kernel *k = e->k;
    int N = k->nparams + k->noutputs;
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *nd = &k->nodes[i];
        int a = e->array_of[i];
        if (!e->need[i] || nd->op != IR_INPUT || !k->params[nd->imm.i].is_array ||
            e->rowbase[a])
            continue;
        int param = (int)nd->imm.i, sten = a >= N;
        ir_boundary bd = ir_param_boundary(k, param);
        LLVMValueRef off = LLVMConstInt(e->i64, 0, 0), zero = LLVMConstInt(e->i1, 0, 0);
        for (int d = 0; d < D - 1; d++) {
            LLVMValueRef at = idx[d], in = NULL;
            if (sten) {
                at = LLVMBuildAdd(e->b, at, LLVMConstInt(e->i64, (uint64_t)(int64_t)nd->off[d], 1), "");
                at = stencil_remap(e, bd, at, full[d], &in);
                if (bd == IR_BOUND_ZERO)
                    zero = LLVMBuildOr(e->b, zero, LLVMBuildNot(e->b, in, ""), "");
            }
            LLVMValueRef st = tab(e, 9 + 8 * param + d, "stride");
            off = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, at, st, ""), "");
        }
        e->rowbase[a] = LLVMBuildInBoundsGEP2(e->b, e->i8, e->base[a], &off, 1, "row");
        e->rowzero[a] = zero;
    }
    for (int j = 0; j < e->plan->passes[e->pass].nstores; j++) {
        int a = k->nparams + e->plan->passes[e->pass].stores[j];
        LLVMValueRef off = LLVMConstInt(e->i64, 0, 0);
        for (int d = 0; d < D - 1; d++)
            off = LLVMBuildAdd(e->b, off, LLVMBuildMul(e->b, idx[d], tab(e, 9 + 8 * a + d, ""), ""),
                               "");
        e->rowbase[a] = LLVMBuildInBoundsGEP2(e->b, e->i8, e->base[a], &off, 1, "row");
    }
}

/* The three x loops of a row (emit.h): remapped, plain, remapped. */
static void stencil_row_loops(emitter *e, const ir_pass *ps, reduction *red, LLVMValueRef *cell,
                              LLVMValueRef first, LLVMValueRef step, const LLVMValueRef lim[3],
                              int remaps) {
    /* Without loads that can leave the array (only `interior` ones) a row is all middle. */
    for (int seg = remaps ? 0 : 1; seg < (remaps ? 3 : 2) && !e->err; seg++) {
        e->fast = seg == 1;
        for (int r = 0, c = 0; r < ps->nreductions; r++)
            for (int j = 0; j < red[r].ncarry; j++, c++)
                red[r].start[j] = LLVMBuildLoad2(e->b, LLVMTypeOf(red[r].init[j]), cell[c], "");
        LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "x");
        LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(e->ctx, e->fn, "x.done");
        emit_loop(e, ps, red, first, step, lim[seg], 1, loop, exit);
        if (e->err)
            return;
        LLVMPositionBuilderAtEnd(e->b, exit);
        exit_values(e, ps, red);
        LLVMValueRef next = LLVMBuildPhi(e->b, e->i64, "x.next");
        LLVMValueRef v[2] = {first, e->index_next};
        LLVMBasicBlockRef bb[2] = {e->pre, e->latch};
        LLVMAddIncoming(next, v, bb, 2);
        for (int r = 0, c = 0; r < ps->nreductions; r++)
            for (int j = 0; j < red[r].ncarry; j++, c++)
                LLVMBuildStore(e->b, red[r].out[j], cell[c]);
        first = next;
    }
    e->fast = 0;
}

static void emit_stencil_fn(emitter *e, int p) {
    const ir_pass *ps = &e->plan->passes[p];
    const ir_kernel *k = e->k;
    int N = k->nparams + k->noutputs, D = stencil_rank(k);
    char name[64];
    cg_pass_variant_name(name, sizeof name, p, CG_STENCIL);
    e->fn = add_row_fn(e, name, 5);
    e->pass = p;
    e->strided = 0;
    reset_fn_state(e);
    e->stencil = 1;
    e->itype = e->i64; /* stencil rows index in 64 bits */
    mark_pass(e, p);
    LLVMModuleRef m = e->mod;
    LLVMBuilderRef b = e->b;
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry"));
    /* Bases of the full arrays; a stencil load reads its parameter's. */
    for (int32_t i = 0; i < k->nnodes + ps->nstores; i++) {
        int a, src;
        if (i < k->nnodes) {
            const ir_node *nd = &k->nodes[i];
            if (!e->need[i] || nd->op != IR_INPUT || !k->params[nd->imm.i].is_array)
                continue;
            a = e->array_of[i];
            src = (int)nd->imm.i;
        } else {
            a = src = k->nparams + ps->stores[i - k->nnodes];
        }
        if (e->base[a])
            continue;
        LLVMValueRef at = LLVMConstInt(e->i64, (unsigned)src, 0);
        LLVMValueRef bp = LLVMBuildInBoundsGEP2(b, e->ptr, arg(e, ARG_PTRS), &at, 1, "");
        e->base[a] = LLVMBuildAddrSpaceCast(b, LLVMBuildLoad2(b, e->ptr, bp, "base"),
                                            LLVMPointerTypeInContext(e->ctx, 1), "gbase");
        e->step[a] = tab(e, 9 + 8 * src + D - 1, "xstride");
    }
    emit_nodes(e, IR_UNIFORM);
    reduction *red = e->red;
    init_reductions(e, ps, red);
    if (e->err)
        return;
    LLVMValueRef cell[3 * 64];
    int ncell = 0;
    for (int r = 0; r < ps->nreductions; r++)
        for (int j = 0; j < red[r].ncarry && ncell < 3 * 64; j++) {
            cell[ncell] = LLVMBuildAlloca(b, LLVMTypeOf(red[r].init[j]), "carry");
            LLVMBuildStore(b, red[r].init[j], cell[ncell++]);
        }
    if (ncell >= 3 * 64) {
        e->err = fu_error(FUSOR_ERROR_UNSUPPORTED, "kernel '%s': too many reductions in one "
                                                   "stencil pass", k->name);
        return;
    }
    /* The box (shape X, Y, Z), the full shape, the origin, the plain middle [xa, xb). */
    LLVMValueRef one = LLVMConstInt(e->i64, 1, 0), zero = LLVMConstInt(e->i64, 0, 0);
    LLVMValueRef shape[FUSOR_MAX_DIMS] = {0}, full[FUSOR_MAX_DIMS] = {0}, org[FUSOR_MAX_DIMS] = {0};
    for (int d = 0; d < D; d++) {
        shape[d] = tab(e, 1 + d, "box");
        full[d] = tab(e, 9 + 9 * N + d, "full");
        org[d] = tab(e, 17 + 9 * N + d, "origin");
    }
    LLVMValueRef X = shape[D - 1], Y = D >= 2 ? shape[D - 2] : one, Z = one;
    for (int d = 0; d + 2 < D; d++)
        Z = LLVMBuildMul(b, Z, shape[d], "");
    e->full_last = full[D - 1];
    e->xfull_origin = org[D - 1];
    int64_t edge_lo = 0, edge_hi = 0;
    int remaps = 0;
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *nd = &k->nodes[i];
        if (!ir_is_stencil_load(k, nd) ||
            ir_param_boundary(k, (int)nd->imm.i) == IR_BOUND_INTERIOR)
            continue;
        remaps = 1;
        if (-nd->off[D - 1] > edge_lo) edge_lo = -nd->off[D - 1];
        if (nd->off[D - 1] > edge_hi) edge_hi = nd->off[D - 1];
    }
    LLVMValueRef lim[3];
    lim[0] = smax64(e, zero, smin64(e, X, LLVMBuildSub(b, LLVMConstInt(e->i64, (uint64_t)edge_lo, 0),
                                                      org[D - 1], "")));
    LLVMValueRef hi = LLVMBuildSub(b, LLVMBuildSub(b, full[D - 1],
                                                   LLVMConstInt(e->i64, (uint64_t)edge_hi, 0), ""),
                                   org[D - 1], "");
    lim[1] = remaps ? smax64(e, lim[0], smin64(e, X, hi)) : X;
    lim[2] = X;
    const cg_target *t = e->t;
    LLVMValueRef tx = LLVMBuildAdd(b, LLVMBuildMul(b, t->sreg(m, b, "ctaid.x"), t->sreg(m, b, "ntid.x"), ""),
                                   t->sreg(m, b, "tid.x"), "tx");
    LLVMValueRef sx = LLVMBuildMul(b, t->sreg(m, b, "nctaid.x"), t->sreg(m, b, "ntid.x"), "sx");
    LLVMValueRef ty = LLVMBuildAdd(b, LLVMBuildMul(b, t->sreg(m, b, "ctaid.y"), t->sreg(m, b, "ntid.y"), ""),
                                   t->sreg(m, b, "tid.y"), "ty");
    LLVMValueRef sy = LLVMBuildMul(b, t->sreg(m, b, "nctaid.y"), t->sreg(m, b, "ntid.y"), "sy");
    LLVMValueRef tz = t->sreg(m, b, "ctaid.z"), sz = t->sreg(m, b, "nctaid.z");

    sloop lz, ly;
    LLVMValueRef z = sloop_begin(e, &lz, tz, sz, Z, "z"), zflat = z;
    LLVMValueRef idx[FUSOR_MAX_DIMS] = {0};
    for (int d = D - 3; d >= 0; d--) { /* z -> the outer coordinates, innermost first */
        LLVMValueRef q = d ? LLVMBuildUDiv(b, z, shape[d], "") : zero;
        LLVMValueRef c = d ? LLVMBuildSub(b, z, LLVMBuildMul(b, q, shape[d], ""), "") : z;
        idx[d] = LLVMBuildAdd(b, c, org[d], "");
        z = q;
    }
    LLVMValueRef y = sloop_begin(e, &ly, ty, sy, Y, "y");
    if (D >= 2)
        idx[D - 2] = LLVMBuildAdd(b, y, org[D - 2], "");
    e->row_flat = LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, zflat, Y, ""), y, ""), X, "");
    memset(e->rowbase, 0, e->narrays * sizeof *e->rowbase);
    stencil_rows(e, D, idx, full);
    stencil_row_loops(e, ps, red, cell, tx, sx, lim, remaps);
    if (e->err)
        return;
    sloop_end(e, &ly);
    sloop_end(e, &lz);
    for (int r = 0, c = 0; r < ps->nreductions; r++)
        for (int j = 0; j < red[r].ncarry; j++, c++)
            red[r].out[j] = LLVMBuildLoad2(b, LLVMTypeOf(red[r].init[j]), cell[c], "");
    emit_fold(e, ps, red);
    LLVMBuildRetVoid(b);
    e->stencil = 0;
}

/* GPU helpers of pass p (emit.h): init, merge and final over the raw words. */
static void emit_pass_helpers(emitter *e, int p) {
    const ir_pass *ps = &e->plan->passes[p];
    if (!ps->nreductions)
        return;
    char name[64];
    LLVMTypeRef params[2] = {e->ptr, e->ptr};
    LLVMTypeRef fty1 = LLVMFunctionType(LLVMVoidTypeInContext(e->ctx), params, 1, 0);
    LLVMTypeRef fty2 = LLVMFunctionType(LLVMVoidTypeInContext(e->ctx), params, 2, 0);
    reduction *red = e->red;
    e->pass = p;
    e->strided = 0;
    reset_fn_state(e);
    for (int what = 0; what < 3; what++) {
        static const char *const names[] = {"init", "merge", "final"};
        cg_pass_helper_name(name, sizeof name, p, names[what]);
        e->fn = LLVMAddFunction(e->mod, name, what ? fty2 : fty1);
        add_fn_attr(e, e->fn, LLVMAttributeFunctionIndex, "nounwind", 0);
        LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry"));
        init_reductions(e, ps, red);
        for (int r = 0; r < ps->nreductions; r++) {
            reduction *rd = &red[r];
            LLVMValueRef v[3];
            for (int j = 0; j < rd->ncarry; j++) {
                LLVMTypeRef t = LLVMTypeOf(rd->init[j]);
                if (what == 0) {
                    word_store(e, arg(e, 0), rd->word + j, rd->init[j]);
                } else if (what == 1) {
                    LLVMValueRef a = word_load(e, arg(e, 0), rd->word + j, t);
                    LLVMValueRef b = word_load(e, arg(e, 1), rd->word + j, t);
                    word_store(e, arg(e, 0), rd->word + j, raw_merge(e, rd, j, a, b));
                } else {
                    v[j] = word_load(e, arg(e, 0), rd->word + j, t);
                }
            }
            if (what == 2) {
                LLVMValueRef fin = reduction_value(e, rd, v);
                if (rd->nd->dtype == FUSOR_F16) /* rounded once, as sc_reduce_finish */
                    fin = LLVMBuildFPTrunc(e->b, fin, e->f16, "");
                canon_store(e, arg(e, 1), rd->nd->slot, (fusor_dtype)rd->nd->dtype, fin);
            }
        }
        LLVMBuildRetVoid(e->b);
    }
}

static void emit_finish_fn(emitter *e) {
    e->fn = add_row_fn(e, CG_FINISH_NAME, 2);
    e->pass = -1;
    e->strided = 0;
    reset_fn_state(e);
    for (int j = 0; j < e->k->noutputs; j++)
        if (!e->k->outputs[j].is_array)
            e->need[e->k->outputs[j].node] = 1;
    mark_needed(e);
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(e->ctx, e->fn, "entry"));
    for (int32_t i = 0; i < e->k->nnodes && e->err == FUSOR_OK; i++)
        if (e->need[i])
            e->val[i] = emit_node(e, i);
    if (e->err)
        return;
    for (int j = 0; j < e->k->noutputs; j++) {
        const ir_output *o = &e->k->outputs[j];
        if (!o->is_array)
            canon_store(e, arg(e, 1), j, o->dtype, e->val[o->node]);
    }
    LLVMBuildRetVoid(e->b);
}

/* ------------------------------------------------------------------ the template */

static const char template_ir[] = "define void @ag(ptr %p) {\n"
                                  "  store i8 0, ptr %p, align 1, !llvm.access.group !0\n"
                                  "  ret void\n"
                                  "}\n"
                                  "define float @fadd_f32(float %a, float %b) {\n"
                                  "  %r = fadd reassoc float %a, %b\n"
                                  "  ret float %r\n"
                                  "}\n"
                                  "define double @fadd_f64(double %a, double %b) {\n"
                                  "  %r = fadd reassoc double %a, %b\n"
                                  "  ret double %r\n"
                                  "}\n"
                                  "!0 = distinct !{}\n";

static LLVMValueRef first_inst(LLVMModuleRef m, const char *fn) {
    return LLVMGetFirstInstruction(LLVMGetFirstBasicBlock(LLVMGetNamedFunction(m, fn)));
}

static fusor_status load_template(emitter *e) {
    LLVMMemoryBufferRef buf =
        LLVMCreateMemoryBufferWithMemoryRangeCopy(template_ir, sizeof template_ir - 1, "template");
    char *msg = NULL;
    if (LLVMParseIRInContext(e->ctx, buf, &e->tmpl, &msg)) {
        fusor_status st = fu_error(FUSOR_ERROR_COMPILE, "codegen template: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return st;
    }
    e->md_access_group = LLVMGetMDKindIDInContext(e->ctx, "llvm.access.group", 17);
    e->md_loop = LLVMGetMDKindIDInContext(e->ctx, "llvm.loop", 9);
    e->access_group = LLVMGetMetadata(first_inst(e->tmpl, "ag"), e->md_access_group);
    e->fadd_reassoc[0] = first_inst(e->tmpl, "fadd_f32");
    e->fadd_reassoc[1] = first_inst(e->tmpl, "fadd_f64");
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ the module */

int cg_pass_notag(const ir_kernel *k, const ir_plan *plan, int pass) {
    const ir_pass *ps = &plan->passes[pass];
    if (ps->nstores || k->axis_stage) /* an axis stage's rows are run per result (run.c) */
        return 0;
    for (int r = 0; r < ps->nreductions; r++)
        if (ir_is_float_minmax(&k->nodes[ps->reductions[r]]))
            return 1;
    return 0;
}

void cg_pass_helper_name(char *buf, size_t n, int pass, const char *what) {
    /* "fusor_pass<pass>_<what>", as snprintf would write it (launches look kernels up by
     * these names, so this runs per launch: no format parsing) */
    char tmp[96], digits[10];
    size_t len = 10;
    memcpy(tmp, "fusor_pass", len);
    int nd = 0;
    unsigned v = pass < 0 ? 0u - (unsigned)pass : (unsigned)pass;
    do
        digits[nd++] = (char)('0' + v % 10);
    while (v /= 10);
    if (pass < 0)
        tmp[len++] = '-';
    while (nd)
        tmp[len++] = digits[--nd];
    tmp[len++] = '_';
    for (const char *w = what; *w && len < sizeof tmp - 1; w++)
        tmp[len++] = *w;
    tmp[len] = 0;
    if (!n)
        return;
    size_t m = len < n - 1 ? len : n - 1;
    memcpy(buf, tmp, m);
    buf[m] = 0;
}

void cg_pass_variant_name(char *buf, size_t n, int pass, int variant) {
    static const char *const names[] = {"contig",   "strided",   "vec",      "stencil",
                                        "contig32", "strided32", "vec32",    "axis",
                                        "axisblk",  "contignt",  "stridednt"};
    cg_pass_helper_name(buf, n, pass, names[variant]);
}

int cg_reduction_words(const ir_kernel *k, int32_t node) {
    return ir_is_float_minmax(&k->nodes[node]) ? 3 : 1;
}

int cg_pass_word_bits(const ir_kernel *k, const ir_plan *plan, int pass, int word) {
    const ir_pass *ps = &plan->passes[pass];
    for (int r = 0; r < ps->nreductions; r++) {
        int n = cg_reduction_words(k, ps->reductions[r]);
        fusor_dtype d = carry_dtype((fusor_dtype)k->nodes[ps->reductions[r]].dtype);
        if (word < n) /* keyed float min/max: key, NaN flag, tag */
            return n == 1 || word == 0 ? (int)dt_bits(d) : word == 1 ? 1 : 64;
        word -= n;
    }
    return 64;
}

int cg_pass_words(const ir_kernel *k, const ir_plan *plan, int pass) {
    int w = 0;
    for (int r = 0; r < plan->passes[pass].nreductions; r++)
        w += cg_reduction_words(k, plan->passes[pass].reductions[r]);
    return w;
}

void cg_pass_arrays(const ir_kernel *k, const ir_plan *plan, int pass, char *used) {
    const ir_pass *ps = &plan->passes[pass];
    char *need = fu_calloc((size_t)(k->nnodes ? k->nnodes : 1), 1);
    memset(used, 0, (size_t)(k->nparams + k->noutputs));
    for (int s = 0; s < ps->nstores; s++)
        used[k->nparams + ps->stores[s]] = 1;
    if (!need) { /* out of memory: claim every array, which is safe for alignment */
        memset(used, 1, (size_t)(k->nparams + k->noutputs));
        return;
    }
    for (int s = 0; s < ps->nstores; s++)
        need[k->outputs[ps->stores[s]].node] = 1;
    for (int r = 0; r < ps->nreductions; r++)
        need[k->nodes[ps->reductions[r]].a] = 1;
    for (int32_t i = k->nnodes - 1; i >= 0; i--) {
        const ir_node *nd = &k->nodes[i];
        if (!need[i])
            continue;
        if (nd->op == IR_INPUT && k->params[nd->imm.i].is_array)
            used[nd->imm.i] = 1;
        if (is_leaf((ir_op)nd->op))
            continue;
        if (nd->a >= 0)
            need[nd->a] = 1;
        if (nd->b >= 0)
            need[nd->b] = 1;
        if (nd->c >= 0)
            need[nd->c] = 1;
    }
    fu_free(need);
}

int cg_pass_vec_lanes(const ir_kernel *k, const ir_plan *plan, int pass) {
    /* Over every array of the kernel, not only the pass's: no allocation (so the emitter
     * and the launcher's metadata can never disagree), and passes mostly share arrays. */
    (void)plan;
    (void)pass;
    size_t widest = 1;
    for (int a = 0; a < k->nparams + k->noutputs; a++) {
        int arr = a < k->nparams ? k->params[a].is_array : k->outputs[a - k->nparams].is_array;
        fusor_dtype d = a < k->nparams ? k->params[a].dtype : k->outputs[a - k->nparams].dtype;
        if (arr && fusor_dtype_size(d) > widest)
            widest = fusor_dtype_size(d);
    }
    return widest >= 8 ? 2 : 4;
}

static fusor_status emitter_init(emitter *e, const ir_kernel *k, const ir_plan *plan,
                                 const cg_target *t, LLVMContextRef ctx) {
    memset(e, 0, sizeof *e);
    e->ctx = ctx;
    e->k = k;
    e->plan = plan;
    e->t = t;
    e->i1 = LLVMInt1TypeInContext(ctx);
    e->i8 = LLVMInt8TypeInContext(ctx);
    e->i64 = LLVMInt64TypeInContext(ctx);
    e->f32 = LLVMFloatTypeInContext(ctx);
    e->f64 = LLVMDoubleTypeInContext(ctx);
    e->f16 = LLVMHalfTypeInContext(ctx);
    e->ptr = LLVMPointerTypeInContext(ctx, 0);
    size_t nn = (size_t)(k->nnodes ? k->nnodes : 1);
    size_t na = (size_t)(k->nparams + k->noutputs + ir_stencil_loads(k, NULL) + 1);
    e->narrays = na;
    e->array_of = fu_calloc(nn, sizeof *e->array_of);
    if (!e->array_of)
        return fu_oom("the code generator's tables");
    /* Each stencil load reads its own array, after the outputs (ir.h). */
    for (int32_t i = 0, v = 0; i < k->nnodes; i++)
        e->array_of[i] = ir_is_stencil_load(k, &k->nodes[i]) ? k->nparams + k->noutputs + v++
                                                             : (int32_t)k->nodes[i].imm.i;
    e->val = fu_calloc(nn, sizeof *e->val);
    e->need = fu_calloc(nn, 1);
    e->base = fu_calloc(na, sizeof *e->base);
    e->step = fu_calloc(na, sizeof *e->step);
    e->off = fu_calloc(na, sizeof *e->off);
    e->rowbase = fu_calloc(na, sizeof *e->rowbase);
    e->rowzero = fu_calloc(na, sizeof *e->rowzero);
    e->lane_val = t->gpu ? fu_calloc(nn * CG_MAX_LANES, sizeof *e->lane_val) : NULL;
    e->red = fu_calloc(nn, sizeof *e->red);
    if (!e->val || !e->need || !e->base || !e->step || !e->off || !e->red || !e->rowbase ||
        !e->rowzero ||
        (t->gpu && !e->lane_val))
        return fu_oom("the code generator's tables");
    return load_template(e);
}

static void emitter_free(emitter *e) {
    fu_free(e->array_of);
    fu_free(e->val);
    fu_free(e->need);
    fu_free(e->base);
    fu_free(e->step);
    fu_free(e->off);
    fu_free(e->rowbase);
    fu_free(e->rowzero);
    fu_free(e->lane_val);
    fu_free(e->red);
    if (e->b)
        LLVMDisposeBuilder(e->b);
    if (e->tmpl)
        LLVMDisposeModule(e->tmpl);
}

static fusor_status verify(LLVMModuleRef m) {
    char *msg = NULL;
    if (!LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        LLVMDisposeMessage(msg);
        return FUSOR_OK;
    }
    fusor_status st = fu_error(FUSOR_ERROR_COMPILE, "codegen produced invalid LLVM IR: %s", msg);
    LLVMDisposeMessage(msg);
    return st;
}

fusor_status cg_emit_module(const ir_kernel *k, const ir_plan *plan, const cg_target *t,
                            LLVMContextRef ctx, LLVMModuleRef *out) {
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    int stencil = t->gpu && (ir_stencil_loads(k, NULL) || ir_interior_halo(k, lo, hi));
    if (stencil && (!t->sreg || stencil_rank(k) < 1))
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "kernel '%s' reads with stencil offsets, which this GPU target cannot "
                        "address",
                        k->name);
    /* A kernel with axis reductions has no single domain: its stages (kernels/stage.h) are
     * what gets compiled. */
    int axis = k->axis_stage && t->gpu; /* the host runs an axis stage's rows itself */
    if (axis && (!t->sreg || plan->npasses != 1 || plan->passes[0].nreductions != 1 ||
                 plan->passes[0].nstores))
        return fu_error(FUSOR_ERROR_INTERNAL,
                        "kernel '%s' is not an axis stage a GPU target can compile", k->name);
    if (ir_has_axis_reductions(k))
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "kernel '%s' has axis reductions: its stages are compiled instead "
                        "(one per reduction and output)",
                        k->name);
    emitter e;
    fusor_status st = emitter_init(&e, k, plan, t, ctx);
    if (st == FUSOR_OK) {
        e.mod = LLVMModuleCreateWithNameInContext(k->name ? k->name : "kernel", ctx);
        e.b = LLVMCreateBuilderInContext(ctx);
        for (int p = 0; p < plan->npasses && !e.err; p++) {
            if (stencil) { /* one variant: the rows of the box */
                emit_stencil_fn(&e, p);
                if (!e.err)
                    emit_pass_helpers(&e, p);
                continue;
            }
            if (axis) { /* the axis rows only (emit.h) */
                emit_pass_fn(&e, p, CG_AXIS);
                if (!e.err)
                    emit_pass_fn(&e, p, CG_AXISBLK);
                if (!e.err)
                    emit_pass_helpers(&e, p);
                continue;
            }
            emit_pass_fn(&e, p, CG_CONTIG);
            if (!e.err)
                emit_pass_fn(&e, p, CG_STRIDED);
            if (!e.err && !t->gpu && cg_pass_notag(k, plan, p)) {
                emit_pass_fn(&e, p, CG_CONTIG_NT);
                if (!e.err)
                    emit_pass_fn(&e, p, CG_STRIDED_NT);
            }
            if (!e.err && t->gpu)
                emit_pass_fn(&e, p, CG_VEC);
            for (int v = CG_CONTIG32; v <= CG_VEC32 && t->gpu && !e.err; v++)
                emit_pass_fn(&e, p, v);
            if (!e.err && t->gpu)
                emit_pass_helpers(&e, p);
        }
        if (plan->has_scalar_outputs && !e.err)
            emit_finish_fn(&e);
        st = e.err ? e.err : verify(e.mod);
    }
    if (st == FUSOR_OK) {
        *out = e.mod;
    } else if (e.mod) {
        LLVMDisposeModule(e.mod);
    }
    emitter_free(&e);
    return st;
}

/* ------------------------------------------------------------------ the host's pieces */

static LLVMValueRef host_first(LLVMModuleRef m, LLVMBuilderRef b) {
    (void)b;
    return LLVMConstInt(LLVMInt64TypeInContext(LLVMGetModuleContext(m)), 0, 0);
}

static LLVMValueRef host_step(LLVMModuleRef m, LLVMBuilderRef b) {
    (void)b;
    return LLVMConstInt(LLVMInt64TypeInContext(LLVMGetModuleContext(m)), 1, 0);
}

/* Intrinsics where LLVM has one (the vectoriser maps them to libmvec's vector variants),
 * libm for the rest. */
static const struct {
    ir_op op;
    const char *intrinsic, *f64, *f32;
} host_math[] = {
    {IR_SQRT, "llvm.sqrt", 0, 0},     {IR_EXP, "llvm.exp", 0, 0},
    {IR_EXP2, "llvm.exp2", 0, 0},     {IR_LOG, "llvm.log", 0, 0},
    {IR_LOG2, "llvm.log2", 0, 0},     {IR_LOG10, "llvm.log10", 0, 0},
    {IR_SIN, "llvm.sin", 0, 0},       {IR_COS, "llvm.cos", 0, 0},
    {IR_POW, "llvm.pow", 0, 0},       {IR_CBRT, 0, "cbrt", "cbrtf"},
    {IR_EXPM1, 0, "expm1", "expm1f"}, {IR_LOG1P, 0, "log1p", "log1pf"},
    {IR_TAN, 0, "tan", "tanf"},       {IR_ASIN, 0, "asin", "asinf"},
    {IR_ACOS, 0, "acos", "acosf"},    {IR_ATAN, 0, "atan", "atanf"},
    {IR_SINH, 0, "sinh", "sinhf"},    {IR_COSH, 0, "cosh", "coshf"},
    {IR_TANH, 0, "tanh", "tanhf"},    {IR_ASINH, 0, "asinh", "asinhf"},
    {IR_ACOSH, 0, "acosh", "acoshf"}, {IR_ATANH, 0, "atanh", "atanhf"},
    {IR_ATAN2, 0, "atan2", "atan2f"}, {IR_HYPOT, 0, "hypot", "hypotf"},
};

const char *cg_host_math_name(ir_op op, fusor_dtype dtype) {
    for (size_t i = 0; i < sizeof host_math / sizeof host_math[0]; i++) {
        if (host_math[i].op != op)
            continue;
        if (host_math[i].intrinsic)
            return host_math[i].intrinsic;
        return dtype == FUSOR_F32 ? host_math[i].f32 : host_math[i].f64;
    }
    return NULL;
}

/* Element accesses claim only byte alignment: wrapped user memory may be unaligned, and
 * x86 vector loads cost the same either way. */
const cg_target cg_host_target = {.index_first = host_first,
                                  .index_step = host_step,
                                  .math_name = cg_host_math_name,
                                  .elem_align = 1};
