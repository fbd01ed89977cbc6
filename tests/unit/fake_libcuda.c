/*
 * fake_libcuda.c — tests/unit/fake_cuda.h as a shared library with the driver's exported
 * names, for tests that run whole programs (the `fusor` command) against the fake driver
 * through FUSOR_CUDA_LIBRARY: the control flow of GPU paths without a GPU.  Its numbers
 * mean nothing (kernels do not run).
 */
#include "fake_cuda.h"

#define EXPORT __attribute__((visibility("default")))

__attribute__((constructor)) static void fake_init(void) { fake_reset(); }

/* fusor resolves everything else through cuGetProcAddress_v2 (the fake's table). */
EXPORT cudrv_result cuGetProcAddress_v2(const char *name, void **pfn, int version,
                                        unsigned long long flags, int *status) {
    return f_get_proc_v2(name, pfn, version, flags, status);
}

EXPORT cudrv_result cuDriverGetVersion(int *v) {
    return ((cudrv_result(*)(int *))fake_lookup("cuDriverGetVersion"))(v);
}

EXPORT cudrv_result cuInit(unsigned f) {
    return ((cudrv_result(*)(unsigned))fake_lookup("cuInit"))(f);
}
