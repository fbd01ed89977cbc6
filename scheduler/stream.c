/*
 * stream.c — fusor streams and events (stream.h).
 *
 * Locking invariant of a stream: `lock` guards the queue, the counters, `error` and
 * `message`; the worker takes an item off the queue under the lock and runs it without,
 * so enqueueing never waits for work.  `device`, `cu` and `gpu_pending` belong to the
 * worker alone (items run one at a time on it), except in destroy, after the worker has
 * stopped.  An event's `lock` guards its generations and CUDA event; `cond` is
 * broadcast when a record point is reached.
 */
#include "stream.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "device.h"
#include "devpool.h"
#include "error.h"
#include "gpurun.h"
#include "scheduler.h"

typedef enum task_kind { T_RUN, T_MARK, T_WAIT } task_kind;

typedef struct task {
    task_kind kind;
    fusor_status (*run)(fusor_stream *s, void *arg);
    void (*drop)(void *arg);
    void *arg;
    int skippable; /* launches and copies are skipped while an error is pending */
    fusor_event *ev;
    uint64_t gen;
    uint64_t seq;
    struct task *next;
} task;

struct fusor_stream {
    fusor_context *ctx;
    int is_default;
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    task *head, *tail;
    task *spare; /* finished items kept for reuse: a steady time loop allocates nothing */
    int nspare;
    uint64_t enqueued, completed;
    /* The first sequence number a synchroniser waits for (UINT64_MAX: none): `done` is
     * broadcast only on reaching it, so that a long queue does not wake a waiting thread
     * after every item (each wake-up can move the worker off its core, losing its cache). */
    uint64_t wake_at;
    int started, stopping;
    pthread_t thread;
    fusor_status error;
    char message[2048];
    /* the worker's */
    int device;
    cudrv_stream cu;
    int gpu_pending;
    sched_after_gpu *after, *after_tail; /* to run at the next host barrier, in order */
};

struct fusor_event {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int refs;
    uint64_t recorded; /* generation of the last record */
    uint64_t reached;  /* the newest generation whose point was passed */
    cudrv_event cu;
    int cu_device;
    uint64_t cu_gen; /* generation the CUDA event was recorded for (0: none) */
};

static _Thread_local fusor_stream *current;

static void scratch_drop(const cudrv_table *t, cudrv_stream s);

fusor_stream *sched_stream_current(void) { return current; }

/* ------------------------------------------------------------------ events */

static void event_release(fusor_event *e) {
    if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (e->cu) {
        const cudrv_table *t = sched_cuda(NULL);
        sched_device *d;
        if (t && !sched_device_get(e->cu_device, &d) && !sched_device_activate(d))
            t->event_destroy(e->cu);
        fu_clear_error();
    }
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    fu_free(e);
}

fusor_status fusor_event_create(fusor_context *ctx, fusor_event **out) {
    (void)ctx;
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_event_create: out is NULL");
    fusor_event *e = fu_calloc(1, sizeof *e);
    if (!e)
        return fu_oom("an event");
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    e->refs = 1;
    *out = e;
    return FUSOR_OK;
}

void fusor_event_destroy(fusor_event *e) {
    if (e)
        event_release(e);
}

/* Waits on the host until generation g of e is reached. */
static void event_wait_host(fusor_event *e, uint64_t g) {
    pthread_mutex_lock(&e->lock);
    while (e->reached < g)
        pthread_cond_wait(&e->cond, &e->lock);
    pthread_mutex_unlock(&e->lock);
}

/* The CUDA event standing for generation g, or NULL when g had no GPU work pending. */
static cudrv_event event_cu(fusor_event *e, uint64_t g, int *device) {
    pthread_mutex_lock(&e->lock);
    cudrv_event c = e->cu_gen >= g && g ? e->cu : NULL;
    *device = e->cu_device;
    pthread_mutex_unlock(&e->lock);
    return c;
}

