/*
 * test_differential.c — random kernels run by the LLVM JIT (fusor_launch) and by the
 * reference interpreter (sched_launch_reference), outputs compared.
 *
 * Each program is generated as source text from a seed (gen.c): 1-4 inputs of random
 * dtypes (arrays or scalars), lets, 1-3 outputs (arrays, and scalars holding reductions),
 * sometimes generic, sometimes beside a second kernel.  It is bound to random data in
 * random layouts: broadcast (size-1 and missing dimensions), size-0 dimensions, views
 * over larger buffers with negative, Fortran-order and zero strides, outputs allocated by
 * fusor or in place over an input, now and then shapes that do not broadcast.  Programs
 * take turns over the three math modes (default, fast, scalar), with the disk cache off.
 *
 * The JIT runs the program; the interpreter runs its twin (gen.c), in which every float
 * sum/prod/mean is a scalar parameter bound to the JIT's value, so that everything after a
 * float reduction is compared as strictly as everything else.  Every run starts from the
 * same bytes, with outputs poisoned by a different byte per back end (an element neither
 * writes is a mismatch too).  Also checked on every run: inputs are not modified, no byte
 * of an output buffer outside its view is touched, a failed launch touches no output, and
 * both back ends fail alike.  The JIT is run with 1, 2 and 3 threads and must give the
 * same bits; the interpreter is run again on arguments this test copies into plain
 * C-ordered arrays of the domain's shape and must give the same bits (the launcher's
 * broadcasting and strides are shared by both back ends, so only this checks them).
 *
 * Comparison (see gen.c for the classes):
 *   integers, bools   exact.
 *   EXACT floats      equal (NaN equals NaN; +0 against -0 is counted, not failed).
 *   scalar math mode  as below with tol = 1e-13 (f64) or 1e-6 (f32 math): the JIT calls
 *                     the interpreter's libm functions; only LLVM's constant folding of a
 *                     libm call (in double, where glibc's float functions may be an ulp
 *                     off) makes a difference.
 *   APPROX floats     |a - b| <= tol * max(1, |b|), tol = 1e-7 (f64) or 1e-3 (values that
 *                     went through f32 math): the default and fast modes use SLEEF or
 *                     libmvec (<= 1 and <= 4 ulp) where the interpreter uses libm, and
 *                     random expressions rarely amplify that past 1e8 (f64) or 1e4 (f32).
 *                     NaN or inf against a number (an APPROX value at a domain edge, such
 *                     as arccos of 1 + 1 ulp) is allowed in at most 2% of the elements.
 *   WILD values       at most 5% of the elements may differ (a comparison of an APPROX
 *                     value flips only where it is within rounding of the threshold).
 *   float reductions  r<j> of the JIT against the twin's, which sums the same terms.
 *                     Any summation order (a tree of depth h <= n - 1) is within
 *                     gamma_h * S of the exact sum, gamma_h = h*u / (1 - h*u), S = sum |x_i|
 *                     (Higham, Accuracy and Stability of Numerical Algorithms, 4.2), so two
 *                     differ by at most 2 * gamma_n * S; the twin computes S itself
 *                     (s<j> = sum(abs(f64(terms)))).  A mean adds its division's rounding to
 *                     that over n; a product is within gamma_n * |p| of the exact one (2 *
 *                     gamma_n relative between two), unless it under- or overflowed on the
 *                     way.  APPROX terms add their own tolerance.
 *
 * Environment: FUSOR_DIFF_SEED (default 1), FUSOR_DIFF_COUNT (default 2000),
 * FUSOR_DIFF_ONLY=i (run program i only), FUSOR_DIFF_VERBOSE=1 (print refused programs and
 * the checker's message).  A mismatch prints the program and its twin, the seed and index
 * to rerun it alone, the math mode, the layouts, the first differing element and the input
 * values there.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fusor.h"
#include "run.h"
#include "scheduler.h"

#include "gen.c"

#define MAXD 3

/* ------------------------------------------------------------------ elements */

typedef union elem {
    int64_t i;
    uint64_t u;
    double f;
} elem;

static elem load_elem(const unsigned char *p, int dt) {
    elem e = {0};
    switch (dt) {
    case FUSOR_BOOL: e.u = p[0]; break;
    case FUSOR_I8: e.i = *(const int8_t *)p; break;
    case FUSOR_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        e.i = v;
    } break;
    case FUSOR_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        e.i = v;
    } break;
    case FUSOR_I64: memcpy(&e.i, p, 8); break;
    case FUSOR_U8: e.u = p[0]; break;
    case FUSOR_U16: {
        uint16_t v;
        memcpy(&v, p, 2);
        e.u = v;
    } break;
    case FUSOR_U32: {
        uint32_t v;
        memcpy(&v, p, 4);
        e.u = v;
    } break;
    case FUSOR_U64: memcpy(&e.u, p, 8); break;
    case FUSOR_F32: {
        float v;
        memcpy(&v, p, 4);
        e.f = v;
    } break;
    case FUSOR_F16: {
        uint16_t v;
        memcpy(&v, p, 2);
        e.f = fusor_f16_to_f64(v);
    } break;
    default: memcpy(&e.f, p, 8); break;
    }
    return e;
}

static void store_elem(unsigned char *p, int dt, elem e) {
    switch (fusor_dtype_size((fusor_dtype)dt)) {
    case 1: p[0] = (unsigned char)e.u; break;
    case 2: {
        uint16_t v = dt == FUSOR_F16 ? fusor_f16_from_f64(e.f) : (uint16_t)e.u;
        memcpy(p, &v, 2);
    } break;
    case 4:
        if (dt == FUSOR_F32) {
            float v = (float)e.f;
            memcpy(p, &v, 4);
        } else {
            uint32_t v = (uint32_t)e.u;
            memcpy(p, &v, 4);
        }
        break;
    default: memcpy(p, &e, 8); break;
    }
}

static void format_elem(char *buf, size_t n, int dt, elem e) {
    if (dt == FUSOR_BOOL)
        snprintf(buf, n, "%s(%u)", e.u == 1 ? "true" : e.u ? "BAD" : "false", (unsigned)e.u);
    else if (dt_is_float(dt))
        snprintf(buf, n, dt == FUSOR_F16 ? "%.5g" : dt == FUSOR_F32 ? "%.9g" : "%.17g", e.f);
    else if (dt_is_unsigned(dt))
        snprintf(buf, n, "%" PRIu64, e.u);
    else
        snprintf(buf, n, "%" PRId64, e.i);
}

