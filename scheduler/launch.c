/*
 * launch.c — preparing and running a launch.
 *
 * Preparation does every check before anything is written: all inputs bound with the
 * declared dtypes, shapes broadcast (NumPy's rules, right-aligned), bound outputs of the
 * broadcast shape, no output overlapping an input except element for element (in-place),
 * min/max not reducing an empty domain.  Only then are missing outputs allocated and a
 * back end run.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "cuda.h"
#include "devpool.h"
#include "error.h"
#include "gpuprep.h"
#include "gpurun.h"
#include "interp.h"
#include "pool.h"
#include "run.h"
#include "scalar.h"
#include "scheduler.h"
#include "staged.h"
#include "stream.h"
#include "unfused.h"

typedef struct prepared {
    sched_spec *spec;
    ir_domain dom;
    char *base[HOST_MAX_ARRAYS];
    int64_t strides[HOST_MAX_ARRAYS][FUSOR_MAX_DIMS];
    fusor_array *arrays[HOST_MAX_ARRAYS]; /* the array behind each index, or NULL */
    int allocated[HOST_MAX_ARRAYS]; /* outputs allocated by this launch */
    ir_value outs[HOST_MAX_ARRAYS];
    /* Not cleared: prepare() writes the slots a launch reads. */
    ir_value slots[HOST_MAX_ARRAYS + 1 + 1024];
} prepared;

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (len < n) snprintf(buf + len, n - len, ndim == 1 ? ",)" : ")");
}

/* Builds the generic bindings from the argument set. */
static fusor_status bind_generic(fusor_kernel *k, fusor_args *a, fe_binding *b) {
    for (int i = 0; i < k->ninputs; i++) {
        const sched_arg *it = &a->items[i];
        switch (it->kind) {
        case ARG_NONE:
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "missing argument '%s' of kernel %s",
                            k->params[i].name, k->name);
        case ARG_ARRAY:
            b[i].dtype = it->array->dtype;
            b[i].is_array = it->array->ndim > 0 || k->params[i].is_array == 1;
            break;
        case ARG_SCALAR:
            b[i].dtype = it->dtype;
            break;
        case ARG_LITERAL:
            b[i].literal = it->literal;
            break;
        }
    }
    return FUSOR_OK;
}

static fusor_status check_inputs(fusor_kernel *k, fusor_args *a, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    for (int i = 0; i < ir->nparams; i++) {
        const ir_param *p = &ir->params[i];
        const sched_arg *it = &a->items[i];
        if (it->kind == ARG_NONE)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "missing argument '%s' of kernel %s",
                            p->name, k->name);
        if (it->kind == ARG_LITERAL) continue; /* folded into the code */
        if (p->is_array) {
            if (it->kind != ARG_ARRAY)
                return fu_error(FUSOR_ERROR_SHAPE, "argument '%s' of kernel %s must be an array "
                                "(%s[]), got a scalar",
                                p->name, k->name, fusor_dtype_name(p->dtype));
            if (it->array->dtype != p->dtype)
                return fu_error(FUSOR_ERROR_DTYPE,
                                "argument '%s' of kernel %s has dtype %s; the kernel expects %s[]",
                                p->name, k->name, fusor_dtype_name(it->array->dtype),
                                fusor_dtype_name(p->dtype));
            P->arrays[i] = it->array;
        } else if (it->kind == ARG_ARRAY) {
            if (it->array->ndim != 0) {
                char s[128];
                shape_text(s, sizeof s, it->array->ndim, it->array->shape);
                return fu_error(FUSOR_ERROR_SHAPE, "argument '%s' of kernel %s is a scalar (%s); "
                                "got an array of shape %s",
                                p->name, k->name, fusor_dtype_name(p->dtype), s);
            }
            P->slots[i] = sc_cast(sc_load(it->array->data, it->array->dtype), it->array->dtype,
                                  p->dtype);
        } else {
            P->slots[i] = sc_cast(it->value, it->dtype, p->dtype);
        }
    }
    for (int j = 0; j < ir->noutputs; j++) {
        const ir_output *o = &ir->outputs[j];
        const sched_arg *it = &a->items[k->ninputs + j];
        if (it->kind == ARG_NONE) continue;
        if (!o->is_array || it->kind != ARG_ARRAY)
            return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                            "output '%s' of kernel %s is a scalar and cannot be bound", o->name,
                            k->name);
        if (it->array->dtype != o->dtype)
            return fu_error(FUSOR_ERROR_DTYPE,
                            "output '%s' of kernel %s has dtype %s; the kernel writes %s[]",
                            o->name, k->name, fusor_dtype_name(it->array->dtype),
                            fusor_dtype_name(o->dtype));
        P->arrays[ir->nparams + j] = it->array;
    }
    return FUSOR_OK;
}

static const char *index_name(const ir_kernel *ir, int i) {
    return i < ir->nparams ? ir->params[i].name : ir->outputs[i - ir->nparams].name;
}

