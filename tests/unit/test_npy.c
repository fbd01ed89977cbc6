/*
 * test_npy.c — .npy load and save against files NumPy wrote
 * (scripts/gen_npy_fixtures.py), byte-for-byte save comparisons, and every malformed or
 * unsupported file the loader must refuse with the right status and the file's name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "array.h"
#include "check.h"
#include "fusor.h"
#include "npy.h"


#ifndef FUSOR_SOURCE_DIR
#define FUSOR_SOURCE_DIR "."
#endif

static const struct {
    const char *code;
    fusor_dtype dtype;
    int size;
} dtypes[] = {{"b1", FUSOR_BOOL, 1}, {"i1", FUSOR_I8, 1},  {"i2", FUSOR_I16, 2},
              {"i4", FUSOR_I32, 4},  {"i8", FUSOR_I64, 8}, {"u1", FUSOR_U8, 1},
              {"u2", FUSOR_U16, 2},  {"u4", FUSOR_U32, 4}, {"u8", FUSOR_U64, 8},
              {"f4", FUSOR_F32, 4},  {"f8", FUSOR_F64, 8}, {"f2", FUSOR_F16, 2}};
enum { NUM_CODES = sizeof dtypes / sizeof dtypes[0] };
static const int64_t rank_shapes[4][3] = {{0}, {5}, {3, 4}, {2, 3, 4}};

static char tmpdir[] = "/tmp/fusor_test_npy_XXXXXX";

static const char *fixture(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/tests/fixtures/npy/%s", FUSOR_SOURCE_DIR, name);
    return buf;
}

static const char *tmp(const char *name) {
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

/* The fixture formula of scripts/gen_npy_fixtures.py, recomputed independently. */
static void expected(fusor_dtype dt, int64_t i, unsigned char *out) {
    uint64_t raw = (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
    double v = (double)((int64_t)((raw >> 40) % 4001) - 2000) / 16.0;
    float f = (float)v;
    switch (dt) {
    case FUSOR_BOOL: out[0] = (raw >> 32) % 3 == 0; break;
    case FUSOR_F32: memcpy(out, &f, 4); break;
    case FUSOR_F64: memcpy(out, &v, 8); break;
    case FUSOR_F16: { /* the compiler's own conversion: an independent reference */
        _Float16 h = (_Float16)v;
        memcpy(out, &h, 2);
        break;
    }
    default: memcpy(out, &raw, fusor_dtype_size(dt)); break; /* little-endian low bytes */
    }
}

/* The address of the element at C-order position i, through the array's strides. */
static const unsigned char *element(const fusor_array *a, int64_t i) {
    int64_t off = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        off += (i % a->shape[d]) * a->strides[d];
        i /= a->shape[d];
    }
    return (const unsigned char *)a->data + off;
}

static int values_match(const fusor_array *a, fusor_dtype dt) {
    size_t n = fusor_dtype_size(dt);
    for (int64_t i = 0; i < fusor_array_size(a); i++) {
        unsigned char want[8];
        expected(dt, i, want);
        if (memcmp(element(a, i), want, n)) return 0;
    }
    return 1;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

/* A file with the given version, dict (padded like NumPy) and data bytes. */
static void write_npy(const char *path, int major, const char *dict, const void *data,
                      size_t ndata) {
    static unsigned char buf[1 << 16];
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
    size_t hlen = n + 1 + (64 - (pre + n + 1) % 64) % 64;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, n);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, ndata);
    write_bytes(path, buf, pre + hlen + ndata);
}