/* A random value for an input, by the array's value mode. */
static elem random_value(rng *r, int dt, int mode, double specials) {
    elem e = {0};
    if (dt == FUSOR_BOOL) {
        e.u = rnext(r) & 1;
        return e;
    }
    if (dt_is_float(dt)) {
        if (specials > 0 && chance(r, specials)) {
            static const double sp[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0};
            e.f = sp[rint_in(r, 0, 6)];
            return e;
        }
        switch (mode) {
        case 0: e.f = 0.05 + 3.95 * runif(r); break;
        case 1: e.f = -4 + 8 * runif(r); break;
        case 2: e.f = -1 + 2 * runif(r); break;
        case 3: e.f = (chance(r, 0.5) ? -1 : 1) * pow(10, -3 + 6 * runif(r)); break;
        default: e.f = rint_in(r, -16, 16) * 0.5; break;
        }
        if (dt == FUSOR_F32)
            e.f = (float)e.f;
        if (dt == FUSOR_F16)
            e.f = fusor_f16_to_f64(fusor_f16_from_f64(e.f));
        return e;
    }
    int unsig = dt_is_unsigned(dt);
    switch (mode) {
    case 0:
    case 1:
    case 4: e.i = unsig ? rint_in(r, 0, 24) : rint_in(r, -12, 12); break;
    case 2: e.i = rint_in(r, 0, 9); break;
    default: e.u = rnext(r); break; /* stored truncated: any bit pattern */
    }
    return e;
}

/* ------------------------------------------------------------------ arrays */

typedef struct garr {
    int dtype, ndim;
    int64_t shape[MAXD], strides[MAXD];
    size_t nbytes, offset;
    unsigned char *init; /* the buffer's bytes before every run */
    unsigned char *buf;  /* the working copy */
    unsigned char *mask; /* 1 where a byte belongs to an element of the view */
    int zero_stride;
    int mode; /* value mode */
    double specials;
} garr;

