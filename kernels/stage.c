/*
 * stage.c — splitting a kernel with axis reductions into stages, and every node's shape
 * at launch (see stage.h).
 */
#include "stage.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

/* ------------------------------------------------------------------ splitting */

typedef struct builder {
    const ir_kernel *full;
    arena *a;
    ir_kernel *k;
    int32_t *map;     /* full node -> stage node, -1 when not copied */
    int32_t *param;   /* full parameter -> stage parameter, -1 */
    char *need;       /* full node is needed by this stage */
    ir_param *params; /* growable */
    ir_stage_src *src;
    int nparams, cap;
} builder;

static int add_param(builder *b, const char *name, fusor_dtype dtype, int is_array,
                     ir_stage_src src) {
    if (b->nparams == b->cap) {
        int cap = b->cap ? b->cap * 2 : 8;
        ir_param *p = arena_grow(b->a, b->params, sizeof *p, (size_t)b->nparams, (size_t)cap);
        ir_stage_src *s = arena_grow(b->a, b->src, sizeof *s, (size_t)b->nparams, (size_t)cap);
        if (!p || !s)
            return -1;
        b->params = p, b->src = s, b->cap = cap;
    }
    b->params[b->nparams] = (ir_param){.name = name, .dtype = dtype, .is_array = is_array};
    b->src[b->nparams] = src;
    return b->nparams++;
}

static const char *temp_name(arena *a, const char *prefix, int32_t node) {
    char buf[32];
    snprintf(buf, sizeof buf, "%s%d", prefix, (int)node);
    return arena_strdup(a, buf);
}

/* Copies full node i (its operands already copied) into the stage kernel. */
static int32_t copy_node(builder *b, int32_t i) {
    const ir_node *n = &b->full->nodes[i];
    if (ir_is_axis_reduction(n)) { /* an earlier stage's result: an array parameter */
        const char *name = temp_name(b->a, "axis%", i);
        int p = name
                    ? add_param(b, name, (fusor_dtype)n->dtype, 1, (ir_stage_src){IR_SRC_RESULT, i})
                    : -1;
        if (p < 0)
            return -1;
        return ir_add(b->k, IR_INPUT, (fusor_dtype)n->dtype, (fusor_dtype)n->dtype, IR_VARYING, -1,
                      -1, -1, (ir_value){.i = p});
    }
    if (n->op == IR_COUNT) { /* the length of a reduced axis: a scalar parameter */
        const char *name = temp_name(b->a, "len%", (int32_t)(n->imm.i - 1));
        int p = name && n->imm.i > 0
                    ? add_param(b, name, FUSOR_I64, 0,
                                (ir_stage_src){IR_SRC_AXISLEN, (int32_t)(n->imm.i - 1)})
                    : -1;
        if (p < 0)
            return -1;
        return ir_add(b->k, IR_INPUT, FUSOR_I64, FUSOR_I64, IR_UNIFORM, -1, -1, -1,
                      (ir_value){.i = p});
    }
    if (n->op == IR_INPUT) {
        int fp = (int)n->imm.i;
        if (b->param[fp] < 0) {
            const ir_param *q = &b->full->params[fp];
            b->param[fp] =
                add_param(b, q->name, q->dtype, q->is_array, (ir_stage_src){IR_SRC_PARAM, fp});
            if (b->param[fp] < 0)
                return -1;
        }
        return ir_add(b->k, IR_INPUT, (fusor_dtype)n->dtype, (fusor_dtype)n->dtype,
                      (ir_shape)n->shape, -1, -1, -1, (ir_value){.i = b->param[fp]});
    }
    int32_t ops[3] = {n->a, n->b, n->c};
    for (int j = 0; j < 3; j++)
        ops[j] = ops[j] >= 0 ? b->map[ops[j]] : -1;
    return ir_add(b->k, (ir_op)n->op, (fusor_dtype)n->dtype, (fusor_dtype)n->adtype,
                  (ir_shape)n->shape, ops[0], ops[1], ops[2], n->imm);
}