#define CHECK_FAILS(expr, status, needle)                                                          \
    do {                                                                                           \
        fusor_status st_ = (expr);                                                                 \
        CHECK_MSG(st_ == (status), "%s: got %s: %s", #expr, fusor_status_name(st_),                \
                  fusor_last_error());                                                             \
        CHECK_MSG(strstr(fusor_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",       \
                  fusor_last_error(), needle);                                                     \
    } while (0)

/* Loads a file that must fail, with `status` and a message naming the file and `needle`. */
static void check_load_fails(const char *path, fusor_status status, const char *needle) {
    fusor_array *a = (fusor_array *)&a;
    CHECK_FAILS(fusor_npy_load(NULL, path, &a), status, path);
    CHECK_MSG(strstr(fusor_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", path,
              fusor_last_error(), needle);
    CHECK(a == NULL);
}

static void test_every_dtype_and_rank_loads_and_saves_like_numpy(void) {
    for (int c = 0; c < NUM_CODES; c++)
        for (int rank = 0; rank <= 3; rank++) {
            char name[64];
            snprintf(name, sizeof name, "%s_r%d.npy", dtypes[c].code, rank);
            fusor_array *a = NULL;
            CHECK_OK(fusor_npy_load(NULL, fixture(name), &a));
            if (!a) continue;
            CHECK_MSG(a->dtype == dtypes[c].dtype && a->ndim == rank, "%s", name);
            int64_t stride = dtypes[c].size;
            for (int d = rank - 1; d >= 0; d--) {
                CHECK_MSG(a->shape[d] == rank_shapes[rank][d], "%s shape[%d]", name, d);
                CHECK_MSG(a->strides[d] == stride, "%s strides[%d]", name, d);
                stride *= rank_shapes[rank][d];
            }
            CHECK_MSG(values_match(a, dtypes[c].dtype), "%s values", name);
            CHECK_MSG((uintptr_t)a->data % 64 == 0, "%s data alignment", name);
            CHECK_OK(fusor_npy_save(tmp(name), a));
            CHECK_MSG(same_bytes(tmp(name), fixture(name)), "%s: saved bytes differ from NumPy's",
                      name);
            fusor_array_destroy(a);
            unlink(tmp(name));
        }
}

static void test_fortran_order_loads_with_fortran_strides(void) {
    for (int c = 0; c < NUM_CODES; c++) {
        char name[64], cname[64];
        snprintf(name, sizeof name, "%s_r3_f.npy", dtypes[c].code);
        snprintf(cname, sizeof cname, "%s_r3.npy", dtypes[c].code);
        fusor_array *a = NULL;
        CHECK_OK(fusor_npy_load(NULL, fixture(name), &a));
        if (!a) continue;
        int64_t s = dtypes[c].size;
        CHECK_MSG(a->ndim == 3 && a->shape[0] == 2 && a->shape[1] == 3 && a->shape[2] == 4, "%s",
                  name);
        CHECK_MSG(a->strides[0] == s && a->strides[1] == 2 * s && a->strides[2] == 6 * s, "%s",
                  name);
        CHECK_MSG(!mem_array_is_c_contiguous(a), "%s", name);
        CHECK_MSG(values_match(a, dtypes[c].dtype), "%s values", name);
        /* Saved in C order, it must be exactly NumPy's C-order file of the same values. */
        CHECK_OK(fusor_npy_save(tmp(name), a));
        CHECK_MSG(same_bytes(tmp(name), fixture(cname)), "%s: saved bytes differ", name);
        fusor_array_destroy(a);
        unlink(tmp(name));
    }
}

static void check_fixture_equals(const char *name, fusor_dtype dt, int ndim, const char *cname) {
    fusor_array *a = NULL;
    CHECK_OK(fusor_npy_load(NULL, fixture(name), &a));
    if (!a) return;
    CHECK_MSG(a->dtype == dt && a->ndim == ndim, "%s", name);
    CHECK_MSG(values_match(a, dt), "%s values", name);
    CHECK_OK(fusor_npy_save(tmp(name), a));
    CHECK_MSG(same_bytes(tmp(name), fixture(cname)), "%s: saved bytes differ from %s", name, cname);
    unlink(tmp(name));
    fusor_array_destroy(a);
}

static void test_versions_2_and_3_and_rank_2_fortran(void) {
    check_fixture_equals("f8_r2_v2.npy", FUSOR_F64, 2, "f8_r2.npy");
    check_fixture_equals("f8_r2_v3.npy", FUSOR_F64, 2, "f8_r2.npy");
    check_fixture_equals("i4_r3_f_v3.npy", FUSOR_I32, 3, "i4_r3.npy");
    check_fixture_equals("f8_r2_f.npy", FUSOR_F64, 2, "f8_r2.npy");
}

static void test_empty_arrays_and_special_floats(void) {
    const char *names[] = {"f8_empty_r1.npy", "f8_empty_r2.npy", "f8_empty_r8.npy"};
    const int ranks[] = {1, 2, 8}, zero_axis[] = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
        fusor_array *a = NULL;
        CHECK_OK(fusor_npy_load(NULL, fixture(names[i]), &a));
        if (!a) continue;
        CHECK(fusor_array_size(a) == 0 && a->ndim == ranks[i] && a->shape[zero_axis[i]] == 0);
        CHECK_OK(fusor_npy_save(tmp(names[i]), a));
        CHECK_MSG(same_bytes(tmp(names[i]), fixture(names[i])), "%s", names[i]);
        unlink(tmp(names[i]));
        fusor_array_destroy(a);
    }
    static const uint64_t bits[6] = {0x7ff8000000000000ull,
                                     0x7ff0000000000000ull,
                                     0xfff0000000000000ull,
                                     0x8000000000000000ull,
                                     1,
                                     0x7fefffffffffffffull};
    fusor_array *a = NULL;
    CHECK_OK(fusor_npy_load(NULL, fixture("f8_special.npy"), &a));
    if (a) CHECK(a->shape[0] == 6 && !memcmp(a->data, bits, sizeof bits));
    fusor_array_destroy(a);
    /* NaN, +-inf, -0, the smallest subnormal (6e-8 rounds to 2^-24), the largest half, and
     * 0.1 rounded to half: NumPy's bits, loaded as they are and saved back the same. */
    static const uint16_t hbits[7] = {0x7e00, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x7bff, 0x2e66};
    a = NULL;
    CHECK_OK(fusor_npy_load(NULL, fixture("f2_special.npy"), &a));
    if (a) {
        CHECK(a->dtype == FUSOR_F16 && a->shape[0] == 7 && !memcmp(a->data, hbits, sizeof hbits));
        CHECK_OK(fusor_npy_save(tmp("f2.npy"), a));
        CHECK(same_bytes(tmp("f2.npy"), fixture("f2_special.npy")));
        unlink(tmp("f2.npy"));
    }
    fusor_array_destroy(a);
}

/* Arrays with transposed, reversed and zero strides: NumPy saved the same views. */
static void test_strided_arrays_save_in_c_order(void) {
    fusor_array *src = NULL, *v = NULL;
    CHECK_OK(fusor_npy_load(NULL, fixture("f8_r2.npy"), &src));
    REQUIRE_VOID(src);
    int64_t tshape[2] = {4, 3}, tstrides[2] = {8, 32};
    CHECK_OK(fusor_array_wrap(NULL, src->data, FUSOR_F64, 2, tshape, tstrides, &v));
    CHECK_OK(fusor_npy_save(tmp("t.npy"), v));
    CHECK(same_bytes(tmp("t.npy"), fixture("f8_r2_T.npy")));
    fusor_array_destroy(v);
    fusor_array_destroy(src);

    CHECK_OK(fusor_npy_load(NULL, fixture("i2_r3.npy"), &src));
    REQUIRE_VOID(src);
    int64_t rstrides[3] = {-24, 8, -2};
    CHECK_OK(fusor_array_wrap(NULL, src->data + 24 + 6, FUSOR_I16, 3, src->shape, rstrides, &v));
    CHECK_OK(fusor_npy_save(tmp("t.npy"), v));
    CHECK(same_bytes(tmp("t.npy"), fixture("i2_r3_rev.npy")));
    fusor_array_destroy(v);
    fusor_array_destroy(src);

    CHECK_OK(fusor_npy_load(NULL, fixture("u1_r1.npy"), &src));
    REQUIRE_VOID(src);
    int64_t bshape[2] = {3, 4}, bstrides[2] = {0, 1};
    CHECK_OK(fusor_array_wrap(NULL, src->data, FUSOR_U8, 2, bshape, bstrides, &v));
    CHECK_OK(fusor_npy_save(tmp("t.npy"), v));
    CHECK(same_bytes(tmp("t.npy"), fixture("u1_bcast.npy")));
    fusor_array_destroy(v);
    fusor_array_destroy(src);
    unlink(tmp("t.npy"));
}

static void test_unsupported_dtypes_name_file_and_descr(void) {
    static const struct {
        const char *name, *needle;
    } cases[] = {{"be_f8.npy", "'>f8'"},   {"be_i4.npy", "'>i4'"}, {"c16.npy", "'<c16'"},
                 {"unicode.npy", "'<U3'"}, {"object.npy", "'|O'"}, {"structured.npy", "structured"},
                 {"r9.npy", "dimensions"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_load_fails(fixture(cases[i].name), FUSOR_ERROR_UNSUPPORTED, cases[i].needle);
}

static const double eight[2] = {1.5, -2.0};

static void test_malformed_files_are_io_errors(void) {
    const char *p = tmp("bad.npy");
    check_load_fails(tmp("missing.npy"), FUSOR_ERROR_IO, "cannot open");

    write_bytes(p, "", 0);
    check_load_fails(p, FUSOR_ERROR_IO, "magic");
    write_bytes(p, "\x93NUM", 4);
    check_load_fails(p, FUSOR_ERROR_IO, "magic");
    write_bytes(p, "\x93NUMPX\x01\x00\x10\x00{}", 12);
    check_load_fails(p, FUSOR_ERROR_IO, "magic");
    write_bytes(p, "\x93NUMPY\x04\x00\x10\x00\x00\x00{}", 14);
    check_load_fails(p, FUSOR_ERROR_UNSUPPORTED, "version 4.0");
    write_bytes(p, "\x93NUMPY\x01\x01\x10\x00{}", 12);
    check_load_fails(p, FUSOR_ERROR_UNSUPPORTED, "version 1.1");
    write_bytes(p, "\x93NUMPY\x02\x00\x10\x00", 10); /* 2.0 needs a 4-byte length */
    check_load_fails(p, FUSOR_ERROR_IO, "truncated");
    write_bytes(p, "\x93NUMPY\x01\x00\x40\x00{'descr': '<f8'", 24);
    check_load_fails(p, FUSOR_ERROR_IO, "truncated header");
    write_bytes(p, "\x93NUMPY\x02\x00\xff\xff\xff\x7f{}", 14);
    check_load_fails(p, FUSOR_ERROR_IO, "too long");

    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
    write_npy(p, 1, dict, eight, 15);
    check_load_fails(p, FUSOR_ERROR_IO, "needs 16 data bytes but the file has 15");
    unsigned char more[17] = {0};
    write_npy(p, 1, dict, more, 17);
    check_load_fails(p, FUSOR_ERROR_IO, "needs 16 data bytes but the file has 17");
    write_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }",
              eight, 16);
    check_load_fails(p, FUSOR_ERROR_IO, "needs 8000000000000 data bytes");
    write_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }",
              eight, 16);
    check_load_fails(p, FUSOR_ERROR_IO, "overflows int64");
    write_npy(p, 1, "{'descr': '<u1', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
              eight, 16);
    check_load_fails(p, FUSOR_ERROR_IO, "overflows int64");
    write_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775808,), }",
              eight, 16);
    check_load_fails(p, FUSOR_ERROR_IO, "shape[0] overflows int64");
    unlink(p);
}