static int64_t shape_size(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

/* Byte offset (from the data pointer) of element `flat` in C order of the view. */
static int64_t elem_offset(const garr *A, int64_t flat) {
    int64_t off = 0;
    for (int d = A->ndim - 1; d >= 0; d--) {
        int64_t i = flat % A->shape[d];
        flat /= A->shape[d];
        off += i * A->strides[d];
    }
    return off;
}

/* Chooses strides (C order, Fortran order, gaps, negative, zero) and the buffer. */
static void layout(rng *r, garr *A, int allow_zero) {
    size_t es = fusor_dtype_size((fusor_dtype)A->dtype);
    int kind = rint_in(r, 0, 9);
    int order[MAXD]; /* fastest first */
    for (int d = 0; d < A->ndim; d++)
        order[d] = A->ndim - 1 - d;
    if (kind == 5 || (kind >= 6 && chance(r, 0.3)))
        for (int d = 0; d < A->ndim; d++)
            order[d] = d; /* Fortran */
    int64_t acc = kind >= 6 ? rint_in(r, 1, 3) : 1;
    for (int x = 0; x < A->ndim; x++) {
        int d = order[x];
        int neg = kind >= 6 && chance(r, 0.4);
        A->strides[d] = (neg ? -1 : 1) * acc * (int64_t)es;
        if (allow_zero && kind == 9 && A->shape[d] > 1 && chance(r, 0.6)) {
            A->strides[d] = 0;
            A->zero_stride = 1;
        }
        acc *= (A->shape[d] > 0 ? A->shape[d] : 1) * (kind >= 6 ? rint_in(r, 1, 2) : 1);
    }
    int64_t lo = 0, hi = (int64_t)es;
    int empty = shape_size(A->ndim, A->shape) == 0;
    for (int d = 0; d < A->ndim && !empty; d++) {
        int64_t span = (A->shape[d] - 1) * A->strides[d];
        if (span < 0)
            lo += span;
        else
            hi += span;
    }
    size_t pad = kind >= 6 ? 64 : 0;
    A->offset = pad + (size_t)(-lo);
    A->nbytes = A->offset + (size_t)hi + pad;
    A->init = malloc(A->nbytes);
    A->buf = malloc(A->nbytes);
    A->mask = calloc(A->nbytes, 1);
    if (!A->init || !A->buf || !A->mask)
        exit(2);
    int64_t n = shape_size(A->ndim, A->shape);
    for (int64_t i = 0; i < n; i++)
        memset(A->mask + A->offset + elem_offset(A, i), 1, es);
}

static void garr_free(garr *A) {
    free(A->init);
    free(A->buf);
    free(A->mask);
    memset(A, 0, sizeof *A);
}

/* Random bytes everywhere (reading outside the view shows), then the view's values. */
static void fill_input(rng *r, garr *A) {
    for (size_t b = 0; b < A->nbytes; b++)
        A->init[b] = (unsigned char)rnext(r);
    int64_t n = shape_size(A->ndim, A->shape);
    for (int64_t i = 0; i < n; i++)
        store_elem(A->init + A->offset + elem_offset(A, i), A->dtype,
                   random_value(r, A->dtype, A->mode, A->specials));
}

/* ------------------------------------------------------------------ one launch */

typedef struct result {
    fusor_status st;
    char msg[512];
    unsigned char *out[GEN_MAX_OUT]; /* array outputs in C order of the domain */
    elem scal[GEN_MAX_OUT];
    int threads;
    const char *target;
    int integrity_ok;
    char integrity[256];
} result;

typedef struct instance {
    gprog p;
    rng r;
    int dom_ndim;
    int64_t dom_shape[MAXD], dom_size;
    garr in[GEN_MAX_IN];
    elem scalar_in[GEN_MAX_IN];
    int scalar_as_0d[GEN_MAX_IN];
    garr out[GEN_MAX_OUT];
    int out_bound[GEN_MAX_OUT];
    int out_alias[GEN_MAX_OUT]; /* the input an output updates in place, or -1 */
    int expect_shape_error;
} instance;

static void result_free(result *R) {
    for (int j = 0; j < GEN_MAX_OUT; j++)
        free(R->out[j]);
    memset(R, 0, sizeof *R);
}

/* The multi-index of element `flat` (C order) of the domain. */
static void index_of(const instance *I, int64_t flat, int64_t *idx) {
    for (int d = I->dom_ndim - 1; d >= 0; d--) {
        idx[d] = I->dom_shape[d] ? flat % I->dom_shape[d] : 0;
        if (I->dom_shape[d])
            flat /= I->dom_shape[d];
    }
}

/* The buffer an output writes into (its own, or the input it updates in place). */
static garr *out_garr(instance *I, int j) {
    return I->out_alias[j] >= 0 ? &I->in[I->out_alias[j]] : &I->out[j];
}

static void set_integrity(result *R, const char *what, const char *name) {
    if (!R->integrity_ok)
        return;
    R->integrity_ok = 0;
    snprintf(R->integrity, sizeof R->integrity, "%s '%s'", what, name);
}

/* Copies an array output's elements (C order of the domain) out of `base`. */
static unsigned char *read_view(const unsigned char *base, int dt, int ndim, const int64_t *shape,
                                const int64_t *strides, int64_t n) {
    size_t es = fusor_dtype_size((fusor_dtype)dt);
    unsigned char *v = malloc((size_t)(n ? n : 1) * es);
    if (!v)
        exit(2);
    garr tmp = {.ndim = ndim};
    memcpy(tmp.shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(tmp.strides, strides, sizeof(int64_t) * (size_t)ndim);
    for (int64_t i = 0; i < n; i++)
        memcpy(v + (size_t)i * es, base + elem_offset(&tmp, i), es);
    return v;
}

/* The outputs of the program (twin 0: its own, then r<j>) or of its twin (then s<j>). */
static int num_outputs(const gprog *p, int twin) { return p->nreg + p->nfred * (twin ? 2 : 1); }
static gparam output_param(const gprog *p, int j, int twin) {
    if (j < p->nreg + p->nfred)
        return p->out[j];
    gparam o = {.dtype = FUSOR_F64, .is_array = 0};
    snprintf(o.name, sizeof o.name, "s%d", j - p->nreg - p->nfred);
    (void)twin;
    return o;
}

/* One launch of the program (twin 0) on the JIT or the interpreter (`reference`), or of its
 * twin (1) with q<j> bound to `q[j]`.  Every run starts from the inputs' initial bytes and
 * outputs filled with `poison`. */
static void run_once(fusor_context *ctx, fusor_kernel *k, instance *I, int twin, const elem *q,
                     int reference, unsigned char poison, result *R) {
    gprog *p = &I->p;
    int nout = num_outputs(p, twin);
    memset(R, 0, sizeof *R);
    R->integrity_ok = 1;
    for (int i = 0; i < p->nin; i++)
        if (p->in[i].is_array || I->scalar_as_0d[i])
            memcpy(I->in[i].buf, I->in[i].init, I->in[i].nbytes);
    for (int j = 0; j < p->nreg; j++)
        if (I->out_bound[j] && I->out_alias[j] < 0)
            memset(I->out[j].buf, poison, I->out[j].nbytes);

    fusor_args *args = NULL;
    fusor_array *arrs[GEN_MAX_IN + GEN_MAX_OUT] = {0};
    fusor_status st = fusor_args_create(k, &args);
    for (int i = 0; i < p->nin && st == FUSOR_OK; i++) {
        garr *A = &I->in[i];
        if (p->in[i].is_array || I->scalar_as_0d[i]) {
            st = fusor_array_wrap(ctx, A->buf + A->offset, (fusor_dtype)A->dtype, A->ndim, A->shape,
                                  A->strides, &arrs[i]);
            if (st == FUSOR_OK)
                st = fusor_args_set_array(args, p->in[i].name, arrs[i]);
        } else {
            unsigned char v[8];
            store_elem(v, p->in[i].dtype, I->scalar_in[i]);
            st = fusor_args_set_scalar(args, p->in[i].name, (fusor_dtype)p->in[i].dtype, v);
        }
    }
    for (int j = 0; twin && j < p->nfred && st == FUSOR_OK; j++) {
        unsigned char v[8];
        char name[16];
        snprintf(name, sizeof name, "q%d", j);
        store_elem(v, p->fred_dtype[j], q[j]);
        st = fusor_args_set_scalar(args, name, (fusor_dtype)p->fred_dtype[j], v);
    }
    for (int j = 0; j < p->nreg && st == FUSOR_OK; j++) {
        if (!I->out_bound[j])
            continue;
        garr *A = out_garr(I, j);
        st = fusor_array_wrap(ctx, A->buf + A->offset, (fusor_dtype)A->dtype, A->ndim, A->shape,
                              A->strides, &arrs[GEN_MAX_IN + j]);
        if (st == FUSOR_OK)
            st = fusor_args_set_array(args, p->out[j].name, arrs[GEN_MAX_IN + j]);
    }
    if (st != FUSOR_OK) {
        snprintf(R->msg, sizeof R->msg, "binding: %s", fusor_last_error());
        R->st = st;
        set_integrity(R, "could not bind arguments", "");
        goto done;
    }
    R->st = reference ? sched_launch_reference(k, args) : fusor_launch(k, args);
    snprintf(R->msg, sizeof R->msg, "%s", R->st == FUSOR_OK ? "" : fusor_last_error());
    R->target = fusor_args_last_target(args);
    R->threads = fusor_args_last_threads(args);
    if (R->st == FUSOR_OK) {
        for (int j = 0; j < nout; j++) {
            gparam op = output_param(p, j, twin);
            const gparam *o = &op;
            if (!o->is_array) {
                fusor_dtype dt;
                unsigned char v[8] = {0};
                if (fusor_args_get_scalar(args, o->name, &dt, v) != FUSOR_OK || (int)dt != o->dtype)
                    set_integrity(R, "cannot read scalar output", o->name);
                R->scal[j] = load_elem(v, o->dtype);
                continue;
            }
            if (I->out_bound[j]) {
                garr *A = out_garr(I, j);
                R->out[j] = read_view(A->buf + A->offset, A->dtype, A->ndim, A->shape, A->strides,
                                      I->dom_size);
                continue;
            }
            fusor_array *a = NULL;
            if (fusor_args_get_array(args, o->name, &a) != FUSOR_OK ||
                fusor_array_ndim(a) != I->dom_ndim || (int)fusor_array_dtype(a) != o->dtype ||
                memcmp(fusor_array_shape(a), I->dom_shape, sizeof(int64_t) * (size_t)I->dom_ndim)) {
                set_integrity(R, "allocated output has the wrong dtype or shape:", o->name);
            } else {
                R->out[j] = read_view(fusor_array_data(a), o->dtype, I->dom_ndim,
                                      fusor_array_shape(a), fusor_array_strides(a), I->dom_size);
            }
            fusor_array_destroy(a);
        }
    }
    /* Integrity: inputs untouched, outputs written only inside their views (and not at
     * all after a failed launch). */
    for (int i = 0; i < p->nin; i++) {
        if (!(p->in[i].is_array || I->scalar_as_0d[i]))
            continue;
        int updated = 0;
        for (int j = 0; j < p->nreg; j++)
            updated |= I->out_alias[j] == i && I->out_bound[j];
        garr *A = &I->in[i];
        if (!updated || R->st != FUSOR_OK) {
            if (memcmp(A->buf, A->init, A->nbytes))
                set_integrity(R, R->st == FUSOR_OK ? "input modified" : "failed launch modified",
                              p->in[i].name);
        } else {
            for (size_t b = 0; b < A->nbytes; b++)
                if (!A->mask[b] && A->buf[b] != A->init[b]) {
                    set_integrity(R, "bytes outside the in-place view modified", p->in[i].name);
                    break;
                }
        }
    }
    for (int j = 0; j < p->nreg; j++) {
        if (!I->out_bound[j] || I->out_alias[j] >= 0)
            continue;
        garr *A = &I->out[j];
        for (size_t b = 0; b < A->nbytes; b++)
            if ((R->st != FUSOR_OK || !A->mask[b]) && A->buf[b] != poison) {
                set_integrity(R,
                              R->st == FUSOR_OK ? "bytes outside the output view written"
                                                : "failed launch wrote output",
                              p->out[j].name);
                break;
            }
    }
done:
    for (int i = 0; i < GEN_MAX_IN + GEN_MAX_OUT; i++)
        fusor_array_destroy(arrs[i]);
    fusor_args_destroy(args);
}

/* ------------------------------------------------------------------ instances */

static int64_t small_extent(rng *r) { return rint_in(r, 1, 7); }

/* The planned domain: mostly small, some medium, a few above the parallel threshold. */
static void plan_domain(rng *r, instance *I, int64_t *plan) {
    int c = rint_in(r, 0, 99);
    I->dom_ndim = c < 8 ? 0 : c < 48 ? 1 : c < 78 ? 2 : 3;
    int size_class = chance(r, 0.03) ? 2 : chance(r, 0.12) ? 1 : 0;
    for (int d = 0; d < I->dom_ndim; d++)
        plan[d] = small_extent(r);
    if (size_class == 1 && I->dom_ndim) {
        if (I->dom_ndim == 1)
            plan[0] = rint_in(r, 300, 5000);
        else
            for (int d = 0; d < I->dom_ndim; d++)
                plan[d] = rint_in(r, 8, I->dom_ndim == 2 ? 70 : 16);
    } else if (size_class == 2) {
        if (I->dom_ndim == 0)
            I->dom_ndim = 1;
        if (I->dom_ndim == 1)
            plan[0] = rint_in(r, 32769, 70000);
        else if (I->dom_ndim == 2) {
            plan[0] = rint_in(r, 150, 260);
            plan[1] = rint_in(r, 220, 260);
        } else
            for (int d = 0; d < 3; d++)
                plan[d] = rint_in(r, 33, 42);
    }
    if (I->dom_ndim && chance(r, 0.04))
        plan[rint_in(r, 0, I->dom_ndim - 1)] = 0;
}

static void setup_instance(uint64_t seed, instance *I) {
    memset(I, 0, sizeof *I);
    gen_program(seed, &I->p);
    gprog *p = &I->p;
    rng *r = &I->r;
    r->s = seed ^ 0x5851f42d4c957f2dull;
    int64_t plan[MAXD] = {0};
    plan_domain(r, I, plan);
    /* Inputs: the plan's trailing dimensions, some of extent 1. */
    int nd = I->dom_ndim;
    for (int d = 0; d < MAXD; d++)
        I->dom_shape[d] = 1;
    int have = 0;
    for (int i = 0; i < p->nin; i++) {
        garr *A = &I->in[i];
        A->dtype = p->in[i].dtype;
        A->mode = rint_in(r, 0, 4);
        A->specials = chance(r, 0.3) ? 0.05 : 0;
        if (!p->in[i].is_array) {
            I->scalar_in[i] = random_value(r, A->dtype, A->mode, A->specials * 0.5);
            I->scalar_as_0d[i] = chance(r, 0.2);
            if (I->scalar_as_0d[i]) {
                A->ndim = 0;
                layout(r, A, 0);
                for (size_t b = 0; b < A->nbytes; b++)
                    A->init[b] = (unsigned char)rnext(r);
                store_elem(A->init + A->offset, A->dtype, I->scalar_in[i]);
            }
            continue;
        }
        A->ndim = chance(r, 0.25) ? rint_in(r, 0, nd) : nd;
        for (int d = 0; d < A->ndim; d++) {
            int64_t e = plan[nd - A->ndim + d];
            A->shape[d] = chance(r, 0.2) ? 1 : e;
        }
        /* A generic parameter bound to a 0-d array is a scalar; keep arrays arrays. */
        if (p->generic && A->ndim == 0) {
            A->ndim = 1;
            A->shape[0] = 1;
        }
        layout(r, A, 1);
        fill_input(r, A);
        if (A->ndim > have)
            have = A->ndim;
    }
    /* The domain: NumPy broadcasting, right-aligned (an extent of 1 gives way). */
    nd = have;
    for (int i = 0; i < p->nin; i++) {
        const garr *A = &I->in[i];
        if (!p->in[i].is_array)
            continue;
        for (int d = 0; d < A->ndim; d++) {
            int64_t *D = &I->dom_shape[nd - A->ndim + d];
            if (*D == 1)
                *D = A->shape[d];
        }
    }
    I->dom_ndim = nd;
    I->dom_size = shape_size(nd, I->dom_shape);
    /* Now and then a shape that does not broadcast: both back ends must refuse it alike. */
    for (int i = 0; i < p->nin && nd; i++) {
        if (!p->in[i].is_array || !chance(r, 0.01))
            continue;
        int d = rint_in(r, 0, nd - 1);
        if (I->dom_shape[d] <= 1)
            continue;
        /* Another input must keep the extent, or the new one would just widen the domain. */
        int other = 0;
        for (int x = 0; x < p->nin; x++) {
            const garr *B = &I->in[x];
            int bd = d - (nd - B->ndim);
            other |= x != i && p->in[x].is_array && bd >= 0 && B->shape[bd] == I->dom_shape[d];
        }
        if (!other)
            continue;
        garr *A = &I->in[i];
        int mode = A->mode;
        double specials = A->specials;
        garr_free(A);
        A->dtype = p->in[i].dtype;
        A->mode = mode;
        A->specials = specials;
        A->ndim = nd;
        memcpy(A->shape, I->dom_shape, sizeof A->shape);
        A->shape[d] = I->dom_shape[d] + 1;
        layout(r, A, 0);
        fill_input(r, A);
        I->expect_shape_error = 1;
        break;
    }
    /* Outputs: bound (any layout but zero strides), allocated by fusor, or in place. */
    int aliased[GEN_MAX_IN] = {0};
    for (int j = 0; j < GEN_MAX_OUT; j++)
        I->out_alias[j] = -1;
    for (int j = 0; j < p->nreg; j++) {
        if (!p->out[j].is_array)
            continue;
        I->out_bound[j] = !chance(r, 0.2);
        if (!I->out_bound[j])
            continue;
        if (chance(r, 0.15)) {
            for (int i = 0; i < p->nin; i++) {
                garr *A = &I->in[i];
                if (!p->in[i].is_array || aliased[i] || A->dtype != p->out[j].dtype ||
                    A->ndim != nd || A->zero_stride ||
                    memcmp(A->shape, I->dom_shape, sizeof(int64_t) * (size_t)nd))
                    continue;
                I->out_alias[j] = i;
                aliased[i] = 1;
                break;
            }
            if (I->out_alias[j] >= 0)
                continue;
        }
        garr *O = &I->out[j];
        O->dtype = p->out[j].dtype;
        O->ndim = nd;
        memcpy(O->shape, I->dom_shape, sizeof O->shape);
        layout(r, O, 0);
    }
}

/*
 * The same arguments laid out plainly: every array input copied by this test (with its own
 * broadcasting arithmetic) into a C-ordered array of the full domain shape, and every
 * array output a separate C-ordered array.  Running the twin on these must give the bits
 * it gave on the original layout: a check of the launcher's broadcasting, strides and
 * in-place handling that does not trust the launcher.
 */
static void materialize(const instance *I, instance *M) {
    const gprog *p = &I->p;
    memcpy(M, I, sizeof *M);
    int nd = I->dom_ndim;
    for (int i = 0; i < p->nin; i++) {
        const garr *A = &I->in[i];
        garr *B = &M->in[i];
        memset(B, 0, sizeof *B);
        B->dtype = A->dtype;
        if (!p->in[i].is_array) {
            if (!I->scalar_as_0d[i])
                continue;
            B->ndim = 0;
        } else {
            B->ndim = nd;
            memcpy(B->shape, I->dom_shape, sizeof B->shape);
        }
        size_t es = fusor_dtype_size((fusor_dtype)B->dtype);
        int64_t n = shape_size(B->ndim, B->shape);
        for (int d = B->ndim - 1, acc = 1; d >= 0; d--) {
            B->strides[d] = acc * (int64_t)es;
            acc *= (int)(B->shape[d] ? B->shape[d] : 1);
        }
        B->nbytes = (size_t)(n ? n : 1) * es;
        B->init = malloc(B->nbytes);
        B->buf = malloc(B->nbytes);
        B->mask = malloc(B->nbytes);
        if (!B->init || !B->buf || !B->mask)
            exit(2);
        memset(B->mask, 1, B->nbytes);
        int64_t idx[MAXD] = {0};
        for (int64_t e = 0; e < n; e++) {
            index_of(I, e, idx);
            int64_t off = 0;
            for (int d = 0; d < A->ndim; d++) {
                int64_t x = idx[nd - A->ndim + d];
                off += (A->shape[d] == 1 ? 0 : x) * A->strides[d];
            }
            memcpy(B->init + (size_t)e * es, A->init + A->offset + off, es);
        }
    }
    for (int j = 0; j < GEN_MAX_OUT; j++) {
        memset(&M->out[j], 0, sizeof M->out[j]);
        M->out_alias[j] = -1;
        M->out_bound[j] = j < p->nreg && p->out[j].is_array;
        if (!M->out_bound[j])
            continue;
        garr *O = &M->out[j];
        O->dtype = p->out[j].dtype;
        O->ndim = nd;
        memcpy(O->shape, I->dom_shape, sizeof O->shape);
        size_t es = fusor_dtype_size((fusor_dtype)O->dtype);
        int64_t n = shape_size(nd, O->shape);
        for (int d = nd - 1, acc = 1; d >= 0; d--) {
            O->strides[d] = acc * (int64_t)es;
            acc *= (int)(O->shape[d] ? O->shape[d] : 1);
        }
        O->nbytes = (size_t)(n ? n : 1) * es;
        O->init = malloc(O->nbytes);
        O->buf = malloc(O->nbytes);
        O->mask = malloc(O->nbytes);
        if (!O->init || !O->buf || !O->mask)
            exit(2);
        memset(O->mask, n ? 1 : 0, O->nbytes);
    }
}

static void materialized_free(instance *M) {
    for (int i = 0; i < GEN_MAX_IN; i++)
        garr_free(&M->in[i]);
    for (int j = 0; j < GEN_MAX_OUT; j++)
        garr_free(&M->out[j]);
}

static void instance_free(instance *I) {
    for (int i = 0; i < GEN_MAX_IN; i++)
        garr_free(&I->in[i]);
    for (int j = 0; j < GEN_MAX_OUT; j++)
        garr_free(&I->out[j]);
    gprog_free(&I->p);
}

/* ------------------------------------------------------------------ comparing */

static fusor_math math_mode; /* of the program being run */

typedef struct stats {
    long programs, skipped, compiled, compared_outputs, compared_elements;
    long launch_errors, mismatches, thread_checks, zero_sign, edge_allowed, wild_allowed;
    long cls_outputs[3], reductions_compared;
    long approx_differ, red_differ; /* values that differed within the tolerance */
    double approx_max_rel, red_max_frac;
    long passes[4], inplace, empty, unbound, generic, large, layout_checks;
    int max_threads_seen;
} stats;

static stats S;
static int printed;
static uint64_t base_seed;

/* f16 reductions accumulate in f32 (and round to half once, added separately). */
static double unit_roundoff(int dt) {
    return dt == FUSOR_F32 || dt == FUSOR_F16 ? 0x1p-24 : 0x1p-53;
}
static double gamma_n(int dt, int64_t n) {
    double nu = (double)n * unit_roundoff(dt);
    return nu >= 0.5 ? INFINITY : nu / (1 - nu);
}
/* Element-wise tolerance of APPROX values (see the top of the file). */
/* Element-wise tolerance of APPROX values (see the top of the file).  The scalar math mode
 * calls the interpreter's libm functions, so only LLVM's constant folding of a libm call
 * (done in double, correctly rounded where glibc's float functions may be an ulp off) can
 * make it differ: a much tighter bound. */
static double elem_tol(int dt) {
    if (dt == FUSOR_F16) /* one half ulp is ~1e-3: allow amplification by ~20 */
        return 2e-2;
    if (math_mode == FUSOR_MATH_SCALAR)
        return dt == FUSOR_F32 ? 1e-6 : 1e-13;
    return dt == FUSOR_F32 ? 1e-3 : 1e-7;
}
/* The dtype whose tolerance an APPROX value needs: its lowp level's, or its own. */
static int tol_dtype(int lowp, int dt) {
    return lowp == 2 || dt == FUSOR_F16 ? FUSOR_F16 : lowp ? FUSOR_F32 : dt;
}
static int is_normal_or_zero(double x) { return x == 0 || (isfinite(x) && fabs(x) >= DBL_MIN); }

static void print_multi(char *buf, size_t n, const instance *I, int64_t flat) {
    int64_t idx[MAXD] = {0};
    index_of(I, flat, idx);
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < I->dom_ndim; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)idx[d]);
    snprintf(buf + len, n - len, "]");
}

