/*
 * gpurun.c — the GPU side of a launch and the placement hook (gpurun.h).
 *
 * The run keeps everything it allocates in one gpu_run so that any failure frees it the
 * same way: temporaries are given back on the launch's stream (stream-ordered), so a
 * failure half-way never frees memory a queued kernel still reads.  Host outputs are
 * only written after every kernel has succeeded: on an error they are exactly as they
 * were, as on the CPU.
 */
#include "gpurun.h"
#include "gpurun_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "device.h"
#include "devpool.h"
#include "emit.h"
#include "error.h"
#include "gpu.h"
#include "placement.h"
#include "pool.h"
#include "stream.h"

/* ------------------------------------------------------------------ context state */

fusor_status sched_ctx_gpu_get(fusor_context *c, int create, sched_ctx_gpu **out) {
    pthread_mutex_lock(&c->lock);
    if (!c->gpu_state && create) {
        sched_ctx_gpu *g = fu_calloc(1, sizeof *g);
        if (g)
            pthread_mutex_init(&g->lock, NULL);
        c->gpu_state = g;
    }
    *out = c->gpu_state;
    pthread_mutex_unlock(&c->lock);
    return create && !*out ? fu_oom("a context's GPU state") : FUSOR_OK;
}

void sched_ctx_gpu_free(sched_ctx_gpu *g) {
    if (!g)
        return;
    sched_context_stream_free(g->default_stream);
    pthread_mutex_destroy(&g->lock);
    fu_free(g);
}

/* The PTX of a specialisation under the context's GPU options, for sm_<arch> when the
 * options leave the arch to the device; compiled once (the specialisation's cache,
 * shared with fusor_kernel_emit). */
fusor_status sched_gpu_load(fusor_context *c, sched_spec *spec, sched_device *d,
                            const cg_gpu_code **code, sched_module **mod) {
    int arch = sched_device_arch(d);
    if (!arch)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "GPU %d (%s) has compute capability %d.%d, older than fusor's code "
                        "generation supports",
                        d->ordinal, d->name, d->cc_major, d->cc_minor);
    pthread_mutex_lock(&c->lock);
    fusor_gpu_options o = c->gpu;
    pthread_mutex_unlock(&c->lock);
    if (!o.arch)
        o.arch = arch;
    fusor_status st = sched_spec_gpu_code(c, spec, &o, code);
    if (!st)
        st = sched_module_load_code(d, *code, cg_gpu_ptx_version(o.arch), mod);
    return st;
}

/* ------------------------------------------------------------------ public facts */

fusor_status fusor_gpu_status(void) {
    fusor_status st;
    sched_cuda(&st);
    return st;
}

int fusor_gpu_count(void) { return sched_cuda_device_count(); }

fusor_status fusor_args_last_placement(const fusor_args *a, fusor_placement *out) {
    if (!a || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_last_placement: NULL");
    *out = a->placement;
    if (!a->placement.reason[0]) {
        out->target = FUSOR_TARGET_AUTO;
        out->device = -1;
        snprintf(out->reason, sizeof out->reason, "nothing was launched with these arguments yet");
    }
    return FUSOR_OK;
}

fusor_status fusor_args_set_gpu_shape(fusor_args *a, int block, int grid) {
    if (!a)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_set_gpu_shape: NULL");
    if (block < 0 || block > CG_GPU_MAX_BLOCK || block % 32 || grid < 0)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_set_gpu_shape: block %d must be 0 or a multiple of 32 up to "
                        "%d, and grid %d must be >= 0",
                        block, CG_GPU_MAX_BLOCK, grid);
    a->gpu_block = block;
    a->gpu_grid = grid;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ one GPU run */

static fusor_status tmp_alloc(gpu_run *g, size_t bytes, cudrv_ptr *out) {
    *out = 0;
    if (!bytes)
        return FUSOR_OK;
    fusor_status st = mem_dev_alloc(g->d->ordinal, bytes, g->cu, out);
    if (st)
        return st;
    g->tmp[g->ntmp].p = *out;
    g->tmp[g->ntmp++].bytes = bytes;
    return FUSOR_OK;
}

static void tmp_free_all(gpu_run *g) {
    for (int i = 0; i < g->ntmp; i++)
        mem_dev_free(g->d->ordinal, g->tmp[i].p, g->tmp[i].bytes, g->cu);
    g->ntmp = 0;
}

static fusor_dtype array_dtype(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].dtype : k->outputs[i - k->nparams].dtype;
}

static const char *array_name(const ir_kernel *k, int i) {
    return i < k->nparams ? k->params[i].name : k->outputs[i - k->nparams].name;
}

static int is_host(const fusor_array *a) {
    return a->memory == FUSOR_MEMORY_HOST || a->memory == FUSOR_MEMORY_PINNED;
}

/* Element i of the domain at base + i * element size (the _contig kernel's rule). */
static int contiguous(const ir_domain *dom, int i, size_t elsize) {
    int64_t expect = (int64_t)elsize;
    for (int d = dom->ndim - 1; d >= 0; d--) {
        if (dom->shape[d] == 1)
            continue;
        if (dom->strides[i][d] != expect)
            return 0;
        expect *= dom->shape[d];
    }
    return 1;
}

