/*
 * test_cuda_pool.c — device pools, the pinned staging pool, arrays in GPU memory and
 * copies (memory/devpool.c, devarray.c) against the fake driver (fake_cuda.h).
 *
 * Statistics are checked against the fake's own accounting (what the "driver" holds),
 * never against fusor's: allocations and frees return to zero, the peak is the largest
 * simultaneous use, out of memory is recovered by synchronising and trimming exactly
 * when pending frees or cached memory make that possible, and otherwise named with the
 * request and the pool's state.  Copies round-trip data through the fake's memory,
 * staged in chunks, and every access is bounds-checked by the fake.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "check.h"
#include "devpool.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "pool.h"

#define MiB ((size_t)1 << 20)

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static fusor_memory_stats stats(int pool) {
    fusor_memory_stats s;
    memset(&s, 0xff, sizeof s);
    CHECK_OK(fusor_memory_stats_get(pool, &s));
    return s;
}

static void test_statistics(void) {
    fake_fresh();
    CHECK_OK(fake_load());
    CHECK_OK(fusor_memory_configure(0, 64 * MiB, 0));
    cudrv_ptr a, b, c;
    CHECK_OK(mem_dev_alloc(0, 10 * MiB, NULL, &a));
    CHECK_OK(mem_dev_alloc(0, 20 * MiB, NULL, &b));
    fusor_memory_stats s = stats(0);
    CHECK(s.in_use == 30 * MiB && s.allocations == 2 && s.peak == 30 * MiB);
    CHECK(s.reserved == F.pool_reserved && F.pool_used == 30 * MiB);
    CHECK(F.pools_live == 1 && F.pool_threshold == 64 * MiB);
    mem_dev_free(0, a, 10 * MiB, NULL);
    CHECK_OK(mem_dev_alloc(0, 5 * MiB, NULL, &c));
    s = stats(0);
    CHECK(s.in_use == 25 * MiB && s.allocations == 2 && s.peak == 30 * MiB &&
          s.total_allocations == 3);
    mem_dev_free(0, b, 20 * MiB, NULL);
    mem_dev_free(0, c, 5 * MiB, NULL);
    s = stats(0);
    CHECK(s.in_use == 0 && s.allocations == 0 && s.peak == 30 * MiB);
    CHECK(F.pool_used == 0 && fake_live(1) == 0);
    /* Cached up to the threshold, then trimmed back to the driver. */
    CHECK_OK(fusor_memory_trim(0));
    CHECK(F.pool_reserved == 0 && stats(0).reserved == 0);
    /* Zero bytes allocate nothing. */
    CHECK_OK(mem_dev_alloc(0, 0, NULL, &a));
    CHECK(a == 0 && stats(0).allocations == 0);
    char *text = NULL;
    CHECK_OK(fusor_memory_describe(&text));
    CHECK_MSG(contains(text, "GPU 0 (Fake GPU 0) stream-ordered pool: in use 0 B") &&
                  contains(text, "peak 30.00 MiB") && contains(text, "pinned host staging pool"),
              "%s", text);
    fusor_free(text);
    CHECK(fusor_memory_stats_get(-2, &s) == FUSOR_ERROR_INVALID_ARGUMENT);
}

static void test_oom(void) {
    /* Frees ordered on a stream are pending until it synchronises: the pool cannot reuse
     * that memory yet, so the next allocation fails once; trim-and-retry recovers. */
    fake_fresh();
    F.capacity = 100 * MiB;
    CHECK_OK(fake_load());
    cudrv_ptr a, b;
    CHECK_OK(mem_dev_alloc(0, 60 * MiB, NULL, &a));
    mem_dev_free(0, a, 60 * MiB, NULL);
    CHECK(F.pool_pending == 60 * MiB);
    CHECK_OK(mem_dev_alloc(0, 60 * MiB, NULL, &b));
    fusor_memory_stats s = stats(0);
    CHECK(s.trims == 1 && s.failures == 0 && s.in_use == 60 * MiB && F.trims == 1);
    CHECK(F.syncs >= 1);

    /* More than the device has, even after trimming: a message with the request and the
     * pool's state, and nothing changed. */
    cudrv_ptr c = 123;
    fusor_status st = mem_dev_alloc(0, 96 * MiB, NULL, &c);
    CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY && c == 0);
    const char *m = fusor_last_error();
    CHECK_MSG(contains(m, "out of memory allocating 96.00 MiB") &&
                  contains(m, "after trimming the pool and retrying") &&
                  contains(m, "60.00 MiB in use in 1 allocation,") && contains(m, "reserved") &&
                  contains(m, "limit none") && contains(m, "free of 100.00 MiB"),
              "%s", m);
    s = stats(0);
    CHECK(s.trims == 2 && s.failures == 1 && s.in_use == 60 * MiB);
    mem_dev_free(0, b, 60 * MiB, NULL);
    CHECK(stats(0).in_use == 0);

    /* The k-th allocation fails once: the retry gets it. */
    F.fail_alloc_at = (int)F.alloc_calls + 1;
    CHECK_OK(mem_dev_alloc(0, MiB, NULL, &a));
    mem_dev_free(0, a, MiB, NULL);

    /* fusor's limit. */
    CHECK_OK(fusor_memory_configure(0, 0, 8 * MiB));
    CHECK_OK(mem_dev_alloc(0, 6 * MiB, NULL, &a));
    st = mem_dev_alloc(0, 3 * MiB, NULL, &b);
    CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK_MSG(contains(fusor_last_error(), "would pass the pool's limit") &&
                  contains(fusor_last_error(), "limit 8.00 MiB"),
              "%s", fusor_last_error());
    mem_dev_free(0, a, 6 * MiB, NULL);
    CHECK(stats(0).in_use == 0);
    /* An array that cannot be allocated leaves nothing behind. */
    long live = fu_alloc_live();
    fusor_array *arr = NULL;
    int64_t n = 2 * 1024 * 1024; /* 16 MiB of f64 */
    CHECK(fusor_array_create_on(NULL, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &arr) ==
          FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK(arr == NULL && fu_alloc_live() == live && stats(0).allocations == 0);
}

