/*
 * gpuprep.h — the GPU side of prepared launches (gpuprep.c): placement decided once,
 * device-resident steps replayed as CUDA Graphs.
 */
#ifndef FUSOR_SCHED_GPUPREP_H
#define FUSOR_SCHED_GPUPREP_H

#include "domain.h"
#include "scheduler.h"

typedef struct sched_gpu_prep sched_gpu_prep;

/* The hook of a prepared launch's step, in place of sched_gpu_launch: *state starts NULL
 * and is kept by the prepared launch.  Sets *ran_gpu when the step ran on a GPU; else the
 * caller runs it on the host.  Prepared outputs are never replaced. */
fusor_status sched_gpu_prep_run(sched_gpu_prep **state, fusor_kernel *k, fusor_args *a,
                                sched_spec *spec, ir_domain *dom, fusor_array **arrays,
                                ir_value *slots, ir_value *outs, int *ran_gpu, int *threads);
void sched_gpu_prep_free(sched_gpu_prep *p);
/* A step of several prepared launches (fusor_sequence) captured whole as one CUDA Graph
 * per arrangement of their arrays. */
#define SCHED_SEQ_MAX 32
typedef struct sched_gpu_seq sched_gpu_seq;
/* A member's bound step: an ordinary prepared launch's GPU state (prep), or, for a kernel
 * with axis reductions, its stages' state (staged.c) and what the step binds. */
struct sched_staged_cache;
typedef struct sched_seq_member {
    sched_gpu_prep *prep;
    struct sched_staged_cache *staged;
    fusor_kernel *k;
    fusor_args *a;
    sched_spec *spec;
    fusor_array **arrays;
    ir_value *slots, *outs;
} sched_seq_member;
/* Runs the members' bound steps (their domains point at the binding) as one graph when
 * every member already runs on one GPU with device arrays; sets *handled then, else
 * leaves it 0 and does nothing (the caller runs the members one by one).  *state starts
 * NULL. */
fusor_status sched_gpu_seq_run(sched_gpu_seq **state, fusor_context *ctx, int n,
                               const sched_seq_member *m, int *handled, int *threads);
void sched_gpu_seq_free(sched_gpu_seq *q);
/* Graphs captured and replayed so far (tests). */
void sched_gpu_prep_counts(const sched_gpu_prep *p, long *captures, long *replays);
void sched_gpu_seq_counts(const sched_gpu_seq *q, long *captures, long *replays);

#endif