/* The input values at domain element `flat` (broadcast), for a mismatch report. */
static void print_inputs_at(const instance *I, int64_t flat) {
    const gprog *p = &I->p;
    int64_t idx[MAXD] = {0};
    index_of(I, flat, idx);
    for (int i = 0; i < p->nin; i++) {
        const garr *A = &I->in[i];
        char v[64];
        elem e = I->scalar_in[i];
        if (p->in[i].is_array) {
            int64_t off = 0;
            for (int d = 0; d < A->ndim; d++) {
                int64_t x = idx[I->dom_ndim - A->ndim + d];
                off += (A->shape[d] == 1 ? 0 : x) * A->strides[d];
            }
            e = load_elem(A->init + A->offset + off, A->dtype);
        }
        format_elem(v, sizeof v, p->in[i].dtype, e);
        fprintf(stderr, "      %s = %s\n", p->in[i].name, v);
    }
}

static void print_shape(const char *what, int ndim, const int64_t *v) {
    fprintf(stderr, "%s(", what);
    for (int d = 0; d < ndim; d++)
        fprintf(stderr, "%s%lld", d ? ", " : "", (long long)v[d]);
    fprintf(stderr, ndim == 1 ? ",)" : ")");
}

static void describe_instance(const instance *I, uint64_t pseed, long index) {
    const gprog *p = &I->p;
    fprintf(stderr,
            "---- program %ld (FUSOR_DIFF_SEED=%llu FUSOR_DIFF_ONLY=%ld; program seed %llu; math "
            "%s)\n%s",
            index, (unsigned long long)base_seed, index, (unsigned long long)pseed,
            math_mode == FUSOR_MATH_FAST     ? "fast"
            : math_mode == FUSOR_MATH_SCALAR ? "scalar"
                                             : "default",
            p->src);
    if (p->nfred)
        fprintf(stderr, "  its twin (run by the interpreter):\n%s", p->twin_src);
    print_shape("  domain shape ", I->dom_ndim, I->dom_shape);
    fputc('\n', stderr);
    for (int i = 0; i < p->nin; i++) {
        const garr *A = &I->in[i];
        char s[96];
        if (!p->in[i].is_array) {
            format_elem(s, sizeof s, A->dtype, I->scalar_in[i]);
            fprintf(stderr, "  %s: scalar %s%s\n", p->in[i].name, s,
                    I->scalar_as_0d[i] ? " (as a 0-d array)" : "");
            continue;
        }
        fprintf(stderr, "  %s: ", p->in[i].name);
        print_shape("shape ", A->ndim, A->shape);
        print_shape(" byte strides ", A->ndim, A->strides);
        fprintf(stderr, " value mode %d\n", A->mode);
    }
    for (int j = 0; j < p->nreg; j++)
        if (p->out[j].is_array)
            fprintf(stderr, "  %s: %s\n", p->out[j].name,
                    !I->out_bound[j]       ? "allocated by fusor"
                    : I->out_alias[j] >= 0 ? "in place over an input"
                                           : "bound");
}