/* NumPy broadcasting of every bound array; outputs must already have the result shape. */
static fusor_status broadcast(fusor_kernel *k, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    int n = ir->nparams + ir->noutputs;
    ir_domain *d = &P->dom;
    int who[FUSOR_MAX_DIMS]; /* which array set each dimension's extent */
    /* Each array as the kernel sees it (gufunc loop dimensions lined up: staged.h). */
    int vnd[HOST_MAX_ARRAYS];
    int64_t vsh[HOST_MAX_ARRAYS][FUSOR_MAX_DIMS], vst[FUSOR_MAX_DIMS];
    d->ndim = 0;
    for (int i = 0; i < n; i++) {
        vnd[i] = P->arrays[i] ? sched_param_view(ir, i, P->arrays[i], vsh[i], vst) : 0;
        if (vnd[i] > d->ndim) d->ndim = vnd[i];
    }
    for (int x = 0; x < d->ndim; x++) {
        d->shape[x] = 1;
        who[x] = -1;
    }
    for (int i = 0; i < n; i++) {
        const fusor_array *A = P->arrays[i];
        if (!A) continue;
        for (int x = 0; x < vnd[i]; x++) {
            int dd = d->ndim - vnd[i] + x;
            int64_t e = vsh[i][x];
            if (e == d->shape[dd] || e == 1) continue;
            if (d->shape[dd] == 1) {
                d->shape[dd] = e;
                who[dd] = i;
                continue;
            }
            char s1[160], s2[160];
            const fusor_array *B = P->arrays[who[dd]];
            shape_text(s1, sizeof s1, B->ndim, B->shape);
            shape_text(s2, sizeof s2, A->ndim, A->shape);
            if (i >= ir->nparams) /* inputs come first: this output disagrees with them */
                return fu_error(FUSOR_ERROR_SHAPE,
                                "output '%s' of kernel %s has shape %s, which does not match "
                                "'%s' %s (dimension %d: %lld vs %lld)",
                                index_name(ir, i), k->name, s2, index_name(ir, who[dd]), s1,
                                dd - d->ndim, (long long)e, (long long)d->shape[dd]);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "arguments '%s' %s and '%s' %s of kernel %s do not broadcast "
                            "(dimension %d: %lld vs %lld)",
                            index_name(ir, who[dd]), s1, index_name(ir, i), s2, k->name,
                            dd - d->ndim, (long long)d->shape[dd], (long long)e);
        }
    }
    d->size = 1;
    for (int x = 0; x < d->ndim; x++) d->size *= d->shape[x];
    for (int j = 0; j < ir->noutputs; j++) {
        const fusor_array *A = P->arrays[ir->nparams + j];
        if (!A) continue;
        int same = A->ndim == d->ndim;
        for (int x = 0; same && x < d->ndim; x++) same = A->shape[x] == d->shape[x];
        if (!same) {
            char s1[160], s2[160];
            shape_text(s1, sizeof s1, A->ndim, A->shape);
            shape_text(s2, sizeof s2, d->ndim, d->shape);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "output '%s' of kernel %s has shape %s; the arguments broadcast to %s",
                            ir->outputs[j].name, k->name, s1, s2);
        }
    }
    return FUSOR_OK;
}

/* Strides of array i over the domain: 0 along broadcast and missing dimensions. */
static void domain_strides(const prepared *P, int i, int64_t *out) {
    const ir_domain *d = &P->dom;
    int64_t shape[FUSOR_MAX_DIMS], strides[FUSOR_MAX_DIMS];
    int nd = sched_param_view(P->spec->ir, i, P->arrays[i], shape, strides);
    for (int x = 0; x < d->ndim; x++) {
        int ax = x - (d->ndim - nd);
        out[x] = ax < 0 || shape[ax] == 1 ? 0 : strides[ax];
    }
}

static int overlaps(const fusor_array *A, const fusor_array *B) {
    const char *alo, *ahi, *blo, *bhi;
    mem_array_extent(A, &alo, &ahi);
    mem_array_extent(B, &blo, &bhi);
    return alo < bhi && blo < ahi;
}

/* Whether two elements of A share bytes, as with a zero stride along an extent > 1.  The
 * test is sufficient, not exact: sorted by |stride|, each dimension must step past all that
 * the smaller ones span (C, Fortran, reversed and sliced layouts do); an interleaving that
 * happens not to collide is refused too.  Such an output was written by several threads at
 * once, with a result that depended on the thread count. */
static int self_overlaps(const fusor_array *A) {
    int64_t str[FUSOR_MAX_DIMS], ext[FUSOR_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < A->ndim; d++) {
        if (A->shape[d] == 0) return 0;
        if (A->shape[d] == 1) continue;
        int64_t s = A->strides[d] < 0 ? -A->strides[d] : A->strides[d], e = A->shape[d];
        int x = n++;
        for (; x > 0 && str[x - 1] > s; x--) str[x] = str[x - 1], ext[x] = ext[x - 1];
        str[x] = s, ext[x] = e;
    }
    int64_t span = (int64_t)fusor_dtype_size(A->dtype); /* fits: checked by fusor_array_wrap */
    for (int x = 0; x < n; x++) {
        if (str[x] < span) return 1;
        span += str[x] * (ext[x] - 1);
    }
    return 0;
}

static fusor_status check_aliasing(fusor_kernel *k, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    int n = ir->nparams + ir->noutputs;
    for (int j = ir->nparams; j < n; j++) {
        const fusor_array *O = P->arrays[j];
        if (!O) continue;
        if (self_overlaps(O))
            return fu_error(FUSOR_ERROR_ALIAS,
                            "output '%s' of kernel %s has elements that overlap each other (a "
                            "zero or too small stride): each element of an output needs its own "
                            "memory",
                            index_name(ir, j), k->name);
        for (int i = 0; i < n; i++) {
            const fusor_array *I = P->arrays[i];
            if (i == j || !I || !overlaps(O, I)) continue;
            int exact = i < ir->nparams && I->data == O->data &&
                        fusor_dtype_size(I->dtype) == fusor_dtype_size(O->dtype) &&
                        !memcmp(P->strides[i], P->strides[j], sizeof(int64_t) * (size_t)P->dom.ndim);
            if (!exact)
                return fu_error(FUSOR_ERROR_ALIAS,
                                "output '%s' of kernel %s overlaps %s '%s' without being the same "
                                "elements (different offset, strides or broadcast); pass the same "
                                "array for an in-place update, or a separate output",
                                index_name(ir, j), k->name, i < ir->nparams ? "input" : "output",
                                index_name(ir, i));
        }
    }
    return FUSOR_OK;
}

