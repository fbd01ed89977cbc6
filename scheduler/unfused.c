/*
 * unfused.c — fusor_launch_unfused: a kernel run the way NumPy evaluates it, one
 * operation at a time, each a pass over memory into a temporary array.
 *
 * It exists to measure what fusion buys (`fusor bench --unfused`).  Every operation of the
 * specialisation's IR that produces one value per element (and every reduction) becomes a
 * one-operation kernel of its own, compiled once and kept on the specialisation.  Uniform
 * arithmetic on scalars (parameters, constants) is folded into the operation that uses it,
 * as NumPy folds a Python scalar into a ufunc call.  The launch is prepared (and checked)
 * exactly like a fused one by launch.c; only the execution differs.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"
#include "run.h"
#include "unfused.h"

typedef struct uf_step {
    ir_kernel *ir;
    ir_plan *plan;
    cg_compiled *code;
    int32_t *src; /* [ir->nparams]: the node of the big kernel each parameter reads */
    int32_t node; /* the node of the big kernel it computes */
    int dest;     /* the big kernel's array index it writes (an output), or -1: a temporary */
} uf_step;

struct sched_unfused {
    arena arena;
    int nsteps;
    uf_step *steps;
};

/* Nodes that get their own pass: one value per element (other than an input array's),
 * and reductions. */
static int materialised(const ir_node *n) {
    return (n->shape == IR_VARYING && n->op != IR_INPUT) || ir_op_is_reduction((ir_op)n->op);
}

typedef struct builder {
    const ir_kernel *big;
    ir_kernel *k;
    int32_t *map;  /* big node -> small node */
    int32_t *srcs; /* per small parameter */
    int nparams, cap;
} builder;

static int32_t copy_node(builder *b, int32_t n, int root) {
    if (b->map[n] >= 0)
        return b->map[n];
    const ir_node *nd = &b->big->nodes[n];
    int32_t r;
    if ((!root && materialised(nd)) || nd->op == IR_INPUT || nd->op == IR_COUNT) {
        if (b->nparams == b->cap)
            return -1;
        int p = b->nparams++;
        b->srcs[p] = n;
        r = ir_add(b->k, IR_INPUT, (fusor_dtype)nd->dtype, (fusor_dtype)nd->dtype,
                   (ir_shape)nd->shape, -1, -1, -1, (ir_value){.i = p});
    } else if (nd->op == IR_CONST) {
        r = ir_const(b->k, (fusor_dtype)nd->dtype, nd->imm);
    } else {
        int32_t ops[3] = {nd->a, nd->b, nd->c}, m[3] = {-1, -1, -1};
        for (int i = 0; i < ir_op_arity((ir_op)nd->op); i++)
            if ((m[i] = copy_node(b, ops[i], 0)) < 0)
                return -1;
        r = ir_add(b->k, (ir_op)nd->op, (fusor_dtype)nd->dtype, (fusor_dtype)nd->adtype,
                   (ir_shape)nd->shape, m[0], m[1], m[2], nd->imm);
    }
    b->map[n] = r;
    return r;
}

/* One kernel computing big node `node` from its boundary values; is_array: the output
 * is an array (else a scalar). */
static fusor_status build_step(sched_unfused *u, const ir_kernel *big, int32_t node, int dest,
                               const cg_options *o, uf_step *s) {
    arena *a = &u->arena;
    builder b = {.big = big, .cap = big->nnodes + 1};
    b.k = ir_kernel_new(a, "unfused");
    b.map = arena_alloc(a, sizeof(int32_t) * (size_t)big->nnodes);
    b.srcs = arena_alloc(a, sizeof(int32_t) * (size_t)b.cap);
    if (!b.k || !b.map || !b.srcs)
        return fu_oom("an unfused step");
    for (int i = 0; i < big->nnodes; i++)
        b.map[i] = -1;
    int32_t out = copy_node(&b, node, 1);
    if (out < 0)
        return fu_oom("an unfused step");
    ir_kernel *k = b.k;
    ir_finish(k);
    k->nparams = b.nparams;
    k->params = arena_alloc(a, sizeof(ir_param) * (size_t)(b.nparams ? b.nparams : 1));
    k->noutputs = 1;
    k->outputs = arena_alloc(a, sizeof(ir_output));
    if (!k->params || !k->outputs)
        return fu_oom("an unfused step");
    for (int p = 0; p < b.nparams; p++) {
        char name[24];
        snprintf(name, sizeof name, "p%d", p);
        const ir_node *src = &big->nodes[b.srcs[p]];
        k->params[p] = (ir_param){.name = arena_strdup(a, name),
                                  .dtype = (fusor_dtype)src->dtype,
                                  .is_array = src->shape == IR_VARYING};
        if (!k->params[p].name)
            return fu_oom("an unfused step");
    }
    const ir_node *nd = &big->nodes[node];
    k->outputs[0] = (ir_output){.name = "out",
                                .dtype = (fusor_dtype)nd->dtype,
                                .is_array = nd->shape == IR_VARYING,
                                .node = out};
    s->ir = k;
    s->src = b.srcs;
    s->node = node;
    s->dest = dest;
    fusor_status st = ir_plan_build(k, &s->plan);
    if (st == FUSOR_OK)
        st = cg_host_compile(k, s->plan, o, &s->code);
    return st;
}