static void test_no_pools(void) {
    /* A device without memory pools: cuMemAlloc, same statistics. */
    fake_fresh();
    F.pools = 0;
    F.capacity = 50 * MiB;
    CHECK_OK(fake_load());
    cudrv_ptr a, b;
    CHECK_OK(mem_dev_alloc(0, 30 * MiB, NULL, &a));
    CHECK(F.direct_used == 30 * MiB && F.pool_allocs == 0 && F.pools_live == 0);
    CHECK(mem_dev_alloc(0, 30 * MiB, NULL, &b) == FUSOR_ERROR_OUT_OF_MEMORY);
    fusor_memory_stats s = stats(0);
    CHECK(s.in_use == 30 * MiB && s.reserved == 30 * MiB && s.trims == 1 && s.failures == 1);
    mem_dev_free(0, a, 30 * MiB, NULL);
    CHECK(F.direct_used == 0 && stats(0).in_use == 0);
    char *text = NULL;
    CHECK_OK(fusor_memory_describe(&text));
    CHECK(contains(text, "cuMemAlloc pool"));
    fusor_free(text);
}

static void test_pinned(void) {
    fake_fresh();
    CHECK_OK(fake_load());
    CHECK_OK(fusor_memory_configure(FUSOR_PINNED_POOL, 4 * MiB, 0));
    void *p, *q;
    CHECK_OK(mem_pinned_alloc(100 * 1024, &p)); /* the 128 KiB class */
    fusor_memory_stats s = stats(FUSOR_PINNED_POOL);
    CHECK(s.in_use == 128 * 1024 && s.allocations == 1 && F.host_allocs == 1);
    mem_pinned_free(p, 100 * 1024);
    CHECK_OK(mem_pinned_alloc(120 * 1024, &q)); /* reused: no driver call */
    CHECK(q == p && F.host_allocs == 1);
    mem_pinned_free(q, 120 * 1024);
    s = stats(FUSOR_PINNED_POOL);
    CHECK(s.in_use == 0 && s.allocations == 0 && s.reserved == 128 * 1024);
    /* Above the threshold, a freed block goes straight back. */
    CHECK_OK(mem_pinned_alloc(8 * MiB, &p));
    mem_pinned_free(p, 8 * MiB);
    CHECK(fake_live(2) == 1); /* only the small cached block */
    CHECK_OK(fusor_memory_trim(FUSOR_PINNED_POOL));
    CHECK(fake_live(2) == 0 && stats(FUSOR_PINNED_POOL).reserved == 0);
    /* Out of pinned memory, after trimming. */
    F.pinned_capacity = 2 * MiB;
    CHECK(mem_pinned_alloc(4 * MiB, &p) == FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK(contains(fusor_last_error(), "pinned host memory: out of memory allocating 4.00 MiB"));
    CHECK(stats(FUSOR_PINNED_POOL).failures == 1);
    CHECK_OK(fusor_memory_configure(FUSOR_PINNED_POOL, 0, MiB));
    CHECK(mem_pinned_alloc(2 * MiB, &p) == FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK(contains(fusor_last_error(), "limit"));
}

static void test_arrays_and_copies(void) {
    fake_fresh();
    CHECK_OK(fake_load());
    fusor_context *ctx;
    CHECK_OK(fusor_context_create(NULL, &ctx));
    /* 20 MiB of f64: three 8 MiB chunks through the pinned stager. */
    int64_t n = 20 * 1024 * 1024 / 8;
    fusor_array *h, *d, *back, *pin, *man;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &n, &h));
    double *hv = fusor_array_data(h);
    for (int64_t i = 0; i < n; i++)
        hv[i] = (double)i * 0.5 - 7;
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 1, &n, &d));
    int dev = -5;
    CHECK(fusor_array_memory(d, &dev) == FUSOR_MEMORY_DEVICE && dev == 0);
    CHECK(fusor_array_memory(h, &dev) == FUSOR_MEMORY_HOST && dev == -1);
    CHECK(fusor_array_strides(d)[0] == 8 && fusor_array_size(d) == n);
    CHECK(stats(0).in_use == (uint64_t)n * 8 && stats(0).allocations == 1);
    CHECK_OK(fusor_array_copy(d, h, NULL));
    CHECK(F.htod_bytes == n * 8);
    CHECK(memcmp(fusor_array_data(d), hv, (size_t)n * 8) == 0); /* fake memory is host memory */
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &n, &back));
    memset(fusor_array_data(back), 0, (size_t)n * 8);
    CHECK_OK(fusor_array_copy(back, d, NULL));
    CHECK(memcmp(fusor_array_data(back), hv, (size_t)n * 8) == 0);
    /* Pinned and managed arrays, and a device-to-device copy, on a stream. */
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_PINNED, 7, FUSOR_F64, 1, &n, &pin));
    CHECK(fusor_array_memory(pin, &dev) == FUSOR_MEMORY_PINNED && dev == -1);
    CHECK_OK(fusor_array_create_on(ctx, FUSOR_MEMORY_MANAGED, 0, FUSOR_F64, 1, &n, &man));
    CHECK(fusor_array_memory(man, &dev) == FUSOR_MEMORY_MANAGED && dev == 0);
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(ctx, &s));
    CHECK_OK(fusor_array_copy(man, d, s));
    CHECK_OK(fusor_array_copy(pin, man, s));
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK(memcmp(fusor_array_data(pin), hv, (size_t)n * 8) == 0);
    fusor_stream_destroy(s);
    /* Mismatched copies are refused before anything moves. */
    int64_t m = 3;
    fusor_array *small;
    CHECK_OK(fusor_array_create(ctx, FUSOR_F64, 1, &m, &small));
    CHECK(fusor_array_copy(small, d, NULL) == FUSOR_ERROR_SHAPE);
    fusor_array_destroy(small);
    /* Wrapping a pointer the caller owns: no allocation, no copy. */
    long allocs = F.alloc_calls;
    cudrv_ptr mine = 0;
    CHECK(sched_cuda(NULL)->mem_alloc(&mine, 4096) == 0);
    fusor_array *w;
    int64_t wn = 512;
    CHECK_OK(fusor_array_wrap_device(ctx, mine, 0, FUSOR_F64, 1, &wn, NULL, &w));
    CHECK(F.alloc_calls == allocs + 1); /* only the caller's own cuMemAlloc */
    CHECK(fusor_array_memory(w, &dev) == FUSOR_MEMORY_DEVICE && dev == 0);
    CHECK((uintptr_t)fusor_array_data(w) == (uintptr_t)mine);
    fusor_array_destroy(w);
    CHECK(fake_find((void *)(uintptr_t)mine, 4096) != NULL); /* still the caller's */
    sched_cuda(NULL)->mem_free(mine);
    CHECK(fusor_array_wrap_device(ctx, mine, 3, FUSOR_F64, 1, &wn, NULL, &w) ==
          FUSOR_ERROR_NO_DEVICE);
    CHECK(fusor_array_wrap_device(ctx, 4097, 0, FUSOR_F64, 1, &wn, NULL, &w) ==
          FUSOR_ERROR_INVALID_ARGUMENT); /* misaligned, as for host memory */

    fusor_array_destroy(d);
    fusor_array_destroy(pin);
    fusor_array_destroy(man);
    fusor_array_destroy(h);
    fusor_array_destroy(back);
    fusor_context_destroy(ctx);
    CHECK_OK(fusor_memory_trim(0));
    fusor_memory_stats s0 = stats(0), sp = stats(FUSOR_PINNED_POOL);
    CHECK(s0.in_use == 0 && s0.allocations == 0 && sp.in_use == 0 && sp.allocations == 0);
    CHECK(fake_live(1) == 0 && fake_live(3) == 0 && F.bad_access == 0);
    CHECK(F.streams_live == 0 || F.streams_live <= 8); /* pooled synchronous streams only */
}

static void nothing(void *ctx, int tid, int n) { (void)ctx, (void)tid, (void)n; }

int main(void) {
    host_parallel(2, nothing, NULL); /* the host pool (staged copies use it) starts once */
    long live = fu_alloc_live();
    test_statistics();
    test_oom();
    test_no_pools();
    test_pinned();
    test_arrays_and_copies();
    fake_fresh();
    CHECK(F.bad_access == 0);
    CHECK_MSG(fu_alloc_live() == live, "%ld blocks leaked", fu_alloc_live() - live);
    return check_done();
}
