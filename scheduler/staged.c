/*
 * staged.c — launching kernels with axis reductions, and named-dimension checks (see
 * staged.h).
 */
#include "staged.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "devpool.h"
#include "error.h"
#include "gpuaxis.h"
#include "gpurun.h"
#include "gpurun_impl.h"
#include "interp.h"
#include "pool.h"
#include "run.h"
#include "stream.h"
#include "unfused.h"

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, ndim == 1 ? ",)" : ")");
}

/* ------------------------------------------------------------------ named dimensions */

typedef struct dim_binding {
    const char *name;
    int64_t size;
    int who; /* the parameter that bound it */
} dim_binding;

fusor_status sched_check_dims(const fusor_kernel *k, const ir_kernel *ir,
                              fusor_array *const *arrays, const ir_nshape *out_shapes) {
    dim_binding b[64];
    int nb = 0;
    char s1[160], s2[160];
    for (int i = 0; i < ir->nparams; i++) {
        int nd = ir_param_ndims(ir, i);
        const fusor_array *A = arrays[i];
        if (!nd || !A || !ir->params[i].is_array)
            continue;
        /* A stencil parameter of another rank: check_stencils (launch.c) says it better. */
        if (ir_param_boundary(ir, i) != IR_BOUND_NONE && A->ndim != nd)
            continue;
        if (A->ndim < nd) {
            shape_text(s1, sizeof s1, A->ndim, A->shape);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "rank mismatch: argument '%s' of kernel %s declares %d dimension%s but "
                            "has shape %s",
                            ir->params[i].name, k->name, nd, nd == 1 ? "" : "s", s1);
        }
        for (int e = 0; e < nd; e++) {
            const char *name = ir->dims[i].names[e];
            int64_t size = A->shape[A->ndim - nd + e];
            int x = 0;
            while (x < nb && strcmp(b[x].name, name))
                x++;
            if (x == nb) {
                if (nb < 64)
                    b[nb++] = (dim_binding){name, size, i};
                continue;
            }
            if (b[x].size == size)
                continue;
            const fusor_array *B = arrays[b[x].who];
            shape_text(s1, sizeof s1, B->ndim, B->shape);
            shape_text(s2, sizeof s2, A->ndim, A->shape);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "argument '%s' of kernel %s has dimension '%s' = %lld (shape %s), but "
                            "argument '%s' gives it %lld (shape %s)",
                            ir->params[i].name, k->name, name, (long long)size, s2,
                            ir->params[b[x].who].name, (long long)b[x].size, s1);
        }
    }
    for (int j = 0; j < ir->noutputs && out_shapes; j++) {
        int nd = ir_output_ndims(ir, j);
        const ir_nshape *S = &out_shapes[j];
        if (!nd || !ir->outputs[j].is_array)
            continue;
        shape_text(s1, sizeof s1, S->ndim, S->shape);
        if (S->ndim < nd)
            return fu_error(FUSOR_ERROR_SHAPE,
                            "output '%s' of kernel %s declares %d dimension%s but its value has "
                            "shape %s",
                            ir->outputs[j].name, k->name, nd, nd == 1 ? "" : "s", s1);
        for (int e = 0; e < nd; e++) {
            const char *name = ir->out_dims[j].names[e];
            int64_t size = S->shape[S->ndim - nd + e];
            for (int x = 0; x < nb; x++)
                if (!strcmp(b[x].name, name) && b[x].size != size)
                    return fu_error(FUSOR_ERROR_SHAPE,
                                    "output '%s' of kernel %s has dimension '%s' = %lld (shape "
                                    "%s), but argument '%s' gives it %lld",
                                    ir->outputs[j].name, k->name, name, (long long)size, s1,
                                    ir->params[b[x].who].name, (long long)b[x].size);
        }
    }
    return FUSOR_OK;
}

int sched_param_view(const ir_kernel *ir, int i, const fusor_array *A, int64_t *shape,
                     int64_t *strides) {
    int nd = i < ir->nparams && ir->params[i].is_array ? ir_param_ndims(ir, i) : 0, core = 0;
    for (int p = 0; nd && p < ir->nparams; p++)
        if (ir->params[p].is_array && ir_param_ndims(ir, p) > core)
            core = ir_param_ndims(ir, p);
    int loop = A->ndim - nd, gap = core - nd;
    if (!nd || loop <= 0 || gap <= 0 || A->ndim + gap > FUSOR_MAX_DIMS) {
        memcpy(shape, A->shape, sizeof(int64_t) * (size_t)A->ndim);
        memcpy(strides, A->strides, sizeof(int64_t) * (size_t)A->ndim);
        return A->ndim;
    }
    for (int x = 0, y = 0; x < A->ndim + gap; x++) {
        int inserted = x >= loop && x < loop + gap;
        shape[x] = inserted ? 1 : A->shape[y];
        strides[x] = inserted ? 0 : A->strides[y];
        y += !inserted;
    }
    return A->ndim + gap;
}

/* ------------------------------------------------------------------ preparing */

typedef struct shapes {
    ir_nshape *node; /* [nnodes] */
    int8_t *axis;    /* [nnodes] */
    ir_nshape out[HOST_MAX_ARRAYS];
} shapes;

static void shapes_free(shapes *s) {
    if (!s)
        return;
    fu_free(s->node);
    fu_free(s->axis);
    fu_free(s);
}

static fusor_status infer(const fusor_kernel *k, const ir_kernel *ir, fusor_array *const *arrays,
                          shapes **out) {
    shapes *s = fu_calloc(1, sizeof *s);
    ir_nshape params[HOST_MAX_ARRAYS];
    size_t n = (size_t)(ir->nnodes ? ir->nnodes : 1);
    if (!s || !(s->node = fu_calloc(n, sizeof(ir_nshape))) || !(s->axis = fu_calloc(n, 1))) {
        shapes_free(s);
        return fu_oom("a launch's shapes");
    }
    for (int i = 0; i < ir->nparams; i++) {
        params[i].ndim = 0;
        if (ir->params[i].is_array && arrays[i]) {
            int64_t strides[FUSOR_MAX_DIMS];
            params[i].ndim = sched_param_view(ir, i, arrays[i], params[i].shape, strides);
        }
    }
    /* Named dimensions first: a mismatch there is the better message than the broadcast
     * error it leads to. */
    fusor_status st = sched_check_dims(k, ir, arrays, NULL);
    if (st == FUSOR_OK)
        st = ir_infer_shapes(ir, params, s->node, s->axis);
    for (int j = 0; st == FUSOR_OK && j < ir->noutputs; j++)
        s->out[j] = s->node[ir->outputs[j].node];
    if (st == FUSOR_OK)
        st = sched_check_dims(k, ir, arrays, s->out);
    if (st != FUSOR_OK) {
        shapes_free(s);
        return st;
    }
    *out = s;
    return FUSOR_OK;
}

