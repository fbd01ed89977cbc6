/*
 * interp.c — the reference interpreter (see interp.h): every node in order, a VARYING
 * node as a whole buffer of canonical values over the domain, a UNIFORM node as one value,
 * each element by scalar.c.  Nothing is clever here on purpose: back ends are judged
 * against it.
 *
 * Order of work: check the kernel and the domain, evaluate every node (a buffer is freed
 * after its last user), and only when nothing can fail any more store the array outputs
 * and return the scalar ones.  So an error leaves every output untouched, and an output
 * that is the same memory as an input is written after every read of that input.
 */
#include "interp.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "scalar.h"

typedef struct interp {
    const ir_kernel *k;
    const ir_domain *d;  /* the domain run: the interior sub-box with INTERIOR parameters */
    const ir_domain *d0; /* the domain given: stencil loads index its full shape */
    int64_t origin[FUSOR_MAX_DIMS]; /* d's element 0 in d0's multi-index */
    const ir_value *scalars;
    ir_value *one;  /* per node: the value of a UNIFORM node */
    ir_value **buf; /* per node: the buffer of a VARYING node while it is live */
    int32_t *last;  /* per node: the last node using it (nnodes for outputs) */
} interp;

static int is_float(fusor_dtype t) { return t == FUSOR_F32 || t == FUSOR_F64 || t == FUSOR_F16; }

/* ------------------------------------------------------------------ checking */

static fusor_status bad_node(const ir_kernel *k, int32_t i, const char *why) {
    return fu_error(FUSOR_ERROR_INTERNAL, "interp: kernel '%s', node %d (%s): %s", k->name, (int)i,
                    ir_op_name((ir_op)k->nodes[i].op), why);
}

/* The dtypes each operand must have (ir.h's table); -1 where unused. */
static void operand_dtypes(const ir_node *n, int want[3]) {
    ir_op op = (ir_op)n->op;
    int arity = ir_op_arity(op);
    for (int j = 0; j < 3; j++)
        want[j] = j < arity ? n->dtype : -1;
    if (op == IR_CAST || ir_op_is_comparison(op) || op == IR_ISNAN || op == IR_ISINF ||
        op == IR_ISFINITE)
        for (int j = 0; j < arity; j++)
            want[j] = n->adtype;
    if (op == IR_WHERE || op == IR_ANY || op == IR_ALL)
        want[0] = FUSOR_BOOL;
}

static fusor_status check_node(const ir_kernel *k, int32_t i) {
    const ir_node *n = &k->nodes[i];
    if (n->op >= IR_NUM_OPS || n->dtype >= FUSOR_NUM_DTYPES || n->adtype >= FUSOR_NUM_DTYPES ||
        n->shape > IR_VARYING)
        return bad_node(k, i, "bad op, dtype or shape");
    ir_op op = (ir_op)n->op;
    int32_t ops[3] = {n->a, n->b, n->c};
    int want[3], varying = 0;
    operand_dtypes(n, want);
    for (int j = 0; j < ir_op_arity(op); j++) {
        if (ops[j] < 0 || ops[j] >= i)
            return bad_node(k, i, "operand out of order");
        if (k->nodes[ops[j]].dtype != want[j])
            return bad_node(k, i, "operand of wrong dtype");
        varying |= k->nodes[ops[j]].shape == IR_VARYING;
    }
    int bool_result = ir_op_is_comparison(op) || op == IR_ISNAN || op == IR_ISINF ||
                      op == IR_ISFINITE || op == IR_ANY || op == IR_ALL;
    if (bool_result && n->dtype != FUSOR_BOOL)
        return bad_node(k, i, "result must be bool");
    if (ir_op_is_reduction(op) || op == IR_COUNT) {
        if (n->shape != IR_UNIFORM)
            return bad_node(k, i, "must be uniform");
    } else if (varying && n->shape != IR_VARYING) {
        return bad_node(k, i, "uniform node with a varying operand");
    }
    if (op == IR_COUNT && n->dtype != FUSOR_I64)
        return bad_node(k, i, "count must be i64");
    if (op == IR_INPUT) {
        if (n->imm.i < 0 || n->imm.i >= k->nparams)
            return bad_node(k, i, "no such parameter");
        const ir_param *p = &k->params[n->imm.i];
        if (p->dtype != n->dtype)
            return bad_node(k, i, "parameter of another dtype");
        if (p->is_array && n->shape != IR_VARYING)
            return bad_node(k, i, "uniform array input");
    }
    return FUSOR_OK;
}

