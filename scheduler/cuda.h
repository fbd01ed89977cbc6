/*
 * cuda.h — the CUDA Driver API, opened at run time into a table of function pointers.
 *
 * fusor never links libcuda: `libcuda.so.1` (the driver's own name for it; the unversioned
 * `libcuda.so` is the toolkit's link-time stub) is opened with dlopen on first use, and
 * only the entry points fusor calls are resolved, each at the ABI version this file
 * declares (cuGetProcAddress_v2 with a CUDA version when the driver has it, else the
 * explicitly versioned symbol such as cuMemAlloc_v2).  A missing library, a stub, an old
 * driver, a missing required entry point or no device is a state with a reason, never a
 * crash or a link error; optional entry points (memory pools, occupancy, managed memory)
 * that are missing switch their feature off.
 *
 * Tests replace the symbol source (sched_cuda_reload) with a fake driver that simulates
 * devices, allocation and launch failures and missing entry points, so the error paths
 * of the loader, the pools and the launcher run without a GPU (the SQLite os-layer
 * pattern: the table is the seam).
 *
 * The types below mirror the Driver API's ABI (cuda.h of CUDA 11.2 to 13); names are
 * prefixed cudrv_ so that this header and the toolkit's cuda.h can meet in one file
 * (tests/unit/test_cuda_abi.c checks every value and layout against the real header).
 */
#ifndef FUSOR_SCHED_CUDA_H
#define FUSOR_SCHED_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "fusor.h"

typedef int cudrv_result;
typedef int cudrv_device;
typedef unsigned long long cudrv_ptr;
typedef struct cudrv_ctx_st *cudrv_context;
typedef struct cudrv_mod_st *cudrv_module;
typedef struct cudrv_func_st *cudrv_function;
typedef struct cudrv_stream_st *cudrv_stream;
typedef struct cudrv_event_st *cudrv_event;
typedef struct cudrv_pool_st *cudrv_mempool;
typedef struct cudrv_link_st *cudrv_link;
typedef struct cudrv_graph_st *cudrv_graph;
typedef struct cudrv_graph_exec_st *cudrv_graph_exec;

/* CUresult values fusor looks at. */
enum {
    CUDRV_SUCCESS = 0,
    CUDRV_ERROR_INVALID_VALUE = 1,
    CUDRV_ERROR_OUT_OF_MEMORY = 2,
    CUDRV_ERROR_NOT_INITIALIZED = 3,
    CUDRV_ERROR_STUB_LIBRARY = 34,
    CUDRV_ERROR_NO_DEVICE = 100,
    CUDRV_ERROR_INVALID_DEVICE = 101,
    CUDRV_ERROR_INVALID_PTX = 218,
    CUDRV_ERROR_UNSUPPORTED_PTX_VERSION = 222,
    CUDRV_ERROR_NOT_FOUND = 500,
    CUDRV_ERROR_NOT_READY = 600,
    CUDRV_ERROR_LAUNCH_FAILED = 719,
    CUDRV_ERROR_NOT_SUPPORTED = 801,
    CUDRV_ERROR_UNKNOWN = 999
};

/* CUdevice_attribute values. */
enum {
    CUDRV_ATTR_MAX_THREADS_PER_BLOCK = 1,
    CUDRV_ATTR_CLOCK_RATE = 13,
    CUDRV_ATTR_MULTIPROCESSOR_COUNT = 16,
    CUDRV_ATTR_PCI_BUS_ID = 33,
    CUDRV_ATTR_MEMORY_CLOCK_RATE = 36,
    CUDRV_ATTR_GLOBAL_MEMORY_BUS_WIDTH = 37,
    CUDRV_ATTR_L2_CACHE_SIZE = 38,
    CUDRV_ATTR_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CUDRV_ATTR_ASYNC_ENGINE_COUNT = 40,
    CUDRV_ATTR_UNIFIED_ADDRESSING = 41,
    CUDRV_ATTR_COMPUTE_CAPABILITY_MAJOR = 75,
    CUDRV_ATTR_COMPUTE_CAPABILITY_MINOR = 76,
    CUDRV_ATTR_MANAGED_MEMORY = 83,
    CUDRV_ATTR_MEMORY_POOLS_SUPPORTED = 115
};

