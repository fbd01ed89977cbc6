/*
 * placement.h — where a launch runs: the CPU or a GPU, and why.
 *
 * A pure function of what the launcher knows (the context's target, whether a GPU is
 * usable, where each array lives and how big it is, the work per element, the machine's
 * rates), so every rule is unit-tested without a GPU (tests/unit/test_cuda_placement.c).
 *
 *   target CPU   the CPU; an array in device memory is an error (the CPU cannot read it)
 *   target GPU   the GPU the arrays live on (else device 0); no usable GPU is an error
 *   target AUTO  no usable GPU: the CPU, with the driver's reason.  An array in device
 *                memory: that GPU.  Arrays on two GPUs: an error.  Otherwise a cost model:
 *                  cpu = max(bytes / cpu bandwidth, elements * ops / cpu rate)
 *                  gpu = overhead + copied bytes / link bandwidth
 *                        + max(bytes / gpu bandwidth, elements * ops / gpu rate)
 *                where host and pinned arrays are copied (in, and out for outputs) and
 *                managed ones are not; the GPU runs when gpu < cpu.
 */
#ifndef FUSOR_SCHED_PLACEMENT_H
#define FUSOR_SCHED_PLACEMENT_H

#include <stdint.h>

#include "fusor.h"

typedef struct sched_place_array {
    const char *name;
    fusor_memory memory;
    int device; /* for DEVICE and MANAGED */
    int64_t bytes;
    int is_input, is_output; /* both for an in-place update */
} sched_place_array;

/* The reason of a launch that runs on the host whatever the target. */
#define SCHED_HOST_ONLY "the reference and unfused launches run on the host"

typedef struct sched_place_query {
    fusor_target target;
    /* Why the launch runs on the host whatever the target (the reference and unfused
     * launches), or NULL; target is then CPU. */
    const char *host_only;
    int gpu_usable;
    const char *gpu_reason; /* why not, when !gpu_usable */
    int default_device;
    int narrays;
    const sched_place_array *arrays;
    int64_t elements;
    double ops_per_element;
    double cpu_bytes_per_s, cpu_ops_per_s;
    double link_bytes_per_s, gpu_bytes_per_s, gpu_ops_per_s, gpu_overhead_s;
} sched_place_query;

typedef struct sched_place_result {
    fusor_status status; /* FUSOR_OK, or the error to return (message in reason) */
    fusor_target where;  /* FUSOR_TARGET_CPU or FUSOR_TARGET_GPU */
    int device;          /* -1 on the CPU */
    double copy_bytes;   /* host<->GPU bytes a GPU run copies */
    double cpu_s, gpu_s; /* the model's estimates (0 when not used) */
    char reason[256];
} sched_place_result;

void sched_place(const sched_place_query *q, sched_place_result *r);

/* The model's work per element of a kernel's VARYING nodes: 1 for simple arithmetic, 4
 * for division and square roots, 20 for the transcendental functions. */
struct ir_kernel;
double sched_ops_per_element(const struct ir_kernel *k);

#endif
