/*
 * unfused.h — running a specialisation one operation per pass (fusor_launch_unfused).
 */
#ifndef FUSOR_UNFUSED_H
#define FUSOR_UNFUSED_H

#include "domain.h"
#include "scheduler.h"

/* The specialisation's one-operation kernels, compiled on first use and kept on it. */
fusor_status sched_unfused_get(sched_spec *s, const cg_options *o, sched_unfused **out);
void sched_unfused_free(sched_unfused *u);
/* Runs them over a prepared domain (launch.c's), writing outputs like host_run. */
fusor_status sched_unfused_run(sched_unfused *u, const ir_kernel *big, const ir_domain *d,
                               const ir_value *slots, ir_value *outs, int nthreads, int *used);

#endif
