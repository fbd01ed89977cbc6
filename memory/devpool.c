/*
 * devpool.c — device pools, the pinned staging pool, their statistics, and staged
 * host<->device copies (devpool.h).
 *
 * Locking: one mutex guards every pool's bookkeeping.  Driver calls that may block for
 * long (synchronising before a trim) run without it; the allocation call itself runs
 * under it so that the statistics and the driver's view never disagree, which is cheap
 * because stream-ordered allocation does not wait for the GPU.
 */
#include "devpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "device.h"
#include "error.h"
#include "pool.h"
#include "strbuf.h"

typedef struct devpool {
    int ready; /* set up (pool created, or the fallback chosen) */
    cudrv_mempool pool;
    int device;
    fusor_memory_stats st;
} devpool;

typedef struct pinned_block {
    void *p;
    struct pinned_block *next;
} pinned_block;

#define PINNED_MIN_CLASS 16 /* 64 KiB */
#define PINNED_CLASSES   48

static struct {
    pthread_mutex_t lock;
    int ndev;
    devpool *dev;
    fusor_memory_stats pinned;
    int pinned_configured;
    uint64_t pinned_cached;
    pinned_block *free_lists[PINNED_CLASSES];
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------ helpers */

uint64_t mem_parse_bytes(const char *text) {
    if (!text || !*text)
        return 0;
    char *end;
    double v = strtod(text, &end);
    if (end == text || v < 0)
        return 0;
    double m = 1;
    switch (*end) {
    case 'k':
    case 'K':
        m = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        m = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        m = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
    case 'T':
        m = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        return 0;
    return (uint64_t)(v * m);
}

void mem_format_bytes(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.2f MiB", (double)b / (double)(1ull << 20));
    else if (b >= (1ull << 10))
        snprintf(buf, n, "%.2f KiB", (double)b / 1024.0);
    else
        snprintf(buf, n, "%llu B", (unsigned long long)b);
}

static uint64_t env_bytes(const char *name, uint64_t fallback) {
    const char *v = getenv(name);
    uint64_t b = v ? mem_parse_bytes(v) : 0;
    return v && (b || !strcmp(v, "0")) ? b : fallback;
}

/* The device's pool bookkeeping, growing the table on first use (under P.lock). */
static devpool *pool_locked(int device) {
    if (device >= P.ndev) {
        int n = sched_cuda_device_count();
        if (device >= n)
            return NULL;
        devpool *d = fu_realloc(P.dev, sizeof *d * (size_t)n);
        if (!d)
            return NULL;
        memset(d + P.ndev, 0, sizeof *d * (size_t)(n - P.ndev));
        for (int i = P.ndev; i < n; i++)
            d[i].device = i;
        P.dev = d;
        P.ndev = n;
    }
    return &P.dev[device];
}

/* Creates the driver pool (or chooses the fallback) with the device active. */
static fusor_status setup_locked(const cudrv_table *t, sched_device *sd, devpool *dp) {
    if (dp->ready)
        return FUSOR_OK;
    if (!dp->st.release_threshold && !dp->st.limit) {
        dp->st.release_threshold = env_bytes("FUSOR_GPU_POOL_RELEASE", sd->total_mem / 4);
        dp->st.limit = env_bytes("FUSOR_GPU_POOL_LIMIT", 0);
    }
    if (sd->pools) {
        cudrv_pool_props props;
        memset(&props, 0, sizeof props);
        props.alloc_type = CUDRV_MEM_ALLOCATION_TYPE_PINNED;
        props.location.type = CUDRV_MEM_LOCATION_TYPE_DEVICE;
        props.location.id = sd->ordinal;
        /* maxSize is reserved (must be zero) before CUDA 12.2. */
        if (sched_cuda_driver_version() >= 12020)
            props.max_size = dp->st.limit;
        cudrv_result r = t->mem_pool_create(&dp->pool, &props);
        if (r != CUDRV_SUCCESS) {
            char what[320];
            snprintf(what, sizeof what, "device %d (%s): cannot create a memory pool", sd->ordinal,
                     sd->name);
            return sched_cuda_fail(FUSOR_ERROR_NO_DEVICE, r, what);
        }
        uint64_t th = dp->st.release_threshold;
        t->mem_pool_set_attribute(dp->pool, CUDRV_POOL_ATTR_RELEASE_THRESHOLD, &th);
    }
    dp->ready = 1;
    return FUSOR_OK;
}

static uint64_t reserved_locked(const cudrv_table *t, const devpool *dp) {
    uint64_t v = 0;
    if (dp->pool &&
        t->mem_pool_get_attribute((cudrv_mempool)dp->pool, CUDRV_POOL_ATTR_RESERVED_MEM_CURRENT,
                                  &v) == CUDRV_SUCCESS)
        return v > dp->st.in_use ? v : dp->st.in_use;
    return dp->st.in_use;
}

/* The pool's state for a message: "in use 1.00 GiB in 3 allocations, reserved ...". */
static void state_text(char *buf, size_t n, const cudrv_table *t, const devpool *dp) {
    char use[32], res[32], lim[32], th[32], fr[32] = "?", tot[32] = "?";
    mem_format_bytes(use, sizeof use, dp->st.in_use);
    mem_format_bytes(res, sizeof res, reserved_locked(t, dp));
    if (dp->st.limit)
        mem_format_bytes(lim, sizeof lim, dp->st.limit);
    else
        snprintf(lim, sizeof lim, "none");
    mem_format_bytes(th, sizeof th, dp->st.release_threshold);
    size_t f = 0, tt = 0;
    if (t->mem_get_info(&f, &tt) == CUDRV_SUCCESS) {
        mem_format_bytes(fr, sizeof fr, f);
        mem_format_bytes(tot, sizeof tot, tt);
    }
    snprintf(buf, n,
             "the pool has %s in use in %llu allocation%s, %s reserved, limit %s, release "
             "threshold %s; the device has %s free of %s",
             use, (unsigned long long)dp->st.allocations, dp->st.allocations == 1 ? "" : "s", res,
             lim, th, fr, tot);
}

static cudrv_result raw_alloc(const cudrv_table *t, devpool *dp, size_t bytes, cudrv_stream s,
                              cudrv_ptr *out) {
    if (dp->pool)
        return t->mem_alloc_from_pool_async(out, bytes, dp->pool, s);
    return t->mem_alloc(out, bytes);
}

/* ------------------------------------------------------------------ device memory */

fusor_status mem_dev_alloc(int device, size_t bytes, cudrv_stream s, cudrv_ptr *out) {
    *out = 0;
    if (bytes == 0)
        return FUSOR_OK;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    sched_device *sd;
    if ((st = sched_device_get(device, &sd)) || (st = sched_device_activate(sd)))
        return st;
    char req[32];
    mem_format_bytes(req, sizeof req, bytes);
    pthread_mutex_lock(&P.lock);
    devpool *dp = pool_locked(device);
    if (!dp) {
        pthread_mutex_unlock(&P.lock);
        return fu_oom("the pool table");
    }
    if ((st = setup_locked(t, sd, dp))) {
        pthread_mutex_unlock(&P.lock);
        return st;
    }
    if (dp->st.limit && dp->st.in_use + bytes > dp->st.limit) {
        char state[512];
        dp->st.failures++;
        state_text(state, sizeof state, t, dp);
        pthread_mutex_unlock(&P.lock);
        return fu_error(FUSOR_ERROR_OUT_OF_MEMORY,
                        "device %d (%s): allocating %s (%zu bytes) would pass the pool's limit: %s",
                        device, sd->name, req, bytes, state);
    }
    cudrv_result r = raw_alloc(t, dp, bytes, s, out);
    /* Some drivers refuse a request beyond the device's size as an invalid value. */
    if (r != CUDRV_SUCCESS && sd->total_mem && bytes > sd->total_mem)
        r = CUDRV_ERROR_OUT_OF_MEMORY;
    if (r == CUDRV_ERROR_OUT_OF_MEMORY) {
        /* Frees ordered on streams may not have happened yet, and the pool may hold
         * memory another pool or library needs: let them finish, give everything
         * unused back, and try once more. */
        dp->st.trims++;
        pthread_mutex_unlock(&P.lock);
        if (s)
            t->stream_synchronize(s);
        t->ctx_synchronize();
        pthread_mutex_lock(&P.lock);
        if (dp->pool)
            t->mem_pool_trim_to(dp->pool, 0);
        r = raw_alloc(t, dp, bytes, s, out);
        if (r != CUDRV_SUCCESS && sd->total_mem && bytes > sd->total_mem)
            r = CUDRV_ERROR_OUT_OF_MEMORY;
    }
    if (r != CUDRV_SUCCESS) {
        char state[512];
        dp->st.failures++;
        state_text(state, sizeof state, t, dp);
        pthread_mutex_unlock(&P.lock);
        *out = 0;
        if (r == CUDRV_ERROR_OUT_OF_MEMORY)
            return fu_error(FUSOR_ERROR_OUT_OF_MEMORY,
                            "device %d (%s): out of memory allocating %s (%zu bytes), after "
                            "trimming the pool and retrying: %s",
                            device, sd->name, req, bytes, state);
        char what[1024];
        snprintf(what, sizeof what, "device %d (%s): allocating %s failed (%s)", device, sd->name,
                 req, state);
        return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, what);
    }
    dp->st.in_use += bytes;
    dp->st.allocations++;
    dp->st.total_allocations++;
    if (dp->st.in_use > dp->st.peak)
        dp->st.peak = dp->st.in_use;
    pthread_mutex_unlock(&P.lock);
    return FUSOR_OK;
}

void mem_dev_free(int device, cudrv_ptr p, size_t bytes, cudrv_stream s) {
    if (!p)
        return;
    const cudrv_table *t = sched_cuda(NULL);
    sched_device *sd;
    if (!t || sched_device_get(device, &sd) || sched_device_activate(sd)) {
        fu_clear_error();
        return; /* the driver is gone: so is the memory */
    }
    pthread_mutex_lock(&P.lock);
    devpool *dp = device < P.ndev ? &P.dev[device] : NULL;
    if (dp && dp->pool)
        t->mem_free_async(p, s);
    else
        t->mem_free(p);
    if (dp) {
        dp->st.in_use -= bytes <= dp->st.in_use ? bytes : dp->st.in_use;
        if (dp->st.allocations)
            dp->st.allocations--;
    }
    pthread_mutex_unlock(&P.lock);
}

/* ------------------------------------------------------------------ pinned memory */

static int size_class(size_t bytes, size_t *rounded) {
    int c = PINNED_MIN_CLASS;
    while (c < PINNED_CLASSES - 1 && ((size_t)1 << c) < bytes)
        c++;
    *rounded = (size_t)1 << c;
    return c;
}

static void pinned_defaults_locked(void) {
    if (P.pinned_configured)
        return;
    P.pinned.release_threshold = env_bytes("FUSOR_PINNED_POOL_RELEASE", 256ull << 20);
    P.pinned.limit = env_bytes("FUSOR_PINNED_POOL_LIMIT", 0);
    P.pinned_configured = 1;
}

/* Frees cached blocks until at most `keep` bytes stay cached (under P.lock). */
static void pinned_trim_locked(const cudrv_table *t, uint64_t keep) {
    for (int c = PINNED_CLASSES - 1; c >= 0 && P.pinned_cached > keep; c--) {
        while (P.free_lists[c] && P.pinned_cached > keep) {
            pinned_block *b = P.free_lists[c];
            P.free_lists[c] = b->next;
            if (t)
                t->mem_free_host(b->p);
            fu_free(b);
            P.pinned_cached -= (uint64_t)1 << c;
        }
    }
}

fusor_status mem_pinned_alloc(size_t bytes, void **out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    sched_device *sd;
    /* Pinned memory is portable between devices under unified addressing; the driver
     * only wants some context current to allocate it. */
    if ((st = sched_device_get(0, &sd)) || (st = sched_device_activate(sd)))
        return st;
    size_t size;
    int c = size_class(bytes ? bytes : 1, &size);
    char req[32];
    mem_format_bytes(req, sizeof req, bytes);
    pthread_mutex_lock(&P.lock);
    pinned_defaults_locked();
    if (P.pinned.limit && P.pinned.in_use + size > P.pinned.limit) {
        P.pinned.failures++;
        char use[32], lim[32];
        mem_format_bytes(use, sizeof use, P.pinned.in_use);
        mem_format_bytes(lim, sizeof lim, P.pinned.limit);
        pthread_mutex_unlock(&P.lock);
        return fu_error(FUSOR_ERROR_OUT_OF_MEMORY,
                        "pinned host memory: allocating %s would pass the pool's limit (%s in use "
                        "of %s)",
                        req, use, lim);
    }
    void *p = NULL;
    if (P.free_lists[c]) {
        pinned_block *b = P.free_lists[c];
        P.free_lists[c] = b->next;
        p = b->p;
        fu_free(b);
        P.pinned_cached -= size;
    } else {
        cudrv_result r = t->mem_alloc_host(&p, size);
        if (r == CUDRV_ERROR_OUT_OF_MEMORY) {
            P.pinned.trims++;
            pinned_trim_locked(t, 0);
            r = t->mem_alloc_host(&p, size);
        }
        if (r != CUDRV_SUCCESS) {
            P.pinned.failures++;
            char use[32];
            mem_format_bytes(use, sizeof use, P.pinned.in_use);
            unsigned long long n = P.pinned.allocations;
            pthread_mutex_unlock(&P.lock);
            if (r == CUDRV_ERROR_OUT_OF_MEMORY)
                return fu_error(FUSOR_ERROR_OUT_OF_MEMORY,
                                "pinned host memory: out of memory allocating %s, after trimming "
                                "the pool and retrying (%s in use in %llu allocations)",
                                req, use, n);
            return sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "cuMemAllocHost");
        }
    }
    P.pinned.in_use += size;
    P.pinned.allocations++;
    P.pinned.total_allocations++;
    if (P.pinned.in_use > P.pinned.peak)
        P.pinned.peak = P.pinned.in_use;
    pthread_mutex_unlock(&P.lock);
    *out = p;
    return FUSOR_OK;
}

