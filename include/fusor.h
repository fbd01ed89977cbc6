/*
 * fusor.h — the one public C header of fusor, a GPU-first array-kernel framework.
 *
 * A kernel written in fusor's array-expression language is fused into one pass over
 * memory (or the fewest passes, when element-wise work depends on a reduction) and
 * compiled by LLVM.  Everything here is plain C11: opaque handles, a status code from
 * every call, and a per-thread message behind fusor_last_error().  The library never
 * prints, aborts or exits.
 *
 * The shortest complete program:
 *
 *     fusor_context *ctx;  fusor_kernel *k;  fusor_args *a;
 *     fusor_context_create(NULL, &ctx);
 *     fusor_kernel_compile(ctx, "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) {"
 *                               "  z = a * x + y }", "axpy.fu", NULL, &k);
 *     fusor_args_create(k, &a);
 *     fusor_args_set_f64(a, "a", 2.0);
 *     fusor_args_set_array(a, "x", x);  ... y, z ...
 *     if (fusor_launch(k, a) != FUSOR_OK) fprintf(stderr, "%s\n", fusor_last_error());
 *
 * docs/c-api.md is the guide; each function is described beside its declaration.
 */
#ifndef FUSOR_H
#define FUSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FUSOR_API __attribute__((visibility("default")))
#else
#define FUSOR_API
#endif

#define FUSOR_VERSION_MAJOR 0
#define FUSOR_VERSION_MINOR 1
#define FUSOR_VERSION_PATCH 0
#define FUSOR_VERSION_STRING "0.1.0"

/* The most dimensions an array (and a kernel's broadcast domain) may have. */
#define FUSOR_MAX_DIMS 8

/* ------------------------------------------------------------------ status */

typedef enum fusor_status {
    FUSOR_OK = 0,
    FUSOR_ERROR_INVALID_ARGUMENT, /* a NULL handle, a bad option, an unknown name      */
    FUSOR_ERROR_LANGUAGE,         /* the kernel source has a syntax or type error      */
    FUSOR_ERROR_SHAPE,            /* arrays do not broadcast, or an output is misshaped */
    FUSOR_ERROR_DTYPE,            /* an argument's dtype is not the declared one        */
    FUSOR_ERROR_ALIAS,            /* an output overlaps an input other than exactly     */
    FUSOR_ERROR_VALUE,            /* a value-dependent error, e.g. min() of no elements */
    FUSOR_ERROR_OUT_OF_MEMORY,
    FUSOR_ERROR_COMPILE,          /* LLVM rejected or failed to compile generated code  */
    FUSOR_ERROR_IO,               /* a file could not be read or written, or is corrupt */
    FUSOR_ERROR_UNSUPPORTED,      /* a valid request this build or machine cannot serve */
    FUSOR_ERROR_NO_DEVICE,        /* a GPU was asked for and none is usable             */
    FUSOR_ERROR_INTERNAL
} fusor_status;

/* The message of the last failed call on this thread ("" if none).  The pointer stays
 * valid until the next fusor call on the same thread. */
FUSOR_API const char *fusor_last_error(void);
/* A short constant name for a status, e.g. "FUSOR_ERROR_SHAPE". */
FUSOR_API const char *fusor_status_name(fusor_status status);
FUSOR_API const char *fusor_version(void);
/* Frees a string or buffer that a fusor call returned to the caller. */
FUSOR_API void fusor_free(void *p);

/* ------------------------------------------------------------------ dtypes */

typedef enum fusor_dtype {
    FUSOR_BOOL = 0,
    FUSOR_I8,
    FUSOR_I16,
    FUSOR_I32,
    FUSOR_I64,
    FUSOR_U8,
    FUSOR_U16,
    FUSOR_U32,
    FUSOR_U64,
    FUSOR_F32,
    FUSOR_F64,
    FUSOR_F16, /* IEEE half (NumPy float16): stored as half, computed in f32; added last so
                  the numbers of the dtypes above stay what existing binaries use */
    FUSOR_NUM_DTYPES
} fusor_dtype;

