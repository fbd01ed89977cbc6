/*
 * args.c — argument sets: binding arrays and scalars to a kernel's parameters by name,
 * and reading outputs back after a launch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "array.h"
#include "error.h"
#include "scalar.h"
#include "scheduler.h"

fusor_status fusor_args_create(fusor_kernel *k, fusor_args **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_create: out is NULL");
    *out = NULL;
    if (!k) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_create: NULL kernel");
    fusor_args *a = fu_calloc(1, sizeof *a);
    int n = k->ninputs + k->noutputs;
    if (a) {
        a->items = fu_calloc((size_t)(n ? n : 1), sizeof *a->items);
        a->results = fu_calloc((size_t)(n ? n : 1), sizeof *a->results);
        a->scalar_results = fu_calloc((size_t)(n ? n : 1), sizeof *a->scalar_results);
        a->scalar_dtypes = fu_calloc((size_t)(n ? n : 1), sizeof *a->scalar_dtypes);
    }
    if (!a || !a->items || !a->results || !a->scalar_results || !a->scalar_dtypes) {
        if (a) {
            fu_free(a->items);
            fu_free(a->results);
            fu_free(a->scalar_results);
            fu_free(a->scalar_dtypes);
        }
        fu_free(a);
        return fu_oom("an argument set");
    }
    a->k = k;
    a->n = n;
    a->last_target = "none";
    *out = a;
    return FUSOR_OK;
}

static void item_clear(sched_arg *it) {
    fusor_array_destroy(it->array);
    fu_free(it->literal);
    memset(it, 0, sizeof *it);
}

void sched_args_clear_results(fusor_args *a) {
    for (int i = 0; i < a->n; i++) {
        fusor_array_destroy(a->results[i]);
        a->results[i] = NULL;
    }
    a->have_results = 0;
}

void sched_args_put_scalars(fusor_args *a, const ir_kernel *ir, const ir_value *outs) {
    for (int j = 0; j < ir->noutputs; j++)
        if (!ir->outputs[j].is_array) {
            a->scalar_results[a->k->ninputs + j] = outs[j];
            a->scalar_dtypes[a->k->ninputs + j] = ir->outputs[j].dtype;
        }
}

void fusor_args_destroy(fusor_args *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) item_clear(&a->items[i]);
    sched_args_clear_results(a);
    fu_free(a->items);
    fu_free(a->results);
    fu_free(a->scalar_results);
    fu_free(a->scalar_dtypes);
    fu_free(a->scratch);
    fu_free(a);
}

/* Finds parameter `name`; the message lists the kernel's parameters when it is absent. */
static fusor_status find_param(fusor_args *a, const char *fn, const char *name, int *index) {
    if (!a || !name) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: NULL argument", fn);
    fusor_kernel *k = a->k;
    for (int i = 0; i < a->n; i++) {
        if (!strcmp(k->params[i].name, name)) {
            *index = i;
            return FUSOR_OK;
        }
    }
    char list[512] = "";
    size_t len = 0;
    for (int i = 0; i < a->n && len < sizeof list - 1; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", k->params[i].name);
        if (w > 0) len += (size_t)w;
    }
    return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: kernel %s has no parameter '%s' (it has: %s)",
                    fn, k->name, name, list);
}

fusor_status fusor_args_set_array(fusor_args *a, const char *name, fusor_array *arr) {
    int i;
    fusor_status st = find_param(a, "fusor_args_set_array", name, &i);
    if (st != FUSOR_OK) return st;
    if (!arr)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_set_array: array for '%s' is NULL",
                        name);
    const fusor_param_info *p = &a->k->params[i];
    if (p->is_output && p->is_array == 0)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_set_array: output '%s' is a scalar; read it with "
                        "fusor_args_get_scalar after the launch",
                        name);
    fusor_array_retain(arr);
    item_clear(&a->items[i]);
    a->items[i].kind = ARG_ARRAY;
    a->items[i].array = arr;
    return FUSOR_OK;
}

static fusor_status set_scalar_value(fusor_args *a, const char *fn, const char *name,
                                     fusor_dtype dtype, ir_value v) {
    int i;
    fusor_status st = find_param(a, fn, name, &i);
    if (st != FUSOR_OK) return st;
    const fusor_param_info *p = &a->k->params[i];
    if (p->is_output)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: '%s' is an output of kernel %s", fn,
                        name, a->k->name);
    if (p->is_array == 1)
        return fu_error(FUSOR_ERROR_SHAPE, "%s: parameter '%s' of kernel %s is an array (%s[]); "
                        "bind it with fusor_args_set_array",
                        fn, name, a->k->name, fusor_dtype_name(p->dtype));
    item_clear(&a->items[i]);
    a->items[i].kind = ARG_SCALAR;
    a->items[i].dtype = dtype;
    a->items[i].value = v;
    return FUSOR_OK;
}

fusor_status fusor_args_set_scalar(fusor_args *a, const char *name, fusor_dtype dtype,
                                   const void *value) {
    if ((unsigned)dtype >= FUSOR_NUM_DTYPES || !value)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_set_scalar: %s for '%s'", value ? "bad dtype" : "NULL value",
                        name ? name : "?");
    return set_scalar_value(a, "fusor_args_set_scalar", name, dtype, sc_load(value, dtype));
}

