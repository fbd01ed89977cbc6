/*
 * test_array.c — fusor_array creation, wrapping and validation, reference counting, and
 * the layout queries (C contiguity, byte extent) checked against brute force.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "check.h"
#include "fusor.h"
#include "npy.h"

#define CHECK_FAILS(expr, status, needle)                                                          \
    do {                                                                                           \
        fusor_status st_ = (expr);                                                                 \
        CHECK_MSG(st_ == (status), "%s: got %s: %s", #expr, fusor_status_name(st_),                \
                  fusor_last_error());                                                             \
        CHECK_MSG(strstr(fusor_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",       \
                  fusor_last_error(), needle);                                                     \
    } while (0)

static const size_t sizes[FUSOR_NUM_DTYPES] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 2};

static void test_create_is_c_ordered_aligned_and_sized(void) {
    const int64_t shape[FUSOR_MAX_DIMS] = {2, 3, 1, 4, 2, 1, 3, 2};
    for (int dt = 0; dt < FUSOR_NUM_DTYPES; dt++)
        for (int ndim = 0; ndim <= FUSOR_MAX_DIMS; ndim++) {
            fusor_array *a = NULL;
            CHECK_OK(fusor_array_create(NULL, (fusor_dtype)dt, ndim, shape, &a));
            if (!a) continue;
            int64_t stride = (int64_t)sizes[dt], n = 1;
            for (int d = ndim - 1; d >= 0; d--) {
                CHECK_MSG(fusor_array_strides(a)[d] == stride, "dt %d ndim %d axis %d", dt, ndim,
                          d);
                stride *= shape[d];
                n *= shape[d];
            }
            CHECK(fusor_array_dtype(a) == (fusor_dtype)dt && fusor_array_ndim(a) == ndim);
            CHECK(fusor_array_size(a) == n && fusor_array_shape(a) != NULL);
            CHECK(!memcmp(fusor_array_shape(a), shape, (size_t)ndim * sizeof(int64_t)));
            CHECK((uintptr_t)fusor_array_data(a) % 64 == 0);
            CHECK(mem_array_is_c_contiguous(a));
            CHECK(fusor_dtype_size((fusor_dtype)dt) == sizes[dt]);
            memset(fusor_array_data(a), 0x5a, (size_t)n * sizes[dt]); /* ASan checks the size */
            fusor_array_destroy(a);
        }
}

static void test_create_rejects_bad_shapes_naming_the_argument(void) {
    fusor_array *a = (fusor_array *)&a;
    int64_t shape[3] = {2, -3, 4};
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F32, 3, shape, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "fusor_array_create: shape[1] is -3; extents must be ≥ 0");
    CHECK(a == NULL);
    int64_t ok[2] = {2, 2};
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_NUM_DTYPES, 2, ok, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "dtype 12");
    CHECK_FAILS(fusor_array_create(NULL, (fusor_dtype)-1, 2, ok, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "dtype -1");
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F32, -1, ok, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "ndim is -1");
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F32, 9, ok, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "ndim is 9");
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F32, 2, NULL, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "shape is NULL");
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F32, 2, ok, NULL), FUSOR_ERROR_INVALID_ARGUMENT,
                "out is NULL");
    /* 2^61 elements of 8 bytes overflow int64, and so they do beside a zero extent. */
    int64_t big[3] = {INT64_C(1) << 31, INT64_C(1) << 30, 0};
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F64, 2, big, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "overflows int64");
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F64, 3, big, &a), FUSOR_ERROR_INVALID_ARGUMENT,
                "(2147483648, 1073741824, 0)");
    int64_t zero_first[3] = {0, INT64_C(1) << 31, INT64_C(1) << 30};
    CHECK_FAILS(fusor_array_create(NULL, FUSOR_F64, 3, zero_first, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "(0, 2147483648, 1073741824)");
    /* Just under the limit is a valid shape (checked without allocating). */
    int64_t size = 0, edge[2] = {INT64_C(1) << 31, (INT64_C(1) << 29) - 1};
    CHECK_OK(mem_check_shape("t", FUSOR_F64, 2, edge, &size));
    CHECK(size == edge[0] * edge[1]);
    CHECK_OK(mem_check_shape("t", FUSOR_F64, 3, (int64_t[]){5, 0, 7}, &size));
    CHECK(size == 0);
    CHECK_OK(mem_check_shape("t", FUSOR_BOOL, 0, NULL, &size));
    CHECK(size == 1);
}

