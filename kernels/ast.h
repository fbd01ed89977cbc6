/*
 * ast.h — the front end's parsed form of a source: positions, expressions, statements,
 * kernels and the program.  Shared by lexer.c, parser.c and check.c only.
 *
 * Everything lives in the arena given to fe_parse; the program keeps its own copy of the
 * source text so that later checks (generic kernels are checked once per launch
 * signature) can still quote it in error messages.
 */
#ifndef FUSOR_AST_H
#define FUSOR_AST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "frontend.h"
#include "ir.h"

/* A place in the source: byte offset, 1-based line and column (in characters). */
typedef struct fe_pos {
    int32_t offset, line, col;
} fe_pos;

typedef struct fe_source {
    const char *text; /* NUL-terminated copy */
    size_t len;
    const char *filename;
} fe_source;

/* Formats a language error "file:line:col: error: <message>", the source line and a caret
 * under the column, and returns FUSOR_ERROR_LANGUAGE. */
fusor_status fe_error_at(const fe_source *src, fe_pos pos, const char *fmt, ...) FU_PRINTF(3, 4);

typedef enum fe_expr_kind {
    FE_E_INT,    /* value.i */
    FE_E_FLOAT,  /* value.f */
    FE_E_BOOL,   /* value.i is 0 or 1 */
    FE_E_NAME,   /* name */
    FE_E_UNARY,  /* op args[0] */
    FE_E_BINARY, /* args[0] op args[1] */
    FE_E_CALL,   /* name(args...) */
    FE_E_INDEX,  /* name[off, ...]: a stencil load; args are FE_E_INT offsets (value.i) */
    FE_E_KEYWORD, /* name=args[0]: a keyword argument of a call (axis=1, keepdims=true) */
    FE_E_TUPLE    /* (args, ...): a tuple, only as a keyword argument's value (axis=(0, 2)) */
} fe_expr_kind;

typedef struct fe_expr {
    uint8_t kind;  /* fe_expr_kind */
    uint8_t op;    /* unary and binary: the operator's fe_tok */
    int16_t depth; /* 1 for leaves; bounded by FE_MAX_DEPTH */
    int32_t nargs;
    fe_pos pos;   /* the operator, the name or the literal */
    fe_pos start; /* the first character of the whole expression */
    const char *name;
    struct fe_expr **args;
    ir_value value;
} fe_expr;

typedef struct fe_stmt {
    int is_let;
    const char *name;
    fe_pos pos; /* of the name */
    fe_expr *value;
} fe_stmt;

/* A parameter or output as declared: dtype FUSOR_NUM_DTYPES and is_array -1 when the
 * type is left out (generic). */
typedef struct fe_decl {
    const char *name;
    fe_pos pos;
    fusor_dtype dtype;
    int is_array;
    int ndims;         /* declared dimensions of `f64[n, m]`, 0 for `f64[]` */
    const char **dims; /* [ndims] their names */
    int boundary;      /* ir_boundary written after the type, IR_BOUND_NONE if none */
    fe_pos boundary_pos;
} fe_decl;

typedef struct fe_kernel {
    const char *name;
    fe_pos pos;
    int nin, nout, nstmts;
    fe_decl *in, *out;
    fe_stmt *stmts;
} fe_kernel;

struct fe_program {
    fe_source src;
    int nkernels;
    fe_kernel *kernels;
};

/* Parses one expression that must fill `src` (used for bound literals); *out is set on
 * success. */
fusor_status fe_parse_standalone_expr(arena *a, const fe_source *src, fe_expr **out);

/* What a name the language reserves is ("a keyword" or "a type"), or NULL.  Function
 * names and the constants pi, e, inf and nan are not reserved: a parameter or binding
 * may shadow a constant, and a call still reaches the function. */
const char *fe_reserved_what(const char *name);
int fe_is_constant_name(const char *name);
int fe_is_function_name(const char *name);
/* The nearest of `n` candidates to `name` by edit distance, or NULL if none is close. */
const char *fe_nearest(const char *name, const char *const *candidates, int n);

/* A string-keyed hash map in an arena (names to indices). */
typedef struct fe_map {
    arena *a;
    uint32_t cap, n;
    const char **keys;
    int32_t *vals;
} fe_map;
/* The value stored for key, or -1. */
int32_t fe_map_get(const fe_map *m, const char *key);
/* Stores key (not copied); returns -1 when out of memory. */
int fe_map_put(fe_map *m, const char *key, int32_t val);

#endif
