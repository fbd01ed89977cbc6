/*
 * fake_cuda.h — a test double of the CUDA driver, for the tests of scheduler/cuda.c,
 * device.c, stream.c, gpurun.c and memory/devpool.c (#included by tests/unit/test_cuda*.c).
 *
 * It is a driver, not a mock of fusor: fusor loads it through the same symbol lookup it
 * uses on libcuda.so.1 (sched_cuda_reload with fake_sym), resolving entry points through
 * the fake's cuGetProcAddress_v2 / cuGetProcAddress or by name, and then calls it as it
 * would call the real one.  The fake simulates:
 *
 *   devices        count, name, compute capability, SMs, memory; cuInit and
 *                  cuDriverGetVersion results; missing entry points (by name)
 *   memory         device allocations are real host memory (so copies and simulated
 *                  kernels work) counted against a capacity; a stream-ordered pool whose
 *                  freed memory is pending until the next synchronisation and cached up to
 *                  the release threshold; OOM when the capacity is passed; the k-th
 *                  allocation can be made to fail; pinned host memory with its own
 *                  capacity; every copy is checked to lie inside a live allocation
 *   modules        PTX is checked for its .version against the fake's newest PTX ISA
 *                  (error log like ptxas's), "FAKE_BAD_PTX" is a syntax error, an info log
 *                  is written; .entry names become functions
 *   launches       a result to return (launch failure); a simulated kernel per entry
 *                  name, called with the parameter block, grid and block
 *
 * Work runs at once (streams are trivially in order); synchronisation is where pending
 * pool frees complete, and where a sticky error is reported.
 */
#ifndef FUSOR_TEST_FAKE_CUDA_H
#define FUSOR_TEST_FAKE_CUDA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

typedef void (*fake_kernel_fn)(unsigned char *params, unsigned grid, unsigned block);

typedef struct fake_alloc {
    unsigned char *p;
    size_t size;
    int kind; /* 0 device (cuMemAlloc), 1 pool, 2 pinned, 3 managed */
    int pending_free;
    struct fake_alloc *next;
} fake_alloc;

typedef struct fake_module {
    char *text;
    struct fake_module *next;
} fake_module;

typedef struct fake_function {
    char name[64];
    uint64_t module; /* a hash of its module's text (fake_text_hash) */
    struct fake_function *next;
} fake_function;

/* FNV-1a of a module's text: how a test's dispatch hook knows which module a kernel is
 * from (different modules have kernels of the same names). */
static inline uint64_t fake_text_hash(const char *text) {
    uint64_t h = 1469598103934665603ull;
    for (; *text; text++) {
        h ^= (unsigned char)*text;
        h *= 1099511628211ull;
    }
    return h;
}

static struct fake_state {
    /* configuration (fake_reset sets a healthy CUDA 12.4 driver with one sm_90 device) */
    int driver_version, version_result, init_result, ndevices;
    int cc_major, cc_minor, sms, clock_khz, mem_clock_khz, bus_bits;
    int pools, managed, occ_block;
    size_t capacity, pinned_capacity;
    int max_ptx;
    int has_proc_v2, has_proc_v1;
    const char *missing[16];
    int fail_alloc_at; /* the k-th device allocation (1-based) fails with OOM */
    int launch_result; /* returned by cuLaunchKernel */
    int sync_result;   /* returned by every synchronisation once set */
    int module_result; /* forced result of cuModuleLoadDataEx */
    /* observations */
    int proc_version_asked, proc_lookups, sym_lookups;
    char looked_up[64][48];
    int nlooked;
    fake_alloc *allocs;
    size_t direct_used, pool_reserved, pool_used, pool_pending, pool_threshold, pinned_used;
    long alloc_calls, pool_allocs, host_allocs, trims, module_loads, launches, bad_access;
    long set_current_calls;
    long ctx_retained, streams_live, events_live, pools_live, syncs;
    char last_kernel[64], last_ptx_version[16];
    unsigned last_grid, last_block;
    long htod_bytes, dtoh_bytes;
    /* every entry point called (fake_called): a count, and the first 64 names since a test
     * last set ncalled to 0 */
    long calls;
    int ncalled;
    int no_unified; /* a device without unified addressing (set before fake_load) */
    const char *called[64];
    struct {
        const char *name;
        fake_kernel_fn fn;
    } impls[32];
    int nimpls;
    /* When set, every launch is also handed to it with its module's text hash and name
     * (a test that runs the real kernels, e.g. their CUDA C on the CPU). */
    void (*dispatch)(uint64_t module, const char *name, unsigned char *params, unsigned grid,
                     unsigned block);
    fake_module *modules;
    fake_function *functions;
    /* the JIT linker and CUDA Graphs */
    long links, cubin_loads, captures, graph_launches, graphs_live, execs_live;
    cudrv_stream capturing; /* the stream being captured, or NULL */
    cudrv_stream launch_streams[8]; /* the distinct streams kernels were launched on */
    int nlaunch_streams;
    struct fake_graph *capture;
} F;

