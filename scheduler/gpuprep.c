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
#include "staged.h"
#include "stream.h"

/* Bindings kept per prepared launch: a ping-pong loop needs two. */
#define PREP_BINDINGS 4

typedef struct prep_binding {
    uint64_t gen;       /* unique: a sequence's graph names the bindings it was made of */
    cudrv_ptr *devbase; /* [n], the key */
    pass_plan *pp;      /* [npasses] */
    cudrv_ptr dparams;  /* npasses + 1 parameter blocks */
    cudrv_graph_exec exec;
    uint64_t used;
} prep_binding;

struct sched_gpu_prep {
    fusor_target where;
    int device;
    fusor_placement placement; /* recorded in the argument set by every step */
    int host_arrays;           /* host arrays: every step is a whole run */
    int ready;                 /* g, own and the shared buffers exist */
    gpu_run g;
    cudrv_stream own; /* synchronous steps and captures */
    cudrv_ptr dslots, dparts, douts;
    /* the scalar outputs' memory when it is page-locked host memory (douts is then its
     * address): the kernels write them there, read after the step's synchronisation */
    void *outs_host;
    size_t nslots, parts_bytes, psz;
    ir_value *uploaded; /* the slots on the device, to skip unchanged uploads */
    int uploaded_valid;
    prep_binding b[PREP_BINDINGS];
    int nb;
    uint64_t clock;
    int threads;
    long captures, replays; /* for tests */
};

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
            mem_dev_free(dev, p->dslots, (p->nslots + (size_t)p->g.plan->npasses) * 8, p->own);
            mem_dev_free(dev, p->dparts, p->parts_bytes, p->own);
            if (p->outs_host)
                t->mem_free_host(p->outs_host);
            else
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

/* Where the kernels write the scalar outputs: page-locked host memory under unified
 * addressing (no copy back per step), else device memory. */
static fusor_status prep_outs_alloc(sched_gpu_prep *p, size_t bytes) {
    if (p->g.d->unified && p->g.t->mem_alloc_host(&p->outs_host, bytes) == CUDRV_SUCCESS) {
        p->douts = (cudrv_ptr)(uintptr_t)p->outs_host;
        return FUSOR_OK;
    }
    p->outs_host = NULL;
    return mem_dev_alloc(p->device, bytes, p->own, &p->douts);
}

/* After p's kernels are queued on s: its scalar outputs' copy into outs, when they are in
 * device memory (else the kernels wrote them into pinned memory: nothing to queue). */
static cudrv_result prep_outs_queue(const sched_gpu_prep *p, ir_value *outs, cudrv_stream s) {
    if (p->outs_host)
        return CUDRV_SUCCESS;
    return p->g.t->memcpy_dtoh_async(outs, p->douts, (size_t)p->g.ir->noutputs * 8, s);
}

/* Once the step has synchronised: the scalar outputs the kernels wrote to pinned memory. */
static void prep_outs_take(const sched_gpu_prep *p, ir_value *outs) {
    if (p->outs_host)
        memcpy(outs, p->outs_host, (size_t)p->g.ir->noutputs * 8);
}

/* The device, module and the buffers every binding shares, at the first GPU step. */
static fusor_status prep_setup(sched_gpu_prep *p, fusor_kernel *k, fusor_args *a, sched_spec *spec,
                               ir_domain *dom, fusor_array **arrays) {
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
    /* the slots, then one ticket word per pass (codegen/gpu.h): 0 once, and put back to
     * 0 by the kernels; steps upload the slots alone */
    size_t nticket = (size_t)spec->plan->npasses;
    if (!st)
        st = mem_dev_alloc(p->device, (p->nslots + nticket) * 8, p->own, &p->dslots);
    uint64_t *zero = !st && nticket ? fu_calloc(nticket, 8) : NULL;
    if (!st && nticket && !zero)
        st = fu_oom("a prepared GPU launch");
    if (zero) {
        cudrv_result r =
            p->g.t->memcpy_htod_async(p->dslots + p->nslots * 8, zero, nticket * 8, p->own);
        if (r)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "clearing a prepared launch's tickets");
        fu_free(zero);
    }
    if (!st && p->g.code->has_finish)
        st = prep_outs_alloc(p, (size_t)(spec->ir->noutputs + 1) * 8);
    p->ready = 1; /* from here sched_gpu_prep_free releases what exists */
    return st;
}

typedef struct prep_issue_arg {
    gpu_run *g;
    prep_binding *b;
} prep_issue_arg;