/* Size in bytes of one element (bool is one byte holding 0 or 1; f16 two). */
FUSOR_API size_t fusor_dtype_size(fusor_dtype dtype);
/* The language's name of a dtype ("f32"), or "?" for an invalid value. */
FUSOR_API const char *fusor_dtype_name(fusor_dtype dtype);
/* Parses "f32", "float32", "f16", "float16", "i64", "int64", "bool", ... */
FUSOR_API fusor_status fusor_dtype_from_name(const char *name, fusor_dtype *out);
/* An f16 element's bits from a double, rounded once to the nearest half (ties to even;
 * beyond the largest half, inf; NaN stays a quiet NaN), as NumPy's astype(float16); and
 * back, exactly.  C has no portable half type: these fill and read FUSOR_F16 arrays. */
FUSOR_API uint16_t fusor_f16_from_f64(double x);
FUSOR_API double fusor_f16_to_f64(uint16_t bits);

/* ----------------------------------------------------------------- context */

typedef struct fusor_context fusor_context;

typedef enum fusor_target {
    FUSOR_TARGET_AUTO = 0, /* the GPU when one is usable and worth it, else the CPU */
    FUSOR_TARGET_CPU,
    FUSOR_TARGET_GPU
} fusor_target;

/* How math functions (sin, exp, pow, ...) are computed in compiled CPU loops. */
typedef enum fusor_math {
    FUSOR_MATH_DEFAULT = 0, /* vectorised with SLEEF's 1-ulp functions (max error <= 1 ulp);
                               the C library one element at a time where SLEEF is missing */
    FUSOR_MATH_FAST,        /* vectorised with glibc's libmvec (max error <= 4 ulp), faster */
    FUSOR_MATH_SCALAR       /* the C library (libm) one element at a time, as NumPy does */
} fusor_math;

/* Options of a context; zero-initialise and set what you need (or pass NULL). */
typedef struct fusor_context_options {
    fusor_target target; /* default FUSOR_TARGET_AUTO */
    int opt_level;       /* LLVM optimisation level 0..3; 0 here means the default (3) */
    fusor_math math;     /* default FUSOR_MATH_DEFAULT, or FUSOR_MATH=fast|scalar|default */
    int disk_cache;      /* the persistent kernel cache: 0 the default (on unless
                            FUSOR_CACHE=0), 1 on, -1 off */
} fusor_context_options;

/* A context owns compiled kernels (and their cache) and arrays it allocates.  Contexts
 * are independent; one context may be used from many threads at once. */
FUSOR_API fusor_status fusor_context_create(const fusor_context_options *options,
                                            fusor_context **out);
FUSOR_API void fusor_context_destroy(fusor_context *ctx);
FUSOR_API fusor_status fusor_context_set_target(fusor_context *ctx, fusor_target target);
/* The GPU (ordinal) that launches of host arrays use on a machine with several; -1
 * restores the default, $FUSOR_DEVICE or else 0.  Launches of arrays that live on a GPU
 * run on that GPU whatever this says.  A device that does not exist makes such a launch
 * fail (target GPU) or run on the CPU (target AUTO), with the reason. */
FUSOR_API fusor_status fusor_context_set_device(fusor_context *ctx, int device);
/* The GPU launches of host arrays use now: fusor_context_set_device's, else
 * $FUSOR_DEVICE, else 0 (-1 for a NULL context).  Whether it exists is not checked. */
FUSOR_API int fusor_context_device(const fusor_context *ctx);

/* The number of CPU threads host launches use.  The default is one per physical core
 * this process may run on (its affinity mask and cgroup CPU quota), or FUSOR_NUM_THREADS
 * from the environment.  It may be changed at any time between launches; 0 restores the
 * default.  Process-wide. */
FUSOR_API fusor_status fusor_set_num_threads(int n);
FUSOR_API int fusor_get_num_threads(void);
FUSOR_API int fusor_default_num_threads(void);

