/*
 * npy.h — internals of the memory module that its files share and its tests reach: shape
 * formatting for messages and the .npy header parser (memory/npy.c).
 *
 * The parser is exposed so tests can feed it header text directly; the public entry
 * points are fusor_npy_load and fusor_npy_save in include/fusor.h.
 */
#ifndef FUSOR_NPY_H
#define FUSOR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "fusor.h"

/* Writes a shape as NumPy spells it, "(2, 3)" or "(5,)" or "()", into buf. */
void mem_format_shape(char *buf, size_t n, int ndim, const int64_t *shape);

/* What a .npy header dict says. */
typedef struct mem_npy_header {
    fusor_dtype dtype;
    int fortran_order;
    int ndim;
    int64_t shape[FUSOR_MAX_DIMS];
} mem_npy_header;

/* Parses the Python dict literal of a .npy header (`len` bytes at `text`, padding
 * included).  Errors name `path`: FUSOR_ERROR_IO for a malformed dict, a missing,
 * repeated or unknown key, or a negative extent; FUSOR_ERROR_UNSUPPORTED for a dtype
 * fusor lacks (big-endian, complex, f2, structured, ...) or more than FUSOR_MAX_DIMS
 * dimensions. */
fusor_status mem_npy_parse_header(const char *path, const char *text, size_t len,
                                  mem_npy_header *out);

#endif
