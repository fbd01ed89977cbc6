/*
 * ir.c — building, printing and keying the IR.
 *
 * Nodes are hash-consed while a kernel is built: ir_add returns the existing node when an
 * identical one (same op, dtypes, operands and immediate) exists, which is how common
 * subexpressions end up shared.
 */
#include "ir.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "scalar.h"
#include "strbuf.h"

static const struct {
    const char *name;
    int arity;
} op_info[IR_NUM_OPS] = {
#define IR_INFO(n, ar, text) [IR_##n] = {text, ar},
    IR_OPS(IR_INFO)
#undef IR_INFO
};

int ir_op_arity(ir_op op) { return (unsigned)op < IR_NUM_OPS ? op_info[op].arity : 0; }
const char *ir_op_name(ir_op op) { return (unsigned)op < IR_NUM_OPS ? op_info[op].name : "?"; }
int ir_op_is_reduction(ir_op op) { return op >= IR_SUM && op <= IR_ALL; }
int ir_op_is_comparison(ir_op op) { return op >= IR_LT && op <= IR_NE; }

/* ------------------------------------------------------------------ building */

typedef struct cse_table {
    int32_t *slots; /* node index + 1; 0 = empty */
    uint32_t cap;   /* power of two */
} cse_table;

ir_kernel *ir_kernel_new(arena *a, const char *name) {
    ir_kernel *k = arena_alloc(a, sizeof *k);
    if (!k) return NULL;
    k->arena = a;
    k->name = arena_strdup(a, name ? name : "kernel");
    cse_table *t = arena_alloc(a, sizeof *t);
    if (!k->name || !t) return NULL;
    k->cse = t;
    return k;
}

static int same_node(const ir_node *x, const ir_node *y) {
    return x->op == y->op && x->dtype == y->dtype && x->adtype == y->adtype &&
           x->shape == y->shape && x->a == y->a && x->b == y->b && x->c == y->c &&
           x->imm.u == y->imm.u && memcmp(x->off, y->off, sizeof x->off) == 0;
}