/* A multi-line, human-readable description of the runtime: version, LLVM version, host
 * CPU and its features, hwloc topology, default thread count, CUDA driver and NVRTC
 * availability (with the reason when missing).  Free with fusor_free(). */
FUSOR_API fusor_status fusor_runtime_info(char **text);

/* ------------------------------------------------------------------ arrays */

typedef struct fusor_array fusor_array;

/* Wraps caller-owned memory, without copying: `data` holds elements of `dtype` laid out
 * by `shape` and byte `strides` (any sign, zero allowed; NULL means C order).  The
 * caller keeps the memory alive while the array is used.  ndim may be 0 (a scalar). */
FUSOR_API fusor_status fusor_array_wrap(fusor_context *ctx, void *data, fusor_dtype dtype,
                                        int ndim, const int64_t *shape,
                                        const int64_t *strides, fusor_array **out);
/* Allocates a C-ordered array owned by fusor (64-byte aligned, uninitialised). */
FUSOR_API fusor_status fusor_array_create(fusor_context *ctx, fusor_dtype dtype, int ndim,
                                          const int64_t *shape, fusor_array **out);
/* Arrays are reference counted: retain adds a reference, destroy drops one and frees
 * the array (and owned memory) with the last.  destroy(NULL) does nothing. */
FUSOR_API void fusor_array_retain(fusor_array *a);
FUSOR_API void fusor_array_destroy(fusor_array *a);
FUSOR_API void *fusor_array_data(const fusor_array *a);
FUSOR_API fusor_dtype fusor_array_dtype(const fusor_array *a);
FUSOR_API int fusor_array_ndim(const fusor_array *a);
FUSOR_API const int64_t *fusor_array_shape(const fusor_array *a);
FUSOR_API const int64_t *fusor_array_strides(const fusor_array *a);
FUSOR_API int64_t fusor_array_size(const fusor_array *a); /* number of elements */

/* .npy files (format 1.0-3.0, little-endian, C or Fortran order).  load returns an
 * owned array; save writes C order whatever the array's strides. */
FUSOR_API fusor_status fusor_npy_load(fusor_context *ctx, const char *path, fusor_array **out);
FUSOR_API fusor_status fusor_npy_save(const char *path, const fusor_array *a);

/* ----------------------------------------------------------------- kernels */

typedef struct fusor_kernel fusor_kernel;

/* Compiles the kernel `name` of `source` (NULL: the source's only kernel).  `filename`
 * is used in error messages ("file:line:col").  Compiling the same kernel twice in a
 * context compiles once.  Kernels whose parameter types are left out are generic: they
 * are specialised for the dtypes of the arguments of each launch (see fusor_ufunc). */
FUSOR_API fusor_status fusor_kernel_compile(fusor_context *ctx, const char *source,
                                            const char *filename, const char *name,
                                            fusor_kernel **out);
FUSOR_API void fusor_kernel_destroy(fusor_kernel *k);
FUSOR_API const char *fusor_kernel_name(const fusor_kernel *k);

/* The parameters (inputs first, then outputs) of a kernel, for tools that bind
 * arguments from a command line. */
typedef struct fusor_param_info {
    const char *name;
    fusor_dtype dtype; /* FUSOR_NUM_DTYPES when generic (not yet known) */
    int is_array;      /* 1 for an array, 0 for a scalar; -1 when generic */
    int is_output;
} fusor_param_info;
FUSOR_API int fusor_kernel_num_params(const fusor_kernel *k);
FUSOR_API fusor_status fusor_kernel_param(const fusor_kernel *k, int i, fusor_param_info *out);

/* Lists the names of the kernels in a source, separated by ", ".  Free with fusor_free. */
FUSOR_API fusor_status fusor_source_kernels(const char *source, const char *filename,
                                            char **names);