/* Copies what roots[0..nroots) need, stopping at axis reductions (other stages). */
static fusor_status copy_roots(builder *b, const int32_t *roots, int nroots) {
    const ir_kernel *f = b->full;
    memset(b->need, 0, (size_t)f->nnodes);
    int32_t top = -1;
    for (int r = 0; r < nroots; r++) {
        b->need[roots[r]] = 1;
        if (roots[r] > top)
            top = roots[r];
    }
    for (int32_t i = top; i >= 0; i--) {
        const ir_node *n = &f->nodes[i];
        if (!b->need[i] || ir_is_axis_reduction(n))
            continue;
        int32_t ops[3] = {n->a, n->b, n->c};
        for (int j = 0; j < ir_op_arity((ir_op)n->op); j++)
            b->need[ops[j]] = 1;
    }
    for (int32_t i = 0; i <= top; i++) {
        b->map[i] = -1;
        if (!b->need[i])
            continue;
        if (f->nodes[i].op == IR_COUNT && f->nodes[i].imm.i <= 0)
            return fu_error(FUSOR_ERROR_INTERNAL,
                            "kernel '%s': a whole-domain count in a kernel with axis reductions",
                            f->name);
        if ((b->map[i] = copy_node(b, i)) < 0)
            return fu_oom("a stage of the kernel");
    }
    return FUSOR_OK;
}

static fusor_status begin_stage(builder *b, const char *what, int n) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s%d", b->full->name, what, n);
    b->k = ir_kernel_new(b->a, name);
    if (!b->k)
        return fu_oom("a stage of the kernel");
    b->params = NULL, b->src = NULL, b->nparams = b->cap = 0;
    for (int i = 0; i < b->full->nparams; i++)
        b->param[i] = -1;
    return FUSOR_OK;
}

static fusor_status end_stage(builder *b, ir_stage *st, ir_output *outs, int nouts) {
    ir_kernel *k = b->k;
    k->nparams = b->nparams;
    k->params = b->params ? b->params : arena_alloc(b->a, sizeof(ir_param));
    k->noutputs = nouts;
    k->outputs = outs;
    ir_finish(k);
    st->k = k;
    st->src = b->src ? b->src : arena_alloc(b->a, sizeof(ir_stage_src));
    if (!k->params || !st->src)
        return fu_oom("a stage of the kernel");
    return ir_plan_build(k, &st->plan);
}

/* The map kernel of AXIS stage s (number n; stage.h), for the reduction at full node i: the same
 * roots again, so that its parameters come in the same order as s's. */
static fusor_status build_map(builder *b, int32_t i, ir_stage *s, int n) {
    const ir_kernel *k = b->full;
    const ir_node *nd = &k->nodes[i];
    ir_stage m = {0};
    ir_output *mo = arena_alloc(b->a, sizeof *mo);
    if (!mo)
        return fu_oom("the kernel's stages");
    fusor_status st;
    if ((st = begin_stage(b, "map", n)) || (st = copy_roots(b, &nd->a, 1)))
        return st;
    const ir_node *opnd = &k->nodes[nd->a];
    fusor_dtype rd = (fusor_dtype)nd->dtype;
    int acc = (nd->op == IR_SUM || nd->op == IR_PROD) && opnd->dtype == rd &&
              (rd == FUSOR_F64 || rd == FUSOR_F32 || rd == FUSOR_I64 || rd == FUSOR_U64);
    int32_t v = b->map[nd->a];
    int np = b->nparams;
    if (acc) {
        const char *name = temp_name(b->a, "acc%", i);
        int p = name ? add_param(b, name, rd, 1, (ir_stage_src){IR_SRC_RESULT, i}) : -1;
        int32_t in = p < 0 ? -1
                           : ir_add(b->k, IR_INPUT, rd, rd, IR_VARYING, -1, -1, -1,
                                    (ir_value){.i = p});
        v = in < 0 ? -1
                   : ir_add(b->k, nd->op == IR_SUM ? IR_ADD : IR_MUL, rd, rd, IR_VARYING, in, v,
                            -1, (ir_value){0});
        if (v < 0)
            return fu_oom("the kernel's stages");
    }
    *mo = (ir_output){.name = "v", .dtype = (fusor_dtype)opnd->dtype, .is_array = 1, .node = v};
    if ((st = end_stage(b, &m, mo, 1)))
        return st;
    if (np != s->k->nparams)
        return fu_error(FUSOR_ERROR_INTERNAL, "kernel '%s': a map stage's parameters differ",
                        k->name);
    s->map = m.k;
    s->map_plan = m.plan;
    s->map_accumulates = acc;
    return FUSOR_OK;
}

