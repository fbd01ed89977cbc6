/*
 * test_guard_pages.c — nothing written outside the outputs, nothing half-done.
 *
 * Every array here lives in its own mmap'd region whose elements' byte range [lo, hi)
 * ends exactly at a PROT_NONE guard page (and, in a second placement, starts exactly after
 * one), so any read or write one byte outside an array faults and kills the test.  The
 * rest of each region is poisoned: after a launch, every byte that is not one of an
 * output's elements must still hold the poison (strided outputs have gaps).
 *
 * Layouts: contiguous, reversed (negative stride), 2-D with a negative row stride,
 * transposed, every other element, inputs broadcast by zero strides and by shape
 * (1, n) / (m, 1) against an output of the full broadcast shape, 0-d and empty arrays;
 * sizes below and above the pool's parallel threshold (32768), with 1 and 4 threads.
 *
 * Then the other half: launches that fail — at validation (a bad shape, an alias) and
 * at every allocation in turn (fu_alloc_fail_after) — must leave a bound output exactly
 * as it was, byte for byte.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"

#define POISON 0xA7

typedef struct guarded {
    unsigned char *map; /* the mapping: guard, usable pages, guard */
    size_t maplen, usable;
    unsigned char *lo; /* the first byte of the elements' range */
} guarded;

/* A region whose `bytes` element bytes end at the trailing guard page (at_end) or begin
 * right after the leading one. */
static int guard_alloc(guarded *g, size_t bytes, int at_end) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (bytes + page - 1) / page + 1;
    g->usable = pages * page;
    g->maplen = g->usable + 2 * page;
    g->map = mmap(NULL, g->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        return 0;
    mprotect(g->map, page, PROT_NONE);
    mprotect(g->map + page + g->usable, page, PROT_NONE);
    memset(g->map + page, POISON, g->usable);
    g->lo = at_end ? g->map + page + g->usable - bytes : g->map + page;
    return 1;
}

static void guard_free(guarded *g) { munmap(g->map, g->maplen); }

typedef struct layout {
    const char *name;
    int ndim;
    int64_t shape[2];
    int64_t stride_elems[2]; /* in elements; the extent is computed from them */
} layout;

/* Byte offset of element [i0, i1] from the lowest address of the extent. */
static int64_t lowest_offset(const layout *l, int64_t item) {
    int64_t off = 0;
    for (int d = 0; d < l->ndim; d++)
        if (l->stride_elems[d] < 0)
            off += -l->stride_elems[d] * item * (l->shape[d] - 1);
    return off;
}

static int64_t span_bytes(const layout *l, int64_t item) {
    int64_t span = item;
    for (int d = 0; d < l->ndim; d++) {
        if (l->shape[d] == 0)
            return 0;
        int64_t s = l->stride_elems[d] < 0 ? -l->stride_elems[d] : l->stride_elems[d];
        span += s * item * (l->shape[d] - 1);
    }
    return span;
}

/* Wraps an array of `l` inside g (element 0 at the right place for negative strides). */
static fusor_array *wrap_in(guarded *g, const layout *l, fusor_dtype dt, int at_end) {
    int64_t item = (int64_t)fusor_dtype_size(dt);
    int64_t span = span_bytes(l, item);
    if (!guard_alloc(g, (size_t)(span ? span : 1), at_end))
        return NULL;
    if (!span)
        g->lo = g->map + (g->lo - g->map) + (at_end ? 1 : 0); /* empty: at the guard */
    int64_t strides[2];
    for (int d = 0; d < l->ndim; d++)
        strides[d] = l->stride_elems[d] * item;
    fusor_array *a = NULL;
    fusor_array_wrap(NULL, g->lo + lowest_offset(l, item), dt, l->ndim, l->shape, strides, &a);
    return a;
}

