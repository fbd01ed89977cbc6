/*
 * device.c — enumerating GPUs, their primary contexts, PTX modules and launch shapes.
 *
 * The device table is built once per driver load under `devs.lock`; each device then
 * has its own lock for its context and module list, so loading a module on one device
 * never waits for another.  JIT compilation (cuModuleLoadDataEx) runs under the device
 * lock: two threads asking for the same new module compile it once.
 */
#include "device.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "diskcache.h"
#include "error.h"
#include "gpu.h"
#include "strbuf.h"

static struct {
    pthread_mutex_t lock;
    int enumerated;
    int n;
    sched_device *devices;
    fusor_status status;
    char reason[512];
} devs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int attr(const cudrv_table *t, int which, cudrv_device d) {
    int v = 0;
    return t->device_get_attribute(&v, which, d) == CUDRV_SUCCESS ? v : 0;
}

static fusor_status enumerate_locked(void) {
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    int n = sched_cuda_device_count();
    sched_device *ds = fu_calloc((size_t)n, sizeof *ds);
    if (!ds)
        return fu_oom("the device table");
    for (int i = 0; i < n; i++) {
        sched_device *d = &ds[i];
        d->ordinal = i;
        pthread_mutex_init(&d->lock, NULL);
        cudrv_result r = t->device_get(&d->dev, i);
        if (r != CUDRV_SUCCESS) {
            for (int j = 0; j <= i; j++)
                pthread_mutex_destroy(&ds[j].lock);
            fu_free(ds);
            return sched_cuda_fail(FUSOR_ERROR_NO_DEVICE, r, "cuDeviceGet");
        }
        if (t->device_get_name(d->name, (int)sizeof d->name - 1, d->dev) != CUDRV_SUCCESS)
            snprintf(d->name, sizeof d->name, "CUDA device %d", i);
        d->cc_major = attr(t, CUDRV_ATTR_COMPUTE_CAPABILITY_MAJOR, d->dev);
        d->cc_minor = attr(t, CUDRV_ATTR_COMPUTE_CAPABILITY_MINOR, d->dev);
        d->sms = attr(t, CUDRV_ATTR_MULTIPROCESSOR_COUNT, d->dev);
        d->max_block = attr(t, CUDRV_ATTR_MAX_THREADS_PER_BLOCK, d->dev);
        d->max_threads_sm = attr(t, CUDRV_ATTR_MAX_THREADS_PER_MULTIPROCESSOR, d->dev);
        d->clock_khz = attr(t, CUDRV_ATTR_CLOCK_RATE, d->dev);
        d->mem_clock_khz = attr(t, CUDRV_ATTR_MEMORY_CLOCK_RATE, d->dev);
        d->bus_bits = attr(t, CUDRV_ATTR_GLOBAL_MEMORY_BUS_WIDTH, d->dev);
        d->l2_bytes = attr(t, CUDRV_ATTR_L2_CACHE_SIZE, d->dev);
        d->async_engines = attr(t, CUDRV_ATTR_ASYNC_ENGINE_COUNT, d->dev);
        d->unified = attr(t, CUDRV_ATTR_UNIFIED_ADDRESSING, d->dev);
        d->managed = attr(t, CUDRV_ATTR_MANAGED_MEMORY, d->dev) && t->mem_alloc_managed;
        d->pools = attr(t, CUDRV_ATTR_MEMORY_POOLS_SUPPORTED, d->dev) && sched_cuda_has_pools();
        if (d->max_block <= 0)
            d->max_block = 1024;
        if (t->device_total_mem(&d->total_mem, d->dev) != CUDRV_SUCCESS)
            d->total_mem = 0;
    }
    devs.devices = ds;
    devs.n = n;
    return FUSOR_OK;
}

fusor_status sched_device_get(int ordinal, sched_device **out) {
    *out = NULL;
    pthread_mutex_lock(&devs.lock);
    if (!devs.enumerated) {
        devs.status = enumerate_locked();
        snprintf(devs.reason, sizeof devs.reason, "%s", fusor_last_error());
        /* An allocation failure is worth retrying; a missing driver is final until a
         * reload. */
        devs.enumerated = devs.status != FUSOR_ERROR_OUT_OF_MEMORY;
    }
    fusor_status st = devs.status;
    int n = devs.n;
    sched_device *d = st == FUSOR_OK && ordinal >= 0 && ordinal < n ? &devs.devices[ordinal] : NULL;
    pthread_mutex_unlock(&devs.lock);
    if (st != FUSOR_OK)
        return fu_error(st, "%s", devs.reason);
    if (!d)
        return fu_error(FUSOR_ERROR_NO_DEVICE, "there is no CUDA device %d (the driver sees %d)",
                        ordinal, n);
    *out = d;
    return FUSOR_OK;
}

