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
 *
 * Stencils: a load at an offset is what NumPy's shifted slice is, a view: the operation
 * reading it gets the array's address moved by the offset.  Every pass covers the box the
 * fused kernel covers (the interior sub-box with an INTERIOR parameter), and an array read
 * across its edges with another boundary mode is first copied into a padded array, as
 * np.pad makes one, so that every shifted view stays inside memory.
 *
 * Axis reductions: such a kernel runs stage after stage as a fused launch does (staged.c),
 * each stage unfused; an AXIS stage ends with its operand's reduction along the axis as a
 * pass of its own, as np.sum(t, axis=k) over the temporary t.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "pool.h"
#include "run.h"
#include "stage.h"
#include "unfused.h"

typedef struct uf_step {
    ir_kernel *ir;
    ir_plan *plan;
    cg_compiled *code;
    int32_t *src; /* [ir->nparams]: the node of the big kernel each parameter reads */
    int32_t node; /* the node of the big kernel it computes */
    int dest;     /* the big kernel's array index it writes (an output), or -1: a temporary */
    /* The last step of an AXIS stage: its reduction along the axis.  ir and plan are then
     * the one AXIS stage of `r = reduction(p0, axis)` (stage.h), map_code the code of its
     * row-by-row kernel (NULL when the axis is always the innermost). */
    const ir_stage *axis;
    cg_compiled *map_code;
} uf_step;

/* The steps of one kernel, in order. */
typedef struct uf_list {
    int nsteps;
    uf_step *steps;
} uf_list;

struct sched_unfused {
    arena arena;
    uf_list whole;   /* a kernel without axis reductions */
    int nstages;     /* a kernel with axis reductions: each stage's steps */
    uf_list *stages; /* [nstages] (a SCALARS stage has none: it makes no pass) */
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

/* The reduction of an AXIS stage's last step: its kernel k is `r = reduction(p0)` with
 * one scalar output; made the one AXIS stage of the full kernel `r = reduction(p0, axis)`,
 * whose row kernels host_run_axis runs (`axis` as the full kernel wrote it: -1 means the
 * innermost, and then no row-by-row kernel is needed). */
static fusor_status axis_stage(arena *a, const ir_kernel *k, int64_t axis, const ir_stage **out) {
    const ir_node *red = &k->nodes[k->outputs[0].node];
    if (k->nparams != 1 || !k->params[0].is_array || red->a < 0 || k->nodes[red->a].op != IR_INPUT)
        return fu_error(FUSOR_ERROR_INTERNAL,
                        "an unfused axis reduction reads more than its operand");
    ir_kernel *full = ir_kernel_new(a, "unfused_axis");
    ir_param *param = arena_alloc(a, sizeof *param);
    ir_output *o = arena_alloc(a, sizeof *o);
    if (!full || !param || !o)
        return fu_oom("an unfused axis reduction");
    *param = k->params[0];
    int32_t in = ir_add(full, IR_INPUT, param->dtype, param->dtype, IR_VARYING, -1, -1, -1,
                        (ir_value){.i = 0});
    int32_t r =
        in < 0 ? -1
               : ir_axis_reduce(full, (ir_op)red->op, (fusor_dtype)red->dtype, in, (int)axis, 0);
    if (r < 0)
        return fu_oom("an unfused axis reduction");
    ir_finish(full);
    full->nparams = 1;
    full->params = param;
    full->noutputs = 1;
    full->outputs = o;
    *o = (ir_output){.name = "r", .dtype = (fusor_dtype)red->dtype, .is_array = 1, .node = r};
    ir_staging *sg;
    fusor_status st = ir_stage_build(full, a, &sg);
    if (st)
        return st;
    if (sg->nstages != 1 || sg->stages[0].kind != IR_STAGE_AXIS || sg->stages[0].k->nparams != 1)
        return fu_error(FUSOR_ERROR_INTERNAL, "an unfused axis reduction is not one stage");
    *out = &sg->stages[0];
    return FUSOR_OK;
}

/* `axis` of build_step and build_list when there is none. */
#define NO_AXIS INT64_MIN

/* One kernel computing big node `node` from its boundary values, writing the big kernel's
 * array `dest` (or a temporary when -1).  `axis` (not NO_AXIS): node is an AXIS stage's
 * reduction, along that axis as the full kernel wrote it. */
static fusor_status build_step(sched_unfused *u, const ir_kernel *big, int32_t node, int dest,
                               int64_t axis, const cg_options *o, uf_step *s) {
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
    if (axis != NO_AXIS) {
        fusor_status st = axis_stage(a, k, axis, &s->axis);
        if (st)
            return st;
        s->ir = s->axis->k;
        s->plan = s->axis->plan;
        st = cg_host_compile(s->ir, s->plan, o, &s->code);
        if (st == FUSOR_OK && s->axis->map)
            st = cg_host_compile(s->axis->map, s->axis->map_plan, o, &s->map_code);
        return st;
    }
    fusor_status st = ir_plan_build(k, &s->plan);
    if (st == FUSOR_OK)
        st = cg_host_compile(k, s->plan, o, &s->code);
    return st;
}

static void list_free(uf_list *L) {
    for (int i = 0; i < L->nsteps; i++) {
        cg_compiled_free(L->steps[i].code);
        cg_compiled_free(L->steps[i].map_code);
    }
}

void sched_unfused_free(sched_unfused *u) {
    if (!u)
        return;
    list_free(&u->whole);
    for (int i = 0; i < u->nstages; i++)
        list_free(&u->stages[i]);
    arena_free(&u->arena);
    fu_free(u);
}

/* The steps of kernel `big`: one per materialised node, then the outputs still to write.
 * `axis` (not NO_AXIS): big is an AXIS stage's kernel, reducing along that axis of the
 * full kernel (its one output, a reduction, becomes an axis step). */
static fusor_status build_list(sched_unfused *u, const ir_kernel *big, int64_t axis,
                               const cg_options *o, uf_list *L) {
    int max = big->nnodes + big->noutputs;
    L->steps = arena_alloc(&u->arena, sizeof(uf_step) * (size_t)(max ? max : 1));
    int *written = arena_alloc(&u->arena, sizeof(int) * (size_t)(big->nnodes ? big->nnodes : 1));
    if (!L->steps || !written)
        return fu_oom("an unfused kernel");
    /* Zeroed and counted before they are built: a step that fails half-way is freed with
     * the list. */
    memset(L->steps, 0, sizeof(uf_step) * (size_t)(max ? max : 1));
    fusor_status st = FUSOR_OK;
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
        int64_t ax = n == big->outputs[0].node ? axis : NO_AXIS;
        st = build_step(u, big, n, dest, ax, o, &L->steps[L->nsteps++]);
        written[n] = dest;
    }
    /* Outputs not written yet: copies of another output or an input, and scalar results
     * computed from reductions and parameters. */
    for (int j = 0; j < big->noutputs && !st; j++) {
        const ir_output *op = &big->outputs[j];
        const ir_node *nd = &big->nodes[op->node];
        if (op->is_array ? written[op->node] == big->nparams + j : ir_op_is_reduction(nd->op))
            continue;
        st = build_step(u, big, op->node, op->is_array ? big->nparams + j : -1, NO_AXIS, o,
                        &L->steps[L->nsteps++]);
    }
    return st;
}