typedef enum fusor_emit {
    FUSOR_EMIT_IR = 0, /* the fused, typed IR and its pass plan */
    FUSOR_EMIT_LLVM,   /* optimised LLVM IR for the host */
    FUSOR_EMIT_ASM,    /* host assembly */
    FUSOR_EMIT_PTX,    /* PTX for the GPU, by the path and arch of fusor_gpu_options */
    FUSOR_EMIT_CUDA    /* the CUDA C the NVRTC path compiles */
} fusor_emit;
/* Text of a compiled (non-generic) kernel at some stage.  Free with fusor_free. */
FUSOR_API fusor_status fusor_kernel_emit(fusor_kernel *k, fusor_emit what, char **text);

/* How GPU code is made: LLVM's NVPTX back end with libdevice, or CUDA C through NVRTC
 * (loaded at run time).  AUTO is NVPTX, and NVRTC when this build or machine cannot use
 * NVPTX (no NVPTX in LLVM, or no libdevice for a kernel that needs it). */
typedef enum fusor_gpu_path {
    FUSOR_GPU_PATH_AUTO = 0,
    FUSOR_GPU_PATH_NVPTX,
    FUSOR_GPU_PATH_NVRTC
} fusor_gpu_path;

/* Options of GPU code generation; zero-initialise (IEEE floats, sm_80, AUTO). */
typedef struct fusor_gpu_options {
    fusor_gpu_path path;
    int arch;        /* sm_XX as XX (75, 80, 86, 89, 90); 0: the device's, else 80 */
    int ftz;         /* 1: f32 denormals flush to zero (nvcc -ftz=true) */
    int approx_div;  /* 1: f32 division and reciprocal approximate (nvcc -prec-div=false) */
    int approx_sqrt; /* 1: f32 sqrt approximate (nvcc -prec-sqrt=false) */
} fusor_gpu_options;
/* Sets the GPU options of a context's compilations (NULL: the defaults).  PTX is cached
 * per kernel by path, arch and flags, so switching back and forth compiles once each. */
FUSOR_API fusor_status fusor_context_set_gpu_options(fusor_context *ctx,
                                                     const fusor_gpu_options *options);
/* Which path made (or makes: it compiles if needed) the kernel's GPU code under the
 * context's GPU options: FUSOR_GPU_PATH_NVPTX or FUSOR_GPU_PATH_NVRTC. */
FUSOR_API fusor_status fusor_kernel_gpu_path(fusor_kernel *k, fusor_gpu_path *out);

/* -------------------------------------------------------------- arguments */

typedef struct fusor_args fusor_args;

/* An argument set for one kernel.  Bind inputs (and, optionally, outputs) by name, then
 * launch.  An array output left unbound is allocated by fusor at launch with the broadcast
 * shape; read it back with fusor_args_get_array.  Scalar outputs are read by name. */
FUSOR_API fusor_status fusor_args_create(fusor_kernel *k, fusor_args **out);
FUSOR_API void fusor_args_destroy(fusor_args *a);
FUSOR_API fusor_status fusor_args_set_array(fusor_args *a, const char *name, fusor_array *arr);
/* A typed scalar: `value` points at one element of `dtype`. */
FUSOR_API fusor_status fusor_args_set_scalar(fusor_args *a, const char *name, fusor_dtype dtype,
                                             const void *value);
FUSOR_API fusor_status fusor_args_set_f64(fusor_args *a, const char *name, double v);
FUSOR_API fusor_status fusor_args_set_i64(fusor_args *a, const char *name, int64_t v);
/* A weakly typed number for a generic parameter, written as in the language ("2.5",
 * "3", "true"): it behaves exactly like that literal written in the source. */
FUSOR_API fusor_status fusor_args_set_literal(fusor_args *a, const char *name, const char *text);
/* After a launch: an array output (a new reference the caller destroys). */
FUSOR_API fusor_status fusor_args_get_array(fusor_args *a, const char *name, fusor_array **out);
/* After a launch: a scalar output.  `value` receives one element of *dtype (8 bytes is
 * always enough). */
FUSOR_API fusor_status fusor_args_get_scalar(fusor_args *a, const char *name, fusor_dtype *dtype,
                                             void *value);
/* A scalar output converted to double. */
FUSOR_API fusor_status fusor_args_get_f64(fusor_args *a, const char *name, double *v);

