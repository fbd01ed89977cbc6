/*
 * gpu.c — choosing the path to PTX, and the in-memory PTX cache.
 *
 * FUSOR_GPU_PATH_AUTO compiles with LLVM NVPTX; when that is unsupported here (an LLVM
 * without NVPTX, or no libdevice for a kernel that calls math functions) it compiles the
 * CUDA C with NVRTC instead, and the result records which path made it.  A compile error
 * on the NVPTX path is a bug worth seeing, so it is returned, not hidden by a fallback.
 *
 * The cache belongs to one kernel specialisation (the scheduler keys those by exact IR)
 * and maps the normalised options — arch, requested path, ftz, approx_div, approx_sqrt —
 * to the code.  Compilation runs outside the lock; when two threads race, the first to
 * finish wins and the other's result is dropped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "emit.h"
#include "error.h"
#include "strbuf.h"
#include "gpu.h"

static uint64_t next_serial(void) {
    static _Atomic uint64_t serial;
    return atomic_fetch_add(&serial, 1) + 1;
}

int cg_gpu_finish_in_pass(const ir_kernel *k, const ir_plan *plan, int p) {
    return plan->has_scalar_outputs && !k->axis_stage && p >= 0 && p == plan->npasses - 1 &&
           cg_pass_words(k, plan, p) > 0;
}

fusor_status cg_gpu_code_new(const ir_kernel *k, const ir_plan *plan, cg_gpu_code **out) {
    cg_gpu_code *c = fu_calloc(1, sizeof *c);
    if (c)
        c->serial = next_serial();
    if (c)
        c->passes = fu_calloc((size_t)(plan->npasses ? plan->npasses : 1), sizeof *c->passes);
    if (!c || !c->passes) {
        fu_free(c);
        return fu_oom("a GPU kernel");
    }
    c->npasses = plan->npasses;
    for (int p = 0; p < plan->npasses; p++) {
        c->passes[p].words = cg_pass_words(k, plan, p);
        c->passes[p].lanes = cg_pass_vec_lanes(k, plan, p);
    }
    c->has_finish = plan->has_scalar_outputs;
    c->finish_kernel = c->has_finish && !cg_gpu_finish_in_pass(k, plan, plan->npasses - 1);
    c->stencil = cg_gpu_is_stencil(k, NULL);
    *out = c;
    return FUSOR_OK;
}

const char *const cg_axis_kernels[CG_AXK_COUNT] = {"axis", "axisblk", "axissplit", "axisfold",
                                                   "axisfoldblk"};

int cg_gpu_is_stencil(const ir_kernel *k, int *rank) {
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    if (!ir_stencil_loads(k, NULL) && !ir_interior_halo(k, lo, hi))
        return 0;
    int r = 0;
    for (int p = 0; p < k->nparams; p++)
        if (ir_param_ndims(k, p) > r && ir_param_boundary(k, p) != IR_BOUND_NONE)
            r = ir_param_ndims(k, p);
    if (rank)
        *rank = r;
    return 1;
}

void cg_gpu_code_free(cg_gpu_code *c) {
    if (!c)
        return;
    fu_free(c->ptx);
    fu_free(c->passes);
    fu_free(c);
}

/* The most raw words a pass may have: its block reduction keeps one row per warp in
 * shared memory, which must fit the 48 KiB every device gives a kernel statically. */
static fusor_status check_words(const ir_kernel *k, const ir_plan *plan) {
    for (int p = 0; p < plan->npasses; p++) {
        int w = cg_pass_words(k, plan, p);
        if ((size_t)w * 8 * (CG_GPU_MAX_BLOCK / 32) > 48 * 1024)
            return fu_error(FUSOR_ERROR_UNSUPPORTED,
                            "kernel %s: pass %d has %d reductions' worth of accumulators, more "
                            "than a GPU block reduction holds in shared memory (192 words)",
                            k->name ? k->name : "?", p, w);
    }
    return FUSOR_OK;
}