static int overlaps(const fusor_array *A, const fusor_array *B) {
    const char *alo, *ahi, *blo, *bhi;
    mem_array_extent(A, &alo, &ahi);
    mem_array_extent(B, &blo, &bhi);
    return alo < bhi && blo < ahi;
}

/* Output j may update input i in place when it holds exactly i's elements (same memory,
 * dtype size, shape and strides), a STORE stage writes it (element by element, after
 * every axis reduction has been computed), and no later stage reads input i. */
static int in_place_ok(const ir_kernel *ir, const ir_staging *sg, int j, int i,
                       const fusor_array *O, const fusor_array *I) {
    if (!sg || O->data != I->data || O->ndim != I->ndim ||
        fusor_dtype_size(O->dtype) != fusor_dtype_size(I->dtype) ||
        memcmp(O->shape, I->shape, sizeof(int64_t) * (size_t)O->ndim) ||
        memcmp(O->strides, I->strides, sizeof(int64_t) * (size_t)O->ndim))
        return 0;
    (void)ir;
    int at = -1;
    for (int t = 0; t < sg->nstages && at < 0; t++)
        if (sg->stages[t].kind == IR_STAGE_STORE && sg->stages[t].output == j)
            at = t;
    if (at < 0)
        return 0;
    for (int t = at + 1; t < sg->nstages; t++)
        for (int p = 0; p < sg->stages[t].k->nparams; p++)
            if (sg->stages[t].src[p].kind == IR_SRC_PARAM && sg->stages[t].src[p].index == i)
                return 0;
    return 1;
}

static fusor_status check(fusor_kernel *k, const ir_kernel *ir, const ir_staging *sg,
                          fusor_array **arrays, const shapes *s) {
    char s1[160], s2[160];
    int n = ir->nparams + ir->noutputs;
    for (int j = 0; j < ir->noutputs; j++) {
        const fusor_array *O = arrays[ir->nparams + j];
        const ir_nshape *want = &s->out[j];
        if (!O)
            continue;
        if (O->ndim != want->ndim ||
            memcmp(O->shape, want->shape, sizeof(int64_t) * (size_t)want->ndim)) {
            shape_text(s1, sizeof s1, O->ndim, O->shape);
            shape_text(s2, sizeof s2, want->ndim, want->shape);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "output '%s' of kernel %s has shape %s; its value "
                            "has shape %s",
                            ir->outputs[j].name, k->name, s1, s2);
        }
        for (int i = 0; i < n; i++) {
            if (i == ir->nparams + j || !arrays[i] || !overlaps(O, arrays[i]))
                continue;
            if (i < ir->nparams && in_place_ok(ir, sg, j, i, O, arrays[i]))
                continue;
            return fu_error(FUSOR_ERROR_ALIAS,
                            "output '%s' of kernel %s shares memory with %s '%s': a kernel with "
                            "axis reductions updates an input in place only with exactly its "
                            "elements, written after every axis reduction and read by no later "
                            "statement's stage; write into another array",
                            ir->outputs[j].name, k->name, i < ir->nparams ? "input" : "output",
                            i < ir->nparams ? ir->params[i].name
                                            : ir->outputs[i - ir->nparams].name);
        }
    }
    /* NumPy: min/max over an axis of length 0 has no identity, even for an empty result. */
    for (int32_t i = 0; i < ir->nnodes; i++) {
        const ir_node *nd = &ir->nodes[i];
        if (!ir_is_axis_reduction(nd) || (nd->op != IR_MIN && nd->op != IR_MAX))
            continue;
        const ir_nshape *x = &s->node[nd->a];
        if (x->shape[s->axis[i]] != 0)
            continue;
        const ir_node *src = &ir->nodes[nd->a];
        char what[200];
        shape_text(s1, sizeof s1, x->ndim, x->shape);
        if (src->op == IR_INPUT)
            snprintf(what, sizeof what, "argument '%s' %s", ir->params[src->imm.i].name, s1);
        else
            snprintf(what, sizeof what, "a value of shape %s", s1);
        return fu_error(FUSOR_ERROR_VALUE,
                        "kernel %s: %s() over axis %d of %s, which has length 0: the reduction "
                        "has no identity",
                        k->name, nd->op == IR_MIN ? "min" : "max", (int)s->axis[i], what);
    }
    return FUSOR_OK;
}

fusor_status sched_staged_prepare(fusor_kernel *k, sched_spec *spec, fusor_array **arrays,
                                  int *allocated) {
    const ir_kernel *ir = spec->ir;
    shapes *s;
    fusor_status st = infer(k, ir, arrays, &s);
    if (st != FUSOR_OK)
        return st;
    st = check(k, ir, spec->staging, arrays, s);
    for (int j = 0; st == FUSOR_OK && j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (!ir->outputs[j].is_array || arrays[i])
            continue;
        st = mem_array_new(ir->outputs[j].dtype, s->out[j].ndim, s->out[j].shape, &arrays[i]);
        if (st == FUSOR_OK)
            allocated[i] = 1;
    }
    shapes_free(s);
    return st;
}

/* ------------------------------------------------------------------ running */

/* Byte strides of an array of shape (ndim, shape, strides) seen over domain `d`: aligned
 * on the right, 0 along dimensions it broadcasts over or lacks. */
static void view_strides(int ndim, const int64_t *shape, const int64_t *strides, const ir_nshape *d,
                         int64_t *out) {
    for (int x = 0; x < d->ndim; x++) {
        int ax = x - (d->ndim - ndim);
        out[x] = ax < 0 || shape[ax] == 1 ? 0 : strides[ax];
    }
}

typedef struct buffer { /* where an axis reduction's result lives */
    char *base;
    int64_t strides[FUSOR_MAX_DIMS];
    void *owned;
} buffer;

/* The buffers a launch of a kernel with stages needs besides its arrays: the shapes of
 * every node, the axis reductions' temporaries, one stage's strides and slots, and the
 * row path's partials.  A prepared launch keeps them (sched_staged_cache), so that its
 * steps allocate nothing; fusor_launch makes them for the one launch. */
struct sched_staged_cache {
    shapes *s;                          /* of the arrays below */
    int nbound;                         /* parameters and outputs */
    ir_nshape *bound;                   /* [nbound]: their shapes for s (-1: unbound) */
    buffer *res;                        /* [nnodes] */
    int64_t (*strides)[FUSOR_MAX_DIMS]; /* [the most arrays of a stage + 1] */
    ir_value *sslots;                   /* [the most slots of a stage + 1] */
    int max_arrays, max_slots;
    host_scratch axis;                  /* host_run_axis's partials */
    struct staged_gpu *gpu;             /* prepared steps on a GPU (below), or NULL */
    int placed, device;                 /* a prepared launch's placement, decided once */
    fusor_placement placement;
};

