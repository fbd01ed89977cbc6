/*
 * gpuprep.c — prepared launches on the GPU: set up once, then a step is a replay.
 *
 * A prepared launch (launch.c) decides its placement at its first run and keeps it.  When
 * that is a GPU and every array it uses lives there, the first run with a binding (the
 * device addresses of its arrays: a ping-pong loop has two) chooses the kernels, writes
 * their parameter blocks to device memory and captures the step — every pass, reduction
 * and finish kernel — as a CUDA Graph.  A later step with that binding uploads the scalar
 * parameters only when they changed and launches the graph: one driver call, no
 * allocation, no lookup.  Without the graph entry points (or when capture fails) the step
 * launches the same kernels one by one from the same parameter blocks.
 *
 * Host arrays on the GPU are copied every step anyway: such a prepared launch runs like
 * fusor_launch (gpurun.c) each time.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "devpool.h"
#include "error.h"
#include "gpuprep.h"
#include "gpurun_impl.h"
#include "stream.h"

/* Bindings kept per prepared launch: a ping-pong loop needs two. */
#define PREP_BINDINGS 4

typedef struct prep_binding {
    cudrv_ptr *devbase; /* [n], the key */
    pass_plan *pp;      /* [npasses] */
    cudrv_ptr dparams;  /* npasses + 1 parameter blocks */
    cudrv_graph_exec exec;
    uint64_t used;
} prep_binding;

struct sched_gpu_prep {
    int decided;
    fusor_target where;
    int device;
    fusor_placement placement; /* recorded in the argument set by every step */
    int host_arrays;           /* host arrays: every step is a whole run */
    int ready;                 /* g, own and the shared buffers exist */
    gpu_run g;
    cudrv_stream own; /* synchronous steps and captures */
    cudrv_ptr dslots, dparts, douts;
    size_t nslots, parts_bytes, psz;
    ir_value *uploaded; /* the slots on the device, to skip unchanged uploads */
    int uploaded_valid;
    prep_binding b[PREP_BINDINGS];
    int nb;
    uint64_t clock;
    int threads;
    long captures, replays; /* for tests */
};

static int graphs_available(const cudrv_table *t) {
    return t->stream_begin_capture && t->stream_end_capture && t->graph_instantiate &&
           t->graph_launch && t->graph_exec_destroy && t->graph_destroy;
}

void sched_gpu_prep_free(sched_gpu_prep *p) {
    if (!p)
        return;
    if (p->ready) {
        const cudrv_table *t = p->g.t;
        int dev = p->g.d->ordinal;
        if (!sched_device_activate(p->g.d)) {
            t->stream_synchronize(p->own);
            for (int i = 0; i < p->nb; i++) {
                if (p->b[i].exec)
                    t->graph_exec_destroy(p->b[i].exec);
                mem_dev_free(dev, p->b[i].dparams, p->psz * (size_t)(p->g.plan->npasses + 1),
                             p->own);
            }
            mem_dev_free(dev, p->dslots, p->nslots * 8, p->own);
            mem_dev_free(dev, p->dparts, p->parts_bytes, p->own);
            mem_dev_free(dev, p->douts, (size_t)(p->g.ir->noutputs + 1) * 8, p->own);
            t->stream_synchronize(p->own);
            sched_sync_stream_put(dev, p->own);
        }
        fu_clear_error();
        sched_gpu_end(&p->g);
    }
    for (int i = 0; i < p->nb; i++) {
        fu_free(p->b[i].devbase);
        fu_free(p->b[i].pp);
    }
    fu_free(p->uploaded);
    fu_free(p);
}

/* The device, module and the buffers every binding shares, at the first GPU step. */
static fusor_status prep_setup(sched_gpu_prep *p, fusor_kernel *k, fusor_args *a,
                               sched_spec *spec, ir_domain *dom, fusor_array **arrays) {
    fusor_status st = sched_gpu_begin(&p->g, k, a, spec, dom, arrays, p->device);
    if (st)
        return st;
    if ((st = sched_sync_stream_get(p->device, &p->own))) {
        sched_gpu_end(&p->g);
        return st;
    }
    p->g.cu = p->own;
    p->nslots = (size_t)spec->plan->nslots;
    p->psz = sched_gpu_params_size(&p->g);
    p->uploaded = fu_calloc(p->nslots ? p->nslots : 1, sizeof(ir_value));
    if (!p->uploaded)
        st = fu_oom("a prepared GPU launch");
    if (!st)
        st = mem_dev_alloc(p->device, p->nslots * 8, p->own, &p->dslots);
    if (!st && p->g.code->has_finish)
        st = mem_dev_alloc(p->device, (size_t)(spec->ir->noutputs + 1) * 8, p->own, &p->douts);
    p->ready = 1; /* from here sched_gpu_prep_free releases what exists */
    return st;
}

