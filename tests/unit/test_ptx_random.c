/*
 * test_ptx_random.c — random programs compiled by the LLVM NVPTX path for sm_80 and sm_90,
 * every PTX assembled by ptxas (see test_ptx_random.h).
 */
#include "test_ptx_random.h"

int main(void) {
    REQUIRE(cg_nvptx_available());
    return ptx_random(FUSOR_GPU_PATH_NVPTX, 200);
}