void sched_unfused_free(sched_unfused *u) {
    if (!u)
        return;
    for (int i = 0; i < u->nsteps; i++)
        cg_compiled_free(u->steps[i].code);
    arena_free(&u->arena);
    fu_free(u);
}

static fusor_status build_all(const ir_kernel *big, const cg_options *o, sched_unfused **out) {
    sched_unfused *u = fu_calloc(1, sizeof *u);
    if (!u)
        return fu_oom("an unfused kernel");
    arena_init(&u->arena);
    int max = big->nnodes + big->noutputs;
    u->steps = arena_alloc(&u->arena, sizeof(uf_step) * (size_t)(max ? max : 1));
    int *written = arena_alloc(&u->arena, sizeof(int) * (size_t)(big->nnodes ? big->nnodes : 1));
    fusor_status st = u->steps && written ? FUSOR_OK : fu_oom("an unfused kernel");
    for (int j = 0; j < big->noutputs && !st; j++) {
        const ir_output *op = &big->outputs[j];
        if (op->is_array && big->nodes[op->node].shape != IR_VARYING)
            st = fu_error(FUSOR_ERROR_UNSUPPORTED,
                          "kernel %s: output '%s' is one value broadcast to an array; the "
                          "unfused run does not handle that",
                          big->name, op->name);
    }
    /* Each materialised node in order, written straight into the first array output it is. */
    for (int32_t n = 0; n < big->nnodes && !st; n++) {
        if (!materialised(&big->nodes[n]))
            continue;
        int dest = -1;
        for (int j = 0; j < big->noutputs && dest < 0; j++)
            if (big->outputs[j].is_array && big->outputs[j].node == n)
                dest = big->nparams + j;
        st = build_step(u, big, n, dest, o, &u->steps[u->nsteps]);
        if (!st)
            u->nsteps++;
        written[n] = dest;
    }
    /* Outputs not written yet: copies of another output or an input, and scalar results
     * computed from reductions and parameters. */
    for (int j = 0; j < big->noutputs && !st; j++) {
        const ir_output *op = &big->outputs[j];
        const ir_node *nd = &big->nodes[op->node];
        if (op->is_array ? written[op->node] == big->nparams + j : ir_op_is_reduction(nd->op))
            continue;
        st = build_step(u, big, op->node, op->is_array ? big->nparams + j : -1, o,
                        &u->steps[u->nsteps]);
        if (!st)
            u->nsteps++;
    }
    if (st) {
        sched_unfused_free(u);
        return st;
    }
    *out = u;
    return FUSOR_OK;
}

fusor_status sched_unfused_get(sched_spec *s, const cg_options *o, sched_unfused **out) {
    sched_unfused *u = atomic_load((_Atomic(sched_unfused *) *)&s->unfused);
    if (!u) {
        fusor_status st = build_all(s->ir, o, &u);
        if (st)
            return st;
        sched_unfused *expect = NULL;
        if (!atomic_compare_exchange_strong((_Atomic(sched_unfused *) *)&s->unfused, &expect, u)) {
            sched_unfused_free(u);
            u = expect;
        }
    }
    *out = u;
    return FUSOR_OK;
}