static void test_wrap_copies_nothing_and_keeps_strides(void) {
    double buf[12];
    int64_t shape[2] = {3, 4}, strides[2] = {-8, 24};
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_wrap(NULL, buf + 2, FUSOR_F64, 2, shape, strides, &a));
    REQUIRE_VOID(a != NULL);
    CHECK(fusor_array_data(a) == buf + 2);
    CHECK(fusor_array_strides(a)[0] == -8 && fusor_array_strides(a)[1] == 24);
    CHECK(!mem_array_is_c_contiguous(a));
    fusor_array_destroy(a); /* must not free buf */
    CHECK_OK(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, NULL, &a));
    CHECK(a && a->strides[0] == 32 && a->strides[1] == 8 && mem_array_is_c_contiguous(a));
    fusor_array_destroy(a);
    /* A scalar, a broadcast (zero stride) and an empty array with no data. */
    CHECK_OK(fusor_array_wrap(NULL, buf, FUSOR_F64, 0, NULL, NULL, &a));
    CHECK(a && fusor_array_size(a) == 1 && fusor_array_ndim(a) == 0);
    fusor_array_destroy(a);
    int64_t zero[2] = {0, 8};
    CHECK_OK(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, zero, &a));
    fusor_array_destroy(a);
    int64_t empty[2] = {3, 0};
    CHECK_OK(fusor_array_wrap(NULL, NULL, FUSOR_F64, 2, empty, NULL, &a));
    CHECK(a && fusor_array_size(a) == 0 && fusor_array_data(a) == NULL);
    fusor_array_destroy(a);
}

static void test_wrap_rejects_bad_arguments(void) {
    double buf[12];
    fusor_array *a = (fusor_array *)&a;
    int64_t shape[2] = {3, 4};
    CHECK_FAILS(fusor_array_wrap(NULL, NULL, FUSOR_F64, 2, shape, NULL, &a),
                FUSOR_ERROR_INVALID_ARGUMENT,
                "fusor_array_wrap: data is NULL but the array has 12");
    CHECK(a == NULL);
    int64_t neg[2] = {3, -1};
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, neg, NULL, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_wrap: shape[1] is -1");
    CHECK_FAILS(fusor_array_wrap(NULL, (char *)buf + 4, FUSOR_F64, 2, shape, NULL, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "not aligned to 8 bytes");
    int64_t odd[2] = {32, 12};
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, odd, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "strides[1] is 12");
    int64_t huge[2] = {INT64_MIN, 8};
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, huge, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "strides[0]");
    int64_t far[2] = {INT64_C(1) << 61, INT64_C(1) << 61};
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, far, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "int64");
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 9, shape, NULL, &a),
                FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_wrap: ndim is 9");
    CHECK_FAILS(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, shape, NULL, NULL),
                FUSOR_ERROR_INVALID_ARGUMENT, "out is NULL");
    /* Unused strides (extent 1) may be anything. */
    int64_t one[2] = {1, 4}, anything[2] = {13, 8};
    CHECK_OK(fusor_array_wrap(NULL, buf, FUSOR_F64, 2, one, anything, &a));
    fusor_array_destroy(a);
}

/* Brute force: the lowest and one past the highest byte any element touches. */
static void brute_extent(const fusor_array *a, const char **lo, const char **hi) {
    int64_t n = fusor_array_size(a), item = (int64_t)fusor_dtype_size(a->dtype);
    *lo = *hi = a->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0, rest = i;
        for (int d = a->ndim - 1; d >= 0; d--) {
            off += (rest % a->shape[d]) * a->strides[d];
            rest /= a->shape[d];
        }
        if (i == 0 || a->data + off < *lo) *lo = a->data + off;
        if (i == 0 || a->data + off + item > *hi) *hi = a->data + off + item;
    }
}