fusor_status fusor_event_synchronize(fusor_event *e) {
    if (!e)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_event_synchronize: NULL event");
    pthread_mutex_lock(&e->lock);
    uint64_t g = e->recorded;
    pthread_mutex_unlock(&e->lock);
    event_wait_host(e, g);
    int device;
    cudrv_event c = event_cu(e, g, &device);
    if (!c)
        return FUSOR_OK;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    sched_device *d;
    if (!t || (st = sched_device_get(device, &d)) || (st = sched_device_activate(d)))
        return st;
    cudrv_result r = t->event_synchronize(c);
    return r ? sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "waiting for a GPU event") : FUSOR_OK;
}

int fusor_event_done(fusor_event *e) {
    if (!e)
        return 1;
    pthread_mutex_lock(&e->lock);
    uint64_t g = e->recorded;
    int reached = e->reached >= g;
    pthread_mutex_unlock(&e->lock);
    if (!reached)
        return 0;
    int device;
    cudrv_event c = event_cu(e, g, &device);
    if (!c)
        return 1;
    const cudrv_table *t = sched_cuda(NULL);
    sched_device *d;
    if (!t || sched_device_get(device, &d) || sched_device_activate(d)) {
        fu_clear_error();
        return 1;
    }
    return t->event_query(c) != CUDRV_ERROR_NOT_READY;
}

/* ------------------------------------------------------------------ the worker */

static void record_error(fusor_stream *s, fusor_status st);

static void run_mark(fusor_stream *s, task *t) {
    fusor_event *e = t->ev;
    cudrv_event rec = NULL;
    fusor_status bst;
    if (s->after && (bst = sched_stream_host_barrier(s))) /* values to hand over first */
        record_error(s, bst);
    if (s->gpu_pending && s->cu) {
        const cudrv_table *tb = sched_cuda(NULL);
        sched_device *d;
        if (tb && !sched_device_get(s->device, &d) && !sched_device_activate(d)) {
            pthread_mutex_lock(&e->lock);
            if (e->cu && e->cu_device != s->device) {
                tb->event_destroy(e->cu); /* recorded on another device before */
                e->cu = NULL;
            }
            if (!e->cu && tb->event_create(&e->cu, CUDRV_EVENT_DISABLE_TIMING) != CUDRV_SUCCESS)
                e->cu = NULL;
            e->cu_device = s->device;
            if (e->cu && tb->event_record(e->cu, s->cu) == CUDRV_SUCCESS)
                rec = e->cu;
            pthread_mutex_unlock(&e->lock);
        }
        if (!rec) { /* no CUDA event: the host point must then include the GPU work */
            fu_clear_error();
            sched_stream_host_barrier(s);
        }
    }
    pthread_mutex_lock(&e->lock);
    if (rec)
        e->cu_gen = t->gen;
    if (t->gen > e->reached)
        e->reached = t->gen;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static fusor_status run_wait(fusor_stream *s, task *t) {
    event_wait_host(t->ev, t->gen);
    int device;
    cudrv_event c = event_cu(t->ev, t->gen, &device);
    if (!c)
        return FUSOR_OK;
    cudrv_stream cu;
    fusor_status st = sched_stream_cu(s, device, &cu);
    if (st)
        return st;
    const cudrv_table *tb = sched_cuda(&st);
    if (!tb)
        return st;
    cudrv_result r = tb->stream_wait_event(cu, c, 0);
    if (r)
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "making a stream wait for an event");
    s->gpu_pending = 1;
    return FUSOR_OK;
}

static void record_error(fusor_stream *s, fusor_status st) {
    pthread_mutex_lock(&s->lock);
    if (!s->error) {
        s->error = st;
        snprintf(s->message, sizeof s->message, "%s", fusor_last_error());
    }
    pthread_mutex_unlock(&s->lock);
}