typedef struct staged_gpu staged_gpu;
static void staged_gpu_free(staged_gpu *q, int32_t nnodes);

/* Stage si's domain (d, over base[] and strides[]) and slots (sslots) for a launch whose
 * arrays' element 0 are at abase[] (host pointers, or device addresses on a GPU) and
 * whose axis reductions' results are in res[]: both as the stage's kernel indexes its
 * arrays.  An AXIS stage's result goes to *out with byte strides ostr over d (0 along
 * the reduced axis, which *axis receives). */
static void bind_stage(const sched_spec *spec, int si, fusor_array **arrays, char *const *abase,
                       const buffer *res, const shapes *s, const ir_value *slots, ir_domain *d,
                       char **base, int64_t (*strides)[FUSOR_MAX_DIMS], ir_value *sslots,
                       char **out, int64_t *ostr, int *axis) {
    const ir_kernel *ir = spec->ir;
    const ir_stage *stg = &spec->staging->stages[si];
    const ir_kernel *sk = stg->k;
    int na = sk->nparams + sk->noutputs;
    memset(strides, 0, sizeof *strides * (size_t)(na + 1));
    memset(sslots, 0, sizeof *sslots * (size_t)(stg->plan->nslots + 1));
    ir_nshape dom = {0};
    if (stg->kind == IR_STAGE_AXIS)
        dom = s->node[ir->nodes[stg->node].a];
    if (stg->kind == IR_STAGE_STORE)
        dom = s->node[stg->node];
    int64_t size = 1;
    for (int x = 0; x < dom.ndim; x++)
        size *= dom.shape[x];
    for (int i = 0; i < sk->nparams; i++) {
        const ir_stage_src *src = &stg->src[i];
        base[i] = NULL;
        if (src->kind == IR_SRC_AXISLEN) {
            const ir_node *r = &ir->nodes[src->index];
            sslots[i].i = s->node[r->a].shape[s->axis[src->index]];
        } else if (src->kind == IR_SRC_RESULT) {
            const buffer *b = &res[src->index];
            const ir_nshape *rs = &s->node[src->index];
            base[i] = b->base;
            view_strides(rs->ndim, rs->shape, b->strides, &dom, strides[i]);
        } else if (!sk->params[i].is_array) {
            sslots[i] = slots[src->index];
        } else {
            const fusor_array *A = arrays[src->index];
            int64_t vshape[FUSOR_MAX_DIMS], vstrides[FUSOR_MAX_DIMS];
            int vn = sched_param_view(ir, src->index, A, vshape, vstrides);
            base[i] = abase[src->index];
            view_strides(vn, vshape, vstrides, &dom, strides[i]);
        }
    }
    for (int j = 0; j < sk->noutputs; j++)
        base[sk->nparams + j] = NULL;
    if (stg->kind == IR_STAGE_STORE) {
        const fusor_array *O = arrays[ir->nparams + stg->output];
        base[sk->nparams] = abase[ir->nparams + stg->output];
        view_strides(O->ndim, O->shape, O->strides, &dom, strides[sk->nparams]);
    }
    sslots[stg->plan->count_slot].i = size;
    *d = (ir_domain){.ndim = dom.ndim, .size = size, .narrays = na, .base = base,
                     .strides = strides};
    memcpy(d->shape, dom.shape, sizeof d->shape);
    *out = NULL;
    *axis = -1;
    if (stg->kind != IR_STAGE_AXIS)
        return;
    const ir_node *nd = &ir->nodes[stg->node];
    const buffer *b = &res[stg->node];
    int ax = s->axis[stg->node];
    for (int x = 0, r = 0; x < dom.ndim; x++) {
        if (x == ax) {
            ostr[x] = 0;
            r += nd->off[0]; /* keepdims keeps a length-1 axis there */
            continue;
        }
        ostr[x] = b->strides[r++];
    }
    *out = b->base;
    *axis = ax;
}

/* Where each array's element 0 is (NULL for an unbound one). */
static void array_bases(const ir_kernel *ir, fusor_array **arrays, char **out) {
    for (int i = 0; i < ir->nparams + ir->noutputs; i++)
        out[i] = arrays[i] ? arrays[i]->data : NULL;
}

/* Stage si on the host threads; with `u`, unfused (unfused.h). */
static fusor_status run_stage(sched_spec *spec, int si, fusor_array **arrays, sched_staged_cache *c,
                              const ir_value *slots, ir_value *outs, sched_unfused *u, int nthreads,
                              int *threads) {
    const ir_kernel *ir = spec->ir;
    const ir_stage *stg = &spec->staging->stages[si];
    const ir_kernel *sk = stg->k;
    const cg_compiled *code = spec->stage_code[si];
    char *base[HOST_MAX_ARRAYS], *abase[HOST_MAX_ARRAYS], *out;
    ir_value souts[HOST_MAX_ARRAYS];
    int64_t ostr[FUSOR_MAX_DIMS] = {0};
    int ax;
    array_bases(ir, arrays, abase);
    ir_domain d;
    bind_stage(spec, si, arrays, abase, c->res, c->s, slots, &d, base, c->strides, c->sslots,
               &out, ostr, &ax);
    if (u && stg->kind != IR_STAGE_SCALARS)
        return sched_unfused_run_stage(u, si, sk, &d, c->sslots, ax, out, ostr, nthreads, threads,
                                       &c->axis);
    if (stg->kind == IR_STAGE_AXIS)
        return host_run_axis(sk, stg->plan, code, spec->stage_map_code[si], stg->map_accumulates,
                             &d, ax, out, ostr, c->sslots, nthreads, threads, &c->axis);
    fusor_status st = host_run(sk, stg->plan, code, &d, c->sslots, souts, nthreads, threads, NULL);
    if (st == FUSOR_OK && stg->kind == IR_STAGE_SCALARS)
        for (int j = 0, m = 0; j < ir->noutputs; j++)
            if (!ir->outputs[j].is_array)
                outs[j] = souts[m++];
    return st;
}

static fusor_status run_reference(const ir_kernel *ir, fusor_array **arrays, const ir_value *slots,
                                  ir_value *outs) {
    int n = ir->nparams + ir->noutputs;
    interp_view *v = fu_calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return fu_oom("a reference launch");
    for (int i = 0; i < n; i++) {
        const fusor_array *A = arrays[i];
        if (!A)
            continue;
        v[i].base = A->data;
        v[i].shape.ndim = sched_param_view(ir, i, A, v[i].shape.shape, v[i].strides);
    }
    fusor_status st = interp_run_shaped(ir, v, slots, outs);
    fu_free(v);
    return st;
}