/* The binding of these arrays: found, or built (kernels, parameter blocks, graph). */
static fusor_status prep_binding_get(sched_gpu_prep *p, prep_binding **out) {
    gpu_run *g = &p->g;
    int n = g->n, np = g->plan->npasses;
    for (int i = 0; i < n; i++)
        g->devbase[i] = (cudrv_ptr)(uintptr_t)g->dom->base[i];
    for (int i = 0; i < p->nb; i++)
        if (!memcmp(p->b[i].devbase, g->devbase, sizeof(cudrv_ptr) * (size_t)n)) {
            p->b[i].used = ++p->clock;
            *out = &p->b[i];
            return FUSOR_OK;
        }
    if (p->nb == PREP_BINDINGS) { /* more arrangements than a ping-pong: drop the oldest */
        int old = 0;
        for (int i = 1; i < p->nb; i++)
            if (p->b[i].used < p->b[old].used)
                old = i;
        g->t->stream_synchronize(p->own);
        if (p->b[old].exec)
            g->t->graph_exec_destroy(p->b[old].exec);
        mem_dev_free(p->device, p->b[old].dparams, p->psz * (size_t)(np + 1), p->own);
        fu_free(p->b[old].devbase);
        fu_free(p->b[old].pp);
        p->b[old] = p->b[--p->nb];
    }
    prep_binding *b = &p->b[p->nb];
    memset(b, 0, sizeof *b);
    b->devbase = fu_malloc(sizeof(cudrv_ptr) * (size_t)(n ? n : 1));
    b->pp = fu_calloc((size_t)(np ? np : 1), sizeof(pass_plan));
    unsigned char *img = fu_calloc((size_t)(np + 1), p->psz);
    fusor_status st = b->devbase && b->pp && img ? FUSOR_OK : fu_oom("a prepared GPU binding");
    if (!st) {
        memcpy(b->devbase, g->devbase, sizeof(cudrv_ptr) * (size_t)n);
        st = sched_gpu_choose(g, b->pp);
    }
    size_t parts = st ? 0 : sched_gpu_partials_bytes(g, b->pp);
    if (!st && parts > p->parts_bytes) { /* the same shape in every binding: once */
        if (p->dparts)
            mem_dev_free(p->device, p->dparts, p->parts_bytes, p->own);
        p->dparts = 0;
        p->parts_bytes = 0;
        st = mem_dev_alloc(p->device, parts, p->own, &p->dparts);
        if (!st)
            p->parts_bytes = parts;
    }
    if (!st)
        st = mem_dev_alloc(p->device, p->psz * (size_t)(np + 1), p->own, &b->dparams);
    if (!st) {
        sched_gpu_fill_params(g, b->pp, img, p->dslots, p->dparts, p->douts);
        cudrv_result r = g->t->memcpy_htod_async(b->dparams, img, p->psz * (size_t)(np + 1),
                                                 p->own);
        if (!r)
            r = g->t->stream_synchronize(p->own); /* steps may run on other streams */
        if (r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "writing a prepared launch's parameters");
    }
    fu_free(img);
    if (st) {
        if (b->dparams)
            mem_dev_free(p->device, b->dparams, p->psz * (size_t)(np + 1), p->own);
        fu_free(b->devbase);
        fu_free(b->pp);
        return st;
    }
    /* The step as a graph; any failure leaves direct launches, which work everywhere. */
    const cudrv_table *t = g->t;
    if (graphs_available(t) &&
        t->stream_begin_capture(p->own, CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL) == CUDRV_SUCCESS) {
        g->cu = p->own;
        fusor_status cst = sched_gpu_issue(g, b->pp, b->dparams);
        cudrv_graph graph = NULL;
        cudrv_result r = t->stream_end_capture(p->own, &graph);
        if (!cst && !r && graph && t->graph_instantiate(&b->exec, graph, 0) != CUDRV_SUCCESS)
            b->exec = NULL;
        if (graph)
            t->graph_destroy(graph);
        if (b->exec)
            p->captures++;
        fu_clear_error();
    }
    b->used = ++p->clock;
    p->nb++;
    *out = b;
    return FUSOR_OK;
}

