/*
 * test_index32.c — the launcher's choice between a pass's 64-bit and 32-bit index variants
 * (sched_gpu_index32_ok), at the boundary: the grid-stride loop's last index, and every
 * array's largest byte offset, must fit int32 (2^31 - 1), for contiguous, strided,
 * reversed, broadcast and n-d arrays.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "gpurun.h"

enum { MAXA = 4 };

static int64_t strides[MAXA][FUSOR_MAX_DIMS];

/* A domain of `ndim` dimensions over `narrays` arrays (strides filled by the caller). */
static ir_domain dom_of(int ndim, const int64_t *shape, int narrays) {
    ir_domain d = {.ndim = ndim, .size = 1, .narrays = narrays, .strides = strides};
    for (int i = 0; i < ndim; i++) {
        d.shape[i] = shape[i];
        d.size *= shape[i];
    }
    return d;
}

/* One contiguous 1-d array of n elements of `es` bytes, run by `threads` threads. */
static int fits_1d(int64_t n, size_t es, int64_t threads) {
    memset(strides, 0, sizeof strides);
    strides[0][0] = (int64_t)es;
    ir_domain d = dom_of(1, &n, 1);
    size_t el[1] = {es};
    return sched_gpu_index32_ok(&d, el, threads);
}

static void test_loop_index_boundary(void) {
    const int64_t max = INT32_MAX;
    /* Bytes: the index bound decides.  The last step leaves i at n - 1 + threads. */
    CHECK(fits_1d(max, 1, 1));
    CHECK(!fits_1d(max, 1, 2));
    CHECK(fits_1d(max - 1023, 1, 1024));
    CHECK(!fits_1d(max - 1022, 1, 1024));
    CHECK(!fits_1d(max + 1, 1, 1));
    CHECK(fits_1d(0, 8, 1 << 20));
    CHECK(fits_1d(1000, 8, 256 * 132));
}

static void test_byte_offset_boundary(void) {
    const int64_t max = INT32_MAX;
    /* f32: 4n <= 2^31 - 1 holds up to n = 536870911. */
    CHECK(fits_1d(max / 4, 4, 256));
    CHECK(!fits_1d(max / 4 + 1, 4, 256));
    CHECK(fits_1d(max / 8, 8, 256));
    CHECK(!fits_1d(max / 8 + 1, 8, 256));
    /* f16 (2 bytes) reaches twice as many elements. */
    CHECK(fits_1d(max / 2, 2, 256));
    CHECK(!fits_1d(max / 2 + 1, 2, 256));
}

static void test_strided_arrays(void) {
    const int64_t max = INT32_MAX;
    /* Every 4th f32 of a long array: (n - 1) * 16 + 4 <= 2^31 - 1 up to n_ok. */
    const int64_t n_ok = (max - 4) / 16 + 1;
    int64_t n = n_ok + 1;
    memset(strides, 0, sizeof strides);
    strides[0][0] = 16;
    strides[1][0] = 4;
    ir_domain d = dom_of(1, &n, 2);
    size_t el[2] = {4, 4};
    CHECK(!sched_gpu_index32_ok(&d, el, 256));
    n = n_ok;
    d = dom_of(1, &n, 2);
    CHECK(sched_gpu_index32_ok(&d, el, 256));
    /* A reversed view: the magnitude of the stride counts. */
    strides[0][0] = -16;
    CHECK(sched_gpu_index32_ok(&d, el, 256));
    n = n_ok + 1;
    d = dom_of(1, &n, 2);
    CHECK(!sched_gpu_index32_ok(&d, el, 256));
    /* An array the launch does not touch (element size 0) does not count. */
    el[0] = 0;
    CHECK(sched_gpu_index32_ok(&d, el, 256));
}

static void test_nd_and_broadcast(void) {
    /* 2-d: rows of 65536 f64 (524288 bytes): 4096 rows reach exactly 2^31 bytes. */
    int64_t shape[2] = {4095, 65536};
    memset(strides, 0, sizeof strides);
    strides[0][0] = 65536 * 8, strides[0][1] = 8;
    strides[1][0] = 0, strides[1][1] = 8; /* one broadcast row */
    ir_domain d = dom_of(2, shape, 2);
    size_t el[2] = {8, 8};
    CHECK(sched_gpu_index32_ok(&d, el, 1024));
    shape[0] = 4096;
    d = dom_of(2, shape, 2);
    CHECK(!sched_gpu_index32_ok(&d, el, 1024));
    /* The broadcast array alone fits, whatever the number of rows. */
    el[0] = 0;
    CHECK(sched_gpu_index32_ok(&d, el, 1024));
    /* Strides too large for int32 on a dimension of extent 1 never move. */
    int64_t one[2] = {1, 100};
    strides[0][0] = INT64_C(1) << 40, strides[0][1] = 8;
    d = dom_of(2, one, 1);
    el[0] = 8;
    CHECK(sched_gpu_index32_ok(&d, el, 32));
    one[0] = 2;
    d = dom_of(2, one, 1);
    CHECK(!sched_gpu_index32_ok(&d, el, 32));
    strides[0][0] = INT64_MIN;
    CHECK(!sched_gpu_index32_ok(&d, el, 32));
}

int main(void) {
    test_loop_index_boundary();
    test_byte_offset_boundary();
    test_strided_arrays();
    test_nd_and_broadcast();
    return check_done();
}