static const char *cls_name(int c) {
    return c == EXACT ? "EXACT" : c == APPROX ? "APPROX" : "WILD";
}

/*
 * Whether a float reduction r<k> of the JIT (a) agrees with the twin's (b).  mag is the
 * twin's s<k> = sum |terms|; see the top of the file for the bounds.  *edge is set for a
 * difference the bound cannot speak for (overflow or underflow on the way).
 */
static int reduction_agrees(const instance *I, int k, double a, double b, double mag, int *edge) {
    const gprog *p = &I->p;
    int dt = p->fred_dtype[k];
    int64_t n = I->dom_size;
    double g = gamma_n(dt, n), u = unit_roundoff(dt);
    /* The terms' own tolerance when they are APPROX. */
    double appr = p->fred_cls[k] == EXACT ? 0 : elem_tol(tol_dtype(p->fred_lowp[k], dt));
    *edge = 0;
    if (p->fred_op[k] == 'p') {
        if (!is_normal_or_zero(a) || !is_normal_or_zero(b) || a == 0 || b == 0 || fabs(a) < 1e-30 ||
            fabs(b) < 1e-30) {
            *edge = 1; /* partial products over- or underflowed in some order */
            return 1;
        }
        double half = dt == FUSOR_F16 ? 2 * 0x1p-11 : 0; /* both rounded to half once */
        return fabs(a - b) <= (2 * g + appr * (double)n + half) * fmax(fabs(a), fabs(b));
    }
    double big = dt == FUSOR_F16 ? 65504.0 : dt == FUSOR_F32 ? FLT_MAX : DBL_MAX;
    if (!isfinite(a) || !isfinite(b)) {
        *edge = 1; /* only when the terms' magnitudes approach the overflow threshold */
        return !isfinite(mag) || mag > big / 4;
    }
    double bound = 2 * g * mag + appr * (mag + (double)n);
    if (p->fred_op[k] == 'm') {
        bound = n ? bound / (double)n * (1 + u) : 0;
        bound += 2 * u * fmax(fabs(a), fabs(b));
    }
    if (dt == FUSOR_F16) /* the f32 accumulations are each rounded to half once */
        bound += 2 * 0x1p-11 * fmax(fabs(a), fabs(b));
    if (isnan(bound))
        bound = INFINITY;
    if (fabs(a - b) > 0) {
        S.red_differ++;
        if (bound > 0 && fabs(a - b) / bound > S.red_max_frac)
            S.red_max_frac = fabs(a - b) / bound;
    }
    return fabs(a - b) <= bound;
}

