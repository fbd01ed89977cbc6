/*
 * gpuaxis.c — kernels with axis reductions on a GPU (see gpuaxis.h).
 */
#include "gpuaxis.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "devpool.h"
#include "emit.h"
#include "error.h"
#include "gpu.h"
#include "gpurun.h"
#include "gpurun_impl.h"
#include "stream.h"

/* FUSOR_GPU_AXIS_FORM: the form every AXIS stage takes, whatever its shape (for
 * benchmarks that measure the forms against each other); -1 when unset.  THREAD_SPLIT is
 * the thread form over chunks. */
enum { THREAD_SPLIT = 3 };
static int forced_form(void) {
    const char *e = getenv("FUSOR_GPU_AXIS_FORM");
    if (!e || !*e)
        return -1;
    return !strcmp(e, "thread")        ? SCHED_AXIS_THREAD
           : !strcmp(e, "block")       ? SCHED_AXIS_BLOCK
           : !strcmp(e, "split")       ? SCHED_AXIS_SPLIT
           : !strcmp(e, "threadsplit") ? THREAD_SPLIT
                                       : -1;
}

/* Chunks of at least `least` elements, about `want` of them; at least two when `two`. */
static int cut(int64_t len, int64_t want, int64_t least, int two, int64_t *chunk,
               int64_t *nchunks) {
    int64_t most = len / least, c = want < most ? want : most;
    if (two && c < 2)
        c = 2;
    if (c < 2 || len < 2)
        return 0;
    *chunk = (len + c - 1) / c;
    *nchunks = (len + *chunk - 1) / *chunk;
    return 1;
}

/* The form, and the chunks of a split (else one chunk, the whole axis). */
static int plan(int64_t nresults, int64_t len, int innermost, int64_t *chunk, int64_t *nchunks) {
    *chunk = len;
    *nchunks = 1;
    int forced = forced_form();
    if (nresults < 1)
        return forced == SCHED_AXIS_BLOCK ? SCHED_AXIS_BLOCK : SCHED_AXIS_THREAD;
    /* Blocks over chunks: at least 2048 blocks in all, chunks of about 8192 elements
     * (64 KiB of f64: two waves of blocks on a long row beat one), at least 4096. */
    int64_t blocks = (2048 + nresults - 1) / nresults, per = (len + 8191) / 8192;
    if (blocks < per)
        blocks = per;
    /* Threads over chunks: about 2^18 threads in all (an H100 or H200 holds 270,336),
     * at least 128 elements each, so that the chunk rows add under 1% to the reads. */
    int64_t threads = ((int64_t)1 << 18) / nresults + 1;
    if (forced == SCHED_AXIS_SPLIT)
        return cut(len, blocks, 4096, 1, chunk, nchunks) ? SCHED_AXIS_SPLIT : SCHED_AXIS_BLOCK;
    if (forced == THREAD_SPLIT)
        cut(len, threads, 128, 1, chunk, nchunks);
    if (forced >= 0)
        return forced == THREAD_SPLIT ? SCHED_AXIS_THREAD : forced;
    if (innermost) {
        /* A long contiguous axis: blocks over chunks. */
        if (len >= 8192 && cut(len, blocks, 4096, 0, chunk, nchunks))
            return SCHED_AXIS_SPLIT;
        /* Short rows, many of them: a thread each reads its row's cache lines alone. */
        return len >= 64 && (len >= 2048 || nresults < 16384) ? SCHED_AXIS_BLOCK
                                                               : SCHED_AXIS_THREAD;
    }
    /* An outer axis: neighbouring threads read neighbouring results, the axis cut into
     * chunks when the results alone are too few threads. */
    if (cut(len, threads, 128, 0, chunk, nchunks))
        return SCHED_AXIS_THREAD;
    return len >= 64 && nresults < 4096 ? SCHED_AXIS_BLOCK : SCHED_AXIS_THREAD;
}

int sched_gpu_axis_split(int64_t nresults, int64_t len, int innermost, int words, int64_t *chunk,
                         int64_t *nchunks) {
    (void)words;
    plan(nresults, len, innermost, chunk, nchunks);
    return *nchunks > 1;
}

