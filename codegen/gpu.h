/*
 * gpu.h — IR to PTX, two ways: LLVM's NVPTX back end with libdevice (nvptx.c, the
 * default) and CUDA C compiled by NVRTC (cuda_c.c prints it, nvrtc.c loads NVRTC with
 * dlopen).  Both produce the same kernels with the same ABI, so whoever loads the PTX
 * (the Driver API launcher) does not care which path made it.  gpu.c chooses the path,
 * falls back, and caches results in memory.
 *
 * The kernels of a plan (every one a `.entry` taking ONE pointer to a parameter block in
 * device memory, so no kernel ever meets the launch-parameter limit):
 *
 *   fusor_pass<p>_contig   the domain is one contiguous run: element i of every array at
 *                          base + i * element size
 *   fusor_pass<p>_vec      the same, `lanes` consecutive elements per thread-iteration
 *                          with vector loads and stores (ld.global.v4.f32, ...): every
 *                          base must be aligned to lanes * its element size
 *   fusor_pass<p>_strided  any n-d domain (ndim 1..8) with any byte strides
 *   fusor_finish           (kernels with scalar outputs whose last pass has no
 *                          reductions) one thread: slots -> outs; otherwise the last
 *                          pass's kernel runs the finish itself (cg_gpu_finish_in_pass)
 *
 * A stencil kernel (cg_gpu_is_stencil: offset loads or an `interior` parameter) has one
 * variant per pass instead of the three above:
 *
 *   fusor_pass<p>_stencil  a 2-D/3-D launch over the box (the domain, or its interior):
 *                          threads (x, y) of a block cover the last two dimensions, x
 *                          the inner one (coalesced), blockIdx.z the outer ones; grid-
 *                          stride loops in x, y and z, so any grid is correct.  Each row
 *                          runs its middle with plain offset loads and remaps only the few
 *                          elements at each end where a load leaves the array.
 *
 *                          Its reduction partials are indexed by the linear block id
 *                          (x fastest), and its block may be 2-D (any x a multiple of 32).
 *
 * A pass kernel is a grid-stride loop over the domain (64-bit indices) with any grid; its
 * block size must be a multiple of 32, at most 1024.  A pass with reductions writes one
 * row of `words` raw accumulator words per block to partials[blockIdx.x] (per-thread
 * partials, warp shuffles, then shared memory), then thread 0 publishes it (a fence) and
 * takes a ticket: an atomic add on the pass's ticket word, slots[nslots + p].  The block
 * that draws the last ticket (npartials - 1) folds rows 0..npartials-1 (thread t: rows t,
 * t + threads, ...; then the block merge), stores the results in the slots the next pass
 * and the finish read, runs the finish when this is the kernel's last pass, and puts the
 * ticket back to 0.  So the launcher keeps one zero word per pass after the slots, and a
 * whole-array reduction is one launch.  Everything happens in a fixed order, so a launch
 * with the same grid and block gives the same bits every time (the launcher picks both
 * from the element count, never from the device, for passes with reductions).
 *
 * An AXIS stage's kernel (ir_kernel.axis_stage, kernels/stage.h: one reduction of its
 * operand, computed once per element of the result) has five kernels instead of all the
 * above, over the RESULT's domain (n, ndim, shape: the operand's shape without the
 * reduced axis; strides: each array's over those dimensions; arrays[nparams]: the result
 * array, written in the output's dtype), by the launcher's choice (scheduler/gpuaxis.h):
 *
 *   fusor_pass0_axis      one thread per result element (grid-stride): it walks the
 *                         reduced axis alone.  Neighbouring threads read neighbouring
 *                         elements when the axis is not the innermost.  With the axis
 *                         cut into chunks (nchunks > 1) one thread per (chunk, result)
 *                         pair (grid-stride over chunk * n + result) folds that chunk
 *                         into its row of raw words in partials[], as _axissplit.
 *   fusor_pass0_axisblk   one block per result element (block-stride over them): the
 *                         block's threads share the axis (coalesced when it is the
 *                         innermost), then the block merge; block size a multiple of 32.
 *   fusor_pass0_axissplit for few results over a long axis: one block per (result, chunk)
 *                         pair (block-stride over result * nchunks + chunk) folds that
 *   fusor_pass0_axisfold  chunk into its row of raw words in partials[]; then one thread
 *                         per result merges its nchunks rows in order, finals and stores.
 *                         (A float min/max's last-zero tag is moved from the chunk's start
 *                         to the axis's before the block merge.)
 *   fusor_pass0_axisfoldblk  as _axisfold with one block per result: thread t merges
 *                         rows t, t + ntid, ..., then the block merge; for many chunks.
 *
 * Each result is folded in a fixed order for a given block size: the same bits every
 * time.  Their block adds the axis's length and strides (CG_GPU_OFF_AXLEN below).
 *
 * The parameter block (little-endian, 8-byte fields, N = nparams + noutputs):
 *
 *   offset 0    int64  n             elements in the domain
 *          8    int64  npartials     rows in `partials` (the pass's grid size)
 *          16   ptr    slots         ir_value[nslots]: scalar params, COUNT, reductions
 *          24   ptr    partials      int64[npartials][words]
 *          32   ptr    outs          ir_value[noutputs] written by fusor_finish
 *          40   int64  ndim          strided only: 1..8
 *          48   int64  shape[8]      strided only: the domain, outermost first
 *          112  int64  strides[N][8] strided only: byte strides, per array and dimension
 *          112 + 64 N  ptr arrays[N] element 0 of each array (params, then outputs)
 *   stencil kernels only (the block is CG_GPU_STENCIL_PARAMS_SIZE(N) bytes; shape[] and n
 *   are then the box's, the strided fields are always filled, arrays[] the full arrays'):
 *          112 + 72 N  int64  full[8]    the domain's full shape
 *          176 + 72 N  int64  origin[8]  the box's first element in the full domain
 */