static double *elem_f64(const fusor_array *a, int64_t i0, int64_t i1) {
    const int64_t *st = fusor_array_strides(a);
    char *p = fusor_array_data(a);
    int nd = fusor_array_ndim(a);
    if (nd >= 1)
        p += (nd == 2 ? i0 : i1) * st[0];
    if (nd == 2)
        p += i1 * st[1];
    return (double *)p;
}

/* Every byte of the region outside the output's elements must still be poison. */
static int only_elements_written(const guarded *g, const fusor_array *a) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *mark = calloc(g->usable, 1);
    const int64_t *sh = fusor_array_shape(a);
    int nd = fusor_array_ndim(a);
    int64_t n0 = nd == 2 ? sh[0] : 1, n1 = nd >= 1 ? sh[nd - 1] : 1;
    for (int64_t i = 0; i < n0; i++)
        for (int64_t j = 0; j < n1; j++) {
            unsigned char *p = (unsigned char *)elem_f64(a, i, j);
            memset(mark + (p - (g->map + page)), 1, 8);
        }
    int ok = 1;
    for (size_t b = 0; b < g->usable; b++)
        if (!mark[b] && g->map[page + b] != POISON)
            ok = 0;
    free(mark);
    return ok;
}

static fusor_context *ctx;
static fusor_kernel *kern; /* y = x * 2 + b, total = sum(x) */

/* One launch: x (layout lx), b (layout lb, broadcast), y (layout ly, the full shape). */
static void one(const layout *lx, const layout *lb, const layout *ly, int at_end, int threads) {
    guarded gx, gb, gy;
    fusor_array *x = wrap_in(&gx, lx, FUSOR_F64, at_end);
    fusor_array *b = wrap_in(&gb, lb, FUSOR_F64, !at_end);
    fusor_array *y = wrap_in(&gy, ly, FUSOR_F64, at_end);
    REQUIRE_VOID(x && b && y);
    const int64_t *sh = fusor_array_shape(y);
    int nd = fusor_array_ndim(y);
    int64_t n0 = nd == 2 ? sh[0] : 1, n1 = nd >= 1 ? sh[nd - 1] : 1;
    /* Inputs: small integers, so every result is exact. */
    int bx0 = fusor_array_ndim(x) == 2 && fusor_array_shape(x)[0] == 1;
    for (int64_t i = 0; i < n0; i++)
        for (int64_t j = 0; j < n1; j++) {
            if (!bx0 || i == 0)
                *elem_f64(x, bx0 ? 0 : i, j) = (double)((i * 7 + j) % 11);
        }
    int64_t nb0 = fusor_array_ndim(b) == 2 ? fusor_array_shape(b)[0] : 1;
    for (int64_t i = 0; i < nb0; i++)
        *elem_f64(b, i, 0) = (double)(i % 5);
    fusor_set_num_threads(threads);
    fusor_args *a = NULL;
    CHECK_OK(fusor_args_create(kern, &a));
    CHECK_OK(fusor_args_set_array(a, "x", x));
    CHECK_OK(fusor_args_set_array(a, "b", b));
    CHECK_OK(fusor_args_set_array(a, "y", y));
    CHECK_OK(fusor_launch(kern, a));
    double total = -1, want_total = 0;
    CHECK_OK(fusor_args_get_f64(a, "total", &total));
    int wrong = 0;
    for (int64_t i = 0; i < n0; i++)
        for (int64_t j = 0; j < n1; j++) {
            double xv = *elem_f64(x, bx0 ? 0 : i, j);
            double bv = *elem_f64(b, nb0 > 1 ? i : 0, 0);
            want_total += xv;
            if (*elem_f64(y, i, j) != xv * 2 + bv)
                wrong++;
        }
    CHECK_MSG(!wrong, "%s (%s, %d threads): %d wrong elements", ly->name,
              at_end ? "at the end guard" : "at the start guard", threads, wrong);
    CHECK_MSG(total == want_total, "%s: total %g, expected %g", ly->name, total, want_total);
    CHECK_MSG(only_elements_written(&gy, y), "%s: a byte outside the output's elements changed",
              ly->name);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(b);
    fusor_array_destroy(y);
    guard_free(&gx);
    guard_free(&gb);
    guard_free(&gy);
}