void mem_pinned_free(void *p, size_t bytes) {
    if (!p)
        return;
    const cudrv_table *t = sched_cuda(NULL);
    fu_clear_error();
    size_t size;
    int c = size_class(bytes ? bytes : 1, &size);
    pthread_mutex_lock(&P.lock);
    P.pinned.in_use -= size <= P.pinned.in_use ? size : P.pinned.in_use;
    if (P.pinned.allocations)
        P.pinned.allocations--;
    pinned_block *b = NULL;
    if (P.pinned_cached + size <= P.pinned.release_threshold)
        b = fu_malloc(sizeof *b);
    if (b) {
        b->p = p;
        b->next = P.free_lists[c];
        P.free_lists[c] = b;
        P.pinned_cached += size;
    } else if (t) {
        t->mem_free_host(p);
    }
    pthread_mutex_unlock(&P.lock);
}

/* ------------------------------------------------------------------ statistics */

fusor_status mem_pool_stats(int device, fusor_memory_stats *out) {
    memset(out, 0, sizeof *out);
    if (device == FUSOR_PINNED_POOL) {
        pthread_mutex_lock(&P.lock);
        pinned_defaults_locked();
        *out = P.pinned;
        out->reserved = P.pinned.in_use + P.pinned_cached;
        pthread_mutex_unlock(&P.lock);
        return FUSOR_OK;
    }
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    sched_device *sd;
    if ((st = sched_device_get(device, &sd)))
        return st;
    pthread_mutex_lock(&P.lock);
    devpool *dp = pool_locked(device);
    if (dp) {
        *out = dp->st;
        if (!dp->ready && !dp->st.release_threshold && !dp->st.limit) {
            out->release_threshold = env_bytes("FUSOR_GPU_POOL_RELEASE", sd->total_mem / 4);
            out->limit = env_bytes("FUSOR_GPU_POOL_LIMIT", 0);
        }
        out->reserved = dp->ready ? reserved_locked(t, dp) : 0;
    }
    pthread_mutex_unlock(&P.lock);
    return dp ? FUSOR_OK : fu_oom("the pool table");
}