/* Compares output j of the JIT's run of the program (A) with the interpreter's run of the
 * twin (B); returns 0 on a mismatch. */
static int compare_output(const instance *I, int j, const result *A, const result *B,
                          uint64_t pseed, long index) {
    const gprog *p = &I->p;
    const gparam *o = &p->out[j];
    int dt = o->dtype, cls = p->out_cls[j];
    int is_red = j >= p->nreg;
    int64_t n = o->is_array ? I->dom_size : 1;
    size_t es = fusor_dtype_size((fusor_dtype)dt);
    long bad = 0, edges = 0;
    int64_t first = -1;
    for (int64_t i = 0; i < n; i++) {
        elem a = o->is_array ? load_elem(A->out[j] + (size_t)i * es, dt) : A->scal[j];
        elem b = o->is_array ? load_elem(B->out[j] + (size_t)i * es, dt) : B->scal[j];
        int ok, edge = 0;
        if (!dt_is_float(dt)) {
            ok = a.u == b.u;
        } else if ((isnan(a.f) && isnan(b.f)) || a.f == b.f) {
            ok = 1;
            if (a.f == 0 && signbit(a.f) != signbit(b.f))
                S.zero_sign++;
        } else if (is_red) {
            int k = j - p->nreg;
            ok = reduction_agrees(I, k, a.f, b.f, B->scal[p->nreg + p->nfred + k].f, &edge);
            if (edge && ok)
                S.edge_allowed++;
            edge = 0;
        } else if (cls == EXACT) {
            ok = 0;
        } else if (!isfinite(a.f) || !isfinite(b.f)) {
            ok = 0;
            edge = 1;
        } else {
            ok = fabs(a.f - b.f) <= elem_tol(tol_dtype(p->out_lowp[j], dt)) * fmax(1, fabs(b.f));
            if (ok && cls == APPROX) {
                S.approx_differ++;
                double rel = fabs(a.f - b.f) / fmax(fabs(b.f), DBL_MIN);
                if (rel > S.approx_max_rel)
                    S.approx_max_rel = rel;
            }
        }
        if (!ok) {
            bad++;
            edges += edge;
            if (first < 0)
                first = i;
        }
    }
    S.compared_elements += n;
    int pass;
    if (cls == EXACT || is_red) {
        pass = bad == 0;
    } else if (cls == APPROX) {
        /* NaN or inf against a number: an APPROX value at a domain edge (arccos of 1+ulp). */
        pass = bad == edges && edges <= 1 + n / 50;
        if (pass)
            S.edge_allowed += edges;
    } else {
        pass = bad <= 1 + n / 20;
        if (pass)
            S.wild_allowed += bad;
    }
    if (pass)
        return 1;
    S.mismatches++;
    if (printed++ >= 12) {
        fprintf(stderr, "program %ld: MISMATCH output %s (%s, %s): %ld of %lld elements differ\n",
                index, o->name, dtype_names[dt], cls_name(cls), bad, (long long)n);
        return 0;
    }
    describe_instance(I, pseed, index);
    char m[64], va[64], vb[64];
    print_multi(m, sizeof m, I, first);
    elem a = o->is_array ? load_elem(A->out[j] + (size_t)first * es, dt) : A->scal[j];
    elem b = o->is_array ? load_elem(B->out[j] + (size_t)first * es, dt) : B->scal[j];
    format_elem(va, sizeof va, dt, a);
    format_elem(vb, sizeof vb, dt, b);
    fprintf(stderr,
            "  MISMATCH output %s (%s, %s): %ld of %lld elements differ (%ld NaN/inf "
            "against a number); first at %s: jit %s, interpreter %s\n",
            o->name, dtype_names[dt], is_red ? "float reduction" : cls_name(cls), bad, (long long)n,
            edges, o->is_array ? m : "(scalar)", va, vb);
    if (is_red)
        fprintf(stderr, "      sum of |terms| %.17g over %lld elements\n",
                B->scal[p->nreg + p->nfred + (j - p->nreg)].f, (long long)I->dom_size);
    if (o->is_array)
        print_inputs_at(I, first);
    return 0;
}