fusor_status sched_gpu_place(const char *kname, const ir_kernel *ir, fusor_array *const *arrays,
                             char *const *elem0, int n, int device, int fill_outputs,
                             cudrv_stream s, fusor_status (*alloc)(void *, size_t, cudrv_ptr *),
                             void *actx, cudrv_ptr *devbase, cudrv_ptr *hostbuf, double *copied) {
    for (int i = 0; i < n; i++) {
        const fusor_array *A = arrays[i];
        devbase[i] = hostbuf[i] = 0;
        if (!A || !elem0[i])
            continue;
        if (!is_host(A)) {
            if (A->memory == FUSOR_MEMORY_DEVICE && A->device != device)
                return fu_error(FUSOR_ERROR_UNSUPPORTED,
                                "kernel %s: array '%s' lives on GPU %d, the launch runs on GPU %d",
                                kname, array_name(ir, i), A->device, device);
            devbase[i] = (cudrv_ptr)(uintptr_t)elem0[i];
            continue;
        }
        const char *lo, *hi;
        mem_array_extent(A, &lo, &hi);
        size_t bytes = (size_t)(hi - lo);
        cudrv_ptr buf;
        fusor_status st = alloc(actx, bytes, &buf);
        if (st)
            return st;
        hostbuf[i] = buf;
        devbase[i] = buf + (cudrv_ptr)(elem0[i] - lo);
        size_t dense = (size_t)fusor_array_size(A) * fusor_dtype_size(A->dtype);
        if (i < ir->nparams || bytes != dense || fill_outputs) {
            st = mem_copy_htod(device, buf, lo, bytes, A->memory == FUSOR_MEMORY_PINNED, s);
            if (st)
                return st;
            *copied += (double)bytes;
        }
    }
    return FUSOR_OK;
}

fusor_status sched_gpu_copy_back(int device, fusor_array *const *arrays, const cudrv_ptr *hostbuf,
                                 int first, int n, cudrv_stream s, double *copied,
                                 int *need_sync) {
    for (int i = first; i < n; i++) {
        const fusor_array *A = arrays[i];
        if (!A || !hostbuf[i])
            continue;
        const char *lo, *hi;
        mem_array_extent(A, &lo, &hi);
        fusor_status st = mem_copy_dtoh(device, (void *)lo, hostbuf[i], (size_t)(hi - lo),
                                        A->memory == FUSOR_MEMORY_PINNED, s);
        if (st)
            return st;
        *copied += (double)(hi - lo);
        *need_sync = 1;
    }
    return FUSOR_OK;
}

static fusor_status run_alloc(void *g, size_t bytes, cudrv_ptr *out) {
    return tmp_alloc(g, bytes, out);
}

/* Device addresses of every array (sched_gpu_place); an `interior` stencil leaves the
 * output's edges as they were, so then outputs are copied in too. */
static fusor_status place_arrays(gpu_run *g) {
    return sched_gpu_place(g->kname, g->ir, g->arrays, g->dom->base, g->n, g->d->ordinal,
                           g->box_size != g->dom->size, g->cu, run_alloc, g, g->devbase,
                           g->hostbuf, &g->copied);
}

static void put64(unsigned char *img, size_t off, uint64_t v) { memcpy(img + off, &v, 8); }

int sched_gpu_index32_ok(const ir_domain *dom, const size_t *elsize, int64_t threads) {
    const int64_t lim = INT32_MAX;
    if (dom->size < 0 || threads < 1 || dom->size > lim || threads > lim ||
        dom->size + threads - 1 > lim)
        return 0;
    for (int i = 0; i < dom->narrays; i++) {
        if (!elsize[i])
            continue;
        int64_t far = (int64_t)elsize[i]; /* the end of the farthest element; <= lim */
        if (far > lim)
            return 0;
        for (int d = 0; d < dom->ndim; d++) {
            int64_t st = dom->strides[i][d], ext = dom->shape[d] - 1;
            if (ext <= 0 || st == 0)
                continue;
            if (st == INT64_MIN)
                return 0;
            st = st < 0 ? -st : st;
            if (st > lim || ext > (lim - far) / st) /* far + ext * st > lim, without overflow */
                return 0;
            far += ext * st;
        }
    }
    return 1;
}

/* A stencil kernel's one variant and its 2-D/3-D shape (device.h). */
static fusor_status choose_stencil(gpu_run *g, int p, pass_plan *pp) {
    char name[64];
    cg_pass_variant_name(name, sizeof name, p, CG_STENCIL);
    fusor_status st = sched_module_function(g->d, g->mod, name, &pp->fn);
    if (st)
        return st;
    pp->words = g->code->passes[p].words;
    sched_stencil_shape(g->dom->ndim, g->box, pp->words > 0, pp->fn->max_block, g->block_override,
                        g->grid_override, pp->block3, pp->grid3);
    pp->block = pp->block3[0] * pp->block3[1];
    int64_t blocks = (int64_t)pp->grid3[0] * pp->grid3[1] * pp->grid3[2];
    pp->grid = blocks > 2147483647 ? 2147483647 : (int)blocks;
    if (pp->words && blocks > 2147483647)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "kernel %s: too many blocks for a reduction",
                        g->kname);
    return FUSOR_OK;
}

fusor_status sched_gpu_choose(gpu_run *g, pass_plan *pp) {
    char used[SCHED_GPU_MAX_ARRAYS];
    for (int p = 0; p < g->plan->npasses; p++) {
        if (g->stencil) {
            fusor_status st = choose_stencil(g, p, &pp[p]);
            if (st)
                return st;
            continue;
        }
        cg_pass_arrays(g->ir, g->plan, p, used);
        int contig = 1, vec = g->code->passes[p].lanes > 1;
        int lanes = g->code->passes[p].lanes;
        for (int i = 0; i < g->n; i++) {
            if (!used[i] || !g->dom->base[i])
                continue;
            size_t es = fusor_dtype_size(array_dtype(g->ir, i));
            if (!contiguous(g->dom, i, es))
                contig = 0;
            if (g->devbase[i] % ((cudrv_ptr)lanes * es))
                vec = 0;
        }
        int variant = !contig ? CG_STRIDED : vec ? CG_VEC : CG_CONTIG;
        char name[64];
        cg_pass_variant_name(name, sizeof name, p, variant);
        fusor_status st = sched_module_function(g->d, g->mod, name, &pp[p].fn);
        if (st && variant == CG_VEC) { /* a module without the vector variant */
            fu_clear_error();
            variant = CG_CONTIG;
            cg_pass_variant_name(name, sizeof name, p, variant);
            st = sched_module_function(g->d, g->mod, name, &pp[p].fn);
        }
        if (st)
            return st;
        pp[p].words = g->code->passes[p].words;
        int l = variant == CG_VEC ? lanes : 1;
        sched_shape_choose(g->dom->size, l, pp[p].words > 0, pp[p].fn->occ_block,
                           pp[p].fn->occ_min_grid, g->d->sms, pp[p].fn->max_block,
                           g->block_override, g->grid_override, &pp[p].block, &pp[p].grid);
        /* The same launch with 32-bit index arithmetic where everything provably fits. */
        size_t elsize[SCHED_GPU_MAX_ARRAYS];
        for (int i = 0; i < g->n; i++)
            elsize[i] = used[i] && g->dom->base[i] ? fusor_dtype_size(array_dtype(g->ir, i)) : 0;
        sched_function *f32 = NULL;
        cg_pass_variant_name(name, sizeof name, p, variant + CG_CONTIG32);
        if (g->dom->narrays == g->n &&
            sched_gpu_index32_ok(g->dom, elsize, (int64_t)pp[p].grid * pp[p].block)) {
            if (sched_module_function(g->d, g->mod, name, &f32) == FUSOR_OK &&
                pp[p].block <= f32->max_block)
                pp[p].fn = f32;
            else
                fu_clear_error(); /* a module without 32-bit variants: the 64-bit one */
        }
        pp[p].block3[0] = pp[p].block;
        pp[p].grid3[0] = pp[p].grid;
        pp[p].block3[1] = pp[p].block3[2] = pp[p].grid3[1] = pp[p].grid3[2] = 1;
    }
    return FUSOR_OK;
}