fusor_status mem_pool_configure(int device, uint64_t release_threshold, uint64_t limit) {
    if (device == FUSOR_PINNED_POOL) {
        const cudrv_table *t = sched_cuda(NULL);
        fu_clear_error();
        pthread_mutex_lock(&P.lock);
        P.pinned.release_threshold = release_threshold;
        P.pinned.limit = limit;
        P.pinned_configured = 1;
        pinned_trim_locked(t, release_threshold);
        pthread_mutex_unlock(&P.lock);
        return FUSOR_OK;
    }
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    sched_device *sd;
    if ((st = sched_device_get(device, &sd)))
        return st;
    pthread_mutex_lock(&P.lock);
    devpool *dp = pool_locked(device);
    if (dp) {
        dp->st.release_threshold = release_threshold;
        dp->st.limit = limit;
        if (dp->pool) {
            uint64_t th = release_threshold;
            t->mem_pool_set_attribute(dp->pool, CUDRV_POOL_ATTR_RELEASE_THRESHOLD, &th);
        }
    }
    pthread_mutex_unlock(&P.lock);
    return dp ? FUSOR_OK : fu_oom("the pool table");
}

fusor_status mem_pool_trim(int device) {
    fusor_status st;
    const cudrv_table *t = sched_cuda(device == FUSOR_PINNED_POOL ? NULL : &st);
    if (device == FUSOR_PINNED_POOL) {
        fu_clear_error();
        pthread_mutex_lock(&P.lock);
        pinned_trim_locked(t, 0);
        pthread_mutex_unlock(&P.lock);
        return FUSOR_OK;
    }
    if (!t)
        return st;
    sched_device *sd;
    if ((st = sched_device_get(device, &sd)) || (st = sched_device_activate(sd)))
        return st;
    t->ctx_synchronize();
    pthread_mutex_lock(&P.lock);
    devpool *dp = device < P.ndev ? &P.dev[device] : NULL;
    if (dp && dp->pool)
        t->mem_pool_trim_to(dp->pool, 0);
    pthread_mutex_unlock(&P.lock);
    return FUSOR_OK;
}