fusor_status ir_stage_build(const ir_kernel *k, arena *a, ir_staging **out) {
    size_t nn = (size_t)(k->nnodes ? k->nnodes : 1), np = (size_t)(k->nparams ? k->nparams : 1);
    builder b = {.full = k,
                 .a = a,
                 .map = arena_alloc(a, sizeof(int32_t) * nn),
                 .param = arena_alloc(a, sizeof(int32_t) * np),
                 .need = arena_alloc(a, nn)};
    ir_staging *sg = arena_alloc(a, sizeof *sg);
    int cap = k->nnodes + k->noutputs + 1;
    if (!b.map || !b.param || !b.need || !sg)
        return fu_oom("the kernel's stages");
    sg->stages = arena_alloc(a, sizeof(ir_stage) * (size_t)cap);
    sg->home = arena_alloc(a, sizeof(int32_t) * nn);
    if (!sg->stages || !sg->home)
        return fu_oom("the kernel's stages");
    char *done = arena_alloc(a, (size_t)(k->noutputs ? k->noutputs : 1));
    if (!done)
        return fu_oom("the kernel's stages");
    for (int32_t i = 0; i < k->nnodes; i++) {
        sg->home[i] = -1;
        if (!ir_is_axis_reduction(&k->nodes[i]))
            continue;
        for (int j = 0; j < k->noutputs && sg->home[i] < 0; j++)
            if (k->outputs[j].is_array && k->outputs[j].node == i) {
                sg->home[i] = j;
                done[j] = 1;
            }
    }
    fusor_status st;
    int n = 0;
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *nd = &k->nodes[i];
        if (!ir_is_axis_reduction(nd))
            continue;
        ir_stage *s = &sg->stages[n];
        *s = (ir_stage){.kind = IR_STAGE_AXIS, .node = i, .output = sg->home[i]};
        ir_output *o = arena_alloc(a, sizeof *o);
        if (!o)
            return fu_oom("the kernel's stages");
        if ((st = begin_stage(&b, "axis", n)) || (st = copy_roots(&b, &nd->a, 1)))
            return st;
        int32_t r = ir_add(b.k, (ir_op)nd->op, (fusor_dtype)nd->dtype, (fusor_dtype)nd->adtype,
                           IR_UNIFORM, b.map[nd->a], -1, -1, (ir_value){0});
        if (r < 0)
            return fu_oom("the kernel's stages");
        *o = (ir_output){.name = "r", .dtype = (fusor_dtype)nd->dtype, .is_array = 0, .node = r};
        if ((st = end_stage(&b, s, o, 1)))
            return st;
        s->k->axis_stage = 1;
        /* Only an axis that may not be the innermost (-1) runs row by row. */
        if (nd->imm.i != -1 && (st = build_map(&b, i, s, n)))
            return st;
        n++;
    }
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *fo = &k->outputs[j];
        if (!fo->is_array || done[j])
            continue;
        ir_stage *s = &sg->stages[n];
        *s = (ir_stage){.kind = IR_STAGE_STORE, .node = fo->node, .output = j};
        ir_output *o = arena_alloc(a, sizeof *o);
        if (!o)
            return fu_oom("the kernel's stages");
        if ((st = begin_stage(&b, "store", n)) || (st = copy_roots(&b, &fo->node, 1)))
            return st;
        *o = (ir_output){
            .name = fo->name, .dtype = fo->dtype, .is_array = 1, .node = b.map[fo->node]};
        if ((st = end_stage(&b, s, o, 1)))
            return st;
        n++;
    }
    int nscalar = 0;
    for (int j = 0; j < k->noutputs; j++)
        nscalar += !k->outputs[j].is_array;
    if (nscalar) {
        ir_stage *s = &sg->stages[n];
        *s = (ir_stage){.kind = IR_STAGE_SCALARS, .node = -1, .output = -1};
        ir_output *o = arena_alloc(a, sizeof *o * (size_t)nscalar);
        int32_t *roots = arena_alloc(a, sizeof(int32_t) * (size_t)nscalar);
        if (!o || !roots)
            return fu_oom("the kernel's stages");
        int m = 0;
        for (int j = 0; j < k->noutputs; j++)
            if (!k->outputs[j].is_array)
                roots[m++] = k->outputs[j].node;
        if ((st = begin_stage(&b, "scalars", n)) || (st = copy_roots(&b, roots, m)))
            return st;
        m = 0;
        for (int j = 0; j < k->noutputs; j++)
            if (!k->outputs[j].is_array)
                o[m++] = (ir_output){.name = k->outputs[j].name,
                                     .dtype = k->outputs[j].dtype,
                                     .is_array = 0,
                                     .node = b.map[k->outputs[j].node]};
        if ((st = end_stage(&b, s, o, nscalar)))
            return st;
        n++;
    }
    sg->nstages = n;
    *out = sg;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ shapes */