#ifndef FUSOR_CG_GPU_H
#define FUSOR_CG_GPU_H

#include <stddef.h>

#include "ir.h"

#define CG_GPU_OFF_N         0
#define CG_GPU_OFF_NPARTIALS 8
#define CG_GPU_OFF_SLOTS     16
#define CG_GPU_OFF_PARTIALS  24
#define CG_GPU_OFF_OUTS      32
#define CG_GPU_OFF_NDIM      40
#define CG_GPU_OFF_SHAPE     48
#define CG_GPU_OFF_STRIDES   112
#define CG_GPU_MAX_DIMS      8
/* Offset of the array pointers and the block's size for n arrays. */
#define CG_GPU_OFF_ARRAYS(n)  (CG_GPU_OFF_STRIDES + 64 * (size_t)(n))
#define CG_GPU_PARAMS_SIZE(n) (CG_GPU_OFF_ARRAYS(n) + 8 * (size_t)(n))
#define CG_GPU_OFF_FULL(n)            CG_GPU_PARAMS_SIZE(n)
#define CG_GPU_OFF_ORIGIN(n)          (CG_GPU_PARAMS_SIZE(n) + 64)
#define CG_GPU_STENCIL_PARAMS_SIZE(n) (CG_GPU_PARAMS_SIZE(n) + 128)
/* Axis kernels: after the block's arrays, the reduced axis's length, each array's byte
 * stride along it, and how the split form cuts it (elements per chunk, chunks). */
#define CG_GPU_OFF_AXLEN(n)        CG_GPU_PARAMS_SIZE(n)
#define CG_GPU_OFF_AXSTRIDES(n)    (CG_GPU_PARAMS_SIZE(n) + 8)
#define CG_GPU_OFF_AXCHUNK(n)      (CG_GPU_OFF_AXSTRIDES(n) + 8 * (size_t)(n))
#define CG_GPU_OFF_AXNCHUNKS(n)    (CG_GPU_OFF_AXCHUNK(n) + 8)
#define CG_GPU_AXIS_PARAMS_SIZE(n) (CG_GPU_OFF_AXNCHUNKS(n) + 8)
/* Largest thread block a pass or reduce kernel accepts (and its warps). */
#define CG_GPU_MAX_BLOCK 1024

typedef struct cg_gpu_pass {
    int words; /* raw accumulator words per partial row; 0 without reductions */
    int lanes; /* elements per iteration of the _vec kernel */
} cg_gpu_pass;

/* What a compilation produced: the PTX text, how, and what the launcher must know. */
typedef struct cg_gpu_code {
    fusor_gpu_path path; /* FUSOR_GPU_PATH_NVPTX or FUSOR_GPU_PATH_NVRTC */
    int arch;
    char *ptx;
    size_t ptx_len;
    int npasses;
    cg_gpu_pass *passes;
    int has_finish;    /* scalar outputs */
    int finish_kernel; /* ... computed by fusor_finish (else by the last pass's kernel) */
    int stencil;       /* cg_gpu_is_stencil: _stencil kernels instead of the three */
    double compile_ms;
    /* Unique in the process, never reused: the launcher finds the module loaded from this
     * code by it without comparing the text (sched_module_load_code). */
    uint64_t serial;
} cg_gpu_code;

/* An AXIS stage's kernels (above), by form: fusor_pass0_<cg_axis_kernels[form]>. */
enum { CG_AXK_THREAD, CG_AXK_BLOCK, CG_AXK_SPLIT, CG_AXK_FOLD, CG_AXK_FOLDBLK, CG_AXK_COUNT };
extern const char *const cg_axis_kernels[CG_AXK_COUNT];

/* Nonzero when k runs as stencil kernels on a GPU (stencil loads or an INTERIOR parameter);
 * then *rank (when not NULL) receives the declared rank of its stencil parameters. */
int cg_gpu_is_stencil(const ir_kernel *k, int *rank);