static fusor_status check_outputs(const ir_kernel *k) {
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        if (o->node < 0 || o->node >= k->nnodes || k->nodes[o->node].dtype != o->dtype ||
            (!o->is_array && k->nodes[o->node].shape != IR_UNIFORM))
            return fu_error(FUSOR_ERROR_INTERNAL, "interp: kernel '%s', output '%s' is malformed",
                            k->name, o->name);
    }
    return FUSOR_OK;
}

static fusor_status check_domain(const ir_kernel *k, const ir_domain *d) {
    if (d->ndim < 0 || d->ndim > FUSOR_MAX_DIMS || d->narrays != k->nparams + k->noutputs)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp: the domain does not fit '%s'",
                        k->name);
    int64_t size = 1;
    for (int i = 0; i < d->ndim; i++)
        if (d->shape[i] < 0 || __builtin_mul_overflow(size, d->shape[i], &size))
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp: bad domain shape");
    if (size != d->size)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp: domain size %lld is not %lld",
                        (long long)d->size, (long long)size);
    for (int a = 0; a < d->narrays; a++) {
        int is_array = a < k->nparams ? k->params[a].is_array : k->outputs[a - k->nparams].is_array;
        if (is_array && size > 0 && (!d->base || !d->base[a] || (d->ndim && !d->strides)))
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp: array %d has no data", a);
    }
    return FUSOR_OK;
}