/* Stencil parameters (declared dimensions and a boundary) are bound to arrays of their
 * declared rank that span the whole domain, and no output shares their memory: a stencil
 * reads neighbours that an in-place update would already have overwritten. */
static fusor_status check_stencils(fusor_kernel *k, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    for (int i = 0; i < ir->nparams; i++) {
        int nd = ir_param_ndims(ir, i);
        const fusor_array *A = P->arrays[i];
        if (!nd || !A || ir_param_boundary(ir, i) == IR_BOUND_NONE) continue;
        char s1[160], s2[160];
        shape_text(s1, sizeof s1, A->ndim, A->shape);
        if (A->ndim != nd)
            return fu_error(FUSOR_ERROR_SHAPE,
                            "rank mismatch: stencil parameter '%s' of kernel %s declares %d "
                            "dimension%s but is bound to an array of shape %s",
                            ir->params[i].name, k->name, nd, nd == 1 ? "" : "s", s1);
        int same = P->dom.ndim == nd;
        for (int x = 0; same && x < nd; x++) same = A->shape[x] == P->dom.shape[x];
        if (!same) {
            shape_text(s2, sizeof s2, P->dom.ndim, P->dom.shape);
            return fu_error(FUSOR_ERROR_SHAPE,
                            "stencil parameter '%s' of kernel %s has shape %s but the domain is "
                            "%s: a stencil parameter is not broadcast",
                            ir->params[i].name, k->name, s1, s2);
        }
        for (int j = 0; j < ir->noutputs; j++) {
            const fusor_array *O = P->arrays[ir->nparams + j];
            if (O && overlaps(O, A))
                return fu_error(FUSOR_ERROR_ALIAS,
                                "output '%s' of kernel %s shares memory with stencil parameter "
                                "'%s', whose neighbours it would overwrite: write into another "
                                "array (swap the two between steps)",
                                ir->outputs[j].name, k->name, ir->params[i].name);
        }
    }
    return FUSOR_OK;
}

/* The size of the box the kernel runs over: the interior sub-box with INTERIOR
 * parameters (ir.h), else the domain. */
static int64_t run_size(const ir_kernel *ir, const ir_domain *d) {
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    if (!ir_interior_halo(ir, lo, hi)) return d->size;
    int64_t size = 1;
    for (int x = 0; x < d->ndim; x++) {
        int64_t e = d->shape[x] - lo[x] - hi[x];
        size *= e > 0 ? e : 0;
    }
    return size;
}

static fusor_status check_empty_reductions(fusor_kernel *k, prepared *P) {
    if (run_size(P->spec->ir, &P->dom) != 0) return FUSOR_OK;
    const ir_plan *plan = P->spec->plan;
    for (int p = 0; p < plan->npasses; p++)
        for (int r = 0; r < plan->passes[p].nreductions; r++) {
            const ir_node *nd = &P->spec->ir->nodes[plan->passes[p].reductions[r]];
            if (nd->op == IR_MIN || nd->op == IR_MAX) {
                char s[160];
                shape_text(s, sizeof s, P->dom.ndim, P->dom.shape);
                return fu_error(FUSOR_ERROR_VALUE,
                                "kernel %s: %s() of an empty domain %s: the reduction has no "
                                "identity",
                                k->name, nd->op == IR_MIN ? "min" : "max", s);
            }
        }
    return FUSOR_OK;
}

/* Declared (gufunc) dimensions: every output has the domain's shape here. */
static fusor_status check_dims(fusor_kernel *k, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    if (!ir->dims && !ir->out_dims) return FUSOR_OK;
    ir_nshape dom = {.ndim = P->dom.ndim};
    memcpy(dom.shape, P->dom.shape, sizeof dom.shape);
    ir_nshape outs[HOST_MAX_ARRAYS];
    for (int j = 0; j < ir->noutputs; j++) outs[j] = dom;
    return sched_check_dims(k, ir, P->arrays, outs);
}

static void release_prepared(prepared *P, int failed) {
    const ir_kernel *ir = P->spec ? P->spec->ir : NULL;
    for (int j = 0; ir && j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (P->allocated[i] && failed) fusor_array_destroy(P->arrays[i]);
    }
}

