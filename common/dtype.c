/* dtype.c — the public dtype helpers and small library-wide functions. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "fusor.h"

static const struct {
    const char *name, *numpy;
    size_t size;
} dtypes[FUSOR_NUM_DTYPES] = {
    [FUSOR_BOOL] = {"bool", "bool", 1}, [FUSOR_I8] = {"i8", "int8", 1},
    [FUSOR_I16] = {"i16", "int16", 2},  [FUSOR_I32] = {"i32", "int32", 4},
    [FUSOR_I64] = {"i64", "int64", 8},  [FUSOR_U8] = {"u8", "uint8", 1},
    [FUSOR_U16] = {"u16", "uint16", 2}, [FUSOR_U32] = {"u32", "uint32", 4},
    [FUSOR_U64] = {"u64", "uint64", 8}, [FUSOR_F32] = {"f32", "float32", 4},
    [FUSOR_F64] = {"f64", "float64", 8},
};

size_t fusor_dtype_size(fusor_dtype d) {
    return (unsigned)d < FUSOR_NUM_DTYPES ? dtypes[d].size : 0;
}

const char *fusor_dtype_name(fusor_dtype d) {
    return (unsigned)d < FUSOR_NUM_DTYPES ? dtypes[d].name : "?";
}

fusor_status fusor_dtype_from_name(const char *name, fusor_dtype *out) {
    if (!name || !out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_dtype_from_name: NULL");
    for (int d = 0; d < FUSOR_NUM_DTYPES; d++) {
        if (!strcmp(name, dtypes[d].name) || !strcmp(name, dtypes[d].numpy)) {
            *out = (fusor_dtype)d;
            return FUSOR_OK;
        }
    }
    return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                    "unknown dtype '%s' (expected bool, i8..i64, u8..u64, f32 or f64)", name);
}

const char *fusor_version(void) { return FUSOR_VERSION_STRING; }

void fusor_free(void *p) { fu_free(p); }