fusor_status sched_gpu_launch_fn(const cudrv_table *t, const sched_device *d, cudrv_stream s,
                                 const char *kname, const sched_function *f, const int grid[3],
                                 const int block[3], cudrv_ptr pb, int *threads) {
    void *params[1] = {&pb};
    cudrv_result r = t->launch_kernel(f->fn, (unsigned)grid[0], (unsigned)grid[1],
                                      (unsigned)grid[2], (unsigned)block[0], (unsigned)block[1],
                                      (unsigned)block[2], 0, s, params, NULL);
    if (r == CUDRV_SUCCESS) {
        int64_t n = (int64_t)grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2];
        if (n > *threads)
            *threads = n > 2147483647 ? 2147483647 : (int)n;
        return FUSOR_OK;
    }
    char what[512];
    snprintf(what, sizeof what,
             "kernel %s on GPU %d (%s): launching %s (grid %dx%dx%d, block %dx%dx%d) failed",
             kname, d->ordinal, d->name, f->name, grid[0], grid[1], grid[2], block[0], block[1],
             block[2]);
    return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, what);
}

static fusor_status launch_3d(gpu_run *g, sched_function *f, const int grid[3], const int block[3],
                              cudrv_ptr pb) {
    return sched_gpu_launch_fn(g->t, g->d, g->cu, g->kname, f, grid, block, pb, &g->threads);
}

static fusor_status launch_one(gpu_run *g, sched_function *f, int grid, int block, cudrv_ptr pb) {
    int gr[3] = {grid, 1, 1}, bl[3] = {block, 1, 1};
    return launch_3d(g, f, gr, bl, pb);
}

size_t sched_gpu_partials_bytes(const gpu_run *g, const pass_plan *pp) {
    size_t bytes = 0;
    for (int p = 0; p < g->plan->npasses; p++)
        if (pp[p].words && (size_t)pp[p].grid * (size_t)pp[p].words * 8 > bytes)
            bytes = (size_t)pp[p].grid * (size_t)pp[p].words * 8;
    return bytes;
}

size_t sched_gpu_params_size(const gpu_run *g) {
    return g->stencil ? CG_GPU_STENCIL_PARAMS_SIZE(g->n) : CG_GPU_PARAMS_SIZE(g->n);
}

void sched_gpu_fill_params(const gpu_run *g, const pass_plan *pp, unsigned char *img,
                           cudrv_ptr dslots, cudrv_ptr dparts, cudrv_ptr douts) {
    int np = g->plan->npasses;
    size_t psz = sched_gpu_params_size(g);
    for (int p = 0; p <= np; p++) {
        unsigned char *b = img + (size_t)p * psz;
        put64(b, CG_GPU_OFF_N, (uint64_t)(g->stencil ? g->box_size : g->dom->size));
        put64(b, CG_GPU_OFF_NPARTIALS, p < np && pp[p].words ? (uint64_t)pp[p].grid : 0);
        put64(b, CG_GPU_OFF_SLOTS, dslots);
        put64(b, CG_GPU_OFF_PARTIALS, dparts);
        put64(b, CG_GPU_OFF_OUTS, douts);
        put64(b, CG_GPU_OFF_NDIM, (uint64_t)(g->dom->ndim ? g->dom->ndim : 1));
        for (int d = 0; d < CG_GPU_MAX_DIMS; d++)
            put64(b, CG_GPU_OFF_SHAPE + 8 * (size_t)d,
                  d < g->dom->ndim ? (uint64_t)(g->stencil ? g->box[d] : g->dom->shape[d])
                                   : (g->dom->ndim ? 0 : d == 0));
        for (int d = 0; g->stencil && d < g->dom->ndim && d < CG_GPU_MAX_DIMS; d++) {
            put64(b, CG_GPU_OFF_FULL(g->n) + 8 * (size_t)d, (uint64_t)g->dom->shape[d]);
            put64(b, CG_GPU_OFF_ORIGIN(g->n) + 8 * (size_t)d, (uint64_t)g->origin[d]);
        }
        for (int i = 0; i < g->n; i++) {
            for (int d = 0; d < g->dom->ndim && g->dom->base[i]; d++)
                put64(b, CG_GPU_OFF_STRIDES + 8 * ((size_t)i * 8 + (size_t)d),
                      (uint64_t)g->dom->strides[i][d]);
            put64(b, CG_GPU_OFF_ARRAYS(g->n) + 8 * (size_t)i, g->devbase[i]);
        }
    }
}

