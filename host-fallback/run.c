#include "run.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"
#include "scalar.h"

/*
 * Inputs broadcast along a row (stride 0 there: an (n, 1) array against (n, m), a 0-d
 * array, a keepdims axis result) do not force the strided row function: the runner hands
 * the contiguous one a per-thread buffer of copies of the value instead, refilled only
 * when a row reads another element (up to RUN_MAX_SPLAT such inputs).
 */
#define RUN_MAX_SPLAT 4

typedef struct splat_set {
    int n;
    int idx[RUN_MAX_SPLAT];    /* the arrays */
    int64_t es[RUN_MAX_SPLAT]; /* their element sizes */
} splat_set;

/* What a thread's buffers hold: `filled` copies of the element at `from`. */
typedef struct splat_state {
    const char *from[RUN_MAX_SPLAT];
    int64_t filled[RUN_MAX_SPLAT];
} splat_state;

/* The domain after simplification, with per-array strides in the same order. */
typedef struct flat_domain {
    int ndim;
    int64_t shape[FUSOR_MAX_DIMS];
    int narrays;
    char **base;
    int64_t (*strides)[FUSOR_MAX_DIMS];
    int contiguous; /* every array's inner stride is its element size, or it is in splat */
    splat_set splat;
} flat_domain;

static fusor_dtype array_dtype(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].dtype : k->outputs[i - k->nparams].dtype;
}

static int is_array(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].is_array : k->outputs[i - k->nparams].is_array;
}

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

/* Whether rows along dimension `dim` of arrays (base, strides) suit the contiguous row
 * function: every array's stride there is its element size, or it is an input
 * broadcast along it (listed in *s). */
static int row_layout(const ir_kernel *k, int narrays, char *const *base,
                      int64_t (*strides)[FUSOR_MAX_DIMS], int dim, splat_set *s) {
    s->n = 0;
    for (int i = 0; i < narrays; i++) {
        int64_t st = strides[i][dim], es = (int64_t)fusor_dtype_size(array_dtype(k, i));
        if (!is_array(k, i) || !base[i] || st == es) continue;
        if (st != 0 || i >= k->nparams || es > 8 || s->n == RUN_MAX_SPLAT) return 0;
        s->idx[s->n] = i;
        s->es[s->n++] = es;
    }
    return 1;
}

/* This thread's buffers of broadcast values. */
static _Thread_local _Alignas(64) char splat_buf[RUN_MAX_SPLAT][HOST_BLOCK * 8];

/* Fills buf with n copies of the element of `es` bytes at src. */
static void splat_fill(char *buf, const char *src, int64_t es, int64_t n) {
    switch (es) {
    case 8: {
        uint64_t v;
        memcpy(&v, src, 8);
        for (int64_t e = 0; e < n; e++) ((uint64_t *)buf)[e] = v;
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, src, 4);
        for (int64_t e = 0; e < n; e++) ((uint32_t *)buf)[e] = v;
        break;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, src, 2);
        for (int64_t e = 0; e < n; e++) ((uint16_t *)buf)[e] = v;
        break;
    }
    default: memset(buf, *src, (size_t)n);
    }
}

/* Before a contiguous call of n <= HOST_BLOCK elements: points each broadcast input of
 * ptrs at its buffer of copies (filled as needed) and sets its stride to its size. */
static void splat_rows(const splat_set *s, splat_state *t, char **ptrs, int64_t *strides,
                       int64_t n) {
    for (int v = 0; v < s->n; v++) {
        int i = s->idx[v];
        if (ptrs[i] != t->from[v] || n > t->filled[v]) {
            splat_fill(splat_buf[v], ptrs[i], s->es[v], n);
            t->from[v] = ptrs[i];
            t->filled[v] = n;
        }
        ptrs[i] = splat_buf[v];
        strides[i] = s->es[v];
    }
}

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
    f->contiguous = row_layout(k, d->narrays, d->base, f->strides, f->ndim - 1, &f->splat);
}

/*
 * Stencils (ir.h, INPUT with offsets).  The domain is not simplified: each stencil load
 * is an extra array of the row function (after the outputs) whose row pointer the runner
 * computes.  The kernel runs over a box: the whole domain, or the interior sub-box when a
 * parameter has boundary INTERIOR (its loads then never leave the array).  Along the outer
 * dimensions a boundary only changes which row a load reads (clamp, wrap, mirror), or makes
 * it read a zero with stride 0 (zero).  Along the inner dimension the first and last few
 * elements of a row, where some load leaves the array, are run one element per call with
 * each load's element remapped; the rest of the row is one call with plain offset
 * pointers (the vectorised contiguous variant when the layout allows it).
 */
typedef struct stencil_load {
    int param;
    ir_boundary bound;
    const int8_t *off;
} stencil_load;