/* One step on device-resident arrays. */
static fusor_status prep_step(sched_gpu_prep *p, fusor_stream *cur, ir_value *slots,
                              ir_value *outs) {
    gpu_run *g = &p->g;
    fusor_status st = sched_device_activate(g->d);
    prep_binding *b = NULL;
    if (!st)
        st = prep_binding_get(p, &b);
    cudrv_stream s = p->own;
    if (!st && cur)
        st = sched_stream_cu(cur, p->device, &s);
    if (st)
        return st;
    const cudrv_table *t = g->t;
    cudrv_result r = CUDRV_SUCCESS;
    if (!p->uploaded_valid || memcmp(p->uploaded, slots, p->nslots * 8)) {
        r = t->memcpy_htod_async(p->dslots, slots, p->nslots * 8, s);
        memcpy(p->uploaded, slots, p->nslots * 8);
        p->uploaded_valid = !r;
    }
    if (!r && b->exec) {
        r = t->graph_launch(b->exec, s);
        p->replays++;
    } else if (!r) {
        g->cu = s;
        st = sched_gpu_issue(g, b->pp, b->dparams);
    }
    int need_sync = 0;
    if (!st && !r && g->code->has_finish) {
        r = t->memcpy_dtoh_async(outs, p->douts, (size_t)g->ir->noutputs * 8, s);
        need_sync = 1;
    }
    if (!st && r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a prepared GPU step");
    if (!cur) {
        r = t->stream_synchronize(s);
        if (!st && r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a GPU kernel failed");
    } else {
        sched_stream_gpu_issued(cur);
        if (need_sync || st) {
            fusor_status s2 = sched_stream_host_barrier(cur);
            if (!st)
                st = s2;
        }
    }
    if (st)
        p->uploaded_valid = 0;
    return st;
}

fusor_status sched_gpu_prep_run(sched_gpu_prep **state, fusor_kernel *k, fusor_args *a,
                                sched_spec *spec, ir_domain *dom, fusor_array **arrays,
                                ir_value *slots, ir_value *outs, int *ran_gpu, int *threads) {
    *ran_gpu = 0;
    fusor_stream *cur = sched_stream_current();
    fusor_status st = sched_gpu_wait_default(k->ctx);
    if (st)
        return st;
    sched_gpu_prep *p = *state;
    if (!p) {
        sched_place_result r;
        if ((st = sched_gpu_decide(k, a, spec, dom, arrays, 1, &r)))
            return st; /* decided again next time */
        if (!(p = fu_calloc(1, sizeof *p)))
            return fu_oom("a prepared GPU launch");
        p->decided = 1;
        p->where = r.where;
        p->device = r.device;
        p->placement = a->placement;
        for (int i = 0; i < dom->narrays; i++)
            if (arrays[i] && dom->base[i] && (arrays[i]->memory == FUSOR_MEMORY_HOST ||
                                              arrays[i]->memory == FUSOR_MEMORY_PINNED))
                p->host_arrays = 1;
        *state = p;
    } else {
        a->placement = p->placement;
    }
    if (p->where == FUSOR_TARGET_CPU)
        return cur ? sched_stream_host_barrier(cur) : FUSOR_OK;
    if (p->host_arrays) {
        st = sched_gpu_run_once(k, a, spec, dom, arrays, slots, outs, p->device, cur, threads);
        *ran_gpu = !st;
        return st;
    }
    if (!p->ready && (st = prep_setup(p, k, a, spec, dom, arrays)))
        return st;
    p->g.threads = 0;
    st = prep_step(p, cur, slots, outs);
    if (p->g.threads)
        p->threads = p->g.threads;
    *threads = p->threads;
    *ran_gpu = !st;
    return st;
}

void sched_gpu_prep_counts(const sched_gpu_prep *p, long *captures, long *replays) {
    *captures = p ? p->captures : 0;
    *replays = p ? p->replays : 0;
}