/* CUjit_option values (cuModuleLoadDataEx). */
enum {
    CUDRV_JIT_WALL_TIME = 2,
    CUDRV_JIT_INFO_LOG_BUFFER = 3,
    CUDRV_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
    CUDRV_JIT_ERROR_LOG_BUFFER = 5,
    CUDRV_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
    CUDRV_JIT_LOG_VERBOSE = 12
};

/* CUjitInputType and CUstreamCaptureMode values. */
enum { CUDRV_JIT_INPUT_PTX = 1, CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1 };

/* CUmemPool_attribute values. */
enum {
    CUDRV_POOL_ATTR_RELEASE_THRESHOLD = 4, /* cuuint64_t */
    CUDRV_POOL_ATTR_RESERVED_MEM_CURRENT = 5,
    CUDRV_POOL_ATTR_RESERVED_MEM_HIGH = 6,
    CUDRV_POOL_ATTR_USED_MEM_CURRENT = 7,
    CUDRV_POOL_ATTR_USED_MEM_HIGH = 8
};

enum {
    CUDRV_MEM_ALLOCATION_TYPE_PINNED = 1,
    CUDRV_MEM_LOCATION_TYPE_DEVICE = 1,
    CUDRV_MEM_ATTACH_GLOBAL = 1,
    CUDRV_EVENT_DISABLE_TIMING = 2,
    CUDRV_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CUDRV_FUNC_ATTRIBUTE_NUM_REGS = 4,
    CUDRV_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
    CUDRV_POINTER_ATTRIBUTE_DEVICE_ORDINAL = 9,
    CUDRV_MEMORYTYPE_HOST = 1,
    CUDRV_MEMORYTYPE_DEVICE = 2,
    CUDRV_MEMORYTYPE_UNIFIED = 4
};

/* CUmemPoolProps (88 bytes).  max_size exists from CUDA 12.2 on; older drivers require
 * those bytes to be zero, so it is only set where the driver knows it. */
typedef struct cudrv_pool_props {
    int alloc_type;
    int handle_types;
    struct {
        int type;
        int id;
    } location;
    void *win32_security_attributes;
    size_t max_size;
    unsigned short usage;
    unsigned char reserved[54];
} cudrv_pool_props;

/* The entry points fusor uses, at the ABI version noted (the _v2 names are what
 * cuda.h's macros select).  Members that are NULL were not found; the loader refuses a
 * driver that lacks a required one. */