/* Bitwise equality of two JIT runs (different thread counts). */
static int same_bits(const instance *I, const result *A, const result *B, int twin) {
    const gprog *p = &I->p;
    if (A->st != B->st)
        return 0;
    if (A->st != FUSOR_OK)
        return 1;
    for (int j = 0; j < num_outputs(p, twin); j++) {
        size_t es = fusor_dtype_size((fusor_dtype)p->out[j].dtype);
        if (p->out[j].is_array) {
            if (I->dom_size && memcmp(A->out[j], B->out[j], (size_t)I->dom_size * es))
                return 0;
        } else if (memcmp(&A->scal[j], &B->scal[j], sizeof(elem))) {
            return 0;
        }
    }
    return 1;
}

static void report(const instance *I, uint64_t pseed, long index, const char *fmt, const char *a,
                   const char *b) {
    S.mismatches++;
    if (printed++ >= 12) {
        fprintf(stderr, "program %ld: MISMATCH: ", index);
    } else {
        describe_instance(I, pseed, index);
        fprintf(stderr, "  MISMATCH: ");
    }
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

static void report_status(const instance *I, uint64_t pseed, long index, const char *what,
                          const result *X, const result *Y) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s (%s)", fusor_status_name(X->st), X->msg);
    snprintf(b, sizeof b, "%s (%s)", fusor_status_name(Y->st), Y->msg);
    char fmt[128];
    snprintf(fmt, sizeof fmt, "%s: %%s against %%s", what);
    report(I, pseed, index, fmt, a, b);
}

/* ------------------------------------------------------------------ main */

