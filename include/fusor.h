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
    FUSOR_NUM_DTYPES
} fusor_dtype;

/* Size in bytes of one element (bool is one byte holding 0 or 1). */
FUSOR_API size_t fusor_dtype_size(fusor_dtype dtype);
/* The language's name of a dtype ("f32"), or "?" for an invalid value. */
FUSOR_API const char *fusor_dtype_name(fusor_dtype dtype);
/* Parses "f32", "float32", "i64", "int64", "bool", ... */
FUSOR_API fusor_status fusor_dtype_from_name(const char *name, fusor_dtype *out);

/* ----------------------------------------------------------------- context */

typedef struct fusor_context fusor_context;

typedef enum fusor_target {
    FUSOR_TARGET_AUTO = 0, /* the GPU when one is usable and worth it, else the CPU */
    FUSOR_TARGET_CPU,
    FUSOR_TARGET_GPU
} fusor_target;

/* Options of a context; zero-initialise and set what you need (or pass NULL). */
typedef struct fusor_context_options {
    fusor_target target; /* default FUSOR_TARGET_AUTO */
    int opt_level;       /* LLVM optimisation level 0..3; 0 here means the default (3) */
} fusor_context_options;

/* A context owns compiled kernels (and their cache) and arrays it allocates.  Contexts
 * are independent; one context may be used from many threads at once. */
FUSOR_API fusor_status fusor_context_create(const fusor_context_options *options,
                                            fusor_context **out);
FUSOR_API void fusor_context_destroy(fusor_context *ctx);
FUSOR_API fusor_status fusor_context_set_target(fusor_context *ctx, fusor_target target);

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
    FUSOR_EMIT_ASM     /* host assembly */
} fusor_emit;
/* Text of a compiled (non-generic) kernel at some stage.  Free with fusor_free. */
FUSOR_API fusor_status fusor_kernel_emit(fusor_kernel *k, fusor_emit what, char **text);

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
 * an error the outputs are exactly as they were. */
FUSOR_API fusor_status fusor_launch(fusor_kernel *k, fusor_args *a);

/* Where the last launch with these arguments ran ("cpu" or "gpu") and with how many
 * threads. */
FUSOR_API const char *fusor_args_last_target(const fusor_args *a);
FUSOR_API int fusor_args_last_threads(const fusor_args *a);

/* ------------------------------------------------------------------ ufuncs */

/* A ufunc is a one-output kernel made from an expression: its free names are its inputs
 * (generic: each launch's dtypes specialise it, once per combination, cached) and its
 * output is named "out".  "a * sin(b) + 1" is a ufunc of a and b.  The returned handle is
 * an ordinary kernel: bind arguments with fusor_args_* and call fusor_launch. */
FUSOR_API fusor_status fusor_ufunc_create(fusor_context *ctx, const char *expression,
                                          fusor_kernel **out);

#ifdef __cplusplus
}
#endif
#endif /* FUSOR_H */