static void execute(fusor_stream *s, task *t) {
    fusor_status st = FUSOR_OK;
    switch (t->kind) {
    case T_RUN: {
        pthread_mutex_lock(&s->lock);
        int skip = t->skippable && s->error;
        pthread_mutex_unlock(&s->lock);
        if (!skip) {
            current = s;
            st = t->run(s, t->arg);
            current = NULL;
        }
        break;
    }
    case T_MARK: run_mark(s, t); break;
    case T_WAIT: st = run_wait(s, t); break;
    }
    if (st)
        record_error(s, st);
    if (t->drop)
        t->drop(t->arg);
    if (t->ev)
        event_release(t->ev);
}

/* Queue items are recycled: the worker keeps up to this many finished ones. */
#define STREAM_MAX_SPARE 64

/* A zeroed queue item, reused when one is spare. */
static task *task_new(fusor_stream *s) {
    pthread_mutex_lock(&s->lock);
    task *t = s->spare;
    if (t) {
        s->spare = t->next;
        s->nspare--;
    }
    pthread_mutex_unlock(&s->lock);
    if (t)
        memset(t, 0, sizeof *t);
    else
        t = fu_calloc(1, sizeof *t);
    return t;
}

static void *worker(void *arg) {
    fusor_stream *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work, &s->lock);
        if (!s->head)
            break;
        task *t = s->head;
        s->head = t->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        execute(s, t);
        pthread_mutex_lock(&s->lock);
        s->completed = t->seq;
        if (s->completed >= s->wake_at) {
            s->wake_at = UINT64_MAX;
            pthread_cond_broadcast(&s->done);
        }
        if (s->nspare < STREAM_MAX_SPARE) {
            t->next = s->spare;
            s->spare = t;
            s->nspare++;
        } else {
            fu_free(t);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Appends t (allocated by the caller); on failure t's references are dropped. */
static fusor_status enqueue(fusor_stream *s, task *t, uint64_t *seq) {
    pthread_mutex_lock(&s->lock);
    if (!s->started) {
        if (pthread_create(&s->thread, NULL, worker, s)) {
            pthread_mutex_unlock(&s->lock);
            if (t->drop)
                t->drop(t->arg);
            if (t->ev)
                event_release(t->ev);
            fu_free(t);
            return fu_error(FUSOR_ERROR_INTERNAL, "cannot start a stream's worker thread");
        }
        s->started = 1;
    }
    t->seq = ++s->enqueued;
    if (seq)
        *seq = t->seq;
    if (s->tail)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    return FUSOR_OK;
}

static fusor_status enqueue_run(fusor_stream *s, fusor_status (*run)(fusor_stream *, void *),
                                void (*drop)(void *), void *arg, int skippable, uint64_t *seq) {
    task *t = task_new(s);
    if (!t) {
        if (drop)
            drop(arg);
        return fu_oom("a stream item");
    }
    t->kind = T_RUN;
    t->run = run;
    t->drop = drop;
    t->arg = arg;
    t->skippable = skippable;
    return enqueue(s, t, seq);
}

fusor_status sched_stream_enqueue(fusor_stream *s, fusor_status (*run)(fusor_stream *, void *),
                                  void (*drop)(void *), void *arg) {
    return enqueue_run(s, run, drop, arg, 1, NULL);
}

/* ------------------------------------------------------------------ GPU side */

fusor_status sched_stream_cu(fusor_stream *s, int device, cudrv_stream *out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    sched_device *d;
    if (s->cu && s->device != device) {
        if ((st = sched_stream_host_barrier(s)))
            return st;
        if (!sched_device_get(s->device, &d) && !sched_device_activate(d)) {
            scratch_drop(t, s->cu);
            t->stream_destroy(s->cu);
        }
        s->cu = NULL;
    }
    if ((st = sched_device_get(device, &d)) || (st = sched_device_activate(d)))
        return st;
    if (!s->cu) {
        /* Blocking (flags 0): ordered with the legacy default stream, where arrays give
         * their memory back. */
        cudrv_result r = t->stream_create(&s->cu, 0);
        if (r) {
            s->cu = NULL;
            return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "creating a CUDA stream");
        }
        s->device = device;
    }
    *out = s->cu;
    return FUSOR_OK;
}