fusor_status fusor_args_set_f64(fusor_args *a, const char *name, double v) {
    return set_scalar_value(a, "fusor_args_set_f64", name, FUSOR_F64, (ir_value){.f = v});
}

fusor_status fusor_args_set_i64(fusor_args *a, const char *name, int64_t v) {
    return set_scalar_value(a, "fusor_args_set_i64", name, FUSOR_I64, (ir_value){.i = v});
}

/* Reads a number as the language would: true/false, an integer, or a float. */
static int parse_number(const char *text, fusor_dtype *dtype, ir_value *v) {
    if (!strcmp(text, "true") || !strcmp(text, "false")) {
        *dtype = FUSOR_BOOL;
        v->i = text[0] == 't';
        return 1;
    }
    char *end;
    errno = 0;
    long long i = strtoll(text, &end, 10);
    if (*text && !*end && errno == 0) {
        *dtype = FUSOR_I64;
        v->i = i;
        return 1;
    }
    errno = 0;
    unsigned long long u = strtoull(text, &end, 10);
    if (*text && *text != '-' && !*end && errno == 0) {
        *dtype = FUSOR_U64;
        v->u = u;
        return 1;
    }
    double f = strtod(text, &end);
    if (*text && !*end) {
        *dtype = FUSOR_F64;
        v->f = f;
        return 1;
    }
    return 0;
}

fusor_status fusor_args_set_literal(fusor_args *a, const char *name, const char *text) {
    int i;
    fusor_status st = find_param(a, "fusor_args_set_literal", name, &i);
    if (st != FUSOR_OK) return st;
    if (!text)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_set_literal: NULL text for '%s'",
                        name);
    fusor_dtype dt;
    ir_value v;
    if (!parse_number(text, &dt, &v))
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_set_literal: '%s' for '%s' is not a number or true/false", text,
                        name);
    const fusor_param_info *p = &a->k->params[i];
    if (p->dtype != FUSOR_NUM_DTYPES) {
        /* A declared scalar: the literal must be representable in it. */
        ir_value cv = sc_cast(v, dt, p->dtype);
        if (!sc_fits(v, dt, p->dtype) &&
            !(dt == FUSOR_F64 && (p->dtype == FUSOR_F32 || p->dtype == FUSOR_F16)))
            return fu_error(FUSOR_ERROR_VALUE, "argument '%s' = %s does not fit in %s", name, text,
                            fusor_dtype_name(p->dtype));
        return set_scalar_value(a, "fusor_args_set_literal", name, p->dtype, cv);
    }
    if (p->is_output)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_set_literal: '%s' is an output of kernel %s", name, a->k->name);
    char *copy = fu_strdup(text);
    if (!copy) return fu_oom("a literal argument");
    item_clear(&a->items[i]);
    a->items[i].kind = ARG_LITERAL;
    a->items[i].literal = copy;
    return FUSOR_OK;
}

static fusor_status find_output(fusor_args *a, const char *fn, const char *name, int *index) {
    fusor_status st = find_param(a, fn, name, index);
    if (st != FUSOR_OK) return st;
    if (!a->k->params[*index].is_output)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: '%s' is an input of kernel %s", fn,
                        name, a->k->name);
    if (!a->have_results)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s: no launch has completed with these "
                        "arguments yet",
                        fn);
    return FUSOR_OK;
}

fusor_status fusor_args_get_array(fusor_args *a, const char *name, fusor_array **out) {
    if (!out) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_args_get_array: out is NULL");
    *out = NULL;
    int i;
    fusor_status st = find_output(a, "fusor_args_get_array", name, &i);
    if (st != FUSOR_OK) return st;
    if (!a->results[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_get_array: output '%s' is a scalar; use fusor_args_get_scalar",
                        name);
    fusor_array_retain(a->results[i]);
    *out = a->results[i];
    return FUSOR_OK;
}

fusor_status fusor_args_get_scalar(fusor_args *a, const char *name, fusor_dtype *dtype,
                                   void *value) {
    int i;
    fusor_status st = find_output(a, "fusor_args_get_scalar", name, &i);
    if (st != FUSOR_OK) return st;
    if (a->results[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_get_scalar: output '%s' is an array; use fusor_args_get_array",
                        name);
    if (dtype) *dtype = a->scalar_dtypes[i];
    if (value) sc_store(value, a->scalar_dtypes[i], a->scalar_results[i]);
    return FUSOR_OK;
}

fusor_status fusor_args_get_f64(fusor_args *a, const char *name, double *v) {
    int i;
    fusor_status st = find_output(a, "fusor_args_get_f64", name, &i);
    if (st != FUSOR_OK) return st;
    if (a->results[i])
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_args_get_f64: output '%s' is an array", name);
    if (v) *v = sc_cast(a->scalar_results[i], a->scalar_dtypes[i], FUSOR_F64).f;
    return FUSOR_OK;
}

const char *fusor_args_last_target(const fusor_args *a) { return a ? a->last_target : NULL; }
int fusor_args_last_threads(const fusor_args *a) { return a ? a->last_threads : 0; }
