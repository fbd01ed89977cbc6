/*
 * gpuaxis.h — kernels with axis reductions on a GPU (kernels/stage.h's stages).
 *
 * A launch of such a kernel placed on a GPU runs every stage there, in order, on one CUDA
 * stream, over device memory:
 *
 *   AXIS     fusor_pass0_axis or _axisblk, or the axis cut into chunks (_axis or
 *            _axissplit, then _axisfold or _axisfoldblk; codegen/gpu.h) over the
 *            result's elements, writing the output array that holds the result, or a
 *            temporary
 *   STORE    the stage's ordinary pass kernel over the output's shape (gpurun.c's choice)
 *   SCALARS  on the host (only parameters and constants feed them)
 *
 * Host and pinned arrays are copied into pool buffers first and host outputs copied back
 * last; device and managed arrays are used in place; temporaries are pool buffers freed
 * on the stream.  staged.c plans every stage (the functions below) into one image of
 * parameter blocks and slots, uploads it once and issues the launches; a prepared launch
 * keeps the image on the device and replays the launches as a CUDA Graph.  The shape and
 * parameter-block functions are pure, so what the launcher makes is what the tests run
 * through the CUDA C on the CPU.
 */
#ifndef FUSOR_SCHED_GPUAXIS_H
#define FUSOR_SCHED_GPUAXIS_H

#include <stddef.h>
#include <stdint.h>

#include "cuda.h"
#include "device.h"
#include "domain.h"
#include "gpu.h"
#include "scheduler.h"

/* The forms of an AXIS stage's launch (codegen/gpu.h's kernels). */
enum {
    SCHED_AXIS_THREAD = CG_AXK_THREAD,
    SCHED_AXIS_BLOCK = CG_AXK_BLOCK,
    SCHED_AXIS_SPLIT = CG_AXK_SPLIT
};

/* Whether an AXIS stage of `nresults` results over an axis of `len` elements is cut into
 * chunks (*nchunks chunks of *chunk elements; else *chunk = len, *nchunks = 1 and 0 is
 * returned), each folded into a row of raw words in partials and the rows then folded in
 * order per result (fusor_pass0_axisfold).  `innermost`: the axis is the operand's
 * innermost (only extents of 1 after it, sched_gpu_axis_innermost), so its elements are
 * neighbours.  Such an axis is cut for blocks (SCHED_AXIS_SPLIT) when it has at least
 * 8192 elements: at least 2048 blocks in all, chunks of about 8192 elements, at least
 * 4096.  An outer axis is cut for threads (SCHED_AXIS_THREAD, neighbouring
 * threads on neighbouring results) when the results alone are too few threads: about
 * 2^18 threads in all, at least 128 elements each.  (`words`, the raw words the
 * reduction carries, does not matter: any reduction splits.) */
int sched_gpu_axis_split(int64_t nresults, int64_t len, int innermost, int words, int64_t *chunk,
                         int64_t *nchunks);

/* The launch of an AXIS stage: its form (SCHED_AXIS_*), block and grid, from the shape
 * alone, never from the device, so a result's bits do not depend on the GPU.  Cut as
 * above; else, on the innermost axis, one block per result when the axis has at least
 * 2048 elements, or at least 64 and there are fewer than 16384 results (a thread per
 * result otherwise: it reads its short row's cache lines alone); on an outer axis, one
 * block per result for fewer than 4096 results over at least 64 elements, else a thread
 * per result.  Measured on an H100 (docs/gpu.md, bench_gpu's table of the forms).
 * `max_block` caps the block (the kernel's limit); block_override / grid_override
 * (fusor_args_set_gpu_shape, 0: automatic) are taken as given except that a block of the
 * shared forms is rounded down to a multiple of 32 (at least 32).  FUSOR_GPU_AXIS_FORM=thread|threadsplit|block|split (read at
 * each call) imposes a form, for benchmarks that compare them: threadsplit and split cut
 * any axis of 2 or more elements into at least two chunks. */
void sched_gpu_axis_shape(int64_t nresults, int64_t len, int innermost, int words, int max_block,
                          int block_override, int grid_override, int *block, int *grid,
                          int *form);

/* The launch of the fold that follows a cut axis (sched_gpu_axis_split: *nchunks rows
 * per result): a thread per result (fusor_pass0_axisfold, 256 a block), or with 64
 * chunks or more a block per result (fusor_pass0_axisfoldblk, *by_block set: threads
 * share the rows, whole warps up to 256), whose serial fold would otherwise take longer
 * than the reads.  The *_max_block are the two kernels' limits. */
