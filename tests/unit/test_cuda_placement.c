/*
 * test_cuda_placement.c — the placement decision (scheduler/placement.c), a pure
 * function: device present or absent, each target, array locations (host, pinned,
 * device, managed, two devices), sizes against the cost model, and the work estimate
 * of a kernel.
 */
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "placement.h"
#include "scheduler.h"

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* A machine: 20 GB/s CPU, 12 GB/s link, 3 TB/s GPU, 50 us overhead. */
static sched_place_query machine(fusor_target t, int usable, int n, const sched_place_array *a,
                                 int64_t elements) {
    sched_place_query q = {.target = t,
                           .gpu_usable = usable,
                           .gpu_reason = "no CUDA driver (libcuda.so.1: cannot open shared "
                                         "object file)",
                           .narrays = n,
                           .arrays = a,
                           .elements = elements,
                           .ops_per_element = 2,
                           .cpu_bytes_per_s = 20e9,
                           .cpu_ops_per_s = 16e9,
                           .link_bytes_per_s = 12e9,
                           .gpu_bytes_per_s = 3e12,
                           .gpu_ops_per_s = 60e12,
                           .gpu_overhead_s = 50e-6};
    return q;
}

static sched_place_array arr(const char *name, fusor_memory m, int dev, int64_t bytes, int in,
                             int out) {
    return (sched_place_array){name, m, dev, bytes, in, out};
}