static void test_extent_matches_brute_force(void) {
    static char buf[4096];
    static const struct {
        int ndim;
        int64_t shape[3], strides[3];
        int64_t offset;
        fusor_dtype dt;
    } cases[] = {
        {2, {3, 4}, {32, 8}, 0, FUSOR_F64},
        {2, {3, 4}, {-32, 8}, 64, FUSOR_F64},
        {3, {2, 3, 4}, {-4, 8, -24}, 200, FUSOR_I32},
        {2, {3, 4}, {0, -2}, 6, FUSOR_U16},
        {0, {0}, {0}, 8, FUSOR_F32},
        {2, {3, 0}, {-8, 8}, 100, FUSOR_F64},
        {1, {1}, {-800}, 16, FUSOR_I64},
        {3, {5, 1, 2}, {1, 99, -5}, 400, FUSOR_U8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fusor_array *a = NULL;
        int64_t st[3];
        for (int d = 0; d < 3; d++) st[d] = cases[i].strides[d];
        CHECK_OK(fusor_array_wrap(NULL, buf + 512 + cases[i].offset, cases[i].dt, cases[i].ndim,
                                  cases[i].shape, st, &a));
        if (!a) continue;
        const char *lo, *hi, *blo, *bhi;
        mem_array_extent(a, &lo, &hi);
        brute_extent(a, &blo, &bhi);
        CHECK_MSG(lo == blo && hi == bhi, "case %zu: [%td, %td) vs brute [%td, %td)", i, lo - buf,
                  hi - buf, blo - buf, bhi - buf);
        fusor_array_destroy(a);
    }
}

static void test_c_contiguity(void) {
    static double buf[64];
    static const struct {
        int ndim;
        int64_t shape[3], strides[3];
        int contiguous;
    } cases[] = {
        {3, {2, 3, 4}, {96, 32, 8}, 1}, {3, {2, 1, 4}, {32, 7 * 8, 8}, 1},
        {2, {3, 4}, {8, 24}, 0},        {2, {3, 4}, {-32, 8}, 0},
        {2, {0, 4}, {8, 8}, 1},         {1, {1}, {-8}, 1},
        {2, {3, 4}, {32, 16}, 0},       {2, {4, 1}, {8, 8}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fusor_array *a = NULL;
        CHECK_OK(fusor_array_wrap(NULL, buf + 32, FUSOR_F64, cases[i].ndim, cases[i].shape,
                                  cases[i].strides, &a));
        if (a) CHECK_MSG(mem_array_is_c_contiguous(a) == cases[i].contiguous, "case %zu", i);
        fusor_array_destroy(a);
    }
}

static void *churn(void *arg) {
    fusor_array *a = arg;
    for (int i = 0; i < 20000; i++) {
        fusor_array_retain(a);
        fusor_array_destroy(a);
    }
    return NULL;
}

static void test_refcount(void) {
    int64_t n = 16;
    fusor_array *a = NULL;
    CHECK_OK(fusor_array_create(NULL, FUSOR_I32, 1, &n, &a));
    REQUIRE_VOID(a != NULL);
    fusor_array_retain(a);
    fusor_array_retain(a);
    CHECK(a->refcount == 3);
    fusor_array_destroy(a);
    fusor_array_destroy(a);
    CHECK(a->refcount == 1);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, a);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK(a->refcount == 1);
    fusor_array_destroy(a); /* the last reference: ASan reports a leak or double free */
    fusor_array_destroy(NULL);
    fusor_array_retain(NULL);
}

static void test_null_accessors_and_allocation_failures(void) {
    CHECK(fusor_array_data(NULL) == NULL && fusor_array_shape(NULL) == NULL);
    CHECK(fusor_array_strides(NULL) == NULL && fusor_array_ndim(NULL) == -1);
    CHECK(fusor_array_size(NULL) == -1 && fusor_array_dtype(NULL) == FUSOR_NUM_DTYPES);
    int64_t n = 1000;
    for (long k = 0; k < 2; k++) {
        fusor_array *a = (fusor_array *)&a;
        fu_alloc_fail_after(k);
        fusor_status st = fusor_array_create(NULL, FUSOR_F64, 1, &n, &a);
        fu_alloc_fail_after(-1);
        CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY && a == NULL);
    }
    double x = 0;
    fusor_array *a = (fusor_array *)&a;
    fu_alloc_fail_after(0);
    fusor_status st = fusor_array_wrap(NULL, &x, FUSOR_F64, 0, NULL, NULL, &a);
    fu_alloc_fail_after(-1);
    CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY && a == NULL);
}

int main(void) {
    test_create_is_c_ordered_aligned_and_sized();
    test_create_rejects_bad_shapes_naming_the_argument();
    test_wrap_copies_nothing_and_keeps_strides();
    test_wrap_rejects_bad_arguments();
    test_extent_matches_brute_force();
    test_c_contiguity();
    test_refcount();
    test_null_accessors_and_allocation_failures();
    return check_done();
}
