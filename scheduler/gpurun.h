/*
 * gpurun.h — running a prepared launch on a GPU, and the launcher's hook that decides
 * whether to (placement.h).
 *
 * A GPU run of a plan (the kernels and parameter block of codegen/gpu.h):
 *
 *   PTX from the specialisation's cache (cg_gpu_cache; the context's GPU options, the
 *     device's arch unless they name one)
 *     -> the device's module (loaded once, JIT logs kept; device.h)
 *   host and pinned arrays -> pool buffers covering their extents, inputs copied in
 *     (staged through pinned memory), device and managed arrays used in place
 *   slots -> device; per pass: fusor_pass<p>_{vec|contig|strided} over the domain (the
 *     launch shape of device.h), then fusor_pass<p>_reduce when it has reductions;
 *     fusor_finish for scalar outputs -> outs back to the host
 *   host outputs copied back; temporaries freed on the stream (stream-ordered)
 *
 * Everything is queued on one CUDA stream: the calling fusor stream's when the launch
 * runs on a stream worker (fusor_launch_async), else a pooled stream that is synchronised
 * before returning (fusor_launch).  Host results (host outputs, scalar outputs) are
 * synchronised before the launch counts as done; device-resident results are not.
 */
#ifndef FUSOR_SCHED_GPURUN_H
#define FUSOR_SCHED_GPURUN_H

#include <pthread.h>

#include "domain.h"
#include "scheduler.h"

/* Parameters plus outputs of one GPU launch (the host's HOST_MAX_ARRAYS). */
#define SCHED_GPU_MAX_ARRAYS 256

/* A context's GPU state, made on first use: its default stream.  (PTX is cached with
 * each specialisation, sched_spec.gpu_cache.) */
typedef struct sched_ctx_gpu {
    pthread_mutex_t lock;
    fusor_stream *default_stream;
} sched_ctx_gpu;

fusor_status sched_ctx_gpu_get(fusor_context *c, int create, sched_ctx_gpu **out);
void sched_ctx_gpu_free(sched_ctx_gpu *g);

/* The launcher's hook, called after a launch is prepared (every check passed, missing
 * outputs allocated) and before the host runs it.  Decides where the launch runs and
 * records it in a->placement; with the GPU chosen it runs the launch there and sets
 * *ran_gpu (outputs the launch allocated may then be replaced by device arrays when the
 * inputs live on the device: arrays[i] and dom->base[i] change).  With no usable GPU and
 * host arrays it only records the placement.  A GPU run sets *threads to the GPU threads
 * of its largest kernel launch (grid x block).  `may_use_gpu` is 0 for the reference and
 * unfused paths, which only run on the host.  Synchronous launches (not on a stream
 * worker) first wait for the context's default stream. */
fusor_status sched_gpu_launch(fusor_kernel *k, fusor_args *a, sched_spec *spec, ir_domain *dom,
                              fusor_array **arrays, int *allocated, ir_value *slots, ir_value *outs,
                              int may_use_gpu, int *ran_gpu, int *threads);

/* Whether a pass may run its 32-bit index variant (codegen/emit.h, "_contig32", ...):
 * the grid-stride loop's index stays within int32 (size + threads - 1 <= INT32_MAX, with
 * `threads` the launch's grid x block), and for every array i with elsize[i] > 0 the
 * largest byte offset of an element from element 0, the sum over the dimensions of
 * (shape[d] - 1) * |strides[i][d]|, plus elsize[i] (the end of that element) is at most
 * INT32_MAX.  Pure, so the boundary is unit-tested. */
int sched_gpu_index32_ok(const ir_domain *dom, const size_t *elsize, int64_t threads);

/* Outputs a launch allocated (allocated[i]) follow inputs that all live off the host
 * (device or managed memory) onto GPU `device`: arrays[i] and dom->base[i] (dom may be
 * NULL) are replaced by device arrays.  Nothing changes when some input is in host or
 * pinned memory. */
fusor_status sched_gpu_outputs_to_device(const ir_kernel *ir, ir_domain *dom,
                                         fusor_array **arrays, const int *allocated, int device);

/* The GPU target's refusal when no GPU is usable (before any argument check, as a
 * launch on the CPU-only build did): FUSOR_ERROR_NO_DEVICE with the loader's reason. */
fusor_status sched_gpu_no_device(const fusor_kernel *k);

#endif
