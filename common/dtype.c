/* dtype.c — the public dtype helpers and small library-wide functions. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "fusor.h"

static const struct {
    const char *name, *numpy;
    size_t size;
} dtypes[FUSOR_NUM_DTYPES] = {
    [FUSOR_BOOL] = {"bool", "bool", 1},  [FUSOR_I8] = {"i8", "int8", 1},
    [FUSOR_I16] = {"i16", "int16", 2},   [FUSOR_I32] = {"i32", "int32", 4},
    [FUSOR_I64] = {"i64", "int64", 8},   [FUSOR_U8] = {"u8", "uint8", 1},
    [FUSOR_U16] = {"u16", "uint16", 2},  [FUSOR_U32] = {"u32", "uint32", 4},
    [FUSOR_U64] = {"u64", "uint64", 8},  [FUSOR_F32] = {"f32", "float32", 4},
    [FUSOR_F64] = {"f64", "float64", 8}, [FUSOR_F16] = {"f16", "float16", 2},
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
                    "unknown dtype '%s' (expected bool, i8..i64, u8..u64, f16, f32 or f64)", name);
}

/* IEEE half <-> double.  Scaling by powers of two is exact and rint rounds half to even in the
 * default rounding mode, which the library never changes. */
uint16_t fusor_f16_from_f64(double x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (isnan(x)) {
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        /* A quiet NaN keeping the payload's top bits, as F16C's vcvtps2ph does. */
        return (uint16_t)(sign | 0x7e00 | ((bits >> 42) & 0x1ff));
    }
    if (a >= 65520.0) /* 65504 + half an ulp: rounds up to inf */
        return sign | 0x7c00;
    if (a < 0x1p-14) /* subnormal: a multiple of 2^-24; 1024 is the smallest normal */
        return (uint16_t)(sign | (uint16_t)rint(a * 0x1p24));
    int e;
    frexp(a, &e);                      /* a = m * 2^e, m in [0.5, 1): the exponent of a is e - 1 */
    double q = rint(ldexp(a, 11 - e)); /* 1024..2048; 2048 carries into the exponent */
    return (uint16_t)(sign | (unsigned)(((e - 1 + 15) << 10) + (int)q - 1024));
}

double fusor_f16_to_f64(uint16_t h) {
    double s = (h & 0x8000) ? -1.0 : 1.0;
    unsigned e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0)
        return s * ldexp(m, -24);
    if (e == 31) {
        if (!m)
            return s * INFINITY;
        uint32_t fb = ((uint32_t)(h & 0x8000) << 16) | 0x7f800000u | ((uint32_t)m << 13);
        float f;
        memcpy(&f, &fb, sizeof f);
        return f;
    }
    return s * ldexp(1024 + m, (int)e - 25);
}

const char *fusor_version(void) { return FUSOR_VERSION_STRING; }

void fusor_free(void *p) { fu_free(p); }