static fusor_status check(const ir_kernel *k, const ir_domain *d, const ir_value *scalars,
                          const ir_value *outs) {
    if (!k || !d)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp_run: NULL argument");
    for (int32_t i = 0; i < k->nnodes; i++) {
        fusor_status st = check_node(k, i);
        if (st != FUSOR_OK)
            return st;
    }
    fusor_status st = check_outputs(k);
    if (st == FUSOR_OK)
        st = check_domain(k, d);
    if (st != FUSOR_OK)
        return st;
    for (int i = 0; i < k->nparams; i++)
        if (!k->params[i].is_array && !scalars)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp_run: scalars is NULL");
    for (int j = 0; j < k->noutputs; j++)
        if (!k->outputs[j].is_array && !outs)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp_run: outs is NULL");
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ elements */

/* Byte offset of element e (C order over the domain) in array `arr`. */
static int64_t offset(const ir_domain *d, int arr, int64_t e) {
    int64_t off = 0;
    for (int i = d->ndim - 1; i >= 0; i--) {
        off += (e % d->shape[i]) * d->strides[arr][i];
        e /= d->shape[i];
    }
    return off;
}

/* A stencil load at element e of the run domain (ir.h, INPUT). */
static ir_value stencil_load(const interp *it, const ir_node *n, int64_t e) {
    const ir_domain *d = it->d, *d0 = it->d0;
    int p = (int)n->imm.i;
    ir_boundary b = ir_param_boundary(it->k, p);
    int64_t off = 0;
    for (int i = d->ndim - 1; i >= 0; i--) {
        int64_t idx = ir_boundary_index(b, e % d->shape[i] + it->origin[i] + n->off[i],
                                        d0->shape[i]);
        if (idx < 0)
            return (ir_value){0};
        off += idx * d0->strides[p][i];
        e /= d->shape[i];
    }
    return sc_load(d0->base[p] + off, (fusor_dtype)n->dtype);
}

static ir_value value_at(const interp *it, int32_t node, int64_t e) {
    return it->k->nodes[node].shape == IR_VARYING ? it->buf[node][e] : it->one[node];
}

/* The value of a non-reduction node at element e (any e for a UNIFORM node). */
static ir_value eval_element(const interp *it, int32_t i, int64_t e) {
    const ir_node *n = &it->k->nodes[i];
    ir_value none = {0}, a = none, b = none, c = none;
    switch ((ir_op)n->op) {
    case IR_CONST: return n->imm;
    case IR_COUNT: return (ir_value){.i = it->d->size};
    case IR_INPUT: {
        int p = (int)n->imm.i;
        if (!it->k->params[p].is_array)
            return it->scalars[p];
        if (ir_is_stencil_load(it->k, n))
            return stencil_load(it, n, e);
        return sc_load(it->d->base[p] + offset(it->d, p, e), (fusor_dtype)n->dtype);
    }
    default: break;
    }
    int arity = ir_op_arity((ir_op)n->op);
    if (arity > 0)
        a = value_at(it, n->a, e);
    if (arity > 1)
        b = value_at(it, n->b, e);
    if (arity > 2)
        c = value_at(it, n->c, e);
    return sc_apply((ir_op)n->op, (fusor_dtype)n->dtype, (fusor_dtype)n->adtype, a, b, c);
}

/* ------------------------------------------------------------------ reductions */

/*
 * NumPy's pairwise_sum (numpy/_core/src/umath/loops_utils.h.src), with the same grouping
 * for products: fewer than 8 values in order from the identity; up to 128 as 8 strided
 * partial sums combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)) plus the tail; above,
 * halves split at a multiple of 8.
 */
static ir_value pairwise(ir_op op, fusor_dtype t, const ir_value *v, int64_t stride, int64_t n) {
    if (n < 8) {
        ir_value r = sc_reduce_identity(op, t);
        for (int64_t i = 0; i < n; i++)
            r = sc_reduce_combine(op, t, r, v[i * stride]);
        return r;
    }
    if (n <= 128) {
        ir_value r[8];
        for (int j = 0; j < 8; j++)
            r[j] = v[j * stride];
        int64_t i;
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++)
                r[j] = sc_reduce_combine(op, t, r[j], v[(i + j) * stride]);
        for (int j = 0; j < 4; j++)
            r[j] = sc_reduce_combine(op, t, r[2 * j], r[2 * j + 1]);
        ir_value res = sc_reduce_combine(op, t, sc_reduce_combine(op, t, r[0], r[1]),
                                         sc_reduce_combine(op, t, r[2], r[3]));
        for (; i < n; i++)
            res = sc_reduce_combine(op, t, res, v[i * stride]);
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return sc_reduce_combine(op, t, pairwise(op, t, v, stride, n2),
                             pairwise(op, t, v + n2 * stride, stride, n - n2));
}

/* A reduction of n values v[0], v[stride], ...: float sums and products pairwise after
 * the identity (as NumPy's add.reduce), the rest in order; then finished (sc_reduce_finish:
 * an f16 reduction carried in f32 is rounded to half once). */
static ir_value reduce_values(ir_op op, fusor_dtype t, const ir_value *v, int64_t stride,
                              int64_t n) {
    ir_value acc = sc_reduce_identity(op, t);
    if (is_float(t) && (op == IR_SUM || op == IR_PROD))
        return sc_reduce_finish(op, t,
                                sc_reduce_combine(op, t, acc, pairwise(op, t, v, stride, n)));
    for (int64_t e = 0; e < n; e++)
        acc = sc_reduce_combine(op, t, acc, v[e * stride]);
    return sc_reduce_finish(op, t, acc); /* f16 accumulates in f32: rounded once, here */
}

static fusor_status reduce(const interp *it, int32_t i, ir_value *out) {
    const ir_node *n = &it->k->nodes[i];
    ir_op op = (ir_op)n->op;
    fusor_dtype t = (fusor_dtype)n->dtype;
    int64_t size = it->d->size;
    if ((op == IR_MIN || op == IR_MAX) && size == 0)
        return fu_error(FUSOR_ERROR_VALUE,
                        "%s() of an empty array: the reduction has no identity (kernel '%s')",
                        ir_op_name(op), it->k->name);
    *out = reduce_values(op, t, it->buf[n->a], 1, size);
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ running */

static fusor_status eval_node(interp *it, int32_t i) {
    const ir_node *n = &it->k->nodes[i];
    if (ir_op_is_reduction((ir_op)n->op))
        return reduce(it, i, &it->one[i]);
    if (n->shape == IR_UNIFORM) {
        it->one[i] = eval_element(it, i, 0);
        return FUSOR_OK;
    }
    int64_t size = it->d->size;
    if ((uint64_t)size > SIZE_MAX / sizeof(ir_value))
        return fu_oom("an interpreter buffer");
    it->buf[i] = fu_malloc(sizeof(ir_value) * (size_t)(size ? size : 1));
    if (!it->buf[i])
        return fu_oom("an interpreter buffer");
    for (int64_t e = 0; e < size; e++)
        it->buf[i][e] = eval_element(it, i, e);
    return FUSOR_OK;
}

static void release_operands(interp *it, int32_t i) {
    const ir_node *n = &it->k->nodes[i];
    int32_t ops[3] = {n->a, n->b, n->c};
    for (int j = 0; j < ir_op_arity((ir_op)n->op); j++) {
        if (it->last[ops[j]] == i) {
            fu_free(it->buf[ops[j]]);
            it->buf[ops[j]] = NULL;
        }
    }
}

static void store_outputs(const interp *it, ir_value *outs) {
    const ir_kernel *k = it->k;
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        if (!o->is_array) {
            outs[j] = it->one[o->node];
            continue;
        }
        int arr = k->nparams + j;
        for (int64_t e = 0; e < it->d->size; e++)
            sc_store(it->d->base[arr] + offset(it->d, arr, e), o->dtype, value_at(it, o->node, e));
    }
}

/* Stencil parameters have the domain's rank; with INTERIOR parameters the domain run is
 * the sub-box where each of their neighbours exists (base pointers moved to its first
 * element, the shape shrunk), written into *sub. */
static fusor_status stencil_domain(const ir_kernel *k, const ir_domain *d, ir_domain *sub,
                                   char **bases, int64_t origin[FUSOR_MAX_DIMS]) {
    for (int p = 0; p < k->nparams; p++)
        if (ir_param_ndims(k, p) && ir_param_boundary(k, p) != IR_BOUND_NONE &&
            ir_param_ndims(k, p) != d->ndim)
            return fu_error(FUSOR_ERROR_SHAPE,
                            "stencil parameter '%s' has %d declared dimensions but the "
                            "domain has %d",
                            k->params[p].name, ir_param_ndims(k, p), d->ndim);
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    *sub = *d;
    for (int i = 0; i < FUSOR_MAX_DIMS; i++) origin[i] = 0;
    if (!ir_interior_halo(k, lo, hi))
        return FUSOR_OK;
    sub->size = 1;
    for (int i = 0; i < d->ndim; i++) {
        sub->shape[i] = d->shape[i] - lo[i] - hi[i];
        if (sub->shape[i] < 0) sub->shape[i] = 0;
        sub->size *= sub->shape[i];
        origin[i] = lo[i];
    }
    for (int a = 0; a < d->narrays; a++) {
        bases[a] = d->base ? d->base[a] : NULL;
        if (bases[a] && sub->size > 0)
            for (int i = 0; i < d->ndim; i++) bases[a] += lo[i] * d->strides[a][i];
    }
    sub->base = bases;
    return FUSOR_OK;
}

fusor_status interp_run(const ir_kernel *k, const ir_domain *d0, const ir_value *scalars,
                        ir_value *outs) {
    fusor_status st = check(k, d0, scalars, outs);
    if (st != FUSOR_OK)
        return st;
    ir_domain sub;
    char **bases = fu_calloc((size_t)d0->narrays + 1, sizeof(char *));
    int64_t origin[FUSOR_MAX_DIMS];
    if (!bases)
        return fu_oom("the interpreter's tables");
    st = stencil_domain(k, d0, &sub, bases, origin);
    if (st != FUSOR_OK) {
        fu_free(bases);
        return st;
    }
    const ir_domain *d = &sub;
    size_t n = (size_t)(k->nnodes ? k->nnodes : 1);
    interp it = {.k = k,
                 .d = d,
                 .d0 = d0,
                 .scalars = scalars,
                 .one = fu_calloc(n, sizeof(ir_value)),
                 .buf = fu_calloc(n, sizeof(ir_value *)),
                 .last = fu_calloc(n, sizeof(int32_t))};
    memcpy(it.origin, origin, sizeof origin);
    if (!it.one || !it.buf || !it.last) {
        st = fu_oom("the interpreter's tables");
        goto done;
    }
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *nd = &k->nodes[i];
        int32_t ops[3] = {nd->a, nd->b, nd->c};
        for (int j = 0; j < ir_op_arity((ir_op)nd->op); j++)
            it.last[ops[j]] = i;
    }
    for (int j = 0; j < k->noutputs; j++)
        it.last[k->outputs[j].node] = k->nnodes;
    for (int32_t i = 0; i < k->nnodes && st == FUSOR_OK; i++) {
        st = eval_node(&it, i);
        release_operands(&it, i);
    }
    if (st == FUSOR_OK)
        store_outputs(&it, outs);
done:
    if (it.buf)
        for (int32_t i = 0; i < k->nnodes; i++)
            fu_free(it.buf[i]);
    fu_free(it.one);
    fu_free(it.buf);
    fu_free(it.last);
    fu_free(bases);
    return st;
}

