/*
 * plan.c — the fusion planner: how many passes over memory a kernel needs, and what each
 * pass does.
 *
 * A node is "available" in pass p when everything it depends on can be computed while
 * streaming over the domain in pass p.  Inputs and constants are available from pass 0;
 * a reduction over an operand available in pass p is computed in pass p and its result is
 * available from pass p + 1.  So `y = exp(x - max(x)); p = y / sum(y)` needs three passes
 * (max; sum; store), and a kernel without reductions needs one.  Array outputs are all
 * stored in the last pass (see ir.h for why).
 */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "ir.h"

static int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

fusor_status ir_plan_build(ir_kernel *k, ir_plan **out) {
    arena *a = k->arena;
    int32_t n = k->nnodes;
    int32_t *avail = arena_alloc(a, sizeof(int32_t) * (size_t)(n ? n : 1));
    char *live = arena_alloc(a, (size_t)(n ? n : 1));
    ir_plan *plan = arena_alloc(a, sizeof *plan);
    if (!avail || !live || !plan) return fu_oom("the kernel's plan");

    for (int j = 0; j < k->noutputs; j++) live[k->outputs[j].node] = 1;
    for (int32_t i = n - 1; i >= 0; i--) {
        if (!live[i]) continue;
        const ir_node *nd = &k->nodes[i];
        if (nd->a >= 0) live[nd->a] = 1;
        if (nd->b >= 0) live[nd->b] = 1;
        if (nd->c >= 0) live[nd->c] = 1;
    }

    int32_t npasses = 0, nreductions = 0;
    for (int32_t i = 0; i < n; i++) {
        ir_node *nd = &k->nodes[i];
        nd->pass = nd->slot = -1;
        int32_t av = 0;
        if (nd->a >= 0) av = max_i32(av, avail[nd->a]);
        if (nd->b >= 0) av = max_i32(av, avail[nd->b]);
        if (nd->c >= 0) av = max_i32(av, avail[nd->c]);
        /* Axis reductions are not the plan's business: stage.h computes them. */
        if (ir_op_is_reduction((ir_op)nd->op) && nd->shape == IR_UNIFORM) {
            if (live[i]) {
                nd->pass = av;
                nd->slot = k->nparams + 1 + nreductions++;
                npasses = max_i32(npasses, av + 1);
            }
            av++;
        }
        avail[i] = av;
    }
    for (int j = 0; j < k->noutputs; j++) {
        if (k->outputs[j].is_array)
            npasses = max_i32(npasses, avail[k->outputs[j].node] + 1);
        else
            plan->has_scalar_outputs = 1;
    }

    plan->npasses = npasses;
    plan->count_slot = k->nparams;
    plan->nslots = k->nparams + 1 + nreductions;
    plan->passes = arena_alloc(a, sizeof(ir_pass) * (size_t)(npasses ? npasses : 1));
    if (!plan->passes) return fu_oom("the kernel's plan");
    for (int32_t p = 0; p < npasses; p++) {
        ir_pass *ps = &plan->passes[p];
        ps->reductions = arena_alloc(a, sizeof(int32_t) * (size_t)(nreductions ? nreductions : 1));
        ps->stores = arena_alloc(a, sizeof(int32_t) * (size_t)(k->noutputs ? k->noutputs : 1));
        if (!ps->reductions || !ps->stores) return fu_oom("the kernel's plan");
    }
    /* Reductions in slot order, so accumulator order is deterministic. */
    for (int32_t i = 0; i < n; i++) {
        const ir_node *nd = &k->nodes[i];
        if (nd->pass >= 0) {
            ir_pass *ps = &plan->passes[nd->pass];
            ps->reductions[ps->nreductions++] = i;
        }
    }
    if (npasses > 0) {
        ir_pass *last = &plan->passes[npasses - 1];
        for (int j = 0; j < k->noutputs; j++)
            if (k->outputs[j].is_array) last->stores[last->nstores++] = j;
    }
    *out = plan;
    return FUSOR_OK;
}