void sched_gpu_axis_shape(int64_t nresults, int64_t len, int innermost, int words, int max_block,
                          int block_override, int grid_override, int *block, int *grid,
                          int *form) {
    (void)words;
    int limit = max_block >= 32 && max_block < CG_GPU_MAX_BLOCK ? max_block : CG_GPU_MAX_BLOCK;
    int64_t chunk, nchunks;
    *form = plan(nresults, len, innermost, &chunk, &nchunks);
    int shared = *form != SCHED_AXIS_THREAD, b;
    if (block_override > 0) {
        b = block_override > limit ? limit : block_override;
    } else if (*form == SCHED_AXIS_BLOCK) { /* enough threads for the axis, at most 256 */
        int64_t want = (len + 31) / 32 * 32;
        b = want > 256 ? 256 : (int)want;
    } else {
        b = 256;
    }
    if (shared)
        b = b >= 32 ? b / 32 * 32 : 32;
    if (b > limit)
        b = limit / 32 * 32;
    if (b < 1)
        b = 1;
    int64_t items = nresults * nchunks;
    int64_t g = *form == SCHED_AXIS_SPLIT ? items : shared ? nresults : (items + b - 1) / b;
    if (g > 65536) /* the kernels stride over the rest */
        g = 65536;
    if (grid_override > 0)
        g = grid_override;
    *block = b;
    *grid = g < 1 ? 1 : (int)g;
}

void sched_gpu_axis_fold_shape(int64_t nresults, int64_t nchunks, int thread_max_block,
                               int block_max_block, int *block, int *grid, int *by_block) {
    *by_block = nchunks >= 64;
    int64_t b, g;
    if (*by_block) { /* whole warps, enough for the rows, at most 256 */
        int limit = block_max_block >= 32 && block_max_block < 256 ? block_max_block : 256;
        b = (nchunks + 31) / 32 * 32;
        if (b > limit)
            b = limit / 32 * 32;
        g = nresults;
    } else {
        b = thread_max_block >= 1 && thread_max_block < 256 ? thread_max_block : 256;
        g = (nresults + b - 1) / b;
    }
    if (g > 65536) /* the kernels stride over the rest */
        g = 65536;
    *block = (int)b;
    *grid = g < 1 ? 1 : (int)g;
}

int sched_gpu_axis_innermost(const ir_domain *d, int axis) {
    for (int x = axis + 1; x < d->ndim; x++)
        if (d->shape[x] != 1)
            return 0;
    return 1;
}

static void put64(unsigned char *img, size_t off, uint64_t v) { memcpy(img + off, &v, 8); }

void sched_gpu_axis_params(const ir_domain *d, int axis, uint64_t dslots, int64_t chunk,
                           int64_t nchunks, uint64_t dpartials, unsigned char *img) {
    int n = d->narrays, rd = 0;
    memset(img, 0, CG_GPU_AXIS_PARAMS_SIZE(n));
    int64_t nres = 1;
    for (int x = 0; x < d->ndim; x++) {
        if (x == axis)
            continue;
        put64(img, CG_GPU_OFF_SHAPE + 8 * (size_t)rd, (uint64_t)d->shape[x]);
        for (int i = 0; i < n; i++)
            if (d->base[i])
                put64(img, CG_GPU_OFF_STRIDES + 8 * ((size_t)i * 8 + (size_t)rd),
                      (uint64_t)d->strides[i][x]);
        nres *= d->shape[x];
        rd++;
    }
    if (rd == 0) /* a 0-d result: one element */
        put64(img, CG_GPU_OFF_SHAPE, 1);
    put64(img, CG_GPU_OFF_N, (uint64_t)nres);
    put64(img, CG_GPU_OFF_SLOTS, dslots);
    put64(img, CG_GPU_OFF_NDIM, (uint64_t)(rd ? rd : 1));
    put64(img, CG_GPU_OFF_AXLEN(n), (uint64_t)d->shape[axis]);
    put64(img, CG_GPU_OFF_AXCHUNK(n), (uint64_t)chunk);
    put64(img, CG_GPU_OFF_AXNCHUNKS(n), (uint64_t)nchunks);
    put64(img, CG_GPU_OFF_PARTIALS, dpartials);
    for (int i = 0; i < n; i++) {
        put64(img, CG_GPU_OFF_ARRAYS(n) + 8 * (size_t)i, (uint64_t)(uintptr_t)d->base[i]);
        if (d->base[i])
            put64(img, CG_GPU_OFF_AXSTRIDES(n) + 8 * (size_t)i, (uint64_t)d->strides[i][axis]);
    }
}