/* Header dicts that must be refused, each with a word of the expected message. */
static void test_malformed_headers_are_io_errors(void) {
    static const struct {
        const char *dict, *needle;
    } cases[] = {
        {"{'fortran_order': False, 'shape': (2,), }", "no 'descr'"},
        {"{'descr': '<f8', 'shape': (2,), }", "no 'fortran_order'"},
        {"{'descr': '<f8', 'fortran_order': False, }", "no 'shape'"},
        {"{}", "no 'descr'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}",
         "unexpected header key 'x'"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", "twice"},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (2,)}", "expected ','"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2)}", "not a tuple"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", "must be a tuple"},
        {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}", "True or False"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", "after the dict"},
        {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,)}", "expected ','"},
        {"{'descr': '<f8', 'fortran_order' False, 'shape': (2,)}", "expected ':'"},
        {"{'descr': 'nonsense', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}", "twice"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", "shape[0] is negative"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,,)}", "expected an integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (02,)}", "leading zero"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (0x2,)}", "bad integer"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)", "expected ',' or '}'"},
        {"'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", "expected '{'"},
        {"{descr: '<f8', 'fortran_order': False, 'shape': (2,)}", "expected a string"},
        {"{'descr': 'f\\8', 'fortran_order': False, 'shape': (2,)}", "unsupported character"},
    };
    const char *p = tmp("bad.npy");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_npy(p, 1, cases[i].dict, eight, 16);
        check_load_fails(p, FUSOR_ERROR_IO, cases[i].needle);
    }
    unlink(p);
}