/* C-order byte strides of a temporary over the domain. */
static void c_strides(const ir_domain *d, size_t elem, int64_t *out) {
    int64_t s = (int64_t)elem;
    for (int x = d->ndim - 1; x >= 0; x--) {
        out[x] = s;
        s *= d->shape[x];
    }
}

fusor_status sched_unfused_run(sched_unfused *u, const ir_kernel *big, const ir_domain *d,
                               const ir_value *slots, ir_value *outs, int nthreads, int *used) {
    int n = big->nnodes;
    char **base = fu_calloc((size_t)n + 1, sizeof(char *));
    int64_t(*strides)[FUSOR_MAX_DIMS] = fu_calloc((size_t)n + 1, sizeof *strides);
    ir_value *vals = fu_calloc((size_t)n + 1, sizeof(ir_value));
    void **temps = fu_calloc((size_t)n + 1, sizeof(void *));
    fusor_status st = base && strides && vals && temps ? FUSOR_OK : fu_oom("an unfused launch");
    for (int32_t i = 0; i < n && !st; i++) { /* inputs and COUNT */
        const ir_node *nd = &big->nodes[i];
        if (nd->op == IR_COUNT)
            vals[i].i = d->size;
        if (nd->op != IR_INPUT)
            continue;
        int p = (int)nd->imm.i;
        if (nd->shape == IR_VARYING) {
            base[i] = d->base[p];
            memcpy(strides[i], d->strides[p], sizeof strides[i]);
        } else {
            vals[i] = slots[p];
        }
    }
    *used = 1;
    for (int si = 0; si < u->nsteps && !st; si++) {
        uf_step *s = &u->steps[si];
        const ir_kernel *k = s->ir;
        const ir_node *nd = &big->nodes[s->node];
        int na = k->nparams + 1;
        char *sbase[HOST_MAX_ARRAYS];
        int64_t sstrides[HOST_MAX_ARRAYS][FUSOR_MAX_DIMS];
        ir_value *sslots = fu_calloc((size_t)s->plan->nslots + 1, sizeof(ir_value));
        if (!sslots || na > HOST_MAX_ARRAYS) {
            fu_free(sslots);
            st = fu_oom("an unfused step's slots");
            break;
        }
        for (int p = 0; p < k->nparams; p++) {
            int32_t src = s->src[p];
            sbase[p] = k->params[p].is_array ? base[src] : NULL;
            memcpy(sstrides[p], strides[src], sizeof sstrides[p]);
            sslots[p] = vals[src];
        }
        char *obase = NULL;
        int64_t ostrides[FUSOR_MAX_DIMS] = {0};
        if (k->outputs[0].is_array) {
            if (s->dest >= 0) {
                obase = d->base[s->dest];
                memcpy(ostrides, d->strides[s->dest], sizeof ostrides);
            } else {
                size_t bytes = fusor_dtype_size((fusor_dtype)nd->dtype) * (size_t)d->size;
                obase = temps[s->node] = fu_aligned_alloc(bytes ? bytes : 1);
                if (!obase) {
                    fu_free(sslots);
                    st = fu_oom("an unfused temporary");
                    break;
                }
                c_strides(d, fusor_dtype_size((fusor_dtype)nd->dtype), ostrides);
            }
            base[s->node] = obase;
            memcpy(strides[s->node], ostrides, sizeof ostrides);
        }
        sbase[k->nparams] = obase;
        memcpy(sstrides[k->nparams], ostrides, sizeof ostrides);
        ir_domain sd = *d;
        sd.narrays = na;
        sd.base = sbase;
        sd.strides = sstrides;
        sslots[s->plan->count_slot].i = d->size;
        ir_value sout[1] = {{0}};
        int t = 1;
        st = host_run(k, s->plan, s->code, &sd, sslots, sout, nthreads, &t, NULL);
        if (t > *used)
            *used = t;
        if (!k->outputs[0].is_array)
            vals[s->node] = sout[0];
        fu_free(sslots);
    }
    for (int j = 0; j < big->noutputs && !st; j++)
        if (!big->outputs[j].is_array)
            outs[j] = vals[big->outputs[j].node];
    for (int i = 0; temps && i < n; i++)
        fu_aligned_free(temps[i]);
    fu_free(base);
    fu_free(strides);
    fu_free(vals);
    fu_free(temps);
    return st;
}