/* Called by cuda.c before a reload: destroys pools and frees cached pinned blocks with
 * the old table, and forgets all statistics. */
void mem_devpool_forget(void) {
    const cudrv_table *t = sched_cuda(NULL);
    fu_clear_error();
    pthread_mutex_lock(&P.lock);
    for (int i = 0; i < P.ndev; i++) {
        sched_device *sd;
        if (t && P.dev[i].pool && !sched_device_get(i, &sd) && !sched_device_activate(sd)) {
            t->ctx_synchronize();
            t->mem_pool_destroy(P.dev[i].pool);
        }
    }
    fu_free(P.dev);
    P.dev = NULL;
    P.ndev = 0;
    pinned_trim_locked(t, 0);
    memset(&P.pinned, 0, sizeof P.pinned);
    P.pinned_configured = 0;
    pthread_mutex_unlock(&P.lock);
    fu_clear_error();
}

/* ------------------------------------------------------------------ copies */

/* Chunks of a staged copy; below STAGE_MIN bytes the driver's own staging is used. */
#define STAGE_CHUNK ((size_t)8 << 20)
#define STAGE_MIN   ((size_t)1 << 20)

/* memcpy into and out of the staging buffers on the host pool's threads: one thread's
 * memcpy (~10 GB/s) is slower than the link, and writing fresh pages of a new output
 * costs a page fault each. */
