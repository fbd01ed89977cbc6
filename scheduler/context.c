/*
 * context.c — contexts, compiling kernels, and the in-memory kernel cache.
 *
 * The cache maps the exact IR of a specialisation (plus target and optimisation level)
 * to its machine code, so compiling the same kernel twice — or two kernels that check to
 * the same IR — runs code generation once.  Code generation runs outside the context's
 * lock; when two threads race to compile the same kernel, the first to finish wins and
 * the other's result is dropped.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "gpu.h"
#include "gpurun.h"
#include "scheduler.h"
#include "strbuf.h"
#include "diskcache.h"
#include "stage.h"
#include "unfused.h"

/* FUSOR_MATH=fast|scalar sets the math of contexts that leave it at the default. */
static fusor_math sched_default_math(void) {
    const char *e = getenv("FUSOR_MATH");
    if (e && !strcmp(e, "fast")) return FUSOR_MATH_FAST;
    if (e && !strcmp(e, "scalar")) return FUSOR_MATH_SCALAR;
    return FUSOR_MATH_DEFAULT;
}

fusor_status fusor_context_create(const fusor_context_options *options, fusor_context **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_create: out is NULL");
    *out = NULL;
    fusor_context_options o = {0};
    if (options) o = *options;
    if ((unsigned)o.target > FUSOR_TARGET_GPU)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_create: bad target %d",
                        (int)o.target);
    if (o.opt_level < 0 || o.opt_level > 3)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_context_create: opt_level %d is not in 0..3", o.opt_level);
    if ((unsigned)o.math > FUSOR_MATH_SCALAR)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_create: bad math %d",
                        (int)o.math);
    fusor_context *c = fu_calloc(1, sizeof *c);
    if (!c) return fu_oom("a context");
    c->target = o.target;
    c->opt_level = o.opt_level ? o.opt_level : 3;
    c->math = o.math ? o.math : sched_default_math();
    c->disk_cache = dc_enabled(o.disk_cache);
    c->refcount = 1;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return FUSOR_OK;
}

static void spec_free(sched_spec *s) {
    if (!s) return;
    cg_compiled_free(s->code);
    for (int i = 0; s->staging && s->stage_code && i < s->staging->nstages; i++)
        cg_compiled_free(s->stage_code[i]);
    for (int i = 0; s->staging && s->stage_map_code && i < s->staging->nstages; i++)
        cg_compiled_free(s->stage_map_code[i]);
    fu_free(s->stage_code);
    fu_free(s->stage_map_code);
    for (int i = 0; s->staging && s->stage_gpu && i < s->staging->nstages; i++) {
        cg_gpu_cache_free(s->stage_gpu[i].gpu_cache);
        fu_free(s->stage_gpu[i].key);
    }
    fu_free(s->stage_gpu);
    cg_gpu_cache_free(s->gpu_cache);
    sched_unfused_free(s->unfused);
    fu_free(s->key);
    arena_free(&s->arena);
    fu_free(s);
}

static void context_release(fusor_context *c) {
    if (atomic_fetch_sub_explicit((_Atomic int *)&c->refcount, 1, memory_order_acq_rel) != 1)
        return;
    for (sched_spec *s = c->specs, *next; s; s = next) {
        next = s->next;
        spec_free(s);
    }
    sched_ctx_gpu_free(c->gpu_state);
    pthread_mutex_destroy(&c->lock);
    fu_free(c);
}

void fusor_context_destroy(fusor_context *c) {
    if (c) context_release(c);
}

fusor_status fusor_context_set_target(fusor_context *c, fusor_target t) {
    if (!c) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_set_target: NULL context");
    if ((unsigned)t > FUSOR_TARGET_GPU)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_set_target: bad target %d",
                        (int)t);
    c->target = t;
    return FUSOR_OK;
}

