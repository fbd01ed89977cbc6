/*
 * device.h — the GPUs the driver sees: their facts, their primary contexts, the PTX
 * modules loaded into them, and the launch shape of a kernel on them.
 *
 * Devices are enumerated once per driver load.  Each device's primary context is
 * retained on first use and kept until the driver is forgotten (the primary context is
 * the one other libraries — a simulation code's own CUDA, cuBLAS — also use, so arrays
 * move between them freely).  A module is loaded from PTX once per device and kept: the
 * JIT's info log is kept with it, and its error log becomes the message when the driver
 * rejects the PTX.
 */
#ifndef FUSOR_SCHED_DEVICE_H
#define FUSOR_SCHED_DEVICE_H

#include <pthread.h>
#include <stdint.h>

#include "cuda.h"

typedef struct sched_function {
    cudrv_function fn;
    char name[64];
    int occ_block;    /* cuOccupancyMaxPotentialBlockSize's block size (0: unknown) */
    int occ_min_grid; /* and its minimum grid for full occupancy */
    int max_block;    /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK (1024 when unknown) */
    int regs;
    struct sched_function *next;
} sched_function;

typedef struct sched_module {
    char *ptx; /* the text as given (the key) */
    uint64_t code_serial; /* the cg_gpu_code last found to hold this text (0: none) */
    size_t len;
    cudrv_module mod;
    char *info_log; /* the JIT's info log ("" when it said nothing) */
    double load_ms;
    sched_function *functions;
    struct sched_module *next;
} sched_module;

typedef struct sched_device {
    int ordinal;
    cudrv_device dev;
    char name[256];
    int cc_major, cc_minor;
    int sms, max_block, max_threads_sm, clock_khz, mem_clock_khz, bus_bits, l2_bytes;
    int async_engines, unified, managed, pools;
    size_t total_mem;
    pthread_mutex_t lock; /* guards ctx and modules */
    cudrv_context ctx;
    sched_module *modules;
    long module_loads; /* how many times the JIT ran (tests check load-once) */
    long cubin_hits;   /* modules loaded from a device binary in the disk cache */
} sched_device;

/* Device `ordinal` (enumerating on first use).  FUSOR_ERROR_NO_DEVICE when the driver
 * is unusable or the ordinal is out of range. */
fusor_status sched_device_get(int ordinal, sched_device **out);
/* Retains the primary context on first use and makes it current on this thread. */
fusor_status sched_device_activate(sched_device *d);
/* The sm_XX (as XX) fusor compiles for on this device: its own compute capability when
 * codegen knows it, else the newest known one below it (the driver JIT-compiles PTX of
 * an older target for a newer device). */
int sched_device_arch(const sched_device *d);
/* Peak memory bandwidth from the clock and bus width, bytes per second. */
double sched_device_peak_bandwidth(const sched_device *d);

/* The module of `ptx` on d (loaded once; the device must be active on this thread).
 * `arch_min_ptx` is the PTX ISA the PTX's target needs (for sched_cuda_fit_ptx).
 * A rejected PTX is FUSOR_ERROR_COMPILE with the JIT's error log. */
fusor_status sched_module_load(sched_device *d, const char *ptx, int arch_min_ptx,
                               sched_module **out);
/* The same for compiled code: a module already loaded from this very code object (its
 * serial) is found without comparing the PTX text, which every launch would otherwise
 * do (tens of KB). */
struct cg_gpu_code;
fusor_status sched_module_load_code(sched_device *d, const struct cg_gpu_code *code,
                                    int arch_min_ptx, sched_module **out);
/* A kernel of the module by name, with its occupancy facts (cached). */
fusor_status sched_module_function(sched_device *d, sched_module *m, const char *name,
                                   sched_function **out);

/* The launch shape of a grid-stride kernel over n elements (`lanes` per thread and
 * iteration).  Pure.  Element-wise kernels: the occupancy API's block size (256 when
 * unknown) and a grid of ceil(n / (block * lanes)) blocks, at most 4 waves of the
 * occupancy grid (or 32 blocks per SM).  Kernels with reductions: a block of 256 and a
 * grid from n alone (one block per 16 blocks' worth of elements, 1 to 1024), so float
 * sums give the same bits on every device.  A positive override wins (block rounded to
 * a multiple of 32 and clamped to the kernel's limit). */
void sched_shape_choose(int64_t n, int lanes, int reduction, int occ_block, int occ_min_grid,
                        int sms, int fn_max_block, int block_override, int grid_override,
                        int *block, int *grid);

/* The launch shape of a stencil kernel (codegen/gpu.h, fusor_pass<p>_stencil) over a box
 * of `ndim` dimensions, box[0] outermost.  Pure.  A block of 256 threads (or the override,
 * rounded to a multiple of 32, within the kernel's limit) laid out as x * y over the last
 * two dimensions: x the inner extent rounded up to a warp, 32 to 128 (whole warps along
 * the contiguous dimension, so loads coalesce), y the rest; 1-D boxes get x only.  The
 * grid covers the box with one element per thread: x and y blocks, z one per outer index
 * (at most 65535 along y and z: the kernel's loops stride over the rest).  With
 * reductions the grid is capped at 4096 blocks so the one-block combine stays short; it
 * still depends on the box alone.  A positive grid override makes the grid (override, 1,
 * 1).  Outputs block[0..2] and grid[0..2], each at least 1. */
void sched_stencil_shape(int ndim, const int64_t *box, int reduction, int fn_max_block,
                         int block_override, int grid_override, int block[3], int grid[3]);

/* "  device 0: NVIDIA H200, sm_90, 132 SMs, ..." one line per device (fu_malloc'd). */
char *sched_device_describe_all(void);

#endif