/* ------------------------------------------------------------------ staged launches */

fusor_status sched_gpu_stages_begin(sched_gpu_stages *g, int device, int own) {
    memset(g, 0, sizeof *g);
    fusor_status st;
    if (!(g->t = sched_cuda(&st)))
        return st;
    if ((st = sched_device_get(device, &g->d)) || (st = sched_device_activate(g->d)))
        return st;
    g->cur = own ? NULL : sched_stream_current();
    return g->cur ? sched_stream_cu(g->cur, device, &g->cu) : sched_sync_stream_get(device, &g->cu);
}

fusor_status sched_gpu_stages_alloc(sched_gpu_stages *g, size_t bytes, cudrv_ptr *out) {
    *out = 0;
    if (!bytes)
        return FUSOR_OK;
    if (g->nbuf == g->capbuf) {
        int cap = g->capbuf ? 2 * g->capbuf : 8;
        cudrv_ptr *b = fu_realloc(g->buf, sizeof *b * (size_t)cap);
        if (b)
            g->buf = b;
        size_t *n = b ? fu_realloc(g->bytes, sizeof *n * (size_t)cap) : NULL;
        if (n)
            g->bytes = n;
        if (!b || !n)
            return fu_oom("a staged GPU launch's buffers");
        g->capbuf = cap;
    }
    fusor_status st = mem_dev_alloc(g->d->ordinal, bytes, g->cu, out);
    if (st)
        return st;
    g->buf[g->nbuf] = *out;
    g->bytes[g->nbuf++] = bytes;
    return FUSOR_OK;
}

size_t sched_gpu_stage_params_size(const sched_spec *sub) {
    int n = sub->ir->nparams + sub->ir->noutputs;
    size_t b = sub->ir->axis_stage ? CG_GPU_AXIS_PARAMS_SIZE(n)
                                   : CG_GPU_PARAMS_SIZE(n) * (size_t)(sub->plan->npasses + 1);
    return (b + 255) & ~(size_t)255;
}

size_t sched_gpu_axis_partials_bytes(const sched_spec *sub, const ir_domain *d, int axis) {
    int64_t nres = 1, chunk, nchunks;
    for (int x = 0; x < d->ndim; x++)
        nres *= x == axis ? 1 : d->shape[x];
    int words = cg_pass_words(sub->ir, sub->plan, 0);
    if (!sched_gpu_axis_split(nres, d->shape[axis], sched_gpu_axis_innermost(d, axis), words,
                              &chunk, &nchunks))
        return 0;
    return (size_t)(nres * nchunks) * (size_t)words * 8;
}

fusor_status sched_gpu_plan_axis(sched_gpu_stages *g, fusor_kernel *k, fusor_args *a,
                                 sched_spec *sub, const ir_domain *d, int axis, cudrv_ptr dslots,
                                 cudrv_ptr dpartials, unsigned char *img, sched_gpu_call *out) {
    memset(out, 0, 2 * sizeof *out);
    const cg_gpu_code *code;
    sched_module *mod;
    fusor_status st = sched_gpu_load(k->ctx, sub, g->d, &code, &mod);
    if (st)
        return st;
    int64_t nres = 1;
    for (int x = 0; x < d->ndim; x++)
        nres *= x == axis ? 1 : d->shape[x];
    sched_function *fn[CG_AXK_COUNT];
    char name[64];
    for (int v = 0; v < CG_AXK_COUNT && !st; v++) {
        cg_pass_helper_name(name, sizeof name, 0, cg_axis_kernels[v]);
        st = sched_module_function(g->d, mod, name, &fn[v]);
    }
    if (st || nres == 0) /* no results: nothing to launch */
        return st;
    int words = cg_pass_words(sub->ir, sub->plan, 0), block, grid, form;
    int inner = sched_gpu_axis_innermost(d, axis);
    sched_gpu_axis_shape(nres, d->shape[axis], inner, words, fn[CG_AXK_BLOCK]->max_block,
                         a->gpu_block, a->gpu_grid, &block, &grid, &form);
    if (block > fn[form]->max_block)
        block = form != SCHED_AXIS_THREAD ? fn[form]->max_block / 32 * 32
                                          : fn[CG_AXK_THREAD]->max_block;
    int64_t chunk, nchunks;
    sched_gpu_axis_split(nres, d->shape[axis], inner, words, &chunk, &nchunks);
    sched_gpu_axis_params(d, axis, dslots, chunk, nchunks, dpartials, img);
    out[0] = (sched_gpu_call){.fn = fn[form], .grid = {grid, 1, 1}, .block = {block, 1, 1}};
    if (form == SCHED_AXIS_SPLIT || nchunks > 1) { /* then the fold of the chunk rows */
        int fb, fg, by_block;
        sched_gpu_axis_fold_shape(nres, nchunks, fn[CG_AXK_FOLD]->max_block,
                                  fn[CG_AXK_FOLDBLK]->max_block, &fb, &fg, &by_block);
        out[1] = (sched_gpu_call){.fn = fn[by_block ? CG_AXK_FOLDBLK : CG_AXK_FOLD],
                                  .grid = {fg, 1, 1},
                                  .block = {fb, 1, 1}};
    }
    return FUSOR_OK;
}

