/*
 * gpuaxis.c — kernels with axis reductions on a GPU (see gpuaxis.h).
 */
#include "gpuaxis.h"

#include <string.h>

#include "gpu.h"

void sched_gpu_axis_shape(int64_t nresults, int64_t len, int innermost, int max_block,
                          int block_override, int grid_override, int *block, int *grid,
                          int *per_block) {
    int limit = max_block >= 32 && max_block < CG_GPU_MAX_BLOCK ? max_block : CG_GPU_MAX_BLOCK;
    *per_block = len >= 64 && (innermost || nresults < 4096);
    int b;
    if (block_override > 0) {
        b = block_override > limit ? limit : block_override;
    } else if (*per_block) { /* enough threads for the axis, at most 256 */
        int64_t want = (len + 31) / 32 * 32;
        b = want > 256 ? 256 : (int)want;
    } else {
        b = 256;
    }
    if (*per_block)
        b = b >= 32 ? b / 32 * 32 : 32;
    if (b > limit)
        b = limit / 32 * 32;
    if (b < 1)
        b = 1;
    int64_t g = *per_block ? nresults : (nresults + b - 1) / b;
    if (g > 65536) /* the kernels stride over the rest */
        g = 65536;
    if (grid_override > 0)
        g = grid_override;
    *block = b;
    *grid = g < 1 ? 1 : (int)g;
}

static void put64(unsigned char *img, size_t off, uint64_t v) { memcpy(img + off, &v, 8); }

void sched_gpu_axis_params(const ir_domain *d, int axis, uint64_t dslots, unsigned char *img) {
    int n = d->narrays, rd = 0;
    memset(img, 0, CG_GPU_AXIS_PARAMS_SIZE(n));
    int64_t nres = 1;
    for (int x = 0; x < d->ndim; x++) {
        if (x == axis)
            continue;
        put64(img, CG_GPU_OFF_SHAPE + 8 * (size_t)rd, (uint64_t)d->shape[x]);
        for (int i = 0; i < n; i++)
            if (d->base[i])
                put64(img, CG_GPU_OFF_STRIDES + 8 * ((size_t)i * 8 + (size_t)rd),
                      (uint64_t)d->strides[i][x]);
        nres *= d->shape[x];
        rd++;
    }
    if (rd == 0) /* a 0-d result: one element */
        put64(img, CG_GPU_OFF_SHAPE, 1);
    put64(img, CG_GPU_OFF_N, (uint64_t)nres);
    put64(img, CG_GPU_OFF_SLOTS, dslots);
    put64(img, CG_GPU_OFF_NDIM, (uint64_t)(rd ? rd : 1));
    put64(img, CG_GPU_OFF_AXLEN(n), (uint64_t)d->shape[axis]);
    for (int i = 0; i < n; i++) {
        put64(img, CG_GPU_OFF_ARRAYS(n) + 8 * (size_t)i, (uint64_t)(uintptr_t)d->base[i]);
        if (d->base[i])
            put64(img, CG_GPU_OFF_AXSTRIDES(n) + 8 * (size_t)i, (uint64_t)d->strides[i][axis]);
    }
}