/* Runs the kernel on the bound arguments and returns when outputs are written.  All
 * validation (names, dtypes, shapes, aliasing) happens before any output is touched: on
 * an error the outputs are exactly as they were.  An output whose elements overlap each
 * other (a zero stride) is FUSOR_ERROR_ALIAS. */
FUSOR_API fusor_status fusor_launch(fusor_kernel *k, fusor_args *a);

/* Runs the kernel like fusor_launch but unfused: every operation is its own pass over
 * memory with a temporary array for its result, as NumPy evaluates an expression (stencil
 * loads are shifted views, after a padded copy unless the boundary is interior; an axis
 * reduction is a pass over its operand's temporary).  For benchmarks (what fusion buys);
 * the same checks, the same results up to rounding of sums; host only.  An output that is
 * also an input is FUSOR_ERROR_UNSUPPORTED. */
FUSOR_API fusor_status fusor_launch_unfused(fusor_kernel *k, fusor_args *a);

/* Where the last launch with these arguments ran ("cpu" or "gpu") and with how many
 * threads. */
FUSOR_API const char *fusor_args_last_target(const fusor_args *a);
FUSOR_API int fusor_args_last_threads(const fusor_args *a);

/* -------------------------------------------------------- prepared launches */

/* A prepared launch is a kernel bound to its arguments once, for time loops that launch
 * the same kernel thousands of times: every check of fusor_launch (dtypes, shapes,
 * aliasing, stencils) runs once, in fusor_prepare, which also allocates the unbound
 * outputs (on the GPU of the inputs when they all live there) and resolves the compiled
 * code.  A launch then allocates nothing and looks nothing up.  The prepared launch
 * keeps a reference to every array it uses; later changes to `a`'s bindings do not reach
 * it, and `a` must outlive it: each launch's results are read from `a`
 * (fusor_args_get_array, fusor_args_get_f64, ...) as after fusor_launch. */
typedef struct fusor_prepared fusor_prepared;
typedef struct fusor_stream fusor_stream; /* see the GPU section below */
FUSOR_API fusor_status fusor_prepare(fusor_kernel *k, fusor_args *a, fusor_prepared **out);
/* Waits for the prepared launches it has queued and frees it.  destroy(NULL) does nothing. */
FUSOR_API void fusor_prepared_destroy(fusor_prepared *p);
/* Runs the prepared launch and returns when outputs are written (like fusor_launch, it
 * first waits for the context's default stream).  An error while launches of p are
 * still queued on a stream: one launch of a prepared set runs at a time. */
FUSOR_API fusor_status fusor_prepared_launch(fusor_prepared *p);
/* Queues the prepared launch on s (NULL: the context's default stream) with the binding
 * of this moment: swaps and scalar updates made afterwards apply to later launches only.
 * Launches of one prepared set must run in order: queue them on one stream (or order the
 * streams with events).  A steady loop of queued launches allocates nothing either. */
FUSOR_API fusor_status fusor_prepared_launch_async(fusor_prepared *p, fusor_stream *s);
/* Ping-pong: the arrays bound to parameters x and y (an input and an output, say "u" and
 * "out") trade places for the following launches.  They must have the same dtype, shape,
 * strides and memory; nothing else is checked again. */
FUSOR_API fusor_status fusor_prepared_swap(fusor_prepared *p, const char *x, const char *y);
/* A new value for a scalar parameter bound with fusor_args_set_scalar/_f64/_i64 (not a
 * literal, which is compiled in), for the following launches.  For a generic kernel the
 * dtype must be the one bound at fusor_prepare (it chose the code). */
FUSOR_API fusor_status fusor_prepared_set_scalar(fusor_prepared *p, const char *name,
                                                 fusor_dtype dtype, const void *value);
FUSOR_API fusor_status fusor_prepared_set_f64(fusor_prepared *p, const char *name, double v);
/* The array bound to parameter `name` now (after swaps): a new reference to destroy. */
FUSOR_API fusor_status fusor_prepared_get_array(fusor_prepared *p, const char *name,
                                                fusor_array **out);

