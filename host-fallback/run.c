#include "run.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"
#include "scalar.h"

/* The domain after simplification, with per-array strides in the same order. */
typedef struct flat_domain {
    int ndim;
    int64_t shape[FUSOR_MAX_DIMS];
    int narrays;
    char **base;
    int64_t (*strides)[FUSOR_MAX_DIMS];
    int contiguous; /* every array's inner stride equals its element size */
} flat_domain;

static fusor_dtype array_dtype(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].dtype : k->outputs[i - k->nparams].dtype;
}

static int is_array(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].is_array : k->outputs[i - k->nparams].is_array;
}

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

/* Orders dimensions by the reference array's strides (largest first), drops size-1
 * dimensions and merges neighbours that every array walks as one. */
static void simplify(const ir_kernel *k, const ir_domain *d, flat_domain *f) {
    int ref = -1;
    for (int i = k->nparams; i < d->narrays && ref < 0; i++)
        if (is_array(k, i)) ref = i;
    for (int i = 0; i < k->nparams && ref < 0; i++)
        if (is_array(k, i)) ref = i;

    int order[FUSOR_MAX_DIMS], nd = 0;
    for (int j = 0; j < d->ndim; j++)
        if (d->shape[j] != 1) order[nd++] = j;
    if (ref >= 0) { /* stable insertion sort by decreasing |stride| */
        for (int x = 1; x < nd; x++) {
            int v = order[x], y = x;
            while (y > 0 && abs64(d->strides[ref][order[y - 1]]) < abs64(d->strides[ref][v])) {
                order[y] = order[y - 1];
                y--;
            }
            order[y] = v;
        }
    }
    f->narrays = d->narrays;
    f->base = d->base;
    f->ndim = 0;
    for (int x = 0; x < nd; x++) {
        int j = order[x];
        int merge = f->ndim > 0;
        for (int i = 0; i < d->narrays && merge; i++) {
            if (!is_array(k, i)) continue;
            int last = f->ndim - 1;
            if (f->strides[i][last] != d->strides[i][j] * d->shape[j]) merge = 0;
        }
        if (merge) {
            int last = f->ndim - 1;
            f->shape[last] *= d->shape[j];
            for (int i = 0; i < d->narrays; i++) f->strides[i][last] = d->strides[i][j];
        } else {
            f->shape[f->ndim] = d->shape[j];
            for (int i = 0; i < d->narrays; i++) f->strides[i][f->ndim] = d->strides[i][j];
            f->ndim++;
        }
    }
    if (f->ndim == 0) { /* a scalar or all-ones domain: one row of one element */
        f->ndim = 1;
        f->shape[0] = 1;
        for (int i = 0; i < d->narrays; i++) f->strides[i][0] = 0;
    }
    f->contiguous = 1;
    for (int i = 0; i < d->narrays; i++)
        if (is_array(k, i) &&
            f->strides[i][f->ndim - 1] != (int64_t)fusor_dtype_size(array_dtype(k, i)))
            f->contiguous = 0;
}

typedef struct pass_job {
    const ir_kernel *k;
    const flat_domain *f;
    cg_pass_fn fn;
    int64_t size, nblocks, block;
    const ir_value *slots;
    const ir_pass *pass;
    ir_value *partials; /* [nblocks][nreductions] */
    int team;           /* the team size OpenMP really gave (written by thread 0) */
} pass_job;

/* Processes flat elements [begin, end) row segment by row segment, folding into acc. */
static void run_range(const pass_job *j, int64_t begin, int64_t end, ir_value *acc) {
    const flat_domain *f = j->f;
    int last = f->ndim - 1;
    int64_t inner = f->shape[last];
    char *ptrs[HOST_MAX_ARRAYS];
    int64_t inner_strides[HOST_MAX_ARRAYS];
    for (int i = 0; i < f->narrays; i++) inner_strides[i] = f->strides[i][last];
    int64_t idx = begin;
    while (idx < end) {
        int64_t row = idx / inner, col = idx % inner;
        int64_t n = inner - col;
        if (n > end - idx) n = end - idx;
        for (int i = 0; i < f->narrays; i++) {
            if (!f->base[i]) {
                ptrs[i] = NULL;
                continue;
            }
            int64_t off = col * f->strides[i][last], r = row;
            for (int dim = last - 1; dim >= 0; dim--) {
                off += (r % f->shape[dim]) * f->strides[i][dim];
                r /= f->shape[dim];
            }
            ptrs[i] = f->base[i] + off;
        }
        j->fn(ptrs, inner_strides, n, j->slots, acc);
        idx += n;
    }
}