static void layouts(void) {
    const int64_t sizes[] = {1, 7, 1000, 40003}; /* 40003: the pool, and a vector tail */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        layout x1 = {"contiguous", 1, {n}, {1}};
        layout b0 = {"b scalar-like (1,)", 1, {1}, {1}};
        layout bz = {"b stride 0", 1, {n}, {0}};
        layout y1 = {"y contiguous", 1, {n}, {1}};
        layout yr = {"y reversed", 1, {n}, {-1}};
        layout y2 = {"y every other element", 1, {n}, {2}};
        layout y2r = {"y every other, reversed", 1, {n}, {-2}};
        for (int at_end = 0; at_end < 2; at_end++)
            for (int threads = 1; threads <= 4; threads += 3) {
                one(&x1, &b0, &y1, at_end, threads);
                one(&x1, &bz, &yr, at_end, threads);
                one(&x1, &b0, &y2, at_end, threads);
                one(&x1, &bz, &y2r, at_end, threads);
            }
    }
    const int64_t rows[] = {3, 250};
    for (size_t r = 0; r < 2; r++) {
        int64_t m = rows[r], n = 161;
        layout x2 = {"x (m, n)", 2, {m, n}, {n, 1}};
        layout xb = {"x (1, n) broadcast over rows", 2, {1, n}, {n, 1}};
        layout bcol = {"b (m, 1)", 2, {m, 1}, {1, 1}};
        layout y2 = {"y C order", 2, {m, n}, {n, 1}};
        layout yneg = {"y rows reversed", 2, {m, n}, {-n, 1}};
        layout ybothneg = {"y both reversed", 2, {m, n}, {-n, -1}};
        layout yT = {"y transposed (Fortran order)", 2, {m, n}, {1, m}};
        layout ygap = {"y rows padded", 2, {m, n}, {n + 5, 1}};
        for (int at_end = 0; at_end < 2; at_end++)
            for (int threads = 1; threads <= 4; threads += 3) {
                one(&x2, &bcol, &y2, at_end, threads);
                one(&xb, &bcol, &yneg, at_end, threads);
                one(&x2, &bcol, &ybothneg, at_end, threads);
                one(&xb, &bcol, &yT, at_end, threads);
                one(&x2, &bcol, &ygap, at_end, threads);
            }
    }
}

/* Empty and 0-d arrays against the guard: nothing may be touched. */
static void empty_and_scalar(void) {
    layout e = {"empty", 1, {0}, {1}}, e2 = {"empty 2-D", 2, {0, 5}, {5, 1}};
    layout b0 = {"b (1,)", 1, {1}, {1}}, b2 = {"b (1, 1)", 2, {1, 1}, {1, 1}};
    for (int at_end = 0; at_end < 2; at_end++) {
        one(&e, &b0, &e, at_end, 4);
        one(&e2, &b2, &e2, at_end, 4);
    }
    layout s = {"0-d", 0, {0}, {0}};
    for (int at_end = 0; at_end < 2; at_end++)
        one(&s, &s, &s, at_end, 1);
}

