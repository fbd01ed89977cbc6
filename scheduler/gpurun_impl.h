/*
 * gpurun_impl.h — the pieces of a GPU run (gpurun.c) that prepared launches (gpuprep.c)
 * put together differently: set up once, then only issue kernels per step.
 *
 * A run: sched_gpu_begin (device, module, the stencil box, per-array tables), place the
 * arrays (gpurun.c), sched_gpu_choose (kernel variant and launch shape per pass, from
 * where the arrays are), device buffers for slots, partials, scalar outputs and the
 * parameter blocks (sched_gpu_fill_params writes them), sched_gpu_issue (the passes'
 * kernels, their reductions and the finish kernel on g->cu), sched_gpu_end.
 */
#ifndef FUSOR_SCHED_GPURUN_IMPL_H
#define FUSOR_SCHED_GPURUN_IMPL_H

#include "cuda.h"
#include "device.h"
#include "gpu.h"
#include "placement.h"
#include "scheduler.h"

typedef struct tmp_buf {
    cudrv_ptr p;
    size_t bytes;
} tmp_buf;

#define GPU_RUN_INLINE 16

typedef struct gpu_run {
    const cudrv_table *t;
    sched_device *d;
    cudrv_stream cu;
    const char *kname;
    const ir_kernel *ir;
    const ir_plan *plan;
    const cg_gpu_code *code;
    sched_module *mod;
    const ir_domain *dom;
    fusor_array **arrays;
    int n;
    cudrv_ptr *devbase; /* [n] */
    cudrv_ptr *hostbuf; /* [n]: the pool buffer standing for a host array, or 0 */
    tmp_buf *tmp;       /* every pool buffer, freed at the end */
    int ntmp;
    /* the three arrays above for kernels of up to GPU_RUN_INLINE arrays: no allocation */
    cudrv_ptr devbase_in[GPU_RUN_INLINE + 1], hostbuf_in[GPU_RUN_INLINE + 1];
    tmp_buf tmp_in[GPU_RUN_INLINE + 8];
    double copied;
    int block_override, grid_override;
    int threads; /* grid x block of the largest kernel launched */
    /* a launch queued on a fusor stream (run by its worker): scalar outputs reach the
     * argument set at the stream's next host barrier instead of being waited for */
    fusor_stream *cur;
    fusor_args *args;
    /* a synchronous launch's scalar outputs, written by the kernels into the stream's
     * pinned memory (sched_scratch_host), or NULL */
    const void *outs_host;
    /* stencil kernels (codegen/gpu.h): the box the kernels run over, within dom */
    int stencil;
    int64_t box[FUSOR_MAX_DIMS], origin[FUSOR_MAX_DIMS], box_size;
} gpu_run;

typedef struct pass_plan {
    sched_function *fn;
    int block, grid, words;
    int block3[3], grid3[3]; /* the launch; block and grid are their products */
    int64_t elements;        /* per thread-iteration unit: n, or n / lanes rounded up */
} pass_plan;

/* spec's GPU code for device d under the context's options (d's own arch unless they name
 * one), loaded into d's module; FUSOR_ERROR_UNSUPPORTED for a device older than code
 * generation supports. */
fusor_status sched_gpu_load(fusor_context *c, sched_spec *spec, sched_device *d,
                            const cg_gpu_code **code, sched_module **mod);
/* Everything up to placing the arrays; g->cu is left to the caller.  On failure nothing
 * is held. */
fusor_status sched_gpu_begin(gpu_run *g, fusor_kernel *k, fusor_args *a, sched_spec *spec,
                             const ir_domain *dom, fusor_array **arrays, int device);
/* Device addresses of arrays[0..n) for a launch on `device` (elem0[i]: array i's element
 * 0 as the launch sees it, NULL when unused): device and managed arrays in place (one on
 * another GPU is an error naming it), host and pinned ones in a pool buffer from
 * alloc(actx, bytes, &buf) covering their extent, in hostbuf[i] (else 0).  Inputs (i <
 * ir->nparams) are copied in on s, outputs too when their extent has gaps a launch does
 * not write or with fill_outputs; the bytes copied are added to *copied. */