fusor_status sched_gpu_issue(gpu_run *g, const pass_plan *pp, cudrv_ptr dparams) {
    int np = g->plan->npasses;
    size_t psz = sched_gpu_params_size(g);
    fusor_status st = FUSOR_OK;
    for (int p = 0; !st && p < np; p++) {
        cudrv_ptr pb = dparams + (cudrv_ptr)p * psz;
        st = launch_3d(g, pp[p].fn, pp[p].grid3, pp[p].block3, pb);
    }
    if (!st && g->code->finish_kernel) { /* else the last pass's kernel ran the finish */
        sched_function *fin;
        st = sched_module_function(g->d, g->mod, CG_FINISH_NAME, &fin);
        if (!st)
            st = launch_one(g, fin, 1, 32, dparams + (cudrv_ptr)np * psz);
    }
    return st;
}

int sched_gpu_graphs_available(const cudrv_table *t) {
    return t->stream_begin_capture && t->stream_end_capture && t->graph_instantiate &&
           t->graph_launch && t->graph_exec_destroy && t->graph_destroy;
}

cudrv_graph_exec sched_gpu_capture(const cudrv_table *t, cudrv_stream s,
                                   fusor_status (*issue)(void *arg), void *arg) {
    cudrv_graph_exec exec = NULL;
    if (!sched_gpu_graphs_available(t) ||
        t->stream_begin_capture(s, CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL) != CUDRV_SUCCESS) {
        fu_clear_error();
        return NULL;
    }
    fusor_status st = issue(arg);
    cudrv_graph graph = NULL;
    cudrv_result r = t->stream_end_capture(s, &graph);
    if (!st && !r && graph && t->graph_instantiate(&exec, graph, 0) != CUDRV_SUCCESS)
        exec = NULL;
    if (graph)
        t->graph_destroy(graph);
    fu_clear_error();
    return exec;
}

/* The scalar outputs of a queued launch, copied back into pinned memory (the note and
 * the values share one block of it) and handed to the argument set at the stream's next
 * host barrier (stream.h), so that the worker never waits for them. */
typedef struct scalars_later {
    sched_after_gpu note;
    fusor_args *a;
    const ir_kernel *ir;
    size_t size;
    ir_value vals[]; /* noutputs */
} scalars_later;

static void scalars_hand_over(void *arg, int ok) {
    scalars_later *l = arg;
    if (ok)
        sched_args_put_scalars(l->a, l->ir, l->vals);
    mem_pinned_free(l, l->size);
}

/* Reads the scalar outputs (nouts words at douts) back: on a fusor stream's worker, later
 * (above), when pinned memory is there; else into outs now (pageable: the copy returns
 * when the values are there). */
static fusor_status read_scalars(gpu_run *g, ir_value *outs, cudrv_ptr douts, size_t nouts,
                                 int *later) {
    *later = 0;
    size_t size = sizeof(scalars_later) + nouts * 8;
    void *mem = NULL;
    if (g->cur && g->args && mem_pinned_alloc(size, &mem) != FUSOR_OK) {
        fu_clear_error(); /* no pinned memory: read them now */
        mem = NULL;
    }
    scalars_later *l = mem;
    if (l)
        *l = (scalars_later){.note = {.fn = scalars_hand_over, .arg = l}, .a = g->args,
                             .ir = g->ir, .size = size};
    cudrv_result r = g->t->memcpy_dtoh_async(l ? l->vals : outs, douts, nouts * 8, g->cu);
    if (r != CUDRV_SUCCESS) {
        if (l)
            mem_pinned_free(l, size);
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "reading the scalar outputs");
    }
    if (l)
        sched_stream_after_gpu(g->cur, &l->note);
    *later = l != NULL;
    return FUSOR_OK;
}

static void slot_hand_over(void *arg, int ok) {
    sched_outs_slot *o = arg;
    o->pending = 0;
    if (ok)
        sched_args_put_scalars(o->args, o->ir, o->host);
}

/* A queued launch whose kernels write its scalar outputs into `slot` (its argument set's):
 * they reach the argument set at the stream's next host barrier.  Launches of the same
 * argument set before that barrier share one hand-over, of the last one's values. */
static void hand_over_later(gpu_run *g, sched_outs_slot *slot) {
    slot->args = g->args;
    slot->ir = g->ir;
    if (slot->pending)
        return;
    slot->pending = 1;
    slot->note = (sched_after_gpu){.fn = slot_hand_over, .arg = slot};
    sched_stream_after_gpu(g->cur, &slot->note);
}

