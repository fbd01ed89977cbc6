/*
 * devpool.h — GPU memory: device allocations from stream-ordered pools, page-locked host
 * staging buffers from a pool of their own, their statistics, and asynchronous copies.
 *
 * Device memory comes from one pool per device (cuMemPoolCreate, cuMemAllocFromPoolAsync,
 * cuMemFreeAsync): an allocation and its free are ordered on a stream like kernels are,
 * and freed memory stays in the pool up to the release threshold, so a time loop that
 * allocates the same temporaries every step costs no driver calls after the first.  A
 * driver or device without pools falls back to cuMemAlloc/cuMemFree with the same
 * statistics.  fusor's limit caps the bytes in use (and, from CUDA 12.2, the pool's own
 * maxSize).  Out of memory is retried once after synchronising and trimming the pool;
 * then it is FUSOR_ERROR_OUT_OF_MEMORY naming the request and the pool's state.
 *
 * Pinned host memory (cuMemAllocHost) is slow to get, so blocks are kept in power-of-two
 * size classes up to the pinned pool's release threshold and reused.
 *
 * Callers pass the size back when freeing (arrays and launches know it), which keeps
 * the statistics exact without a lookup table.  Pools are process-wide, like the
 * primary contexts they allocate in.
 */
#ifndef FUSOR_MEM_DEVPOOL_H
#define FUSOR_MEM_DEVPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda.h"
#include "fusor.h"

/* Device memory on `device`, ordered on stream s (NULL: the legacy default stream).
 * bytes == 0 gives *out == 0 and allocates nothing. */
fusor_status mem_dev_alloc(int device, size_t bytes, cudrv_stream s, cudrv_ptr *out);
/* Frees it, ordered on s.  p == 0 does nothing. */
void mem_dev_free(int device, cudrv_ptr p, size_t bytes, cudrv_stream s);

/* Page-locked host memory from the staging pool; free with the same size. */
fusor_status mem_pinned_alloc(size_t bytes, void **out);
void mem_pinned_free(void *p, size_t bytes);

/* FUSOR_PINNED_POOL or a device ordinal. */
fusor_status mem_pool_stats(int device, fusor_memory_stats *out);
fusor_status mem_pool_configure(int device, uint64_t release_threshold, uint64_t limit);
/* Synchronises the device and returns every cached byte to the driver. */
fusor_status mem_pool_trim(int device);

/* Copies `bytes` between host and device memory, ordered on s.  A pageable host buffer
 * is staged through pinned buffers in chunks (memcpy of one chunk overlapping the DMA
 * of the previous); when `host_pinned` is set the DMA reads or writes the buffer itself.
 * Host-to-device returns once the host buffer may be reused; device-to-host returns when
 * the data has arrived, except with host_pinned, where it is ordered on s only. */
fusor_status mem_copy_htod(int device, cudrv_ptr dst, const void *src, size_t bytes,
                           int host_pinned, cudrv_stream s);
fusor_status mem_copy_dtoh(int device, void *dst, cudrv_ptr src, size_t bytes, int host_pinned,
                           cudrv_stream s);

/* Arrays in GPU-visible memory (devarray.c).  A C-ordered array in `memory` (HOST,
 * PINNED, DEVICE or MANAGED) of `device`. */
struct fusor_array;
fusor_status mem_array_new_on(fusor_memory memory, int device, fusor_dtype dtype, int ndim,
                              const int64_t *shape, struct fusor_array **out);
/* Copies src's bytes into dst (same byte size, both C-contiguous) on `cu` (device work is
 * ordered there; NULL: the legacy default stream).  Returns once host memory that is not
 * pinned has been read or written; a pinned destination may still be pending on `cu`
 * (*pending is then set). */
fusor_status mem_array_copy(struct fusor_array *dst, const struct fusor_array *src, cudrv_stream cu,
                            int *pending);

/* Parses a byte count: "1048576", "512M", "2G", "64K" (powers of 1024). 0 on error. */
uint64_t mem_parse_bytes(const char *text);
/* "1.50 GiB", "512 MiB", "12 B" into buf. */
void mem_format_bytes(char *buf, size_t n, uint64_t bytes);

#endif
