/*
 * frontend.h — from text to IR: lexer, parser (AST) and checker.
 *
 * A source is parsed once into a program (its kernels' ASTs).  Checking a kernel gives
 * its typed IR; a kernel whose parameter types are left out ("generic") is checked once
 * per combination of argument dtypes, with the caller saying what each parameter is.
 * Errors are FUSOR_ERROR_LANGUAGE with a message "file:line:col: error: ...", the source
 * line and a caret, and a suggestion for a misspelt name.
 */
#ifndef FUSOR_FRONTEND_H
#define FUSOR_FRONTEND_H

#include "arena.h"
#include "ir.h"

typedef struct fe_program fe_program;

/* Limits, enforced before any work (documented in docs/language.md). */
#define FE_MAX_SOURCE_BYTES (1u << 24) /* 16 MiB */
#define FE_MAX_DEPTH 256               /* nesting of expressions */
/* Operations (IR nodes, after common subexpressions are shared and dead code dropped) of
 * one kernel.  LLVM's optimiser is superlinear in the size of the loop body: 60000 nodes
 * took minutes, which a 1 MB source could ask for. */
#define FE_MAX_NODES 8192

/* Parses `source`; everything is allocated in `a`. */
fusor_status fe_parse(arena *a, const char *source, const char *filename, fe_program **out);
/* Parses a one-expression ufunc: a program with one kernel named "ufunc" whose generic
 * parameters are the expression's free names (in order of first appearance, excluding
 * the language's functions and constants) and whose one generic output is "out". */
fusor_status fe_parse_expr(arena *a, const char *expression, fe_program **out);

int fe_num_kernels(const fe_program *p);
const char *fe_kernel_name(const fe_program *p, int i);
/* Index of the kernel called `name` (NULL: the only kernel).  Errors name the kernels
 * there are. */
fusor_status fe_find_kernel(const fe_program *p, const char *name, int *index);

/* The declared interface of kernel i: inputs first, then outputs.  dtype is
 * FUSOR_NUM_DTYPES and is_array -1 where the source leaves them out. */
int fe_num_params(const fe_program *p, int i);
fusor_param_info fe_param(const fe_program *p, int i, int param);
int fe_is_generic(const fe_program *p, int i);

/* What a generic input is bound to at one launch. */
typedef struct fe_binding {
    fusor_dtype dtype;   /* an array's or a typed scalar's dtype */
    int is_array;        /* 1 array, 0 typed scalar */
    const char *literal; /* non-NULL: a weakly typed literal, as if written in the source */
} fe_binding;

/* Type-checks kernel i and builds its IR in `a`.  `bindings` has one entry per input
 * parameter and is required when the kernel is generic (it is ignored for declared
 * parameters).  Outputs without a declared type take their expression's dtype. */
fusor_status fe_check(arena *a, const fe_program *p, int i, const fe_binding *bindings,
                      ir_kernel **out);

#endif