fusor_status fusor_context_set_device(fusor_context *c, int device) {
    if (!c) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_context_set_device: NULL context");
    if (device < -1)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_context_set_device: device %d (a GPU ordinal, or -1 for the "
                        "default)",
                        device);
    __atomic_store_n(&c->gpu_device, device + 1, __ATOMIC_RELAXED);
    return FUSOR_OK;
}

int sched_context_device(const fusor_context *c) {
    int d = __atomic_load_n(&c->gpu_device, __ATOMIC_RELAXED) - 1;
    if (d >= 0) return d;
    const char *e = getenv("FUSOR_DEVICE");
    char *end;
    long v = e ? strtol(e, &end, 10) : 0;
    return e && *e && !*end && v >= 0 && v < 1024 ? (int)v : 0;
}

int fusor_context_device(const fusor_context *ctx) { return ctx ? sched_context_device(ctx) : -1; }

long sched_compile_count(fusor_context *c) {
    pthread_mutex_lock(&c->lock);
    long n = c->compiles;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* FNV-1a; the full key is compared on a hash match. */
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static sched_spec *cache_find(fusor_context *c, const sched_spec *s) {
    for (sched_spec *e = c->specs; e; e = e->next)
        if (e->hash == s->hash && e->keylen == s->keylen && !memcmp(e->key, s->key, s->keylen))
            return e;
    return NULL;
}

/* The persistent cache's key of a specialisation: this build of fusor, LLVM, the CPU and
 * its features, the vector math library, the options, then the in-memory key (the
 * normalised IR). */
static unsigned char *disk_key(const cg_options *o, const sched_spec *s, const char *part,
                               size_t *len) {
    char *tag = cg_host_cache_tag(o);
    strbuf b = {0};
    sb_printf(&b, "fusor %s build %s|%s|math %d|", FUSOR_VERSION_STRING, dc_build_id(),
              tag ? tag : "?", o->math);
    fu_free(tag);
    sb_append(&b, (const char *)s->key, s->keylen);
    sb_printf(&b, "%s", part);
    *len = b.len;
    return (unsigned char *)sb_take(&b);
}

/* Machine code for kernel k (the specialisation s itself, or one of its stages, named by
 * `part` in the key): loaded from the disk cache when it holds a valid entry (no LLVM
 * optimisation or code generation), else compiled and stored there. */
static fusor_status cached_code(fusor_context *c, const sched_spec *s, const char *part,
                                const ir_kernel *k, const ir_plan *plan, cg_compiled **out) {
    cg_options o = {.opt_level = c->opt_level, .math = c->math};
    if (!c->disk_cache) return cg_host_compile(k, plan, &o, out);
    size_t klen = 0, n = 0;
    unsigned char *key = disk_key(&o, s, part, &klen);
    void *obj = key ? dc_load(key, klen, &n) : NULL;
    if (obj) {
        fusor_status st = cg_host_load_object(k, plan, obj, n, out);
        fu_free(obj);
        obj = NULL;
        if (st == FUSOR_OK) {
            fu_free(key);
            return FUSOR_OK;
        }
        fu_clear_error(); /* an entry that does not link is rebuilt */
    }
    fusor_status st = cg_host_compile_object(k, plan, &o, out, &obj, &n);
    if (st == FUSOR_OK && key && obj) dc_store(key, klen, k->name, obj, n);
    fu_free(obj);
    fu_free(key);
    return st;
}

static fusor_status host_code(fusor_context *c, sched_spec *s) {
    return cached_code(c, s, "", s->ir, s->plan, &s->code);
}

/* A kernel with axis reductions: its stages (a function of the kernel's IR alone), each
 * compiled for the host or loaded from the disk cache under the kernel's key and the
 * stage's number; each stage's GPU code gets such a key too (gpucode.c). */
static fusor_status stage_code(fusor_context *c, sched_spec *s) {
    fusor_status st = ir_stage_build(s->ir, &s->arena, &s->staging);
    if (st != FUSOR_OK) return st;
    s->stage_code = fu_calloc((size_t)s->staging->nstages + 1, sizeof *s->stage_code);
    s->stage_map_code = fu_calloc((size_t)s->staging->nstages + 1, sizeof *s->stage_map_code);
    s->stage_gpu = fu_calloc((size_t)s->staging->nstages + 1, sizeof *s->stage_gpu);
    if (!s->stage_code || !s->stage_map_code || !s->stage_gpu) return fu_oom("a kernel's stages");
    for (int i = 0; i < s->staging->nstages && st == FUSOR_OK; i++) {
        const ir_stage *g = &s->staging->stages[i];
        char part[48];
        snprintf(part, sizeof part, "|stage %d", i);
        sched_spec *sub = &s->stage_gpu[i]; /* GPU code: made on a GPU launch's first use */
        sub->ir = g->k;
        sub->plan = g->plan;
        sub->keylen = s->keylen + strlen(part);
        if (!(sub->key = fu_malloc(sub->keylen))) return fu_oom("a kernel's stages");
        memcpy(sub->key, s->key, s->keylen);
        memcpy(sub->key + s->keylen, part, strlen(part));
        st = cached_code(c, s, part, g->k, g->plan, &s->stage_code[i]);
        snprintf(part, sizeof part, "|stage %d map", i);
        if (st == FUSOR_OK && g->map)
            st = cached_code(c, s, part, g->map, g->map_plan, &s->stage_map_code[i]);
    }
    return st;
}

/* Checks kernel `index` of `prog` with `bindings` and returns its cached or freshly
 * compiled specialisation. */
static fusor_status spec_get(fusor_context *c, const fe_program *prog, int index,
                             const fe_binding *bindings, sched_spec **out) {
    sched_spec *s = fu_calloc(1, sizeof *s);
    if (!s) return fu_oom("a kernel specialisation");
    arena_init(&s->arena);
    fusor_status st = fe_check(&s->arena, prog, index, bindings, &s->ir);
    if (st != FUSOR_OK) {
        spec_free(s);
        return st;
    }
    size_t irlen = 0;
    unsigned char *irkey = ir_key(s->ir, &irlen);
    if (!irkey) {
        spec_free(s);
        return fu_oom("a kernel cache key");
    }
    s->keylen = irlen + 16;
    s->key = fu_malloc(s->keylen);
    if (!s->key) {
        fu_free(irkey);
        spec_free(s);
        return fu_oom("a kernel cache key");
    }
    memcpy(s->key, irkey, irlen);
    fu_free(irkey);
    memcpy(s->key + irlen, "|host|O", 7);
    memset(s->key + irlen + 7, 0, 9);
    s->key[irlen + 7] = (unsigned char)('0' + c->opt_level);
    s->hash = hash_bytes(s->key, s->keylen);

    pthread_mutex_lock(&c->lock);
    sched_spec *hit = cache_find(c, s);
    pthread_mutex_unlock(&c->lock);
    if (hit) {
        spec_free(s);
        *out = hit;
        return FUSOR_OK;
    }

    st = ir_plan_build(s->ir, &s->plan);
    if (st == FUSOR_OK) st = ir_has_axis_reductions(s->ir) ? stage_code(c, s) : host_code(c, s);
    if (st != FUSOR_OK) {
        spec_free(s);
        return st;
    }
    pthread_mutex_lock(&c->lock);
    c->compiles++;
    hit = cache_find(c, s);
    if (!hit) {
        s->next = c->specs;
        c->specs = s;
    }
    pthread_mutex_unlock(&c->lock);
    if (hit) {
        spec_free(s);
        s = hit;
    }
    *out = s;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ kernels */

/* ------------------------------------------------------------------ the front cache
 *
 * Compiling a source the context has compiled before (same text, file name, kernel name
 * and options) returns the same kernel handle with one more reference, found by a hash of
 * the text before anything is parsed: a cached compile costs a hash and a compare.  An
 * entry holds no reference: the kernel's last destroy removes it (under the context's
 * lock), and a lookup takes a reference only while the count is still above zero. */

typedef struct sched_front {
    uint64_t hash;
    size_t keylen;
    unsigned char *key;
    fusor_kernel *k;
    struct sched_front *next;
} sched_front;

/* kind 'K' (a source) or 'U' (a ufunc expression), then every part NUL-separated. */
static unsigned char *front_key(char kind, const fusor_context *c, const char *source,
                                const char *filename, const char *name, size_t *len) {
    size_t ls = strlen(source), lf = filename ? strlen(filename) : 0, ln = name ? strlen(name) : 0;
    *len = 4 + lf + 1 + ln + 1 + ls;
    unsigned char *key = fu_malloc(*len);
    if (!key) return NULL;
    key[0] = (unsigned char)kind;
    key[1] = (unsigned char)c->opt_level;
    key[2] = (unsigned char)c->math;
    key[3] = (unsigned char)(filename ? 1 : 0) | (unsigned char)(name ? 2 : 0);
    unsigned char *p = key + 4;
    memcpy(p, filename ? filename : "", lf + 1);
    p += lf + 1;
    memcpy(p, name ? name : "", ln + 1);
    memcpy(p + ln + 1, source, ls);
    return key;
}

static fusor_kernel *front_find(fusor_context *c, const unsigned char *key, size_t len,
                                uint64_t h) {
    fusor_kernel *found = NULL;
    pthread_mutex_lock(&c->lock);
    for (sched_front *e = c->front; e && !found; e = e->next) {
        if (e->hash != h || e->keylen != len || memcmp(e->key, key, len)) continue;
        _Atomic int *rc = (_Atomic int *)&e->k->refcount;
        int r = atomic_load(rc);
        while (r > 0 && !atomic_compare_exchange_weak(rc, &r, r + 1)) {
        }
        if (r > 0) found = e->k;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

/* Records a freshly compiled kernel; takes the key.  A failure only costs future hits. */
static void front_add(fusor_context *c, fusor_kernel *k, unsigned char *key, size_t len,
                      uint64_t h) {
    sched_front *e = fu_malloc(sizeof *e);
    if (!e) {
        fu_free(key);
        return;
    }
    *e = (sched_front){.hash = h, .keylen = len, .key = key, .k = k};
    pthread_mutex_lock(&c->lock);
    e->next = c->front;
    c->front = e;
    k->front = e;
    pthread_mutex_unlock(&c->lock);
}

static void front_remove(fusor_context *c, sched_front *gone) {
    pthread_mutex_lock(&c->lock);
    for (sched_front **p = &c->front; *p; p = &(*p)->next)
        if (*p == gone) {
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&c->lock);
    fu_free(gone->key);
    fu_free(gone);
}

static fusor_status kernel_new(fusor_context *c, fusor_kernel **out) {
    fusor_kernel *k = fu_calloc(1, sizeof *k);
    if (!k) return fu_oom("a kernel");
    k->refcount = 1;
    arena_init(&k->arena);
    pthread_mutex_init(&k->lock, NULL);
    k->ctx = c;
    atomic_fetch_add_explicit((_Atomic int *)&c->refcount, 1, memory_order_relaxed);
    *out = k;
    return FUSOR_OK;
}

static fusor_status kernel_setup(fusor_kernel *k, const char *name) {
    fusor_status st = fe_find_kernel(k->prog, name, &k->index);
    if (st != FUSOR_OK) return st;
    k->name = fe_kernel_name(k->prog, k->index);
    k->generic = fe_is_generic(k->prog, k->index);
    int n = fe_num_params(k->prog, k->index);
    k->params = arena_alloc(&k->arena, sizeof(fusor_param_info) * (size_t)(n ? n : 1));
    if (!k->params) return fu_oom("a kernel's parameter table");
    for (int i = 0; i < n; i++) {
        k->params[i] = fe_param(k->prog, k->index, i);
        if (k->params[i].is_output)
            k->noutputs++;
        else
            k->ninputs++;
    }
    if (k->generic) return FUSOR_OK;
    return spec_get(k->ctx, k->prog, k->index, NULL, &k->spec);
}

/* A kernel from a source ('K') or a ufunc expression ('U'): the same text, name and
 * options in a context give back the same kernel, found before any parsing. */
static fusor_status kernel_from_text(fusor_context *c, char kind, const char *text,
                                     const char *filename, const char *name, fusor_kernel **out) {
    size_t keylen = 0;
    unsigned char *key = front_key(kind, c, text, filename, name, &keylen);
    uint64_t h = key ? dc_hash64(key, keylen, 0) : 0;
    if (key && (*out = front_find(c, key, keylen, h))) {
        fu_free(key);
        return FUSOR_OK;
    }
    fusor_kernel *k = NULL;
    fusor_status st = kernel_new(c, &k);
    if (st == FUSOR_OK)
        st = kind == 'U' ? fe_parse_expr(&k->arena, text, &k->prog)
                         : fe_parse(&k->arena, text, filename ? filename : "<source>", &k->prog);
    if (st == FUSOR_OK) st = kernel_setup(k, name);
    if (st != FUSOR_OK) {
        fu_free(key);
        fusor_kernel_destroy(k);
        return st;
    }
    if (key) front_add(c, k, key, keylen, h);
    *out = k;
    return FUSOR_OK;
}

fusor_status fusor_kernel_compile(fusor_context *c, const char *source, const char *filename,
                                  const char *name, fusor_kernel **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_compile: out is NULL");
    *out = NULL;
    if (!c) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_compile: NULL context");
    if (!source) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_compile: NULL source");
    return kernel_from_text(c, 'K', source, filename, name, out);
}

fusor_status fusor_ufunc_create(fusor_context *c, const char *expression, fusor_kernel **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_ufunc_create: out is NULL");
    *out = NULL;
    if (!c || !expression)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_ufunc_create: NULL %s",
                        c ? "expression" : "context");
    return kernel_from_text(c, 'U', expression, NULL, NULL, out);
}

void fusor_kernel_destroy(fusor_kernel *k) {
    if (!k) return;
    if (atomic_fetch_sub_explicit((_Atomic int *)&k->refcount, 1, memory_order_acq_rel) != 1)
        return;
    if (k->front) front_remove(k->ctx, k->front);
    for (sched_variant *v = k->variants, *next; v; v = next) {
        next = v->next;
        fu_free(v->signature);
        fu_free(v);
    }
    pthread_mutex_destroy(&k->lock);
    arena_free(&k->arena);
    context_release(k->ctx);
    fu_free(k);
}

const char *fusor_kernel_name(const fusor_kernel *k) { return k ? k->name : NULL; }

int fusor_kernel_num_params(const fusor_kernel *k) { return k ? k->ninputs + k->noutputs : 0; }

fusor_status fusor_kernel_param(const fusor_kernel *k, int i, fusor_param_info *out) {
    if (!k || !out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_param: NULL");
    if (i < 0 || i >= k->ninputs + k->noutputs)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_kernel_param: index %d out of range (kernel %s has %d)", i, k->name,
                        k->ninputs + k->noutputs);
    *out = k->params[i];
    return FUSOR_OK;
}

fusor_status fusor_source_kernels(const char *source, const char *filename, char **names) {
    if (!source || !names)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_source_kernels: NULL argument");
    *names = NULL;
    arena a;
    arena_init(&a);
    fe_program *p;
    fusor_status st = fe_parse(&a, source, filename ? filename : "<source>", &p);
    if (st == FUSOR_OK) {
        strbuf s = {0};
        for (int i = 0; i < fe_num_kernels(p); i++)
            sb_printf(&s, "%s%s", i ? ", " : "", fe_kernel_name(p, i));
        *names = sb_take(&s);
        if (!*names) st = fu_oom("kernel names");
    }
    arena_free(&a);
    return st;
}

/* Signature of a generic launch's bindings, e.g. "Af32,Si64,L2.5". */
static char *binding_signature(const fe_binding *b, int n) {
    strbuf s = {0};
    for (int i = 0; i < n; i++) {
        if (b[i].literal)
            sb_printf(&s, "L%s,", b[i].literal);
        else
            sb_printf(&s, "%c%s,", b[i].is_array ? 'A' : 'S', fusor_dtype_name(b[i].dtype));
    }
    return sb_take(&s);
}

fusor_status sched_specialize(fusor_kernel *k, const fe_binding *bindings, sched_spec **out) {
    if (!k->generic) {
        *out = k->spec;
        return FUSOR_OK;
    }
    char *sig = binding_signature(bindings, k->ninputs);
    if (!sig) return fu_oom("a specialisation key");
    pthread_mutex_lock(&k->lock);
    for (sched_variant *v = k->variants; v; v = v->next) {
        if (!strcmp(v->signature, sig)) {
            *out = v->spec;
            pthread_mutex_unlock(&k->lock);
            fu_free(sig);
            return FUSOR_OK;
        }
    }
    pthread_mutex_unlock(&k->lock);
    sched_spec *s;
    fusor_status st = spec_get(k->ctx, k->prog, k->index, bindings, &s);
    sched_variant *v = st == FUSOR_OK ? fu_calloc(1, sizeof *v) : NULL;
    if (st == FUSOR_OK && !v) st = fu_oom("a specialisation");
    if (st != FUSOR_OK) {
        fu_free(sig);
        return st;
    }
    v->signature = sig;
    v->spec = s;
    pthread_mutex_lock(&k->lock);
    v->next = k->variants;
    k->variants = v;
    pthread_mutex_unlock(&k->lock);
    *out = s;
    return FUSOR_OK;
}

fusor_status fusor_kernel_emit(fusor_kernel *k, fusor_emit what, char **text) {
    if (!k || !text) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_emit: NULL");
    *text = NULL;
    if (k->generic)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "kernel %s is generic: its code depends on the dtypes of its arguments; "
                        "declare the parameter types to see it",
                        k->name);
    sched_spec *s = k->spec;
    if (what == FUSOR_EMIT_IR) {
        *text = ir_print(s->ir, s->plan);
        return *text ? FUSOR_OK : fu_oom("the IR text");
    }
    if (what == FUSOR_EMIT_PTX || what == FUSOR_EMIT_CUDA) return sched_gpu_emit(k, what, text);
    if (what != FUSOR_EMIT_LLVM && what != FUSOR_EMIT_ASM)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_emit: unknown stage %d",
                        (int)what);
    cg_options o = {.opt_level = k->ctx->opt_level, .math = k->ctx->math};
    if (!s->staging) return cg_host_emit(s->ir, s->plan, &o, what, text);
    /* Axis reductions: each stage's code, in the order a launch runs them. */
    strbuf b = {0};
    for (int i = 0; i < s->staging->nstages; i++) {
        char *part = NULL;
        fusor_status st = cg_host_emit(s->staging->stages[i].k, s->staging->stages[i].plan, &o,
                                       what, &part);
        if (st != FUSOR_OK) {
            fu_free(sb_take(&b));
            return st;
        }
        sb_printf(&b, "%s stage %d: %s\n%s", what == FUSOR_EMIT_LLVM ? ";" : "#", i,
                  s->staging->stages[i].k->name, part);
        fu_free(part);
    }
    *text = sb_take(&b);
    return *text ? FUSOR_OK : fu_oom("the kernel's code");
}
