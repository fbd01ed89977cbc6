/*
 * run.h — executing a compiled kernel's passes on the host pool.
 *
 * The domain is first simplified (size-1 dimensions dropped, dimensions ordered so the
 * first output's memory is walked forwards, mergeable dimensions merged) so that most
 * launches become one long contiguous row.  Each pass then splits the domain into fixed
 * blocks; threads take contiguous runs of blocks.  Reduction partials are kept per block
 * and combined pairwise in block order, so results do not depend on the thread count.
 * A stencil kernel's domain is not simplified: run.c says how its offset loads and
 * boundaries become row pointers.
 */
#ifndef FUSOR_HOST_RUN_H
#define FUSOR_HOST_RUN_H

#include "codegen.h"
#include "domain.h"

/* Memory for reduction partials that a caller keeps between runs (a prepared launch), so
 * that a run allocates nothing.  Zero-initialise; free `p` with fu_free. */
typedef struct host_scratch {
    void *p;
    size_t bytes;
} host_scratch;
/* Makes s hold what host_run needs for `plan` over `d`. */
fusor_status host_scratch_reserve(host_scratch *s, const ir_plan *plan, const ir_domain *d);

/* Runs every pass, then the finish function.  `slots` holds the scalar parameters and
 * COUNT on entry; reduction results are written into it.  `outs` receives the scalar
 * outputs.  Returns the thread count used in *threads_used.  With `scratch` (may be
 * NULL) big enough, the run allocates nothing. */
fusor_status host_run(const ir_kernel *k, const ir_plan *plan, const cg_compiled *code,
                      const ir_domain *d, ir_value *slots, ir_value *outs, int nthreads,
                      int *threads_used, host_scratch *scratch);

/* An AXIS stage of a kernel with axis reductions (kernels/stage.h): `k` has one pass with
 * one reduction, and each element of its result is that reduction of one row of domain `d`
 * along dimension `axis` (the row function called over the axis only, in fixed blocks of
 * HOST_BLOCK combined pairwise, so the thread count changes nothing).  Result element at
 * multi-index i of d (i[axis] ignored) is stored at out + sum of i[x] * out_strides[x] over
 * x != axis, in the reduction's dtype.  Threads take contiguous runs of result elements.
 *
 * With `map` (the stage's operand as an element-wise kernel with one array output, same
 * parameters) and an axis that is not the innermost, results are instead accumulated row
 * by row as NumPy does for such axes: for each block of result elements along the
 * innermost dimension, the operand's values of one position along the axis are computed
 * into a small buffer by map's vectorised row function and combined into the block's
 * accumulators, position after position — memory is read in order, once.  The order of
 * each element's combination (along the axis) does not depend on the thread count.  With
 * `map_accumulates` map adds (multiplies) the operand into its accumulator parameter
 * itself (stage.h), so a position along the axis is one vectorised call.  That path's
 * partial results go to `scratch` (grown as needed; NULL: allocated for the call), which
 * a prepared launch keeps between steps. */
fusor_status host_run_axis(const ir_kernel *k, const ir_plan *plan, const cg_compiled *code,
                           const cg_compiled *map, int map_accumulates, const ir_domain *d,
                           int axis, char *out, const int64_t *out_strides,
                           const ir_value *slots, int nthreads, int *threads_used,
                           host_scratch *scratch);

/* Below this many elements a pass runs on the calling thread. */
#define HOST_PARALLEL_MIN_ELEMENTS 32768
/* Parameters plus outputs of one kernel (the launcher checks it first). */
#define HOST_MAX_ARRAYS 256
/* Elements per reduction block (a multiple of the vector width). */
#define HOST_BLOCK 4096

#endif