static uint32_t hash_node(const ir_node *n) {
    uint64_t h = 1469598103934665603ull;
    uint64_t parts[6] = {n->op | (uint64_t)n->dtype << 8 | (uint64_t)n->adtype << 16 |
                             (uint64_t)n->shape << 24,
                         (uint64_t)(uint32_t)n->a, (uint64_t)(uint32_t)n->b,
                         (uint64_t)(uint32_t)n->c, n->imm.u, 0};
    memcpy(&parts[5], n->off, sizeof n->off);
    for (int i = 0; i < 6; i++) {
        h ^= parts[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static int cse_rehash(ir_kernel *k, uint32_t cap) {
    cse_table *t = k->cse;
    int32_t *slots = arena_alloc(k->arena, sizeof(int32_t) * cap);
    if (!slots) return -1;
    for (int32_t i = 0; i < k->nnodes; i++) {
        uint32_t h = hash_node(&k->nodes[i]) & (cap - 1);
        while (slots[h]) h = (h + 1) & (cap - 1);
        slots[h] = i + 1;
    }
    t->slots = slots;
    t->cap = cap;
    return 0;
}

static int32_t add_node(ir_kernel *k, ir_node n);

int32_t ir_add(ir_kernel *k, ir_op op, fusor_dtype dtype, fusor_dtype adtype, ir_shape shape,
               int32_t a, int32_t b, int32_t c, ir_value imm) {
    ir_node n = {.op = (uint8_t)op, .dtype = (uint8_t)dtype, .adtype = (uint8_t)adtype,
                 .a = a, .b = b, .c = c, .imm = imm, .slot = -1, .pass = -1};
    n.shape = (uint8_t)shape;
    return add_node(k, n);
}

int32_t ir_input_at(ir_kernel *k, int param, fusor_dtype dtype, const int8_t *off) {
    ir_node n = {.op = IR_INPUT, .dtype = (uint8_t)dtype, .adtype = (uint8_t)dtype,
                 .shape = IR_VARYING, .a = -1, .b = -1, .c = -1, .imm = {.i = param},
                 .slot = -1, .pass = -1};
    for (int d = 0; d < ir_param_ndims(k, param) && d < FUSOR_MAX_DIMS; d++) n.off[d] = off[d];
    return add_node(k, n);
}

static int32_t add_node(ir_kernel *k, ir_node n) {
    ir_op op = (ir_op)n.op;
    int32_t a = n.a, b = n.b, c = n.c;
    ir_shape shape = (ir_shape)n.shape;
    if (op == IR_CONST || op == IR_INPUT) {
        n.shape = (uint8_t)shape;
    } else if (ir_op_is_reduction(op) && shape == IR_VARYING) {
        n.shape = IR_VARYING; /* an axis reduction: imm and off[0] say which axis */
    } else if (op == IR_COUNT || ir_op_is_reduction(op)) {
        n.shape = IR_UNIFORM;
    } else {
        int32_t ops[3] = {a, b, c};
        n.shape = IR_UNIFORM;
        for (int i = 0; i < 3; i++)
            if (ops[i] >= 0 && k->nodes[ops[i]].shape == IR_VARYING) n.shape = IR_VARYING;
    }
    int keep_imm = op == IR_CONST || op == IR_INPUT || op == IR_COUNT ||
                   (ir_op_is_reduction(op) && n.shape == IR_VARYING);
    if (!keep_imm) n.imm.u = 0;
    if (op != IR_INPUT && !(ir_op_is_reduction(op) && n.shape == IR_VARYING))
        memset(n.off, 0, sizeof n.off);

    cse_table *t = k->cse;
    if (t && (uint32_t)(k->nnodes + 1) * 2 > t->cap) {
        if (cse_rehash(k, t->cap ? t->cap * 2 : 64) < 0) return -1;
    }
    uint32_t h = 0;
    if (t) {
        h = hash_node(&n) & (t->cap - 1);
        while (t->slots[h]) {
            int32_t i = t->slots[h] - 1;
            if (same_node(&k->nodes[i], &n)) return i;
            h = (h + 1) & (t->cap - 1);
        }
    }
    if (k->nnodes == k->cap) {
        int cap = k->cap ? k->cap * 2 : 32;
        ir_node *nodes = arena_grow(k->arena, k->nodes, sizeof(ir_node), k->nnodes, cap);
        if (!nodes) return -1;
        k->nodes = nodes;
        k->cap = cap;
    }
    k->nodes[k->nnodes] = n;
    if (t) t->slots[h] = k->nnodes + 1;
    return k->nnodes++;
}

int ir_param_ndims(const ir_kernel *k, int p) { return k->dims ? k->dims[p].ndims : 0; }

ir_boundary ir_param_boundary(const ir_kernel *k, int p) {
    return k->dims ? (ir_boundary)k->dims[p].boundary : IR_BOUND_NONE;
}

const char *ir_boundary_name(ir_boundary b) {
    static const char *const names[] = {"none", "clamp", "wrap", "zero", "mirror", "interior"};
    return (unsigned)b < sizeof names / sizeof *names ? names[b] : "?";
}

int ir_is_stencil_load(const ir_kernel *k, const ir_node *n) {
    if (n->op != IR_INPUT || !k->params[n->imm.i].is_array) return 0;
    for (int d = 0; d < FUSOR_MAX_DIMS; d++)
        if (n->off[d]) return 1;
    return 0;
}

int ir_stencil_loads(const ir_kernel *k, int32_t *nodes) {
    int count = 0;
    for (int32_t i = 0; i < k->nnodes; i++)
        if (ir_is_stencil_load(k, &k->nodes[i])) {
            if (nodes) nodes[count] = i;
            count++;
        }
    return count;
}

int64_t ir_boundary_index(ir_boundary b, int64_t i, int64_t n) {
    if (i >= 0 && i < n) return i;
    switch (b) {
    case IR_BOUND_CLAMP: return i < 0 ? 0 : n - 1;
    case IR_BOUND_WRAP: return ((i % n) + n) % n;
    case IR_BOUND_MIRROR: {
        if (n == 1) return 0;
        int64_t period = 2 * (n - 1), r = ((i % period) + period) % period;
        return r < n ? r : period - r;
    }
    default: return -1;
    }
}

int ir_interior_halo(const ir_kernel *k, int64_t lo[FUSOR_MAX_DIMS], int64_t hi[FUSOR_MAX_DIMS]) {
    int any = 0;
    for (int d = 0; d < FUSOR_MAX_DIMS; d++) lo[d] = hi[d] = 0;
    for (int p = 0; p < k->nparams; p++)
        if (ir_param_boundary(k, p) == IR_BOUND_INTERIOR) any = 1;
    if (!any) return 0; /* no halo: launches ask on every run */
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        if (!ir_is_stencil_load(k, n) || ir_param_boundary(k, (int)n->imm.i) != IR_BOUND_INTERIOR)
            continue;
        for (int d = 0; d < FUSOR_MAX_DIMS; d++) {
            if (-n->off[d] > lo[d]) lo[d] = -n->off[d];
            if (n->off[d] > hi[d]) hi[d] = n->off[d];
        }
    }
    return any;
}

int32_t ir_const(ir_kernel *k, fusor_dtype dtype, ir_value v) {
    return ir_add(k, IR_CONST, dtype, dtype, IR_UNIFORM, -1, -1, -1, v);
}

int32_t ir_axis_reduce(ir_kernel *k, ir_op op, fusor_dtype dtype, int32_t a, int axis,
                       int keepdims) {
    ir_node n = {.op = (uint8_t)op, .dtype = (uint8_t)dtype, .adtype = (uint8_t)dtype,
                 .shape = IR_VARYING, .a = a, .b = -1, .c = -1, .imm = {.i = axis},
                 .slot = -1, .pass = -1};
    n.off[0] = (int8_t)(keepdims != 0);
    return add_node(k, n);
}

int ir_output_ndims(const ir_kernel *k, int j) { return k->out_dims ? k->out_dims[j].ndims : 0; }

int ir_is_axis_reduction(const ir_node *n) {
    return ir_op_is_reduction((ir_op)n->op) && n->shape == IR_VARYING;
}

int ir_is_float_minmax(const ir_node *n) {
    fusor_dtype d = (fusor_dtype)n->dtype;
    return (n->op == IR_MIN || n->op == IR_MAX) &&
           (d == FUSOR_F64 || d == FUSOR_F32 || d == FUSOR_F16);
}

int ir_has_axis_reductions(const ir_kernel *k) {
    for (int32_t i = 0; i < k->nnodes; i++)
        if (ir_is_axis_reduction(&k->nodes[i])) return 1;
    return 0;
}

void ir_finish(ir_kernel *k) { k->cse = NULL; }

/* ------------------------------------------------------------------ printing */

static const char *shape_name(const ir_node *n) {
    return n->shape == IR_VARYING ? "varying" : "uniform";
}

char *ir_print(const ir_kernel *k, const ir_plan *plan) {
    strbuf s = {0};
    sb_printf(&s, "kernel %s(", k->name);
    for (int i = 0; i < k->nparams; i++) {
        int nd = ir_param_ndims(k, i);
        sb_printf(&s, "%s%s: %s%s", i ? ", " : "", k->params[i].name,
                  fusor_dtype_name(k->params[i].dtype), k->params[i].is_array && !nd ? "[]" : "");
        for (int d = 0; d < nd; d++)
            sb_printf(&s, "%s%s", d ? ", " : "[", k->dims[i].names[d]);
        if (nd) sb_printf(&s, "]");
        if (ir_param_boundary(k, i) != IR_BOUND_NONE)
            sb_printf(&s, " %s", ir_boundary_name(ir_param_boundary(k, i)));
    }
    sb_printf(&s, ") -> (");
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        int nd = ir_output_ndims(k, j);
        sb_printf(&s, "%s%s: %s%s", j ? ", " : "", o->name, fusor_dtype_name(o->dtype),
                  o->is_array && !nd ? "[]" : "");
        for (int d = 0; d < nd; d++) sb_printf(&s, "%s%s", d ? ", " : "[", k->out_dims[j].names[d]);
        if (nd) sb_printf(&s, "]");
    }
    sb_printf(&s, ")\n");
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        sb_printf(&s, "  %%%d = %s.%s", i, ir_op_name(n->op), fusor_dtype_name(n->dtype));
        if (n->op == IR_CONST) {
            char buf[64];
            sc_format(buf, sizeof buf, n->imm, (fusor_dtype)n->dtype);
            sb_printf(&s, " %s", buf);
        } else if (n->op == IR_INPUT) {
            sb_printf(&s, " %s", k->params[n->imm.i].name);
            if (ir_is_stencil_load(k, n)) {
                sb_printf(&s, "[");
                for (int d = 0; d < ir_param_ndims(k, (int)n->imm.i); d++)
                    sb_printf(&s, "%s%+d", d ? ", " : "", n->off[d]);
                sb_printf(&s, "] %s", ir_boundary_name(ir_param_boundary(k, (int)n->imm.i)));
            }
        } else {
            if (n->adtype != n->dtype) sb_printf(&s, " (%s)", fusor_dtype_name(n->adtype));
            int32_t ops[3] = {n->a, n->b, n->c};
            for (int j = 0; j < ir_op_arity(n->op); j++) sb_printf(&s, " %%%d", ops[j]);
            if (ir_is_axis_reduction(n))
                sb_printf(&s, " axis=%" PRId64 "%s", n->imm.i, n->off[0] ? " keepdims" : "");
            if (n->op == IR_COUNT && n->imm.i > 0)
                sb_printf(&s, " axis of %%%" PRId64, n->imm.i - 1);
        }
        sb_printf(&s, "  ; %s", shape_name(n));
        if (n->pass >= 0) sb_printf(&s, ", pass %d, slot %d", n->pass, n->slot);
        sb_printf(&s, "\n");
    }
    for (int j = 0; j < k->noutputs; j++)
        sb_printf(&s, "  %s = %%%d\n", k->outputs[j].name, k->outputs[j].node);
    if (plan) {
        for (int p = 0; p < plan->npasses; p++) {
            const ir_pass *ps = &plan->passes[p];
            sb_printf(&s, "pass %d:", p);
            if (ps->nreductions) {
                sb_printf(&s, " reduce");
                for (int r = 0; r < ps->nreductions; r++) sb_printf(&s, " %%%d", ps->reductions[r]);
            }
            if (ps->nstores) {
                sb_printf(&s, "%s store", ps->nreductions ? ";" : "");
                for (int r = 0; r < ps->nstores; r++)
                    sb_printf(&s, " %s", k->outputs[ps->stores[r]].name);
            }
            sb_printf(&s, "\n");
        }
        if (plan->has_scalar_outputs) sb_printf(&s, "finish: scalar outputs\n");
    }
    return sb_take(&s);
}