void sched_gpu_axis_fold_shape(int64_t nresults, int64_t nchunks, int thread_max_block,
                               int block_max_block, int *block, int *grid, int *by_block);

/* Whether axis `axis` of domain d is its innermost but for extents of 1. */
int sched_gpu_axis_innermost(const ir_domain *d, int axis);

/* Writes the axis kernels' parameter block (codegen/gpu.h; CG_GPU_AXIS_PARAMS_SIZE(n)
 * bytes, n = d->narrays = the stage's parameters + 1) for reducing axis `axis` of the
 * operand's domain d: d->base[i] the device address of array i's element 0 (the result
 * array last), d->strides[i] its byte strides over d (the result's 0 along `axis`).
 * dslots: the device's launch slots; chunk, nchunks and dpartials: the split form's cut
 * of the axis and its rows of raw words (len, 1 and 0 otherwise). */
void sched_gpu_axis_params(const ir_domain *d, int axis, uint64_t dslots, int64_t chunk,
                           int64_t nchunks, uint64_t dpartials, unsigned char *img);

/* ---- a staged launch on a GPU: one CUDA stream, buffers freed on it at the end ---- */

typedef struct sched_gpu_stages {
    const cudrv_table *t;
    sched_device *d;
    cudrv_stream cu;
    fusor_stream *cur; /* the fusor stream the launch runs on, or NULL */
    cudrv_ptr *buf;    /* pool buffers to free, and their sizes */
    size_t *bytes;
    int nbuf, capbuf;
    int threads;               /* grid x block of the largest kernel launched */
} sched_gpu_stages;

/* The device (made current) and the stream: the calling fusor stream's when the launch
 * runs on a stream worker (unless `own`), else a pooled one.  On failure nothing is
 * held. */
fusor_status sched_gpu_stages_begin(sched_gpu_stages *g, int device, int own);
/* A pool buffer of `bytes` on the stream, freed by sched_gpu_stages_end (0 for 0 bytes). */
fusor_status sched_gpu_stages_alloc(sched_gpu_stages *g, size_t bytes, cudrv_ptr *out);
/* One kernel launch of a staged step; its parameter block at `off` in the step's
 * parameter image (fn NULL: nothing to launch, e.g. no results). */
typedef struct sched_gpu_call {
    sched_function *fn;
    int grid[3], block[3];
    size_t off;
} sched_gpu_call;

/* Bytes the parameter blocks of stage `sub` (a stage's GPU spec, scheduler.h) take in a
 * step's image, rounded up to 256. */
size_t sched_gpu_stage_params_size(const sched_spec *sub);
/* Bytes of raw-word rows AXIS stage `sub` over d needs (the split form), or 0. */
size_t sched_gpu_axis_partials_bytes(const sched_spec *sub, const ir_domain *d, int axis);
/* Plans AXIS stage `sub` over d (device addresses, the result array last; see
 * sched_gpu_axis_params): its launches into out[0] and, split, the fold into out[1] (else
 * out[1].fn is NULL), its parameter block into img, naming dslots, the device address of
 * the stage's slots, and dpartials, sched_gpu_axis_partials_bytes bytes of device memory. */
fusor_status sched_gpu_plan_axis(sched_gpu_stages *g, fusor_kernel *k, fusor_args *a,
                                 sched_spec *sub, const ir_domain *d, int axis, cudrv_ptr dslots,
                                 cudrv_ptr dpartials, unsigned char *img, sched_gpu_call *out);
/* The same for STORE stage `sub` over d, with gpurun.c's pass kernels and blocks. */
fusor_status sched_gpu_plan_store(sched_gpu_stages *g, fusor_kernel *k, fusor_args *a,
                                  sched_spec *sub, const ir_domain *d, cudrv_ptr dslots,
                                  unsigned char *img, sched_gpu_call *out);
/* Queues l[0..n) on g->cu, launch i's parameter block at dparams + l[i].off. */
fusor_status sched_gpu_issue_launches(sched_gpu_stages *g, const char *kname,
                                      const sched_gpu_call *l, int n, cudrv_ptr dparams);
/* Frees the buffers on the stream and ends the step (gpurun_impl.h's
 * sched_gpu_step_end: waits when there is no fusor stream or need_sync).  Returns st, or
 * the first error. */
fusor_status sched_gpu_stages_end(sched_gpu_stages *g, int need_sync, fusor_status st);

#endif