typedef struct stencil_plan {
    const ir_domain *d;
    int ndim, nloads;
    int64_t origin[FUSOR_MAX_DIMS], shape[FUSOR_MAX_DIMS]; /* the box */
    int64_t edge_lo, edge_hi; /* inner-dimension elements needing remapping at each end */
    int contiguous;
    stencil_load *loads;
    /* Where every load's neighbour is inside the array (safe_lo[x] <= idx[x] < safe_hi[x]
     * in every dimension): load v then reads its parameter's element plus delta[v] bytes. */
    int64_t safe_lo[FUSOR_MAX_DIMS], safe_hi[FUSOR_MAX_DIMS];
    int64_t delta[HOST_MAX_ARRAYS];
    /* Cache tiles (stencil_tile_plan), when the rows a stencil reads around a row do not
     * stay in cache: the box's trailing dimensions cut into tiles of tx (last) by ty
     * (second to last, for 3-D and up) elements, each walked along dimension 0 in chunks
     * of `chunk` positions, so the neighbours read for one position are still in cache for
     * the next ("2.5-D blocking").  An item (a block of the pass) is one chunk of one
     * tile, numbered tile-major. */
    int tiled;
    int64_t tx, ty, ntx, nty, nmid, chunk, nchunk;
} stencil_plan;

/* Cache budget for the rows a tile's walk keeps: about half a core's L2. */
#define STENCIL_TILE_BYTES ((int64_t)512 << 10)

/* Decides sp's tiling from the box and the loads' offsets along dimension 0 (the shape
 * alone: items are reduction blocks, which must not depend on the thread count). */
static void stencil_tile_plan(stencil_plan *sp) {
    int nd = sp->ndim, last = nd - 1;
    sp->tiled = 0;
    if (nd < 2) return;
    int lo = 0, hi = 0;
    for (int v = 0; v < sp->nloads; v++) {
        int o = sp->loads[v].off[0];
        lo = o < lo ? o : lo;
        hi = o > hi ? o : hi;
    }
    int64_t slice = 1; /* elements of one position along dimension 0 */
    for (int x = 1; x < nd; x++) slice *= sp->shape[x];
    int64_t rows = hi - lo + 2; /* the positions a walk keeps, plus the outputs' */
    if (slice <= 0 || sp->shape[0] <= 1 || slice * 8 * rows <= STENCIL_TILE_BYTES) return;
    int64_t budget = STENCIL_TILE_BYTES / (8 * rows); /* elements of a tile */
    int64_t nx = sp->shape[last], ny = nd >= 3 ? sp->shape[last - 1] : 1;
    sp->tx = nx < budget ? nx : (budget < 256 ? 256 : budget / 64 * 64);
    sp->ty = nd >= 3 ? budget / sp->tx : 1;
    if (sp->ty < 1) sp->ty = 1;
    if (sp->ty > ny) sp->ty = ny;
    sp->ntx = (nx + sp->tx - 1) / sp->tx;
    sp->nty = (ny + sp->ty - 1) / sp->ty;
    sp->nmid = 1;
    for (int x = 1; x < last - 1; x++) sp->nmid *= sp->shape[x];
    int64_t per = sp->tx * sp->ty;
    sp->chunk = (HOST_BLOCK + per - 1) / per;
    if (sp->chunk < 8) sp->chunk = 8;
    sp->nchunk = (sp->shape[0] + sp->chunk - 1) / sp->chunk;
    sp->tiled = 1;
}

static int64_t stencil_items(const stencil_plan *sp) {
    return sp->nmid * sp->nty * sp->ntx * sp->nchunk;
}

/* A zero of every dtype, read with stride 0 by ZERO loads outside the array. */
static const int64_t zero_elem[2];

typedef struct pass_job {
    const ir_kernel *k;
    const flat_domain *f;
    const stencil_plan *sp;
    cg_pass_fn strided;
    cg_pass_fn fn;
    int64_t size, nblocks, block;
    const ir_value *slots;
    const ir_pass *pass;
    ir_value *partials; /* [nblocks][nreductions] */
    int team;           /* the team size OpenMP really gave (written by thread 0) */
} pass_job;

/* Whether a float MIN or MAX of pass ps came out a zero (its sign is then the last zero's,
 * which only the tagged row functions track). */
static int zero_minmax(const ir_kernel *k, const ir_pass *ps, const ir_value *slots) {
    for (int r = 0; r < ps->nreductions; r++) {
        const ir_node *nd = &k->nodes[ps->reductions[r]];
        if (ir_is_float_minmax(nd) && slots[nd->slot].f == 0.0) return 1;
    }
    return 0;
}

