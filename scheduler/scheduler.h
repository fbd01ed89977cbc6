/*
 * scheduler.h — choosing where and how a kernel runs, and the objects behind the public
 * handles (context, kernel, argument set).
 *
 * A launch is prepared (arguments resolved, dtypes and shapes checked, the domain
 * broadcast, aliasing checked, outputs allocated — in that order, nothing written before
 * all checks pass) and then executed by a back end: the host pool, or the reference
 * interpreter for tests.
 */
#ifndef FUSOR_SCHED_H
#define FUSOR_SCHED_H

#include <pthread.h>

#include "arena.h"
#include "codegen.h"
#include "domain.h"
#include "frontend.h"
#include "ir.h"

typedef struct sched_unfused sched_unfused;

/* One compiled specialisation of a kernel: its IR, plan and machine code. */
typedef struct sched_spec {
    arena arena; /* owns ir and plan */
    ir_kernel *ir;
    ir_plan *plan;
    cg_compiled *code;
    unsigned char *key;
    size_t keylen;
    uint64_t hash;
    struct sched_spec *next; /* in the context's cache */
    struct cg_gpu_cache *gpu_cache; /* PTX by arch, path and flags (gpucode.c) */
    sched_unfused *unfused;  /* fusor_launch_unfused's kernels, made on first use */
    /* A kernel with axis reductions runs as stages (kernels/stage.h, staged.c), each with
     * its own machine code; `code` is NULL then. */
    struct ir_staging *staging;
    cg_compiled **stage_code; /* [staging->nstages] */
    cg_compiled **stage_map_code; /* [staging->nstages]: AXIS stages' map kernels */
    /* [staging->nstages]: each stage as a specialisation of its own for GPU code (ir,
     * plan, gpu_cache, and key: the kernel's with "|stage N", for the disk cache) */
    struct sched_spec *stage_gpu;
} sched_spec;

struct fusor_context {
    fusor_target target;
    int opt_level;
    int refcount; /* atomic: the context and each kernel hold one */
    pthread_mutex_t lock;
    sched_spec *specs; /* the in-memory kernel cache */
    long compiles;     /* how many times codegen ran (tests check compile-once) */
    fusor_math math;   /* how math functions are compiled (fusor_context_options.math) */
    int disk_cache;    /* 1: the persistent kernel cache is used (diskcache.c) */
    struct sched_front *front; /* compiled sources by text, checked before parsing */
    fusor_gpu_options gpu; /* fusor_context_set_gpu_options (under lock) */
    struct sched_ctx_gpu *gpu_state; /* the default stream (gpurun.c), made on first use */
    int gpu_device; /* fusor_context_set_device + 1; 0: FUSOR_DEVICE, else GPU 0 */
};

/* The GPU a launch of host arrays runs on: fusor_context_set_device's, else
 * $FUSOR_DEVICE, else 0. */
int sched_context_device(const fusor_context *c);

/* A generic kernel's specialisations, keyed by what its inputs were bound to. */
typedef struct sched_variant {
    char *signature;
    sched_spec *spec;
    struct sched_variant *next;
} sched_variant;

struct fusor_kernel {
    fusor_context *ctx;
    arena arena; /* owns the program (AST) and the parameter table */
    fe_program *prog;
    int index;
    const char *name;
    int generic;
    int ninputs, noutputs;
    fusor_param_info *params; /* inputs, then outputs */
    sched_spec *spec;         /* non-generic kernels */
    pthread_mutex_t lock;     /* guards variants */
    sched_variant *variants;
    int refcount;               /* atomic: a compile of the same source returns this handle */
    struct sched_front *front;  /* its entry in the context's front cache, or NULL */
};

typedef enum sched_arg_kind { ARG_NONE = 0, ARG_ARRAY, ARG_SCALAR, ARG_LITERAL } sched_arg_kind;

typedef struct sched_arg {
    sched_arg_kind kind;
    fusor_array *array; /* a reference held by the argument set */
    fusor_dtype dtype;  /* ARG_SCALAR */
    ir_value value;     /* ARG_SCALAR, canonical */
    char *literal;      /* ARG_LITERAL */
} sched_arg;

struct fusor_args {
    fusor_kernel *k;
    int n;                   /* ninputs + noutputs */
    sched_arg *items;        /* by parameter index */
    fusor_array **results;   /* array outputs of the last launch (bound or allocated) */
    ir_value *scalar_results; /* scalar outputs of the last launch */
    fusor_dtype *scalar_dtypes;
    int have_results;
    const char *last_target;
    int last_threads;
    fusor_placement placement; /* where the last launch ran and why (gpurun.c) */
    int gpu_block, gpu_grid;   /* fusor_args_set_gpu_shape; 0: automatic */
    void *scratch; /* launch.c's preparation space, kept between launches (not per launch) */
};

void sched_args_clear_results(fusor_args *a);
/* Records the scalar outputs of a launch of ir (outs[j] for output j; array outputs'
 * entries are ignored) as the argument set's results. */
void sched_args_put_scalars(fusor_args *a, const ir_kernel *ir, const ir_value *outs);
/* CUDA Graphs a prepared launch captured and replayed (tests; gpuprep.c). */
void sched_prepared_gpu_counts(const fusor_prepared *p, long *captures, long *replays);
void sched_sequence_gpu_counts(const fusor_sequence *q, long *captures, long *replays);
/* Runs the launch on the reference interpreter instead of compiled code (tests). */
fusor_status sched_launch_reference(fusor_kernel *k, fusor_args *a);
/* The specialisation for these bindings of a generic kernel's inputs (compiled on first
 * use, then cached), or the kernel's one specialisation when it is not generic. */
fusor_status sched_specialize(fusor_kernel *k, const fe_binding *bindings, sched_spec **out);
/* How many times this context ran code generation. */
long sched_compile_count(fusor_context *ctx);
/* The kernel's GPU code under the context's GPU options (compiled once, cached), and
 * fusor_kernel_emit's FUSOR_EMIT_PTX and FUSOR_EMIT_CUDA (gpucode.c). */
struct cg_gpu_code;
fusor_status sched_gpu_code(fusor_kernel *k, const struct cg_gpu_code **out);
fusor_status sched_gpu_emit(fusor_kernel *k, fusor_emit what, char **text);
/* A specialisation's GPU code under options `o` (arch resolved): from its in-memory
 * cache, else the disk cache when the context uses it, else compiled (and stored). */
fusor_status sched_spec_gpu_code(fusor_context *c, sched_spec *s, const fusor_gpu_options *o,
                                 const struct cg_gpu_code **out);

#endif