void sched_stream_gpu_issued(fusor_stream *s) { s->gpu_pending = 1; }

void sched_stream_after_gpu(fusor_stream *s, sched_after_gpu *note) {
    note->next = NULL;
    if (s->after_tail)
        s->after_tail->next = note;
    else
        s->after = note;
    s->after_tail = note;
    s->gpu_pending = 1;
}

static void run_after(fusor_stream *s, int ok) {
    sched_after_gpu *n = s->after;
    s->after = s->after_tail = NULL;
    while (n) {
        sched_after_gpu *next = n->next; /* fn may free the note */
        n->fn(n->arg, ok);
        n = next;
    }
}

fusor_status sched_stream_host_barrier(fusor_stream *s) {
    if (!s->gpu_pending || !s->cu) {
        run_after(s, 1);
        return FUSOR_OK;
    }
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    sched_device *d;
    if (!t || (st = sched_device_get(s->device, &d)) || (st = sched_device_activate(d))) {
        run_after(s, 0);
        return st;
    }
    cudrv_result r = t->stream_synchronize(s->cu);
    s->gpu_pending = 0;
    run_after(s, r == CUDRV_SUCCESS);
    return r ? sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "GPU work on a stream failed") : FUSOR_OK;
}

/* ------------------------------------------------------------------ streams */

static fusor_status stream_new(fusor_context *ctx, int is_default, fusor_stream **out) {
    fusor_stream *s = fu_calloc(1, sizeof *s);
    if (!s)
        return fu_oom("a stream");
    s->ctx = ctx;
    s->is_default = is_default;
    s->device = -1;
    s->wake_at = UINT64_MAX;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    *out = s;
    return FUSOR_OK;
}

fusor_status fusor_stream_create(fusor_context *ctx, fusor_stream **out) {
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_create: out is NULL");
    *out = NULL;
    if (!ctx)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_create: NULL context");
    return stream_new(ctx, 0, out);
}

static fusor_status sync_run(fusor_stream *s, void *arg) {
    (void)arg;
    return sched_stream_host_barrier(s);
}

