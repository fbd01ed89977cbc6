/*
 * stage.h — splitting a kernel with axis reductions into ordinary kernels (stages).
 *
 * A kernel with axis reductions (ir.h) has no single domain: `s = sum(x, axis=1)` has the
 * shape of x without its axis 1, and `y = x / sum(x, axis=1, keepdims=true)` is computed
 * over x's shape again.  Back ends only know kernels with one domain, so the kernel is
 * split where the shapes change:
 *
 *   AXIS      one per axis reduction, in node order (an axis reduction nested in another's
 *             operand comes first): a kernel whose one scalar output is the whole reduction
 *             of the operand.  The runner calls its row function once per result element,
 *             over the reduced axis only (host_run_axis), and stores each result into an
 *             output array or a temporary.
 *   STORE     one per array output not written by an AXIS stage: an element-wise kernel
 *             over the output's shape.
 *   SCALARS   the scalar outputs (only parameters and constants feed them), no passes.
 *
 * In a stage kernel an axis reduction's result is an array parameter (read where the
 * earlier stage stored it), and the length of a reduced axis (mean's divisor) is a scalar
 * i64 parameter.  The launcher (scheduler/staged.c) works out every node's shape with
 * ir_infer_shapes and binds each stage parameter by its source.
 */
#ifndef FUSOR_STAGE_H
#define FUSOR_STAGE_H

#include "arena.h"
#include "ir.h"

typedef enum ir_stage_kind { IR_STAGE_AXIS, IR_STAGE_STORE, IR_STAGE_SCALARS } ir_stage_kind;

/* What feeds stage parameter i. */
typedef enum ir_src_kind {
    IR_SRC_PARAM,  /* the full kernel's parameter `index` */
    IR_SRC_RESULT, /* the array holding axis reduction node `index`'s result */
    IR_SRC_AXISLEN /* the length of the axis that axis reduction node `index` reduces */
} ir_src_kind;

typedef struct ir_stage_src {
    ir_src_kind kind;
    int32_t index;
} ir_stage_src;

typedef struct ir_stage {
    ir_stage_kind kind;
    ir_kernel *k; /* an ordinary kernel: no axis reductions */
    ir_plan *plan;
    int32_t node;      /* AXIS: the full kernel's reduction node; STORE: the output's node */
    int output;        /* the full kernel's output written (AXIS: -1 for a temporary) */
    ir_stage_src *src; /* [k->nparams] */
    /* AXIS: an element-wise kernel for reducing an axis that is not the innermost, row
     * after row (host_run_axis), with k's parameters first (same src) and one array
     * output.  For sums and products of f64, f32, i64 and u64 it accumulates: one more
     * array parameter, the accumulators, and the output is acc + operand (acc * operand),
     * written over acc (map_accumulates).  Otherwise it is the operand alone, and the
     * runner combines. */
    ir_kernel *map;
    ir_plan *map_plan;
    int map_accumulates;
} ir_stage;

typedef struct ir_staging {
    int nstages;
    ir_stage *stages;
    /* [nnodes of the full kernel]: for an axis reduction, the array output that holds its
     * result (its AXIS stage writes there), or -1 for a temporary. */
    int32_t *home;
} ir_staging;

/* Splits `k` (which has axis reductions) into stages allocated in `a`, each planned. */
fusor_status ir_stage_build(const ir_kernel *k, arena *a, ir_staging **out);

/* ---- shapes at launch ---- */

typedef struct ir_nshape {
    int ndim;
    int64_t shape[FUSOR_MAX_DIMS];
} ir_nshape;

/* The shape of every VARYING node of `k` (UNIFORM nodes get ndim 0) from the shapes of
 * the array parameters (`params[i]`, ignored for scalars): NumPy's broadcasting, and an
 * axis reduction removes (or with keepdims, sets to 1) its resolved axis, which goes into
 * axis[node] (-1 for other nodes).  Errors (FUSOR_ERROR_SHAPE) name the kernel, the
 * arguments involved and the shapes. */
fusor_status ir_infer_shapes(const ir_kernel *k, const ir_nshape *params, ir_nshape *nodes,
                             int8_t *axis);

#endif