static void shape_text(char *buf, size_t n, const ir_nshape *s) {
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < s->ndim && len < n; d++)
        len +=
            (size_t)snprintf(buf + len, n - len, "%s%lld", d ? ", " : "", (long long)s->shape[d]);
    if (len < n)
        snprintf(buf + len, n - len, s->ndim == 1 ? ",)" : ")");
}

/* "argument 'x' (3, 4)" or "a value of shape (3, 4)" for node i, whose shape came from
 * parameter who[i] when who[i] >= 0 and that is the node itself. */
static void node_text(char *buf, size_t n, const ir_kernel *k, int32_t i, const ir_nshape *s) {
    char sh[160];
    shape_text(sh, sizeof sh, s);
    const ir_node *nd = &k->nodes[i];
    if (nd->op == IR_INPUT)
        snprintf(buf, n, "argument '%s' %s", k->params[nd->imm.i].name, sh);
    else
        snprintf(buf, n, "a value of shape %s", sh);
}

fusor_status ir_infer_shapes(const ir_kernel *k, const ir_nshape *params, ir_nshape *nodes,
                             int8_t *axis) {
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        ir_nshape *s = &nodes[i];
        axis[i] = -1;
        s->ndim = 0;
        if (n->shape == IR_UNIFORM)
            continue;
        if (n->op == IR_INPUT) {
            *s = params[n->imm.i];
            continue;
        }
        if (ir_is_axis_reduction(n)) {
            const ir_nshape *x = &nodes[n->a];
            int64_t ax = n->imm.i < 0 ? x->ndim + n->imm.i : n->imm.i;
            if (ax < 0 || ax >= x->ndim) {
                char what[200];
                node_text(what, sizeof what, k, n->a, x);
                return fu_error(FUSOR_ERROR_SHAPE,
                                "kernel %s: %s() over axis %lld of %s, which has %d dimension%s",
                                k->name, ir_op_name((ir_op)n->op), (long long)n->imm.i, what,
                                x->ndim, x->ndim == 1 ? "" : "s");
            }
            axis[i] = (int8_t)ax;
            s->ndim = 0;
            for (int d = 0; d < x->ndim; d++) {
                if (d == ax && !n->off[0])
                    continue;
                s->shape[s->ndim++] = d == ax ? 1 : x->shape[d];
            }
            continue;
        }
        int32_t ops[3] = {n->a, n->b, n->c};
        for (int j = 0; j < ir_op_arity((ir_op)n->op); j++) {
            const ir_nshape *x = &nodes[ops[j]];
            if (k->nodes[ops[j]].shape == IR_UNIFORM)
                continue;
            if (x->ndim > s->ndim) { /* right-aligned: pad s with leading ones */
                int pad = x->ndim - s->ndim;
                memmove(s->shape + pad, s->shape, sizeof(int64_t) * (size_t)s->ndim);
                for (int d = 0; d < pad; d++)
                    s->shape[d] = 1;
                s->ndim = x->ndim;
            }
            for (int d = 0; d < x->ndim; d++) {
                int64_t *e = &s->shape[s->ndim - x->ndim + d], v = x->shape[d];
                if (*e == v || v == 1)
                    continue;
                if (*e == 1) {
                    *e = v;
                    continue;
                }
                /* Name the first operand that disagrees with this one. */
                for (int m = 0; m < j; m++) {
                    const ir_nshape *y = &nodes[ops[m]];
                    int dd = d - x->ndim + y->ndim;
                    if (k->nodes[ops[m]].shape == IR_UNIFORM || dd < 0 || y->shape[dd] == 1 ||
                        y->shape[dd] == v)
                        continue;
                    char t1[200], t2[200];
                    node_text(t1, sizeof t1, k, ops[m], y);
                    node_text(t2, sizeof t2, k, ops[j], x);
                    return fu_error(FUSOR_ERROR_SHAPE,
                                    "kernel %s: %s and %s do not broadcast in '%s' (dimension "
                                    "%d: %lld vs %lld)",
                                    k->name, t1, t2, ir_op_name((ir_op)n->op), d - x->ndim,
                                    (long long)y->shape[dd], (long long)v);
                }
                return fu_error(FUSOR_ERROR_SHAPE,
                                "kernel %s: the operands of '%s' do not "
                                "broadcast",
                                k->name, ir_op_name((ir_op)n->op));
            }
        }
    }
    return FUSOR_OK;
}