/* ------------------------------------------------------------------ axis reductions
 *
 * A kernel with axis reductions: each VARYING node is a C-ordered buffer over its own
 * shape (ir_infer_shapes), and an operand of smaller shape is read NumPy's way, aligned on
 * the right with stride 0 along its dimensions of length 1 and the ones it lacks. */

typedef struct sinterp {
    const ir_kernel *k;
    const interp_view *views;
    const ir_value *scalars;
    ir_nshape *shape; /* per node */
    int8_t *axis;     /* per node: an axis reduction's resolved axis */
    int64_t *size;    /* per node: elements of its buffer */
    ir_value *one;
    ir_value **buf;
    int32_t *last;
} sinterp;

/* Element strides (in values) of node `src`'s buffer seen from a node of shape `to`. */
static void buffer_strides(const ir_nshape *from, const ir_nshape *to, int64_t *st) {
    int64_t s = 1;
    for (int d = to->ndim - 1; d >= 0; d--) {
        int fd = d - (to->ndim - from->ndim);
        if (fd < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = from->shape[fd] == 1 ? 0 : s;
        s *= from->shape[fd];
    }
}

static fusor_status shaped_node(sinterp *it, int32_t i) {
    const ir_kernel *k = it->k;
    const ir_node *n = &k->nodes[i];
    ir_op op = (ir_op)n->op;
    if (n->shape == IR_UNIFORM) {
        if (op == IR_CONST) {
            it->one[i] = n->imm;
        } else if (op == IR_INPUT) {
            it->one[i] = it->scalars[n->imm.i];
        } else if (op == IR_COUNT) {
            int32_t r = (int32_t)(n->imm.i - 1);
            if (r < 0 || r >= i || !ir_is_axis_reduction(&k->nodes[r]))
                return bad_node(k, i, "a count in a kernel with axis reductions names no axis");
            it->one[i].i = it->shape[k->nodes[r].a].shape[it->axis[r]];
        } else if (ir_op_is_reduction(op)) {
            return bad_node(k, i, "a whole-domain reduction in a kernel with axis reductions");
        } else {
            ir_value a = {0}, b = {0}, c = {0};
            int ar = ir_op_arity(op);
            if (ar > 0) a = it->one[n->a];
            if (ar > 1) b = it->one[n->b];
            if (ar > 2) c = it->one[n->c];
            it->one[i] = sc_apply(op, (fusor_dtype)n->dtype, (fusor_dtype)n->adtype, a, b, c);
        }
        return FUSOR_OK;
    }
    const ir_nshape *sh = &it->shape[i];
    int64_t size = it->size[i];
    if ((uint64_t)size > SIZE_MAX / sizeof(ir_value)) return fu_oom("an interpreter buffer");
    ir_value *out = it->buf[i] = fu_malloc(sizeof(ir_value) * (size_t)(size ? size : 1));
    if (!out) return fu_oom("an interpreter buffer");
    int64_t idx[FUSOR_MAX_DIMS] = {0};
    if (ir_is_axis_reduction(n)) {
        const ir_nshape *xs = &it->shape[n->a];
        int ax = it->axis[i];
        int64_t len = xs->shape[ax], xst[FUSOR_MAX_DIMS];
        if ((op == IR_MIN || op == IR_MAX) && len == 0)
            return fu_error(FUSOR_ERROR_VALUE,
                            "%s() over axis %d of length 0: the reduction has no identity "
                            "(kernel '%s')",
                            ir_op_name(op), ax, k->name);
        buffer_strides(xs, xs, xst);
        /* Result element e: the operand's multi-index with the axis removed (or at 0). */
        for (int64_t e = 0; e < size; e++) {
            int64_t rem = e, first = 0;
            for (int d = xs->ndim - 1, rd = sh->ndim - 1; d >= 0; d--) {
                if (d == ax) {
                    if (n->off[0]) rd--; /* keepdims: the result's axis has length 1 */
                    continue;
                }
                int64_t v = rem % sh->shape[rd];
                rem /= sh->shape[rd];
                rd--;
                first += v * xst[d];
            }
            out[e] = reduce_values(op, (fusor_dtype)n->dtype, it->buf[n->a] + first, xst[ax], len);
        }
        return FUSOR_OK;
    }
    int ar = op == IR_INPUT ? 0 : ir_op_arity(op);
    int32_t ops[3] = {n->a, n->b, n->c};
    int64_t st[3][FUSOR_MAX_DIMS];
    for (int j = 0; j < ar; j++)
        if (k->nodes[ops[j]].shape == IR_VARYING) buffer_strides(&it->shape[ops[j]], sh, st[j]);
    const interp_view *v = op == IR_INPUT ? &it->views[n->imm.i] : NULL;
    for (int64_t e = 0; e < size; e++) {
        if (e) /* next multi-index in C order */
            for (int d = sh->ndim - 1; d >= 0 && ++idx[d] == sh->shape[d]; d--) idx[d] = 0;
        if (v) {
            int64_t off = 0;
            for (int d = 0; d < sh->ndim; d++) off += idx[d] * v->strides[d];
            out[e] = sc_load(v->base + off, (fusor_dtype)n->dtype);
            continue;
        }
        ir_value x[3] = {{0}, {0}, {0}};
        for (int j = 0; j < ar; j++) {
            if (k->nodes[ops[j]].shape == IR_UNIFORM) {
                x[j] = it->one[ops[j]];
                continue;
            }
            int64_t off = 0;
            for (int d = 0; d < sh->ndim; d++) off += idx[d] * st[j][d];
            x[j] = it->buf[ops[j]][off];
        }
        out[e] = sc_apply(op, (fusor_dtype)n->dtype, (fusor_dtype)n->adtype, x[0], x[1], x[2]);
    }
    return FUSOR_OK;
}

static void shaped_store(const sinterp *it, ir_value *outs) {
    const ir_kernel *k = it->k;
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        if (!o->is_array) {
            outs[j] = it->one[o->node];
            continue;
        }
        const interp_view *v = &it->views[k->nparams + j];
        const ir_nshape *sh = &v->shape;
        int varying = k->nodes[o->node].shape == IR_VARYING;
        int64_t size = 1, idx[FUSOR_MAX_DIMS] = {0};
        for (int d = 0; d < sh->ndim; d++) size *= sh->shape[d];
        for (int64_t e = 0; e < size; e++) {
            if (e)
                for (int d = sh->ndim - 1; d >= 0 && ++idx[d] == sh->shape[d]; d--) idx[d] = 0;
            int64_t off = 0;
            for (int d = 0; d < sh->ndim; d++) off += idx[d] * v->strides[d];
            sc_store(v->base + off, o->dtype, varying ? it->buf[o->node][e] : it->one[o->node]);
        }
    }
}