/* A captured graph: the kernel launches made on the stream while it was captured. */
typedef struct fake_graph {
    int n;
    struct {
        cudrv_function f;
        unsigned g[3], b[3];
        cudrv_ptr pb;
    } nodes[64];
} fake_graph;

static _Thread_local cudrv_context fake_current; /* the driver's is per thread too */

static void fake_reset(void) {
    fake_current = NULL;
    for (fake_alloc *a = F.allocs, *n; a; a = n) {
        n = a->next;
        free(a->p);
        free(a);
    }
    for (fake_module *m = F.modules, *n; m; m = n) {
        n = m->next;
        free(m->text);
        free(m);
    }
    for (fake_function *f = F.functions, *n; f; f = n) {
        n = f->next;
        free(f);
    }
    free(F.capture);
    memset(&F, 0, sizeof F);
    F.driver_version = 12040;
    F.ndevices = 1;
    F.cc_major = 9;
    F.cc_minor = 0;
    F.sms = 132;
    F.clock_khz = 1980000;
    F.mem_clock_khz = 2619000;
    F.bus_bits = 5120;
    F.pools = 1;
    F.managed = 1;
    F.occ_block = 768;
    F.capacity = (size_t)256 << 20;
    F.pinned_capacity = (size_t)256 << 20;
    F.max_ptx = 84;
    F.has_proc_v2 = 1;
}

__attribute__((unused)) static void fake_add_kernel(const char *name, fake_kernel_fn fn) {
    F.impls[F.nimpls].name = name;
    F.impls[F.nimpls++].fn = fn;
}

/* ------------------------------------------------------------------ memory model */

static fake_alloc *fake_find(const void *p, size_t n) {
    const unsigned char *q = p;
    for (fake_alloc *a = F.allocs; a; a = a->next)
        if (!a->pending_free && q >= a->p && q + n <= a->p + (a->size ? a->size : 1))
            return a;
    return NULL;
}

static int fake_check(const void *p, size_t n) {
    if (fake_find(p, n))
        return 1;
    F.bad_access++;
    return 0;
}

static unsigned char *fake_new(size_t size, int kind) {
    fake_alloc *a = calloc(1, sizeof *a);
    a->p = aligned_alloc(256, (size + 255) / 256 * 256 + 256);
    memset(a->p, 0xA5, size); /* garbage, as fresh device memory is */
    a->size = size;
    a->kind = kind;
    a->next = F.allocs;
    F.allocs = a;
    return a->p;
}

static int fake_remove(const void *p, int kind) {
    for (fake_alloc **pa = &F.allocs; *pa; pa = &(*pa)->next)
        if ((*pa)->p == p && (*pa)->kind == kind) {
            fake_alloc *a = *pa;
            *pa = a->next;
            free(a->p);
            free(a);
            return 1;
        }
    F.bad_access++;
    return 0;
}

/* Frees on streams happen at synchronisation; the pool then keeps up to its threshold. */
static void fake_sync_point(void) {
    F.syncs++;
    for (fake_alloc **pa = &F.allocs; *pa;) {
        if ((*pa)->pending_free) {
            fake_alloc *a = *pa;
            *pa = a->next;
            free(a->p);
            free(a);
        } else {
            pa = &(*pa)->next;
        }
    }
    F.pool_pending = 0;
    if (F.pool_reserved > F.pool_used + F.pool_threshold)
        F.pool_reserved = F.pool_used + F.pool_threshold;
}

/* Every entry point says it was called (from any thread: stream workers call too). */
static void fake_called(const char *name) {
    __atomic_fetch_add(&F.calls, 1, __ATOMIC_RELAXED);
    int i = __atomic_fetch_add(&F.ncalled, 1, __ATOMIC_RELAXED);
    if (i >= 0 && i < 64)
        F.called[i] = name;
}