typedef struct cudrv_table {
    cudrv_result (*get_error_string)(cudrv_result, const char **);
    cudrv_result (*get_error_name)(cudrv_result, const char **);
    cudrv_result (*init)(unsigned);
    cudrv_result (*driver_get_version)(int *);
    cudrv_result (*device_get_count)(int *);
    cudrv_result (*device_get)(cudrv_device *, int);
    cudrv_result (*device_get_name)(char *, int, cudrv_device);
    cudrv_result (*device_get_attribute)(int *, int, cudrv_device);
    cudrv_result (*device_total_mem)(size_t *, cudrv_device); /* _v2 */
    cudrv_result (*primary_ctx_retain)(cudrv_context *, cudrv_device);
    cudrv_result (*primary_ctx_release)(cudrv_device); /* _v2 */
    cudrv_result (*ctx_set_current)(cudrv_context);
    cudrv_result (*ctx_get_current)(cudrv_context *); /* optional */
    cudrv_result (*ctx_synchronize)(void);
    cudrv_result (*mem_get_info)(size_t *, size_t *); /* _v2 */
    cudrv_result (*module_load_data_ex)(cudrv_module *, const void *, unsigned, int *, void **);
    cudrv_result (*module_unload)(cudrv_module);
    cudrv_result (*module_get_function)(cudrv_function *, cudrv_module, const char *);
    cudrv_result (*launch_kernel)(cudrv_function, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  unsigned, unsigned, cudrv_stream, void **, void **);
    cudrv_result (*stream_create)(cudrv_stream *, unsigned);
    cudrv_result (*stream_destroy)(cudrv_stream); /* _v2 */
    cudrv_result (*stream_synchronize)(cudrv_stream);
    cudrv_result (*stream_wait_event)(cudrv_stream, cudrv_event, unsigned);
    cudrv_result (*event_create)(cudrv_event *, unsigned);
    cudrv_result (*event_destroy)(cudrv_event); /* _v2 */
    cudrv_result (*event_record)(cudrv_event, cudrv_stream);
    cudrv_result (*event_synchronize)(cudrv_event);
    cudrv_result (*event_query)(cudrv_event);
    cudrv_result (*mem_alloc)(cudrv_ptr *, size_t);  /* _v2 */
    cudrv_result (*mem_free)(cudrv_ptr);             /* _v2 */
    cudrv_result (*mem_alloc_host)(void **, size_t); /* _v2 */
    cudrv_result (*mem_free_host)(void *);
    cudrv_result (*memcpy_htod_async)(cudrv_ptr, const void *, size_t, cudrv_stream); /* _v2 */
    cudrv_result (*memcpy_dtoh_async)(void *, cudrv_ptr, size_t, cudrv_stream);       /* _v2 */
    cudrv_result (*memcpy_dtod_async)(cudrv_ptr, cudrv_ptr, size_t, cudrv_stream);    /* _v2 */
    /* Optional: each switches a feature off when missing. */
    cudrv_result (*event_elapsed_time)(float *, cudrv_event, cudrv_event);
    cudrv_result (*occupancy_max_potential_block_size)(int *, int *, cudrv_function,
                                                       size_t (*)(int), size_t, int);
    cudrv_result (*func_get_attribute)(int *, int, cudrv_function);
    cudrv_result (*mem_alloc_managed)(cudrv_ptr *, size_t, unsigned);
    cudrv_result (*pointer_get_attribute)(void *, int, cudrv_ptr);
    cudrv_result (*mem_pool_create)(cudrv_mempool *, const cudrv_pool_props *);
    cudrv_result (*mem_pool_destroy)(cudrv_mempool);
    cudrv_result (*mem_pool_set_attribute)(cudrv_mempool, int, void *);
    cudrv_result (*mem_pool_get_attribute)(cudrv_mempool, int, void *);
    cudrv_result (*mem_pool_trim_to)(cudrv_mempool, size_t);
    cudrv_result (*mem_alloc_from_pool_async)(cudrv_ptr *, size_t, cudrv_mempool, cudrv_stream);
    cudrv_result (*mem_free_async)(cudrv_ptr, cudrv_stream);
    /* The JIT linker: PTX to the device's binary (cubin), kept in the disk cache. */
    cudrv_result (*link_create)(unsigned, int *, void **, cudrv_link *); /* _v2 */
    cudrv_result (*link_add_data)(cudrv_link, int, void *, size_t, const char *, unsigned, int *,
                                  void **); /* _v2 */
    cudrv_result (*link_complete)(cudrv_link, void **, size_t *);
    cudrv_result (*link_destroy)(cudrv_link);
    /* CUDA Graphs: a prepared launch's kernels captured once and replayed. */
    cudrv_result (*stream_begin_capture)(cudrv_stream, int); /* _v2 */
    cudrv_result (*stream_end_capture)(cudrv_stream, cudrv_graph *);
    cudrv_result (*graph_instantiate)(cudrv_graph_exec *, cudrv_graph,
                                      unsigned long long); /* WithFlags */
    cudrv_result (*graph_launch)(cudrv_graph_exec, cudrv_stream);
    cudrv_result (*graph_exec_destroy)(cudrv_graph_exec);
    cudrv_result (*graph_destroy)(cudrv_graph);
} cudrv_table;