/* A sequence is several prepared launches run in order as one step of a time loop (a
 * stencil, then a correction; or a kernel per field).  Launching it runs each member with
 * its bindings of that moment; once every member has run on one GPU with device arrays,
 * a step is captured whole as one CUDA Graph per arrangement of the members' arrays and
 * replayed: one driver call for the step.  The members stay usable on their own; swaps
 * and scalar updates on them apply to the following steps.  A sequence must not outlive
 * its members. */
typedef struct fusor_sequence fusor_sequence;
FUSOR_API fusor_status fusor_sequence_create(fusor_context *ctx, fusor_sequence **out);
/* Waits for the sequence's queued launches and frees it.  destroy(NULL) does nothing. */
FUSOR_API void fusor_sequence_destroy(fusor_sequence *q);
/* Appends a prepared launch of the same context: members run in the order added. */
FUSOR_API fusor_status fusor_sequence_add(fusor_sequence *q, fusor_prepared *p);
/* Runs one step and returns when it is done (each member's results are in its argument
 * set, as after fusor_prepared_launch). */
FUSOR_API fusor_status fusor_sequence_launch(fusor_sequence *q);
/* Queues one step on s (NULL: the context's default stream) with the members' bindings of
 * this moment.  Steps of one sequence must run in order: queue them on one stream. */
FUSOR_API fusor_status fusor_sequence_launch_async(fusor_sequence *q, fusor_stream *s);

/* ------------------------------------------------------------------ ufuncs */

/* A ufunc is a one-output kernel made from an expression: its free names are its inputs
 * (generic: each launch's dtypes specialise it, once per combination, cached) and its
 * output is named "out".  "a * sin(b) + 1" is a ufunc of a and b.  The returned handle is
 * an ordinary kernel: bind arguments with fusor_args_* and call fusor_launch. */
FUSOR_API fusor_status fusor_ufunc_create(fusor_context *ctx, const char *expression,
                                          fusor_kernel **out);

/* ------------------------------------------------------------ performance */

/* The machine's copy bandwidth in bytes per second (reading plus writing, as STREAM's
 * copy counts it), measured once with the default thread count on arrays far larger than
 * the caches and kept in the kernel cache directory; `remeasure` measures again.
 * *threads receives the thread count it was measured with (may be NULL). */
FUSOR_API fusor_status fusor_copy_bandwidth(int remeasure, double *bytes_per_second, int *threads);

/* The persistent kernel cache: compiled CPU code on disk in $FUSOR_CACHE_DIR, else
 * $XDG_CACHE_HOME/fusor, else ~/.cache/fusor, so that a new process skips LLVM.
 * FUSOR_CACHE=0 turns it off.  Strings are freed with fusor_free. */
FUSOR_API fusor_status fusor_cache_dir(char **path);
/* One line per entry: file name, bytes, kernel name, age. */
FUSOR_API fusor_status fusor_cache_list(char **text);
/* Removes every entry; *removed (may be NULL) receives how many. */
FUSOR_API fusor_status fusor_cache_clear(long *removed);
/* Removes the least recently used entries until the cache holds at most three quarters
 * of `max_bytes` when it holds more (0: the limit, $FUSOR_CACHE_MAX_SIZE or 1 GiB, which
 * every write applies by itself).  *removed (may be NULL) receives how many. */
FUSOR_API fusor_status fusor_cache_trim(uint64_t max_bytes, long *removed);
/* Entries and bytes on disk, and this process's hits, misses, writes and rejected
 * (corrupt or foreign) entries. */
FUSOR_API fusor_status fusor_cache_stats(char **text);

/* -------------------------------------------------------------------- GPU */

/* fusor runs kernels on an NVIDIA GPU when the CUDA driver (libcuda.so.1, opened at run
 * time) sees one; docs/gpu.md describes the runtime.  Nothing below needs a GPU to be
 * called: without one, the calls that would touch it return FUSOR_ERROR_NO_DEVICE with
 * the reason, and streams and events work on the host alone. */

