/*
 * test_f16_bits.c — f16 operations on every one of the 65536 half bit patterns (NaNs,
 * signalling NaNs, infinities, subnormals, both zeros), the JIT against the reference
 * interpreter bit for bit (a NaN matches any NaN, as in test_numeric_edges: which NaN an
 * operation on two NaNs returns is the hardware's).  The host code generator rewrites
 * several f16 forms that LLVM's x86 back end would take element by element (codegen/host.c
 * widen_half, emit.c f16_copysign and f64_to_f32_odd); these are the results they must
 * keep: compares and exact functions equal their f32 forms, integers and f64 values round
 * to half once.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fusor.h"
#include "scheduler.h"

enum { NPAT = 65536, N = 4 * NPAT };

static fusor_context *ctx;

static int half_nan(uint16_t h) { return (h & 0x7fff) > 0x7c00; }

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void) { return check_xorshift(&rng); }

/* Runs `src` (inputs a, b of dtype `in`; outputs o1..o4 as the kernel declares them) over
 * the arrays given, by the JIT (2 threads) and the interpreter; every output must agree
 * bit for bit. */
static void agree(const char *what, const char *src, fusor_dtype in, void *a, void *b, int nouts,
                  const fusor_dtype *outs) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_kernel_compile(ctx, src, "f16.fu", NULL, &k));
    if (!k)
        return;
    int64_t n = N;
    fusor_array *A, *B;
    CHECK_OK(fusor_array_wrap(ctx, a, in, 1, &n, NULL, &A));
    CHECK_OK(fusor_array_wrap(ctx, b, in, 1, &n, NULL, &B));
    static uint16_t got[2][4][N]; /* up to 2 bytes an element: f16, i16, bool */
    fusor_args *args;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_array(args, "a", A));
    CHECK_OK(fusor_args_set_array(args, "b", B));
    for (int run = 0; run < 2; run++) {
        fusor_array *O[4] = {0};
        for (int j = 0; j < nouts; j++) {
            char name[8];
            snprintf(name, sizeof name, "o%d", j + 1);
            memset(got[run][j], 0xa5, sizeof got[run][j]); /* poisoned */
            CHECK_OK(fusor_array_wrap(ctx, got[run][j], outs[j], 1, &n, NULL, &O[j]));
            CHECK_OK(fusor_args_set_array(args, name, O[j]));
        }
        fusor_set_num_threads(2);
        CHECK_MSG((run ? sched_launch_reference(k, args) : fusor_launch(k, args)) == FUSOR_OK,
                  "%s: %s", what, fusor_last_error());
        for (int j = 0; j < nouts; j++)
            fusor_array_destroy(O[j]);
    }
    fusor_set_num_threads(0);
    for (int j = 0; j < nouts; j++) {
        size_t es = fusor_dtype_size(outs[j]);
        long bad = 0, first = -1;
        for (long i = 0; i < N; i++) {
            if (!memcmp((char *)got[0][j] + i * es, (char *)got[1][j] + i * es, es))
                continue;
            if (outs[j] == FUSOR_F16 && half_nan(got[0][j][i]) && half_nan(got[1][j][i]))
                continue;
            if (!bad++)
                first = i;
        }
        uint16_t ja = 0, ra = 0;
        if (first >= 0) {
            memcpy(&ja, (char *)got[0][j] + first * es, es);
            memcpy(&ra, (char *)got[1][j] + first * es, es);
        }
        CHECK_MSG(bad == 0,
                  "%s, output o%d: %ld of %d differ (first at %ld: JIT %04x, interp %04x)", what,
                  j + 1, bad, N, first, ja, ra);
    }
    fusor_args_destroy(args);
    fusor_array_destroy(A);
    fusor_array_destroy(B);
    fusor_kernel_destroy(k);
}

/* Every half pattern as a (four times), against b: patterns at random, and a's own
 * pattern with the sign flipped. */
static void test_half_ops(void) {
    static uint16_t a[N], b[N];
    for (int i = 0; i < N; i++) {
        a[i] = (uint16_t)i;
        b[i] = i < 2 * NPAT ? (uint16_t)next() : (uint16_t)(i ^ 0x8000);
    }
    static const fusor_dtype f4[4] = {FUSOR_F16, FUSOR_F16, FUSOR_F16, FUSOR_F16};
    agree("negation, copysign, abs, floor",
          "kernel k(a: f16[], b: f16[]) -> (o1: f16[], o2: f16[], o3: f16[], o4: f16[]) {\n"
          "  o1 = -a\n  o2 = copysign(a, b)\n  o3 = abs(a)\n  o4 = floor(a) + ceil(b)\n}\n",
          FUSOR_F16, a, b, 4, f4);
    static const fusor_dtype mixed[4] = {FUSOR_BOOL, FUSOR_BOOL, FUSOR_F16, FUSOR_I16};
    agree("compares, isnan, maximum, cast to i16",
          "kernel k(a: f16[], b: f16[]) -> (o1: bool[], o2: bool[], o3: f16[], o4: i16[]) {\n"
          "  o1 = a < b\n  o2 = isnan(a) | (a == b)\n  o3 = maximum(a, b)\n  o4 = i16(a)\n}\n",
          FUSOR_F16, a, b, 4, mixed);
    static int16_t ia[N], ib[N];
    for (int i = 0; i < N; i++)
        ia[i] = (int16_t)a[i], ib[i] = (int16_t)b[i];
    static const fusor_dtype f1[1] = {FUSOR_F16};
    agree("i16 -> f16", "kernel k(a: i16[], b: i16[]) -> (o1: f16[]) { o1 = f16(a) - f16(b) }",
          FUSOR_I16, ia, ib, 1, f1);
}

/* f64 -> f16 rounds once: every half's neighbourhood (the value, halfway to the next, a
 * step either side of halfway) and random doubles of every exponent. */
static void test_f64_to_f16(void) {
    static double a[N], b[N];
    for (int i = 0; i < N; i++) {
        uint16_t h = (uint16_t)i, h2 = (uint16_t)(h + 1);
        _Float16 x, y;
        memcpy(&x, &h, 2);
        memcpy(&y, &h2, 2);
        double mid = ((double)x + (double)y) / 2;
        switch (i / NPAT) {
        case 0: a[i] = mid; break;
        case 1: a[i] = nextafter(mid, INFINITY); break;
        case 2: a[i] = nextafter(mid, -INFINITY); break;
        default: {
            uint64_t bits = next();
            memcpy(&a[i], &bits, 8);
        }
        }
        b[i] = (double)x;
    }
    static const fusor_dtype f2[2] = {FUSOR_F16, FUSOR_F16};
    agree("f64 -> f16",
          "kernel k(a: f64[], b: f64[]) -> (o1: f16[], o2: f16[]) {\n"
          "  o1 = f16(a)\n  o2 = f16(b)\n}\n",
          FUSOR_F64, a, b, 2, f2);
}

int main(void) {
    fusor_context_options o = {0};
    o.disk_cache = -1;
    if (fusor_context_create(&o, &ctx) != FUSOR_OK) {
        fprintf(stderr, "context: %s\n", fusor_last_error());
        return 1;
    }
    test_half_ops();
    test_f64_to_f16();
    fusor_context_destroy(ctx);
    return check_done();
}
