/*
 * cuda.c — loading the CUDA driver into cudrv_table (cuda.h), and the facts about it
 * that everything GPU-side asks first: is it usable, and if not, why.
 *
 * Loading, once per process (again after sched_cuda_reload):
 *
 *   FUSOR_CUDA=0 ─▶ DISABLED
 *   dlopen(libcuda.so.1 | $FUSOR_CUDA_LIBRARY) ─▶ NO_DRIVER with dlerror's text
 *   cuDriverGetVersion (plain dlsym; callable before cuInit)
 *   every entry point: cuGetProcAddress_v2(name, min(driver, 12.0)) ─▶ cuGetProcAddress
 *       (11.3+) ─▶ dlsym of the versioned name (cuMemAlloc_v2) ─▶ dlsym of the plain name
 *   a required one missing ─▶ MISSING_SYMBOL naming it
 *   cuInit(0): CUDA_ERROR_STUB_LIBRARY ─▶ STUB, CUDA_ERROR_NO_DEVICE ─▶ NO_DEVICE,
 *       other errors ─▶ INIT_FAILED
 *   driver < 11.2 ─▶ OLD_DRIVER;  cuDeviceGetCount == 0 ─▶ NO_DEVICE;  else READY
 *
 * The library handle is never closed: a driver does not survive being unloaded while
 * its threads run, and the process only ever loads one.  The state is guarded by one
 * mutex; readers take a snapshot of the table pointer, which stays valid until a test
 * reloads.
 */
#include "cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"

/* device.c and memory/devpool.c drop what they hold of the old driver on reload. */
void sched_device_forget(void);
void mem_devpool_forget(void);
void sched_sync_streams_forget(void);
char *sched_device_describe_all(void);

typedef struct entry {
    const char *name;      /* what cuGetProcAddress is asked for */
    const char *versioned; /* the symbol with the ABI of cudrv_table, when it differs */
    size_t offset;
    int required;
} entry;

#define E(member, name, versioned, required)                                                       \
    { name, versioned, offsetof(cudrv_table, member), required }
