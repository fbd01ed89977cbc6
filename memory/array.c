/*
 * array.c — fusor_array: validation, creation, wrapping, reference counting and the
 * layout queries other modules use for broadcasting and alias checks.
 *
 * The refcount is a plain int in struct fusor_array (memory/array.h), so it is updated
 * with the compiler's __atomic builtins, which follow the C11 memory model exactly.
 */
#include "array.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "npy.h"

void mem_format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && used < n; d++)
        used +=
            (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < n) snprintf(buf + used, n - used, ndim == 1 ? ",)" : ")");
}

fusor_status mem_check_shape(const char *what, fusor_dtype dtype, int ndim, const int64_t *shape,
                             int64_t *size) {
    size_t item = fusor_dtype_size(dtype);
    if (item == 0)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: dtype %d is not a valid fusor_dtype",
                        what, (int)dtype);
    if (ndim < 0 || ndim > FUSOR_MAX_DIMS)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: ndim is %d; it must be 0 to %d", what,
                        ndim, FUSOR_MAX_DIMS);
    if (ndim > 0 && !shape)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: shape is NULL but ndim is %d", what,
                        ndim);
    /* As in NumPy, the non-zero extents must not overflow even when another one is zero. */
    int64_t bytes = (int64_t)item;
    int empty = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "%s: shape[%d] is %lld; extents must be ≥ 0", what, d,
                            (long long)shape[d]);
        if (shape[d] == 0) {
            empty = 1;
        } else if (__builtin_mul_overflow(bytes, shape[d], &bytes)) {
            char s[256];
            mem_format_shape(s, sizeof s, ndim, shape);
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "%s: shape %s of %s is too large: its byte size overflows int64", what,
                            s, fusor_dtype_name(dtype));
        }
    }
    if (size) *size = empty ? 0 : bytes / (int64_t)item;
    return FUSOR_OK;
}

/* C-order byte strides; a zero extent counts as one so the strides stay meaningful. */
static void c_strides(fusor_array *a) {
    int64_t s = (int64_t)fusor_dtype_size(a->dtype);
    for (int d = a->ndim - 1; d >= 0; d--) {
        a->strides[d] = s;
        s *= a->shape[d] > 1 ? a->shape[d] : 1;
    }
}

static fusor_array *new_header(fusor_dtype dtype, int ndim, const int64_t *shape) {
    fusor_array *a = fu_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->refcount = 1;
    a->device = -1;
    a->dtype = dtype;
    a->ndim = ndim;
    for (int d = 0; d < ndim; d++) a->shape[d] = shape[d];
    return a;
}

fusor_status mem_array_new(fusor_dtype dtype, int ndim, const int64_t *shape, fusor_array **out) {
    int64_t size;
    fusor_status st = mem_check_shape("fusor_array_create", dtype, ndim, shape, &size);
    if (st != FUSOR_OK) return st;
    fusor_array *a = new_header(dtype, ndim, shape);
    if (!a) return fu_oom("an array header");
    a->owned = fu_aligned_alloc((size_t)size * fusor_dtype_size(dtype));
    if (!a->owned) {
        fu_free(a);
        return fu_oom("array data");
    }
    a->data = a->owned;
    c_strides(a);
    *out = a;
    return FUSOR_OK;
}

/* The element addresses of a wrapped array must be naturally aligned, so that every
 * back end may load them as typed values, and their distance must fit int64. */
static fusor_status check_strides(fusor_dtype dtype, int ndim, const int64_t *shape,
                                  const int64_t *strides, const void *data) {
    int64_t item = (int64_t)fusor_dtype_size(dtype);
    if ((uintptr_t)data % (uintptr_t)item)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_array_wrap: data %p is not aligned to %lld bytes (one %s)", data,
                        (long long)item, fusor_dtype_name(dtype));
    uint64_t span = (uint64_t)item;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 1) continue;
        if (strides[d] % item)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "fusor_array_wrap: strides[%d] is %lld, not a multiple of %lld "
                            "(the size of %s)",
                            d, (long long)strides[d], (long long)item, fusor_dtype_name(dtype));
        uint64_t mag = strides[d] < 0 ? 0 - (uint64_t)strides[d] : (uint64_t)strides[d];
        uint64_t reach;
        if (__builtin_mul_overflow(mag, (uint64_t)(shape[d] - 1), &reach) ||
            __builtin_add_overflow(span, reach, &span) || span > (uint64_t)INT64_MAX)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "fusor_array_wrap: strides[%d] is %lld; the elements would span "
                            "more bytes than int64 can count",
                            d, (long long)strides[d]);
    }
    return FUSOR_OK;
}