/* ------------------------------------------------------------------ keying */

unsigned char *ir_key(const ir_kernel *k, size_t *len) {
    strbuf s = {0};
    sb_printf(&s, "P%d", k->nparams);
    for (int i = 0; i < k->nparams; i++)
        sb_printf(&s, "|%s:%d:%d:%d:%d", k->params[i].name, k->params[i].dtype,
                  k->params[i].is_array, ir_param_ndims(k, i), ir_param_boundary(k, i));
    sb_printf(&s, "O%d", k->noutputs);
    for (int j = 0; j < k->noutputs; j++)
        sb_printf(&s, "|%s:%d:%d:%d", k->outputs[j].name, k->outputs[j].dtype,
                  k->outputs[j].is_array, k->outputs[j].node);
    sb_printf(&s, "N%d", k->nnodes);
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        sb_printf(&s, "|%d,%d,%d,%d,%d,%d,%d,%" PRIx64, n->op, n->dtype, n->adtype, n->shape,
                  n->a, n->b, n->c, n->imm.u);
        if (ir_is_stencil_load(k, n))
            for (int d = 0; d < FUSOR_MAX_DIMS; d++) sb_printf(&s, ",%d", n->off[d]);
        if (ir_is_axis_reduction(n)) sb_printf(&s, ",k%d", n->off[0]);
    }
    for (int j = 0; j < k->noutputs; j++)
        if (ir_output_ndims(k, j)) { /* gufunc output dimensions change launch checks */
            sb_printf(&s, "|D%d", j);
            for (int d = 0; d < ir_output_ndims(k, j); d++)
                sb_printf(&s, ",%s", k->out_dims[j].names[d]);
        }
    for (int i = 0; i < k->nparams; i++)
        if (ir_param_ndims(k, i)) {
            sb_printf(&s, "|d%d", i);
            for (int d = 0; d < ir_param_ndims(k, i); d++)
                sb_printf(&s, ",%s", k->dims[i].names[d]);
        }
    *len = s.len;
    return (unsigned char *)sb_take(&s);
}