fusor_status sched_gpu_place(const char *kname, const ir_kernel *ir, fusor_array *const *arrays,
                             char *const *elem0, int n, int device, int fill_outputs,
                             cudrv_stream s, fusor_status (*alloc)(void *, size_t, cudrv_ptr *),
                             void *actx, cudrv_ptr *devbase, cudrv_ptr *hostbuf, double *copied);
/* The host outputs i in [first, n) with a buffer hostbuf[i] copied back over their extent on
 * s (adding to *copied, setting *need_sync). */
fusor_status sched_gpu_copy_back(int device, fusor_array *const *arrays, const cudrv_ptr *hostbuf,
                                 int first, int n, cudrv_stream s, double *copied, int *need_sync);
/* Frees g's per-array tables (not its pool buffers: those are freed on the stream). */
void sched_gpu_end(gpu_run *g);
/* Kernels and shapes for each pass (plan->npasses entries of pp), from g->devbase. */
fusor_status sched_gpu_choose(gpu_run *g, pass_plan *pp);
/* Bytes of reduction partials the chosen grids need. */
size_t sched_gpu_partials_bytes(const gpu_run *g, const pass_plan *pp);
/* One parameter block's bytes; a run has npasses + 1 of them (the last: finish). */
size_t sched_gpu_params_size(const gpu_run *g);
/* Writes every parameter block of the run into img. */
void sched_gpu_fill_params(const gpu_run *g, const pass_plan *pp, unsigned char *img,
                           cudrv_ptr dslots, cudrv_ptr dparts, cudrv_ptr douts);
/* Launches f on stream s with parameter block pb; *threads grows to the launch's grid x
 * block; a failure names kernel kname, the device, f and the shape. */
fusor_status sched_gpu_launch_fn(const cudrv_table *t, const sched_device *d, cudrv_stream s,
                                 const char *kname, const sched_function *f, const int grid[3],
                                 const int block[3], cudrv_ptr pb, int *threads);
/* Queues the kernels on g->cu: each pass (and its reduction), then finish. */
fusor_status sched_gpu_issue(gpu_run *g, const pass_plan *pp, cudrv_ptr dparams);
/* Everything after the arrays are placed (g->devbase set): parameter blocks and slots up
 * in the stream's launch buffer, the kernels, scalar outputs read back into outs and host
 * outputs copied back (both set *need_sync). */
fusor_status sched_gpu_run_kernels(gpu_run *g, const ir_value *slots, ir_value *outs,
                                   int *need_sync);

/* Whether the driver has the entry points capturing and replaying CUDA Graphs takes. */
int sched_gpu_graphs_available(const cudrv_table *t);
/* What issue(arg) queues on stream s, captured as a CUDA Graph and instantiated; NULL when
 * the driver cannot capture, issue fails, or instantiation fails (the caller then launches
 * the same kernels directly, which works everywhere).  Leaves no error set. */
cudrv_graph_exec sched_gpu_capture(const cudrv_table *t, cudrv_stream s,
                                   fusor_status (*issue)(void *arg), void *arg);

/* The context's target, with $FUSOR_TARGET (gpu or cpu) deciding for one left on AUTO. */
fusor_target sched_gpu_target(const fusor_context *c);
/* Where a launch runs (placement.h), recorded in a->placement; an error status for a
 * placement that fails (its reason as the message). */
fusor_status sched_gpu_decide(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                              const ir_domain *dom, fusor_array **arrays, int may_use_gpu,
                              sched_place_result *r);
/* A synchronous launch first waits for the context's default stream (not on a worker). */
fusor_status sched_gpu_wait_default(fusor_context *ctx);
/* The end of a GPU step queued on CUDA stream s: without a fusor stream (cur NULL) it
 * waits for s; on one it marks GPU work issued and waits only when the host must see the
 * results (need_sync) or something failed.  Returns st, or the first error. */
fusor_status sched_gpu_step_end(const cudrv_table *t, fusor_stream *cur, cudrv_stream s,
                                int need_sync, fusor_status st);
/* One whole GPU run of a launch placed on GPU `device` (host arrays copied in and out). */
fusor_status sched_gpu_run_once(fusor_kernel *k, fusor_args *a, sched_spec *spec, ir_domain *dom,
                                fusor_array **arrays, ir_value *slots, ir_value *outs, int device,
                                fusor_stream *cur, int *threads);

#endif