static fusor_status build_all(const sched_spec *spec, const cg_options *o, sched_unfused **out) {
    sched_unfused *u = fu_calloc(1, sizeof *u);
    if (!u)
        return fu_oom("an unfused kernel");
    arena_init(&u->arena);
    fusor_status st = FUSOR_OK;
    const ir_staging *sg = spec->staging;
    if (!sg) {
        st = build_list(u, spec->ir, NO_AXIS, o, &u->whole);
    } else if (!(u->stages = arena_alloc(&u->arena, sizeof(uf_list) * (size_t)(sg->nstages + 1)))) {
        st = fu_oom("an unfused kernel");
    } else {
        memset(u->stages, 0, sizeof(uf_list) * (size_t)(sg->nstages + 1));
        for (int i = 0; i < sg->nstages && !st; i++) {
            const ir_stage *g = &sg->stages[i];
            if (g->kind == IR_STAGE_SCALARS)
                continue;
            int64_t axis = g->kind == IR_STAGE_AXIS ? spec->ir->nodes[g->node].imm.i : NO_AXIS;
            st = build_list(u, g->k, axis, o, &u->stages[i]);
            u->nstages = i + 1;
        }
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
        fusor_status st = build_all(s, o, &u);
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

/* Where an AXIS stage's reduction goes (host_run_axis's out, out_strides, axis, scratch). */
typedef struct uf_axis_out {
    char *out;
    const int64_t *strides;
    int axis;
    host_scratch *scratch;
} uf_axis_out;

/* The big kernel's input nodes seen as arrays: where each VARYING one's element [0,...]
 * is and its strides over d (NULL: the parameter's own, d->base and d->strides). */
typedef struct uf_views {
    char **base;
    int64_t (*strides)[FUSOR_MAX_DIMS];
} uf_views;

/* Runs list L of kernel `big` over domain d (whose arrays big indexes). */
static fusor_status run_list(const uf_list *L, const ir_kernel *big, const ir_domain *d,
                             const uf_views *views, const ir_value *slots, ir_value *outs,
                             const uf_axis_out *ax, int nthreads, int *used) {
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
        if (nd->shape == IR_VARYING && views && views->base[i]) {
            base[i] = views->base[i];
            memcpy(strides[i], views->strides[i], sizeof strides[i]);
        } else if (nd->shape == IR_VARYING) {
            base[i] = d->base[p];
            memcpy(strides[i], d->strides[p], sizeof strides[i]);
        } else {
            vals[i] = slots[p];
        }
    }
    *used = 1;
    for (int si = 0; si < L->nsteps && !st; si++) {
        const uf_step *s = &L->steps[si];
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
        if (s->axis)
            st = host_run_axis(k, s->plan, s->code, s->map_code, s->axis->map_accumulates, &sd,
                               ax->axis, ax->out, ax->strides, sslots, nthreads, &t, ax->scratch);
        else
            st = host_run(k, s->plan, s->code, &sd, sslots, sout, nthreads, &t, NULL);
        if (t > *used)
            *used = t;
        if (!k->outputs[0].is_array)
            vals[s->node] = sout[0];
        fu_free(sslots);
    }
    for (int j = 0; j < big->noutputs && !st && outs; j++)
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

/* ---- stencils: the box the kernel runs over, shifted views, padded copies ---- */

/* A C-ordered copy of array parameter p of d with lo[x] elements before and hi[x] after
 * along each dimension x, filled as boundary b maps them (np.pad's modes; ZERO: zeros).
 * pstrides receives its byte strides. */
static char *pad_copy(const ir_domain *d, int p, size_t elem, ir_boundary b, const int64_t *lo,
                      const int64_t *hi, int64_t *pstrides) {
    int nd = d->ndim, last = nd - 1;
    int64_t pshape[FUSOR_MAX_DIMS], total = 1;
    for (int x = 0; x < nd; x++)
        total *= pshape[x] = d->shape[x] + lo[x] + hi[x];
    int64_t s = (int64_t)elem;
    for (int x = last; x >= 0; x--) {
        pstrides[x] = s;
        s *= pshape[x];
    }
    char *buf = fu_aligned_alloc(total ? (size_t)total * elem : 1);
    if (!buf)
        return NULL;
    const int64_t *st = d->strides[p];
    int64_t n = d->shape[last], row = pshape[last], idx[FUSOR_MAX_DIMS] = {0};
    for (int64_t r = 0; total && r < total / row; r++) {
        char *dst = buf + r * row * (int64_t)elem;
        const char *src = d->base[p];
        int zero = 0;
        for (int x = 0; x < last; x++) {
            int64_t i = ir_boundary_index(b, idx[x] - lo[x], d->shape[x]);
            if (i < 0)
                zero = 1;
            else
                src += i * st[x];
        }
        if (zero) {
            memset(dst, 0, (size_t)row * elem);
        } else if (st[last] == (int64_t)elem) { /* the row's middle at once, then its ends */
            memcpy(dst + lo[last] * (int64_t)elem, src, (size_t)n * elem);
        }
        for (int64_t j = 0; j < row && !zero; j++) {
            int64_t i = j - lo[last];
            if (i >= 0 && i < n && st[last] == (int64_t)elem)
                continue;
            i = ir_boundary_index(b, i, n);
            if (i < 0)
                memset(dst + j * (int64_t)elem, 0, elem);
            else
                memcpy(dst + j * (int64_t)elem, src + i * st[last], elem);
        }
        for (int x = last - 1; x >= 0 && ++idx[x] == pshape[x]; x--)
            idx[x] = 0;
    }
    return buf;
}

/* A kernel with stencil loads (or an INTERIOR parameter) unfused: every step runs over the
 * box the fused kernel covers (d cut by the interior halo), a load at an offset is a view
 * of its array shifted by it, as a NumPy slice is, and an array read with a boundary other
 * than INTERIOR is first padded by copy (np.pad), so that every view stays in memory. */
static fusor_status run_stencil(const sched_unfused *u, const ir_kernel *big, const ir_domain *d,
                                const ir_value *slots, ir_value *outs, int nthreads, int *used) {
    if (d->ndim < 1)
        return fu_error(FUSOR_ERROR_SHAPE, "kernel '%s': a stencil needs an array domain",
                        big->name);
    int64_t blo[FUSOR_MAX_DIMS], bhi[FUSOR_MAX_DIMS];
    ir_interior_halo(big, blo, bhi);
    int n = big->nnodes, na = d->narrays;
    ir_domain box = *d;
    box.size = 1;
    for (int x = 0; x < d->ndim; x++) {
        box.shape[x] = d->shape[x] - blo[x] - bhi[x];
        if (box.shape[x] < 0)
            box.shape[x] = 0;
        box.size *= box.shape[x];
    }
    char **bbase = fu_calloc((size_t)na + 1, sizeof(char *));
    char **pads = fu_calloc((size_t)na + 1, sizeof(char *));
    char *padded = fu_calloc((size_t)na + 1, 1); /* array p is read across its edges */
    int64_t(*pstr)[FUSOR_MAX_DIMS] = fu_calloc((size_t)na + 1, sizeof *pstr);
    int64_t(*plo)[FUSOR_MAX_DIMS] = fu_calloc((size_t)na + 1, sizeof *plo);
    int64_t(*phi)[FUSOR_MAX_DIMS] = fu_calloc((size_t)na + 1, sizeof *phi);
    uf_views v = {fu_calloc((size_t)n + 1, sizeof(char *)),
                  fu_calloc((size_t)n + 1, sizeof *v.strides)};
    fusor_status st = bbase && pads && padded && pstr && plo && phi && v.base && v.strides
                          ? FUSOR_OK
                          : fu_oom("an unfused stencil launch");
    for (int i = 0; i < na && !st; i++) { /* every array from the box's first element */
        bbase[i] = d->base[i];
        for (int x = 0; x < d->ndim && bbase[i]; x++)
            bbase[i] += blo[x] * d->strides[i][x];
    }
    box.base = bbase;
    /* The padding each array read across its edges needs. */
    for (int32_t i = 0; i < n && !st; i++) {
        const ir_node *nd = &big->nodes[i];
        int p = (int)nd->imm.i;
        if (!ir_is_stencil_load(big, nd) || ir_param_boundary(big, p) == IR_BOUND_INTERIOR)
            continue;
        padded[p] = 1;
        for (int x = 0; x < d->ndim; x++) {
            if (-nd->off[x] > plo[p][x])
                plo[p][x] = -nd->off[x];
            if (nd->off[x] > phi[p][x])
                phi[p][x] = nd->off[x];
        }
    }
    for (int p = 0; p < big->nparams && !st; p++)
        if (padded[p] && !(pads[p] = pad_copy(d, p, fusor_dtype_size(big->params[p].dtype),
                                              ir_param_boundary(big, p), plo[p], phi[p], pstr[p])))
            st = fu_oom("an unfused stencil's padded copy");
    for (int32_t i = 0; i < n && !st; i++) {
        const ir_node *nd = &big->nodes[i];
        if (!ir_is_stencil_load(big, nd))
            continue;
        int p = (int)nd->imm.i;
        if (pads[p]) {
            v.base[i] = pads[p];
            memcpy(v.strides[i], pstr[p], sizeof v.strides[i]);
        } else {
            v.base[i] = d->base[p];
            memcpy(v.strides[i], d->strides[p], sizeof v.strides[i]);
        }
        for (int x = 0; x < d->ndim; x++)
            v.base[i] += (blo[x] + nd->off[x] + plo[p][x]) * v.strides[i][x];
    }
    if (!st)
        st = run_list(&u->whole, big, &box, &v, slots, outs, NULL, nthreads, used);
    for (int i = 0; pads && i < na; i++)
        fu_aligned_free(pads[i]);
    fu_free(bbase);
    fu_free(pads);
    fu_free(padded);
    fu_free(pstr);
    fu_free(plo);
    fu_free(phi);
    fu_free(v.base);
    fu_free(v.strides);
    return st;
}

fusor_status sched_unfused_run(sched_unfused *u, const ir_kernel *big, const ir_domain *d,
                               const ir_value *slots, ir_value *outs, int nthreads, int *used) {
    int64_t lo[FUSOR_MAX_DIMS], hi[FUSOR_MAX_DIMS];
    if (ir_stencil_loads(big, NULL) || ir_interior_halo(big, lo, hi))
        return run_stencil(u, big, d, slots, outs, nthreads, used);
    return run_list(&u->whole, big, d, NULL, slots, outs, NULL, nthreads, used);
}

fusor_status sched_unfused_run_stage(sched_unfused *u, int si, const ir_kernel *sk,
                                     const ir_domain *d, const ir_value *sslots, int axis,
                                     char *out, const int64_t *out_strides, int nthreads, int *used,
                                     host_scratch *scratch) {
    *used = 1;
    if (si >= u->nstages)
        return FUSOR_OK;
    uf_axis_out ax = {.out = out, .strides = out_strides, .axis = axis, .scratch = scratch};
    return run_list(&u->stages[si], sk, d, NULL, sslots, NULL, &ax, nthreads, used);
}
