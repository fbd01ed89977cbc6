/*
 * interp.h — the reference interpreter: slow, obviously correct, the oracle every
 * back end is tested against.
 *
 * It evaluates the IR like NumPy would: each node becomes a whole buffer over the domain
 * (or one value when UNIFORM), computed in the node's own dtype with scalar.h; sums are
 * pairwise over the domain in C order.  Array outputs are written through the domain's
 * views; scalar outputs are returned in `outs` (canonical form, one per output, entries
 * of array outputs untouched).
 */
#ifndef FUSOR_INTERP_H
#define FUSOR_INTERP_H

#include "domain.h"
#include "ir.h"
#include "stage.h"

/* `scalars[i]` is the value of scalar parameter i (entries of array parameters unused).
 * Fails with FUSOR_ERROR_VALUE for min/max of an empty domain and with
 * FUSOR_ERROR_OUT_OF_MEMORY when buffers cannot be allocated; outputs are untouched then. */
fusor_status interp_run(const ir_kernel *k, const ir_domain *d, const ir_value *scalars,
                        ir_value *outs);

/* One array of a kernel with axis reductions: its own shape and byte strides. */
typedef struct interp_view {
    char *base;
    ir_nshape shape;
    int64_t strides[FUSOR_MAX_DIMS];
} interp_view;

/* Runs a kernel with axis reductions (ir.h): views[i] for each array parameter, then each
 * array output (entries of scalars unused); each array output must have the shape of its
 * node (ir_infer_shapes).  A float sum or product along an axis is NumPy's pairwise sum of
 * that axis's values; min/max over an axis of length 0 fails with FUSOR_ERROR_VALUE. */
fusor_status interp_run_shaped(const ir_kernel *k, const interp_view *views,
                               const ir_value *scalars, ir_value *outs);

#endif