/* Spellings NumPy (or an older NumPy, or a hand-written file) may produce. */
static void test_header_variants_are_accepted(void) {
    static const struct {
        const char *dict;
        fusor_dtype dtype;
        int fortran, ndim;
        int64_t shape0;
    } cases[] = {
        {"{'shape': (2, 4), 'fortran_order': True, 'descr': '<f8'}", FUSOR_F64, 1, 2, 2},
        {"{ \"descr\" : \"<u1\" ,\t'fortran_order':False,'shape':( 2 , 4 , ) , }", FUSOR_U8, 0, 2,
         2},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (8,)}", FUSOR_U8, 0, 1, 8},
        {"{'descr': '<i1', 'fortran_order': False, 'shape': (8,)}", FUSOR_I8, 0, 1, 8},
        {"{'descr': '>i1', 'fortran_order': False, 'shape': (8,)}", FUSOR_I8, 0, 1, 8},
        {"{'descr': 'b1', 'fortran_order': False, 'shape': (8,)}", FUSOR_BOOL, 0, 1, 8},
        {"{'descr': '<u2', 'fortran_order': False, 'shape': (4L,)}", FUSOR_U16, 0, 1, 4},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 8)}", FUSOR_I64,
         0, 8, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0, 1)}", FUSOR_F32, 0, 3, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mem_npy_header h;
        const char *d = cases[i].dict;
        fusor_status st = mem_npy_parse_header("x.npy", d, strlen(d), &h);
        CHECK_MSG(st == FUSOR_OK, "%s: %s", d, fusor_last_error());
        CHECK_MSG(h.dtype == cases[i].dtype && h.fortran_order == cases[i].fortran &&
                      h.ndim == cases[i].ndim && h.shape[0] == cases[i].shape0,
                  "%s", d);
    }
    /* Padding to 16 bytes (NumPy before 1.9) and a header with no final newline. */
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
    unsigned char old[80 + 8];
    memset(old, ' ', 80);
    memcpy(old, "\x93NUMPY\x01\x00\x46\x00", 10); /* 10 + 70 header bytes: 16-aligned */
    memcpy(old + 10, dict, strlen(dict));
    memcpy(old + 80, eight, 8);
    const char *p = tmp("var.npy");
    write_bytes(p, old, sizeof old);
    fusor_array *a = NULL;
    CHECK_OK(fusor_npy_load(NULL, p, &a));
    CHECK(a && a->shape[0] == 1 && ((double *)a->data)[0] == 1.5);
    fusor_array_destroy(a);
    unlink(p);
}

