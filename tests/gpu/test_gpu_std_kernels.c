/*
 * test_gpu_std_kernels.c — every standard kernel (every .fu file of kernels/std) on the GPU,
 * against the reference interpreter and the independent known values of
 * tests/e2e/test_std_kernels.c (included whole, its main renamed), with its context's
 * target set to the GPU.
 */
#include "fusor.h"
#include "gpu_skip.h"

#define fusor_context_create(o, out) gpu_context_create(o, out)
#define main                         std_kernels_main
#include "../e2e/test_std_kernels.c"
#undef main

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_std_kernels"))
        return GPU_SKIP_CODE;
    return std_kernels_main();
}