fusor_status fusor_stream_synchronize(fusor_stream *s) {
    if (!s)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_synchronize: NULL stream");
    if (current == s)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_stream_synchronize: called from the stream's own work (it would "
                        "wait for itself)");
    /* Idle (nothing queued, no GPU work pending): no round trip through the worker.  The
     * worker wrote gpu_pending before it counted its last item complete. */
    pthread_mutex_lock(&s->lock);
    int idle = !s->started || (s->completed == s->enqueued && !s->gpu_pending);
    pthread_mutex_unlock(&s->lock);
    if (!idle) {
        uint64_t seq;
        fusor_status st = enqueue_run(s, sync_run, NULL, NULL, 0, &seq);
        if (st)
            return st;
        pthread_mutex_lock(&s->lock);
        while (s->completed < seq) {
            if (seq < s->wake_at)
                s->wake_at = seq;
            pthread_cond_wait(&s->done, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    fusor_status st = s->error;
    if (st)
        fu_error(st, "%s", s->message);
    s->error = FUSOR_OK;
    s->message[0] = 0;
    pthread_mutex_unlock(&s->lock);
    return st;
}

static void stream_free(fusor_stream *s) {
    fusor_stream_synchronize(s);
    fu_clear_error();
    pthread_mutex_lock(&s->lock);
    int started = s->started;
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->lock);
    if (started)
        pthread_join(s->thread, NULL);
    if (s->after) { /* left by a failed synchronisation: their values are not wanted */
        fu_clear_error();
        run_after(s, 0);
    }
    if (s->cu) {
        const cudrv_table *t = sched_cuda(NULL);
        sched_device *d;
        if (t && !sched_device_get(s->device, &d) && !sched_device_activate(d)) {
            t->stream_synchronize(s->cu);
            scratch_drop(t, s->cu);
            t->stream_destroy(s->cu);
        }
        fu_clear_error();
    }
    while (s->spare) {
        task *t = s->spare;
        s->spare = t->next;
        fu_free(t);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    fu_free(s);
}

void fusor_stream_destroy(fusor_stream *s) {
    if (!s || current == s) /* not from the stream's own work: it would wait for itself */
        return;
    if (s->is_default) { /* the context's: only wait */
        fusor_stream_synchronize(s);
        return;
    }
    stream_free(s);
}

void sched_context_stream_free(fusor_stream *s) {
    if (s)
        stream_free(s);
}

fusor_status fusor_stream_default(fusor_context *ctx, fusor_stream **out) {
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_default: out is NULL");
    *out = NULL;
    if (!ctx)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_default: NULL context");
    return sched_context_stream(ctx, 1, out);
}

fusor_status sched_context_stream(fusor_context *c, int create, fusor_stream **out) {
    *out = NULL;
    sched_ctx_gpu *g;
    fusor_status st = sched_ctx_gpu_get(c, create, &g);
    if (st || !g)
        return st;
    pthread_mutex_lock(&g->lock);
    if (!g->default_stream && create)
        st = stream_new(c, 1, &g->default_stream);
    *out = g->default_stream;
    pthread_mutex_unlock(&g->lock);
    return st;
}

/* ------------------------------------------------------------------ work */

typedef struct launch_item {
    fusor_kernel *k;
    fusor_args *a;
} launch_item;

static fusor_status launch_run(fusor_stream *s, void *arg) {
    (void)s;
    launch_item *it = arg;
    return fusor_launch(it->k, it->a);
}

fusor_status fusor_launch_async(fusor_kernel *k, fusor_args *a, fusor_stream *s) {
    if (!k || !a)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_launch_async: NULL %s",
                        k ? "arguments" : "kernel");
    if (a->k != k)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_launch_async: the argument set was made for kernel %s, not %s",
                        a->k->name, k->name);
    fusor_status st;
    if (!s && (st = sched_context_stream(k->ctx, 1, &s)))
        return st;
    launch_item *it = fu_malloc(sizeof *it);
    if (!it)
        return fu_oom("a queued launch");
    it->k = k;
    it->a = a;
    return enqueue_run(s, launch_run, fu_free, it, 1, NULL);
}

typedef struct host_item {
    void (*fn)(void *);
    void *arg;
} host_item;

static fusor_status host_run_item(fusor_stream *s, void *arg) {
    host_item *h = arg;
    fusor_status st = sched_stream_host_barrier(s);
    h->fn(h->arg);
    return st;
}

fusor_status fusor_stream_host_call(fusor_stream *s, void (*fn)(void *), void *arg) {
    if (!s || !fn)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_stream_host_call: NULL %s",
                        s ? "function" : "stream");
    host_item *h = fu_malloc(sizeof *h);
    if (!h)
        return fu_oom("a queued host call");
    h->fn = fn;
    h->arg = arg;
    return enqueue_run(s, host_run_item, fu_free, h, 0, NULL);
}

fusor_status fusor_event_record(fusor_event *e, fusor_stream *s) {
    if (!e || !s)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_event_record: NULL %s",
                        e ? "stream" : "event");
    task *t = task_new(s);
    if (!t)
        return fu_oom("an event record");
    __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
    t->kind = T_MARK;
    t->ev = e;
    /* Records of one event on one stream reach their points in generation order; an
     * event recorded on several streams at once is reached at the newest point passed. */
    pthread_mutex_lock(&e->lock);
    t->gen = ++e->recorded;
    pthread_mutex_unlock(&e->lock);
    return enqueue(s, t, NULL);
}

fusor_status fusor_event_wait(fusor_event *e, fusor_stream *s) {
    if (!e || !s)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_event_wait: NULL %s",
                        e ? "stream" : "event");
    task *t = task_new(s);
    if (!t)
        return fu_oom("an event wait");
    __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
    t->kind = T_WAIT;
    t->ev = e;
    pthread_mutex_lock(&e->lock);
    t->gen = e->recorded;
    pthread_mutex_unlock(&e->lock);
    return enqueue(s, t, NULL);
}

