/*
 * emit.h — the one target-neutral emitter of fused loops: IR plan -> LLVM IR module.
 *
 * Every back end shares the per-op emission (the semantics of ir.h, matching scalar.c)
 * and the pass structure (uniform work before the loop, varying work and stores inside,
 * reductions in loop-carried values folded into accumulators after it).  What differs
 * between targets is kept in a cg_target:
 *
 *   index source  where a thread's loop starts and how far it steps: [0, n) by 1 on the
 *                 host; a grid-stride loop (global thread id, total threads) on a GPU;
 *   math table    which function computes sin, tan, pow, ... in each precision: LLVM
 *                 intrinsics and libm on the host; libdevice (__nv_*) on a GPU;
 *   element alignment of loads and stores.
 *
 * The module holds, for each pass p, `fusor_pass<p>_contig` and `fusor_pass<p>_strided`
 * with the row-function ABI of codegen.h, and `fusor_finish` when the kernel has scalar
 * outputs.  It has no triple or data layout: the target sets them before optimising.
 * With a grid-stride index source a row function computes one GPU thread's share of the
 * row and folds it into that thread's own accumulators, so a GPU kernel can be a thin
 * wrapper around it.
 */
#ifndef FUSOR_CG_EMIT_H
#define FUSOR_CG_EMIT_H

#include <llvm-c/Core.h>

#include "ir.h"

typedef struct cg_target {
    /* First index of this thread's loop and its step, emitted at the builder's position
     * in the row function's entry block (i64 values). */
    LLVMValueRef (*index_first)(LLVMModuleRef m, LLVMBuilderRef b);
    LLVMValueRef (*index_step)(LLVMModuleRef m, LLVMBuilderRef b);
    /* Name of the function computing the float op `op` (a math function of ir.h, e.g.
     * IR_SIN, IR_POW) in dtype FUSOR_F32 or FUSOR_F64, or NULL when `op` is not one.
     * Names starting with "llvm." are intrinsics; others are declared as external
     * functions without side effects. */
    const char *(*math_name)(ir_op op, fusor_dtype dtype);
    /* Alignment claimed for array element accesses: 0 means the element size. */
    unsigned elem_align;
} cg_target;

/* The host's pieces: a counted loop from 0 by 1, LLVM intrinsics where LLVM has one (so
 * the loop vectoriser can call the vector math library), libm otherwise. */
extern const cg_target cg_host_target;
const char *cg_host_math_name(ir_op op, fusor_dtype dtype);

/* Names of the functions in the emitted module. */
#define CG_FINISH_NAME "fusor_finish"
/* Writes "fusor_pass<p>_contig" or "fusor_pass<p>_strided" into buf. */
void cg_pass_fn_name(char *buf, size_t n, int pass, int strided);

/* Builds the module for `k` and `plan` in `ctx` (owned by the caller, one per thread).
 * Fails with FUSOR_ERROR_INTERNAL when the plan breaks its own rules (e.g. a pass using a
 * reduction it computes) and FUSOR_ERROR_COMPILE when LLVM's verifier rejects the
 * result. */
fusor_status cg_emit_module(const ir_kernel *k, const ir_plan *plan, const cg_target *t,
                            LLVMContextRef ctx, LLVMModuleRef *out);

#endif
