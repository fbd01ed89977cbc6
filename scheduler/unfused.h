/*
 * unfused.h — running a specialisation one operation per pass (fusor_launch_unfused).
 */
#ifndef FUSOR_UNFUSED_H
#define FUSOR_UNFUSED_H

#include "domain.h"
#include "run.h"
#include "scheduler.h"

/* The specialisation's one-operation kernels, compiled on first use and kept on it. */
fusor_status sched_unfused_get(sched_spec *s, const cg_options *o, sched_unfused **out);
void sched_unfused_free(sched_unfused *u);
/* Runs them over a prepared domain (launch.c's), writing outputs like host_run: a
 * kernel without axis reductions (stencils included). */
fusor_status sched_unfused_run(sched_unfused *u, const ir_kernel *big, const ir_domain *d,
                               const ir_value *slots, ir_value *outs, int nthreads, int *used);
/* Stage si (AXIS or STORE; kernel sk) of a kernel with axis reductions, over the domain
 * and slots staged.c binds it to: an AXIS stage's results go where host_run_axis would
 * put them (out, out_strides, along `axis`; scratch as there). */
fusor_status sched_unfused_run_stage(sched_unfused *u, int si, const ir_kernel *sk,
                                     const ir_domain *d, const ir_value *sslots, int axis,
                                     char *out, const int64_t *out_strides, int nthreads, int *used,
                                     host_scratch *scratch);

#endif