fusor_status sched_device_activate(sched_device *d) {
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    /* Retained once; published with a release store, so later calls need no lock. */
    cudrv_context ctx = __atomic_load_n(&d->ctx, __ATOMIC_ACQUIRE);
    if (!ctx) {
        pthread_mutex_lock(&d->lock);
        if (!d->ctx) {
            cudrv_context c = NULL;
            cudrv_result r = t->primary_ctx_retain(&c, d->dev);
            if (r != CUDRV_SUCCESS) {
                pthread_mutex_unlock(&d->lock);
                char what[320];
                snprintf(what, sizeof what, "device %d (%s): cannot retain its primary context",
                         d->ordinal, d->name);
                return sched_cuda_fail(FUSOR_ERROR_NO_DEVICE, r, what);
            }
            __atomic_store_n(&d->ctx, c, __ATOMIC_RELEASE);
        }
        ctx = d->ctx;
        pthread_mutex_unlock(&d->lock);
    }
    /* Already this thread's current context (asked of the driver, not remembered: code
     * sharing the thread may have set another): nothing to do. */
    cudrv_context cur = NULL;
    if (t->ctx_get_current && t->ctx_get_current(&cur) == CUDRV_SUCCESS && cur == ctx)
        return FUSOR_OK;
    cudrv_result r = t->ctx_set_current(ctx);
    if (r != CUDRV_SUCCESS)
        return sched_cuda_fail(FUSOR_ERROR_NO_DEVICE, r, "cuCtxSetCurrent");
    return FUSOR_OK;
}

int sched_device_arch(const sched_device *d) {
    static const int known[] = {90, 89, 87, 86, 80, 75, 72, 70, 62, 61, 60, 53, 52, 50};
    int cc = d->cc_major * 10 + d->cc_minor;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i] <= cc && cg_gpu_ptx_version(known[i]))
            return known[i];
    return 0;
}

double sched_device_peak_bandwidth(const sched_device *d) {
    /* DDR: two transfers per clock. */
    return 2.0 * (double)d->mem_clock_khz * 1e3 * (double)d->bus_bits / 8.0;
}

