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

    /* ---- GPU targets only; all zero (the host) keeps the behaviour above ---- */
    /* Nonzero: array bases are global memory (cast so loads become ld.global), each pass
     * also gets a `_vec` variant (cg_pass_vec_lanes elements per iteration, lane 0 claiming
     * their combined alignment), reductions are folded into `acc` as raw words (see
     * below), and per-pass init/merge/final helpers are emitted. */
    int gpu;
    /* When set, the strided variant walks an n-dimensional domain with one flat index:
     * at the top of each iteration this stores into off[a] the byte offset of element
     * `index` of every array a with bases[a] != NULL.  `table` is the strided function's
     * `strides` argument.  It may add basic blocks (the body continues where it leaves
     * the builder). */
    void (*nd_offsets)(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef table, LLVMValueRef index,
                       int narrays, const LLVMValueRef *bases, LLVMValueRef *off);
    /* When set, used instead of math_name, with `math_flags` (CG_MATH_*): also asked
     * for IR_DIV (f32 division and reciprocal) and IR_FMOD (float fmod, also inside // and
     * %); NULL there means the plain LLVM instruction. */
    const char *(*math_name_ex)(ir_op op, fusor_dtype dtype, unsigned flags);
    unsigned math_flags;
    /* When set, a PTX special register as i64 ("tid.y", "ntid.x", "ctaid.z", "nctaid.y",
     * ...): stencil kernels get the CG_STENCIL variant (below) instead of the others. */
    LLVMValueRef (*sreg)(LLVMModuleRef m, LLVMBuilderRef b, const char *which);
} cg_target;

/* math_flags bits. */
#define CG_MATH_FTZ         1u /* f32 denormals flush to zero */
#define CG_MATH_APPROX_DIV  2u /* f32 division may be approximate */
#define CG_MATH_APPROX_SQRT 4u /* f32 sqrt may be approximate */

/* The host's pieces: a counted loop from 0 by 1, LLVM intrinsics where LLVM has one (so
 * the loop vectoriser can call the vector math library), libm otherwise. */
extern const cg_target cg_host_target;
const char *cg_host_math_name(ir_op op, fusor_dtype dtype);

/* Names of the functions in the emitted module. */
#define CG_FINISH_NAME "fusor_finish"

/*
 * GPU targets.  Variants of a pass: CG_CONTIG and CG_STRIDED as on the host, and
 * CG_VEC, which handles `lanes` consecutive elements per iteration (element k*lanes + l)
 * so that lane 0's access, aligned to lanes * element size, starts a vector load, then
 * a scalar tail.  Its caller guarantees every array base is aligned to lanes * its
 * element size.
 *
 * Raw accumulators: with `gpu` set, `acc` is an array of 64-bit words, one per value a
 * reduction's loop carries (cg_reduction_words: 3 for a float min/max, kept as key, NaN
 * flag and last-zero tag, else 1), in the pass's reduction order.  Integers (and those
 * values) sit zero-extended in a word, f32 as its bits zero-extended, f64 as its bits.
 * Every word merges independently with an associative, commutative operation except the
 * float sum and product, so min/max results do not depend on how threads split the work.
 * The module then also holds, per pass p with reductions:
 *   void fusor_pass<p>_init(i64 *w)               w = the identities
 *   void fusor_pass<p>_merge(i64 *a, const i64 *b) a = merge(a, b), b the later elements
 *   void fusor_pass<p>_final(const i64 *w, ir_value *slots)  slots[node.slot] = result
 */
enum { CG_CONTIG = 0, CG_STRIDED = 1, CG_VEC = 2, CG_STENCIL = 3 };
/*
 * CG_STENCIL (GPU targets with sreg, kernels of cg_gpu_is_stencil; the only variant they
 * get): `strides` is the parameter block at CG_GPU_OFF_NDIM (gpu.h: box shape, strides of
 * the parameters and outputs, full shape and box origin), `ptrs` its arrays[] (element 0
 * of each full array) and n is unused.  Loops over the box: z (the dimensions before the
 * last two, flattened) from ctaid.z by nctaid.z; y (the second to last) from
 * ctaid.y * ntid.y + tid.y by nctaid.y * ntid.y; x (the last) from ctaid.x * ntid.x +
 * tid.x by nctaid.x * ntid.x.  Per row, the outer-dimension part of every stencil load is
 * remapped once (a row pointer, and a "the whole row reads zero" flag for ZERO); the x
 * range then splits into [0, xa) and [xb, X), where some load leaves the array along x and
 * is remapped element by element, and the middle [xa, xb), where every load is a plain
 * offset load.  A thread walks the three in order, so only the threads of the edge warps
 * of a row ever take the remapping code.
 */