/* Frees what c holds (its temporaries too); keeps c itself. */
static void cache_clear(sched_staged_cache *c, int32_t nnodes) {
    staged_gpu_free(c->gpu, nnodes); /* its temporaries have the old shapes */
    c->gpu = NULL;
    shapes_free(c->s);
    c->s = NULL;
    for (int32_t i = 0; c->res && i < nnodes; i++)
        fu_aligned_free(c->res[i].owned);
    fu_free(c->res);
    c->res = NULL;
    fu_free(c->strides);
    fu_free(c->sslots);
    fu_free(c->axis.p);
    fu_free(c->bound);
    c->strides = NULL;
    c->sslots = NULL;
    c->bound = NULL;
    c->axis = (host_scratch){0};
    c->max_arrays = c->max_slots = 0;
    c->nbound = 0;
}

void sched_staged_cache_free(sched_staged_cache *c, const sched_spec *spec) {
    if (!c)
        return;
    cache_clear(c, spec ? spec->ir->nnodes : 0);
    fu_free(c);
}

/* Whether c was made for arrays of these shapes. */
static int cache_fits(const sched_staged_cache *c, const ir_kernel *ir, fusor_array **arrays) {
    int n = ir->nparams + ir->noutputs;
    if (!c->s || c->nbound != n)
        return 0;
    for (int i = 0; i < n; i++) {
        const fusor_array *A = arrays[i];
        const ir_nshape *b = &c->bound[i];
        if (!A ? b->ndim != -1
               : b->ndim != A->ndim || memcmp(b->shape, A->shape, sizeof(int64_t) * (size_t)A->ndim))
            return 0;
    }
    return 1;
}

/* Makes c hold the shapes, temporaries and stage buffers of a launch over `arrays`: kept
 * when the arrays' shapes are those c was made for, else made again. */