/* ------------------------------------------------------------------ copies */

typedef struct copy_item {
    fusor_array *dst, *src;
} copy_item;

static void copy_drop(void *arg) {
    copy_item *c = arg;
    fusor_array_destroy(c->dst);
    fusor_array_destroy(c->src);
    fu_free(c);
}

static int is_host(const fusor_array *a) {
    return a->memory == FUSOR_MEMORY_HOST || a->memory == FUSOR_MEMORY_PINNED;
}

static fusor_status copy_run(fusor_stream *s, void *arg) {
    copy_item *c = arg;
    int pending = 0;
    if (is_host(c->dst) && is_host(c->src)) {
        fusor_status st = sched_stream_host_barrier(s);
        return st ? st : mem_array_copy(c->dst, c->src, NULL, &pending);
    }
    int device = is_host(c->dst) ? c->src->device : c->dst->device;
    cudrv_stream cu;
    fusor_status st = sched_stream_cu(s, device, &cu);
    if (!st)
        st = mem_array_copy(c->dst, c->src, cu, &pending);
    if (pending)
        sched_stream_gpu_issued(s);
    return st;
}

fusor_status fusor_array_copy(fusor_array *dst, const fusor_array *src, fusor_stream *s) {
    if (!dst || !src)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_array_copy: NULL array");
    int same = dst->dtype == src->dtype && dst->ndim == src->ndim;
    for (int d = 0; same && d < dst->ndim; d++)
        same = dst->shape[d] == src->shape[d];
    if (!same)
        return fu_error(FUSOR_ERROR_SHAPE,
                        "fusor_array_copy: the arrays differ in dtype or shape (%s[%d dims] and "
                        "%s[%d dims])",
                        fusor_dtype_name(dst->dtype), dst->ndim, fusor_dtype_name(src->dtype),
                        src->ndim);
    if (!mem_array_is_c_contiguous(dst) || !mem_array_is_c_contiguous(src))
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "fusor_array_copy: both arrays must be C-contiguous");
    if (s) {
        copy_item *c = fu_malloc(sizeof *c);
        if (!c)
            return fu_oom("a queued copy");
        fusor_array_retain(dst);
        fusor_array_retain((fusor_array *)src);
        c->dst = dst;
        c->src = (fusor_array *)src;
        return enqueue_run(s, copy_run, copy_drop, c, 1, NULL);
    }
    int pending = 0;
    if (is_host(dst) && is_host(src))
        return mem_array_copy(dst, src, NULL, &pending);
    int device = is_host(dst) ? src->device : dst->device;
    cudrv_stream cu;
    fusor_status st = sched_sync_stream_get(device, &cu);
    if (st)
        return st;
    st = mem_array_copy(dst, src, cu, &pending);
    sched_sync_stream_put(device, cu); /* synchronises */
    return st;
}

/* ------------------------------------------------------------------ stream scratch */

#define SCRATCH_OUTS 16

/* One stream's buffer.  The registry below only finds it; the stream's user (one thread
 * at a time: a pooled stream's borrower, a fusor stream's worker) grows and fills it
 * without the registry's lock, so launches on other streams never wait for its copy. */
struct sched_scratch {
    cudrv_stream s;
    int device;
    cudrv_ptr p;
    size_t bytes;
    unsigned char *image; /* what the start of p holds (image_len bytes), or NULL */
    size_t image_len;
    sched_outs_slot outs[SCRATCH_OUTS]; /* sched_scratch_outs's, in use while host */
};

static struct {
    pthread_mutex_t lock;
    sched_scratch **e;
    int n, cap;
} scr = {.lock = PTHREAD_MUTEX_INITIALIZER};