/* GPU targets also get each non-stencil variant with 32-bit indices (variant +
 * CG_CONTIG32, named "_contig32", ...): the grid-stride loop, the flat index and the
 * strided variant's byte offsets are i32 (an element address is base + sext(i) * size:
 * PTX's mul.wide.s32).  The launcher runs them only where n + the grid's threads and every
 * array's byte offsets fit int32 (sched_gpu_index32_ok). */
enum { CG_CONTIG32 = 4, CG_STRIDED32 = 5, CG_VEC32 = 6, CG_NUM_VARIANTS = 7 };
/*
 * An AXIS stage's kernel (ir_kernel.axis_stage; GPU targets only) gets two row functions
 * instead of all the above, both addressing each array as on the host (ptrs[i] + index *
 * strides[i], `strides` the stride of each array along the reduced axis) over n = the
 * axis's length, folding into acc:
 *   CG_AXIS     "_axis": indices 0, 1, ..., n-1 (one thread walks the axis);
 *   CG_AXISBLK  "_axisblk": from tid.x by ntid.x (a block's threads share the axis).
 */
enum { CG_AXIS = 7, CG_AXISBLK = 8 };
/*
 * Host targets also get, for passes of cg_pass_notag, CG_CONTIG and CG_STRIDED without the
 * zero tag of their float min/max ("_contignt", "_stridednt"): the same extreme and NaN,
 * but a zero result's sign is not the last zero's (the tag costs about as much as the
 * rest of the loop).  The runner uses them first and runs the pass again with the tagged
 * variants when a float min/max result is a zero (host-fallback/run.c).
 */
enum { CG_CONTIG_NT = 9, CG_STRIDED_NT = 10 };
/* Whether pass p gets the no-tag variants: it has a float MIN or MAX reduction and stores
 * nothing, so running it twice changes nothing but its reductions (and the kernel is not
 * an axis stage, whose rows the runner calls per result). */
int cg_pass_notag(const ir_kernel *k, const ir_plan *plan, int pass);
/* "fusor_pass<p>_contig", "_strided", "_vec", "_stencil" (and "_contig32", ..., "_axis",
 * "_axisblk", "_contignt", "_stridednt"). */
void cg_pass_variant_name(char *buf, size_t n, int pass, int variant);
/* "fusor_pass<p>_init", "_merge" or "_final" (what is "init", "merge" or "final"). */
void cg_pass_helper_name(char *buf, size_t n, int pass, const char *what);
int cg_reduction_words(const ir_kernel *k, int32_t node);
int cg_pass_words(const ir_kernel *k, const ir_plan *plan, int pass);
/* Significant low bits of raw word `word` of pass `pass` (1 to 64): the rest are zero. */
int cg_pass_word_bits(const ir_kernel *k, const ir_plan *plan, int pass, int word);
/* used[a] = 1 for every array (indexed as in ir_plan) pass `pass` reads or writes. */
void cg_pass_arrays(const ir_kernel *k, const ir_plan *plan, int pass, char *used);
/* Elements per iteration of the CG_VEC variant: 16 bytes' worth of the widest array
 * element of the kernel, at most 4 (4 for f32, 2 for f64). */
int cg_pass_vec_lanes(const ir_kernel *k, const ir_plan *plan, int pass);

/* Builds the module for `k` and `plan` in `ctx` (owned by the caller, one per thread).
 * Fails with FUSOR_ERROR_INTERNAL when the plan breaks its own rules (e.g. a pass using a
 * reduction it computes) and FUSOR_ERROR_COMPILE when LLVM's verifier rejects the
 * result. */
fusor_status cg_emit_module(const ir_kernel *k, const ir_plan *plan, const cg_target *t,
                            LLVMContextRef ctx, LLVMModuleRef *out);

#endif