/* FUSOR_OK when a GPU is usable, else FUSOR_ERROR_NO_DEVICE with the reason ("no CUDA
 * driver (...)", an old driver, no device) as fusor_last_error(). */
FUSOR_API fusor_status fusor_gpu_status(void);
/* The number of usable GPUs (0 when fusor_gpu_status fails). */
FUSOR_API int fusor_gpu_count(void);

typedef struct fusor_stream fusor_stream;
typedef struct fusor_event fusor_event;

/* Where an array's bytes live. */
typedef enum fusor_memory {
    FUSOR_MEMORY_HOST = 0, /* ordinary (pageable) host memory */
    FUSOR_MEMORY_PINNED,   /* page-locked host memory: copies to and from a GPU are asynchronous */
    FUSOR_MEMORY_DEVICE,   /* one GPU's memory */
    FUSOR_MEMORY_MANAGED   /* CUDA managed memory, migrated between host and GPU on demand */
} fusor_memory;

/* Allocates a C-ordered array in `memory`: device arrays come from the GPU's
 * stream-ordered pool, pinned ones from the pinned staging pool.  `device` is the GPU
 * ordinal for DEVICE and MANAGED (ignored for HOST and PINNED). */
FUSOR_API fusor_status fusor_array_create_on(fusor_context *ctx, fusor_memory memory, int device,
                                             fusor_dtype dtype, int ndim, const int64_t *shape,
                                             fusor_array **out);
/* Wraps caller-owned memory of GPU `device` (a CUdeviceptr, e.g. from a simulation code's
 * own cuMemAlloc in the device's primary context) without copying or calling the
 * driver, like fusor_array_wrap.  The caller keeps it alive and frees it. */
FUSOR_API fusor_status fusor_array_wrap_device(fusor_context *ctx, uint64_t device_pointer,
                                               int device, fusor_dtype dtype, int ndim,
                                               const int64_t *shape, const int64_t *strides,
                                               fusor_array **out);
/* Where the array's bytes live; *device (may be NULL) receives the GPU ordinal, or -1 for
 * host and pinned memory.  fusor_array_data of a device array is its device address. */
FUSOR_API fusor_memory fusor_array_memory(const fusor_array *a, int *device);
/* Copies src's elements into dst wherever each lives (same dtype and shape, both
 * C-contiguous), ordered on `stream` after its earlier work (NULL: now, returning when
 * done). */
FUSOR_API fusor_status fusor_array_copy(fusor_array *dst, const fusor_array *src,
                                        fusor_stream *stream);

/* Streams are in-order queues of launches, copies and host calls, run asynchronously:
 * GPU work goes to a CUDA stream of the stream's own, host work to a worker thread that
 * runs it in order (so the same program works with and without a GPU).  Each context has
 * a default stream.  An error in a queued operation is reported by the next
 * fusor_stream_synchronize (or fusor_event_synchronize on an event recorded after it), and
 * the stream skips later launches and copies until then.  Arguments, kernels and arrays
 * used by queued work must stay alive, untouched, until it is done. */
FUSOR_API fusor_status fusor_stream_create(fusor_context *ctx, fusor_stream **out);
/* Waits for the stream's work, then frees it.  destroy(NULL) does nothing.  The default
 * stream belongs to its context and is not destroyed by this call. */
FUSOR_API void fusor_stream_destroy(fusor_stream *s);
FUSOR_API fusor_status fusor_stream_default(fusor_context *ctx, fusor_stream **out);
/* Waits until everything queued on s is done; returns the first error since the last
 * synchronisation (and clears it). */
FUSOR_API fusor_status fusor_stream_synchronize(fusor_stream *s);
/* Queues a launch of k with a on s (NULL: the context's default stream).  Argument
 * checks run when the launch runs; read outputs after synchronising.  fusor_launch is this
 * plus a wait: it first waits for the default stream, then runs the launch. */