static const entry entries[] = {
    E(get_error_string, "cuGetErrorString", NULL, 1),
    E(get_error_name, "cuGetErrorName", NULL, 1),
    E(init, "cuInit", NULL, 1),
    E(driver_get_version, "cuDriverGetVersion", NULL, 1),
    E(device_get_count, "cuDeviceGetCount", NULL, 1),
    E(device_get, "cuDeviceGet", NULL, 1),
    E(device_get_name, "cuDeviceGetName", NULL, 1),
    E(device_get_attribute, "cuDeviceGetAttribute", NULL, 1),
    E(device_total_mem, "cuDeviceTotalMem", "cuDeviceTotalMem_v2", 1),
    E(primary_ctx_retain, "cuDevicePrimaryCtxRetain", NULL, 1),
    E(primary_ctx_release, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2", 1),
    E(ctx_set_current, "cuCtxSetCurrent", NULL, 1),
    E(ctx_get_current, "cuCtxGetCurrent", NULL, 0),
    E(ctx_synchronize, "cuCtxSynchronize", NULL, 1),
    E(mem_get_info, "cuMemGetInfo", "cuMemGetInfo_v2", 1),
    E(module_load_data_ex, "cuModuleLoadDataEx", NULL, 1),
    E(module_unload, "cuModuleUnload", NULL, 1),
    E(module_get_function, "cuModuleGetFunction", NULL, 1),
    E(launch_kernel, "cuLaunchKernel", NULL, 1),
    E(stream_create, "cuStreamCreate", NULL, 1),
    E(stream_destroy, "cuStreamDestroy", "cuStreamDestroy_v2", 1),
    E(stream_synchronize, "cuStreamSynchronize", NULL, 1),
    E(stream_wait_event, "cuStreamWaitEvent", NULL, 1),
    E(event_create, "cuEventCreate", NULL, 1),
    E(event_destroy, "cuEventDestroy", "cuEventDestroy_v2", 1),
    E(event_record, "cuEventRecord", NULL, 1),
    E(event_synchronize, "cuEventSynchronize", NULL, 1),
    E(event_query, "cuEventQuery", NULL, 1),
    E(mem_alloc, "cuMemAlloc", "cuMemAlloc_v2", 1),
    E(mem_free, "cuMemFree", "cuMemFree_v2", 1),
    E(mem_alloc_host, "cuMemAllocHost", "cuMemAllocHost_v2", 1),
    E(mem_free_host, "cuMemFreeHost", NULL, 1),
    E(memcpy_htod_async, "cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync_v2", 1),
    E(memcpy_dtoh_async, "cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync_v2", 1),
    E(memcpy_dtod_async, "cuMemcpyDtoDAsync", "cuMemcpyDtoDAsync_v2", 1),
    E(event_elapsed_time, "cuEventElapsedTime", NULL, 0),
    E(occupancy_max_potential_block_size, "cuOccupancyMaxPotentialBlockSize", NULL, 0),
    E(func_get_attribute, "cuFuncGetAttribute", NULL, 0),
    E(mem_alloc_managed, "cuMemAllocManaged", NULL, 0),
    E(pointer_get_attribute, "cuPointerGetAttribute", NULL, 0),
    E(mem_pool_create, "cuMemPoolCreate", NULL, 0),
    E(mem_pool_destroy, "cuMemPoolDestroy", NULL, 0),
    E(mem_pool_set_attribute, "cuMemPoolSetAttribute", NULL, 0),
    E(mem_pool_get_attribute, "cuMemPoolGetAttribute", NULL, 0),
    E(mem_pool_trim_to, "cuMemPoolTrimTo", NULL, 0),
    E(mem_alloc_from_pool_async, "cuMemAllocFromPoolAsync", NULL, 0),
    E(mem_free_async, "cuMemFreeAsync", NULL, 0),
    E(link_create, "cuLinkCreate", "cuLinkCreate_v2", 0),
    E(link_add_data, "cuLinkAddData", "cuLinkAddData_v2", 0),
    E(link_complete, "cuLinkComplete", NULL, 0),
    E(link_destroy, "cuLinkDestroy", NULL, 0),
    E(stream_begin_capture, "cuStreamBeginCapture", "cuStreamBeginCapture_v2", 0),
    E(stream_end_capture, "cuStreamEndCapture", NULL, 0),
    E(graph_instantiate, "cuGraphInstantiateWithFlags", NULL, 0),
    E(graph_launch, "cuGraphLaunch", NULL, 0),
    E(graph_exec_destroy, "cuGraphExecDestroy", NULL, 0),
    E(graph_destroy, "cuGraphDestroy", NULL, 0),
};
#undef E
#define NENTRIES (sizeof entries / sizeof entries[0])

typedef cudrv_result (*get_proc_v2_fn)(const char *, void **, int, unsigned long long, int *);
typedef cudrv_result (*get_proc_v1_fn)(const char *, void **, int, unsigned long long);

static struct {
    pthread_mutex_t lock;
    int loaded; /* the state below is valid */
    sched_cuda_state state;
    char reason[768];
    char library[512];
    void *lib;
    sched_cuda_symbol_fn sym; /* NULL: dlsym */
    cudrv_table table;
    int driver_version;
    int ndevices;
    int by_proc, by_dlsym, proc_version;
    int has_pools;
} cu = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *dl_symbol(void *lib, const char *name) { return dlsym(lib, name); }

static void *find(const char *name) { return (cu.sym ? cu.sym : dl_symbol)(cu.lib, name); }

/* Resolves one entry; returns the pointer or NULL. */
static void *resolve(const entry *e, get_proc_v2_fn v2, get_proc_v1_fn v1, int version) {
    void *p = NULL;
    if (v2) {
        int how = 0;
        if (v2(e->name, &p, version, 0, &how) != CUDRV_SUCCESS)
            p = NULL;
    } else if (v1) {
        if (v1(e->name, &p, version, 0) != CUDRV_SUCCESS)
            p = NULL;
    }
    if (p) {
        cu.by_proc++;
        return p;
    }
    if (e->versioned && (p = find(e->versioned)) != NULL) {
        cu.by_dlsym++;
        return p;
    }
    if ((p = find(e->name)) != NULL)
        cu.by_dlsym++;
    return p;
}

static void set_state(sched_cuda_state s, const char *fmt, ...) FU_PRINTF(2, 3);
static void set_state(sched_cuda_state s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cu.reason, sizeof cu.reason, fmt, ap);
    va_end(ap);
    cu.state = s;
}