/* The names called since ncalled was last set to 0, as "a b c" (a test's message). */
static inline const char *fake_called_list(void) {
    static char buf[64 * 32];
    buf[0] = 0;
    for (int i = 0; i < F.ncalled && i < 64; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", F.called[i]);
    return buf;
}

/* ------------------------------------------------------------------ entry points */

static cudrv_result f_get_error_string(cudrv_result r, const char **s) {
    fake_called("get_error_string");
    *s = r == 2 ? "out of memory" : r == 719 ? "unspecified launch failure" : "fake error";
    return 0;
}
static cudrv_result f_get_error_name(cudrv_result r, const char **s) {
    fake_called("get_error_name");
    switch (r) {
    case 2: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case 100: *s = "CUDA_ERROR_NO_DEVICE"; break;
    case 218: *s = "CUDA_ERROR_INVALID_PTX"; break;
    case 222: *s = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"; break;
    case 719: *s = "CUDA_ERROR_LAUNCH_FAILED"; break;
    case 803: *s = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"; break;
    default: *s = "CUDA_ERROR_UNKNOWN"; return 0;
    }
    return 0;
}
static cudrv_result f_init(unsigned flags) {
    fake_called("init");
    (void)flags;
    return F.init_result;
}
static cudrv_result f_driver_get_version(int *v) {
    fake_called("driver_get_version");
    *v = F.driver_version;
    return F.version_result;
}
static cudrv_result f_device_get_count(int *n) {
    fake_called("device_get_count");
    *n = F.ndevices;
    return 0;
}
static cudrv_result f_device_get(cudrv_device *d, int i) {
    fake_called("device_get");
    if (i < 0 || i >= F.ndevices)
        return CUDRV_ERROR_INVALID_DEVICE;
    *d = i;
    return 0;
}
static cudrv_result f_device_get_name(char *buf, int n, cudrv_device d) {
    fake_called("device_get_name");
    snprintf(buf, (size_t)n, "Fake GPU %d", d);
    return 0;
}
static cudrv_result f_device_get_attribute(int *v, int attr, cudrv_device d) {
    fake_called("device_get_attribute");
    (void)d;
    switch (attr) {
    case CUDRV_ATTR_COMPUTE_CAPABILITY_MAJOR: *v = F.cc_major; break;
    case CUDRV_ATTR_COMPUTE_CAPABILITY_MINOR: *v = F.cc_minor; break;
    case CUDRV_ATTR_MULTIPROCESSOR_COUNT: *v = F.sms; break;
    case CUDRV_ATTR_MAX_THREADS_PER_BLOCK: *v = 1024; break;
    case CUDRV_ATTR_MAX_THREADS_PER_MULTIPROCESSOR: *v = 2048; break;
    case CUDRV_ATTR_CLOCK_RATE: *v = F.clock_khz; break;
    case CUDRV_ATTR_MEMORY_CLOCK_RATE: *v = F.mem_clock_khz; break;
    case CUDRV_ATTR_GLOBAL_MEMORY_BUS_WIDTH: *v = F.bus_bits; break;
    case CUDRV_ATTR_L2_CACHE_SIZE: *v = 50 << 20; break;
    case CUDRV_ATTR_MANAGED_MEMORY: *v = F.managed; break;
    case CUDRV_ATTR_MEMORY_POOLS_SUPPORTED: *v = F.pools; break;
    case CUDRV_ATTR_UNIFIED_ADDRESSING: *v = !F.no_unified; break;
    default: *v = 1; break;
    }
    return 0;
}
static cudrv_result f_device_total_mem(size_t *b, cudrv_device d) {
    fake_called("device_total_mem");
    (void)d;
    *b = F.capacity;
    return 0;
}
static cudrv_result f_primary_ctx_retain(cudrv_context *c, cudrv_device d) {
    fake_called("primary_ctx_retain");
    *c = (cudrv_context)(uintptr_t)(0x1000 + d);
    F.ctx_retained++;
    return 0;
}
static cudrv_result f_primary_ctx_release(cudrv_device d) {
    fake_called("primary_ctx_release");
    (void)d;
    F.ctx_retained--;
    return 0;
}
static cudrv_result f_ctx_set_current(cudrv_context c) {
    fake_called("ctx_set_current");
    fake_current = c;
    F.set_current_calls++;
    return 0;
}
static cudrv_result f_ctx_get_current(cudrv_context *c) {
    fake_called("ctx_get_current");
    *c = fake_current;
    return 0;
}
static cudrv_result f_ctx_synchronize(void) {
    fake_called("ctx_synchronize");
    fake_sync_point();
    return F.sync_result;
}
static cudrv_result f_mem_get_info(size_t *free_, size_t *total) {
    fake_called("mem_get_info");
    size_t used = F.direct_used + F.pool_reserved;
    *free_ = used < F.capacity ? F.capacity - used : 0;
    *total = F.capacity;
    return 0;
}

static cudrv_result f_module_load_data_ex(cudrv_module *m, const void *image, unsigned n, int *opts,
                                          void **vals) {
    fake_called("module_load_data_ex");
    const char *ptx = image;
    char *info = NULL, *err = NULL;
    size_t info_n = 0, err_n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (opts[i] == CUDRV_JIT_INFO_LOG_BUFFER)
            info = vals[i];
        if (opts[i] == CUDRV_JIT_ERROR_LOG_BUFFER)
            err = vals[i];
        if (opts[i] == CUDRV_JIT_INFO_LOG_BUFFER_SIZE_BYTES)
            info_n = (size_t)(uintptr_t)vals[i];
        if (opts[i] == CUDRV_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
            err_n = (size_t)(uintptr_t)vals[i];
    }
    F.module_loads++;
    if (!strncmp(ptx, "FAKECUBIN\n", 10))
        F.cubin_loads++;
    const char *v = strstr(ptx, ".version");
    int major = 0, minor = 0;
    if (v)
        sscanf(v, ".version %d.%d", &major, &minor);
    snprintf(F.last_ptx_version, sizeof F.last_ptx_version, "%d.%d", major, minor);
    if (F.module_result) {
        if (err && err_n)
            snprintf(err, err_n, "ptxas fatal   : fake failure %d", F.module_result);
        return F.module_result;
    }
    if (major * 10 + minor > F.max_ptx) {
        if (err && err_n)
            snprintf(err, err_n,
                     "ptxas application ptx input, line 5; fatal   : Unsupported .version %d.%d; "
                     "current version is '%d.%d'",
                     major, minor, F.max_ptx / 10, F.max_ptx % 10);
        return CUDRV_ERROR_UNSUPPORTED_PTX_VERSION;
    }
    if (strstr(ptx, "FAKE_BAD_PTX")) {
        if (err && err_n)
            snprintf(err, err_n,
                     "ptxas application ptx input, line 9; error   : syntax error at "
                     "'FAKE_BAD_PTX'");
        return CUDRV_ERROR_INVALID_PTX;
    }
    if (info && info_n)
        snprintf(info, info_n, "ptxas info    : 0 bytes gmem (fake JIT)\n");
    fake_module *mod = calloc(1, sizeof *mod);
    mod->text = strdup(ptx);
    mod->next = F.modules;
    F.modules = mod;
    *m = (cudrv_module)mod;
    return 0;
}
static cudrv_result f_module_unload(cudrv_module m) {
    fake_called("module_unload");
    for (fake_module **pm = &F.modules; *pm; pm = &(*pm)->next)
        if ((void *)*pm == (void *)m) {
            fake_module *x = *pm;
            *pm = x->next;
            free(x->text);
            free(x);
            return 0;
        }
    return CUDRV_ERROR_INVALID_VALUE;
}
static cudrv_result f_module_get_function(cudrv_function *f, cudrv_module m, const char *name) {
    fake_called("module_get_function");
    const char *text = ((fake_module *)m)->text;
    char pat[96];
    snprintf(pat, sizeof pat, ".entry %s", name);
    const char *at = strstr(text, pat);
    size_t l = strlen(pat);
    while (at && (at[l] == '_' || (at[l] >= 'a' && at[l] <= 'z') || (at[l] >= '0' && at[l] <= '9')))
        at = strstr(at + 1, pat);
    if (!at)
        return CUDRV_ERROR_NOT_FOUND;
    fake_function *fn = calloc(1, sizeof *fn);
    snprintf(fn->name, sizeof fn->name, "%s", name);
    fn->module = fake_text_hash(text);
    fn->next = F.functions;
    F.functions = fn;
    *f = (cudrv_function)fn;
    return 0;
}
static cudrv_result f_launch_kernel(cudrv_function f, unsigned gx, unsigned gy, unsigned gz,
                                    unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                    cudrv_stream s, void **params, void **extra) {
    fake_called("launch_kernel");
    if (s && s == F.capturing && F.capture) { /* recorded into the graph, not run */
        fake_graph *g = F.capture;
        if (g->n == 64)
            return CUDRV_ERROR_INVALID_VALUE;
        g->nodes[g->n].f = f;
        g->nodes[g->n].g[0] = gx, g->nodes[g->n].g[1] = gy, g->nodes[g->n].g[2] = gz;
        g->nodes[g->n].b[0] = bx, g->nodes[g->n].b[1] = by, g->nodes[g->n].b[2] = bz;
        g->nodes[g->n++].pb = *(cudrv_ptr *)params[0];
        return 0;
    }
    (void)gy, (void)gz, (void)by, (void)bz, (void)shmem, (void)s, (void)extra;
    F.launches++;
    int seen = 0;
    for (int i = 0; i < F.nlaunch_streams; i++)
        seen |= F.launch_streams[i] == s;
    if (!seen && F.nlaunch_streams < 8)
        F.launch_streams[F.nlaunch_streams++] = s;
    fake_function *fn = (fake_function *)f;
    snprintf(F.last_kernel, sizeof F.last_kernel, "%s", fn->name);
    F.last_grid = gx;
    F.last_block = bx;
    if (F.launch_result)
        return F.launch_result;
    unsigned char *pb = (unsigned char *)(uintptr_t) * (cudrv_ptr *)params[0];
    if (!fake_check(pb, 112))
        return CUDRV_ERROR_INVALID_VALUE;
    for (int i = 0; i < F.nimpls; i++)
        if (!strcmp(F.impls[i].name, fn->name))
            F.impls[i].fn(pb, gx, bx);
    if (F.dispatch)
        F.dispatch(fn->module, fn->name, pb, gx, bx);
    return 0;
}
static cudrv_result f_occupancy(int *grid, int *block, cudrv_function f, size_t (*fn)(int),
                                size_t shmem, int limit) {
    fake_called("occupancy");
    (void)f, (void)fn, (void)shmem, (void)limit;
    *block = F.occ_block;
    *grid = F.sms * 2;
    return 0;
}
static cudrv_result f_func_get_attribute(int *v, int attr, cudrv_function f) {
    fake_called("func_get_attribute");
    (void)f;
    *v = attr == CUDRV_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK ? 1024 : 32;
    return 0;
}
static cudrv_result f_stream_create(cudrv_stream *s, unsigned flags) {
    fake_called("stream_create");
    (void)flags;
    F.streams_live++;
    *s = (cudrv_stream)(uintptr_t)(0x2000 + F.streams_live);
    return 0;
}
static cudrv_result f_stream_destroy(cudrv_stream s) {
    fake_called("stream_destroy");
    (void)s;
    F.streams_live--;
    return 0;
}
static cudrv_result f_stream_synchronize(cudrv_stream s) {
    fake_called("stream_synchronize");
    (void)s;
    fake_sync_point();
    return F.sync_result;
}
static cudrv_result f_stream_wait_event(cudrv_stream s, cudrv_event e, unsigned f) {
    fake_called("stream_wait_event");
    (void)s, (void)e, (void)f;
    return 0;
}
static cudrv_result f_event_create(cudrv_event *e, unsigned flags) {
    fake_called("event_create");
    (void)flags;
    F.events_live++;
    *e = (cudrv_event)(uintptr_t)(0x3000 + F.events_live);
    return 0;
}
static cudrv_result f_event_destroy(cudrv_event e) {
    fake_called("event_destroy");
    (void)e;
    F.events_live--;
    return 0;
}
static cudrv_result f_event_record(cudrv_event e, cudrv_stream s) {
    fake_called("event_record");
    (void)e, (void)s;
    return 0;
}
static cudrv_result f_event_synchronize(cudrv_event e) {
    fake_called("event_synchronize");
    (void)e;
    return F.sync_result;
}
static cudrv_result f_event_query(cudrv_event e) {
    fake_called("event_query");
    (void)e;
    return 0;
}

/* Device memory: allocation number k fails when fail_alloc_at == k. */
static int fake_alloc_fails(void) { return ++F.alloc_calls == F.fail_alloc_at; }

static cudrv_result f_mem_alloc(cudrv_ptr *p, size_t n) {
    fake_called("mem_alloc");
    if (fake_alloc_fails() || F.direct_used + F.pool_reserved + n > F.capacity)
        return CUDRV_ERROR_OUT_OF_MEMORY;
    F.direct_used += n;
    *p = (cudrv_ptr)(uintptr_t)fake_new(n, 0);
    return 0;
}
static cudrv_result f_mem_free(cudrv_ptr p) {
    fake_called("mem_free");
    fake_alloc *a = fake_find((void *)(uintptr_t)p, 1);
    if (a && (a->kind == 0 || a->kind == 3)) {
        if (a->kind == 0)
            F.direct_used -= a->size;
        fake_remove(a->p, a->kind);
        return 0;
    }
    F.bad_access++;
    return CUDRV_ERROR_INVALID_VALUE;
}
static cudrv_result f_mem_alloc_host(void **p, size_t n) {
    fake_called("mem_alloc_host");
    F.host_allocs++;
    if (F.pinned_used + n > F.pinned_capacity)
        return CUDRV_ERROR_OUT_OF_MEMORY;
    F.pinned_used += n;
    *p = fake_new(n, 2);
    return 0;
}
static cudrv_result f_mem_free_host(void *p) {
    fake_called("mem_free_host");
    fake_alloc *a = fake_find(p, 1);
    if (!a || a->kind != 2) {
        F.bad_access++;
        return CUDRV_ERROR_INVALID_VALUE;
    }
    F.pinned_used -= a->size;
    fake_remove(p, 2);
    return 0;
}
static cudrv_result f_mem_alloc_managed(cudrv_ptr *p, size_t n, unsigned flags) {
    fake_called("mem_alloc_managed");
    (void)flags;
    *p = (cudrv_ptr)(uintptr_t)fake_new(n, 3);
    return 0;
}
static cudrv_result f_memcpy_htod(cudrv_ptr d, const void *s, size_t n, cudrv_stream st) {
    fake_called("memcpy_htod");
    (void)st;
    if (!fake_check((void *)(uintptr_t)d, n))
        return CUDRV_ERROR_INVALID_VALUE;
    memcpy((void *)(uintptr_t)d, s, n);
    F.htod_bytes += (long)n;
    return 0;
}
static cudrv_result f_memcpy_dtoh(void *d, cudrv_ptr s, size_t n, cudrv_stream st) {
    fake_called("memcpy_dtoh");
    (void)st;
    if (!fake_check((void *)(uintptr_t)s, n))
        return CUDRV_ERROR_INVALID_VALUE;
    if (F.sync_result)
        return F.sync_result; /* an earlier kernel failed */
    memcpy(d, (void *)(uintptr_t)s, n);
    F.dtoh_bytes += (long)n;
    return 0;
}
static cudrv_result f_memcpy_dtod(cudrv_ptr d, cudrv_ptr s, size_t n, cudrv_stream st) {
    fake_called("memcpy_dtod");
    (void)st;
    if (!fake_check((void *)(uintptr_t)d, n) || !fake_check((void *)(uintptr_t)s, n))
        return CUDRV_ERROR_INVALID_VALUE;
    memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
    return 0;
}
static cudrv_result f_mem_pool_create(cudrv_mempool *p, const cudrv_pool_props *props) {
    fake_called("mem_pool_create");
    if (props->alloc_type != CUDRV_MEM_ALLOCATION_TYPE_PINNED ||
        props->location.type != CUDRV_MEM_LOCATION_TYPE_DEVICE)
        return CUDRV_ERROR_INVALID_VALUE;
    F.pools_live++;
    *p = (cudrv_mempool)(uintptr_t)0x4000;
    return 0;
}
static cudrv_result f_mem_pool_destroy(cudrv_mempool p) {
    fake_called("mem_pool_destroy");
    (void)p;
    F.pools_live--;
    return 0;
}
static cudrv_result f_mem_pool_set_attribute(cudrv_mempool p, int attr, void *v) {
    fake_called("mem_pool_set_attribute");
    (void)p;
    if (attr == CUDRV_POOL_ATTR_RELEASE_THRESHOLD)
        F.pool_threshold = *(uint64_t *)v;
    return 0;
}
static cudrv_result f_mem_pool_get_attribute(cudrv_mempool p, int attr, void *v) {
    fake_called("mem_pool_get_attribute");
    (void)p;
    uint64_t x = attr == CUDRV_POOL_ATTR_RESERVED_MEM_CURRENT ? F.pool_reserved
                 : attr == CUDRV_POOL_ATTR_USED_MEM_CURRENT   ? F.pool_used
                                                              : 0;
    *(uint64_t *)v = x;
    return 0;
}
static cudrv_result f_mem_pool_trim_to(cudrv_mempool p, size_t keep) {
    fake_called("mem_pool_trim_to");
    (void)p;
    F.trims++;
    size_t busy = F.pool_used + F.pool_pending;
    size_t cached = F.pool_reserved - busy;
    F.pool_reserved = busy + (cached < keep ? cached : keep);
    return 0;
}
static cudrv_result f_mem_alloc_from_pool_async(cudrv_ptr *p, size_t n, cudrv_mempool pool,
                                                cudrv_stream s) {
    fake_called("mem_alloc_from_pool_async");
    (void)pool, (void)s;
    if (fake_alloc_fails())
        return CUDRV_ERROR_OUT_OF_MEMORY;
    size_t cached = F.pool_reserved - F.pool_used - F.pool_pending;
    if (n > cached) {
        size_t grow = n - cached;
        if (F.direct_used + F.pool_reserved + grow > F.capacity)
            return CUDRV_ERROR_OUT_OF_MEMORY;
        F.pool_reserved += grow;
    }
    F.pool_used += n;
    F.pool_allocs++;
    *p = (cudrv_ptr)(uintptr_t)fake_new(n, 1);
    return 0;
}
static cudrv_result f_mem_free_async(cudrv_ptr p, cudrv_stream s) {
    fake_called("mem_free_async");
    (void)s;
    fake_alloc *a = fake_find((void *)(uintptr_t)p, 1);
    if (!a || a->kind != 1 || a->p != (void *)(uintptr_t)p) {
        F.bad_access++;
        return CUDRV_ERROR_INVALID_VALUE;
    }
    a->pending_free = 1;
    F.pool_used -= a->size;
    F.pool_pending += a->size;
    return 0;
}

/* ------------------------------------------------------------------ symbol lookup */

static int fake_is_missing(const char *name) {
    for (int i = 0; i < 16 && F.missing[i]; i++) {
        size_t n = strlen(F.missing[i]);
        if (!strncmp(name, F.missing[i], n) && (!name[n] || !strcmp(name + n, "_v2")))
            return 1;
    }
    return 0;
}

static void *fake_lookup(const char *name);

static cudrv_result f_get_proc_v2(const char *name, void **pfn, int version,
                                  unsigned long long flags, int *status) {
    fake_called("get_proc_v2");
    (void)flags;
    F.proc_version_asked = version;
    F.proc_lookups++;
    *pfn = strstr(name, "_v") ? NULL : fake_lookup(name); /* it takes base names only */
    if (status)
        *status = *pfn ? 0 : 1;
    return *pfn ? 0 : CUDRV_ERROR_NOT_FOUND;
}
static cudrv_result f_get_proc_v1(const char *name, void **pfn, int version,
                                  unsigned long long flags) {
    fake_called("get_proc_v1");
    return f_get_proc_v2(name, pfn, version, flags, NULL);
}

/* The JIT linker: the "binary" is the PTX behind a marker the fake's loader counts. */
typedef struct fake_link {
    char *bin;
    size_t n;
    char *info; /* the caller's info log buffer */
    size_t info_n;
} fake_link;
static cudrv_result f_link_create(unsigned n, int *o, void **v, cudrv_link *out) {
    fake_called("link_create");
    fake_link *fl = calloc(1, sizeof(fake_link));
    for (unsigned i = 0; i < n; i++) {
        if (o[i] == CUDRV_JIT_INFO_LOG_BUFFER)
            fl->info = v[i];
        if (o[i] == CUDRV_JIT_INFO_LOG_BUFFER_SIZE_BYTES)
            fl->info_n = (size_t)(uintptr_t)v[i];
    }
    *out = (cudrv_link)fl;
    return 0;
}
static cudrv_result f_link_add_data(cudrv_link l, int type, void *data, size_t size,
                                    const char *name, unsigned n, int *o, void **v) {
    fake_called("link_add_data");
    (void)name, (void)n, (void)o, (void)v;
    fake_link *fl = (fake_link *)l;
    if (type != CUDRV_JIT_INPUT_PTX || !size)
        return CUDRV_ERROR_INVALID_VALUE;
    free(fl->bin);
    fl->bin = malloc(size + 10);
    memcpy(fl->bin, "FAKECUBIN\n", 10);
    memcpy(fl->bin + 10, data, size);
    fl->n = size + 10;
    return 0;
}
static cudrv_result f_link_complete(cudrv_link l, void **bin, size_t *n) {
    fake_called("link_complete");
    fake_link *fl = (fake_link *)l;
    F.links++;
    if (!fl->bin)
        return CUDRV_ERROR_INVALID_VALUE;
    if (fl->info && fl->info_n)
        snprintf(fl->info, fl->info_n, "fake JIT: linked %zu bytes of PTX", fl->n - 10);
    *bin = fl->bin;
    *n = fl->n;
    return 0;
}
static cudrv_result f_link_destroy(cudrv_link l) {
    fake_called("link_destroy");
    fake_link *fl = (fake_link *)l;
    free(fl->bin);
    free(fl);
    return 0;
}

static cudrv_result f_stream_begin_capture(cudrv_stream s, int mode) {
    fake_called("stream_begin_capture");
    (void)mode;
    if (F.capturing)
        return CUDRV_ERROR_INVALID_VALUE;
    F.capturing = s;
    F.capture = calloc(1, sizeof(fake_graph));
    F.captures++;
    return 0;
}
static cudrv_result f_stream_end_capture(cudrv_stream s, cudrv_graph *out) {
    fake_called("stream_end_capture");
    if (s != F.capturing)
        return CUDRV_ERROR_INVALID_VALUE;
    *out = (cudrv_graph)F.capture;
    F.capture = NULL;
    F.capturing = NULL;
    F.graphs_live++;
    return 0;
}
static cudrv_result f_graph_instantiate(cudrv_graph_exec *out, cudrv_graph g,
                                        unsigned long long flags) {
    fake_called("graph_instantiate");
    (void)flags;
    fake_graph *copy = malloc(sizeof *copy);
    memcpy(copy, g, sizeof *copy);
    *out = (cudrv_graph_exec)copy;
    F.execs_live++;
    return 0;
}
static cudrv_result f_graph_launch(cudrv_graph_exec e, cudrv_stream s) {
    fake_called("graph_launch");
    fake_graph *g = (fake_graph *)e;
    F.graph_launches++;
    for (int i = 0; i < g->n; i++) {
        cudrv_ptr pb = g->nodes[i].pb;
        void *params[1] = {&pb};
        cudrv_result r = f_launch_kernel(g->nodes[i].f, g->nodes[i].g[0], g->nodes[i].g[1],
                                         g->nodes[i].g[2], g->nodes[i].b[0], g->nodes[i].b[1],
                                         g->nodes[i].b[2], 0, s, params, NULL);
        if (r)
            return r;
    }
    return 0;
}
static cudrv_result f_graph_exec_destroy(cudrv_graph_exec e) {
    fake_called("graph_exec_destroy");
    free(e);
    F.execs_live--;
    return 0;
}
static cudrv_result f_graph_destroy(cudrv_graph g) {
    fake_called("graph_destroy");
    free(g);
    F.graphs_live--;
    return 0;
}

#define FAKE_FN(n, f)                                                                              \
    { n, (void *)f }
static const struct {
    const char *name;
    void *fn;
} fake_table[] = {
    FAKE_FN("cuGetErrorString", f_get_error_string),
    FAKE_FN("cuGetErrorName", f_get_error_name),
    FAKE_FN("cuInit", f_init),
    FAKE_FN("cuDriverGetVersion", f_driver_get_version),
    FAKE_FN("cuDeviceGetCount", f_device_get_count),
    FAKE_FN("cuDeviceGet", f_device_get),
    FAKE_FN("cuDeviceGetName", f_device_get_name),
    FAKE_FN("cuDeviceGetAttribute", f_device_get_attribute),
    FAKE_FN("cuDeviceTotalMem", f_device_total_mem),
    FAKE_FN("cuDevicePrimaryCtxRetain", f_primary_ctx_retain),
    FAKE_FN("cuDevicePrimaryCtxRelease", f_primary_ctx_release),
    FAKE_FN("cuCtxSetCurrent", f_ctx_set_current),
    FAKE_FN("cuCtxGetCurrent", f_ctx_get_current),
    FAKE_FN("cuCtxSynchronize", f_ctx_synchronize),
    FAKE_FN("cuMemGetInfo", f_mem_get_info),
    FAKE_FN("cuModuleLoadDataEx", f_module_load_data_ex),
    FAKE_FN("cuModuleUnload", f_module_unload),
    FAKE_FN("cuModuleGetFunction", f_module_get_function),
    FAKE_FN("cuLaunchKernel", f_launch_kernel),
    FAKE_FN("cuOccupancyMaxPotentialBlockSize", f_occupancy),
    FAKE_FN("cuFuncGetAttribute", f_func_get_attribute),
    FAKE_FN("cuStreamCreate", f_stream_create),
    FAKE_FN("cuStreamDestroy", f_stream_destroy),
    FAKE_FN("cuStreamSynchronize", f_stream_synchronize),
    FAKE_FN("cuStreamWaitEvent", f_stream_wait_event),
    FAKE_FN("cuEventCreate", f_event_create),
    FAKE_FN("cuEventDestroy", f_event_destroy),
    FAKE_FN("cuEventRecord", f_event_record),
    FAKE_FN("cuEventSynchronize", f_event_synchronize),
    FAKE_FN("cuEventQuery", f_event_query),
    FAKE_FN("cuMemAlloc", f_mem_alloc),
    FAKE_FN("cuMemFree", f_mem_free),
    FAKE_FN("cuMemAllocHost", f_mem_alloc_host),
    FAKE_FN("cuMemFreeHost", f_mem_free_host),
    FAKE_FN("cuMemAllocManaged", f_mem_alloc_managed),
    FAKE_FN("cuMemcpyHtoDAsync", f_memcpy_htod),
    FAKE_FN("cuMemcpyDtoHAsync", f_memcpy_dtoh),
    FAKE_FN("cuMemcpyDtoDAsync", f_memcpy_dtod),
    FAKE_FN("cuMemPoolCreate", f_mem_pool_create),
    FAKE_FN("cuMemPoolDestroy", f_mem_pool_destroy),
    FAKE_FN("cuMemPoolSetAttribute", f_mem_pool_set_attribute),
    FAKE_FN("cuMemPoolGetAttribute", f_mem_pool_get_attribute),
    FAKE_FN("cuMemPoolTrimTo", f_mem_pool_trim_to),
    FAKE_FN("cuMemAllocFromPoolAsync", f_mem_alloc_from_pool_async),
    FAKE_FN("cuMemFreeAsync", f_mem_free_async),
    FAKE_FN("cuLinkCreate", f_link_create),
    FAKE_FN("cuLinkAddData", f_link_add_data),
    FAKE_FN("cuLinkComplete", f_link_complete),
    FAKE_FN("cuLinkDestroy", f_link_destroy),
    FAKE_FN("cuStreamBeginCapture", f_stream_begin_capture),
    FAKE_FN("cuStreamEndCapture", f_stream_end_capture),
    FAKE_FN("cuGraphInstantiateWithFlags", f_graph_instantiate),
    FAKE_FN("cuGraphLaunch", f_graph_launch),
    FAKE_FN("cuGraphExecDestroy", f_graph_exec_destroy),
    FAKE_FN("cuGraphDestroy", f_graph_destroy),
};

static void *fake_lookup(const char *name) {
    if (fake_is_missing(name))
        return NULL;
    if (!strcmp(name, "cuGetProcAddress_v2"))
        return F.has_proc_v2 ? (void *)f_get_proc_v2 : NULL;
    if (!strcmp(name, "cuGetProcAddress"))
        return F.has_proc_v1 ? (void *)f_get_proc_v1 : NULL;
    char base[64];
    snprintf(base, sizeof base, "%s", name);
    char *v = strstr(base, "_v2");
    if (v && !v[3])
        *v = 0;
    for (size_t i = 0; i < sizeof fake_table / sizeof fake_table[0]; i++)
        if (!strcmp(fake_table[i].name, base))
            return fake_table[i].fn;
    return NULL;
}

/* The symbol source handed to sched_cuda_reload (what dlsym is for libcuda.so.1). */
static void *fake_sym(void *lib, const char *name) {
    (void)lib;
    F.sym_lookups++;
    if (F.nlooked < 64)
        snprintf(F.looked_up[F.nlooked++], sizeof F.looked_up[0], "%s", name);
    return fake_lookup(name);
}

__attribute__((unused)) static int fake_was_looked_up(const char *name) {
    for (int i = 0; i < F.nlooked; i++)
        if (!strcmp(F.looked_up[i], name))
            return 1;
    return 0;
}

/* Loads the fake as the process's driver; returns the loader's status. */
__attribute__((unused)) static fusor_status fake_load(void) {
    return sched_cuda_reload(fake_sym, &F, "libcuda.so.1 (fake)");
}

/* Forgets the loaded driver (letting go of what fusor holds of the fake, while the fake
 * still knows it), then resets the fake.  Call before configuring a new fake. */
__attribute__((unused)) static void fake_fresh(void) {
    setenv("FUSOR_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    sched_cuda_reload(NULL, NULL, NULL);
    unsetenv("FUSOR_CUDA_LIBRARY");
    fake_reset();
}

/* Live allocations of a kind (-1: any), not counting pending frees. */
__attribute__((unused)) static long fake_live(int kind) {
    long n = 0;
    for (fake_alloc *a = F.allocs; a; a = a->next)
        if (!a->pending_free && (kind < 0 || a->kind == kind))
            n++;
    return n;
}

/* Reads field `off` of a parameter block (gpu.h). */
__attribute__((unused)) static uint64_t pb64(const unsigned char *pb, size_t off) {
    uint64_t v;
    memcpy(&v, pb + off, 8);
    return v;
}

#endif