/* Everything after the arrays are placed: parameter blocks, kernels, results. */
fusor_status sched_gpu_run_kernels(gpu_run *g, const ir_value *slots, ir_value *outs,
                                   int *need_sync) {
    const ir_plan *plan = g->plan;
    int np = plan->npasses;
    /* small launches (most) plan and build their image on the stack */
    pass_plan pp_in[4];
    unsigned char img_in[2048];
    pass_plan *pp = np <= 4 ? memset(pp_in, 0, sizeof pp_in) : fu_calloc((size_t)np, sizeof *pp);
    if (!pp)
        return fu_oom("a GPU launch plan");
    fusor_status st = sched_gpu_choose(g, pp);
    /* No allocation and one copy per launch: the parameter blocks and the slots go up
     * together (one host image) into the stream's own buffer (sched_stream_scratch); the
     * scalar outputs and the reduction partials follow, written by the kernels.  Each
     * part starts on a 256-byte boundary. */
    size_t psz = sched_gpu_params_size(g);
    size_t nslots = (size_t)plan->nslots, nouts = (size_t)g->ir->noutputs;
    size_t params_bytes = psz * (size_t)(np + 1);
    size_t off_slots = (params_bytes + 255) & ~(size_t)255;
    /* after the slots, one ticket word per pass (codegen/gpu.h), 0 in the image; a pass's
     * kernel puts its ticket back to 0, so an image skipped as unchanged still holds 0s */
    size_t nwords = nslots + (size_t)np;
    size_t off_outs = (off_slots + nwords * 8 + 255) & ~(size_t)255;
    size_t off_parts = (off_outs + (g->code->has_finish ? (nouts ? nouts : 1) * 8 : 0) + 255) &
                       ~(size_t)255;
    size_t total = off_parts + (st ? 0 : sched_gpu_partials_bytes(g, pp));
    cudrv_ptr base = 0, dslots = 0, dparts = 0, douts = 0, dparams = 0;
    size_t len = off_slots + nwords * 8;
    unsigned char *img = NULL;
    if (!st && !(img = len <= sizeof img_in ? memset(img_in, 0, len) : fu_calloc(1, len)))
        st = fu_oom("GPU parameter blocks");
    sched_scratch *buf = NULL;
    sched_outs_slot *slot = NULL;
    if (!st)
        st = sched_stream_scratch(g->d->ordinal, g->cu, total, &buf);
    if (!st) {
        base = sched_scratch_ptr(buf);
        dparams = base;
        dslots = nslots ? base + off_slots : 0;
        douts = g->code->has_finish ? base + off_outs : 0;
        dparts = total > off_parts ? base + off_parts : 0;
        /* Scalar outputs go straight into pinned memory of the stream's (one block per
         * argument set): no copy back on the stream, and an unchanged image. */
        if (g->code->has_finish && g->d->unified && (!g->cur || g->args) &&
            sched_scratch_outs(buf, g->cur ? (const void *)g->args : NULL, (nouts ? nouts : 1) * 8,
                               &slot) != FUSOR_OK) {
            fu_clear_error(); /* no slot: copied back (read_scalars) */
            slot = NULL;
        }
        if (slot)
            douts = (cudrv_ptr)(uintptr_t)slot->host;
        sched_gpu_fill_params(g, pp, img, dslots, dparts, douts);
        memcpy(img + off_slots, slots, nslots * 8);
        st = sched_scratch_upload(buf, img, len);
    }
    if (!st)
        st = sched_gpu_issue(g, pp, dparams);
    if (!st && slot && !g->cur) { /* read after the synchronisation (sched_gpu_run_once) */
        g->outs_host = slot->host;
        *need_sync = 1;
    } else if (!st && slot) {
        hand_over_later(g, slot);
    } else if (!st && g->code->has_finish) {
        int later;
        st = read_scalars(g, outs, douts, nouts, &later);
        if (!st && !later)
            *need_sync = 1;
    }
    /* Host outputs, last: nothing is written to them unless every kernel succeeded. */
    if (!st)
        st = sched_gpu_copy_back(g->d->ordinal, g->arrays, g->hostbuf, g->ir->nparams, g->n,
                                 g->cu, &g->copied, need_sync);
    if (img != img_in)
        fu_free(img);
    if (pp != pp_in)
        fu_free(pp);
    return st;
}

/* ------------------------------------------------------------------ the hook */

static double env_rate(const char *name, double fallback) {
    const char *v = getenv(name);
    double x = v ? strtod(v, NULL) : 0;
    return x > 0 ? x : fallback;
}

static void machine_rates(const sched_device *d, sched_place_query *q) {
    double th = host_get_threads();
    double cpu_bw = 10e9 * th;
    q->cpu_bytes_per_s = env_rate("FUSOR_CPU_BANDWIDTH", cpu_bw < 200e9 ? cpu_bw : 200e9);
    q->cpu_ops_per_s = env_rate("FUSOR_CPU_OPS", 8e9 * th);
    q->link_bytes_per_s = env_rate("FUSOR_LINK_BANDWIDTH", 12e9);
    double peak = d ? sched_device_peak_bandwidth(d) : 0;
    q->gpu_bytes_per_s = peak > 0 ? 0.8 * peak : 500e9;
    double ops = d ? (double)d->sms * 128.0 * (double)d->clock_khz * 1e3 : 0;
    q->gpu_ops_per_s = ops > 0 ? ops : 10e12;
    q->gpu_overhead_s = 50e-6;
}

fusor_status sched_gpu_outputs_to_device(const ir_kernel *ir, ir_domain *dom,
                                         fusor_array **arrays, const int *allocated, int device) {
    int host_in = 0, dev_in = 0;
    for (int i = 0; i < ir->nparams; i++)
        if (arrays[i] && is_host(arrays[i]))
            host_in++;
        else if (arrays[i])
            dev_in++;
    if (!dev_in || host_in)
        return FUSOR_OK;
    for (int j = 0; j < ir->noutputs; j++) {
        int i = ir->nparams + j;
        if (!allocated[i] || !arrays[i] || !is_host(arrays[i]))
            continue;
        fusor_array *D;
        fusor_status st = mem_array_new_on(FUSOR_MEMORY_DEVICE, device, arrays[i]->dtype,
                                           arrays[i]->ndim, arrays[i]->shape, &D);
        if (st)
            return st;
        fusor_array_destroy(arrays[i]);
        arrays[i] = D;
        if (dom)
            dom->base[i] = D->data;
    }
    return FUSOR_OK;
}

fusor_status sched_gpu_begin(gpu_run *g, fusor_kernel *k, fusor_args *a, sched_spec *spec,
                             const ir_domain *dom, fusor_array **arrays, int device) {
    memset(g, 0, sizeof *g);
    fusor_status st;
    g->t = sched_cuda(&st);
    if (!g->t)
        return st;
    if ((st = sched_device_get(device, &g->d)) || (st = sched_device_activate(g->d)) ||
        (st = sched_gpu_load(k->ctx, spec, g->d, &g->code, &g->mod)))
        return st;
    g->kname = k->name;
    g->ir = spec->ir;
    g->plan = spec->plan;
    g->dom = dom;
    g->arrays = arrays;
    g->n = dom->narrays;
    g->block_override = a->gpu_block;
    g->grid_override = a->gpu_grid;
    g->box_size = dom->size;
    if (g->code->stencil) { /* the box: the domain less any interior halo */
        int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
        if (!ir_interior_halo(g->ir, lo, hi))
            memset(lo, 0, sizeof lo), memset(hi, 0, sizeof hi);
        g->stencil = 1;
        g->box_size = 1;
        for (int d = 0; d < dom->ndim; d++) {
            g->box[d] = dom->shape[d] - lo[d] - hi[d];
            if (g->box[d] < 0)
                g->box[d] = 0;
            g->origin[d] = lo[d];
            g->box_size *= g->box[d];
        }
    }
    if (g->n > SCHED_GPU_MAX_ARRAYS)
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "kernel %s has more than %d parameters", k->name,
                        SCHED_GPU_MAX_ARRAYS);
    if (g->n <= GPU_RUN_INLINE) { /* zeroed by the memset above */
        g->devbase = g->devbase_in;
        g->hostbuf = g->hostbuf_in;
        g->tmp = g->tmp_in;
        return FUSOR_OK;
    }
    g->devbase = fu_calloc((size_t)g->n + 1, sizeof *g->devbase);
    g->hostbuf = fu_calloc((size_t)g->n + 1, sizeof *g->hostbuf);
    g->tmp = fu_calloc((size_t)g->n + 8, sizeof *g->tmp);
    if (!g->devbase || !g->hostbuf || !g->tmp) {
        sched_gpu_end(g);
        return fu_oom("a GPU launch");
    }
    return FUSOR_OK;
}