static fusor_status prepare(fusor_kernel *k, fusor_args *a, prepared *P) {
    if (k->ninputs + k->noutputs > HOST_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "kernel %s has more than %d parameters", k->name,
                        HOST_MAX_ARRAYS);
    /* Only the entries of this kernel's parameters are cleared: the tables are sized for
     * the largest kernel, and clearing all of them would cost more than a small launch. */
    size_t used = (size_t)(k->ninputs + k->noutputs);
    P->spec = NULL;
    memset(&P->dom, 0, sizeof P->dom);
    memset(P->arrays, 0, sizeof P->arrays[0] * used);
    memset(P->allocated, 0, sizeof P->allocated[0] * used);
    memset(P->outs, 0, sizeof P->outs[0] * used);
    memset(P->strides, 0, sizeof P->strides[0] * used);
    fusor_status st;
    if (k->generic) {
        fe_binding b[HOST_MAX_ARRAYS];
        memset(b, 0, sizeof(fe_binding) * (size_t)k->ninputs);
        st = bind_generic(k, a, b);
        if (st == FUSOR_OK) st = sched_specialize(k, b, &P->spec);
    } else {
        P->spec = k->spec;
        st = FUSOR_OK;
    }
    if (st != FUSOR_OK) return st;
    const ir_kernel *ir = P->spec->ir;
    if (P->spec->plan->nslots > (int)(sizeof P->slots / sizeof P->slots[0]))
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "kernel %s has too many reductions", k->name);
    if ((st = check_inputs(k, a, P)) != FUSOR_OK) return st;
    if (P->spec->staging) { /* axis reductions: shapes per output (staged.c) */
        if ((st = sched_staged_prepare(k, P->spec, P->arrays, P->allocated)) != FUSOR_OK)
            release_prepared(P, 1);
        return st;
    }
    if ((st = broadcast(k, P)) != FUSOR_OK) return st;
    if ((st = check_dims(k, P)) != FUSOR_OK) return st;
    int n = ir->nparams + ir->noutputs;
    for (int i = 0; i < n; i++)
        if (P->arrays[i]) domain_strides(P, i, P->strides[i]);
    if ((st = check_aliasing(k, P)) != FUSOR_OK) return st;
    if ((st = check_stencils(k, P)) != FUSOR_OK) return st;
    if ((st = check_empty_reductions(k, P)) != FUSOR_OK) return st;

    for (int j = 0; j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (!ir->outputs[j].is_array || P->arrays[i]) continue;
        st = mem_array_new(ir->outputs[j].dtype, P->dom.ndim, P->dom.shape, &P->arrays[i]);
        if (st != FUSOR_OK) {
            release_prepared(P, 1);
            return st;
        }
        P->allocated[i] = 1;
        domain_strides(P, i, P->strides[i]);
    }
    P->dom.narrays = n;
    P->dom.base = P->base;
    P->dom.strides = P->strides;
    for (int i = 0; i < n; i++) P->base[i] = P->arrays[i] ? P->arrays[i]->data : NULL;
    P->slots[P->spec->plan->count_slot].i = run_size(ir, &P->dom);
    return FUSOR_OK;
}

/* Records outputs in the argument set after a successful run. */
static void publish(fusor_args *a, prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    sched_args_clear_results(a);
    for (int j = 0; j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (!ir->outputs[j].is_array) continue;
        if (!P->allocated[i]) fusor_array_retain(P->arrays[i]);
        a->results[a->k->ninputs + j] = P->arrays[i];
    }
    sched_args_put_scalars(a, ir, P->outs);
    a->have_results = 1;
}

enum { RUN_FUSED, RUN_REFERENCE, RUN_UNFUSED };

/* fusor_launch_unfused writes each operation's result before the next reads its inputs,
 * so an output that is also an input would be overwritten too early. */
static fusor_status unfused_in_place(const fusor_kernel *k, const prepared *P) {
    const ir_kernel *ir = P->spec->ir;
    for (int j = ir->nparams; j < ir->nparams + ir->noutputs; j++)
        for (int i = 0; i < ir->nparams; i++)
            if (P->arrays[j] && P->arrays[i] && P->arrays[j]->data == P->arrays[i]->data)
                return fu_error(FUSOR_ERROR_UNSUPPORTED,
                                "kernel %s: an unfused launch cannot update '%s' in place",
                                k->name, ir->params[i].name);
    return FUSOR_OK;
}

static fusor_status run_unfused(fusor_kernel *k, prepared *P, int *threads) {
    const ir_kernel *ir = P->spec->ir;
    sched_unfused *u;
    cg_options o = {.opt_level = k->ctx->opt_level, .math = k->ctx->math};
    fusor_status st = sched_unfused_get(P->spec, &o, &u);
    if (st) return st;
    return sched_unfused_run(u, ir, &P->dom, P->slots, P->outs, host_get_threads(), threads);
}

static fusor_status launch(fusor_kernel *k, fusor_args *a, int reference) {
    if (!k || !a) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_launch: NULL %s",
                                  k ? "arguments" : "kernel");
    if (a->k != k)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_launch: the argument set was made for kernel %s, not %s",
                        a->k->name, k->name);
    if (k->ctx->target == FUSOR_TARGET_GPU && !sched_cuda_usable()) return sched_gpu_no_device(k);
    /* The preparation space (~33 KB) is kept in the argument set: a launch allocates
     * nothing of its own. */
    if (!a->scratch && !(a->scratch = fu_malloc(sizeof(prepared)))) return fu_oom("a launch");
    prepared *P = a->scratch;
    fusor_status st = prepare(k, a, P);
    if (st == FUSOR_OK) {
        int threads = 1, gpu = 0;
        /* Placement (gpurun.c): records where and why, and runs the launch on a GPU when
         * that is the choice; with no usable GPU the host path below runs as before. */
        if (reference == RUN_UNFUSED) st = unfused_in_place(k, P);
        if (st != FUSOR_OK) {
            /* refused */
        } else if (P->spec->staging) {
            sched_staged_mode mode = reference == RUN_REFERENCE ? SCHED_STAGED_REFERENCE
                                     : reference == RUN_UNFUSED ? SCHED_STAGED_UNFUSED
                                                                : SCHED_STAGED_FUSED;
            st = sched_staged_run(k, a, P->spec, P->arrays, P->allocated, P->slots, P->outs, mode,
                                  &threads, &gpu, NULL);
        } else
            st = sched_gpu_launch(k, a, P->spec, &P->dom, P->arrays, P->allocated, P->slots,
                                  P->outs, reference == RUN_FUSED, &gpu, &threads);
        if (st != FUSOR_OK || gpu || P->spec->staging) {
            /* failed, or ran on the GPU */
        } else if (reference == RUN_REFERENCE)
            st = interp_run(P->spec->ir, &P->dom, P->slots, P->outs);
        else if (reference == RUN_UNFUSED)
            st = run_unfused(k, P, &threads);
        else
            st = host_run(P->spec->ir, P->spec->plan, P->spec->code, &P->dom, P->slots, P->outs,
                          host_get_threads(), &threads, NULL);
        if (st == FUSOR_OK) {
            publish(a, P);
            a->last_target = reference == RUN_REFERENCE ? "reference" : gpu ? "gpu" : "cpu";
            a->last_threads = threads;
        }
        release_prepared(P, st != FUSOR_OK);
    }
    return st;
}