static void pass_worker(void *ctx, int tid, int nthreads) {
    pass_job *j = ctx;
    if (tid == 0) j->team = nthreads;
    int nred = j->pass->nreductions;
    int64_t b0 = j->nblocks * tid / nthreads, b1 = j->nblocks * (tid + 1) / nthreads;
    for (int64_t b = b0; b < b1; b++) {
        ir_value *acc = j->partials ? j->partials + b * nred : NULL;
        for (int r = 0; r < nred; r++) {
            const ir_node *nd = &j->k->nodes[j->pass->reductions[r]];
            acc[r] = sc_reduce_identity((ir_op)nd->op, (fusor_dtype)nd->dtype);
        }
        int64_t begin = b * j->block, end = begin + j->block;
        if (end > j->size) end = j->size;
        run_range(j, begin, end, acc);
    }
}

/* Pairwise combination of block partials [lo, hi) of reduction r. */
static ir_value combine(const pass_job *j, int r, int64_t lo, int64_t hi) {
    int nred = j->pass->nreductions;
    if (hi - lo == 1) return j->partials[lo * nred + r];
    int64_t mid = lo + (hi - lo) / 2;
    const ir_node *nd = &j->k->nodes[j->pass->reductions[r]];
    return sc_reduce_combine((ir_op)nd->op, (fusor_dtype)nd->dtype, combine(j, r, lo, mid),
                             combine(j, r, mid, hi));
}

fusor_status host_run(const ir_kernel *k, const ir_plan *plan, const cg_compiled *code,
                      const ir_domain *d, ir_value *slots, ir_value *outs, int nthreads,
                      int *threads_used) {
    int64_t strides_buf[FUSOR_MAX_DIMS * HOST_MAX_ARRAYS];
    if (d->narrays > HOST_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "a kernel may have at most %d parameters and outputs",
                        HOST_MAX_ARRAYS);
    flat_domain f = {.strides = (int64_t(*)[FUSOR_MAX_DIMS])strides_buf};
    simplify(k, d, &f);

    int64_t size = d->size;
    if (nthreads < 1) nthreads = 1;
    if (size < HOST_PARALLEL_MIN_ELEMENTS) nthreads = 1;
    *threads_used = nthreads;

    for (int p = 0; p < plan->npasses && size > 0; p++) {
        const ir_pass *ps = &plan->passes[p];
        pass_job j = {.k = k, .f = &f, .fn = f.contiguous ? code->contig[p] : code->strided[p],
                      .size = size, .slots = slots, .pass = ps};
        /* Fixed blocks for every pass, whatever the thread count: each element is then
         * computed by the same call at the same position within it (vector body or
         * remainder), so results are bitwise independent of the thread count. */
        j.block = HOST_BLOCK;
        j.nblocks = (size + HOST_BLOCK - 1) / HOST_BLOCK;
        if (ps->nreductions) {
            size_t bytes = sizeof(ir_value) * (size_t)j.nblocks * (size_t)ps->nreductions;
            j.partials = fu_malloc(bytes);
            if (!j.partials) return fu_oom("reduction partials");
        }
        host_parallel(nthreads, pass_worker, &j);
        *threads_used = j.team;
        for (int r = 0; r < ps->nreductions; r++)
            slots[k->nodes[ps->reductions[r]].slot] = combine(&j, r, 0, j.nblocks);
        fu_free(j.partials);
    }
    /* Reductions of an empty domain are their identities. */
    if (size == 0) {
        for (int p = 0; p < plan->npasses; p++)
            for (int r = 0; r < plan->passes[p].nreductions; r++) {
                const ir_node *nd = &k->nodes[plan->passes[p].reductions[r]];
                slots[nd->slot] = sc_reduce_identity((ir_op)nd->op, (fusor_dtype)nd->dtype);
            }
    }
    if (code->finish) code->finish(slots, outs);
    return FUSOR_OK;
}
