/*
 * array.h — what a fusor_array is: dtype, shape, byte strides, where the bytes live and
 * who owns them.  Reference counted; wrapping caller memory costs one small allocation
 * and copies nothing.
 */
#ifndef FUSOR_ARRAY_H
#define FUSOR_ARRAY_H

#include <stdint.h>

#include "fusor.h"

struct fusor_array {
    int refcount; /* atomic */
    fusor_dtype dtype;
    int ndim;
    int64_t shape[FUSOR_MAX_DIMS];
    int64_t strides[FUSOR_MAX_DIMS]; /* bytes */
    char *data;
    void *owned; /* memory fusor allocated (freed with the array), or NULL */
    /* Where the bytes live (devarray.c): host unless made by fusor_array_create_on or
     * fusor_array_wrap_device.  `release` frees non-host owned memory, not the header
     * (NULL: owned is fu_aligned_alloc'd host memory). */
    fusor_memory memory;
    int device; /* GPU ordinal for device and managed memory, else -1 */
    size_t owned_bytes;
    void (*release)(struct fusor_array *a);
};

/* An owned, C-ordered, 64-byte aligned array (no context needed). */
fusor_status mem_array_new(fusor_dtype dtype, int ndim, const int64_t *shape, fusor_array **out);
/* Checks a shape (non-negative extents, ndim within limits, no overflow of the element
 * count or byte size) and returns the element count in *size.  `what` names the array
 * in error messages. */
fusor_status mem_check_shape(const char *what, fusor_dtype dtype, int ndim, const int64_t *shape,
                             int64_t *size);
int mem_array_is_c_contiguous(const fusor_array *a);
/* The byte range [lo, hi) that the array's elements occupy (lo == hi when empty). */
void mem_array_extent(const fusor_array *a, const char **lo, const char **hi);

#endif