static void test_bools_load_as_zero_or_one(void) {
    const unsigned char bytes[6] = {0, 1, 2, 255, 0, 128};
    const char *p = tmp("bool.npy");
    write_npy(p, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (6,), }", bytes, 6);
    fusor_array *a = NULL;
    CHECK_OK(fusor_npy_load(NULL, p, &a));
    if (a) CHECK(!memcmp(a->data, "\0\1\1\1\0\1", 6));
    fusor_array_destroy(a);
    /* A wrapped bool buffer holding 2 is saved as 1, as NumPy would read it. */
    unsigned char raw[3] = {2, 0, 7};
    int64_t n = 3;
    CHECK_OK(fusor_array_wrap(NULL, raw, FUSOR_BOOL, 1, &n, NULL, &a));
    CHECK_OK(fusor_npy_save(p, a));
    fusor_array_destroy(a);
    size_t len = 0;
    unsigned char *file = slurp(p, &len);
    CHECK(file && len == 128 + 3 && !memcmp(file + 128, "\1\0\1", 3));
    free(file);
    unlink(p);
}

/* A pipe has no size to check up front: the reader itself must notice short and long data. */
static void check_pipe_load_fails(const unsigned char *bytes, size_t n, const char *needle) {
    const char *p = tmp("fifo.npy");
    unlink(p);
    if (mkfifo(p, 0600) != 0) return;
    pid_t child = fork();
    if (child == 0) {
        FILE *f = fopen(p, "wb");
        if (f) {
            fwrite(bytes, 1, n, f);
            fclose(f);
        }
        _exit(0);
    }
    check_load_fails(p, FUSOR_ERROR_IO, needle);
    waitpid(child, NULL, 0);
    unlink(p);
}