static void test_rules(void) {
    sched_place_result r;
    int64_t MB = 1000000;
    sched_place_array host3[3] = {arr("x", FUSOR_MEMORY_HOST, -1, 8 * MB, 1, 0),
                                  arr("y", FUSOR_MEMORY_HOST, -1, 8 * MB, 1, 0),
                                  arr("z", FUSOR_MEMORY_HOST, -1, 8 * MB, 0, 1)};
    /* No GPU: AUTO runs on the CPU with the driver's reason; GPU is an error. */
    sched_place_query q = machine(FUSOR_TARGET_AUTO, 0, 3, host3, MB);
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_OK && r.where == FUSOR_TARGET_CPU && r.device == -1);
    CHECK(contains(r.reason, "no CUDA driver") && contains(r.reason, "running on the CPU"));
    q.target = FUSOR_TARGET_GPU;
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_ERROR_NO_DEVICE &&
          contains(r.reason, "the GPU target was requested, but no CUDA driver"));
    q.target = FUSOR_TARGET_CPU;
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_OK && r.where == FUSOR_TARGET_CPU &&
          contains(r.reason, "CPU target was requested"));

    /* A GPU: the targets are obeyed. */
    q = machine(FUSOR_TARGET_GPU, 1, 3, host3, MB);
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_GPU && r.device == 0 && r.copy_bytes == 24e6);
    q.target = FUSOR_TARGET_CPU;
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_CPU && r.status == FUSOR_OK);

    /* AUTO, host arrays, memory-bound: copying 24 MB over a 12 GB/s link (2 ms) never
     * beats reading them at 20 GB/s (1.2 ms). */
    q = machine(FUSOR_TARGET_AUTO, 1, 3, host3, MB);
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_CPU && r.cpu_s > 0 && r.gpu_s > r.cpu_s);
    CHECK_MSG(contains(r.reason, "too small to pay for copying 24.0 MB to GPU 0"), "%s", r.reason);
    /* Heavy math per element (transcendentals): the copy pays for itself. */
    q.ops_per_element = 200;
    sched_place(&q, &r);
    CHECK_MSG(r.where == FUSOR_TARGET_GPU && contains(r.reason, "pays off"), "%s", r.reason);
    CHECK(r.copy_bytes == 24e6);
    /* ... but not for a handful of elements: the launch overhead dominates. */
    sched_place_array tiny[2] = {arr("x", FUSOR_MEMORY_HOST, -1, 80, 1, 0),
                                 arr("z", FUSOR_MEMORY_HOST, -1, 80, 0, 1)};
    q = machine(FUSOR_TARGET_AUTO, 1, 2, tiny, 10);
    q.ops_per_element = 200;
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_CPU);
    /* A bigger array of the same kernel moves to the GPU: size decides. */
    sched_place_array big[2] = {arr("x", FUSOR_MEMORY_HOST, -1, 800 * MB, 1, 0),
                                arr("z", FUSOR_MEMORY_HOST, -1, 800 * MB, 0, 1)};
    q = machine(FUSOR_TARGET_AUTO, 1, 2, big, 100 * MB);
    q.ops_per_element = 200;
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_GPU);

    /* An in-place array is copied both ways; pinned memory is copied like host memory. */
    sched_place_array inplace[1] = {arr("x", FUSOR_MEMORY_PINNED, -1, 8 * MB, 1, 1)};
    q = machine(FUSOR_TARGET_GPU, 1, 1, inplace, MB);
    sched_place(&q, &r);
    CHECK(r.copy_bytes == 16e6);

    /* Arrays on a device: that device, whatever the sizes. */
    sched_place_array dev1[3] = {arr("x", FUSOR_MEMORY_DEVICE, 1, 8, 1, 0),
                                 arr("y", FUSOR_MEMORY_HOST, -1, 8, 1, 0),
                                 arr("z", FUSOR_MEMORY_HOST, -1, 8, 0, 1)};
    q = machine(FUSOR_TARGET_AUTO, 1, 3, dev1, 1);
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_GPU && r.device == 1 &&
          contains(r.reason, "array 'x' lives on GPU 1"));
    q.target = FUSOR_TARGET_GPU;
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_GPU && r.device == 1);
    q.target = FUSOR_TARGET_CPU;
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_ERROR_UNSUPPORTED &&
          contains(r.reason, "the CPU target cannot read array 'x': it lives on GPU 1"));
    q = machine(FUSOR_TARGET_AUTO, 0, 3, dev1, 1); /* device memory, but no usable GPU */
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_ERROR_NO_DEVICE && contains(r.reason, "lives on GPU 1"));
    /* Two devices. */
    sched_place_array two[2] = {arr("x", FUSOR_MEMORY_DEVICE, 0, 8, 1, 0),
                                arr("y", FUSOR_MEMORY_DEVICE, 1, 8, 0, 1)};
    q = machine(FUSOR_TARGET_AUTO, 1, 2, two, 1);
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_ERROR_UNSUPPORTED &&
          contains(r.reason, "'x' (GPU 0) and 'y' (GPU 1) live on different GPUs"));

    /* Managed memory: no copy; the model decides on compute alone. */
    sched_place_array man[2] = {arr("x", FUSOR_MEMORY_MANAGED, 0, 800 * MB, 1, 0),
                                arr("z", FUSOR_MEMORY_MANAGED, 0, 800 * MB, 0, 1)};
    q = machine(FUSOR_TARGET_AUTO, 1, 2, man, 100 * MB);
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_GPU && r.copy_bytes == 0 && contains(r.reason, "managed"));
    q.gpu_bytes_per_s = 1e9; /* a slow GPU */
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_CPU && contains(r.reason, "the CPU is faster"));
    /* Managed memory without a usable GPU is host memory. */
    q = machine(FUSOR_TARGET_AUTO, 0, 2, man, 100 * MB);
    sched_place(&q, &r);
    CHECK(r.status == FUSOR_OK && r.where == FUSOR_TARGET_CPU);
    /* No arrays (a scalar kernel): the CPU under AUTO. */
    q = machine(FUSOR_TARGET_AUTO, 1, 0, NULL, 1);
    sched_place(&q, &r);
    CHECK(r.where == FUSOR_TARGET_CPU);
}

static void test_work_estimate(void) {
    fusor_context *c;
    REQUIRE_VOID(fusor_context_create(NULL, &c) == FUSOR_OK);
    fusor_kernel *k;
    CHECK_OK(fusor_kernel_compile(
        c, "kernel f(a: f64[], b: f64[]) -> (z: f64[]) { z = sin(a) * b + 1 }", "f.fu", NULL, &k));
    CHECK(sched_ops_per_element(k->spec->ir) == 22); /* sin 20, mul 1, add 1 */
    fusor_kernel *k2;
    CHECK_OK(fusor_kernel_compile(c, "kernel g(a: f64[], b: f64[]) -> (z: f64[]) { z = a / b }",
                                  "g.fu", NULL, &k2));
    CHECK(sched_ops_per_element(k2->spec->ir) == 4);
    fusor_kernel_destroy(k);
    fusor_kernel_destroy(k2);
    fusor_context_destroy(c);
}

int main(void) {
    test_rules();
    test_work_estimate();
    return check_done();
}