typedef struct par_copy_job {
    char *dst;
    const char *src;
    size_t n;
} par_copy_job;

static void par_copy_part(void *ctx, int tid, int nthreads) {
    const par_copy_job *j = ctx;
    size_t lo = j->n * (size_t)tid / (size_t)nthreads / 64 * 64;
    size_t hi = tid + 1 == nthreads ? j->n : j->n * (size_t)(tid + 1) / (size_t)nthreads / 64 * 64;
    memcpy(j->dst + lo, j->src + lo, hi - lo);
}

static void par_memcpy(void *dst, const void *src, size_t n) {
    int use = (int)(n >> 20); /* a thread per MiB, at most the pool's */
    if (use > host_get_threads())
        use = host_get_threads();
    if (use < 2) {
        memcpy(dst, src, n);
        return;
    }
    par_copy_job j = {dst, src, n};
    host_parallel(use, par_copy_part, &j);
}

typedef struct stager {
    const cudrv_table *t;
    void *buf[2];
    cudrv_event ev[2];
} stager;

static fusor_status stager_open(stager *g, const cudrv_table *t) {
    memset(g, 0, sizeof *g);
    g->t = t;
    fusor_status st = FUSOR_OK;
    for (int i = 0; i < 2 && !st; i++) {
        st = mem_pinned_alloc(STAGE_CHUNK, &g->buf[i]);
        if (!st) {
            cudrv_result r = t->event_create(&g->ev[i], CUDRV_EVENT_DISABLE_TIMING);
            if (r) {
                g->ev[i] = NULL;
                st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "cuEventCreate");
            }
        }
    }
    return st;
}

