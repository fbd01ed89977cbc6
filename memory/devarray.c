/*
 * devarray.c — arrays whose bytes live in pinned host, device or managed memory, and
 * copies between any two locations.
 *
 * Such an array is an ordinary fusor_array (array.h) with `memory`, `device` and a
 * `release` hook that gives the memory back to the pool it came from.  Wrapped device
 * pointers have no hook: the caller owns them, and wrapping is one header allocation,
 * with no driver call beyond the first enumeration of devices.
 */
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "device.h"
#include "devpool.h"
#include "error.h"

static void release_device(fusor_array *a) {
    /* The legacy default stream: ordered after work queued on fusor's (blocking) streams. */
    mem_dev_free(a->device, (cudrv_ptr)(uintptr_t)a->owned, a->owned_bytes, NULL);
}

static void release_managed(fusor_array *a) {
    const cudrv_table *t = sched_cuda(NULL);
    sched_device *d;
    if (t && !sched_device_get(a->device, &d) && !sched_device_activate(d))
        t->mem_free((cudrv_ptr)(uintptr_t)a->owned);
    fu_clear_error();
}

static void release_pinned(fusor_array *a) {
    /* A copy from or to it may still be in flight on some stream. */
    const cudrv_table *t = sched_cuda(NULL);
    int n = sched_cuda_device_count();
    for (int i = 0; t && i < n; i++) {
        sched_device *d;
        if (!sched_device_get(i, &d) && d->ctx && !sched_device_activate(d))
            t->ctx_synchronize();
    }
    fu_clear_error();
    mem_pinned_free(a->owned, a->owned_bytes);
}

fusor_status mem_array_new_on(fusor_memory memory, int device, fusor_dtype dtype, int ndim,
                              const int64_t *shape, fusor_array **out) {
    *out = NULL;
    if (memory == FUSOR_MEMORY_HOST)
        return mem_array_new(dtype, ndim, shape, out);
    if ((unsigned)memory > FUSOR_MEMORY_MANAGED)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_create_on: bad memory kind %d",
                        (int)memory);
    int64_t size;
    fusor_status st = mem_check_shape("fusor_array_create_on", dtype, ndim, shape, &size);
    if (st)
        return st;
    size_t bytes = (size_t)size * fusor_dtype_size(dtype);
    sched_device *d = NULL;
    if (memory != FUSOR_MEMORY_PINNED && (st = sched_device_get(device, &d)))
        return st;
    void *mem = NULL;
    size_t held = bytes;
    void (*release)(fusor_array *) = NULL;
    if (memory == FUSOR_MEMORY_PINNED) {
        held = bytes ? bytes : 1;
        st = mem_pinned_alloc(held, &mem);
        release = release_pinned;
    } else if (memory == FUSOR_MEMORY_DEVICE) {
        cudrv_ptr p = 0;
        st = mem_dev_alloc(device, bytes, NULL, &p);
        mem = (void *)(uintptr_t)p;
        release = release_device;
    } else {
        const cudrv_table *t = sched_cuda(&st);
        if (t && !d->managed)
            st = fu_error(FUSOR_ERROR_UNSUPPORTED, "device %d (%s) has no managed memory", device,
                          d->name);
        if (!st)
            st = sched_device_activate(d);
        if (!st && bytes) {
            cudrv_ptr p = 0;
            cudrv_result r = t->mem_alloc_managed(&p, bytes, CUDRV_MEM_ATTACH_GLOBAL);
            if (r == CUDRV_ERROR_OUT_OF_MEMORY)
                st = fu_error(FUSOR_ERROR_OUT_OF_MEMORY,
                              "device %d (%s): out of managed memory allocating %zu bytes", device,
                              d->name, bytes);
            else if (r)
                st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "cuMemAllocManaged");
            mem = (void *)(uintptr_t)p;
        }
        release = release_managed;
    }
    if (st)
        return st;
    /* An empty device array has no memory; any aligned non-NULL address describes it. */
    fusor_array *a = NULL;
    st = fusor_array_wrap(NULL, mem ? mem : (void *)(uintptr_t)64, dtype, ndim, shape, NULL, &a);
    if (st) {
        fusor_array tmp = {.owned = mem, .owned_bytes = held, .device = device};
        if (mem)
            release(&tmp);
        return st;
    }
    a->owned = mem;
    a->owned_bytes = held;
    a->data = mem;
    a->memory = memory;
    a->device = memory == FUSOR_MEMORY_PINNED ? -1 : device;
    a->release = release;
    *out = a;
    return FUSOR_OK;
}

fusor_status fusor_array_create_on(fusor_context *ctx, fusor_memory memory, int device,
                                   fusor_dtype dtype, int ndim, const int64_t *shape,
                                   fusor_array **out) {
    (void)ctx;
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_create_on: out is NULL");
    return mem_array_new_on(memory, device, dtype, ndim, shape, out);
}

fusor_status fusor_array_wrap_device(fusor_context *ctx, uint64_t ptr, int device,
                                     fusor_dtype dtype, int ndim, const int64_t *shape,
                                     const int64_t *strides, fusor_array **out) {
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_wrap_device: out is NULL");
    *out = NULL;
    sched_device *d;
    fusor_status st = sched_device_get(device, &d);
    if (st)
        return st;
    st = fusor_array_wrap(ctx, (void *)(uintptr_t)ptr, dtype, ndim, shape, strides, out);
    if (st)
        return st;
    (*out)->memory = FUSOR_MEMORY_DEVICE;
    (*out)->device = device;
    return FUSOR_OK;
}

fusor_memory fusor_array_memory(const fusor_array *a, int *device) {
    if (device)
        *device = a ? a->device : -1;
    return a ? a->memory : FUSOR_MEMORY_HOST;
}

/* ------------------------------------------------------------------ copies */

static int on_host(const fusor_array *a) {
    return a->memory == FUSOR_MEMORY_HOST || a->memory == FUSOR_MEMORY_PINNED;
}

fusor_status mem_array_copy(fusor_array *dst, const fusor_array *src, cudrv_stream cu,
                            int *pending) {
    *pending = 0;
    int64_t n = fusor_array_size(src);
    size_t bytes = (size_t)n * fusor_dtype_size(src->dtype);
    if (!bytes)
        return FUSOR_OK;
    if (on_host(dst) && on_host(src)) {
        memmove(dst->data, src->data, bytes);
        return FUSOR_OK;
    }
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    int device = dst->memory == FUSOR_MEMORY_DEVICE || dst->memory == FUSOR_MEMORY_MANAGED
                     ? dst->device
                     : src->device;
    sched_device *d;
    if ((st = sched_device_get(device, &d)) || (st = sched_device_activate(d)))
        return st;
    cudrv_result r;
    if (on_host(src)) {
        /* Managed memory is addressable on the device; the driver copies into it like
         * device memory. */
        st = mem_copy_htod(device, (cudrv_ptr)(uintptr_t)dst->data, src->data, bytes,
                           src->memory == FUSOR_MEMORY_PINNED, cu);
        *pending = !st;
        return st;
    }
    if (on_host(dst)) {
        int pinned = dst->memory == FUSOR_MEMORY_PINNED;
        st = mem_copy_dtoh(device, dst->data, (cudrv_ptr)(uintptr_t)src->data, bytes, pinned, cu);
        *pending = !st && pinned;
        return st;
    }
    r = t->memcpy_dtod_async((cudrv_ptr)(uintptr_t)dst->data, (cudrv_ptr)(uintptr_t)src->data,
                             bytes, cu);
    if (r)
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying between device arrays");
    *pending = 1;
    return FUSOR_OK;
}