fusor_status sched_stream_scratch(int device, cudrv_stream s, size_t bytes, sched_scratch **out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    pthread_mutex_lock(&scr.lock);
    sched_scratch *e = NULL;
    for (int i = 0; i < scr.n && !e; i++)
        if (scr.e[i]->s == s && scr.e[i]->device == device)
            e = scr.e[i];
    if (!e) {
        if (scr.n == scr.cap) {
            int cap = scr.cap ? 2 * scr.cap : 16;
            void *q = fu_realloc(scr.e, sizeof *scr.e * (size_t)cap);
            if (!q) {
                pthread_mutex_unlock(&scr.lock);
                return fu_oom("a stream's launch buffer");
            }
            scr.e = q;
            scr.cap = cap;
        }
        if (!(e = fu_calloc(1, sizeof *e))) {
            pthread_mutex_unlock(&scr.lock);
            return fu_oom("a stream's launch buffer");
        }
        e->s = s;
        e->device = device;
        scr.e[scr.n++] = e;
    }
    pthread_mutex_unlock(&scr.lock);
    if (e->bytes < bytes) {
        if (e->p) { /* too small: the kernels before may still read it */
            t->stream_synchronize(s);
            t->mem_free(e->p);
            e->p = 0;
            e->bytes = 0;
            fu_free(e->image);
            e->image = NULL;
        }
        size_t want = 16384;
        while (want < bytes)
            want *= 2;
        cudrv_result r = t->mem_alloc(&e->p, want);
        if (r != CUDRV_SUCCESS) {
            e->p = 0;
            return sched_cuda_fail(FUSOR_ERROR_OUT_OF_MEMORY, r,
                                   "allocating a stream's launch buffer");
        }
        e->bytes = want;
    }
    *out = e;
    return FUSOR_OK;
}

cudrv_ptr sched_scratch_ptr(const sched_scratch *e) { return e->p; }

fusor_status sched_scratch_upload(sched_scratch *e, const void *image, size_t len) {
    if (e->image && e->image_len == len && !memcmp(e->image, image, len))
        return FUSOR_OK;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    fu_free(e->image);
    e->image = NULL;
    cudrv_result r = t->memcpy_htod_async(e->p, image, len, e->s);
    if (r != CUDRV_SUCCESS)
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying launch parameters");
    if ((e->image = fu_malloc(len ? len : 1))) { /* no copy kept: the next one uploads */
        memcpy(e->image, image, len);
        e->image_len = len;
    }
    return FUSOR_OK;
}

fusor_status sched_scratch_outs(sched_scratch *e, const void *key, size_t bytes,
                                sched_outs_slot **out) {
    *out = NULL;
    sched_outs_slot *o = NULL;
    for (int i = 0; i < SCRATCH_OUTS && !o; i++)
        if (e->outs[i].host && e->outs[i].key == key)
            o = &e->outs[i];
    for (int i = 0; i < SCRATCH_OUTS && !o; i++)
        if (!e->outs[i].host)
            o = &e->outs[i];
    if (!o || (o->host && o->bytes < bytes && o->pending))
        return fu_error(FUSOR_ERROR_UNSUPPORTED, "no pinned slot for the scalar outputs");
    if (o->bytes < bytes) {
        fusor_status st;
        const cudrv_table *t = sched_cuda(&st);
        if (!t)
            return st;
        if (o->host) { /* kernels before may still write it */
            t->stream_synchronize(e->s);
            t->mem_free_host(o->host);
        }
        memset(o, 0, sizeof *o);
        size_t want = 256;
        while (want < bytes)
            want *= 2;
        cudrv_result r = t->mem_alloc_host(&o->host, want);
        if (r != CUDRV_SUCCESS) {
            o->host = NULL;
            return sched_cuda_fail(FUSOR_ERROR_OUT_OF_MEMORY, r,
                                   "allocating pinned memory for scalar outputs");
        }
        o->bytes = want;
    }
    o->key = key;
    *out = o;
    return FUSOR_OK;
}

/* Before `s` is destroyed (its work done): frees its scratch.  The device's context is
 * current.  `t` NULL: the driver is going away, only forget. */