/* Processes flat elements [begin, end) row segment by row segment, folding into acc. */
static void run_range(const pass_job *j, int64_t begin, int64_t end, ir_value *acc) {
    const flat_domain *f = j->f;
    int last = f->ndim - 1;
    int64_t inner = f->shape[last];
    char *ptrs[HOST_MAX_ARRAYS];
    int64_t inner_strides[HOST_MAX_ARRAYS];
    for (int i = 0; i < f->narrays; i++) inner_strides[i] = f->strides[i][last];
    splat_state t = {.filled = {0}};
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
        if (f->contiguous) splat_rows(&f->splat, &t, ptrs, inner_strides, n);
        j->fn(ptrs, inner_strides, n, j->slots, acc);
        idx += n;
    }
}

/* One call of the row function for elements [c, c + n) of the row at full-domain
 * multi-index idx (idx[last] is ignored). */
static void stencil_call(const pass_job *j, int64_t *idx, int64_t c, int64_t n, ir_value *acc) {
    const stencil_plan *sp = j->sp;
    const ir_domain *d = sp->d;
    int last = sp->ndim - 1, na = d->narrays;
    char *ptrs[HOST_MAX_ARRAYS];
    int64_t strides[HOST_MAX_ARRAYS];
    int zero = 0;
    idx[last] = c;
    for (int i = 0; i < na; i++) {
        strides[i] = d->ndim ? d->strides[i][last] : 0;
        if (!d->base[i]) {
            ptrs[i] = NULL;
            continue;
        }
        int64_t off = 0;
        for (int x = 0; x < sp->ndim; x++) off += idx[x] * d->strides[i][x];
        ptrs[i] = d->base[i] + off;
    }
    int inside = 1;
    for (int x = 0; x < sp->ndim && inside; x++)
        inside = idx[x] >= sp->safe_lo[x] && idx[x] < sp->safe_hi[x];
    for (int v = 0; v < sp->nloads && inside; v++) { /* the common case, no remapping */
        const stencil_load *L = &sp->loads[v];
        strides[na + v] = d->strides[L->param][last];
        ptrs[na + v] = ptrs[L->param] + sp->delta[v];
    }
    for (int v = 0; v < sp->nloads && !inside; v++) {
        const stencil_load *L = &sp->loads[v];
        int a = na + v, outside = 0;
        int64_t off = 0;
        strides[a] = d->strides[L->param][last];
        for (int x = 0; x < sp->ndim; x++) {
            int64_t i = idx[x] + L->off[x], r = i;
            if ((uint64_t)i >= (uint64_t)d->shape[x]) /* outside: the boundary decides */
                r = ir_boundary_index(L->bound, i, d->shape[x]);
            if (r < 0) outside = 1; /* only ZERO maps outside indices to -1 */
            off += r * d->strides[L->param][x];
        }
        if (outside) {
            ptrs[a] = (char *)zero_elem;
            strides[a] = 0;
            zero = 1;
        } else {
            ptrs[a] = d->base[L->param] + off;
        }
    }
    cg_pass_fn fn = sp->contiguous && !zero ? j->fn : j->strided;
    fn(ptrs, strides, n, j->slots, acc);
}

/* Full-domain columns [c, stop) of the row at idx: the ends that leave the array one
 * element at a time (remapped), the middle in one call. */
static void stencil_segment(const pass_job *j, int64_t *idx, int64_t c, int64_t stop,
                            ir_value *acc) {
    const stencil_plan *sp = j->sp;
    int64_t full = sp->d->shape[sp->ndim - 1];
    int64_t mid_lo = sp->edge_lo, mid_hi = full - sp->edge_hi;
    for (; c < stop && c < mid_lo; c++) stencil_call(j, idx, c, 1, acc);
    if (c < stop && c < mid_hi) {
        int64_t m = (stop < mid_hi ? stop : mid_hi) - c;
        stencil_call(j, idx, c, m, acc);
        c += m;
    }
    for (; c < stop; c++) stencil_call(j, idx, c, 1, acc);
}

/* Box elements [begin, end) (flat, C order over the box), row segment by row segment. */
static void stencil_range(const pass_job *j, int64_t begin, int64_t end, ir_value *acc) {
    const stencil_plan *sp = j->sp;
    int last = sp->ndim - 1;
    int64_t inner = sp->shape[last], idx[FUSOR_MAX_DIMS];
    for (int64_t at = begin; at < end;) {
        int64_t row = at / inner, col = at % inner, n = inner - col;
        if (n > end - at) n = end - at;
        for (int x = last - 1; x >= 0; x--) {
            idx[x] = sp->origin[x] + row % sp->shape[x];
            row /= sp->shape[x];
        }
        int64_t c = sp->origin[last] + col;
        stencil_segment(j, idx, c, c + n, acc);
        at += n;
    }
}