void sched_gpu_end(gpu_run *g) {
    if (g->devbase != g->devbase_in) {
        fu_free(g->devbase);
        fu_free(g->hostbuf);
        fu_free(g->tmp);
    }
    g->devbase = g->hostbuf = NULL;
    g->tmp = NULL;
}

/* ------------------------------------------------------------------ chunked runs
 *
 * A one-pass element-wise kernel over host arrays, all laid out contiguously in the
 * domain's order, runs in chunks of the flat index so that copies overlap with compute:
 * chunk c's inputs are copied in, its kernel runs and its outputs are copied out on one
 * of two CUDA streams, alternately, so the next chunk's copy in runs beside this chunk's
 * kernel and the previous chunk's copy out (the copy engines and the SMs work at once).
 * Outputs are written chunk by chunk: a fault of the device half-way leaves the chunks
 * before it written (argument errors are all found before anything runs). */

/* Bytes per array and chunk below which chunking is not worth it: $FUSOR_GPU_CHUNK_BYTES
 * (0 turns chunking off), else 16 MiB. */
static size_t chunk_bytes(void) {
    const char *v = getenv("FUSOR_GPU_CHUNK_BYTES");
    if (!v)
        return (size_t)16 << 20;
    uint64_t b = mem_parse_bytes(v);
    return (size_t)b;
}

/* The chunk count for g, or 0 when the run is not chunked. */
static int64_t chunk_count(const gpu_run *g) {
    if (g->stencil || g->plan->npasses != 1 || g->code->has_finish || g->code->passes[0].words ||
        g->dom->size < 2)
        return 0;
    size_t widest = 0;
    int host = 0;
    for (int i = 0; i < g->n; i++) {
        const fusor_array *A = g->arrays[i];
        if (!A || !g->dom->base[i])
            continue;
        size_t es = fusor_dtype_size(array_dtype(g->ir, i));
        if (!contiguous(g->dom, i, es) || fusor_array_size(A) != g->dom->size)
            return 0; /* broadcast or strided: the flat index does not address it */
        host |= is_host(A);
        widest = es > widest ? es : widest;
    }
    size_t per = host && widest ? chunk_bytes() : 0; /* the environment, only now */
    int64_t chunks = per ? (int64_t)((size_t)g->dom->size * widest / per) : 0;
    return chunks < 2 ? 0 : chunks > 64 ? 64 : chunks;
}