fusor_status fusor_launch(fusor_kernel *k, fusor_args *a) { return launch(k, a, RUN_FUSED); }

fusor_status fusor_launch_unfused(fusor_kernel *k, fusor_args *a) {
    return launch(k, a, RUN_UNFUSED);
}

fusor_status sched_launch_reference(fusor_kernel *k, fusor_args *a) {
    return launch(k, a, RUN_REFERENCE);
}

/* ---------------------------------------------------------------- prepared launches
 *
 * fusor_prepare runs prepare() once and keeps its result.  A launch then only points the
 * domain at the current binding, writes the scalar parameters and runs: no allocation, no
 * specialisation lookup, no checks.  Swaps and scalar updates change `cur` on the caller's
 * thread; a launch queued on a stream carries its own copy of the binding (a snapshot,
 * recycled), so later swaps never reach work already queued. */

/* Copies of bindings for queued work, shared by prepared launches and sequences: recycled
 * (a steady loop of queued launches allocates nothing) and counted, so that destruction
 * waits for the work that still holds one. */
typedef struct snapshot {
    struct snapshot *next;
    struct snapshots *pool;
    void *owner;          /* the prepared launch or sequence */
    fusor_array **arrays; /* the binding's arrays */
    ir_value *params;     /* and its scalar parameters */
} snapshot;

typedef struct snapshots {
    pthread_mutex_t lock; /* guards spare */
    pthread_cond_t idle;  /* signalled when pending drops to 0 */
    int pending;          /* copies held by queued work (atomic) */
    snapshot *spare;
} snapshots;

static void snapshots_init(snapshots *s) {
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
}

static int snapshots_busy(snapshots *s) { return __atomic_load_n(&s->pending, __ATOMIC_ACQUIRE); }

/* Frees the spare copies (they may be of another size from now on). */
static void snapshots_clear(snapshots *s) {
    while (s->spare) {
        snapshot *it = s->spare;
        s->spare = it->next;
        fu_free(it);
    }
}

/* Waits for the queued work, then frees everything. */
static void snapshots_fini(snapshots *s) {
    pthread_mutex_lock(&s->lock);
    while (snapshots_busy(s)) pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    snapshots_clear(s);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->idle);
}

/* A copy to fill: a spare one, or a new one of narrays arrays and nparams scalars. */
static snapshot *snapshot_get(snapshots *s, void *owner, size_t narrays, size_t nparams) {
    pthread_mutex_lock(&s->lock);
    snapshot *it = s->spare;
    if (it) s->spare = it->next;
    pthread_mutex_unlock(&s->lock);
    if (!it) {
        it = fu_malloc(sizeof *it + nparams * sizeof(ir_value) + narrays * sizeof(fusor_array *));
        if (!it) return NULL;
        it->pool = s;
        it->owner = owner;
        it->params = (ir_value *)(it + 1);
        it->arrays = (fusor_array **)(it->params + nparams);
    }
    return it;
}

/* After queued work ran (or was dropped): the copy back, one fewer pending. */
static void snapshot_drop(void *arg) {
    snapshot *it = arg;
    snapshots *s = it->pool;
    pthread_mutex_lock(&s->lock);
    it->next = s->spare;
    s->spare = it;
    if (!__atomic_sub_fetch(&s->pending, 1, __ATOMIC_ACQ_REL)) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
}

static fusor_status snapshot_enqueue(snapshot *it, fusor_stream *st,
                                     fusor_status (*run)(fusor_stream *, void *)) {
    __atomic_add_fetch(&it->pool->pending, 1, __ATOMIC_ACQ_REL);
    return sched_stream_enqueue(st, run, snapshot_drop, it);
}

struct fusor_prepared {
    fusor_kernel *k;
    fusor_args *a;
    prepared *P;
    int n, nparams;
    fusor_array **own;      /* [n] references to every array used; swaps only permute cur */
    fusor_array **cur;      /* [n] the binding of the next launch */
    ir_value *params;       /* [nparams] scalar parameters, cast to their dtypes */
    fusor_array **scalar0d; /* [nparams] a 0-d array bound to a scalar parameter: read per run */
    fusor_dtype *bound;     /* [nparams] dtype of each scalar as bound (generic kernels) */
    int *literal;           /* [nparams] bound as a literal: folded into the code */
    void *block;            /* the memory behind the per-parameter tables */
    host_scratch scratch;   /* reduction partials, sized once */
    sched_staged_cache *staged; /* axis reductions: shapes, temporaries (staged.c) */
    sched_gpu_prep *gpu;    /* the GPU side, made at the first launch (gpuprep.c) */
    snapshots queued;       /* bindings of launches queued on streams */
};

static fusor_status prepared_param(fusor_prepared *p, const char *fn, const char *name, int *out) {
    if (!p || !name)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: NULL %s", fn, p ? "name" : "launch");
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->k->params[i].name, name)) {
            *out = i;
            return FUSOR_OK;
        }
    return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: kernel %s has no parameter '%s'", fn,
                    p->k->name, name);
}

/* Unbound outputs follow inputs that all live on one GPU there, as a launch would move
 * them at its first run; doing it now keeps every later step free of allocation. */
