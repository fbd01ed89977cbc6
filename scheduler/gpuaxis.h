/*
 * gpuaxis.h — kernels with axis reductions on a GPU (kernels/stage.h's stages).
 *
 * A launch of such a kernel placed on a GPU runs every stage there, in order, on one CUDA
 * stream, over device memory:
 *
 *   AXIS     fusor_pass0_axis or fusor_pass0_axisblk (codegen/gpu.h) over the result's
 *            elements, writing the output array that holds the result, or a temporary
 *   STORE    the stage's ordinary pass kernel over the output's shape (gpurun.c's path)
 *   SCALARS  on the host (only parameters and constants feed them)
 *
 * Host and pinned arrays are copied into pool buffers first and host outputs copied back
 * last; device and managed arrays are used in place; temporaries are pool buffers freed
 * on the stream.  The two functions below are pure, so the shapes and parameter blocks
 * the launcher makes are what the tests run through the CUDA C on the CPU.
 */
#ifndef FUSOR_SCHED_GPUAXIS_H
#define FUSOR_SCHED_GPUAXIS_H

#include <stddef.h>
#include <stdint.h>

#include "domain.h"
#include "scheduler.h"

/* The launch of an AXIS stage: which kernel (block: fusor_pass0_axisblk), its block and
 * grid.  From the shape alone, never from the device, so a result's bits do not depend
 * on the GPU: one block per result when the reduced axis is the innermost dimension of
 * the operand (the block's threads then read neighbouring elements) or when there are
 * too few results to give each thread one (fewer than 4096), and the axis has at least
 * 64 elements; else one thread per result.  `max_block` caps the block (the kernel's
 * limit); block_override / grid_override (fusor_args_set_gpu_shape, 0: automatic) are
 * taken as given except that a block-per-result block is rounded down to a multiple of
 * 32 (at least 32). */
void sched_gpu_axis_shape(int64_t nresults, int64_t len, int innermost, int max_block,
                          int block_override, int grid_override, int *block, int *grid,
                          int *per_block);

/* Writes the axis kernels' parameter block (codegen/gpu.h; CG_GPU_AXIS_PARAMS_SIZE(n)
 * bytes, n = d->narrays = the stage's parameters + 1) for reducing axis `axis` of the
 * operand's domain d: d->base[i] the device address of array i's element 0 (the result
 * array last), d->strides[i] its byte strides over d (the result's 0 along `axis`).
 * dslots: the device's launch slots. */
void sched_gpu_axis_params(const ir_domain *d, int axis, uint64_t dslots, unsigned char *img);

#endif
