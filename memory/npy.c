/*
 * npy.c — NumPy's .npy files: load (format 1.0, 2.0, 3.0; C or Fortran order) and save
 * (1.0, or 2.0 when the header needs it, byte-identical to what NumPy writes).
 *
 * A file is a magic string, a version, a header length, a Python dict literal padded with
 * spaces and a newline, then the raw elements.  The dict is parsed by a small strict
 * reader of exactly the literals NumPy writes (strings, True/False, tuples of ints), so a
 * corrupt or hostile header is an error, never a guess.
 */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "array.h"
#include "error.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Far above any header fusor can write (8 dimensions need < 400 bytes); a longer one is
 * corrupt or not meant for us. */
#define NPY_MAX_HEADER (1 << 20)
/* NumPy leaves room to grow the first (C) axis in place: 21 digits minus its own. */
#define NPY_GROWTH_DIGITS 21
#define NPY_ALIGN 64

/* ------------------------------------------------------------- header dict */

typedef struct npy_cursor {
    const char *path;
    const char *start, *p, *end;
} npy_cursor;

static fusor_status bad_header(const npy_cursor *c, const char *what) {
    return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': malformed header at byte %d: %s",
                    c->path, (int)(c->p - c->start), what);
}

static void skip_space(npy_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Consumes `ch` (after optional spaces) if it is next. */
static int accept(npy_cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int is_ident_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* A quoted string without escapes (no .npy key or descr has one) into buf. */
static fusor_status parse_string(npy_cursor *c, char *buf, size_t cap) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return bad_header(c, "expected a string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p == '\n')
            return bad_header(c, "unsupported character in a string");
        if (n + 1 >= cap) return bad_header(c, "string too long");
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end) return bad_header(c, "unterminated string");
    c->p++;
    buf[n] = 0;
    return FUSOR_OK;
}

static fusor_status parse_bool(npy_cursor *c, int *out) {
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    int len = left >= 4 && !memcmp(c->p, "True", 4)    ? 4
              : left >= 5 && !memcmp(c->p, "False", 5) ? 5
                                                       : 0;
    if (!len || (left > (size_t)len && is_ident_char(c->p[len])))
        return bad_header(c, "'fortran_order' must be True or False");
    *out = len == 4;
    c->p += len;
    return FUSOR_OK;
}

/* A non-negative decimal int64 as Python writes it (an old Python 2 "L" suffix allowed). */
static fusor_status parse_extent(npy_cursor *c, int d, int64_t *out) {
    skip_space(c);
    if (c->p < c->end && *c->p == '-')
        return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': shape[%d] is negative", c->path, d);
    if (c->p < c->end && *c->p == '+') c->p++;
    const char *digits = c->p;
    int64_t v = 0;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
            return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': shape[%d] overflows int64",
                            c->path, d);
    if (c->p == digits) return bad_header(c, "expected an integer in 'shape'");
    if (*digits == '0' && c->p - digits > 1) return bad_header(c, "integer with a leading zero");
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++;
    if (c->p < c->end && is_ident_char(*c->p)) return bad_header(c, "bad integer in 'shape'");
    *out = v;
    return FUSOR_OK;
}

/* A tuple of extents: "()", "(3,)", "(3, 4)", "(3, 4,)".  "(3)" is an int in Python.
 * Extents past FUSOR_MAX_DIMS are counted in ndim but not kept. */
static fusor_status parse_shape(npy_cursor *c, mem_npy_header *h) {
    if (!accept(c, '(')) return bad_header(c, "'shape' must be a tuple");
    h->ndim = 0;
    if (accept(c, ')')) return FUSOR_OK;
    for (;;) {
        int64_t extent = 0;
        fusor_status st = parse_extent(c, h->ndim, &extent);
        if (st != FUSOR_OK) return st;
        if (h->ndim < FUSOR_MAX_DIMS) h->shape[h->ndim] = extent;
        h->ndim++;
        int comma = accept(c, ',');
        if (accept(c, ')')) {
            if (h->ndim == 1 && !comma)
                return bad_header(c, "'shape' (n) is not a tuple; write (n,)");
            return FUSOR_OK;
        }
        if (!comma) return bad_header(c, "expected ',' or ')' in 'shape'");
    }
}