static fusor_status prepared_outputs_place(prepared *P) {
    int device = -1;
    for (int i = 0; i < P->spec->ir->nparams; i++)
        if (P->arrays[i] && P->arrays[i]->memory == FUSOR_MEMORY_DEVICE)
            device = P->arrays[i]->device;
    if (device < 0) return FUSOR_OK;
    /* A kernel with axis reductions has no single domain (staged.c binds each stage). */
    return sched_gpu_outputs_to_device(P->spec->ir, P->spec->staging ? NULL : &P->dom, P->arrays,
                                       P->allocated, device);
}

void fusor_prepared_destroy(fusor_prepared *p) {
    if (!p) return;
    snapshots_fini(&p->queued);
    for (int i = 0; p->own && i < p->n; i++) fusor_array_destroy(p->own[i]);
    for (int i = 0; p->scalar0d && i < p->nparams; i++) fusor_array_destroy(p->scalar0d[i]);
    sched_gpu_prep_free(p->gpu);
    if (p->P) sched_staged_cache_free(p->staged, p->P->spec);
    fu_free(p->P);
    fu_free(p->block);
    fu_free(p->scratch.p);
    fu_free(p);
}

fusor_status fusor_prepare(fusor_kernel *k, fusor_args *a, fusor_prepared **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_prepare: NULL result");
    *out = NULL;
    if (!k || !a)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_prepare: NULL %s",
                        k ? "arguments" : "kernel");
    if (a->k != k)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepare: the argument set was made for kernel %s, not %s",
                        a->k->name, k->name);
    if (k->ctx->target == FUSOR_TARGET_GPU && !sched_cuda_usable()) return sched_gpu_no_device(k);
    fusor_prepared *p = fu_calloc(1, sizeof *p);
    if (!p) return fu_oom("a prepared launch");
    snapshots_init(&p->queued);
    p->k = k;
    p->a = a;
    p->n = k->ninputs + k->noutputs;
    p->nparams = k->ninputs;
    size_t n = (size_t)p->n, np = (size_t)p->nparams;
    /* One block for the per-parameter tables, widest members first. */
    size_t bytes = np * sizeof(ir_value) + (2 * n + np) * sizeof(fusor_array *) +
                   np * sizeof(fusor_dtype) + np * sizeof(int);
    p->block = fu_calloc(1, bytes ? bytes : 1);
    p->P = fu_malloc(sizeof(prepared));
    if (!p->block || !p->P) {
        fusor_prepared_destroy(p);
        return fu_oom("a prepared launch");
    }
    p->params = p->block;
    p->own = (fusor_array **)(p->params + np);
    p->cur = p->own + n;
    p->scalar0d = p->cur + n;
    p->bound = (fusor_dtype *)(p->scalar0d + np);
    p->literal = (int *)(p->bound + np);
    prepared *P = p->P;
    fusor_status st = prepare(k, a, P);
    if (st == FUSOR_OK && ((st = prepared_outputs_place(P)) != FUSOR_OK ||
                           (st = host_scratch_reserve(&p->scratch, P->spec->plan, &P->dom))))
        release_prepared(P, 1);
    if (st) {
        fusor_prepared_destroy(p); /* own is still all NULL */
        return st;
    }
    const ir_kernel *ir = P->spec->ir;
    for (int i = 0; i < p->n; i++) {
        fusor_array *A = P->arrays[i];
        if (A && !P->allocated[i]) fusor_array_retain(A);
        p->own[i] = p->cur[i] = A;
    }
    for (int i = 0; i < p->nparams; i++) {
        const sched_arg *it = &a->items[i];
        p->bound[i] = it->kind == ARG_SCALAR ? it->dtype : ir->params[i].dtype;
        p->literal[i] = it->kind == ARG_LITERAL;
        if (ir->params[i].is_array || it->kind == ARG_LITERAL) continue;
        p->params[i] = P->slots[i];
        if (it->kind == ARG_ARRAY && it->array->memory != FUSOR_MEMORY_DEVICE) {
            fusor_array_retain(it->array);
            p->scalar0d[i] = it->array;
        }
    }
    *out = p;
    return FUSOR_OK;
}

/* Points p's domain at a binding (p->cur, or a queued copy) and writes its scalars. */
static void prepared_bind(fusor_prepared *p, fusor_array **arrays, const ir_value *params) {
    prepared *P = p->P;
    const ir_kernel *ir = P->spec->ir;
    for (int i = 0; i < p->n; i++) {
        P->arrays[i] = arrays[i];
        P->base[i] = arrays[i] ? arrays[i]->data : NULL;
    }
    for (int i = 0; i < p->nparams; i++) {
        if (ir->params[i].is_array || p->literal[i]) continue;
        const fusor_array *A = p->scalar0d[i];
        P->slots[i] = A ? sc_cast(sc_load(A->data, A->dtype), A->dtype, ir->params[i].dtype)
                        : params[i];
    }
}

/* Records a finished launch's outputs in p's argument set. */
static void prepared_publish(fusor_prepared *p, int gpu, int threads) {
    prepared *P = p->P;
    const ir_kernel *ir = P->spec->ir;
    fusor_args *a = p->a;
    sched_args_clear_results(a);
    for (int j = 0; j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (!ir->outputs[j].is_array) continue;
        fusor_array_retain(P->arrays[i]);
        a->results[p->k->ninputs + j] = P->arrays[i];
    }
    sched_args_put_scalars(a, ir, P->outs);
    a->have_results = 1;
    a->last_target = gpu ? "gpu" : "cpu";
    a->last_threads = threads;
}