/* Failed launches leave a bound output exactly as it was. */
static void failed_launches_write_nothing(void) {
    enum { N = 50000 };
    layout l = {"y", 1, {N}, {1}}, bad = {"x short", 1, {N - 1}, {1}}, b0 = {"b", 1, {1}, {1}};
    guarded gx, gb, gy, gs;
    fusor_array *x = wrap_in(&gx, &l, FUSOR_F64, 1), *b = wrap_in(&gb, &b0, FUSOR_F64, 1);
    fusor_array *y = wrap_in(&gy, &l, FUSOR_F64, 1), *xs = wrap_in(&gs, &bad, FUSOR_F64, 1);
    REQUIRE_VOID(x && b && y && xs);
    for (int i = 0; i < N; i++)
        ((double *)fusor_array_data(x))[i] = i % 9;
    *(double *)fusor_array_data(b) = 1;
    unsigned char *before = malloc(gy.usable);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    memcpy(before, gy.map + page, gy.usable);
    fusor_args *a = NULL;
    CHECK_OK(fusor_args_create(kern, &a));
    CHECK_OK(fusor_args_set_array(a, "b", b));
    CHECK_OK(fusor_args_set_array(a, "y", y));
    /* validation failures */
    CHECK_OK(fusor_args_set_array(a, "x", xs));
    CHECK(fusor_launch(kern, a) == FUSOR_ERROR_SHAPE);
    CHECK(!memcmp(before, gy.map + page, gy.usable));
    fusor_array *yv = NULL;
    int64_t n1 = N - 1, st = 8;
    fusor_array_wrap(NULL, (char *)fusor_array_data(y) + 8, FUSOR_F64, 1, &n1, &st, &yv);
    fusor_args *a2 = NULL;
    CHECK_OK(fusor_args_create(kern, &a2));
    fusor_array *ys = NULL;
    fusor_array_wrap(NULL, fusor_array_data(y), FUSOR_F64, 1, &n1, &st, &ys);
    CHECK_OK(fusor_args_set_array(a2, "x", yv));
    CHECK_OK(fusor_args_set_array(a2, "b", b));
    CHECK_OK(fusor_args_set_array(a2, "y", ys));
    CHECK(fusor_launch(kern, a2) == FUSOR_ERROR_ALIAS); /* x is y shifted by one element */
    CHECK(!memcmp(before, gy.map + page, gy.usable));
    fusor_args_destroy(a2);
    fusor_array_destroy(yv);
    fusor_array_destroy(ys);

    /* failures at every allocation of a launch, on 1 and 4 threads */
    CHECK_OK(fusor_args_set_array(a, "x", x));
    for (int threads = 1; threads <= 4; threads += 3) {
        fusor_set_num_threads(threads);
        int failed = 0;
        for (long k = 0; k < 1000; k++) {
            fu_alloc_fail_after(k);
            fusor_status s = fusor_launch(kern, a);
            long injected = fu_alloc_failures();
            fu_alloc_fail_after(-1);
            if (s == FUSOR_OK) {
                CHECK(injected == 0 || memcmp(before, gy.map + page, gy.usable));
                break;
            }
            failed++;
            CHECK_MSG(s == FUSOR_ERROR_OUT_OF_MEMORY, "k=%ld: %s", k, fusor_last_error());
            CHECK_MSG(!memcmp(before, gy.map + page, gy.usable),
                      "k=%ld (%d threads): a launch that failed wrote into its output", k, threads);
        }
        CHECK(failed > 0);
        memcpy(gy.map + page, before, gy.usable); /* undo the successful launch */
    }
    free(before);
    fusor_args_destroy(a);
    fusor_array_destroy(x);
    fusor_array_destroy(b);
    fusor_array_destroy(y);
    fusor_array_destroy(xs);
    guard_free(&gx);
    guard_free(&gb);
    guard_free(&gy);
    guard_free(&gs);
}

int main(void) {
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE(fusor_kernel_compile(ctx,
                                 "kernel k(x: f64[], b: f64[]) -> (y: f64[], total: f64) {\n"
                                 "    y = x * 2 + b\n"
                                 "    total = sum(x)\n"
                                 "}\n",
                                 "guard.fu", NULL, &kern) == FUSOR_OK);
    layouts();
    empty_and_scalar();
    failed_launches_write_nothing();
    fusor_set_num_threads(0);
    fusor_kernel_destroy(kern);
    fusor_context_destroy(ctx);
    return check_done();
}