static fusor_status prep_issue(void *arg) {
    prep_issue_arg *a = arg;
    return sched_gpu_issue(a->g, a->b->pp, a->b->dparams);
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
    static _Atomic uint64_t generations;
    prep_binding *b = &p->b[p->nb];
    memset(b, 0, sizeof *b);
    b->gen = ++generations;
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
        cudrv_result r =
            g->t->memcpy_htod_async(b->dparams, img, p->psz * (size_t)(np + 1), p->own);
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
    g->cu = p->own;
    prep_issue_arg ia = {g, b};
    b->exec = sched_gpu_capture(g->t, p->own, prep_issue, &ia);
    p->captures += b->exec != NULL;
    b->used = ++p->clock;
    p->nb++;
    *out = b;
    return FUSOR_OK;
}

/* The slots to the device on s when they changed since the last step. */
static cudrv_result prep_upload(sched_gpu_prep *p, const ir_value *slots, cudrv_stream s) {
    if (p->uploaded_valid && !memcmp(p->uploaded, slots, p->nslots * 8))
        return CUDRV_SUCCESS;
    cudrv_result r = p->g.t->memcpy_htod_async(p->dslots, slots, p->nslots * 8, s);
    memcpy(p->uploaded, slots, p->nslots * 8);
    p->uploaded_valid = !r;
    return r;
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
    cudrv_result r = prep_upload(p, slots, s);
    if (!r && b->exec) {
        r = t->graph_launch(b->exec, s);
        p->replays++;
    } else if (!r) {
        g->cu = s;
        st = sched_gpu_issue(g, b->pp, b->dparams);
    }
    int need_sync = 0;
    if (!st && !r && g->code->has_finish) {
        r = prep_outs_queue(p, outs, s);
        need_sync = 1;
    }
    if (!st && r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a prepared GPU step");
    st = sched_gpu_step_end(t, cur, s, need_sync, st);
    if (!st && need_sync)
        prep_outs_take(p, outs);
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
        p->where = r.where;
        p->device = r.device;
        p->placement = a->placement;
        for (int i = 0; i < dom->narrays; i++)
            if (arrays[i] && dom->base[i] &&
                (arrays[i]->memory == FUSOR_MEMORY_HOST ||
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

/* ------------------------------------------------------------------ sequences */

#define SEQ_GRAPHS 4

typedef struct seq_graph {
    uint64_t gens[SCHED_SEQ_MAX]; /* the members' bindings it was captured from */
    cudrv_graph_exec exec;
    uint64_t used;
} seq_graph;

struct sched_gpu_seq {
    int device;
    const cudrv_table *t;
    sched_device *d;
    cudrv_stream own;
    seq_graph g[SEQ_GRAPHS];
    int ng;
    uint64_t clock;
    long captures, replays;
};

void sched_gpu_seq_free(sched_gpu_seq *q) {
    if (!q)
        return;
    if (q->own && !sched_device_activate(q->d)) {
        q->t->stream_synchronize(q->own);
        for (int i = 0; i < q->ng; i++)
            q->t->graph_exec_destroy(q->g[i].exec);
        sched_sync_stream_put(q->device, q->own);
    }
    fu_clear_error();
    fu_free(q);
}

/* Every member placed on one GPU, its arrays there, set up; graphs available. */
static int seq_eligible(int n, const sched_seq_member *m, int *device) {
    for (int i = 0; i < n; i++) {
        int dev = -1;
        const sched_gpu_prep *p = m[i].prep;
        if (m[i].staged) {
            if (!sched_staged_seq_ready(m[i].staged, m[i].spec, m[i].arrays, &dev))
                return 0;
        } else if (!p || p->where != FUSOR_TARGET_GPU || p->host_arrays || !p->ready ||
                   !sched_gpu_graphs_available(p->g.t)) {
            return 0;
        } else {
            dev = p->device;
        }
        if (i && dev != *device)
            return 0;
        *device = dev;
    }
    return n > 0;
}

typedef struct seq_issue_arg {
    int n;
    const sched_seq_member *m;
    prep_binding **b;
    cudrv_stream s;
} seq_issue_arg;

/* Every member's kernels in order, on the sequence's stream. */
static fusor_status seq_issue(void *arg) {
    seq_issue_arg *a = arg;
    fusor_status st = FUSOR_OK;
    for (int i = 0; i < a->n && !st; i++) {
        const sched_seq_member *m = &a->m[i];
        if (m->staged) {
            st = sched_staged_seq_issue(m->staged, m->k->name, m->spec, a->s);
            continue;
        }
        m->prep->g.cu = a->s;
        st = sched_gpu_issue(&m->prep->g, a->b[i]->pp, a->b[i]->dparams);
    }
    return st;
}

fusor_status sched_gpu_seq_run(sched_gpu_seq **state, fusor_context *ctx, int n,
                               const sched_seq_member *m, int *handled, int *threads) {
    *handled = 0;
    int device = -1;
    if (n < 1 || n > SCHED_SEQ_MAX || !seq_eligible(n, m, &device))
        return FUSOR_OK;
    fusor_status st = sched_gpu_wait_default(ctx);
    if (st)
        return st;
    sched_gpu_seq *q = *state;
    if (!q) {
        sched_device *d;
        if ((st = sched_device_get(device, &d)))
            return st;
        if (!(q = fu_calloc(1, sizeof *q)))
            return fu_oom("a sequence's GPU state");
        q->device = device;
        q->t = sched_cuda(&st);
        q->d = d;
        if (!q->t || (st = sched_sync_stream_get(device, &q->own))) {
            fu_free(q);
            return st ? st : fu_error(FUSOR_ERROR_INTERNAL, "the CUDA driver went away");
        }
        *state = q;
    }
    if ((st = sched_device_activate(q->d)))
        return st;
    /* Each member's binding (built the first time an arrangement is seen). */
    prep_binding *b[SCHED_SEQ_MAX] = {0};
    uint64_t gens[SCHED_SEQ_MAX];
    for (int i = 0; i < n && !st; i++) {
        if (m[i].staged) {
            st = sched_staged_seq_binding(m[i].staged, m[i].k, m[i].a, m[i].spec, m[i].arrays,
                                          m[i].slots, &gens[i]);
        } else if (!(st = prep_binding_get(m[i].prep, &b[i]))) {
            gens[i] = b[i]->gen;
        }
    }
    if (st)
        return st;
    seq_graph *gr = NULL;
    for (int k = 0; k < q->ng && !gr; k++) {
        int same = 1;
        for (int i = 0; i < n && same; i++)
            same = q->g[k].gens[i] == gens[i];
        if (same)
            gr = &q->g[k];
    }
    const cudrv_table *t = q->t;
    if (!gr) {                     /* capture the whole step: every member's kernels in order */
        if (q->ng == SEQ_GRAPHS) { /* drop the least recently used arrangement */
            int old = 0;
            for (int k = 1; k < q->ng; k++)
                if (q->g[k].used < q->g[old].used)
                    old = k;
            t->stream_synchronize(q->own);
            t->graph_exec_destroy(q->g[old].exec);
            q->g[old] = q->g[--q->ng];
        }
        seq_issue_arg ia = {n, m, b, q->own};
        cudrv_graph_exec exec = sched_gpu_capture(t, q->own, seq_issue, &ia);
        if (!exec) /* no graph: the members one by one, as without a sequence */
            return FUSOR_OK;
        gr = &q->g[q->ng++];
        memset(gr, 0, sizeof *gr);
        for (int i = 0; i < n; i++)
            gr->gens[i] = gens[i];
        gr->exec = exec;
        q->captures++;
    }
    gr->used = ++q->clock;
    fusor_stream *cur = sched_stream_current();
    cudrv_stream s = q->own;
    if (cur && (st = sched_stream_cu(cur, device, &s)))
        return st;
    cudrv_result r = CUDRV_SUCCESS;
    for (int i = 0; i < n && !r; i++)
        r = m[i].staged ? sched_staged_seq_upload(m[i].staged, m[i].k, m[i].a, m[i].spec,
                                                  m[i].arrays, m[i].slots, s)
                        : prep_upload(m[i].prep, m[i].slots, s);
    if (!r)
        r = t->graph_launch(gr->exec, s);
    q->replays += !r;
    int need_sync = 0;
    for (int i = 0; i < n && !r; i++)
        if (m[i].prep && m[i].prep->g.code->has_finish) {
            r = prep_outs_queue(m[i].prep, m[i].outs, s);
            need_sync = 1;
        }
    if (r)
        st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "a sequence's GPU step");
    st = sched_gpu_step_end(t, cur, s, need_sync, st);
    for (int i = 0; i < n && !st; i++)
        if (m[i].prep && m[i].prep->g.code->has_finish)
            prep_outs_take(m[i].prep, m[i].outs);
    *threads = 0;
    for (int i = 0; i < n; i++) {
        int used = 0;
        if (m[i].staged) {
            fusor_status fs = sched_staged_seq_finish(m[i].staged, m[i].spec, m[i].arrays,
                                                      m[i].slots, m[i].outs, st != FUSOR_OK,
                                                      &used);
            if (!st)
                st = fs;
        } else {
            if (st)
                m[i].prep->uploaded_valid = 0;
            used = m[i].prep->threads;
        }
        if (used > *threads)
            *threads = used;
    }
    *handled = !st;
    return st;
}

void sched_gpu_seq_counts(const sched_gpu_seq *q, long *captures, long *replays) {
    *captures = q ? q->captures : 0;
    *replays = q ? q->replays : 0;
}