/* Runs p's bound launch where its placement says, and publishes it. */
static fusor_status prepared_exec(fusor_prepared *p) {
    prepared *P = p->P;
    int threads = 1, gpu = 0;
    fusor_status st;
    if (P->spec->staging) /* axis reductions: their stages (staged.c) */
        st = sched_staged_run(p->k, p->a, P->spec, P->arrays, NULL, P->slots, P->outs,
                              SCHED_STAGED_FUSED, &threads, &gpu, &p->staged);
    else
        st = sched_gpu_prep_run(&p->gpu, p->k, p->a, P->spec, &P->dom, P->arrays, P->slots,
                                P->outs, &gpu, &threads);
    if (st == FUSOR_OK && !gpu && !P->spec->staging)
        st = host_run(P->spec->ir, P->spec->plan, P->spec->code, &P->dom, P->slots, P->outs,
                      host_get_threads(), &threads, &p->scratch);
    if (st) return st;
    prepared_publish(p, gpu, threads);
    return FUSOR_OK;
}

/* Runs one launch of p with a binding (p->cur, or a queued copy). */
static fusor_status prepared_run(fusor_prepared *p, fusor_array **arrays, const ir_value *params) {
    prepared_bind(p, arrays, params);
    return prepared_exec(p);
}

fusor_status fusor_prepared_launch(fusor_prepared *p) {
    if (!p) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_prepared_launch: NULL");
    if (snapshots_busy(&p->queued))
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_launch: kernel %s has prepared launches queued on a "
                        "stream; synchronise it first (one launch of a prepared set runs at a "
                        "time)",
                        p->k->name);
    return prepared_run(p, p->cur, p->params);
}

static fusor_status prepared_item_run(fusor_stream *s, void *arg) {
    (void)s;
    snapshot *it = arg;
    return prepared_run(it->owner, it->arrays, it->params);
}

fusor_status fusor_prepared_launch_async(fusor_prepared *p, fusor_stream *s) {
    if (!p) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_prepared_launch_async: NULL");
    fusor_status st;
    if (!s && (st = sched_context_stream(p->k->ctx, 1, &s))) return st;
    snapshot *it = snapshot_get(&p->queued, p, (size_t)p->n, (size_t)p->nparams);
    if (!it) return fu_oom("a queued launch");
    memcpy(it->arrays, p->cur, sizeof(fusor_array *) * (size_t)p->n);
    memcpy(it->params, p->params, sizeof(ir_value) * (size_t)p->nparams);
    return snapshot_enqueue(it, s, prepared_item_run);
}

fusor_status fusor_prepared_swap(fusor_prepared *p, const char *x, const char *y) {
    int i, j;
    fusor_status st;
    if ((st = prepared_param(p, "fusor_prepared_swap", x, &i)) ||
        (st = prepared_param(p, "fusor_prepared_swap", y, &j)))
        return st;
    fusor_array *A = p->cur[i], *B = p->cur[j];
    if (!A || !B || !p->k->params[i].is_array || !p->k->params[j].is_array)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_swap: '%s' and '%s' of kernel %s must both be arrays",
                        x, y, p->k->name);
    int same = A->dtype == B->dtype && A->ndim == B->ndim && A->memory == B->memory &&
               A->device == B->device;
    for (int d = 0; same && d < A->ndim; d++)
        same = A->shape[d] == B->shape[d] && A->strides[d] == B->strides[d];
    if (!same)
        return fu_error(FUSOR_ERROR_SHAPE,
                        "fusor_prepared_swap: '%s' and '%s' of kernel %s differ in dtype, shape, "
                        "strides or memory; only identical arrays can trade places",
                        x, y, p->k->name);
    p->cur[i] = B;
    p->cur[j] = A;
    return FUSOR_OK;
}

