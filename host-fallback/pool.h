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

/* The STREAM-style copy probe (bandwidth.c): bytes read plus written per second by
 * nthreads threads copying arrays much larger than the caches, best of several runs. */
fusor_status host_measure_copy_bandwidth(int nthreads, double *bytes_per_second);

/* A description of the topology for `fusor info` (fu_malloc'd). */
char *host_describe(void);

/* The most threads a team may have (fusor_set_num_threads and FUSOR_NUM_THREADS). */
#define HOST_MAX_THREADS 1024

/* Pieces of the default thread count, exposed so tests can feed them their own text and
 * files.  Each returns 0 for "no value / no limit"; none reports an error. */
/* A FUSOR_NUM_THREADS value: a decimal integer in [1, HOST_MAX_THREADS], else 0. */
int host_parse_num_threads(const char *text);
/* A cgroup v2 cpu.max file ("max 100000", "200000 100000"): ceil(quota / period). */
int host_cgroup_v2_cpus(const char *cpu_max_path);
/* A cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us pair (quota -1 is no limit). */
int host_cgroup_v1_cpus(const char *quota_path, const char *period_path);
/* The CPU limit of the process: its cgroup from `proc_cgroup` (/proc/self/cgroup) under
 * the hierarchy mounted at `root` (/sys/fs/cgroup), the smallest limit on the path from
 * that cgroup up to the root. */
int host_cgroup_cpus(const char *proc_cgroup, const char *root);

#endif