/* Maps a descr such as '<f8' to a dtype.  One-byte types may carry any byte-order mark. */
static fusor_status parse_descr(const char *path, const char *descr, fusor_dtype *out) {
    static const struct {
        const char *code;
        fusor_dtype dtype;
    } codes[] = {{"b1", FUSOR_BOOL}, {"?", FUSOR_BOOL}, {"i1", FUSOR_I8},  {"i2", FUSOR_I16},
                 {"i4", FUSOR_I32},  {"i8", FUSOR_I64}, {"u1", FUSOR_U8},  {"u2", FUSOR_U16},
                 {"u4", FUSOR_U32},  {"u8", FUSOR_U64}, {"f4", FUSOR_F32}, {"f8", FUSOR_F64},
                 {"f2", FUSOR_F16}};
    char order = strchr("<>|=", descr[0]) && descr[0] ? descr[0] : '=';
    const char *code = descr + (order == descr[0]);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i].code)) continue;
        int little = order == '<' || order == '=' || order == '|'; /* hosts are little-endian */
        if (fusor_dtype_size(codes[i].dtype) > 1 && !little)
            return fu_error(FUSOR_ERROR_UNSUPPORTED,
                            "fusor_npy_load: '%s': dtype '%s' is big-endian; fusor reads "
                            "little-endian files only",
                            path, descr);
        *out = codes[i].dtype;
        return FUSOR_OK;
    }
    return fu_error(FUSOR_ERROR_UNSUPPORTED,
                    "fusor_npy_load: '%s': dtype '%s' is not supported (fusor has bool, "
                    "i8-i64, u8-u64, f16, f32 and f64)",
                    path, descr);
}

static fusor_status parse_entry(npy_cursor *c, const char *key, mem_npy_header *h, char *descr,
                                size_t cap) {
    if (!strcmp(key, "fortran_order")) return parse_bool(c, &h->fortran_order);
    if (!strcmp(key, "shape")) return parse_shape(c, h);
    skip_space(c);
    /* A list is a structured dtype: no need to read further. */
    if (c->p < c->end && *c->p == '[')
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "fusor_npy_load: '%s': structured dtypes (descr '[...]') are not "
                        "supported",
                        c->path);
    return parse_string(c, descr, cap);
}

/* What the parsed dict says, checked once all of it is known to be well formed. */
static fusor_status check_header(const char *path, const char *descr, mem_npy_header *h) {
    if (h->ndim > FUSOR_MAX_DIMS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "fusor_npy_load: '%s': the array has %d dimensions; fusor supports at "
                        "most %d",
                        path, h->ndim, FUSOR_MAX_DIMS);
    return parse_descr(path, descr, &h->dtype);
}

fusor_status mem_npy_parse_header(const char *path, const char *text, size_t len,
                                  mem_npy_header *out) {
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    npy_cursor c = {path, text, text, text + len};
    int seen[3] = {0, 0, 0};
    char descr[64] = "";
    memset(out, 0, sizeof *out);
    if (!accept(&c, '{')) return bad_header(&c, "expected '{'");
    while (!accept(&c, '}')) {
        char key[32];
        fusor_status st = parse_string(&c, key, sizeof key);
        if (st != FUSOR_OK) return st;
        int k = 0;
        while (k < 3 && strcmp(key, keys[k])) k++;
        if (k == 3)
            return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': unexpected header key '%s'",
                            path, key);
        if (seen[k]++)
            return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': header key '%s' appears twice",
                            path, key);
        if (!accept(&c, ':')) return bad_header(&c, "expected ':' after a key");
        if ((st = parse_entry(&c, key, out, descr, sizeof descr)) != FUSOR_OK) return st;
        if (!accept(&c, ',')) {
            if (!accept(&c, '}')) return bad_header(&c, "expected ',' or '}'");
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end) return bad_header(&c, "unexpected text after the dict");
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': header has no '%s' key", path,
                            keys[k]);
    return check_header(path, descr, out);
}

/* ------------------------------------------------------------------- load */

static unsigned read_le(const unsigned char *p, int n) {
    unsigned v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Reads the preamble and header text of an open file; *hdr is fu_malloc'd. */
static fusor_status read_header(FILE *f, const char *path, char **hdr, size_t *hlen,
                                long *data_at) {
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    if (got < 8 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN))
        return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': not a .npy file (bad magic)", path);
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "fusor_npy_load: '%s': .npy format version %d.%d is not supported "
                        "(1.0, 2.0 and 3.0 are)",
                        path, major, minor);
    int lenbytes = major == 1 ? 2 : 4;
    if (fread(pre + 8, 1, (size_t)lenbytes, f) != (size_t)lenbytes)
        return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': truncated before the header length",
                        path);
    *hlen = read_le(pre + 8, lenbytes);
    if (*hlen > NPY_MAX_HEADER)
        return fu_error(FUSOR_ERROR_IO,
                        "fusor_npy_load: '%s': header length %zu is too long (at most %d)", path,
                        *hlen, NPY_MAX_HEADER);
    *hdr = fu_malloc(*hlen + 1);
    if (!*hdr) return fu_oom("a .npy header");
    if (fread(*hdr, 1, *hlen, f) != *hlen) {
        fu_free(*hdr);
        *hdr = NULL;
        return fu_error(FUSOR_ERROR_IO,
                        "fusor_npy_load: '%s': truncated header (%zu bytes announced)", path,
                        *hlen);
    }
    (*hdr)[*hlen] = 0;
    *data_at = 8 + lenbytes + (long)*hlen;
    return FUSOR_OK;
}