static void test_pipes_with_wrong_data_length_are_io_errors(void) {
    const char *p = tmp("src.npy");
    unsigned char data[17] = {0};
    size_t len = 0;
    write_npy(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data, 17);
    unsigned char *file = slurp(p, &len);
    if (!file) return;
    check_pipe_load_fails(file, len, "has more");
    check_pipe_load_fails(file, len - 2, "has only 15");
    free(file);
    unlink(tmp("src.npy"));
}

static void test_save_errors(void) {
    fusor_array *a = NULL;
    int64_t shape[2] = {3, 5};
    CHECK_OK(fusor_array_create(NULL, FUSOR_F32, 2, shape, &a));
    REQUIRE_VOID(a);
    memset(a->data, 0, 60);
    const char *nodir = tmp("no/such/dir.npy");
    CHECK_FAILS(fusor_npy_save(nodir, a), FUSOR_ERROR_IO, nodir);
    CHECK_FAILS(fusor_npy_save(NULL, a), FUSOR_ERROR_INVALID_ARGUMENT, "path");
    CHECK_FAILS(fusor_npy_save(tmp("x.npy"), NULL), FUSOR_ERROR_INVALID_ARGUMENT, "NULL");
    if (access("/dev/full", W_OK) == 0)
        CHECK_FAILS(fusor_npy_save("/dev/full", a), FUSOR_ERROR_IO, "/dev/full");
    /* The write buffer of a strided save cannot be had: no file is left behind. */
    int64_t tstrides[2] = {4, 12};
    fusor_array *t = NULL;
    CHECK_OK(fusor_array_wrap(NULL, a->data, FUSOR_F32, 2, shape, tstrides, &t));
    fu_alloc_fail_after(0);
    fusor_status st = fusor_npy_save(tmp("oom.npy"), t);
    fu_alloc_fail_after(-1);
    CHECK(st == FUSOR_ERROR_OUT_OF_MEMORY);
    CHECK(access(tmp("oom.npy"), F_OK) != 0);
    fusor_array_destroy(t);
    fusor_array_destroy(a);
}

static void test_load_survives_every_allocation_failure(void) {
    int ok = 0;
    for (long k = 0; k < 10 && !ok; k++) {
        fusor_array *a = NULL;
        fu_alloc_fail_after(k);
        fusor_status st = fusor_npy_load(NULL, fixture("f8_r3.npy"), &a);
        fu_alloc_fail_after(-1);
        CHECK_MSG(st == FUSOR_OK || st == FUSOR_ERROR_OUT_OF_MEMORY, "k=%ld: %s", k,
                  fusor_status_name(st));
        CHECK(st == FUSOR_OK ? a != NULL : a == NULL);
        ok = st == FUSOR_OK;
        if (ok) CHECK(values_match(a, FUSOR_F64));
        fusor_array_destroy(a);
    }
    CHECK(ok);
    fusor_array *a = NULL;
    CHECK_FAILS(fusor_npy_load(NULL, NULL, &a), FUSOR_ERROR_INVALID_ARGUMENT, "path");
    CHECK_FAILS(fusor_npy_load(NULL, fixture("f8_r1.npy"), NULL), FUSOR_ERROR_INVALID_ARGUMENT,
                "out");
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_every_dtype_and_rank_loads_and_saves_like_numpy();
    test_fortran_order_loads_with_fortran_strides();
    test_versions_2_and_3_and_rank_2_fortran();
    test_empty_arrays_and_special_floats();
    test_strided_arrays_save_in_c_order();
    test_unsupported_dtypes_name_file_and_descr();
    test_malformed_files_are_io_errors();
    test_malformed_headers_are_io_errors();
    test_header_variants_are_accepted();
    test_bools_load_as_zero_or_one();
    test_pipes_with_wrong_data_length_are_io_errors();
    test_save_errors();
    test_load_survives_every_allocation_failure();
    rmdir(tmpdir);
    return check_done();
}