/* Validates options and fills defaults (arch 80, path AUTO). */
fusor_status cg_gpu_options_normalize(const fusor_gpu_options *in, fusor_gpu_options *out);
/* The PTX ISA version (e.g. 78 for 7.8) fusor emits for sm_<arch>, or 0 when unsupported. */
int cg_gpu_ptx_version(int arch);

/* Path 1: LLVM NVPTX.  FUSOR_ERROR_UNSUPPORTED when this LLVM lacks NVPTX, or when a
 * kernel needs libdevice and none is found (FUSOR_LIBDEVICE, CUDA_HOME, CUDA_PATH,
 * /usr/local/cuda). */
fusor_status cg_nvptx_compile(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *o,
                              cg_gpu_code **out);
int cg_nvptx_available(void);
/* The libdevice a compilation would link (path and size), for cache keys. */
void cg_nvptx_libdevice_tag(char *buf, size_t n);
/* Phase times of this thread's last NVPTX compilation (codegen.h's cg_timing: emit =
 * building the kernels' IR, link = libdevice, opt = the O3 pipeline, codegen = PTX). */
struct cg_timing;
void cg_nvptx_last_timing(struct cg_timing *out);

/* Path 2: the CUDA C text of the kernels (needs nothing), and that text through NVRTC. */
fusor_status cg_cuda_source(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *o,
                            char **text);
fusor_status cg_nvrtc_compile(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *o,
                              cg_gpu_code **out);

/* NVRTC loaded with dlopen (nvrtc.c).  cg_nvrtc_available: FUSOR_OK, or
 * FUSOR_ERROR_UNSUPPORTED with the reason as the thread's error message. */
fusor_status cg_nvrtc_available(void);
/* Compiles CUDA C `source` (named `name` in messages) with `opts` into PTX; NVRTC's log
 * becomes the error message (FUSOR_ERROR_COMPILE). */
fusor_status cg_nvrtc_ptx(const char *source, const char *name, const char *const *opts, int nopts,
                          char **ptx, size_t *len);
/* "NVRTC 13.0" (fu_malloc'd), or NULL. */
char *cg_nvrtc_describe(void);

/* Either path as the options say; FUSOR_GPU_PATH_AUTO takes NVPTX and falls back to NVRTC
 * when NVPTX is unsupported here. */
fusor_status cg_gpu_compile(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *o,
                            cg_gpu_code **out);
void cg_gpu_code_free(cg_gpu_code *c);
/* Whether pass p's kernel runs the finish itself (its last block, after the fold): p is
 * the last pass, it has reductions and the kernel has scalar outputs.  Then there is no
 * fusor_finish kernel. */
int cg_gpu_finish_in_pass(const ir_kernel *k, const ir_plan *plan, int p);
/* Metadata both paths share (passes, words, lanes, has_finish) for k and plan. */
fusor_status cg_gpu_code_new(const ir_kernel *k, const ir_plan *plan, cg_gpu_code **out);

/* A cache of compiled PTX for one kernel specialisation, keyed by arch, path and flags.
 * Thread-safe; *cache starts NULL.  The returned code belongs to the cache. */
typedef struct cg_gpu_cache cg_gpu_cache;
fusor_status cg_gpu_cache_get(cg_gpu_cache **cache, const ir_kernel *k, const ir_plan *plan,
                              const fusor_gpu_options *o, const cg_gpu_code **out);
/* A persistent store below the in-memory cache (the scheduler's disk cache): `prefix`
 * identifies the kernel (build, normalised IR); codegen appends the options and the
 * toolchain.  load returns a fu_malloc'd payload or NULL; save is best effort. */
typedef struct cg_gpu_store {
    void *(*load)(const unsigned char *key, size_t keylen, size_t *size);
    void (*save)(const unsigned char *key, size_t keylen, const char *name, const void *payload,
                 size_t size);
    const unsigned char *prefix;
    size_t prefix_len;
    const char *name;
} cg_gpu_store;
/* The code already in the cache for these options, or NULL: no compile, no disk, no
 * allocation (what every launch after the first asks). */
const cg_gpu_code *cg_gpu_cache_peek(cg_gpu_cache *const *cache, const fusor_gpu_options *o);
/* cg_gpu_cache_get that asks `store` (may be NULL) before compiling, and keeps what it
 * compiled there.  Code loaded from the store has compile_ms 0. */
fusor_status cg_gpu_cache_get_stored(cg_gpu_cache **cache, const ir_kernel *k,
                                     const ir_plan *plan, const fusor_gpu_options *o,
                                     const cg_gpu_store *store, const cg_gpu_code **out);
/* The code as bytes for a store, and back (NULL/error on anything malformed). */
fusor_status cg_gpu_code_serialize(const cg_gpu_code *c, void **out, size_t *size);
fusor_status cg_gpu_code_deserialize(const void *p, size_t size, cg_gpu_code **out);
/* How many compilations the cache ran (tests check compile-once). */
long cg_gpu_cache_compiles(const cg_gpu_cache *cache);
void cg_gpu_cache_free(cg_gpu_cache *cache);

#endif