/* The byte size of the data the header describes, refusing counts int64 cannot hold.  As
 * in mem_check_shape (and NumPy), the non-zero extents must not overflow even when another
 * extent is zero: a zero first used to hide the overflow from this check, and the array
 * allocation then failed with a message that did not name the file (found by fuzz_npy). */
static fusor_status data_size(const char *path, const mem_npy_header *h, int64_t *bytes) {
    int64_t n = (int64_t)fusor_dtype_size(h->dtype);
    int empty = 0;
    for (int d = 0; d < h->ndim; d++)
        if (h->shape[d] == 0) {
            empty = 1;
        } else if (__builtin_mul_overflow(n, h->shape[d], &n)) {
            char s[256];
            mem_format_shape(s, sizeof s, h->ndim, h->shape);
            return fu_error(FUSOR_ERROR_IO,
                            "fusor_npy_load: '%s': shape %s is too large: its byte size "
                            "overflows int64",
                            path, s);
        }
    *bytes = empty ? 0 : n;
    return FUSOR_OK;
}

static fusor_status size_mismatch(const char *path, const mem_npy_header *h, int64_t need,
                                  const char *have) {
    char s[256];
    mem_format_shape(s, sizeof s, h->ndim, h->shape);
    return fu_error(FUSOR_ERROR_IO,
                    "fusor_npy_load: '%s': the header's shape %s of %s needs %lld data bytes "
                    "but the file has %s",
                    path, s, fusor_dtype_name(h->dtype), (long long)need, have);
}

/* A regular file's size is checked before anything is allocated, so that a lying
 * header never causes a huge allocation. */
static fusor_status check_file_size(FILE *f, const char *path, const mem_npy_header *h,
                                    long data_at, int64_t need) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size - data_at == need)
        return FUSOR_OK;
    char have[32];
    snprintf(have, sizeof have, "%lld", (long long)(sb.st_size - data_at));
    return size_mismatch(path, h, need, have);
}

/* Reads exactly `need` bytes of data and checks that nothing follows them (for pipes and
 * files that change while read). */
static fusor_status read_data(FILE *f, const char *path, const mem_npy_header *h, int64_t need,
                              fusor_array *a) {
    size_t got = need ? fread(a->data, 1, (size_t)need, f) : 0;
    if (got != (size_t)need) {
        if (ferror(f))
            return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: '%s': read error: %s", path,
                            strerror(errno));
        char have[32];
        snprintf(have, sizeof have, "only %zu", got);
        return size_mismatch(path, h, need, have);
    }
    if (fgetc(f) != EOF) return size_mismatch(path, h, need, "more");
    if (h->dtype == FUSOR_BOOL)
        for (int64_t i = 0; i < need; i++) a->data[i] = a->data[i] != 0;
    return FUSOR_OK;
}

static void fortran_strides(fusor_array *a) {
    int64_t s = (int64_t)fusor_dtype_size(a->dtype);
    for (int d = 0; d < a->ndim; d++) {
        a->strides[d] = s;
        s *= a->shape[d] > 1 ? a->shape[d] : 1;
    }
}

static fusor_status load_open(FILE *f, const char *path, fusor_array **out) {
    char *text = NULL;
    size_t hlen = 0;
    long data_at = 0;
    fusor_status st = read_header(f, path, &text, &hlen, &data_at);
    if (st != FUSOR_OK) return st;
    mem_npy_header h;
    st = mem_npy_parse_header(path, text, hlen, &h);
    fu_free(text);
    int64_t need = 0;
    if (st == FUSOR_OK) st = data_size(path, &h, &need);
    if (st == FUSOR_OK) st = check_file_size(f, path, &h, data_at, need);
    fusor_array *a = NULL;
    if (st == FUSOR_OK) st = mem_array_new(h.dtype, h.ndim, h.shape, &a);
    if (st == FUSOR_OK) st = read_data(f, path, &h, need, a);
    if (st != FUSOR_OK) {
        fusor_array_destroy(a);
        return st;
    }
    if (h.fortran_order) fortran_strides(a);
    *out = a;
    return FUSOR_OK;
}

fusor_status fusor_npy_load(fusor_context *ctx, const char *path, fusor_array **out) {
    (void)ctx;
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_npy_load: out is NULL");
    *out = NULL;
    if (!path) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_npy_load: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return fu_error(FUSOR_ERROR_IO, "fusor_npy_load: cannot open '%s': %s", path,
                        strerror(errno));
    fusor_status st = load_open(f, path, out);
    fclose(f);
    return st;
}

/* ------------------------------------------------------------------- save */