static void stager_close(stager *g) {
    for (int i = 0; i < 2; i++) {
        if (g->ev[i]) {
            g->t->event_synchronize(g->ev[i]);
            g->t->event_destroy(g->ev[i]);
        }
        mem_pinned_free(g->buf[i], STAGE_CHUNK);
    }
}

fusor_status mem_copy_htod(int device, cudrv_ptr dst, const void *src, size_t bytes,
                           int host_pinned, cudrv_stream s) {
    (void)device;
    if (!bytes)
        return FUSOR_OK;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    cudrv_result r;
    if (host_pinned || bytes < STAGE_MIN) {
        r = t->memcpy_htod_async(dst, src, bytes, s);
        return r ? sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying to the device") : FUSOR_OK;
    }
    stager g;
    st = stager_open(&g, t);
    for (size_t off = 0, k = 0; !st && off < bytes; off += STAGE_CHUNK, k++) {
        size_t n = bytes - off < STAGE_CHUNK ? bytes - off : STAGE_CHUNK;
        int i = (int)(k % 2);
        if (k >= 2 && (r = t->event_synchronize(g.ev[i])) != CUDRV_SUCCESS) {
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying to the device");
            break;
        }
        par_memcpy(g.buf[i], (const char *)src + off, n);
        if ((r = t->memcpy_htod_async(dst + off, g.buf[i], n, s)) != CUDRV_SUCCESS ||
            (r = t->event_record(g.ev[i], s)) != CUDRV_SUCCESS)
            st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying to the device");
    }
    stager_close(&g);
    return st;
}

fusor_status mem_copy_dtoh(int device, void *dst, cudrv_ptr src, size_t bytes, int host_pinned,
                           cudrv_stream s) {
    (void)device;
    if (!bytes)
        return FUSOR_OK;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    cudrv_result r;
    if (host_pinned) {
        r = t->memcpy_dtoh_async(dst, src, bytes, s);
        return r ? sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying from the device") : FUSOR_OK;
    }
    if (bytes < STAGE_MIN) {
        r = t->memcpy_dtoh_async(dst, src, bytes, s);
        if (!r)
            r = t->stream_synchronize(s);
        return r ? sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying from the device") : FUSOR_OK;
    }
    stager g;
    st = stager_open(&g, t);
    size_t nchunks = (bytes + STAGE_CHUNK - 1) / STAGE_CHUNK;
    /* Chunk k lands in buffer k % 2; it is copied out when chunk k + 2 needs the buffer,
     * or at the end. */
    for (size_t k = 0; !st && k < nchunks + 2; k++) {
        int i = (int)(k % 2);
        if (k >= 2) {
            size_t off = (k - 2) * STAGE_CHUNK;
            size_t n = bytes - off < STAGE_CHUNK ? bytes - off : STAGE_CHUNK;
            if ((r = t->event_synchronize(g.ev[i])) != CUDRV_SUCCESS) {
                st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying from the device");
                break;
            }
            par_memcpy((char *)dst + off, g.buf[i], n);
        }
        if (k < nchunks) {
            size_t off = k * STAGE_CHUNK;
            size_t n = bytes - off < STAGE_CHUNK ? bytes - off : STAGE_CHUNK;
            if ((r = t->memcpy_dtoh_async(g.buf[i], src + off, n, s)) != CUDRV_SUCCESS ||
                (r = t->event_record(g.ev[i], s)) != CUDRV_SUCCESS)
                st = sched_cuda_fail(FUSOR_ERROR_INTERNAL, r, "copying from the device");
        }
    }
    stager_close(&g);
    return st;
}