static void scratch_drop(const cudrv_table *t, cudrv_stream s) {
    pthread_mutex_lock(&scr.lock);
    for (int i = 0; i < scr.n; i++)
        if (scr.e[i]->s == s) {
            if (t && scr.e[i]->p)
                t->mem_free(scr.e[i]->p);
            for (int j = 0; t && j < SCRATCH_OUTS; j++)
                if (scr.e[i]->outs[j].host)
                    t->mem_free_host(scr.e[i]->outs[j].host);
            fu_free(scr.e[i]->image);
            fu_free(scr.e[i]);
            scr.e[i--] = scr.e[--scr.n];
        }
    pthread_mutex_unlock(&scr.lock);
}

/* ------------------------------------------------------------------ sync streams */

#define SYNC_STREAMS 8

static struct {
    pthread_mutex_t lock;
    int ndev;
    struct {
        int n;
        cudrv_stream s[SYNC_STREAMS];
    } * dev;
} ss = {.lock = PTHREAD_MUTEX_INITIALIZER};

fusor_status sched_sync_stream_get(int device, cudrv_stream *out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    sched_device *d;
    if (!t || (st = sched_device_get(device, &d)) || (st = sched_device_activate(d)))
        return st;
    pthread_mutex_lock(&ss.lock);
    if (device < ss.ndev && ss.dev[device].n) {
        *out = ss.dev[device].s[--ss.dev[device].n];
        pthread_mutex_unlock(&ss.lock);
        return FUSOR_OK;
    }
    pthread_mutex_unlock(&ss.lock);
    cudrv_result r = t->stream_create(out, 0);
    if (r) {
        *out = NULL;
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "creating a CUDA stream");
    }
    return FUSOR_OK;
}

static void sync_stream_put(int device, cudrv_stream s, int synced) {
    const cudrv_table *t = sched_cuda(NULL);
    sched_device *d;
    if (!t) {
        fu_clear_error();
        return;
    }
    if (!synced) {
        if (sched_device_get(device, &d) || sched_device_activate(d)) {
            fu_clear_error();
            return;
        }
        t->stream_synchronize(s);
    }
    pthread_mutex_lock(&ss.lock);
    if (device >= ss.ndev) {
        int n = sched_cuda_device_count();
        void *p = device < n ? fu_realloc(ss.dev, sizeof *ss.dev * (size_t)n) : NULL;
        if (p) {
            ss.dev = p;
            memset(ss.dev + ss.ndev, 0, sizeof *ss.dev * (size_t)(n - ss.ndev));
            ss.ndev = n;
        }
    }
    if (device < ss.ndev && ss.dev[device].n < SYNC_STREAMS) {
        ss.dev[device].s[ss.dev[device].n++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&ss.lock);
    if (s) {
        scratch_drop(t, s);
        t->stream_destroy(s);
    }
}

void sched_sync_stream_put(int device, cudrv_stream s) { sync_stream_put(device, s, 0); }

void sched_sync_stream_put_synced(int device, cudrv_stream s) { sync_stream_put(device, s, 1); }

void sched_sync_streams_forget(void) {
    const cudrv_table *t = sched_cuda(NULL);
    pthread_mutex_lock(&ss.lock);
    for (int i = 0; i < ss.ndev; i++) {
        sched_device *d;
        int live = t && ss.dev[i].n && !sched_device_get(i, &d) && !sched_device_activate(d);
        for (int j = 0; j < ss.dev[i].n; j++) {
            scratch_drop(live ? t : NULL, ss.dev[i].s[j]);
            if (live)
                t->stream_destroy(ss.dev[i].s[j]);
        }
        ss.dev[i].n = 0;
    }
    fu_free(ss.dev);
    ss.dev = NULL;
    ss.ndev = 0;
    pthread_mutex_unlock(&ss.lock);
    /* Streams of the old driver that are still registered: their handles may come back. */
    pthread_mutex_lock(&scr.lock);
    while (scr.n) {
        sched_scratch *e = scr.e[--scr.n];
        fu_free(e->image);
        fu_free(e);
    }
    pthread_mutex_unlock(&scr.lock);
    fu_clear_error();
}