fusor_status fusor_array_wrap(fusor_context *ctx, void *data, fusor_dtype dtype, int ndim,
                              const int64_t *shape, const int64_t *strides, fusor_array **out) {
    (void)ctx;
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_wrap: out is NULL");
    *out = NULL;
    int64_t size;
    fusor_status st = mem_check_shape("fusor_array_wrap", dtype, ndim, shape, &size);
    if (st != FUSOR_OK) return st;
    if (!data && size > 0)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_array_wrap: data is NULL but the array has %lld elements",
                        (long long)size);
    if (size > 0 && strides && (st = check_strides(dtype, ndim, shape, strides, data)) != FUSOR_OK)
        return st;
    if (size > 0 && !strides && (st = check_strides(dtype, 0, shape, NULL, data)) != FUSOR_OK)
        return st;
    fusor_array *a = new_header(dtype, ndim, shape);
    if (!a) return fu_oom("an array header");
    a->data = data;
    if (strides)
        for (int d = 0; d < ndim; d++) a->strides[d] = strides[d];
    else
        c_strides(a);
    *out = a;
    return FUSOR_OK;
}

fusor_status fusor_array_create(fusor_context *ctx, fusor_dtype dtype, int ndim,
                                const int64_t *shape, fusor_array **out) {
    (void)ctx;
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_create: out is NULL");
    *out = NULL;
    return mem_array_new(dtype, ndim, shape, out);
}

void fusor_array_retain(fusor_array *a) {
    if (a) __atomic_fetch_add(&a->refcount, 1, __ATOMIC_RELAXED);
}

void fusor_array_destroy(fusor_array *a) {
    /* Release so that this thread's writes happen before the free in whichever thread
     * drops the last reference; acquire in that thread. */
    if (!a || __atomic_sub_fetch(&a->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (a->release)
        a->release(a); /* device, managed or pinned memory (devarray.c) */
    else
        fu_aligned_free(a->owned);
    fu_free(a);
}

void *fusor_array_data(const fusor_array *a) { return a ? a->data : NULL; }
fusor_dtype fusor_array_dtype(const fusor_array *a) { return a ? a->dtype : FUSOR_NUM_DTYPES; }
int fusor_array_ndim(const fusor_array *a) { return a ? a->ndim : -1; }
const int64_t *fusor_array_shape(const fusor_array *a) { return a ? a->shape : NULL; }
const int64_t *fusor_array_strides(const fusor_array *a) { return a ? a->strides : NULL; }

int64_t fusor_array_size(const fusor_array *a) {
    if (!a) return -1;
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    return n;
}

int mem_array_is_c_contiguous(const fusor_array *a) {
    int64_t expect = (int64_t)fusor_dtype_size(a->dtype);
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] == 0) return 1;
    for (int d = a->ndim - 1; d >= 0; d--) {
        if (a->shape[d] == 1) continue; /* the stride of a unit axis is never used */
        if (a->strides[d] != expect) return 0;
        expect *= a->shape[d];
    }
    return 1;
}

void mem_array_extent(const fusor_array *a, const char **lo, const char **hi) {
    int64_t neg = 0, pos = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] == 0) {
            *lo = *hi = a->data;
            return;
        }
        int64_t reach = a->strides[d] * (a->shape[d] - 1);
        if (reach < 0)
            neg += reach;
        else
            pos += reach;
    }
    *lo = a->data + neg;
    *hi = a->data + pos + (int64_t)fusor_dtype_size(a->dtype);
}
