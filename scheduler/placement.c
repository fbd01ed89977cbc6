/*
 * placement.c — the placement decision (placement.h): rules first, then the cost model.
 */
#include "placement.h"

#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "ir.h"

static void say(sched_place_result *r, const char *fmt, ...) FU_PRINTF(2, 3);
static void say(sched_place_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static void fail(sched_place_result *r, fusor_status st) {
    r->status = st;
    r->where = FUSOR_TARGET_CPU;
    r->device = -1;
}

static double seconds(double amount, double rate) { return rate > 0 ? amount / rate : 0; }

static void times_text(char *buf, size_t n, double s) {
    if (s >= 1)
        snprintf(buf, n, "%.2f s", s);
    else if (s >= 1e-3)
        snprintf(buf, n, "%.2f ms", s * 1e3);
    else
        snprintf(buf, n, "%.0f us", s * 1e6);
}

void sched_place(const sched_place_query *q, sched_place_result *r) {
    r->status = FUSOR_OK;
    r->where = FUSOR_TARGET_CPU;
    r->device = -1;
    r->copy_bytes = r->cpu_s = r->gpu_s = 0;
    r->reason[0] = 0;

    /* Where the arrays are: the first array in device memory names the GPU. */
    const sched_place_array *on_dev = NULL;
    double bytes = 0, copy = 0;
    for (int i = 0; i < q->narrays; i++) {
        const sched_place_array *a = &q->arrays[i];
        bytes += (double)a->bytes;
        if (a->memory == FUSOR_MEMORY_HOST || a->memory == FUSOR_MEMORY_PINNED)
            copy += (double)a->bytes * ((a->is_input || !a->is_output) + a->is_output);
        if (a->memory != FUSOR_MEMORY_DEVICE)
            continue;
        if (!on_dev) {
            on_dev = a;
        } else if (a->device != on_dev->device) {
            say(r,
                "arrays '%s' (GPU %d) and '%s' (GPU %d) live on different GPUs; copy one "
                "of them first",
                on_dev->name, on_dev->device, a->name, a->device);
            fail(r, FUSOR_ERROR_UNSUPPORTED);
            return;
        }
    }
    int device = on_dev ? on_dev->device : q->default_device;

    if (q->target == FUSOR_TARGET_CPU) {
        if (on_dev) {
            if (q->host_only)
                say(r,
                    "%s, which cannot read array '%s': it lives on GPU %d (copy it to the "
                    "host with fusor_array_copy)",
                    q->host_only, on_dev->name, on_dev->device);
            else
                say(r,
                    "the CPU target cannot read array '%s': it lives on GPU %d (copy it to "
                    "the host with fusor_array_copy, or use the GPU or auto target)",
                    on_dev->name, on_dev->device);
            fail(r, FUSOR_ERROR_UNSUPPORTED);
            return;
        }
        say(r, "%s", q->host_only ? q->host_only : "the CPU target was requested");
        return;
    }
    if (!q->gpu_usable) {
        const char *why = q->gpu_reason && *q->gpu_reason ? q->gpu_reason : "no usable GPU";
        if (q->target == FUSOR_TARGET_GPU || on_dev) {
            if (on_dev)
                say(r, "array '%s' lives on GPU %d, but no GPU is usable: %s", on_dev->name,
                    on_dev->device, why);
            else
                say(r, "the GPU target was requested, but %s", why);
            fail(r, FUSOR_ERROR_NO_DEVICE);
            return;
        }
        say(r, "%s; running on the CPU", why);
        return;
    }
    r->copy_bytes = copy;
    if (q->target == FUSOR_TARGET_GPU) {
        r->where = FUSOR_TARGET_GPU;
        r->device = device;
        say(r, "the GPU target was requested");
        return;
    }
    if (on_dev) {
        r->where = FUSOR_TARGET_GPU;
        r->device = device;
        say(r, "array '%s' lives on GPU %d", on_dev->name, device);
        return;
    }
    double work = (double)q->elements * q->ops_per_element;
    double cpu = seconds(bytes, q->cpu_bytes_per_s), cw = seconds(work, q->cpu_ops_per_s);
    double gpu = seconds(bytes, q->gpu_bytes_per_s), gw = seconds(work, q->gpu_ops_per_s);
    r->cpu_s = cpu > cw ? cpu : cw;
    r->gpu_s = q->gpu_overhead_s + seconds(copy, q->link_bytes_per_s) + (gpu > gw ? gpu : gw);
    char c[32], g[32];
    times_text(c, sizeof c, r->cpu_s);
    times_text(g, sizeof g, r->gpu_s);
    if (r->gpu_s < r->cpu_s) {
        r->where = FUSOR_TARGET_GPU;
        r->device = device;
        if (copy > 0)
            say(r, "copying %.1f MB to and from GPU %d pays off: ~%s there vs ~%s on the CPU",
                copy / 1e6, device, g, c);
        else
            say(r, "the arrays are in managed memory and GPU %d is faster: ~%s vs ~%s on the CPU",
                device, g, c);
        return;
    }
    r->copy_bytes = 0;
    if (copy > 0)
        say(r,
            "the arrays live on the host and are too small to pay for copying %.1f MB to GPU %d "
            "(~%s there vs ~%s on the CPU)",
            copy / 1e6, device, g, c);
    else
        say(r, "the CPU is faster for this launch (~%s vs ~%s on GPU %d)", c, g, device);
}

double sched_ops_per_element(const ir_kernel *k) {
    double ops = 0;
    for (int i = 0; i < k->nnodes; i++) {
        const ir_node *n = &k->nodes[i];
        if (n->shape != IR_VARYING)
            continue;
        switch ((ir_op)n->op) {
        case IR_CONST:
        case IR_INPUT:
        case IR_COUNT: break;
        case IR_DIV:
        case IR_FLOORDIV:
        case IR_MOD:
        case IR_FMOD:
        case IR_SQRT:
        case IR_RECIPROCAL: ops += 4; break;
        case IR_CBRT:
        case IR_EXP:
        case IR_EXP2:
        case IR_EXPM1:
        case IR_LOG:
        case IR_LOG2:
        case IR_LOG10:
        case IR_LOG1P:
        case IR_SIN:
        case IR_COS:
        case IR_TAN:
        case IR_ASIN:
        case IR_ACOS:
        case IR_ATAN:
        case IR_SINH:
        case IR_COSH:
        case IR_TANH:
        case IR_ASINH:
        case IR_ACOSH:
        case IR_ATANH:
        case IR_POW:
        case IR_ATAN2:
        case IR_HYPOT: ops += 20; break;
        default: ops += 1; break;
        }
    }
    return ops > 0 ? ops : 1;
}
