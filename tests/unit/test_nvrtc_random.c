/*
 * test_nvrtc_random.c — random programs printed as CUDA C and compiled by NVRTC, every PTX
 * assembled by ptxas for sm_80 and sm_90 (see test_ptx_random.h).  Without NVRTC the
 * test says SKIP and passes.
 */
#include "test_ptx_random.h"

int main(void) {
    if (cg_nvrtc_available() != FUSOR_OK) {
        printf("SKIP: %s\n", fusor_last_error());
        return check_done();
    }
    return ptx_random(FUSOR_GPU_PATH_NVRTC, 100);
}