FUSOR_API fusor_status fusor_launch_async(fusor_kernel *k, fusor_args *a, fusor_stream *s);
/* Queues fn(arg) on s: it runs on the host after everything queued before it is done. */
FUSOR_API fusor_status fusor_stream_host_call(fusor_stream *s, void (*fn)(void *arg), void *arg);

/* An event marks a point in a stream: record it there, then wait for it from the host or
 * from another stream (which then runs nothing queued after the wait until the point is
 * reached). */
FUSOR_API fusor_status fusor_event_create(fusor_context *ctx, fusor_event **out);
FUSOR_API void fusor_event_destroy(fusor_event *e);
FUSOR_API fusor_status fusor_event_record(fusor_event *e, fusor_stream *s);
/* Makes stream s wait for e's last recorded point (an event never recorded is done). */
FUSOR_API fusor_status fusor_event_wait(fusor_event *e, fusor_stream *s);
/* Waits on the host until e's point is reached. */
FUSOR_API fusor_status fusor_event_synchronize(fusor_event *e);
/* 1 when e's point has been reached (or it was never recorded), 0 while pending. */
FUSOR_API int fusor_event_done(fusor_event *e);

/* Where a launch ran, and why: FUSOR_TARGET_AUTO (device -1) before the first launch.
 * The context's target decides: CPU, GPU, or AUTO, which takes the GPU when one is
 * usable and the arrays live there or are big enough to pay for copying them. */
typedef struct fusor_placement {
    fusor_target target; /* FUSOR_TARGET_CPU or FUSOR_TARGET_GPU */
    int device;          /* the GPU ordinal, or -1 */
    double copy_bytes;   /* bytes copied between host and GPU for the launch */
    char reason[256];    /* e.g. "no CUDA driver (...)", "arrays x, y live on GPU 0" */
} fusor_placement;
FUSOR_API fusor_status fusor_args_last_placement(const fusor_args *a, fusor_placement *out);
/* Overrides the GPU launch shape of launches with these arguments: threads per block (a
 * multiple of 32, at most 1024) and blocks in the grid; 0 keeps the automatic choice. */
FUSOR_API fusor_status fusor_args_set_gpu_shape(fusor_args *a, int block, int grid);

/* Memory statistics of a GPU's pool (device ordinal) or of the pinned staging pool. */
#define FUSOR_PINNED_POOL (-1)
typedef struct fusor_memory_stats {
    uint64_t in_use;            /* bytes of live allocations */
    uint64_t reserved;          /* bytes the pool holds from the driver (in use + cached) */
    uint64_t peak;              /* the most bytes in use at once */
    uint64_t allocations;       /* live allocations */
    uint64_t total_allocations; /* allocations made so far */
    uint64_t limit;             /* the most bytes in use allowed (0: no limit) */
    uint64_t release_threshold; /* cached bytes kept at synchronisation points */
    uint64_t trims;             /* out-of-memory recoveries tried (synchronise, trim, retry) */
    uint64_t failures;          /* allocations that failed even so */
} fusor_memory_stats;
FUSOR_API fusor_status fusor_memory_stats_get(int pool, fusor_memory_stats *out);
/* Sets a pool's release threshold and limit (0: none).  Defaults: a quarter of the GPU's
 * memory and none, or FUSOR_GPU_POOL_RELEASE / FUSOR_GPU_POOL_LIMIT ("512M", "2G"); the
 * pinned pool keeps 256 MiB (FUSOR_PINNED_POOL_RELEASE, FUSOR_PINNED_POOL_LIMIT). */
FUSOR_API fusor_status fusor_memory_configure(int pool, uint64_t release_threshold,
                                              uint64_t limit);
/* Waits for the GPU and returns the pool's unused memory to the driver. */
FUSOR_API fusor_status fusor_memory_trim(int pool);
/* Every pool's statistics as text (what `fusor info --memory` prints).  Free with
 * fusor_free. */
FUSOR_API fusor_status fusor_memory_describe(char **text);

#ifdef __cplusplus
}
#endif
#endif /* FUSOR_H */
