/*
 * fuzz_npy.c — libFuzzer target: the .npy reader (fusor_npy_load and the header parser).
 *
 * The input is written to an in-memory file (memfd) and loaded through its /proc path,
 * so the whole reader runs: preamble, header dict, dtype, shape, the size check against
 * the file, the data.  The same bytes are also given to the header parser directly.
 * Findings: crashes and sanitizer reports, and broken invariants, which abort:
 *   - a failure must be FUSOR_ERROR_IO or UNSUPPORTED (or out of memory) with a message
 *     that names the file;
 *   - a loaded array must be well formed, and saving and loading it again must give the
 *     same dtype, shape and elements.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "array.h"
#include "error.h"
#include "fusor.h"
#include "npy.h"

static int in_fd = -1, out_fd = -1;
static char in_path[64], out_path[64];

static void finding(const char *what, fusor_status st) {
    fprintf(stderr, "fuzz_npy: %s: %s: %s\n", what, fusor_status_name(st), fusor_last_error());
    abort();
}

static int open_files(void) {
    if (in_fd >= 0)
        return 1;
    in_fd = memfd_create("fuzz_npy_in", 0);
    out_fd = memfd_create("fuzz_npy_out", 0);
    if (in_fd < 0 || out_fd < 0)
        return 0;
    snprintf(in_path, sizeof in_path, "/proc/self/fd/%d", in_fd);
    snprintf(out_path, sizeof out_path, "/proc/self/fd/%d", out_fd);
    return 1;
}

static void check_failure(fusor_status st, const char *path) {
    if (st == FUSOR_ERROR_OUT_OF_MEMORY)
        return;
    if (st != FUSOR_ERROR_IO && st != FUSOR_ERROR_UNSUPPORTED)
        finding("unexpected status", st);
    if (!strstr(fusor_last_error(), path))
        finding("the message does not name the file", st);
}

static const char *element(const fusor_array *a, int64_t flat) {
    const char *p = fusor_array_data(a);
    for (int d = a->ndim - 1; d >= 0; d--) {
        p += (flat % a->shape[d]) * a->strides[d];
        flat /= a->shape[d];
    }
    return p;
}

static void round_trip(const fusor_array *a) {
    if ((unsigned)a->dtype >= FUSOR_NUM_DTYPES || a->ndim < 0 || a->ndim > FUSOR_MAX_DIMS)
        finding("a loaded array is malformed", FUSOR_OK);
    int64_t n = fusor_array_size(a);
    if (n < 0)
        finding("a loaded array has a negative size", FUSOR_OK);
    fusor_status st = fusor_npy_save(out_path, a);
    if (st != FUSOR_OK)
        finding("saving a loaded array failed", st);
    fusor_array *b = NULL;
    st = fusor_npy_load(NULL, out_path, &b);
    if (st != FUSOR_OK)
        finding("reloading a saved array failed", st);
    if (b->dtype != a->dtype || b->ndim != a->ndim ||
        memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim))
        finding("the reloaded array differs in dtype or shape", FUSOR_OK);
    size_t item = fusor_dtype_size(a->dtype);
    for (int64_t i = 0; i < n; i++)
        if (memcmp(element(a, i), element(b, i), item))
            finding("the reloaded array differs in an element", FUSOR_OK);
    fusor_array_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!open_files())
        return 0;
    mem_npy_header h;
    fusor_status st = mem_npy_parse_header("header", (const char *)data, size, &h);
    if (st != FUSOR_OK)
        check_failure(st, "header");
    else if (h.ndim < 0 || h.ndim > FUSOR_MAX_DIMS || (unsigned)h.dtype >= FUSOR_NUM_DTYPES)
        finding("a parsed header is malformed", st);

    if (ftruncate(in_fd, 0) != 0 || pwrite(in_fd, data, size, 0) != (ssize_t)size)
        return 0;
    fusor_array *a = NULL;
    st = fusor_npy_load(NULL, in_path, &a);
    if (st == FUSOR_OK) {
        round_trip(a);
        fusor_array_destroy(a);
    } else {
        check_failure(st, in_path);
        if (a)
            finding("a failed load returned an array", st);
    }
    return 0;
}