static fusor_status cache_fit(fusor_kernel *k, sched_spec *spec, fusor_array **arrays,
                              sched_staged_cache *c) {
    const ir_kernel *ir = spec->ir;
    const ir_staging *sg = spec->staging;
    if (cache_fits(c, ir, arrays))
        return FUSOR_OK;
    cache_clear(c, ir->nnodes);
    int n = ir->nparams + ir->noutputs;
    if (n > HOST_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "a kernel may have at most %d parameters and outputs", HOST_MAX_ARRAYS);
    fusor_status st = infer(k, ir, arrays, &c->s);
    if (st != FUSOR_OK)
        return st;
    for (int si = 0; si < sg->nstages; si++) {
        const ir_stage *stg = &sg->stages[si];
        if (stg->k->nparams + stg->k->noutputs > c->max_arrays)
            c->max_arrays = stg->k->nparams + stg->k->noutputs;
        if (stg->plan->nslots > c->max_slots)
            c->max_slots = stg->plan->nslots;
    }
    c->res = fu_calloc((size_t)ir->nnodes + 1, sizeof *c->res);
    c->strides = fu_calloc((size_t)c->max_arrays + 1, sizeof *c->strides);
    c->sslots = fu_calloc((size_t)c->max_slots + 1, sizeof *c->sslots);
    c->bound = fu_calloc((size_t)n + 1, sizeof *c->bound);
    if (!c->res || !c->strides || !c->sslots || !c->bound) {
        cache_clear(c, ir->nnodes);
        return fu_oom("a launch's temporaries");
    }
    /* The temporaries of axis reductions without an output of their own, C-ordered. */
    for (int32_t i = 0; i < ir->nnodes; i++) {
        if (!ir_is_axis_reduction(&ir->nodes[i]) || sg->home[i] >= 0)
            continue;
        const ir_nshape *sh = &c->s->node[i];
        int64_t step = (int64_t)fusor_dtype_size((fusor_dtype)ir->nodes[i].dtype);
        for (int x = sh->ndim - 1; x >= 0; x--) {
            c->res[i].strides[x] = step;
            step *= sh->shape[x] ? sh->shape[x] : 1;
        }
        c->res[i].owned = c->res[i].base = fu_aligned_alloc((size_t)(step ? step : 1));
        if (!c->res[i].base) {
            cache_clear(c, ir->nnodes);
            return fu_oom("a temporary of an axis reduction");
        }
    }
    for (int i = 0; i < n; i++) {
        const fusor_array *A = arrays[i];
        c->bound[i].ndim = A ? A->ndim : -1;
        if (A)
            memcpy(c->bound[i].shape, A->shape, sizeof(int64_t) * (size_t)A->ndim);
    }
    c->nbound = n;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ on a GPU */

static int in_gpu_memory(const fusor_array *A) {
    return A->memory == FUSOR_MEMORY_DEVICE || A->memory == FUSOR_MEMORY_MANAGED;
}

/* A GPU step of a staged launch: up to two launches per stage (SCALARS: none, they run
 * on the host; a split AXIS stage: two), and one image holding every stage's parameter
 * block, then every stage's slots (so that a step whose scalars changed uploads only
 * those), then on the device only, the split stages' rows of raw words. */
typedef struct gpu_step {
    sched_gpu_call *l; /* [2 * nstages]: stage si's at 2 si and 2 si + 1 */
    size_t *poff;      /* [nstages]: the stage's parameter block in the image */
    size_t *soff;      /* [nstages]: its slots */
    size_t *roff;      /* [nstages]: its rows of raw words (device only), or 0 */
    unsigned char *img;
    size_t len, slots_off, up_len; /* up_len: what is uploaded (params and slots) */
} gpu_step;

static void gpu_step_free(gpu_step *g) {
    fu_free(g->l);
    fu_free(g->poff);
    fu_free(g->roff);
    fu_free(g->soff);
    fu_free(g->img);
    memset(g, 0, sizeof *g);
}

/* The layout of a step over arrays of the shapes c was made for. */
static fusor_status gpu_step_layout(const sched_spec *spec, const sched_staged_cache *c,
                                    gpu_step *g) {
    int ns = spec->staging->nstages;
    memset(g, 0, sizeof *g);
    g->l = fu_calloc(2 * (size_t)ns + 1, sizeof *g->l);
    g->poff = fu_calloc((size_t)ns + 1, sizeof *g->poff);
    g->soff = fu_calloc((size_t)ns + 1, sizeof *g->soff);
    g->roff = fu_calloc((size_t)ns + 1, sizeof *g->roff);
    if (!g->l || !g->poff || !g->soff || !g->roff) {
        gpu_step_free(g);
        return fu_oom("a staged GPU launch's parameters");
    }
    size_t off = 0;
    for (int si = 0; si < ns; si++) {
        if (spec->staging->stages[si].kind == IR_STAGE_SCALARS)
            continue;
        g->poff[si] = off;
        off += sched_gpu_stage_params_size(&spec->stage_gpu[si]);
    }
    g->slots_off = off;
    for (int si = 0; si < ns; si++) {
        g->soff[si] = off;
        off += ((size_t)spec->staging->stages[si].plan->nslots * 8 + 255) & ~(size_t)255;
    }
    g->up_len = off;
    for (int si = 0; si < ns; si++) {
        const ir_stage *stg = &spec->staging->stages[si];
        if (stg->kind != IR_STAGE_AXIS)
            continue;
        const ir_nshape *op = &c->s->node[spec->ir->nodes[stg->node].a];
        ir_domain d = {.ndim = op->ndim};
        memcpy(d.shape, op->shape, sizeof d.shape);
        size_t rows = sched_gpu_axis_partials_bytes(&spec->stage_gpu[si], &d, c->s->axis[stg->node]);
        g->roff[si] = rows ? off : 0;
        off += (rows + 255) & ~(size_t)255;
    }
    g->len = off;
    g->img = fu_calloc(1, g->up_len ? g->up_len : 1);
    if (!g->img) {
        gpu_step_free(g);
        return fu_oom("a staged GPU launch's parameters");
    }
    return FUSOR_OK;
}

/* Writes every stage's slots into the image (`plan`: also plans the launches, their
 * parameter blocks naming the image's device address dimg).  abase: the arrays' device
 * addresses; gres: where the axis reductions' results are. */
static fusor_status gpu_step_fill(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                                  fusor_array **arrays, char *const *abase, const buffer *gres,
                                  sched_staged_cache *c, const ir_value *slots,
                                  sched_gpu_stages *g, int plan, cudrv_ptr dimg, gpu_step *step) {
    char *base[HOST_MAX_ARRAYS], *out;
    fusor_status st = FUSOR_OK;
    for (int si = 0; !st && si < spec->staging->nstages; si++) {
        const ir_stage *stg = &spec->staging->stages[si];
        if (stg->kind == IR_STAGE_SCALARS)
            continue;
        ir_domain d;
        int64_t ostr[FUSOR_MAX_DIMS] = {0};
        int ax;
        bind_stage(spec, si, arrays, abase, gres, c->s, slots, &d, base, c->strides, c->sslots,
                   &out, ostr, &ax);
        memcpy(step->img + step->soff[si], c->sslots, (size_t)stg->plan->nslots * 8);
        if (!plan)
            continue;
        size_t off = step->poff[si];
        cudrv_ptr dslots = dimg + (cudrv_ptr)step->soff[si];
        sched_gpu_call *l = &step->l[2 * si];
        if (stg->kind == IR_STAGE_AXIS) { /* the result array comes last (gpuaxis.h) */
            d.narrays = stg->k->nparams + 1;
            base[stg->k->nparams] = out;
            memcpy(c->strides[stg->k->nparams], ostr, sizeof ostr);
            cudrv_ptr rows = step->roff[si] ? dimg + (cudrv_ptr)step->roff[si] : 0;
            st = sched_gpu_plan_axis(g, k, a, &spec->stage_gpu[si], &d, ax, dslots, rows,
                                     step->img + off, l);
        } else {
            st = sched_gpu_plan_store(g, k, a, &spec->stage_gpu[si], &d, dslots, step->img + off,
                                      l);
        }
        l[0].off = l[1].off = off;
    }
    return st;
}

/* The SCALARS stage (parameters and constants only) on the host. */
static fusor_status run_scalars(sched_spec *spec, fusor_array **arrays, sched_staged_cache *c,
                                const ir_value *slots, ir_value *outs) {
    fusor_status st = FUSOR_OK;
    for (int si = 0; !st && si < spec->staging->nstages; si++) {
        int used;
        if (spec->staging->stages[si].kind == IR_STAGE_SCALARS)
            st = run_stage(spec, si, arrays, c, slots, outs, NULL, 1, &used);
    }
    return st;
}

/* Where each axis reduction's result goes: its output (abase), else temp[node]. */
static void gpu_results(const sched_spec *spec, fusor_array **arrays, char *const *abase,
                        const cudrv_ptr *temp, const sched_staged_cache *c, buffer *gres) {
    const ir_kernel *ir = spec->ir;
    for (int32_t i = 0; i < ir->nnodes; i++) {
        if (!ir_is_axis_reduction(&ir->nodes[i]))
            continue;
        int home = spec->staging->home[i];
        if (home >= 0) {
            gres[i].base = abase[ir->nparams + home];
            memcpy(gres[i].strides, arrays[ir->nparams + home]->strides, sizeof gres[i].strides);
        } else {
            gres[i].base = (char *)(uintptr_t)temp[i];
            memcpy(gres[i].strides, c->res[i].strides, sizeof gres[i].strides);
        }
    }
}

/* Bytes of the temporary of axis reduction node i (C-ordered, as cache_fit lays it out). */
static size_t temp_bytes(const sched_spec *spec, const sched_staged_cache *c, int32_t i) {
    const ir_nshape *sh = &c->s->node[i];
    int64_t count = 1;
    for (int x = 0; x < sh->ndim; x++)
        count *= sh->shape[x];
    return (size_t)count * fusor_dtype_size((fusor_dtype)spec->ir->nodes[i].dtype);
}

static fusor_status stages_alloc(void *g, size_t bytes, cudrv_ptr *out) {
    return sched_gpu_stages_alloc(g, bytes, out);
}

/* Runs every stage on GPU `device` (gpuaxis.h): arrays placed, temporaries on the
 * device, one upload of every stage's parameters, host outputs copied back at the end. */
static fusor_status run_on_gpu(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                               fusor_array **arrays, sched_staged_cache *c, const ir_value *slots,
                               ir_value *outs, int device, int *threads) {
    const ir_kernel *ir = spec->ir;
    int n = ir->nparams + ir->noutputs;
    sched_gpu_stages g;
    fusor_status st = sched_gpu_stages_begin(&g, device, 0);
    if (st)
        return st;
    char *abase[HOST_MAX_ARRAYS] = {0};
    cudrv_ptr hostbuf[HOST_MAX_ARRAYS] = {0};
    buffer *gres = fu_calloc((size_t)ir->nnodes + 1, sizeof *gres);
    cudrv_ptr *temp = fu_calloc((size_t)ir->nnodes + 1, sizeof *temp);
    gpu_step step = {0};
    double copied = 0;
    if (!gres || !temp)
        st = fu_oom("a staged GPU launch");
    /* Device and managed arrays in place; host ones in pool buffers (gpurun.c). */
    char *elem0[HOST_MAX_ARRAYS];
    cudrv_ptr devbase[HOST_MAX_ARRAYS];
    array_bases(ir, arrays, elem0);
    if (!st)
        st = sched_gpu_place(k->name, ir, arrays, elem0, n, device, 0, g.cu, stages_alloc, &g,
                             devbase, hostbuf, &copied);
    for (int i = 0; !st && i < n; i++)
        abase[i] = (char *)(uintptr_t)devbase[i];
    for (int32_t i = 0; !st && i < ir->nnodes; i++)
        if (ir_is_axis_reduction(&ir->nodes[i]) && spec->staging->home[i] < 0)
            st = sched_gpu_stages_alloc(&g, temp_bytes(spec, c, i), &temp[i]);
    if (!st) {
        gpu_results(spec, arrays, abase, temp, c, gres);
        st = gpu_step_layout(spec, c, &step);
    }
    /* Every stage's parameters in one image, uploaded once to the stream's buffer. */
    sched_scratch *buf = NULL;
    if (!st)
        st = sched_stream_scratch(device, g.cu, step.len, &buf);
    cudrv_ptr dimg = st ? 0 : sched_scratch_ptr(buf);
    if (!st)
        st = gpu_step_fill(k, a, spec, arrays, abase, gres, c, slots, &g, 1, dimg, &step);
    if (!st)
        st = sched_scratch_upload(buf, step.img, step.up_len);
    if (!st)
        st = sched_gpu_issue_launches(&g, k->name, step.l, 2 * spec->staging->nstages, dimg);
    if (!st)
        st = run_scalars(spec, arrays, c, slots, outs);
    /* Host outputs, last: nothing is written to them unless every stage was queued. */
    int need_sync = 0;
    if (!st)
        st = sched_gpu_copy_back(device, arrays, hostbuf, ir->nparams, n, g.cu, &copied,
                                 &need_sync);
    *threads = g.threads > 0 ? g.threads : 1;
    st = sched_gpu_stages_end(&g, need_sync, st);
    a->placement.copy_bytes = copied;
    gpu_step_free(&step);
    fu_free(temp);
    fu_free(gres);
    return st;
}

/* ---- prepared launches over device arrays: each arrangement of the arrays (a ping-pong
 * loop has two) planned once, its parameters on the device, the step captured as one CUDA
 * Graph; a step uploads the stages' slots only when they changed and launches the graph. */

#define GPU_BINDINGS 4

typedef struct gpu_binding {
    cudrv_ptr *key; /* [nparams + noutputs]: the arrays' device addresses */
    buffer *gres;   /* [nnodes]: where the axis reductions' results are */
    unsigned char *now; /* [step.up_len]: a step's slots, made here (no allocation per step) */
    gpu_step step;  /* step.img: what the device holds */
    cudrv_ptr dimg;
    cudrv_graph_exec exec;
    uint64_t used;
    uint64_t gen; /* unique in the process: a sequence's graph names the bindings it holds */
} gpu_binding;

struct staged_gpu {
    int device;
    sched_gpu_stages g; /* g.cu: the launch's own stream (set-up, captures, plain steps) */
    cudrv_ptr *temp;    /* [nnodes]: the axis reductions' temporaries */
    size_t *tbytes;
    gpu_binding b[GPU_BINDINGS];
    int nb;
    gpu_binding *cur; /* the last step's */
    int resident;     /* the last step ran here, every array in GPU memory */
    uint64_t clock;
    long captures, replays;
};

static void binding_drop(staged_gpu *q, gpu_binding *b) {
    if (b->exec)
        q->g.t->graph_exec_destroy(b->exec);
    mem_dev_free(q->device, b->dimg, b->step.len, q->g.cu);
    gpu_step_free(&b->step);
    fu_free(b->key);
    fu_free(b->gres);
    fu_free(b->now);
    memset(b, 0, sizeof *b);
}

static void staged_gpu_free(staged_gpu *q, int32_t nnodes) {
    if (!q)
        return;
    if (q->g.d && !sched_device_activate(q->g.d)) {
        q->g.t->stream_synchronize(q->g.cu);
        for (int i = 0; i < q->nb; i++)
            binding_drop(q, &q->b[i]);
        for (int32_t i = 0; q->temp && i < nnodes; i++)
            mem_dev_free(q->device, q->temp[i], q->tbytes[i], q->g.cu);
        sched_gpu_stages_end(&q->g, 0, FUSOR_OK);
    }
    fu_clear_error();
    fu_free(q->temp);
    fu_free(q->tbytes);
    fu_free(q);
}

typedef struct binding_issue_arg {
    staged_gpu *q;
    const char *kname;
    gpu_binding *b;
    int ncalls;
} binding_issue_arg;

static fusor_status binding_issue(void *arg) {
    binding_issue_arg *a = arg;
    return sched_gpu_issue_launches(&a->q->g, a->kname, a->b->step.l, a->ncalls, a->b->dimg);
}

/* The binding of these arrays: found, or planned, uploaded and captured. */
static fusor_status binding_get(staged_gpu *q, fusor_kernel *k, fusor_args *a, sched_spec *spec,
                                fusor_array **arrays, char *const *abase, sched_staged_cache *c,
                                const ir_value *slots, gpu_binding **out) {
    const ir_kernel *ir = spec->ir;
    int n = ir->nparams + ir->noutputs;
    cudrv_ptr key[HOST_MAX_ARRAYS];
    for (int i = 0; i < n; i++)
        key[i] = (cudrv_ptr)(uintptr_t)abase[i];
    for (int i = 0; i < q->nb; i++)
        if (!memcmp(q->b[i].key, key, sizeof(cudrv_ptr) * (size_t)n)) {
            q->b[i].used = ++q->clock;
            *out = q->cur = &q->b[i];
            return FUSOR_OK;
        }
    if (q->nb == GPU_BINDINGS) { /* more arrangements than a ping-pong: drop the oldest */
        int old = 0;
        for (int i = 1; i < q->nb; i++)
            if (q->b[i].used < q->b[old].used)
                old = i;
        q->g.t->stream_synchronize(q->g.cu);
        binding_drop(q, &q->b[old]);
        q->b[old] = q->b[--q->nb];
        q->cur = NULL;
    }
    gpu_binding *b = &q->b[q->nb];
    memset(b, 0, sizeof *b);
    static _Atomic uint64_t generations;
    b->gen = ++generations;
    buffer *gres = b->gres = fu_calloc((size_t)ir->nnodes + 1, sizeof *gres);
    b->key = fu_malloc(sizeof(cudrv_ptr) * (size_t)(n ? n : 1));
    fusor_status st = gres && b->key ? gpu_step_layout(spec, c, &b->step)
                                     : fu_oom("a prepared GPU binding");
    if (!st && !(b->now = fu_malloc(b->step.up_len + 1)))
        st = fu_oom("a prepared GPU binding");
    if (!st) {
        memcpy(b->key, key, sizeof(cudrv_ptr) * (size_t)n);
        gpu_results(spec, arrays, abase, q->temp, c, gres);
        st = mem_dev_alloc(q->device, b->step.len, q->g.cu, &b->dimg);
    }
    if (!st)
        st = gpu_step_fill(k, a, spec, arrays, abase, gres, c, slots, &q->g, 1, b->dimg, &b->step);
    if (!st) {
        cudrv_result r = q->g.t->memcpy_htod_async(b->dimg, b->step.img, b->step.up_len, q->g.cu);
        if (!r)
            r = q->g.t->stream_synchronize(q->g.cu); /* steps may run on other streams */
        if (r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "writing a prepared launch's parameters");
    }
    if (st) {
        binding_drop(q, b);
        return st;
    }
    /* The step as a graph; any failure leaves direct launches, which work everywhere. */
    binding_issue_arg ia = {q, k->name, b, 2 * spec->staging->nstages};
    b->exec = sched_gpu_capture(q->g.t, q->g.cu, binding_issue, &ia);
    q->captures += b->exec != NULL;
    b->used = ++q->clock;
    q->nb++;
    *out = q->cur = b;
    return FUSOR_OK;
}

/* After a failed step the device may not hold what b's host copy of its slots says: made
 * unlike any real image, so that the next step uploads them. */
static void binding_slots_unknown(gpu_binding *b) {
    memset(b->step.img + b->step.slots_off, 0xa5, b->step.up_len - b->step.slots_off);
}

/* The stages' slots of this step (scalar parameters, axis lengths) to b's image on the
 * device, on s, when they changed. */
static cudrv_result binding_upload(staged_gpu *q, gpu_binding *b, fusor_kernel *k, fusor_args *a,
                                   sched_spec *spec, fusor_array **arrays, char **abase,
                                   sched_staged_cache *c, const ir_value *slots, cudrv_stream s) {
    gpu_step now = b->step;
    now.img = b->now; /* only the slots part is written */
    gpu_step_fill(k, a, spec, arrays, abase, b->gres, c, slots, &q->g, 0, 0, &now);
    size_t tail = b->step.up_len - b->step.slots_off;
    unsigned char *fresh = b->now + b->step.slots_off, *held = b->step.img + b->step.slots_off;
    if (!memcmp(fresh, held, tail))
        return CUDRV_SUCCESS;
    memcpy(held, fresh, tail);
    cudrv_result r = q->g.t->memcpy_htod_async(b->dimg + b->step.slots_off, held, tail, s);
    if (r)
        binding_slots_unknown(b);
    return r;
}

/* One prepared step over device-resident arrays on GPU `device`. */
static fusor_status prepared_gpu_step(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                                      fusor_array **arrays, sched_staged_cache *c,
                                      const ir_value *slots, ir_value *outs, int device,
                                      int *threads) {
    const ir_kernel *ir = spec->ir;
    staged_gpu *q = c->gpu;
    fusor_status st = FUSOR_OK;
    if (q && q->device != device) { /* arrays moved to another GPU: start again */
        staged_gpu_free(q, ir->nnodes);
        q = c->gpu = NULL;
    }
    if (!q) {
        if (!(q = fu_calloc(1, sizeof *q)))
            return fu_oom("a prepared GPU launch");
        q->device = device;
        q->temp = fu_calloc((size_t)ir->nnodes + 1, sizeof *q->temp);
        q->tbytes = fu_calloc((size_t)ir->nnodes + 1, sizeof *q->tbytes);
        st = q->temp && q->tbytes ? FUSOR_OK : fu_oom("a prepared GPU launch");
        /* Its own stream, for set-up and captures: never a fusor stream's. */
        if (!st)
            st = sched_gpu_stages_begin(&q->g, device, 1);
        for (int32_t i = 0; !st && i < ir->nnodes; i++)
            if (ir_is_axis_reduction(&ir->nodes[i]) && spec->staging->home[i] < 0) {
                q->tbytes[i] = temp_bytes(spec, c, i);
                st = mem_dev_alloc(device, q->tbytes[i], q->g.cu, &q->temp[i]);
            }
        if (st) { /* the next step starts again */
            staged_gpu_free(q, ir->nnodes);
            return st;
        }
        c->gpu = q;
    }
    if ((st = sched_device_activate(q->g.d)))
        return st;
    char *abase[HOST_MAX_ARRAYS] = {0};
    array_bases(ir, arrays, abase);
    gpu_binding *b;
    if ((st = binding_get(q, k, a, spec, arrays, abase, c, slots, &b)))
        return st;
    fusor_stream *cur = sched_stream_current();
    cudrv_stream s = q->g.cu;
    if (cur && (st = sched_stream_cu(cur, device, &s)))
        return st;
    const cudrv_table *t = q->g.t;
    cudrv_result r = binding_upload(q, b, k, a, spec, arrays, abase, c, slots, s);
    if (!r && b->exec) {
        r = t->graph_launch(b->exec, s);
        q->replays++;
    } else if (!r) {
        cudrv_stream own = q->g.cu;
        q->g.cu = s;
        st = sched_gpu_issue_launches(&q->g, k->name, b->step.l, 2 * spec->staging->nstages,
                                      b->dimg);
        q->g.cu = own;
    }
    if (!st && r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a prepared GPU step");
    if (st)
        binding_slots_unknown(b);
    if (!st)
        st = run_scalars(spec, arrays, c, slots, outs);
    st = sched_gpu_step_end(t, cur, s, 0, st);
    q->resident = !st;
    *threads = q->g.threads > 0 ? q->g.threads : 1;
    return st;
}

/* ---- a prepared launch with axis reductions as a member of a sequence (gpuprep.c) ---- */

int sched_staged_seq_ready(const sched_staged_cache *c, const sched_spec *spec,
                           fusor_array **arrays, int *device) {
    const ir_kernel *ir = spec->ir;
    if (!c || !c->gpu || !c->gpu->resident || !sched_gpu_graphs_available(c->gpu->g.t) ||
        !cache_fits(c, ir, arrays))
        return 0;
    for (int i = 0; i < ir->nparams + ir->noutputs; i++)
        if (arrays[i] && (!in_gpu_memory(arrays[i]) ||
                          (arrays[i]->memory == FUSOR_MEMORY_DEVICE &&
                           arrays[i]->device != c->gpu->device)))
            return 0;
    *device = c->gpu->device;
    return 1;
}

fusor_status sched_staged_seq_binding(sched_staged_cache *c, fusor_kernel *k, fusor_args *a,
                                      sched_spec *spec, fusor_array **arrays,
                                      const ir_value *slots, uint64_t *gen) {
    char *abase[HOST_MAX_ARRAYS] = {0};
    array_bases(spec->ir, arrays, abase);
    gpu_binding *b;
    fusor_status st = binding_get(c->gpu, k, a, spec, arrays, abase, c, slots, &b);
    if (!st)
        *gen = b->gen;
    return st;
}

fusor_status sched_staged_seq_issue(sched_staged_cache *c, const char *kname, sched_spec *spec,
                                    cudrv_stream s) {
    staged_gpu *q = c->gpu;
    cudrv_stream own = q->g.cu;
    q->g.cu = s;
    fusor_status st = sched_gpu_issue_launches(&q->g, kname, q->cur->step.l,
                                               2 * spec->staging->nstages, q->cur->dimg);
    q->g.cu = own;
    return st;
}

cudrv_result sched_staged_seq_upload(sched_staged_cache *c, fusor_kernel *k, fusor_args *a,
                                     sched_spec *spec, fusor_array **arrays,
                                     const ir_value *slots, cudrv_stream s) {
    char *abase[HOST_MAX_ARRAYS] = {0};
    array_bases(spec->ir, arrays, abase);
    return binding_upload(c->gpu, c->gpu->cur, k, a, spec, arrays, abase, c, slots, s);
}

fusor_status sched_staged_seq_finish(sched_staged_cache *c, sched_spec *spec,
                                     fusor_array **arrays, const ir_value *slots, ir_value *outs,
                                     int failed, int *threads) {
    gpu_binding *b = c->gpu->cur;
    if (failed) {
        binding_slots_unknown(b);
        return FUSOR_OK;
    }
    *threads = c->gpu->g.threads > 0 ? c->gpu->g.threads : 1;
    return run_scalars(spec, arrays, c, slots, outs);
}

void sched_staged_gpu_counts(const sched_staged_cache *c, long *captures, long *replays) {
    *captures = c && c->gpu ? c->gpu->captures : 0;
    *replays = c && c->gpu ? c->gpu->replays : 0;
}

/* Where a launch of a kernel with stages runs, recorded in a->placement: a GPU when the
 * target is the GPU or some array lives in GPU memory (gpurun.c's rules then decide
 * which, or refuse); else the CPU.  *device: the GPU, or -1. */
static fusor_status place(fusor_kernel *k, fusor_args *a, sched_spec *spec, fusor_array **arrays,
                          int may_use_gpu, int *device) {
    const ir_kernel *ir = spec->ir;
    int n = ir->nparams + ir->noutputs, gpu_memory = 0;
    char *base[HOST_MAX_ARRAYS];
    ir_domain dom = {.narrays = n, .base = base, .size = 1};
    for (int i = 0; i < n; i++) {
        base[i] = arrays[i] ? arrays[i]->data : NULL;
        if (!arrays[i])
            continue;
        gpu_memory |= in_gpu_memory(arrays[i]);
        if (fusor_array_size(arrays[i]) > dom.size)
            dom.size = fusor_array_size(arrays[i]);
    }
    *device = -1;
    fusor_target target = sched_gpu_target(k->ctx);
    /* Arrays in GPU memory go through the placement model even for a host-only launch
     * (the reference, unfused): it refuses them with the array's name. */
    if ((may_use_gpu && target == FUSOR_TARGET_GPU) || gpu_memory) {
        sched_place_result r;
        fusor_status st = sched_gpu_decide(k, a, spec, &dom, arrays, may_use_gpu, &r);
        if (st)
            return st;
        *device = r.where == FUSOR_TARGET_GPU ? r.device : -1;
        return FUSOR_OK;
    }
    a->placement.target = FUSOR_TARGET_CPU;
    a->placement.device = -1;
    a->placement.copy_bytes = 0;
    snprintf(a->placement.reason, sizeof a->placement.reason, "%s",
             !may_use_gpu ? SCHED_HOST_ONLY
             : target == FUSOR_TARGET_CPU
                 ? "the CPU target was requested"
                 : "axis reductions over host arrays run on the CPU under AUTO (the GPU "
                   "target, or arrays in GPU memory, run them on a GPU)");
    return FUSOR_OK;
}

fusor_status sched_staged_run(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                              fusor_array **arrays, int *allocated, const ir_value *slots,
                              ir_value *outs, sched_staged_mode mode, int *threads, int *ran_gpu,
                              sched_staged_cache **cache) {
    const ir_kernel *ir = spec->ir;
    *threads = 1;
    *ran_gpu = 0;
    if (mode == SCHED_STAGED_REFERENCE) {
        int none;
        fusor_status st = place(k, a, spec, arrays, 0, &none);
        return st ? st : run_reference(ir, arrays, slots, outs);
    }
    sched_unfused *u = NULL;
    if (mode == SCHED_STAGED_UNFUSED) {
        cg_options o = {.opt_level = k->ctx->opt_level, .math = k->ctx->math};
        fusor_status st = sched_unfused_get(spec, &o, &u);
        if (st)
            return st;
    }
    fusor_status st = sched_gpu_wait_default(k->ctx);
    if (st)
        return st;
    sched_staged_cache one = {0}, *c = cache ? *cache : &one;
    if (!c) {
        if (!(c = fu_calloc(1, sizeof *c)))
            return fu_oom("a prepared launch's temporaries");
        *cache = c;
    }
    /* A prepared launch decides where it runs at its first step and keeps it (as
     * gpuprep.c does): its arrays only trade places. */
    int device = -1;
    if (c->placed) {
        device = c->device;
        a->placement = c->placement;
    } else if (!(st = place(k, a, spec, arrays, !u, &device)) && c != &one) {
        c->placed = 1;
        c->device = device;
        c->placement = a->placement;
    }
    if (!st && device >= 0 && allocated) /* outputs follow inputs that all live there */
        st = sched_gpu_outputs_to_device(ir, NULL, arrays, allocated, device);
    if (!st)
        st = cache_fit(k, spec, arrays, c);
    int resident = 1; /* every array in GPU memory: a prepared launch replays a graph */
    for (int i = 0; i < ir->nparams + ir->noutputs; i++)
        if (arrays[i] && !in_gpu_memory(arrays[i]))
            resident = 0;
    if (!st && c->gpu && !(device >= 0 && resident)) /* a sequence replays only resident steps */
        c->gpu->resident = 0;
    if (!st && device >= 0) {
        st = cache && resident
                 ? prepared_gpu_step(k, a, spec, arrays, c, slots, outs, device, threads)
                 : run_on_gpu(k, a, spec, arrays, c, slots, outs, device, threads);
        *ran_gpu = st == FUSOR_OK;
    } else if (!st) {
        /* Axis reductions with an output of their own write there (bound anew each step:
         * a prepared launch may have swapped its arrays). */
        for (int32_t i = 0; i < ir->nnodes; i++) {
            int home = spec->staging->home[i];
            if (!ir_is_axis_reduction(&ir->nodes[i]) || home < 0)
                continue;
            const fusor_array *O = arrays[ir->nparams + home];
            c->res[i].base = O->data;
            memcpy(c->res[i].strides, O->strides, sizeof O->strides);
        }
        /* On a stream, GPU work queued before must be done before the host runs. */
        fusor_stream *cur = sched_stream_current();
        if (cur)
            st = sched_stream_host_barrier(cur);
        int nthreads = host_get_threads();
        for (int si = 0; st == FUSOR_OK && si < spec->staging->nstages; si++) {
            int used = 1;
            st = run_stage(spec, si, arrays, c, slots, outs, u, nthreads, &used);
            if (used > *threads)
                *threads = used;
        }
    }
    if (c == &one)
        cache_clear(&one, ir->nnodes);
    return st;
}
