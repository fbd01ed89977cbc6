/*
 * test_frontend_util.h — helpers shared by the front end's tests: compile a source to IR and
 * render an output's expression as an S-expression written independently of ir_print,
 * e.g. "(add.f32 x (mul.f32 2:f32 y))".
 */
#ifndef TEST_FRONTEND_UTIL_H
#define TEST_FRONTEND_UTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "frontend.h"

static arena fe_test_arena;

/* REQUIRE for void test functions: records a failure and leaves the function. */

/* The IR's invariants (ir.h) that the checker promises: operands precede their users and
 * have the dtype their operation computes in, outputs have their declared dtype. */
static inline int fe_ir_ok(const ir_kernel *k) {
    for (int32_t i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        int32_t ops[3] = {n->a, n->b, n->c};
        int arity = ir_op_arity((ir_op)n->op);
        for (int j = 0; j < arity; j++) {
            if (ops[j] < 0 || ops[j] >= i)
                return 0;
            int want = n->adtype;
            if (n->op == IR_WHERE && j == 0)
                want = FUSOR_BOOL;
            if (k->nodes[ops[j]].dtype != want)
                return 0;
        }
        int bool_result = ir_op_is_comparison((ir_op)n->op) || n->op == IR_ISNAN ||
                          n->op == IR_ISINF || n->op == IR_ISFINITE;
        if (n->op != IR_CAST && !bool_result && n->adtype != n->dtype)
            return 0;
        if (bool_result && n->dtype != FUSOR_BOOL)
            return 0;
    }
    for (int j = 0; j < k->noutputs; j++) {
        const ir_output *o = &k->outputs[j];
        if (o->node < 0 || o->node >= k->nnodes || k->nodes[o->node].dtype != o->dtype)
            return 0;
        if (!o->is_array && k->nodes[o->node].shape == IR_VARYING)
            return 0;
    }
    return 1;
}

/* Parses `src` and checks its kernel `name` (NULL: the only one). Returns NULL on error
 * (the status in *st if given). */
static inline ir_kernel *fe_compile(const char *src, const char *name, const fe_binding *b,
                                    fusor_status *st_out) {
    fe_program *p;
    ir_kernel *k = NULL;
    int i = 0;
    fusor_status st = fe_parse(&fe_test_arena, src, "t.fu", &p);
    if (st == FUSOR_OK)
        st = fe_find_kernel(p, name, &i);
    if (st == FUSOR_OK)
        st = fe_check(&fe_test_arena, p, i, b, &k);
    if (st_out)
        *st_out = st;
    if (st == FUSOR_OK)
        CHECK_MSG(fe_ir_ok(k), "IR invariants broken for:\n%s", src);
    return st == FUSOR_OK ? k : NULL;
}

static inline void fe_render_node(const ir_kernel *k, int32_t i, char *buf, size_t n) {
    const ir_node *nd = &k->nodes[i];
    size_t len = strlen(buf);
    if (len + 1 >= n)
        return;
    char *p = buf + len;
    size_t room = n - len;
    const char *dt = fusor_dtype_name((fusor_dtype)nd->dtype);
    if (nd->op == IR_CONST) {
        if (nd->dtype == FUSOR_F32 || nd->dtype == FUSOR_F64 || nd->dtype == FUSOR_F16)
            snprintf(p, room, "%.17g:%s", nd->imm.f, dt);
        else if (nd->dtype >= FUSOR_U8 && nd->dtype <= FUSOR_U64)
            snprintf(p, room, "%" PRIu64 ":%s", nd->imm.u, dt);
        else
            snprintf(p, room, "%" PRId64 ":%s", nd->imm.i, dt);
        return;
    }
    if (nd->op == IR_INPUT) {
        snprintf(p, room, "%s", k->params[nd->imm.i].name);
        return;
    }
    snprintf(p, room, "(%s.%s", ir_op_name((ir_op)nd->op), dt);
    int32_t ops[3] = {nd->a, nd->b, nd->c};
    for (int j = 0; j < ir_op_arity((ir_op)nd->op); j++) {
        strncat(buf, " ", n - strlen(buf) - 1);
        fe_render_node(k, ops[j], buf, n);
    }
    strncat(buf, ")", n - strlen(buf) - 1);
}

/* The S-expression of output `j`. */
static inline const char *fe_render(const ir_kernel *k, int j) {
    static char buf[4096];
    buf[0] = 0;
    if (!k || j >= k->noutputs)
        return "(no kernel)";
    fe_render_node(k, k->outputs[j].node, buf, sizeof buf);
    return buf;
}

/* Compiles a one-kernel source and renders its first output ("error: ..." on failure). */
static inline const char *fe_expr_of(const char *src) {
    fusor_status st;
    ir_kernel *k = fe_compile(src, NULL, NULL, &st);
    if (!k) {
        static char err[4200];
        snprintf(err, sizeof err, "error: %s", fusor_last_error());
        return err;
    }
    return fe_render(k, 0);
}

#define CHECK_EXPR(src, want)                                                                      \
    do {                                                                                           \
        const char *got_ = fe_expr_of(src);                                                        \
        CHECK_MSG(!strcmp(got_, want), "%s\n  got:  %s\n  want: %s", src, got_, want);             \
    } while (0)

#endif