/* Why the GPU is or is not usable. */
typedef enum sched_cuda_state {
    SCHED_CUDA_READY = 0,
    SCHED_CUDA_DISABLED,       /* FUSOR_CUDA=0 */
    SCHED_CUDA_NO_DRIVER,      /* libcuda.so.1 could not be opened */
    SCHED_CUDA_STUB,           /* the toolkit's stub library, not a driver */
    SCHED_CUDA_MISSING_SYMBOL, /* a required entry point is missing */
    SCHED_CUDA_OLD_DRIVER,     /* older than SCHED_CUDA_MIN_DRIVER */
    SCHED_CUDA_INIT_FAILED,    /* cuInit failed for another reason */
    SCHED_CUDA_NO_DEVICE       /* a driver, but no device */
} sched_cuda_state;

/* The oldest driver fusor uses: CUDA 11.2 brought stream-ordered memory pools. */
#define SCHED_CUDA_MIN_DRIVER 11020
/* The CUDA version whose ABI the table's entry points have (cuGetProcAddress's
 * cudaVersion argument); lower drivers are asked for their own version. */
#define SCHED_CUDA_ABI_VERSION 12000

/* Where symbols come from: dlsym on the opened library, or a test's fake. */
typedef void *(*sched_cuda_symbol_fn)(void *lib, const char *name);

/* The table when the driver is usable (loading it on first use), else NULL with the
 * reason as this thread's error message and FUSOR_ERROR_NO_DEVICE from *status (status
 * may be NULL).  Thread-safe. */
const cudrv_table *sched_cuda(fusor_status *status);
/* The state and its reason ("no CUDA driver (libcuda.so.1: cannot open ...)"), loading
 * on first use.  The string is constant until the next reload. */
sched_cuda_state sched_cuda_state_get(const char **reason);
/* 1 when the driver is loaded and has at least one device.  Cheap after the first call. */
int sched_cuda_usable(void);
/* cuDriverGetVersion's value (12040 for 12.4), or 0 when no driver was opened. */
int sched_cuda_driver_version(void);
int sched_cuda_device_count(void);
/* Where the table came from ("libcuda.so.1", a path, or a test's name). */
const char *sched_cuda_library(void);
/* How an entry point was resolved: counts of cuGetProcAddress and dlsym lookups, and the
 * cudaVersion asked of cuGetProcAddress (0 when it was not used).  For tests and info. */
void sched_cuda_resolution(int *by_proc_address, int *by_dlsym, int *proc_version);
/* 1 when the optional entry points of stream-ordered pools were all found. */
int sched_cuda_has_pools(void);

/* The newest PTX ISA a driver of version `driver_version` loads, as major*10+minor
 * (78 for 7.8), or 0 for a driver older than CUDA 9.0.  Pure; the table is in cuda.c
 * and docs/gpu.md. */
int sched_cuda_max_ptx(int driver_version);
/* Makes PTX acceptable to the loaded driver: when its ".version X.Y" is newer than the
 * driver loads, the directive is lowered to the driver's newest (fusor's kernels use no
 * instruction newer than their target's minimum, cg_gpu_ptx_version), into a fu_malloc'd
 * copy in *fixed (NULL when the text is fine as it is).  FUSOR_ERROR_UNSUPPORTED when the
 * driver is older than the target itself needs. */
fusor_status sched_cuda_fit_ptx(const char *ptx, int driver_max_ptx, int arch_min_ptx,
                                char **fixed);

/* "CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for a result, via the driver's own names
 * when it has them.  Returns a pointer into a per-thread buffer. */
const char *sched_cuda_error_text(cudrv_result r);
/* fu_error(status, "<what>: CUDA_ERROR_... (...)") */
fusor_status sched_cuda_fail(fusor_status status, cudrv_result r, const char *what);

/* Test hook: forgets the loaded driver (devices, contexts, modules and pools with it)
 * and loads again from `sym`/`lib` (a fake; name is what messages call it), or, with
 * sym NULL, from libcuda.so.1 (or $FUSOR_CUDA_LIBRARY) on next use.  Streams and arrays
 * that hold driver objects must be gone first.  Returns the new state's status. */
fusor_status sched_cuda_reload(sched_cuda_symbol_fn sym, void *lib, const char *name);

/* A multi-line description for `fusor info`: driver, PTX ISA, devices, or the reason
 * there are none (fu_malloc'd). */
char *sched_cuda_describe(void);

#endif