/* ------------------------------------------------------------------ modules */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static char *trimmed_copy(const char *s, size_t cap) {
    size_t n = strnlen(s, cap);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    char *c = fu_malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

#define JIT_LOG_BYTES 16384

/* The disk cache's key for the binary the driver makes of `ptx` on device d: the driver
 * and device decide the binary; the PTX is named by its length and two hashes. */
static unsigned char *cubin_key(const sched_device *d, const char *ptx, size_t len, size_t *klen) {
    strbuf b = {0};
    sb_printf(&b, "fusor %s build %s|cubin|driver %d|%s|sm_%d%d|ptx %zu %016llx %016llx",
              FUSOR_VERSION_STRING, dc_build_id(), sched_cuda_driver_version(), d->name,
              d->cc_major, d->cc_minor, len, (unsigned long long)dc_hash64(ptx, len, 1),
              (unsigned long long)dc_hash64(ptx, len, 2));
    *klen = b.len;
    return (unsigned char *)sb_take(&b);
}

/* With the persistent cache on: loads the device binary kept for this PTX, else has the
 * driver's JIT linker make it, loads that and keeps it.  0 when neither worked (the caller
 * loads the PTX itself, which also reports a JIT error properly). */
static int cubin_load(const cudrv_table *t, sched_device *d, const char *ptx, int nopts, int *opts,
                      void **vals, char *info, cudrv_module *mod) {
    if (!dc_enabled(0))
        return 0;
    size_t len = strlen(ptx), klen = 0, n = 0;
    unsigned char *key = cubin_key(d, ptx, len, &klen);
    if (!key) {
        fu_clear_error();
        return 0;
    }
    void *bin = dc_load(key, klen, &n);
    int ok = bin && t->module_load_data_ex(mod, bin, 0, NULL, NULL) == CUDRV_SUCCESS;
    fu_free(bin);
    if (ok) {
        d->cubin_hits++;
        snprintf(info, JIT_LOG_BYTES, "loaded the device binary kept in the kernel cache");
    }
    cudrv_link ls = NULL;
    if (!ok && t->link_create && t->link_add_data && t->link_complete && t->link_destroy &&
        t->link_create((unsigned)nopts, opts, vals, &ls) == CUDRV_SUCCESS) {
        void *out = NULL;
        ok = t->link_add_data(ls, CUDRV_JIT_INPUT_PTX, (void *)ptx, len + 1, "fusor.ptx", 0, NULL,
                              NULL) == CUDRV_SUCCESS &&
             t->link_complete(ls, &out, &n) == CUDRV_SUCCESS &&
             t->module_load_data_ex(mod, out, 0, NULL, NULL) == CUDRV_SUCCESS;
        if (ok) /* the binary belongs to the link state: keep it before destroying that */
            dc_store(key, klen, "(cubin)", out, n);
        t->link_destroy(ls);
    }
    fu_free(key);
    return ok;
}

/* Loads one module under d->lock. */
static fusor_status load_locked(const cudrv_table *t, sched_device *d, const char *ptx, size_t len,
                                int arch_min, sched_module **out) {
    char *fixed = NULL;
    fusor_status st =
        sched_cuda_fit_ptx(ptx, sched_cuda_max_ptx(sched_cuda_driver_version()), arch_min, &fixed);
    if (st)
        return st;
    sched_module *m = fu_calloc(1, sizeof *m);
    char *info = fu_calloc(1, JIT_LOG_BYTES), *err = fu_calloc(1, JIT_LOG_BYTES);
    if (m)
        m->ptx = fu_malloc(len + 1);
    if (!m || !m->ptx || !info || !err) {
        if (m)
            fu_free(m->ptx);
        fu_free(m);
        fu_free(info);
        fu_free(err);
        fu_free(fixed);
        return fu_oom("a GPU module");
    }
    memcpy(m->ptx, ptx, len + 1);
    m->len = len;
    int opts[5] = {CUDRV_JIT_INFO_LOG_BUFFER, CUDRV_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                   CUDRV_JIT_ERROR_LOG_BUFFER, CUDRV_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                   CUDRV_JIT_LOG_VERBOSE};
    void *vals[5] = {info, (void *)(uintptr_t)(JIT_LOG_BYTES - 1), err,
                     (void *)(uintptr_t)(JIT_LOG_BYTES - 1), (void *)(uintptr_t)1};
    double t0 = now_ms();
    const char *img = fixed ? fixed : ptx;
    cudrv_result r = cubin_load(t, d, img, 5, opts, vals, info, &m->mod) ? CUDRV_SUCCESS
                                                    : t->module_load_data_ex(&m->mod, img, 5, opts,
                                                                             vals);
    m->load_ms = now_ms() - t0;
    fu_free(fixed);
    d->module_loads++;
    if (r != CUDRV_SUCCESS) {
        char *log = trimmed_copy(err, JIT_LOG_BYTES);
        st = fu_error(FUSOR_ERROR_COMPILE, "device %d (%s) rejected the PTX: %s%s%s", d->ordinal,
                      d->name, sched_cuda_error_text(r), log && *log ? "\n" : "", log ? log : "");
        fu_free(log);
        fu_free(info);
        fu_free(err);
        fu_free(m->ptx);
        fu_free(m);
        return st;
    }
    m->info_log = trimmed_copy(info, JIT_LOG_BYTES);
    fu_free(info);
    fu_free(err);
    m->next = d->modules;
    d->modules = m;
    *out = m;
    return FUSOR_OK;
}

/* The module of ptx on d, loaded if needed; `serial` (0: none) is recorded on it for
 * sched_module_load_code's next lookup. */
static fusor_status module_load(sched_device *d, const char *ptx, uint64_t serial, int arch_min,
                                sched_module **out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    pthread_mutex_lock(&d->lock);
    for (sched_module *m = d->modules; m; m = m->next)
        if (serial && m->code_serial == serial) {
            pthread_mutex_unlock(&d->lock);
            *out = m;
            return FUSOR_OK;
        }
    /* No hash of the text (tens of KB, ~50 us byte by byte): the length, then the text
     * itself, which memcmp compares in well under a microsecond. */
    size_t len = strlen(ptx);
    for (sched_module *m = d->modules; m; m = m->next)
        if (m->len == len && !memcmp(m->ptx, ptx, len)) {
            if (serial)
                m->code_serial = serial;
            pthread_mutex_unlock(&d->lock);
            *out = m;
            return FUSOR_OK;
        }
    st = load_locked(t, d, ptx, len, arch_min, out);
    if (!st && serial)
        (*out)->code_serial = serial;
    pthread_mutex_unlock(&d->lock);
    return st;
}

fusor_status sched_module_load(sched_device *d, const char *ptx, int arch_min, sched_module **out) {
    return module_load(d, ptx, 0, arch_min, out);
}

fusor_status sched_module_load_code(sched_device *d, const cg_gpu_code *code, int arch_min,
                                    sched_module **out) {
    return module_load(d, code->ptx, code->serial, arch_min, out);
}

fusor_status sched_module_function(sched_device *d, sched_module *m, const char *name,
                                   sched_function **out) {
    *out = NULL;
    fusor_status st;
    const cudrv_table *t = sched_cuda(&st);
    if (!t)
        return st;
    pthread_mutex_lock(&d->lock);
    for (sched_function *f = m->functions; f; f = f->next)
        if (!strcmp(f->name, name)) {
            pthread_mutex_unlock(&d->lock);
            *out = f;
            return FUSOR_OK;
        }
    sched_function *f = fu_calloc(1, sizeof *f);
    if (!f) {
        pthread_mutex_unlock(&d->lock);
        return fu_oom("a GPU function");
    }
    snprintf(f->name, sizeof f->name, "%s", name);
    cudrv_result r = t->module_get_function(&f->fn, m->mod, name);
    if (r != CUDRV_SUCCESS) {
        pthread_mutex_unlock(&d->lock);
        fu_free(f);
        return fu_error(FUSOR_ERROR_INTERNAL, "the GPU module has no kernel %s: %s", name,
                        sched_cuda_error_text(r));
    }
    f->max_block = 1024;
    if (t->func_get_attribute) {
        int v = 0;
        if (t->func_get_attribute(&v, CUDRV_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f->fn) ==
                CUDRV_SUCCESS &&
            v > 0)
            f->max_block = v;
        if (t->func_get_attribute(&v, CUDRV_FUNC_ATTRIBUTE_NUM_REGS, f->fn) == CUDRV_SUCCESS)
            f->regs = v;
    }
    if (t->occupancy_max_potential_block_size) {
        int grid = 0, block = 0;
        if (t->occupancy_max_potential_block_size(&grid, &block, f->fn, NULL, 0, 0) ==
            CUDRV_SUCCESS) {
            f->occ_block = block;
            f->occ_min_grid = grid;
        }
    }
    f->next = m->functions;
    m->functions = f;
    pthread_mutex_unlock(&d->lock);
    *out = f;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ launch shape */

void sched_shape_choose(int64_t n, int lanes, int reduction, int occ_block, int occ_min_grid,
                        int sms, int fn_max_block, int block_override, int grid_override,
                        int *block, int *grid) {
    int limit = fn_max_block > 0 && fn_max_block < 1024 ? fn_max_block : 1024;
    limit -= limit % 32;
    if (limit < 32)
        limit = 32;
    int b;
    if (block_override > 0)
        b = (block_override + 31) / 32 * 32;
    else if (reduction)
        b = 256;
    else
        b = occ_block >= 32 ? occ_block / 32 * 32 : 256;
    if (b > limit)
        b = limit;
    if (lanes < 1)
        lanes = 1;
    int64_t per_block = (int64_t)b * lanes;
    int64_t need = n > 0 ? (n + per_block - 1) / per_block : 1;
    int64_t g;
    if (grid_override > 0) {
        g = grid_override;
    } else if (reduction) {
        /* From n alone: the same partial sums on every device and every block size
         * the occupancy API might pick. */
        g = n > 0 ? (n + 256 * 16 - 1) / (256 * 16) : 1;
        if (g > 1024)
            g = 1024;
    } else {
        int64_t cap =
            occ_min_grid > 0 ? 4 * (int64_t)occ_min_grid : 32 * (int64_t)(sms > 0 ? sms : 16);
        g = need < cap ? need : cap;
    }
    if (g < 1)
        g = 1;
    if (g > 2147483647)
        g = 2147483647;
    *block = b;
    *grid = (int)g;
}

/* ------------------------------------------------------------------ info */

char *sched_device_describe_all(void) {
    strbuf b = {0};
    for (int i = 0;; i++) {
        sched_device *d;
        if (sched_device_get(i, &d) != FUSOR_OK)
            break;
        sb_printf(&b,
                  "  device %d: %s, sm_%d%d (fusor compiles for sm_%d), %d SMs, %.1f GiB, "
                  "%.0f GB/s peak, L2 %d MiB, memory pools %s, managed memory %s\n",
                  i, d->name, d->cc_major, d->cc_minor, sched_device_arch(d), d->sms,
                  (double)d->total_mem / (1024.0 * 1024 * 1024),
                  sched_device_peak_bandwidth(d) / 1e9, d->l2_bytes >> 20, d->pools ? "yes" : "no",
                  d->managed ? "yes" : "no");
    }
    fu_clear_error();
    return sb_take(&b);
}

/* Called by cuda.c before a reload: unloads modules and releases primary contexts with
 * the old table, then forgets the devices. */
void sched_device_forget(void) {
    pthread_mutex_lock(&devs.lock);
    const cudrv_table *t = devs.n ? sched_cuda(NULL) : NULL;
    for (int i = 0; i < devs.n; i++) {
        sched_device *d = &devs.devices[i];
        if (t && d->ctx)
            t->ctx_set_current(d->ctx);
        for (sched_module *m = d->modules, *next; m; m = next) {
            next = m->next;
            if (t)
                t->module_unload(m->mod);
            for (sched_function *f = m->functions, *fn; f; f = fn) {
                fn = f->next;
                fu_free(f);
            }
            fu_free(m->ptx);
            fu_free(m->info_log);
            fu_free(m);
        }
        if (t && d->ctx) {
            t->ctx_set_current(NULL);
            t->primary_ctx_release(d->dev);
        }
        pthread_mutex_destroy(&d->lock);
    }
    fu_free(devs.devices);
    devs.devices = NULL;
    devs.n = 0;
    devs.enumerated = 0;
    pthread_mutex_unlock(&devs.lock);
    fu_clear_error();
}

static int64_t ceil_div(int64_t a, int64_t b) { return a > 0 ? (a + b - 1) / b : 0; }

void sched_stencil_shape(int ndim, const int64_t *box, int reduction, int fn_max_block,
                         int block_override, int grid_override, int block[3], int grid[3]) {
    int limit = fn_max_block > 0 && fn_max_block < 1024 ? fn_max_block : 1024;
    limit -= limit % 32;
    if (limit < 32)
        limit = 32;
    int t = block_override > 0 ? (block_override + 31) / 32 * 32 : 256;
    if (t > limit)
        t = limit;
    int64_t X = ndim >= 1 ? box[ndim - 1] : 1, Y = ndim >= 2 ? box[ndim - 2] : 1, Z = 1;
    for (int d = 0; d + 2 < ndim; d++)
        Z *= box[d];
    int bx = t, by = 1;
    if (ndim >= 2) {
        int64_t w = (X + 31) / 32 * 32;
        bx = (int)(w < 32 ? 32 : w > 128 ? 128 : w);
        if (bx > t)
            bx = t;
        by = t / bx;
        if (by > Y)
            by = Y > 1 ? (int)Y : 1;
    }
    int64_t gx = ceil_div(X, bx), gy = ceil_div(Y, by), gz = Z;
    if (gy > 65535)
        gy = 65535;
    if (gz > 65535)
        gz = 65535;
    if (gx > 2147483647)
        gx = 2147483647;
    if (reduction) {
        if (gx > 4096)
            gx = 4096;
        if (gx < 1)
            gx = 1;
        if (gz > 4096 / gx)
            gz = 4096 / gx;
        if (gz < 1)
            gz = 1;
        if (gy > 4096 / (gx * gz))
            gy = 4096 / (gx * gz);
    }
    if (grid_override > 0) {
        gx = grid_override;
        gy = gz = 1;
    }
    block[0] = bx;
    block[1] = by;
    block[2] = 1;
    grid[0] = gx < 1 ? 1 : (int)gx;
    grid[1] = gy < 1 ? 1 : (int)gy;
    grid[2] = gz < 1 ? 1 : (int)gz;
}