static void version_text(char *buf, size_t n, int v) {
    snprintf(buf, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* The driver's own name of a result, usable before everything is resolved. */
static const char *result_name(cudrv_result r) {
    const char *s = NULL;
    if (cu.table.get_error_name && cu.table.get_error_name(r, &s) == CUDRV_SUCCESS && s)
        return s;
    return NULL;
}

static void open_library(void) {
    if (cu.sym)
        return; /* a test's fake: cu.lib and cu.library are set */
    const char *path = getenv("FUSOR_CUDA_LIBRARY");
    if (!path || !*path)
        path = "libcuda.so.1";
    snprintf(cu.library, sizeof cu.library, "%s", path);
    dlerror();
    cu.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!cu.lib) {
        const char *e = dlerror();
        set_state(SCHED_CUDA_NO_DRIVER, "no CUDA driver (%s)", e ? e : path);
    }
}

static void load_state_locked(void);

/* Loads and publishes the state (cu.lock held). */
static void load_locked(void) {
    load_state_locked();
    __atomic_store_n(&cu.loaded, 1, __ATOMIC_RELEASE);
}

static void load_state_locked(void) {
    memset(&cu.table, 0, sizeof cu.table);
    cu.driver_version = cu.ndevices = cu.by_proc = cu.by_dlsym = cu.proc_version = 0;
    cu.has_pools = 0;
    cu.state = SCHED_CUDA_READY;
    cu.reason[0] = 0;
    const char *off = getenv("FUSOR_CUDA");
    if (!cu.sym && off && !strcmp(off, "0")) {
        set_state(SCHED_CUDA_DISABLED, "the GPU is switched off (FUSOR_CUDA=0)");
        return;
    }
    open_library();
    if (!cu.lib && !cu.sym)
        return;

    cudrv_result (*get_version)(int *) = (cudrv_result(*)(int *))find("cuDriverGetVersion");
    if (!get_version) {
        set_state(SCHED_CUDA_MISSING_SYMBOL,
                  "%s is not a CUDA driver (it has no cuDriverGetVersion)", cu.library);
        return;
    }
    int v = 0;
    cudrv_result r = get_version(&v);
    if (r == CUDRV_ERROR_STUB_LIBRARY) {
        set_state(SCHED_CUDA_STUB,
                  "no CUDA driver (%s is the CUDA toolkit's stub library, not a driver: "
                  "CUDA_ERROR_STUB_LIBRARY)",
                  cu.library);
        return;
    }
    if (r != CUDRV_SUCCESS)
        v = 0;
    cu.driver_version = v;

    get_proc_v2_fn v2 = (get_proc_v2_fn)find("cuGetProcAddress_v2");
    get_proc_v1_fn v1 = v2 ? NULL : (get_proc_v1_fn)find("cuGetProcAddress");
    int ask = v && v < SCHED_CUDA_ABI_VERSION ? v : SCHED_CUDA_ABI_VERSION;
    if (v2 || v1)
        cu.proc_version = ask;
    const char *missing = NULL;
    int pools = 1;
    for (size_t i = 0; i < NENTRIES; i++) {
        void *p = resolve(&entries[i], v2, v1, ask);
        memcpy((char *)&cu.table + entries[i].offset, &p, sizeof p);
        if (!p && entries[i].required && !missing)
            missing = entries[i].name;
        if (!p && !strncmp(entries[i].name, "cuMemPool", 9))
            pools = 0;
        if (!p && (!strcmp(entries[i].name, "cuMemAllocFromPoolAsync") ||
                   !strcmp(entries[i].name, "cuMemFreeAsync")))
            pools = 0;
    }
    cu.has_pools = pools;
    char vt[32];
    version_text(vt, sizeof vt, v);
    if (v && v < SCHED_CUDA_MIN_DRIVER) {
        char need[32];
        version_text(need, sizeof need, SCHED_CUDA_MIN_DRIVER);
        set_state(SCHED_CUDA_OLD_DRIVER,
                  "the CUDA driver (%s, CUDA %s) is too old: fusor needs CUDA %s or newer",
                  cu.library, vt, need);
        return;
    }
    if (missing) {
        set_state(SCHED_CUDA_MISSING_SYMBOL,
                  "the CUDA driver (%s, CUDA %s) lacks the entry point %s; it may be too old or "
                  "damaged",
                  cu.library, vt, missing);
        return;
    }
    r = cu.table.init(0);
    if (r == CUDRV_ERROR_STUB_LIBRARY) {
        set_state(SCHED_CUDA_STUB,
                  "no CUDA driver (%s is the CUDA toolkit's stub library, not a driver: "
                  "CUDA_ERROR_STUB_LIBRARY)",
                  cu.library);
        return;
    }
    if (r == CUDRV_ERROR_NO_DEVICE) {
        set_state(SCHED_CUDA_NO_DEVICE,
                  "the CUDA driver (CUDA %s) sees no device (CUDA_ERROR_NO_DEVICE)", vt);
        return;
    }
    if (r != CUDRV_SUCCESS) {
        set_state(SCHED_CUDA_INIT_FAILED, "the CUDA driver (%s, CUDA %s) failed to initialise: %s",
                  cu.library, vt, sched_cuda_error_text(r));
        return;
    }
    if (!v) { /* asked again after cuInit, which some drivers want */
        if (get_version(&v) != CUDRV_SUCCESS || !v) {
            set_state(SCHED_CUDA_INIT_FAILED, "the CUDA driver (%s) does not report its version",
                      cu.library);
            return;
        }
        cu.driver_version = v;
    }
    int n = 0;
    r = cu.table.device_get_count(&n);
    if (r != CUDRV_SUCCESS) {
        set_state(SCHED_CUDA_INIT_FAILED, "the CUDA driver (CUDA %s) cannot count its devices: %s",
                  vt, sched_cuda_error_text(r));
        return;
    }
    if (n <= 0) {
        set_state(SCHED_CUDA_NO_DEVICE, "the CUDA driver (CUDA %s) sees no device", vt);
        return;
    }
    cu.ndevices = n;
    set_state(SCHED_CUDA_READY, "CUDA driver %s (%s), %d device%s", vt, cu.library, n,
              n == 1 ? "" : "s");
}

/* Every launch asks, so the loaded case takes no lock (loaded is set, with release
 * order, only after the state it guards is complete). */
static void ensure_loaded(void) {
    if (__atomic_load_n(&cu.loaded, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&cu.lock);
    if (!cu.loaded)
        load_locked();
    pthread_mutex_unlock(&cu.lock);
}

const cudrv_table *sched_cuda(fusor_status *status) {
    ensure_loaded();
    if (cu.state == SCHED_CUDA_READY) {
        if (status)
            *status = FUSOR_OK;
        return &cu.table;
    }
    fusor_status st = fu_error(FUSOR_ERROR_NO_DEVICE, "%s", cu.reason);
    if (status)
        *status = st;
    return NULL;
}

sched_cuda_state sched_cuda_state_get(const char **reason) {
    ensure_loaded();
    if (reason)
        *reason = cu.reason;
    return cu.state;
}

int sched_cuda_usable(void) {
    ensure_loaded();
    return cu.state == SCHED_CUDA_READY;
}

int sched_cuda_driver_version(void) {
    ensure_loaded();
    return cu.driver_version;
}

int sched_cuda_device_count(void) {
    ensure_loaded();
    return cu.state == SCHED_CUDA_READY ? cu.ndevices : 0;
}

const char *sched_cuda_library(void) {
    ensure_loaded();
    return cu.library;
}

void sched_cuda_resolution(int *by_proc, int *by_dlsym, int *proc_version) {
    ensure_loaded();
    if (by_proc)
        *by_proc = cu.by_proc;
    if (by_dlsym)
        *by_dlsym = cu.by_dlsym;
    if (proc_version)
        *proc_version = cu.proc_version;
}

int sched_cuda_has_pools(void) {
    ensure_loaded();
    return cu.state == SCHED_CUDA_READY && cu.has_pools;
}

fusor_status sched_cuda_reload(sched_cuda_symbol_fn sym, void *lib, const char *name) {
    /* What holds driver objects lets go of them with the old table: streams and pools
     * first (they need their devices' contexts), then the devices. */
    sched_sync_streams_forget();
    mem_devpool_forget();
    sched_device_forget();
    pthread_mutex_lock(&cu.lock);
    cu.sym = sym;
    if (sym) {
        cu.lib = lib;
        snprintf(cu.library, sizeof cu.library, "%s", name ? name : "a test driver");
    } else {
        cu.lib = NULL; /* reopened: dlopen returns the same handle for a loaded library */
    }
    __atomic_store_n(&cu.loaded, 0, __ATOMIC_RELEASE);
    load_locked();
    fusor_status st =
        cu.state == SCHED_CUDA_READY ? FUSOR_OK : fu_error(FUSOR_ERROR_NO_DEVICE, "%s", cu.reason);
    pthread_mutex_unlock(&cu.lock);
    return st;
}

/* ------------------------------------------------------------------ PTX versions */

/* The first CUDA release whose driver loads each PTX ISA version (NVIDIA's "PTX ISA
 * release history"; CUDA 12.6 kept 8.5, 12.7 brought 8.6).  Newest first. */
static const struct {
    int driver, ptx;
} ptx_table[] = {
    {13010, 91}, {13000, 90}, {12090, 88}, {12080, 87}, {12070, 86}, {12050, 85}, {12040, 84},
    {12030, 83}, {12020, 82}, {12010, 81}, {12000, 80}, {11080, 78}, {11070, 77}, {11060, 76},
    {11050, 75}, {11040, 74}, {11030, 73}, {11020, 72}, {11010, 71}, {11000, 70}, {10020, 65},
    {10010, 64}, {10000, 63}, {9020, 62},  {9010, 61},  {9000, 60},
};

int sched_cuda_max_ptx(int driver_version) {
    for (size_t i = 0; i < sizeof ptx_table / sizeof ptx_table[0]; i++)
        if (driver_version >= ptx_table[i].driver)
            return ptx_table[i].ptx;
    return 0;
}

fusor_status sched_cuda_fit_ptx(const char *ptx, int driver_max, int arch_min, char **fixed) {
    *fixed = NULL;
    const char *v = strstr(ptx, ".version");
    int major = 0, minor = 0, len = 0;
    if (!v || sscanf(v, ".version %d.%d%n", &major, &minor, &len) != 2)
        return fu_error(FUSOR_ERROR_INTERNAL, "the PTX has no .version directive");
    int have = major * 10 + minor;
    if (have <= driver_max)
        return FUSOR_OK;
    if (arch_min > driver_max)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "the CUDA driver loads PTX ISA up to %d.%d, but the target architecture "
                        "needs %d.%d: update the driver",
                        driver_max / 10, driver_max % 10, arch_min / 10, arch_min % 10);
    size_t n = strlen(ptx), at = (size_t)(v - ptx);
    char *out = fu_malloc(n + 16);
    if (!out)
        return fu_oom("a copy of the PTX");
    memcpy(out, ptx, at);
    int w = snprintf(out + at, 16, ".version %d.%d", driver_max / 10, driver_max % 10);
    memcpy(out + at + (size_t)w, v + len, n - at - (size_t)len + 1);
    *fixed = out;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ messages */

const char *sched_cuda_error_text(cudrv_result r) {
    static _Thread_local char buf[256];
    const char *name = result_name(r), *text = NULL;
    if (cu.table.get_error_string && cu.table.get_error_string(r, &text) != CUDRV_SUCCESS)
        text = NULL;
    if (name && text)
        snprintf(buf, sizeof buf, "%s (%s)", name, text);
    else if (name)
        snprintf(buf, sizeof buf, "%s", name);
    else
        snprintf(buf, sizeof buf, "CUDA error %d", r);
    return buf;
}

fusor_status sched_cuda_fail(fusor_status status, cudrv_result r, const char *what) {
    return fu_error(status, "%s: %s", what, sched_cuda_error_text(r));
}

char *sched_cuda_describe(void) {
    const char *why;
    sched_cuda_state s = sched_cuda_state_get(&why);
    strbuf b = {0};
    if (s != SCHED_CUDA_READY) {
        sb_printf(&b, "CUDA driver: %s; kernels run on the CPU\n", why);
        return sb_take(&b);
    }
    char vt[32];
    version_text(vt, sizeof vt, cu.driver_version);
    int mp = sched_cuda_max_ptx(cu.driver_version);
    sb_printf(&b, "CUDA driver: %s (%s), PTX ISA up to %d.%d, entry points by %s\n", vt, cu.library,
              mp / 10, mp % 10, cu.proc_version ? "cuGetProcAddress" : "dlsym");
    char *dev = sched_device_describe_all();
    if (dev)
        sb_printf(&b, "%s", dev);
    fu_free(dev);
    return sb_take(&b);
}
