/*
 * staged.h — launching kernels with axis reductions (kernels/stage.h), and the gufunc
 * checks of declared dimensions that every launch makes.
 *
 * A kernel with axis reductions has no single domain: each output has the shape of its
 * value (`sum(x, axis=1)` of an (n, m) x is (n,)).  Preparation works out every node's
 * shape, checks the declared dimensions, aliasing and empty min/max axes, and allocates the
 * missing outputs, all before anything is written; the run then executes the stages in
 * order on the host pool (or the whole kernel on the reference interpreter).  Such kernels
 * run on the CPU only: the placement says so.
 */
#ifndef FUSOR_STAGED_H
#define FUSOR_STAGED_H

#include "cuda.h"
#include "scheduler.h"
#include "stage.h"

/* Named dimensions (`x: f64[n, k], w: f64[k] -> (y: f64[n])`): every array parameter with
 * declared dimensions has at least that many (its trailing, core dimensions; leading ones
 * are loop dimensions), each name has one size across the arguments, and each array output
 * with declared dimensions (out_shapes[j], NULL for outputs not known yet) ends with the
 * sizes its names have.  Errors name the argument and the dimension. */
fusor_status sched_check_dims(const fusor_kernel *k, const ir_kernel *ir,
                              fusor_array *const *arrays, const ir_nshape *out_shapes);

/* The shape and byte strides (returning the rank) that array A takes as parameter i: NumPy's
 * gufunc rule.  A parameter declaring fewer core dimensions than the kernel's widest
 * (`w: f64[k]` beside `x: f64[n, k]`) gets length-1 dimensions between its loop
 * dimensions and its core ones, so that loop dimensions line up with loop dimensions:
 * w of shape (b, k) is seen as (b, 1, k) against x's (b, n, k).  Otherwise A as it is. */
int sched_param_view(const ir_kernel *ir, int i, const fusor_array *A, int64_t *shape,
                     int64_t *strides);

/* prepare() for a kernel with stages: arrays[] holds the bound inputs and outputs; the
 * missing array outputs are allocated (allocated[i] = 1). */
fusor_status sched_staged_prepare(fusor_kernel *k, sched_spec *spec, fusor_array **arrays,
                                  int *allocated);
/* What a prepared launch keeps between steps (shapes, temporaries, stage buffers), so
 * that a step with arrays of the same shapes allocates nothing. */
typedef struct sched_staged_cache sched_staged_cache;
void sched_staged_cache_free(sched_staged_cache *c, const sched_spec *spec);
/* CUDA Graphs the prepared launch's GPU steps captured and replayed (tests). */
void sched_staged_gpu_counts(const sched_staged_cache *c, long *captures, long *replays);

/* A prepared launch with axis reductions as a member of a sequence whose step is captured
 * as one CUDA Graph (gpuprep.c).  _ready: its last step ran on a GPU (*device) with every
 * array in GPU memory, and these arrays (of the same shapes, on that GPU) can run the same
 * way.  _binding: its planned, uploaded step for these arrays (made if new), an id unique
 * in the process in *gen.  _issue: queues that binding's kernels on s.  _upload: its
 * stages' slots for this step on s, when they changed.  _finish: after the graph ran,
 * the scalar outputs (on the host) and *threads; with `failed`, forgets what the device
 * holds instead. */
int sched_staged_seq_ready(const sched_staged_cache *c, const sched_spec *spec,
                           fusor_array **arrays, int *device);
fusor_status sched_staged_seq_binding(sched_staged_cache *c, fusor_kernel *k, fusor_args *a,
                                      sched_spec *spec, fusor_array **arrays,
                                      const ir_value *slots, uint64_t *gen);
fusor_status sched_staged_seq_issue(sched_staged_cache *c, const char *kname, sched_spec *spec,
                                    cudrv_stream s);
cudrv_result sched_staged_seq_upload(sched_staged_cache *c, fusor_kernel *k, fusor_args *a,
                                     sched_spec *spec, fusor_array **arrays,
                                     const ir_value *slots, cudrv_stream s);
fusor_status sched_staged_seq_finish(sched_staged_cache *c, sched_spec *spec,
                                     fusor_array **arrays, const ir_value *slots, ir_value *outs,
                                     int failed, int *threads);

typedef enum sched_staged_mode {
    SCHED_STAGED_FUSED,     /* each stage one kernel */
    SCHED_STAGED_REFERENCE, /* the interpreter */
    SCHED_STAGED_UNFUSED    /* each stage an operation per pass, on the host (unfused.h) */
} sched_staged_mode;

/* Runs the prepared launch where its placement says (a->placement): the stages on a GPU
 * (gpuaxis.h; *ran_gpu set) when the target is the GPU or some array lives in GPU memory,
 * else on the host threads; with SCHED_STAGED_REFERENCE the interpreter, and with
 * SCHED_STAGED_UNFUSED always the host.  Outputs the launch
 * allocated (allocated[i]; NULL: none may change) move to the GPU when every input lives
 * there.  slots[i] holds scalar parameter i; outs receives the scalar outputs.  `cache`
 * NULL: buffers for this launch only; else *cache (made on first use) is reused. */
fusor_status sched_staged_run(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                              fusor_array **arrays, int *allocated, const ir_value *slots,
                              ir_value *outs, sched_staged_mode mode, int *threads, int *ran_gpu,
                              sched_staged_cache **cache);

#endif