/* Item `it` of a tiled stencil: one chunk of positions along dimension 0 of one tile. */
static void stencil_tile_item(const pass_job *j, int64_t it, ir_value *acc) {
    const stencil_plan *sp = j->sp;
    int nd = sp->ndim, last = nd - 1;
    int64_t ch = it % sp->nchunk, t = it / sp->nchunk, idx[FUSOR_MAX_DIMS];
    int64_t tx = t % sp->ntx, rest = t / sp->ntx, ty = rest % sp->nty, mid = rest / sp->nty;
    for (int x = last - 2; x >= 1; x--) { /* the middle dimensions of 4-D and up */
        idx[x] = sp->origin[x] + mid % sp->shape[x];
        mid /= sp->shape[x];
    }
    int64_t x0 = tx * sp->tx, x1 = x0 + sp->tx < sp->shape[last] ? x0 + sp->tx : sp->shape[last];
    int64_t y0 = 0, y1 = 1;
    if (nd >= 3) {
        y0 = ty * sp->ty;
        y1 = y0 + sp->ty < sp->shape[last - 1] ? y0 + sp->ty : sp->shape[last - 1];
    }
    int64_t z0 = ch * sp->chunk, z1 = z0 + sp->chunk < sp->shape[0] ? z0 + sp->chunk : sp->shape[0];
    for (int64_t z = z0; z < z1; z++) {
        idx[0] = sp->origin[0] + z;
        for (int64_t y = y0; y < y1; y++) {
            if (nd >= 3) idx[last - 1] = sp->origin[last - 1] + y;
            stencil_segment(j, idx, sp->origin[last] + x0, sp->origin[last] + x1, acc);
        }
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
        if (j->sp && j->sp->tiled)
            stencil_tile_item(j, b, acc);
        else if (j->sp)
            stencil_range(j, begin, end, acc);
        else
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

fusor_status host_scratch_reserve(host_scratch *s, const ir_plan *plan, const ir_domain *d) {
    /* The domain's size bounds an interior run's; blocks are fixed (HOST_BLOCK).  A tiled
     * stencil's items hold HOST_BLOCK elements or more except where the box's edges cut a
     * tile: room for 4x as many covers the usual shapes (a rarer one allocates). */
    size_t nblocks = (size_t)((d->size + HOST_BLOCK - 1) / HOST_BLOCK) * 4 + 64, bytes = 0;
    for (int p = 0; p < plan->npasses; p++) {
        size_t b = sizeof(ir_value) * nblocks * (size_t)plan->passes[p].nreductions;
        if (b > bytes) bytes = b;
    }
    if (bytes <= s->bytes) return FUSOR_OK;
    void *m = fu_malloc(bytes);
    if (!m) return fu_oom("reduction partials");
    fu_free(s->p);
    s->p = m;
    s->bytes = bytes;
    return FUSOR_OK;
}

fusor_status host_run(const ir_kernel *k, const ir_plan *plan, const cg_compiled *code,
                      const ir_domain *d, ir_value *slots, ir_value *outs, int nthreads,
                      int *threads_used, host_scratch *scratch) {
    int64_t strides_buf[FUSOR_MAX_DIMS * HOST_MAX_ARRAYS];
    if (d->narrays > HOST_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "a kernel may have at most %d parameters and outputs",
                        HOST_MAX_ARRAYS);
    flat_domain f = {.strides = (int64_t(*)[FUSOR_MAX_DIMS])strides_buf};
    stencil_plan sp = {.d = d};
    stencil_load loads[HOST_MAX_ARRAYS];
    int32_t load_nodes[HOST_MAX_ARRAYS];
    int nloads = ir_stencil_loads(k, NULL);
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    int interior = ir_interior_halo(k, lo, hi);
    int64_t size = d->size;
    if (nloads || interior) {
        if (d->narrays + nloads > HOST_MAX_ARRAYS)
            return fu_error(FUSOR_ERROR_UNSUPPORTED,
                            "a kernel may have at most %d parameters, outputs and stencil loads",
                            HOST_MAX_ARRAYS);
        if (d->ndim < 1)
            return fu_error(FUSOR_ERROR_SHAPE, "kernel '%s': a stencil needs an array domain",
                            k->name);
        ir_stencil_loads(k, load_nodes);
        sp.ndim = d->ndim;
        sp.nloads = nloads;
        sp.loads = loads;
        size = 1;
        for (int x = 0; x < d->ndim; x++) {
            sp.origin[x] = lo[x];
            sp.shape[x] = d->shape[x] - lo[x] - hi[x];
            if (sp.shape[x] < 0) sp.shape[x] = 0;
            size *= sp.shape[x];
        }
        for (int x = 0; x < d->ndim; x++) {
            sp.safe_lo[x] = 0;
            sp.safe_hi[x] = d->shape[x];
        }
        for (int v = 0; v < nloads; v++) {
            const ir_node *nd = &k->nodes[load_nodes[v]];
            loads[v] = (stencil_load){.param = (int)nd->imm.i,
                                      .bound = ir_param_boundary(k, (int)nd->imm.i),
                                      .off = nd->off};
            sp.delta[v] = 0;
            for (int x = 0; x < d->ndim; x++) {
                int o = nd->off[x];
                sp.delta[v] += o * d->strides[loads[v].param][x];
                if (-o > sp.safe_lo[x]) sp.safe_lo[x] = -o;
                if (d->shape[x] - o < sp.safe_hi[x]) sp.safe_hi[x] = d->shape[x] - o;
            }
            if (loads[v].bound == IR_BOUND_INTERIOR) continue;
            int o = nd->off[d->ndim - 1];
            if (-o > sp.edge_lo) sp.edge_lo = -o;
            if (o > sp.edge_hi) sp.edge_hi = o;
        }
        sp.contiguous = 1;
        for (int i = 0; i < d->narrays; i++)
            if (is_array(k, i) && d->base[i] &&
                d->strides[i][d->ndim - 1] != (int64_t)fusor_dtype_size(array_dtype(k, i)))
                sp.contiguous = 0;
        stencil_tile_plan(&sp);
    } else {
        simplify(k, d, &f);
    }

    if (nthreads < 1) nthreads = 1;
    if (size < HOST_PARALLEL_MIN_ELEMENTS) nthreads = 1;
    *threads_used = nthreads;

    for (int p = 0; p < plan->npasses && size > 0; p++) {
        const ir_pass *ps = &plan->passes[p];
        /* A pass of float min/max runs without their zero tag first (codegen's _contignt),
         * and again with it only when a result is a zero (whose sign the tag decides). */
        int notag = code->contig_nt && code->contig_nt[p] && code->strided_nt[p];
    again:;
        cg_pass_fn contig = notag ? code->contig_nt[p] : code->contig[p];
        cg_pass_fn strided = notag ? code->strided_nt[p] : code->strided[p];
        pass_job j = {.k = k, .f = &f, .fn = f.contiguous ? contig : strided, .size = size,
                      .slots = slots, .pass = ps};
        if (sp.d && (nloads || interior)) {
            j.sp = &sp;
            j.fn = contig;
            j.strided = strided;
        }
        /* Fixed blocks for every pass, whatever the thread count: each element is then
         * computed by the same call at the same position within it (vector body or
         * remainder), so results are bitwise independent of the thread count. */
        j.block = HOST_BLOCK;
        j.nblocks = sp.tiled ? stencil_items(&sp) : (size + HOST_BLOCK - 1) / HOST_BLOCK;
        if (ps->nreductions) {
            size_t bytes = sizeof(ir_value) * (size_t)j.nblocks * (size_t)ps->nreductions;
            j.partials = scratch && scratch->bytes >= bytes ? scratch->p : fu_malloc(bytes);
            if (!j.partials) return fu_oom("reduction partials");
        }
        host_parallel(nthreads, pass_worker, &j);
        *threads_used = j.team;
        for (int r = 0; r < ps->nreductions; r++) {
            const ir_node *nd = &k->nodes[ps->reductions[r]];
            slots[nd->slot] = sc_reduce_finish((ir_op)nd->op, (fusor_dtype)nd->dtype,
                                               combine(&j, r, 0, j.nblocks));
        }
        if (!scratch || j.partials != scratch->p) fu_free(j.partials);
        if (notag && zero_minmax(k, ps, slots)) {
            notag = 0;
            goto again;
        }
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

/* ------------------------------------------------------------------ axis reductions */

typedef struct axis_job {
    const ir_kernel *k;
    const ir_domain *d;
    int axis, contiguous;
    splat_set splat; /* inputs broadcast along the axis (contiguous rows) */
    cg_pass_fn fn;
    const ir_value *slots;
    ir_op op;
    fusor_dtype dtype;
    char *out;
    const int64_t *out_strides;
    int64_t nrows;
    int team;
} axis_job;

/* The reduction of elements [lo, hi) of one row (pointers at its element 0), split into
 * HOST_BLOCK blocks combined pairwise: the same grouping whoever computes the row. */
static ir_value axis_fold(const axis_job *j, char *const *row, const int64_t *strides,
                          splat_state *t, int64_t lo, int64_t hi) {
    int64_t nblocks = (hi - lo + HOST_BLOCK - 1) / HOST_BLOCK;
    if (nblocks > 1) {
        int64_t mid = lo + nblocks / 2 * HOST_BLOCK;
        return sc_reduce_combine(j->op, j->dtype, axis_fold(j, row, strides, t, lo, mid),
                                 axis_fold(j, row, strides, t, mid, hi));
    }
    char *ptrs[HOST_MAX_ARRAYS];
    int64_t st[HOST_MAX_ARRAYS];
    for (int i = 0; i < j->d->narrays; i++) {
        ptrs[i] = row[i] ? row[i] + lo * strides[i] : NULL;
        st[i] = strides[i];
    }
    if (j->contiguous) splat_rows(&j->splat, t, ptrs, st, hi - lo);
    ir_value acc = sc_reduce_identity(j->op, j->dtype);
    if (hi > lo) j->fn(ptrs, st, hi - lo, j->slots, &acc);
    return acc;
}

static void axis_worker(void *ctx, int tid, int nthreads) {
    axis_job *j = ctx;
    if (tid == 0) j->team = nthreads;
    const ir_domain *d = j->d;
    int na = d->narrays, ax = j->axis;
    int64_t r0 = j->nrows * tid / nthreads, r1 = j->nrows * (tid + 1) / nthreads;
    int64_t strides[HOST_MAX_ARRAYS];
    char *row[HOST_MAX_ARRAYS];
    splat_state t = {.filled = {0}};
    for (int i = 0; i < na; i++) strides[i] = d->strides[i][ax];
    for (int64_t r = r0; r < r1; r++) {
        int64_t rem = r, out_off = 0, idx[FUSOR_MAX_DIMS] = {0};
        for (int x = d->ndim - 1; x >= 0; x--) {
            if (x == ax) continue;
            idx[x] = rem % d->shape[x];
            rem /= d->shape[x];
            out_off += idx[x] * j->out_strides[x];
        }
        for (int i = 0; i < na; i++) {
            row[i] = NULL;
            if (!d->base[i]) continue;
            int64_t off = 0;
            for (int x = 0; x < d->ndim; x++)
                if (x != ax) off += idx[x] * d->strides[i][x];
            row[i] = d->base[i] + off;
        }
        ir_value v = axis_fold(j, row, strides, &t, 0, d->shape[ax]);
        sc_store(j->out + out_off, j->dtype, v);
    }
}

/* Result elements per block of the row-accumulating path: the accumulators and one row
 * of operand values stay in L1 or L2. */
#define AXIS_ROW_BLOCK 4096
_Static_assert(AXIS_ROW_BLOCK <= HOST_BLOCK, "a row block's broadcast inputs fit splat_buf");

typedef struct axis_rows_job {
    const ir_kernel *k; /* the stage kernel (its reduction's op and dtype) */
    const ir_domain *d;
    int axis, inner;
    cg_pass_fn fn;      /* map's row function along the innermost dimension */
    int contiguous;     /* fn is the contiguous one: inputs in splat get buffers */
    splat_set splat;
    int fused;          /* map accumulates (acc param, output over it): no combining here */
    fusor_dtype vdtype; /* map's output: the operand's dtype, or the accumulators' */
    size_t pes;         /* bytes of one partial: vdtype's when fused, else an ir_value */
    const ir_value *slots;
    ir_op op;
    fusor_dtype dtype;
    char *out;
    const int64_t *out_strides;
    int64_t nouter, nblk, nchunk; /* outer rows, blocks of the row, chunks of the axis */
    int64_t blk, chunk;           /* result elements per block, axis positions per chunk */
    char *partials;               /* [nouter][nblk][nchunk][blk] partial results */
    int team;
} axis_rows_job;

static char *partial_at(const axis_rows_job *j, int64_t group, int64_t ch) {
    return j->partials + (size_t)((group * j->nchunk + ch) * j->blk) * j->pes;
}

/* The outer multi-index of group g (outer row r, block cb): array offsets and out_off. */
static void group_start(const axis_rows_job *j, int64_t g, char **base, int64_t *out_off,
                        int64_t *c0, int64_t *cn) {
    const ir_domain *d = j->d;
    int ax = j->axis, in = j->inner;
    int64_t r = g / j->nblk, M = d->shape[in], idx[FUSOR_MAX_DIMS] = {0};
    *c0 = g % j->nblk * j->blk;
    *cn = M - *c0 < j->blk ? M - *c0 : j->blk;
    *out_off = *c0 * j->out_strides[in];
    for (int x = d->ndim - 1; x >= 0; x--) {
        if (x == ax || x == in) continue;
        idx[x] = r % d->shape[x];
        r /= d->shape[x];
        *out_off += idx[x] * j->out_strides[x];
    }
    for (int i = 0; base && i < j->k->nparams; i++) {
        base[i] = NULL;
        if (!d->base[i]) continue;
        int64_t off = *c0 * d->strides[i][in];
        for (int x = 0; x < d->ndim; x++)
            if (x != ax && x != in) off += idx[x] * d->strides[i][x];
        base[i] = d->base[i] + off;
    }
}

/* Item = (group, chunk of the axis): its partial results, position after position. */
static void axis_rows_worker(void *ctx, int tid, int nthreads) {
    axis_rows_job *j = ctx;
    if (tid == 0) j->team = nthreads;
    const ir_domain *d = j->d;
    int ax = j->axis, in = j->inner, np = j->k->nparams;
    int64_t items = j->nouter * j->nblk * j->nchunk;
    int64_t i0 = items * tid / nthreads, i1 = items * (tid + 1) / nthreads, L = d->shape[ax];
    static _Thread_local _Alignas(64) char vals[AXIS_ROW_BLOCK * 8];
    char *ptrs[HOST_MAX_ARRAYS + 2], *base[HOST_MAX_ARRAYS];
    int64_t strides[HOST_MAX_ARRAYS + 2];
    size_t es = fusor_dtype_size(j->vdtype);
    for (int i = 0; i < np; i++) strides[i] = d->strides[i][in];
    int vi = j->fused ? np + 1 : np; /* map's output (after the accumulators when fused) */
    strides[vi] = strides[np] = (int64_t)es;
    ir_value id = sc_reduce_identity(j->op, j->dtype);
    splat_state bt = {.filled = {0}};
    for (int64_t it = i0; it < i1; it++) {
        int64_t g = it / j->nchunk, ch = it % j->nchunk, out_off, c0, cn;
        group_start(j, g, base, &out_off, &c0, &cn);
        char *part = partial_at(j, g, ch);
        ir_value *acc = (ir_value *)part;
        for (int64_t e = 0; e < cn; e++) {
            if (j->fused)
                sc_store(part + (size_t)e * es, j->vdtype, id);
            else
                acc[e] = id;
        }
        ptrs[vi] = ptrs[np] = j->fused ? part : vals;
        int64_t t1 = (ch + 1) * j->chunk < L ? (ch + 1) * j->chunk : L;
        for (int64_t t = ch * j->chunk; t < t1; t++) {
            for (int i = 0; i < np; i++)
                ptrs[i] = base[i] ? base[i] + t * d->strides[i][ax] : NULL;
            if (j->contiguous) splat_rows(&j->splat, &bt, ptrs, strides, cn);
            j->fn(ptrs, strides, cn, j->slots, NULL);
            if (j->fused) continue;
            for (int64_t e = 0; e < cn; e++) /* the reduction's own combination */
                acc[e] = sc_reduce_combine(
                    j->op, j->dtype, acc[e],
                    sc_cast(sc_load(vals + (size_t)e * es, j->vdtype), j->vdtype, j->dtype));
        }
    }
}

/* Group = (outer row, block): its chunks' partials combined in order, stored. */
static void axis_rows_finish(void *ctx, int tid, int nthreads) {
    axis_rows_job *j = ctx;
    int64_t groups = j->nouter * j->nblk;
    int64_t g0 = groups * tid / nthreads, g1 = groups * (tid + 1) / nthreads;
    for (int64_t g = g0; g < g1; g++) {
        int64_t out_off, c0, cn;
        group_start(j, g, NULL, &out_off, &c0, &cn);
        for (int64_t e = 0; e < cn; e++) {
            ir_value v = sc_reduce_identity(j->op, j->dtype);
            for (int64_t ch = 0; ch < j->nchunk; ch++) {
                const char *p = partial_at(j, g, ch) + (size_t)e * j->pes;
                ir_value x = j->fused ? sc_load(p, j->vdtype) : *(const ir_value *)p;
                v = ch ? sc_reduce_combine(j->op, j->dtype, v, x) : x;
            }
            sc_store(j->out + out_off + e * j->out_strides[j->inner], j->dtype,
                     sc_reduce_finish(j->op, j->dtype, v));
        }
    }
}

/* The row-accumulating path of host_run_axis, or 0 when it does not apply (and 0 with an
 * error set when its partials cannot be allocated). */
static int axis_by_rows(const ir_kernel *k, const ir_plan *plan, const cg_compiled *map,
                        int fused, const ir_domain *d, int axis, char *out,
                        const int64_t *out_strides, const ir_value *slots, int nthreads,
                        int *threads_used, host_scratch *scratch, fusor_status *st) {
    int in = d->ndim - 1;
    *st = FUSOR_OK;
    if (!map || axis == in || d->shape[in] < 16 || d->narrays != k->nparams + k->noutputs)
        return 0;
    const ir_node *red = &k->nodes[plan->passes[0].reductions[0]];
    const ir_node *opnd = &k->nodes[red->a];
    axis_rows_job j = {.k = k, .d = d, .axis = axis, .inner = in, .slots = slots,
                       .op = (ir_op)red->op, .dtype = (fusor_dtype)red->dtype,
                       .vdtype = (fusor_dtype)opnd->dtype, .fused = fused, .out = out,
                       .out_strides = out_strides, .nouter = 1};
    if (fusor_dtype_size(j.vdtype) > 8) return 0;
    j.pes = fused ? fusor_dtype_size(j.vdtype) : sizeof(ir_value);
    j.contiguous = row_layout(k, k->nparams, d->base, d->strides, in, &j.splat);
    j.fn = j.contiguous ? map->contig[0] : map->strided[0];
    for (int x = 0; x < d->ndim; x++)
        if (x != axis && x != in) j.nouter *= d->shape[x];
    /* Whole rows (up to AXIS_ROW_BLOCK elements) read in order, like a C loop; the axis in
     * chunks whose partial results are combined in order afterwards, so that few long
     * rows still give every thread work.  Both from the shape alone: an element's place in
     * a row function's call (vector body or remainder) and its chunks decide its value,
     * and neither may depend on the thread count. */
    int64_t M = d->shape[in], L = d->shape[axis];
    j.blk = M < AXIS_ROW_BLOCK ? M : AXIS_ROW_BLOCK;
    j.nblk = (M + j.blk - 1) / j.blk;
    j.chunk = (L + 7) / 8 > 128 ? (L + 7) / 8 : 128;
    j.nchunk = L ? (L + j.chunk - 1) / j.chunk : 1;
    int64_t items = j.nouter * j.nblk * j.nchunk;
    size_t pbytes = (size_t)(items * j.blk) * j.pes;
    int own = !scratch || scratch->bytes < pbytes;
    if (own && scratch && pbytes) { /* grow the caller's (a prepared launch keeps it) */
        void *m = fu_malloc(pbytes);
        if (m) {
            fu_free(scratch->p);
            scratch->p = m;
            scratch->bytes = pbytes;
            own = 0;
        }
    }
    j.partials = own ? fu_malloc(pbytes ? pbytes : 1) : scratch->p;
    if (!j.partials) {
        *st = fu_oom("the partial results of an axis reduction");
        return 0;
    }
    if (nthreads < 1) nthreads = 1;
    if (d->size < HOST_PARALLEL_MIN_ELEMENTS) nthreads = 1;
    int n1 = items < nthreads ? (int)items : nthreads;
    int64_t groups = j.nouter * j.nblk;
    int n2 = groups < nthreads ? (int)groups : nthreads;
    *threads_used = n1 > 0 ? n1 : 1;
    if (items > 0) {
        host_parallel(n1, axis_rows_worker, &j);
        *threads_used = j.team;
        host_parallel(n2 > 0 ? n2 : 1, axis_rows_finish, &j);
    }
    if (own)
        fu_free(j.partials);
    return 1;
}

fusor_status host_run_axis(const ir_kernel *k, const ir_plan *plan, const cg_compiled *code,
                           const cg_compiled *map, int map_accumulates, const ir_domain *d,
                           int axis, char *out, const int64_t *out_strides,
                           const ir_value *slots, int nthreads, int *threads_used,
                           host_scratch *scratch) {
    if (d->narrays > HOST_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "a kernel may have at most %d parameters and outputs", HOST_MAX_ARRAYS);
    if (plan->npasses != 1 || plan->passes[0].nreductions != 1 || axis < 0 || axis >= d->ndim)
        return fu_error(FUSOR_ERROR_INTERNAL, "kernel '%s' is not an axis reduction stage",
                        k->name);
    fusor_status st;
    if (axis_by_rows(k, plan, map, map_accumulates, d, axis, out, out_strides, slots, nthreads,
                     threads_used, scratch, &st) ||
        st)
        return st;
    const ir_node *red = &k->nodes[plan->passes[0].reductions[0]];
    axis_job j = {.k = k, .d = d, .axis = axis, .slots = slots, .op = (ir_op)red->op,
                  .dtype = (fusor_dtype)red->dtype, .out = out, .out_strides = out_strides,
                  .nrows = 1};
    for (int x = 0; x < d->ndim; x++)
        if (x != axis) j.nrows *= d->shape[x];
    j.contiguous = row_layout(k, d->narrays, d->base, d->strides, axis, &j.splat);
    j.fn = j.contiguous ? code->contig[0] : code->strided[0];
    if (nthreads < 1) nthreads = 1;
    if (d->size < HOST_PARALLEL_MIN_ELEMENTS || j.nrows < 2) nthreads = 1;
    if (j.nrows > 0 && nthreads > j.nrows) nthreads = (int)j.nrows;
    *threads_used = nthreads;
    if (j.nrows == 0) return FUSOR_OK;
    host_parallel(nthreads, axis_worker, &j);
    *threads_used = j.team;
    return FUSOR_OK;
}