fusor_status sched_gpu_plan_store(sched_gpu_stages *g, fusor_kernel *k, fusor_args *a,
                                  sched_spec *sub, const ir_domain *d, cudrv_ptr dslots,
                                  unsigned char *img, sched_gpu_call *out) {
    memset(out, 0, sizeof *out);
    if (sub->plan->npasses != 1 || sub->plan->passes[0].nreductions || sub->plan->has_scalar_outputs)
        return fu_error(FUSOR_ERROR_INTERNAL, "kernel %s: a STORE stage with reductions",
                        k->name);
    if (d->size == 0)
        return FUSOR_OK;
    fusor_array *none[SCHED_GPU_MAX_ARRAYS] = {0}; /* every array is on the device already */
    gpu_run r;
    fusor_status st = sched_gpu_begin(&r, k, a, sub, d, none, g->d->ordinal);
    if (st)
        return st;
    r.cu = g->cu;
    for (int i = 0; i < r.n; i++)
        r.devbase[i] = (cudrv_ptr)(uintptr_t)d->base[i];
    pass_plan pp;
    memset(&pp, 0, sizeof pp);
    st = sched_gpu_choose(&r, &pp);
    if (!st) {
        sched_gpu_fill_params(&r, &pp, img, dslots, 0, 0);
        *out = (sched_gpu_call){.fn = pp.fn,
                                  .grid = {pp.grid3[0], pp.grid3[1], pp.grid3[2]},
                                  .block = {pp.block3[0], pp.block3[1], pp.block3[2]}};
    }
    sched_gpu_end(&r);
    return st;
}

fusor_status sched_gpu_issue_launches(sched_gpu_stages *g, const char *kname,
                                      const sched_gpu_call *l, int n, cudrv_ptr dparams) {
    fusor_status st = FUSOR_OK;
    for (int i = 0; i < n && !st; i++)
        if (l[i].fn)
            st = sched_gpu_launch_fn(g->t, g->d, g->cu, kname, l[i].fn, l[i].grid, l[i].block,
                                     dparams + (cudrv_ptr)l[i].off, &g->threads);
    return st;
}

fusor_status sched_gpu_stages_end(sched_gpu_stages *g, int need_sync, fusor_status st) {
    for (int i = 0; i < g->nbuf; i++)
        mem_dev_free(g->d->ordinal, g->buf[i], g->bytes[i], g->cu);
    fu_free(g->buf);
    fu_free(g->bytes);
    g->buf = NULL;
    g->bytes = NULL;
    g->nbuf = g->capbuf = 0;
    if (!g->cu)
        return st;
    st = sched_gpu_step_end(g->t, g->cur, g->cu, need_sync, st);
    if (!g->cur && !st) /* step_end synchronised it on this thread */
        sched_sync_stream_put_synced(g->d->ordinal, g->cu);
    else if (!g->cur)
        sched_sync_stream_put(g->d->ordinal, g->cu);
    g->cu = NULL;
    return st;
}