static fusor_status run_chunked(gpu_run *g, const ir_value *slots, int64_t nchunks) {
    const cudrv_table *t = g->t;
    int dev = g->d->ordinal, np = 1;
    pass_plan pp;
    memset(&pp, 0, sizeof pp);
    /* Kernel choice from whole-array buffers: chunk starts keep the alignment below. */
    int64_t n = g->dom->size, per = (n + nchunks - 1) / nchunks;
    per = (per + 15) / 16 * 16; /* whole vectors: chunk starts stay aligned */
    nchunks = (n + per - 1) / per;
    fusor_status st = FUSOR_OK;
    for (int i = 0; !st && i < g->n; i++) {
        fusor_array *A = g->arrays[i];
        if (!A || !g->dom->base[i] || !is_host(A)) {
            if (A && g->dom->base[i])
                g->devbase[i] = (cudrv_ptr)(uintptr_t)g->dom->base[i];
            continue;
        }
        size_t bytes = (size_t)n * fusor_dtype_size(A->dtype);
        st = tmp_alloc(g, bytes, &g->hostbuf[i]);
        g->devbase[i] = g->hostbuf[i];
    }
    if (!st)
        st = sched_gpu_choose(g, &pp);
    size_t nslots = (size_t)g->plan->nslots, psz = sched_gpu_params_size(g);
    cudrv_ptr dslots = 0, dparams = 0;
    unsigned char *img = NULL;
    if (!st)
        st = tmp_alloc(g, nslots * 8, &dslots);
    if (!st)
        st = tmp_alloc(g, psz * (size_t)(np + 1) * (size_t)nchunks, &dparams);
    if (!st && !(img = fu_calloc((size_t)((np + 1) * nchunks), psz)))
        st = fu_oom("GPU parameter blocks");
    /* One parameter block per chunk: its element count and shifted array addresses, as a
     * flat 1-D run (every array is contiguous in the domain's order). */
    ir_domain flat = *g->dom;
    int64_t strides[SCHED_GPU_MAX_ARRAYS][FUSOR_MAX_DIMS];
    flat.ndim = 1;
    flat.strides = strides;
    cudrv_ptr *whole = NULL;
    pass_plan *cps = NULL; /* each chunk's launch shape */
    if (!st && (!(whole = fu_malloc(sizeof(cudrv_ptr) * (size_t)g->n)) ||
                !(cps = fu_calloc((size_t)nchunks, sizeof *cps))))
        st = fu_oom("a chunked GPU launch");
    for (int i = 0; !st && i < g->n; i++) {
        strides[i][0] = (int64_t)fusor_dtype_size(array_dtype(g->ir, i));
        whole[i] = g->devbase[i];
    }
    const ir_domain *saved = g->dom;
    for (int64_t c = 0; !st && c < nchunks; c++) {
        int64_t lo = c * per, cn = n - lo < per ? n - lo : per;
        flat.shape[0] = cn;
        flat.size = cn;
        for (int i = 0; i < g->n; i++)
            g->devbase[i] = whole[i] ? whole[i] + (cudrv_ptr)(lo * strides[i][0]) : 0;
        pass_plan *cp = &cps[c];
        *cp = pp;
        int lanes = strstr(cp->fn->name, "_vec") ? g->code->passes[0].lanes : 1;
        g->dom = &flat;
        sched_shape_choose(cn, lanes, 0, cp->fn->occ_block, cp->fn->occ_min_grid, g->d->sms,
                           cp->fn->max_block, g->block_override, g->grid_override, &cp->block,
                           &cp->grid);
        cp->block3[0] = cp->block;
        cp->grid3[0] = cp->grid;
        sched_gpu_fill_params(g, cp, img + (size_t)c * (size_t)(np + 1) * psz, dslots, 0, 0);
        g->dom = saved;
    }
    for (int i = 0; whole && i < g->n; i++)
        g->devbase[i] = whole[i];
    cudrv_result r = CUDRV_SUCCESS;
    if (!st && (r = t->memcpy_htod_async(dslots, slots, nslots * 8, g->cu)) == CUDRV_SUCCESS)
        r = t->memcpy_htod_async(dparams, img, psz * (size_t)(np + 1) * (size_t)nchunks, g->cu);
    if (!st && r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying launch parameters");
    /* The second stream starts after the parameters are on the device, and the run's
     * stream waits for its last chunk at the end. */
    cudrv_stream s2 = NULL, main_cu = g->cu;
    cudrv_event ev = NULL;
    if (!st)
        st = sched_sync_stream_get(dev, &s2);
    if (!st && (r = t->event_create(&ev, CUDRV_EVENT_DISABLE_TIMING)) == CUDRV_SUCCESS &&
        (r = t->event_record(ev, main_cu)) == CUDRV_SUCCESS)
        r = t->stream_wait_event(s2, ev, 0);
    if (!st && r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "ordering a chunked launch");
    cudrv_stream sv[2] = {main_cu, s2};
    int64_t pending = -1; /* the chunk whose outputs are still to be copied out */
    for (int64_t c = 0; !st && c <= nchunks; c++) {
        if (c < nchunks) { /* in and compute */
            int64_t lo = c * per, cn = n - lo < per ? n - lo : per;
            g->cu = sv[c % 2];
            for (int i = 0; !st && i < g->ir->nparams; i++) {
                fusor_array *A = g->arrays[i];
                if (!A || !g->hostbuf[i])
                    continue;
                size_t es = fusor_dtype_size(A->dtype);
                st = mem_copy_htod(dev, g->hostbuf[i] + (cudrv_ptr)(lo * (int64_t)es),
                                   g->dom->base[i] + lo * (int64_t)es, (size_t)cn * es,
                                   A->memory == FUSOR_MEMORY_PINNED, g->cu);
                g->copied += (double)cn * (double)es;
            }
            if (!st)
                st = sched_gpu_issue(g, &cps[c], dparams + (cudrv_ptr)c * (cudrv_ptr)(np + 1) * psz);
        }
        if (!st && pending >= 0) { /* out, one chunk behind */
            int64_t lo = pending * per, cn = n - lo < per ? n - lo : per;
            g->cu = sv[pending % 2];
            for (int i = g->ir->nparams; !st && i < g->n; i++) {
                fusor_array *A = g->arrays[i];
                if (!A || !g->hostbuf[i])
                    continue;
                size_t es = fusor_dtype_size(A->dtype);
                st = mem_copy_dtoh(dev, g->dom->base[i] + lo * (int64_t)es,
                                   g->hostbuf[i] + (cudrv_ptr)(lo * (int64_t)es), (size_t)cn * es,
                                   A->memory == FUSOR_MEMORY_PINNED, g->cu);
                g->copied += (double)cn * (double)es;
            }
        }
        pending = c < nchunks ? c : -1;
    }
    g->cu = main_cu;
    if (ev) {
        if (!(r = t->event_record(ev, s2)))
            r = t->stream_wait_event(main_cu, ev, 0);
        if (!st && r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "ordering a chunked launch");
        t->stream_synchronize(s2);
        t->event_destroy(ev);
    }
    if (s2)
        sched_sync_stream_put(dev, s2);
    fu_free(cps);
    fu_free(whole);
    fu_free(img);
    return st;
}

fusor_status sched_gpu_step_end(const cudrv_table *t, fusor_stream *cur, cudrv_stream s,
                                int need_sync, fusor_status st) {
    if (!cur) {
        cudrv_result r = t->stream_synchronize(s);
        if (!st && r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a GPU kernel failed");
        return st;
    }
    sched_stream_gpu_issued(cur);
    if (need_sync || st) {
        fusor_status s2 = sched_stream_host_barrier(cur);
        if (!st)
            st = s2;
    }
    return st;
}

fusor_status sched_gpu_run_once(fusor_kernel *k, fusor_args *a, sched_spec *spec, ir_domain *dom,
                                fusor_array **arrays, ir_value *slots, ir_value *outs, int device,
                                fusor_stream *cur, int *threads) {
    gpu_run g;
    fusor_status st = sched_gpu_begin(&g, k, a, spec, dom, arrays, device);
    if (st)
        return st;
    int pooled = !cur;
    g.cur = cur;
    g.args = a;
    st = pooled ? sched_sync_stream_get(device, &g.cu) : sched_stream_cu(cur, device, &g.cu);
    int need_sync = 0;
    int64_t chunks = st ? 0 : chunk_count(&g);
    if (!st && chunks) {
        st = run_chunked(&g, slots, chunks);
        need_sync = 1;
    } else {
        if (!st)
            st = place_arrays(&g);
        if (!st)
            st = sched_gpu_run_kernels(&g, slots, outs, &need_sync);
    }
    *threads = g.threads;
    tmp_free_all(&g);
    if (g.cu) {
        st = sched_gpu_step_end(g.t, cur, g.cu, need_sync, st);
        if (!st && g.outs_host) /* the kernels wrote them there; the stream is synchronised */
            memcpy(outs, g.outs_host, (size_t)g.ir->noutputs * 8);
        if (pooled && !st) /* step_end synchronised it on this thread, in its context */
            sched_sync_stream_put_synced(device, g.cu);
        else if (pooled)
            sched_sync_stream_put(device, g.cu);
    }
    a->placement.copy_bytes = g.copied;
    sched_gpu_end(&g);
    return st;
}

fusor_status sched_gpu_wait_default(fusor_context *ctx) {
    if (sched_stream_current())
        return FUSOR_OK;
    fusor_stream *ds;
    fusor_status st = sched_context_stream(ctx, 0, &ds);
    if (!st && ds)
        st = fusor_stream_synchronize(ds);
    return st;
}

fusor_target sched_gpu_target(const fusor_context *c) {
    fusor_target target = c->target;
    if (target == FUSOR_TARGET_AUTO) { /* FUSOR_TARGET decides for contexts left on AUTO */
        const char *e = getenv("FUSOR_TARGET");
        if (e && !strcmp(e, "gpu"))
            target = FUSOR_TARGET_GPU;
        if (e && !strcmp(e, "cpu"))
            target = FUSOR_TARGET_CPU;
    }
    return target;
}

fusor_status sched_gpu_decide(fusor_kernel *k, fusor_args *a, sched_spec *spec,
                              const ir_domain *dom, fusor_array **arrays, int may_use_gpu,
                              sched_place_result *r) {
    const ir_kernel *ir = spec->ir;
    int n = dom->narrays, any_gpu_memory = 0, on_device = 0;
    sched_place_array pa[SCHED_GPU_MAX_ARRAYS];
    int na = 0;
    for (int i = 0; i < n && na < SCHED_GPU_MAX_ARRAYS; i++) {
        const fusor_array *A = arrays[i];
        if (!A || !dom->base[i])
            continue;
        const char *lo, *hi;
        mem_array_extent(A, &lo, &hi);
        int in_place = 0;
        for (int j = ir->nparams; i < ir->nparams && j < n; j++)
            in_place |= arrays[j] == A;
        pa[na++] = (sched_place_array){.name = array_name(ir, i),
                                       .memory = A->memory,
                                       .device = A->device,
                                       .bytes = hi - lo,
                                       .is_input = i < ir->nparams,
                                       .is_output = i >= ir->nparams || in_place};
        any_gpu_memory |= !is_host(A);
        on_device |= A->memory == FUSOR_MEMORY_DEVICE;
    }
    fusor_target target = sched_gpu_target(k->ctx);
    sched_place_query q = {
        .target = target, .default_device = 0, .narrays = na, .arrays = pa, .elements = dom->size};
    if (!may_use_gpu) {
        q.target = FUSOR_TARGET_CPU;
        q.host_only = SCHED_HOST_ONLY;
    } else if (q.target != FUSOR_TARGET_CPU || any_gpu_memory) {
        /* Only a launch that may go to a GPU asks which (FUSOR_DEVICE is read here). */
        q.default_device = sched_context_device(k->ctx);
        sched_cuda_state cs = sched_cuda_state_get(&q.gpu_reason);
        q.gpu_usable = cs == SCHED_CUDA_READY;
    }
    sched_device *d = NULL;
    if (q.gpu_usable && sched_device_get(q.default_device, &d)) {
        q.gpu_usable = 0; /* enumeration failed (or no such device): its message is the reason */
        q.gpu_reason = fusor_last_error();
    }
    if (q.gpu_usable && q.target == FUSOR_TARGET_AUTO && !any_gpu_memory)
        q.ops_per_element = sched_ops_per_element(ir);
    if (q.gpu_usable && q.target == FUSOR_TARGET_AUTO && !on_device)
        machine_rates(d, &q); /* the cost model's (the environment is read for it only) */
    sched_place(&q, r);
    a->placement.target = r->where;
    a->placement.device = r->device;
    a->placement.copy_bytes = 0;
    size_t len = strnlen(r->reason, sizeof a->placement.reason - 1);
    memcpy(a->placement.reason, r->reason, len);
    a->placement.reason[len] = 0;
    if (r->status)
        return fu_error(r->status, "kernel %s: %s", k->name, r->reason);
    return FUSOR_OK;
}

fusor_status sched_gpu_launch(fusor_kernel *k, fusor_args *a, sched_spec *spec, ir_domain *dom,
                              fusor_array **arrays, int *allocated, ir_value *slots, ir_value *outs,
                              int may_use_gpu, int *ran_gpu, int *threads) {
    *ran_gpu = 0;
    fusor_stream *cur = sched_stream_current();
    /* fusor_launch is fusor_launch_async on the default stream plus a wait */
    fusor_status st = sched_gpu_wait_default(k->ctx);
    sched_place_result r;
    if (!st)
        st = sched_gpu_decide(k, a, spec, dom, arrays, may_use_gpu, &r);
    if (st)
        return st;
    if (r.where == FUSOR_TARGET_CPU)
        return cur ? sched_stream_host_barrier(cur) : FUSOR_OK;

    if ((st = sched_gpu_outputs_to_device(spec->ir, dom, arrays, allocated, r.device)))
        return st;
    int gpu_threads = 0;
    st = sched_gpu_run_once(k, a, spec, dom, arrays, slots, outs, r.device, cur, &gpu_threads);
    if (!st) {
        *ran_gpu = 1;
        *threads = gpu_threads;
    }
    return st;
}

fusor_status sched_gpu_no_device(const fusor_kernel *k) {
    const char *why;
    sched_cuda_state_get(&why);
    return fu_error(FUSOR_ERROR_NO_DEVICE, "kernel %s: the GPU target was requested, but %s",
                    k->name, why);
}