static uint64_t program_seed(uint64_t seed, long i) {
    rng r = {seed * 0x2545f4914f6cdd1dull + (uint64_t)i * 0x9e3779b97f4a7c15ull};
    rnext(&r);
    return rnext(&r);
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static void count_plan(const fusor_kernel *k, const instance *I) {
    if (k->spec && k->spec->plan)
        S.passes[k->spec->plan->npasses < 3 ? k->spec->plan->npasses : 3]++;
    S.generic += I->p.generic;
    S.empty += I->dom_size == 0;
    for (int j = 0; j < I->p.nreg; j++) {
        S.inplace += I->out_alias[j] >= 0;
        S.unbound += I->p.out[j].is_array && !I->out_bound[j];
    }
}

/* Compares a successful JIT run of the program with the interpreter's run of the twin. */
static void compare_all(const instance *I, const result *RJ, const result *RT, uint64_t pseed,
                        long index) {
    if (strcmp(RJ->target ? RJ->target : "", "cpu") ||
        strcmp(RT->target ? RT->target : "", "reference"))
        report(I, pseed, index, "targets: jit '%s', interpreter '%s'", RJ->target, RT->target);
    for (int j = 0; j < num_outputs(&I->p, 0); j++) {
        S.compared_outputs++;
        if (j < I->p.nreg)
            S.cls_outputs[I->p.out_cls[j]]++;
        else
            S.reductions_compared++;
        compare_output(I, j, RJ, RT, pseed, index);
    }
}

/* The JIT with 2 and 3 threads must give the bits it gave with 1. */
static void check_threads(fusor_context *ctx, fusor_kernel *k, instance *I, const result *RJ,
                          uint64_t pseed, long index) {
    for (int t = 2; t <= 3; t++) {
        result RT;
        fusor_set_num_threads(t);
        run_once(ctx, k, I, 0, NULL, 0, 0xA5, &RT);
        S.thread_checks++;
        if (RT.threads > S.max_threads_seen)
            S.max_threads_seen = RT.threads;
        if (!same_bits(I, RJ, &RT, 0)) {
            char a[16];
            snprintf(a, sizeof a, "%d", t);
            report(I, pseed, index, "results with %s threads differ from those with 1%s", a, "");
        }
        result_free(&RT);
    }
    fusor_set_num_threads(1);
}

static void run_program(fusor_context *ctx, long index, int verbose) {
    uint64_t pseed = program_seed(base_seed, index);
    instance I;
    setup_instance(pseed, &I);
    S.programs++;
    fusor_kernel *k = NULL, *kt = NULL;
    fusor_status st =
        fusor_kernel_compile(ctx, I.p.src, "diff.fu", I.p.decoy || index % 2 ? I.p.name : NULL, &k);
    /* Without float reductions the twin is the program itself. */
    if (st == FUSOR_OK && I.p.nfred)
        st = fusor_kernel_compile(ctx, I.p.twin_src, "twin.fu", NULL, &kt);
    else if (st == FUSOR_OK)
        kt = k;
    if (st == FUSOR_ERROR_LANGUAGE && !k) {
        S.skipped++;
        if (verbose)
            fprintf(stderr, "skipped program %ld:\n%s%s\n\n", index, I.p.src, fusor_last_error());
        goto done;
    }
    if (st != FUSOR_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", fusor_last_error());
        report(&I, pseed, index,
               k ? "the twin failed to compile: %s: %s" : "compiling failed: %s: %s",
               fusor_status_name(st), msg);
        goto done;
    }
    S.compiled++;
    count_plan(k, &I);
    S.large += I.dom_size > HOST_PARALLEL_MIN_ELEMENTS;
    result RJ, RT, RI;
    memset(&RI, 0, sizeof RI);
    fusor_set_num_threads(1);
    run_once(ctx, k, &I, 0, NULL, 0, 0xA5, &RJ);
    elem q[GEN_MAX_FRED];
    for (int j = 0; j < I.p.nfred; j++)
        q[j] = RJ.scal[I.p.nreg + j];
    if (RJ.st == FUSOR_OK)
        run_once(ctx, kt, &I, 1, q, 1, 0x5A, &RT);
    else
        memset(&RT, 0, sizeof RT);
    /* The interpreter on the program itself, to compare statuses when something failed. */
    if (RJ.st != FUSOR_OK || RT.st != FUSOR_OK)
        run_once(ctx, k, &I, 0, NULL, 1, 0x5A, &RI);
    if (!RJ.integrity_ok)
        report(&I, pseed, index, "jit: %s%s", RJ.integrity, "");
    if (!RT.integrity_ok && RJ.st == FUSOR_OK)
        report(&I, pseed, index, "interpreter: %s%s", RT.integrity, "");
    if (RJ.st != FUSOR_OK || RT.st != FUSOR_OK) {
        if (!RI.integrity_ok)
            report(&I, pseed, index, "interpreter: %s%s", RI.integrity, "");
        if (I.p.generic && RJ.st == FUSOR_ERROR_LANGUAGE && RI.st == FUSOR_ERROR_LANGUAGE) {
            S.skipped++; /* a generic kernel is checked at its first launch */
            S.compiled--;
            if (verbose)
                fprintf(stderr, "skipped program %ld:\n%s%s\n\n", index, I.p.src, RJ.msg);
        } else if (RJ.st != RI.st) {
            report_status(&I, pseed, index, "status differs: jit, interpreter", &RJ, &RI);
        } else if (RJ.st == FUSOR_OK) {
            report_status(&I, pseed, index, "the twin failed where the program did not", &RT, &RJ);
        } else {
            S.launch_errors++;
            if (I.expect_shape_error && RJ.st != FUSOR_ERROR_SHAPE)
                report_status(&I, pseed, index, "expected FUSOR_ERROR_SHAPE", &RJ, &RI);
            if (RJ.st != FUSOR_ERROR_SHAPE && RJ.st != FUSOR_ERROR_VALUE)
                report_status(&I, pseed, index, "launch failed", &RJ, &RI);
        }
    } else if (I.expect_shape_error) {
        report(&I, pseed, index, "a shape that does not broadcast was accepted%s%s", "", "");
    } else if (RJ.integrity_ok && RT.integrity_ok) {
        compare_all(&I, &RJ, &RT, pseed, index);
        /* The twin again on plainly laid out arguments: the same bits.  (Not for a generic
         * kernel over a 0-d domain, where plain arrays would become scalars.) */
        instance M;
        result RM;
        if (kt == k && I.p.generic && I.dom_ndim == 0)
            goto layout_done;
        materialize(&I, &M);
        run_once(ctx, kt, &M, 1, q, 1, 0x77, &RM);
        S.layout_checks++;
        if (!RM.integrity_ok || !same_bits(&I, &RT, &RM, 1))
            report(&I, pseed, index,
                   "the interpreter's results change when the arguments are "
                   "copied into plain C-ordered arrays of the domain's shape%s%s",
                   RM.integrity_ok ? "" : ": ", RM.integrity_ok ? "" : RM.integrity);
        result_free(&RM);
        materialized_free(&M);
    layout_done:;
    }
    /* Thread counts: every large program and one in eight of the others. */
    if (I.dom_size > HOST_PARALLEL_MIN_ELEMENTS || index % 8 == 0)
        check_threads(ctx, k, &I, &RJ, pseed, index);
    result_free(&RJ);
    result_free(&RT);
    result_free(&RI);
done:
    fusor_kernel_destroy(k);
    if (kt != k)
        fusor_kernel_destroy(kt);
    instance_free(&I);
}

int main(void) {
    base_seed = (uint64_t)env_long("FUSOR_DIFF_SEED", 1);
    long count = env_long("FUSOR_DIFF_COUNT", 2000);
    long only = env_long("FUSOR_DIFF_ONLY", -1);
    int verbose = (int)env_long("FUSOR_DIFF_VERBOSE", 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* One context per math mode, programs taking turns; no disk cache, so that every
     * kernel is compiled here (and nothing is left behind). */
    fusor_context *ctx[3] = {NULL, NULL, NULL};
    static const fusor_math maths[3] = {FUSOR_MATH_DEFAULT, FUSOR_MATH_FAST, FUSOR_MATH_SCALAR};
    for (long i = 0; i < count; i++) {
        if (only >= 0 && i != only)
            continue;
        /* A fresh context now and then bounds the kernel cache's memory. */
        int m = (int)(i % 3);
        if (!ctx[m] || i % 120 < 3) {
            fusor_context_destroy(ctx[m]);
            fusor_context_options o = {
                .target = FUSOR_TARGET_CPU, .math = maths[m], .disk_cache = -1};
            REQUIRE(fusor_context_create(&o, &ctx[m]) == FUSOR_OK);
        }
        math_mode = maths[m];
        run_program(ctx[m], i, verbose);
    }
    for (int m = 0; m < 3; m++)
        fusor_context_destroy(ctx[m]);
    fusor_set_num_threads(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("seed %llu: %ld programs generated, %ld skipped (refused by the checker), %ld run; "
           "%ld outputs compared (%ld EXACT, %ld APPROX, %ld WILD, %ld float reductions), %ld "
           "elements; %ld launches failed alike; %ld thread-count checks (up to %d threads); "
           "%ld mismatches; %.1f s\n",
           (unsigned long long)base_seed, S.programs, S.skipped, S.compiled, S.compared_outputs,
           S.cls_outputs[EXACT], S.cls_outputs[APPROX], S.cls_outputs[WILD], S.reductions_compared,
           S.compared_elements, S.launch_errors, S.thread_checks, S.max_threads_seen, S.mismatches,
           secs);
    printf("coverage: plans with 0/1/2/3+ passes %ld/%ld/%ld/%ld, %ld generic kernels, %ld empty "
           "domains, %ld above the parallel threshold, %ld in-place outputs, %ld outputs "
           "allocated by fusor, %ld layout-invariance checks\n",
           S.passes[0], S.passes[1], S.passes[2], S.passes[3], S.generic, S.empty, S.large,
           S.inplace, S.unbound, S.layout_checks);
    printf("tolerances used: %ld APPROX elements differed (largest relative difference %.3g), "
           "%ld float reductions differed (largest at %.3g of their bound), %ld NaN/inf edges "
           "allowed, %ld WILD elements differed, %ld +0/-0 differences\n",
           S.approx_differ, S.approx_max_rel, S.red_differ, S.red_max_frac, S.edge_allowed,
           S.wild_allowed, S.zero_sign);
    CHECK_MSG(S.mismatches == 0, "%ld mismatches (see above)", S.mismatches);
    CHECK_MSG(S.skipped * 10 <= S.programs * 3, "%ld of %ld generated programs were refused",
              S.skipped, S.programs);
    if (only < 0 && count >= 200) {
        CHECK_MSG(S.large > 0, "no program ran above the parallel threshold");
        CHECK_MSG(S.max_threads_seen > 1, "the parallel path never ran (max %d threads)",
                  S.max_threads_seen);
    }
    return check_done();
}
