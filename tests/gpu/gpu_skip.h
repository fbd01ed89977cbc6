/*
 * gpu_skip.h — what every tests/gpu test does first: without a usable GPU it says why
 * and exits 77, which CTest reports as skipped (SKIP_RETURN_CODE, tests/CMakeLists.txt);
 * with one, it prints the device it runs on.
 */
#ifndef FUSOR_TEST_GPU_SKIP_H
#define FUSOR_TEST_GPU_SKIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusor.h"

#define GPU_SKIP_CODE 77

static int gpu_skip_unless_usable(const char *test) {
    if (fusor_gpu_status() != FUSOR_OK) {
        printf("SKIP: %s needs a GPU: %s\n", test, fusor_last_error());
        fflush(stdout);
        return 1;
    }
    char *info = NULL;
    if (fusor_runtime_info(&info) == FUSOR_OK) {
        const char *cuda = strstr(info, "CUDA driver:");
        printf("%s: %s", test, cuda ? cuda : info);
    }
    fusor_free(info);
    return 0;
}

/* Contexts made by an included test run their kernels on the GPU. */
static inline fusor_status gpu_context_create(const fusor_context_options *o, fusor_context **out) {
    fusor_context_options g = {0};
    if (o)
        g = *o;
    g.target = FUSOR_TARGET_GPU;
    return (fusor_context_create)(&g, out);
}

#endif
