/*
 * pool.h — the CPU side of a launch: an OpenMP team placed with hwloc.
 *
 * The default team is one thread per physical core among the CPUs this process may use
 * (affinity mask and cgroup CPU quota), or FUSOR_NUM_THREADS.  The count may change
 * between any two launches.  Workers are bound compactly, one per core.
 */
#ifndef FUSOR_POOL_H
#define FUSOR_POOL_H

#include "fusor.h"

int host_default_threads(void);
int host_get_threads(void);
fusor_status host_set_threads(int n); /* 0 restores the default */

/* Runs fn(ctx, tid, nthreads) for tid in [0, nthreads) and returns when all are done.
 * nthreads == 1 runs on the calling thread with no fork/join. */
void host_parallel(int nthreads, void (*fn)(void *ctx, int tid, int nthreads), void *ctx);

/* A description of the topology for `fusor info` (fu_malloc'd). */
char *host_describe(void);

#endif