fusor_status cg_gpu_compile(const ir_kernel *k, const ir_plan *plan, const fusor_gpu_options *opt,
                            cg_gpu_code **out) {
    if (!k || !plan || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_gpu_compile: NULL");
    *out = NULL;
    fusor_gpu_options o;
    fusor_status st = cg_gpu_options_normalize(opt, &o);
    if (!st)
        st = check_words(k, plan);
    if (st)
        return st;
    if (o.path == FUSOR_GPU_PATH_NVRTC)
        return cg_nvrtc_compile(k, plan, &o, out);
    st = cg_nvptx_compile(k, plan, &o, out);
    if (st != FUSOR_ERROR_UNSUPPORTED || o.path == FUSOR_GPU_PATH_NVPTX)
        return st;
    /* AUTO: NVPTX cannot serve here; NVRTC's own error says why it cannot either. */
    return cg_nvrtc_compile(k, plan, &o, out);
}

/* ------------------------------------------------------------------ the cache */

typedef struct gpu_entry {
    fusor_gpu_options key;
    cg_gpu_code *code;
    struct gpu_entry *next;
} gpu_entry;

struct cg_gpu_cache {
    pthread_mutex_t lock;
    gpu_entry *entries;
    long compiles;
};

static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_key(const fusor_gpu_options *a, const fusor_gpu_options *b) {
    return a->path == b->path && a->arch == b->arch && a->ftz == b->ftz &&
           a->approx_div == b->approx_div && a->approx_sqrt == b->approx_sqrt;
}

static const cg_gpu_code *find(cg_gpu_cache *c, const fusor_gpu_options *key) {
    for (gpu_entry *e = c->entries; e; e = e->next)
        if (same_key(&e->key, key))
            return e->code;
    return NULL;
}

static fusor_status cache_ensure(cg_gpu_cache **cache) {
    pthread_mutex_lock(&create_lock);
    if (!*cache) {
        cg_gpu_cache *c = fu_calloc(1, sizeof *c);
        if (c)
            pthread_mutex_init(&c->lock, NULL);
        __atomic_store_n(cache, c, __ATOMIC_RELEASE); /* cg_gpu_cache_peek reads it unlocked */
    }
    pthread_mutex_unlock(&create_lock);
    return *cache ? FUSOR_OK : fu_oom("a GPU code cache");
}

/* Payload layout: magic, then int32 version, path, arch, npasses, flags (bit 0:
 * has_finish, bit 1: finish_kernel, bit 2: stencil), then
 * (words, lanes) per pass, then the PTX's length (int64) and text. */
static const char store_magic[8] = {'F', 'U', 'S', 'O', 'R', 'P', 'T', 'X'};
enum { STORE_VERSION = 2 };

fusor_status cg_gpu_code_serialize(const cg_gpu_code *c, void **out, size_t *size) {
    size_t n = 8 + 4 * 5 + (size_t)c->npasses * 8 + 8 + c->ptx_len;
    unsigned char *b = fu_malloc(n), *w = b;
    if (!b)
        return fu_oom("a PTX cache entry");
    int32_t head[5] = {STORE_VERSION, (int32_t)c->path, c->arch, c->npasses,
                       c->has_finish | c->finish_kernel << 1 | c->stencil << 2};
    memcpy(w, store_magic, 8), w += 8;
    memcpy(w, head, sizeof head), w += sizeof head;
    for (int p = 0; p < c->npasses; p++) {
        int32_t pw[2] = {c->passes[p].words, c->passes[p].lanes};
        memcpy(w, pw, 8), w += 8;
    }
    int64_t len = (int64_t)c->ptx_len;
    memcpy(w, &len, 8), w += 8;
    memcpy(w, c->ptx, c->ptx_len);
    *out = b;
    *size = n;
    return FUSOR_OK;
}

fusor_status cg_gpu_code_deserialize(const void *p, size_t size, cg_gpu_code **out) {
    const unsigned char *r = p, *end = r + size;
    int32_t head[5];
    *out = NULL;
    if (size < 8 + sizeof head || memcmp(r, store_magic, 8))
        return fu_error(FUSOR_ERROR_INTERNAL, "not a PTX cache entry");
    memcpy(head, r + 8, sizeof head);
    r += 8 + sizeof head;
    int np = head[3];
    if (head[0] != STORE_VERSION || np < 0 || np > 4096 || (size_t)(end - r) < (size_t)np * 8 + 8)
        return fu_error(FUSOR_ERROR_INTERNAL, "a PTX cache entry of another layout");
    cg_gpu_code *c = fu_calloc(1, sizeof *c);
    if (!c || !(c->passes = fu_calloc((size_t)(np ? np : 1), sizeof *c->passes))) {
        fu_free(c);
        return fu_oom("a PTX cache entry");
    }
    c->serial = next_serial();
    c->path = (fusor_gpu_path)head[1];
    c->arch = head[2];
    c->npasses = np;
    c->has_finish = head[4] & 1;
    c->finish_kernel = head[4] >> 1 & 1;
    c->stencil = head[4] >> 2 & 1;
    for (int i = 0; i < np; i++, r += 8) {
        int32_t pw[2];
        memcpy(pw, r, 8);
        c->passes[i].words = pw[0];
        c->passes[i].lanes = pw[1];
    }
    int64_t len;
    memcpy(&len, r, 8);
    r += 8;
    if (len < 0 || len != end - r || !(c->ptx = fu_malloc((size_t)len + 1))) {
        cg_gpu_code_free(c);
        return len < 0 || len != end - r ? fu_error(FUSOR_ERROR_INTERNAL, "a truncated PTX entry")
                                         : fu_oom("a PTX cache entry");
    }
    memcpy(c->ptx, r, (size_t)len);
    c->ptx[len] = 0;
    c->ptx_len = (size_t)len;
    *out = c;
    return FUSOR_OK;
}

/* The store's key: the kernel's prefix, the options, and what compiles them. */
static unsigned char *store_key(const cg_gpu_store *s, const fusor_gpu_options *o, size_t *len) {
    strbuf b = {0};
    sb_append(&b, (const char *)s->prefix, s->prefix_len);
    sb_printf(&b, "|gpu path %d arch %d ftz %d div %d sqrt %d|nvptx %d|", (int)o->path, o->arch,
              o->ftz, o->approx_div, o->approx_sqrt, cg_nvptx_available());
    char lib[600];
    cg_nvptx_libdevice_tag(lib, sizeof lib);
    sb_printf(&b, "%s|", lib);
    if (o->path != FUSOR_GPU_PATH_NVPTX) { /* NVRTC may make it: its version is part of it */
        char *v = cg_nvrtc_describe();
        sb_printf(&b, "%s", v ? v : "no nvrtc");
        fu_free(v);
    }
    *len = b.len;
    return (unsigned char *)sb_take(&b);
}

const cg_gpu_code *cg_gpu_cache_peek(cg_gpu_cache *const *slot, const fusor_gpu_options *opt) {
    /* cache_ensure publishes the cache with a release store; no lock needed to see it */
    cg_gpu_cache *cache = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    fusor_gpu_options key;
    if (!cache || cg_gpu_options_normalize(opt, &key) != FUSOR_OK) {
        fu_clear_error();
        return NULL;
    }
    pthread_mutex_lock(&cache->lock);
    const cg_gpu_code *hit = find(cache, &key);
    pthread_mutex_unlock(&cache->lock);
    return hit;
}

fusor_status cg_gpu_cache_get(cg_gpu_cache **cache, const ir_kernel *k, const ir_plan *plan,
                              const fusor_gpu_options *opt, const cg_gpu_code **out) {
    return cg_gpu_cache_get_stored(cache, k, plan, opt, NULL, out);
}

fusor_status cg_gpu_cache_get_stored(cg_gpu_cache **cache, const ir_kernel *k,
                                     const ir_plan *plan, const fusor_gpu_options *opt,
                                     const cg_gpu_store *store, const cg_gpu_code **out) {
    if (!cache || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "cg_gpu_cache_get: NULL");
    *out = NULL;
    fusor_gpu_options key;
    fusor_status st = cg_gpu_options_normalize(opt, &key);
    if (!st)
        st = cache_ensure(cache);
    if (st)
        return st;
    cg_gpu_cache *c = *cache;
    pthread_mutex_lock(&c->lock);
    const cg_gpu_code *hit = find(c, &key);
    pthread_mutex_unlock(&c->lock);
    if (hit) {
        *out = hit;
        return FUSOR_OK;
    }
    cg_gpu_code *code = NULL;
    size_t klen = 0;
    unsigned char *skey = store ? store_key(store, &key, &klen) : NULL;
    size_t n = 0;
    void *payload = skey ? store->load(skey, klen, &n) : NULL;
    int compiled = 0;
    if (payload && cg_gpu_code_deserialize(payload, n, &code) != FUSOR_OK)
        fu_clear_error(); /* an entry that does not parse is rebuilt */
    fu_free(payload);
    payload = NULL;
    if (!code) {
        st = cg_gpu_compile(k, plan, &key, &code);
        compiled = !st;
        if (compiled && skey) { /* best effort, like the host cache */
            if (cg_gpu_code_serialize(code, &payload, &n) == FUSOR_OK)
                store->save(skey, klen, store->name, payload, n);
            else
                fu_clear_error();
            fu_free(payload);
        }
    } else {
        code->compile_ms = 0;
    }
    fu_free(skey);
    gpu_entry *e = st ? NULL : fu_calloc(1, sizeof *e);
    if (!st && !e)
        st = fu_oom("a GPU code cache entry");
    if (st) {
        cg_gpu_code_free(code);
        return st;
    }
    pthread_mutex_lock(&c->lock);
    c->compiles += compiled;
    hit = find(c, &key);
    if (!hit) {
        e->key = key;
        e->code = code;
        e->next = c->entries;
        c->entries = e;
        hit = code;
        code = NULL;
        e = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    cg_gpu_code_free(code);
    fu_free(e);
    *out = hit;
    return FUSOR_OK;
}

long cg_gpu_cache_compiles(const cg_gpu_cache *c) {
    if (!c)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&c->lock);
    long n = c->compiles;
    pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
    return n;
}

void cg_gpu_cache_free(cg_gpu_cache *c) {
    if (!c)
        return;
    for (gpu_entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        cg_gpu_code_free(e->code);
        fu_free(e);
    }
    pthread_mutex_destroy(&c->lock);
    fu_free(c);
}