static const char *descr_of(fusor_dtype dtype) {
    static const char *const descr[FUSOR_NUM_DTYPES] = {
        [FUSOR_BOOL] = "|b1", [FUSOR_I8] = "|i1",  [FUSOR_I16] = "<i2", [FUSOR_I32] = "<i4",
        [FUSOR_I64] = "<i8",  [FUSOR_U8] = "|u1",  [FUSOR_U16] = "<u2", [FUSOR_U32] = "<u4",
        [FUSOR_U64] = "<u8",  [FUSOR_F32] = "<f4", [FUSOR_F64] = "<f8", [FUSOR_F16] = "<f2",
    };
    return descr[dtype];
}

/* The preamble and header NumPy's format.write_array would write for this array, into
 * buf; returns its length. */
static size_t build_header(const fusor_array *a, char *buf, size_t cap) {
    char shape[256], first[32] = "";
    mem_format_shape(shape, sizeof shape, a->ndim, a->shape);
    char *dict = buf + 12; /* room for the longest preamble; moved down for version 1.0 */
    int n = snprintf(dict, cap - 12, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr_of(a->dtype), shape);
    if (a->ndim > 0) {
        int digits = snprintf(first, sizeof first, "%lld", (long long)a->shape[0]);
        n += snprintf(dict + n, cap - 12 - (size_t)n, "%*s", NPY_GROWTH_DIGITS - digits, "");
    }
    size_t hlen = (size_t)n + 1, pre = 10, pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    int version = 1;
    if (hlen + pad > 65535) { /* 2.0 only widens the length field */
        version = 2;
        pre = 12;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    memmove(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', pad);
    buf[pre + n + pad] = '\n';
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = (char)version;
    buf[7] = 0;
    hlen += pad;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (char)(hlen >> (8 * i));
    return pre + hlen;
}

enum { WRITE_OK, WRITE_IO, WRITE_OOM };

/* Writes the elements in C order, whatever the strides, through a buffer. */
static int write_elements(FILE *f, const fusor_array *a) {
    size_t item = fusor_dtype_size(a->dtype), cap = 65536, used = 0;
    char *buf = fu_malloc(cap);
    if (!buf) return WRITE_OOM;
    int64_t idx[FUSOR_MAX_DIMS] = {0};
    int64_t count = fusor_array_size(a);
    const char *p = a->data;
    int ok = 1;
    for (int64_t i = 0; i < count && ok; i++) {
        if (a->dtype == FUSOR_BOOL)
            buf[used] = *p != 0;
        else
            memcpy(buf + used, p, item);
        used += item;
        if (used + item > cap) {
            ok = fwrite(buf, 1, used, f) == used;
            used = 0;
        }
        for (int d = a->ndim - 1; d >= 0; d--) { /* odometer step to the next C-order index */
            p += a->strides[d];
            if (++idx[d] < a->shape[d]) break;
            p -= a->strides[d] * a->shape[d];
            idx[d] = 0;
        }
    }
    if (ok && used) ok = fwrite(buf, 1, used, f) == used;
    fu_free(buf);
    return ok ? WRITE_OK : WRITE_IO;
}

static int write_array(FILE *f, const fusor_array *a) {
    char header[1024];
    size_t n = build_header(a, header, sizeof header);
    if (fwrite(header, 1, n, f) != n) return WRITE_IO;
    if (a->dtype != FUSOR_BOOL && mem_array_is_c_contiguous(a)) {
        size_t bytes = (size_t)fusor_array_size(a) * fusor_dtype_size(a->dtype);
        return bytes && fwrite(a->data, 1, bytes, f) != bytes ? WRITE_IO : WRITE_OK;
    }
    return write_elements(f, a);
}

fusor_status fusor_npy_save(const char *path, const fusor_array *a) {
    if (!path) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_npy_save: path is NULL");
    if (!a) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_npy_save: the array is NULL");
    if (fusor_dtype_size(a->dtype) == 0)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_npy_save: the array's dtype %d is invalid", (int)a->dtype);
    FILE *f = fopen(path, "wb");
    if (!f)
        return fu_error(FUSOR_ERROR_IO, "fusor_npy_save: cannot create '%s': %s", path,
                        strerror(errno));
    struct stat sb;
    int regular = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode);
    errno = 0;
    int result = write_array(f, a);
    int err = errno;
    if (fclose(f) != 0 && result == WRITE_OK) {
        result = WRITE_IO;
        err = errno;
    }
    if (result == WRITE_OK) return FUSOR_OK;
    if (regular) remove(path); /* a half-written file would later read as corrupt */
    if (result == WRITE_OOM) return fu_oom("a .npy write buffer");
    return fu_error(FUSOR_ERROR_IO, "fusor_npy_save: cannot write '%s': %s", path,
                    err ? strerror(err) : "short write");
}