fusor_status interp_run_shaped(const ir_kernel *k, const interp_view *views,
                               const ir_value *scalars, ir_value *outs) {
    if (!k || !views) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "interp_run_shaped: NULL");
    fusor_status st = check_outputs(k);
    if (st != FUSOR_OK) return st;
    size_t n = (size_t)(k->nnodes ? k->nnodes : 1);
    ir_nshape *params = fu_calloc((size_t)k->nparams + 1, sizeof *params);
    sinterp it = {.k = k,
                  .views = views,
                  .scalars = scalars,
                  .shape = fu_calloc(n, sizeof(ir_nshape)),
                  .axis = fu_calloc(n, 1),
                  .size = fu_calloc(n, sizeof(int64_t)),
                  .one = fu_calloc(n, sizeof(ir_value)),
                  .buf = fu_calloc(n, sizeof(ir_value *)),
                  .last = fu_calloc(n, sizeof(int32_t))};
    if (!params || !it.shape || !it.axis || !it.size || !it.one || !it.buf || !it.last) {
        st = fu_oom("the interpreter's tables");
        goto done;
    }
    for (int32_t i = 0; i < k->nnodes && st == FUSOR_OK; i++) {
        const ir_node *nd = &k->nodes[i];
        if (nd->op >= IR_NUM_OPS || nd->dtype >= FUSOR_NUM_DTYPES ||
            (nd->op == IR_INPUT && (nd->imm.i < 0 || nd->imm.i >= k->nparams)))
            st = bad_node(k, i, "bad op, dtype or parameter");
        else if (ir_is_stencil_load(k, nd))
            st = bad_node(k, i, "a stencil load in a kernel with axis reductions");
    }
    if (st != FUSOR_OK) goto done;
    for (int p = 0; p < k->nparams; p++)
        if (k->params[p].is_array) params[p] = views[p].shape;
    if ((st = ir_infer_shapes(k, params, it.shape, it.axis)) != FUSOR_OK) goto done;
    for (int32_t i = 0; i < k->nnodes; i++) {
        int64_t s = 1;
        for (int d = 0; d < it.shape[i].ndim; d++)
            if (__builtin_mul_overflow(s, it.shape[i].shape[d], &s)) {
                st = fu_error(FUSOR_ERROR_SHAPE, "interp: a shape too large");
                goto done;
            }
        it.size[i] = s;
        const ir_node *nd = &k->nodes[i];
        int32_t ops[3] = {nd->a, nd->b, nd->c};
        for (int j = 0; j < ir_op_arity((ir_op)nd->op); j++) it.last[ops[j]] = i;
    }
    for (int j = 0; j < k->noutputs; j++) {
        it.last[k->outputs[j].node] = k->nnodes;
        if (!k->outputs[j].is_array) continue;
        const ir_nshape *want = &it.shape[k->outputs[j].node], *got = &views[k->nparams + j].shape;
        if (want->ndim != got->ndim ||
            memcmp(want->shape, got->shape, sizeof(int64_t) * (size_t)want->ndim)) {
            st = fu_error(FUSOR_ERROR_SHAPE, "interp: output '%s' does not have its value's shape",
                          k->outputs[j].name);
            goto done;
        }
    }
    for (int32_t i = 0; i < k->nnodes && st == FUSOR_OK; i++) {
        st = shaped_node(&it, i);
        const ir_node *nd = &k->nodes[i];
        int32_t ops[3] = {nd->a, nd->b, nd->c};
        for (int j = 0; j < ir_op_arity((ir_op)nd->op); j++)
            if (it.last[ops[j]] == i) {
                fu_free(it.buf[ops[j]]);
                it.buf[ops[j]] = NULL;
            }
    }
    if (st == FUSOR_OK) shaped_store(&it, outs);
done:
    if (it.buf)
        for (int32_t i = 0; i < k->nnodes; i++) fu_free(it.buf[i]);
    fu_free(params);
    fu_free(it.shape);
    fu_free(it.axis);
    fu_free(it.size);
    fu_free(it.one);
    fu_free(it.buf);
    fu_free(it.last);
    return st;
}
