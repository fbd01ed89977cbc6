/*
 * codegen.h — IR to machine code for the host CPU through LLVM (C API, ORC LLJIT).
 *
 * Each pass of a plan becomes two row functions: a contiguous one (every array's inner
 * stride equals its element size; the loop vectorises) and a strided one (any strides).
 * A row function processes n elements of one row of the domain; the host pool calls it
 * for each row (or part of a row) of its share, n at most 2^30 (host runners take blocks
 * of HOST_BLOCK: an f32 min/max orders its zeros by a 32-bit index within the call).  A
 * finish function computes the scalar outputs from the launch slots once all passes are
 * done.
 *
 *   ptrs[i]    address of the row's first element of array i (indexing as in ir_plan;
 *              stencil load v is array nparams + noutputs + v, see ir_stencil_loads)
 *   strides[i] byte stride of array i along the row
 *   slots      launch slots (ir.h): scalar parameters, COUNT, reduction results
 *   acc        this pass's accumulators, canonical ir_value each; the function folds the
 *              row into them (acc[r] = combine(acc[r], reduce over the row))
 */
#ifndef FUSOR_CODEGEN_H
#define FUSOR_CODEGEN_H

#include <stdint.h>

#include "ir.h"

typedef void (*cg_pass_fn)(char *const *ptrs, const int64_t *strides, int64_t n,
                           const ir_value *slots, ir_value *acc);
typedef void (*cg_finish_fn)(const ir_value *slots, ir_value *outs);

typedef struct cg_options {
    int opt_level; /* 0..3 */
    int math;      /* fusor_math: which vector math library calls are mapped to */
} cg_options;

typedef struct cg_compiled {
    int npasses;
    cg_pass_fn *contig;  /* [npasses] */
    cg_pass_fn *strided; /* [npasses] */
    /* [npasses]: the same without the zero tag of float min/max (emit.h's CG_CONTIG_NT:
     * a zero result's sign is unsettled, the runner then uses the two above), or NULL */
    cg_pass_fn *contig_nt, *strided_nt;
    cg_finish_fn finish; /* NULL when the kernel has no scalar outputs */
    void *jit;           /* owned by codegen */
} cg_compiled;

/* Compiles for the host.  Thread-safe. */
fusor_status cg_host_compile(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                             cg_compiled **out);
void cg_compiled_free(cg_compiled *c);
/* The same, also giving the object code (fu_malloc'd) in a form any process can load with
 * cg_host_load_object: the persistent kernel cache.  *object stays NULL when no such copy
 * could be made. */
fusor_status cg_host_compile_object(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                                    cg_compiled **out, void **object, size_t *size);
/* Links object code from cg_host_compile_object, skipping LLVM's optimisation and code
 * generation (its cg_host_last_timing has only link_ms and total_ms). */
fusor_status cg_host_load_object(const ir_kernel *k, const ir_plan *plan, const void *object,
                                 size_t size, cg_compiled **out);
/* Optimised LLVM IR (FUSOR_EMIT_LLVM) or host assembly (FUSOR_EMIT_ASM) as text. */
fusor_status cg_host_emit(const ir_kernel *k, const ir_plan *plan, const cg_options *o,
                          fusor_emit what, char **text);

/* Phase times of this thread's last host compilation in ms (benchmarks, `fusor info`):
 * building the LLVM IR, the optimisation pipeline, machine code, JIT linking. */
typedef struct cg_timing {
    double emit_ms, opt_ms, codegen_ms, link_ms, total_ms;
} cg_timing;
void cg_host_last_timing(cg_timing *out);

/* What the compiled code depends on besides the IR and options: LLVM version, host CPU
 * and features, and the vector math library `math` uses here (for persistent cache keys;
 * fu_malloc'd). */
char *cg_host_cache_tag(const cg_options *o);

/* Facts for `fusor info`: LLVM version, host CPU name and features (fu_malloc'd). */
char *cg_host_describe(void);

#endif