/* ------------------------------------------------------------------ public API */

static fusor_status check_pool(const char *fn, int pool) {
    if (pool < FUSOR_PINNED_POOL)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "%s: pool %d is neither a GPU ordinal nor "
                        "FUSOR_PINNED_POOL",
                        fn, pool);
    return FUSOR_OK;
}

fusor_status fusor_memory_stats_get(int pool, fusor_memory_stats *out) {
    if (!out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_memory_stats_get: out is NULL");
    memset(out, 0, sizeof *out);
    fusor_status st = check_pool("fusor_memory_stats_get", pool);
    return st ? st : mem_pool_stats(pool, out);
}

fusor_status fusor_memory_configure(int pool, uint64_t release_threshold, uint64_t limit) {
    fusor_status st = check_pool("fusor_memory_configure", pool);
    return st ? st : mem_pool_configure(pool, release_threshold, limit);
}

fusor_status fusor_memory_trim(int pool) {
    fusor_status st = check_pool("fusor_memory_trim", pool);
    return st ? st : mem_pool_trim(pool);
}

static void describe_pool(strbuf *b, const char *name, const fusor_memory_stats *s) {
    char use[32], res[32], peak[32], lim[32], th[32];
    mem_format_bytes(use, sizeof use, s->in_use);
    mem_format_bytes(res, sizeof res, s->reserved);
    mem_format_bytes(peak, sizeof peak, s->peak);
    mem_format_bytes(th, sizeof th, s->release_threshold);
    if (s->limit)
        mem_format_bytes(lim, sizeof lim, s->limit);
    else
        snprintf(lim, sizeof lim, "none");
    sb_printf(b,
              "%s: in use %s in %llu allocation%s, reserved %s, peak %s, %llu allocations made; "
              "limit %s, release threshold %s; %llu out-of-memory recoveries, %llu failures\n",
              name, use, (unsigned long long)s->allocations, s->allocations == 1 ? "" : "s", res,
              peak, (unsigned long long)s->total_allocations, lim, th, (unsigned long long)s->trims,
              (unsigned long long)s->failures);
}

fusor_status fusor_memory_describe(char **text) {
    if (!text)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_memory_describe: NULL");
    *text = NULL;
    strbuf b = {0};
    const char *why;
    if (sched_cuda_state_get(&why) != SCHED_CUDA_READY) {
        sb_printf(&b, "GPU memory: none (%s)\n", why);
    } else {
        for (int i = 0; i < sched_cuda_device_count(); i++) {
            fusor_memory_stats s;
            sched_device *d;
            if (mem_pool_stats(i, &s) || sched_device_get(i, &d))
                continue;
            char name[320];
            snprintf(name, sizeof name, "GPU %d (%s) %s pool", i, d->name,
                     d->pools ? "stream-ordered" : "cuMemAlloc");
            describe_pool(&b, name, &s);
        }
    }
    fusor_memory_stats p;
    mem_pool_stats(FUSOR_PINNED_POOL, &p);
    describe_pool(&b, "pinned host staging pool", &p);
    fu_clear_error();
    *text = sb_take(&b);
    return *text ? FUSOR_OK : fu_oom("the memory description");
}