fusor_status fusor_prepared_set_scalar(fusor_prepared *p, const char *name, fusor_dtype dtype,
                                       const void *value) {
    int i;
    fusor_status st = prepared_param(p, "fusor_prepared_set_scalar", name, &i);
    if (st) return st;
    if (!value || (unsigned)dtype >= FUSOR_NUM_DTYPES)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_set_scalar: '%s': NULL value or unknown dtype", name);
    const ir_param *ip = i < p->nparams ? &p->P->spec->ir->params[i] : NULL;
    if (!ip || ip->is_array || p->scalar0d[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_set_scalar: '%s' of kernel %s is not a scalar parameter "
                        "bound to a value",
                        name, p->k->name);
    if (p->literal[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_set_scalar: '%s' of kernel %s was bound as a literal, "
                        "which is compiled into the code; bind a typed scalar to change it "
                        "between launches",
                        name, p->k->name);
    if (p->k->generic && dtype != p->bound[i])
        return fu_error(FUSOR_ERROR_DTYPE,
                        "fusor_prepared_set_scalar: '%s' of kernel %s was prepared as %s, not "
                        "%s: the dtype chose the compiled code; prepare again to change it",
                        name, p->k->name, fusor_dtype_name(p->bound[i]), fusor_dtype_name(dtype));
    p->params[i] = sc_cast(sc_load(value, dtype), dtype, ip->dtype);
    return FUSOR_OK;
}

fusor_status fusor_prepared_set_f64(fusor_prepared *p, const char *name, double v) {
    return fusor_prepared_set_scalar(p, name, FUSOR_F64, &v);
}

fusor_status fusor_prepared_get_array(fusor_prepared *p, const char *name, fusor_array **out) {
    int i;
    fusor_status st = prepared_param(p, "fusor_prepared_get_array", name, &i);
    if (st) return st;
    if (!out || !p->cur[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_prepared_get_array: '%s' of kernel %s is not an array", name,
                        p->k->name);
    fusor_array_retain(p->cur[i]);
    *out = p->cur[i];
    return FUSOR_OK;
}

void sched_prepared_gpu_counts(const fusor_prepared *p, long *captures, long *replays) {
    if (p && p->P && p->P->spec->staging) /* axis reductions: staged.c's graphs */
        sched_staged_gpu_counts(p->staged, captures, replays);
    else
        sched_gpu_prep_counts(p ? p->gpu : NULL, captures, replays);
}

/* ---------------------------------------------------------------------- sequences
 *
 * A sequence runs prepared launches in order as one step.  Its first launch runs them one
 * by one (each decides its placement); when every one of them then runs on one GPU with
 * device arrays, a step is captured whole as one CUDA Graph (gpuprep.c) per arrangement
 * of all their arrays, so a step of several kernels costs one graph launch.  A queued
 * launch carries a copy of every member's binding, as a prepared launch's does. */

struct fusor_sequence {
    fusor_context *ctx;
    fusor_prepared **items;
    int n, cap;
    size_t narrays, nparams; /* totals over the members */
    sched_gpu_seq *gpu;
    snapshots queued; /* the members' bindings, one after the other, of queued steps */
};

fusor_status fusor_sequence_create(fusor_context *ctx, fusor_sequence **out) {
    if (!ctx || !out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_sequence_create: NULL");
    fusor_sequence *q = fu_calloc(1, sizeof *q);
    if (!q) return fu_oom("a sequence");
    q->ctx = ctx;
    snapshots_init(&q->queued);
    *out = q;
    return FUSOR_OK;
}

void fusor_sequence_destroy(fusor_sequence *q) {
    if (!q) return;
    snapshots_fini(&q->queued);
    sched_gpu_seq_free(q->gpu);
    fu_free(q->items);
    fu_free(q);
}

fusor_status fusor_sequence_add(fusor_sequence *q, fusor_prepared *p) {
    if (!q || !p) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_sequence_add: NULL");
    if (p->k->ctx != q->ctx)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_sequence_add: kernel %s belongs to another context", p->k->name);
    if (snapshots_busy(&q->queued))
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_sequence_add: the sequence has launches queued; synchronise first");
    if (q->n == q->cap) {
        int cap = q->cap ? 2 * q->cap : 4;
        fusor_prepared **items = fu_realloc(q->items, sizeof *items * (size_t)cap);
        if (!items) return fu_oom("a sequence");
        q->items = items;
        q->cap = cap;
    }
    q->items[q->n++] = p;
    q->narrays += (size_t)p->n;
    q->nparams += (size_t)p->nparams;
    sched_gpu_seq_free(q->gpu); /* graphs of the old membership */
    q->gpu = NULL;
    snapshots_clear(&q->queued); /* copies sized for the old membership */
    return FUSOR_OK;
}

/* One step with the members' bindings: arrays and params concatenated (a queued step's
 * copy), or NULL for their current ones. */
static fusor_status sequence_run(fusor_sequence *q, fusor_array **arrays, const ir_value *params) {
    fusor_status st = FUSOR_OK;
    sched_seq_member m[SCHED_SEQ_MAX];
    int whole = q->n > 0 && q->n <= SCHED_SEQ_MAX;
    for (int i = 0; i < q->n; i++) {
        fusor_prepared *p = q->items[i];
        if (arrays) {
            prepared_bind(p, arrays, params);
            arrays += p->n;
            params += p->nparams;
        } else {
            prepared_bind(p, p->cur, p->params);
        }
        if (whole) { /* axis reductions: their stages' state (staged.c) */
            int staged = p->P->spec->staging != NULL;
            m[i] = (sched_seq_member){.prep = staged ? NULL : p->gpu,
                                      .staged = staged ? p->staged : NULL,
                                      .k = p->k,
                                      .a = p->a,
                                      .spec = p->P->spec,
                                      .arrays = p->P->arrays,
                                      .slots = p->P->slots,
                                      .outs = p->P->outs};
            whole = staged ? p->staged != NULL : p->gpu != NULL;
        }
    }
    int handled = 0, threads = 0;
    if (whole && (st = sched_gpu_seq_run(&q->gpu, q->ctx, q->n, m, &handled, &threads)))
        return st;
    for (int i = 0; i < q->n && !st; i++) {
        if (handled)
            prepared_publish(q->items[i], 1, threads);
        else
            st = prepared_exec(q->items[i]);
    }
    return st;
}

static fusor_status sequence_item_run(fusor_stream *s, void *arg) {
    (void)s;
    snapshot *it = arg;
    return sequence_run(it->owner, it->arrays, it->params);
}

fusor_status fusor_sequence_launch(fusor_sequence *q) {
    if (!q) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_sequence_launch: NULL");
    if (snapshots_busy(&q->queued))
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_sequence_launch: the sequence has launches queued on a stream; "
                        "synchronise it first");
    return sequence_run(q, NULL, NULL);
}

fusor_status fusor_sequence_launch_async(fusor_sequence *q, fusor_stream *s) {
    if (!q) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_sequence_launch_async: NULL");
    fusor_status st;
    if (!s && (st = sched_context_stream(q->ctx, 1, &s))) return st;
    snapshot *it = snapshot_get(&q->queued, q, q->narrays, q->nparams);
    if (!it) return fu_oom("a queued sequence");
    fusor_array **a = it->arrays;
    ir_value *v = it->params;
    for (int i = 0; i < q->n; i++) {
        fusor_prepared *p = q->items[i];
        memcpy(a, p->cur, sizeof(fusor_array *) * (size_t)p->n);
        memcpy(v, p->params, sizeof(ir_value) * (size_t)p->nparams);
        a += p->n;
        v += p->nparams;
    }
    return snapshot_enqueue(it, s, sequence_item_run);
}

void sched_sequence_gpu_counts(const fusor_sequence *q, long *captures, long *replays) {
    sched_gpu_seq_counts(q ? q->gpu : NULL, captures, replays);
}

