/*
 * gpucode.c — GPU code of a compiled kernel: the context's GPU options, PTX and CUDA C
 * through fusor_kernel_emit, and which path made the PTX.
 *
 * PTX is made on first request and cached with the specialisation (codegen/gpu.c's
 * cache, keyed by arch, path and flags), so the same kernel under the same options is
 * compiled once per context, and a later GPU launcher finds it there.  With the
 * persistent cache on, PTX is also kept on disk beside the host code: a new process
 * loads it instead of running LLVM's NVPTX back end or NVRTC.
 */
#include <string.h>

#include "alloc.h"
#include "diskcache.h"
#include "error.h"
#include "gpu.h"
#include "scheduler.h"
#include "stage.h"
#include "strbuf.h"

fusor_status fusor_context_set_gpu_options(fusor_context *ctx, const fusor_gpu_options *o) {
    if (!ctx)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_context_set_gpu_options: NULL context");
    fusor_gpu_options n;
    fusor_status st = cg_gpu_options_normalize(o, &n);
    if (st)
        return st;
    if (o && o->arch == 0)
        n.arch = 0; /* "the device's" stays a request until a device can answer it */
    pthread_mutex_lock(&ctx->lock);
    ctx->gpu = n;
    pthread_mutex_unlock(&ctx->lock);
    return FUSOR_OK;
}

/* The context's options as codegen takes them (no device yet: arch 0 means sm_80). */
static fusor_gpu_options options_of(fusor_context *ctx) {
    pthread_mutex_lock(&ctx->lock);
    fusor_gpu_options o = ctx->gpu;
    pthread_mutex_unlock(&ctx->lock);
    return o;
}

fusor_status sched_spec_gpu_code(fusor_context *c, sched_spec *s, const fusor_gpu_options *o,
                                 const cg_gpu_code **out) {
    if ((*out = cg_gpu_cache_peek(&s->gpu_cache, o)))
        return FUSOR_OK;
    if (!c->disk_cache || !s->key)
        return cg_gpu_cache_get(&s->gpu_cache, s->ir, s->plan, o, out);
    /* Beside the host code on disk: this build of fusor (which fixes LLVM), then the
     * normalised IR; codegen appends options, libdevice and NVRTC. */
    strbuf b = {0};
    sb_printf(&b, "fusor %s build %s|ptx|", FUSOR_VERSION_STRING, dc_build_id());
    sb_append(&b, (const char *)s->key, s->keylen);
    size_t len = b.len;
    unsigned char *prefix = (unsigned char *)sb_take(&b);
    if (!prefix)
        return cg_gpu_cache_get(&s->gpu_cache, s->ir, s->plan, o, out);
    cg_gpu_store store = {.load = dc_load,
                          .save = dc_store,
                          .prefix = prefix,
                          .prefix_len = len,
                          .name = s->ir->name};
    fusor_status st = cg_gpu_cache_get_stored(&s->gpu_cache, s->ir, s->plan, o, &store, out);
    fu_free(prefix);
    return st;
}

static fusor_status spec_of(fusor_kernel *k, const char *what, sched_spec **out) {
    if (k->generic)
        return fu_error(FUSOR_ERROR_UNSUPPORTED,
                        "kernel %s is generic: its %s depends on the dtypes of its arguments; "
                        "declare the parameter types to see it",
                        k->name, what);
    *out = k->spec;
    return FUSOR_OK;
}

fusor_status sched_gpu_code(fusor_kernel *k, const cg_gpu_code **out) {
    sched_spec *s = NULL;
    fusor_status st = spec_of(k, "GPU code", &s);
    if (st)
        return st;
    fusor_gpu_options o = options_of(k->ctx);
    return sched_spec_gpu_code(k->ctx, s, &o, out);
}

/* A kernel with axis reductions: the code of each of its GPU stages, one after another,
 * each under a comment naming it. */
static fusor_status emit_stages(fusor_kernel *k, sched_spec *s, fusor_emit what, char **text) {
    fusor_gpu_options o = options_of(k->ctx);
    strbuf b = {0};
    fusor_status st = FUSOR_OK;
    for (int i = 0; !st && i < s->staging->nstages; i++) {
        const ir_stage *g = &s->staging->stages[i];
        if (g->kind == IR_STAGE_SCALARS) /* computed on the host */
            continue;
        sb_printf(&b, "// stage %d: %s (%s)\n", i, g->k->name,
                  g->kind == IR_STAGE_AXIS ? "an axis reduction" : "an array output");
        if (what == FUSOR_EMIT_CUDA) {
            char *t = NULL;
            st = cg_cuda_source(g->k, g->plan, &o, &t);
            if (!st)
                sb_printf(&b, "%s\n", t);
            fu_free(t);
        } else {
            const cg_gpu_code *c;
            st = sched_spec_gpu_code(k->ctx, &s->stage_gpu[i], &o, &c);
            if (!st)
                sb_printf(&b, "%s\n", c->ptx);
        }
    }
    char *out = sb_take(&b);
    if (st || !out) {
        fu_free(out);
        return st ? st : fu_oom("the stages' GPU code");
    }
    *text = out;
    return FUSOR_OK;
}

fusor_status sched_gpu_emit(fusor_kernel *k, fusor_emit what, char **text) {
    sched_spec *s = NULL;
    fusor_status st = spec_of(k, what == FUSOR_EMIT_PTX ? "PTX" : "CUDA C", &s);
    if (st)
        return st;
    if (s->staging)
        return emit_stages(k, s, what, text);
    if (what == FUSOR_EMIT_CUDA) {
        fusor_gpu_options o = options_of(k->ctx);
        return cg_cuda_source(s->ir, s->plan, &o, text);
    }
    const cg_gpu_code *c;
    st = sched_gpu_code(k, &c);
    if (st)
        return st;
    *text = fu_strdup(c->ptx);
    return *text ? FUSOR_OK : fu_oom("the PTX text");
}

fusor_status fusor_kernel_gpu_path(fusor_kernel *k, fusor_gpu_path *out) {
    if (!k || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_kernel_gpu_path: NULL");
    const cg_gpu_code *c;
    fusor_status st = sched_gpu_code(k, &c);
    if (st)
        return st;
    *out = c->path;
    return FUSOR_OK;
}
