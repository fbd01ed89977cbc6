/*
 * parser.c — recursive descent from tokens to the AST (grammar in docs/language.md).
 *
 * Recursion is bounded: every nesting (parentheses, call arguments, unary operators,
 * exponents) counts against FE_MAX_DEPTH, and so does the depth of the tree built by
 * chains of binary operators, so the checker's recursion over the tree is bounded too.
 */
#include <stdio.h>
#include <string.h>

#include "ast.h"
#include "error.h"
#include "lexer.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        fusor_status try_st_ = (expr);                                                             \
        if (try_st_ != FUSOR_OK)                                                                   \
            return try_st_;                                                                        \
    } while (0)

typedef struct parser {
    arena *a;
    const fe_source *src;
    fe_lexer lx;
    fe_token tok; /* the current token */
    int nesting;  /* expression recursion depth */
} parser;

static fusor_status next(parser *p) { return fe_lex_next(&p->lx, &p->tok); }

static int is_name(const parser *p, const char *text) {
    size_t n = strlen(text);
    return p->tok.kind == FE_T_NAME && (size_t)p->tok.len == n && !memcmp(p->tok.text, text, n);
}

/* "name 'x'", "number 2.5", "'+'", "end of line": what the current token is. */
static const char *found(const parser *p, char *buf, size_t n) {
    const fe_token *t = &p->tok;
    int len = t->len > 40 ? 40 : t->len;
    if (t->kind == FE_T_NAME)
        snprintf(buf, n, "'%.*s'", len, t->text);
    else if (t->kind == FE_T_INT || t->kind == FE_T_FLOAT)
        snprintf(buf, n, "number %.*s", len, t->text);
    else
        snprintf(buf, n, "%s", fe_tok_text(t->kind));
    return buf;
}

static fusor_status expected(parser *p, const char *what) {
    char buf[64];
    return fe_error_at(p->src, p->tok.pos, "expected %s, found %s", what,
                       found(p, buf, sizeof buf));
}

static fusor_status expect(parser *p, fe_tok kind, const char *what) {
    if (p->tok.kind != kind)
        return expected(p, what);
    return next(p);
}

static fusor_status skip_newlines(parser *p) {
    while (p->tok.kind == FE_T_NEWLINE)
        TRY(next(p));
    return FUSOR_OK;
}

static fusor_status take_name(parser *p, const char **name) {
    *name = arena_strndup(p->a, p->tok.text, (size_t)p->tok.len);
    if (!*name)
        return fu_oom("a name");
    return next(p);
}

/* ------------------------------------------------------------------ name map */

static uint32_t hash_name(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int32_t fe_map_get(const fe_map *m, const char *key) {
    if (!m->cap)
        return -1;
    for (uint32_t h = hash_name(key) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (!m->keys[h])
            return -1;
        if (!strcmp(m->keys[h], key))
            return m->vals[h];
    }
}

int fe_map_put(fe_map *m, const char *key, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 16;
        const char **keys = arena_alloc(m->a, sizeof *keys * cap);
        int32_t *vals = arena_alloc(m->a, sizeof *vals * cap);
        if (!keys || !vals)
            return -1;
        for (uint32_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            uint32_t h = hash_name(m->keys[i]) & (cap - 1);
            while (keys[h])
                h = (h + 1) & (cap - 1);
            keys[h] = m->keys[i];
            vals[h] = m->vals[i];
        }
        m->keys = keys, m->vals = vals, m->cap = cap;
    }
    uint32_t h = hash_name(key) & (m->cap - 1);
    while (m->keys[h] && strcmp(m->keys[h], key))
        h = (h + 1) & (m->cap - 1);
    if (!m->keys[h])
        m->n++;
    m->keys[h] = key;
    m->vals[h] = val;
    return 0;
}

/* ------------------------------------------------------------------ expressions */

static fusor_status parse_expr(parser *p, fe_expr **out);

static fusor_status enter(parser *p, fe_pos pos) {
    if (++p->nesting > FE_MAX_DEPTH)
        return fe_error_at(p->src, pos,
                           "expression nested too deeply (the limit is %d levels): split it "
                           "with 'let'",
                           FE_MAX_DEPTH);
    return FUSOR_OK;
}

static fusor_status new_expr(parser *p, fe_expr_kind kind, fe_pos pos, fe_pos start, int nargs,
                             fe_expr **out) {
    fe_expr *e = arena_alloc(p->a, sizeof *e);
    if (!e || (nargs && !(e->args = arena_alloc(p->a, sizeof(fe_expr *) * (size_t)nargs))))
        return fu_oom("the syntax tree");
    e->kind = (uint8_t)kind;
    e->pos = pos;
    e->start = start;
    e->nargs = nargs;
    e->depth = 1;
    *out = e;
    return FUSOR_OK;
}

/* Sets e's depth from its operands; the tree may not be deeper than FE_MAX_DEPTH. */
static fusor_status set_depth(parser *p, fe_expr *e) {
    int d = 0;
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i]->depth > d)
            d = e->args[i]->depth;
    if (d + 1 > FE_MAX_DEPTH)
        return fe_error_at(p->src, e->pos,
                           "expression nested too deeply (the limit is %d levels): split it "
                           "with 'let'",
                           FE_MAX_DEPTH);
    e->depth = (int16_t)(d + 1);
    return FUSOR_OK;
}

static fusor_status make_op(parser *p, fe_expr_kind kind, fe_tok op, fe_pos pos, fe_pos start,
                            fe_expr *l, fe_expr *r, fe_expr **out) {
    TRY(new_expr(p, kind, pos, start, r ? 2 : 1, out));
    (*out)->op = (uint8_t)op;
    (*out)->args[0] = l;
    if (r)
        (*out)->args[1] = r;
    return set_depth(p, *out);
}

/* name "=" value after a call's argument `name`, where value is an expression or a tuple
 * "(" expr "," [ expr { "," expr } ] ")" (axis=(0, 2)); "(e)" is e itself. */
static fusor_status parse_keyword(parser *p, fe_expr *name, fe_expr **out) {
    TRY(next(p));
    fe_expr *value;
    if (p->tok.kind == FE_T_LPAREN) {
        fe_pos lparen = p->tok.pos;
        TRY(enter(p, lparen));
        TRY(next(p));
        fe_expr **items = NULL;
        int n = 0, cap = 0, comma = 0;
        while (p->tok.kind != FE_T_RPAREN) {
            if (p->tok.kind == FE_T_EOF)
                return fe_error_at(p->src, lparen, "'(' was never closed");
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                items = arena_grow(p->a, items, sizeof *items, (size_t)n, (size_t)cap);
                if (!items)
                    return fu_oom("the syntax tree");
            }
            TRY(parse_expr(p, &items[n++]));
            if (p->tok.kind == FE_T_COMMA) {
                comma = 1;
                TRY(next(p));
            } else if (p->tok.kind != FE_T_RPAREN) {
                return expected(p, "',' or ')' in the tuple");
            }
        }
        TRY(next(p));
        p->nesting--;
        if (n == 1 && !comma) {
            value = items[0];
        } else {
            TRY(new_expr(p, FE_E_TUPLE, lparen, lparen, 0, &value));
            value->args = items;
            value->nargs = n;
            TRY(set_depth(p, value));
        }
    } else {
        TRY(parse_expr(p, &value));
    }
    TRY(new_expr(p, FE_E_KEYWORD, name->pos, name->start, 1, out));
    (*out)->name = name->name;
    (*out)->args[0] = value;
    return set_depth(p, *out);
}

static fusor_status parse_call(parser *p, fe_pos name_pos, const char *name, fe_expr **out) {
    fe_pos lparen = p->tok.pos;
    TRY(next(p));
    fe_expr **args = NULL;
    int n = 0, cap = 0;
    while (p->tok.kind != FE_T_RPAREN) {
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, lparen, "'(' was never closed");
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            args = arena_grow(p->a, args, sizeof *args, (size_t)n, (size_t)cap);
            if (!args)
                return fu_oom("the syntax tree");
        }
        TRY(parse_expr(p, &args[n]));
        if (p->tok.kind == FE_T_ASSIGN && args[n]->kind == FE_E_NAME) {
            TRY(parse_keyword(p, args[n], &args[n]));
        } else if (n > 0 && args[n - 1]->kind == FE_E_KEYWORD) {
            return fe_error_at(p->src, args[n]->start,
                               "a positional argument cannot follow a keyword argument");
        }
        n++;
        if (p->tok.kind == FE_T_COMMA) {
            TRY(next(p));
        } else if (p->tok.kind != FE_T_RPAREN) {
            if (p->tok.kind == FE_T_EOF)
                return fe_error_at(p->src, lparen, "'(' was never closed");
            return expected(p, "',' or ')' in the argument list");
        }
    }
    TRY(next(p));
    TRY(new_expr(p, FE_E_CALL, name_pos, name_pos, 0, out));
    (*out)->name = name;
    (*out)->args = args;
    (*out)->nargs = n;
    return set_depth(p, *out);
}

/* name "[" offset { "," offset } "]" with offset = [ "+" | "-" ] integer: relative
 * indexing of an array parameter (a stencil). */
static fusor_status parse_index(parser *p, fe_pos name_pos, const char *name, fe_expr **out) {
    fe_pos lbracket = p->tok.pos;
    TRY(next(p));
    fe_expr **args = NULL;
    int n = 0, cap = 0;
    for (;;) {
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, lbracket, "'[' was never closed");
        fe_pos pos = p->tok.pos;
        int sign = 1;
        if (p->tok.kind == FE_T_PLUS || p->tok.kind == FE_T_MINUS) {
            sign = p->tok.kind == FE_T_MINUS ? -1 : 1;
            TRY(next(p));
        }
        if (p->tok.kind != FE_T_INT)
            return expected(p, "an integer offset such as -1, 0 or +1 (stencil indexing is "
                               "relative to the current element)");
        if (p->tok.value.u > 127)
            return fe_error_at(p->src, pos, "a stencil offset must be between -127 and 127");
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            args = arena_grow(p->a, args, sizeof *args, (size_t)n, (size_t)cap);
            if (!args)
                return fu_oom("the syntax tree");
        }
        TRY(new_expr(p, FE_E_INT, pos, pos, 0, &args[n]));
        args[n]->value.i = sign * p->tok.value.i;
        n++;
        TRY(next(p));
        if (p->tok.kind == FE_T_COMMA) {
            TRY(next(p));
            continue;
        }
        if (p->tok.kind == FE_T_RBRACKET)
            break;
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, lbracket, "'[' was never closed");
        return expected(p, "',' or ']' in the offsets");
    }
    TRY(next(p));
    TRY(new_expr(p, FE_E_INDEX, name_pos, name_pos, 0, out));
    (*out)->name = name;
    (*out)->args = args;
    (*out)->nargs = n;
    return set_depth(p, *out);
}

static fusor_status parse_primary(parser *p, fe_expr **out) {
    fe_token t = p->tok;
    if (t.kind == FE_T_INT || t.kind == FE_T_FLOAT) {
        TRY(new_expr(p, t.kind == FE_T_INT ? FE_E_INT : FE_E_FLOAT, t.pos, t.pos, 0, out));
        (*out)->value = t.value;
        return next(p);
    }
    if (t.kind == FE_T_NAME) {
        if (is_name(p, "true") || is_name(p, "false")) {
            TRY(new_expr(p, FE_E_BOOL, t.pos, t.pos, 0, out));
            (*out)->value.i = is_name(p, "true");
            return next(p);
        }
        if (is_name(p, "let") || is_name(p, "kernel"))
            return expected(p, "an expression");
        const char *name;
        TRY(take_name(p, &name));
        if (p->tok.kind == FE_T_LPAREN) {
            TRY(enter(p, p->tok.pos));
            TRY(parse_call(p, t.pos, name, out));
            p->nesting--;
            return FUSOR_OK;
        }
        if (p->tok.kind == FE_T_LBRACKET)
            return parse_index(p, t.pos, name, out);
        TRY(new_expr(p, FE_E_NAME, t.pos, t.pos, 0, out));
        (*out)->name = name;
        return FUSOR_OK;
    }
    if (t.kind == FE_T_LPAREN) {
        TRY(enter(p, t.pos));
        TRY(next(p));
        TRY(parse_expr(p, out));
        p->nesting--;
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, t.pos, "'(' was never closed");
        if (p->tok.kind != FE_T_RPAREN)
            return expected(p, "')' or an operator");
        return next(p);
    }
    return expected(p, "an expression");
}

static fusor_status parse_unary(parser *p, fe_expr **out);

/* power = primary [ "**" unary ]: right-associative, and binds tighter than a unary
 * minus on its left (-a**2 is -(a**2)) but not on its right (2**-1). */
static fusor_status parse_power(parser *p, fe_expr **out) {
    fe_expr *base;
    TRY(parse_primary(p, &base));
    if (p->tok.kind != FE_T_DSTAR) {
        *out = base;
        return FUSOR_OK;
    }
    fe_pos op = p->tok.pos;
    TRY(enter(p, op));
    TRY(next(p));
    fe_expr *exponent;
    TRY(parse_unary(p, &exponent));
    p->nesting--;
    return make_op(p, FE_E_BINARY, FE_T_DSTAR, op, base->start, base, exponent, out);
}

static fusor_status parse_unary(parser *p, fe_expr **out) {
    fe_tok k = p->tok.kind;
    if (k != FE_T_MINUS && k != FE_T_PLUS && k != FE_T_TILDE)
        return parse_power(p, out);
    fe_pos op = p->tok.pos;
    TRY(enter(p, op));
    TRY(next(p));
    fe_expr *operand;
    TRY(parse_unary(p, &operand));
    p->nesting--;
    return make_op(p, FE_E_UNARY, k, op, op, operand, NULL, out);
}

/* Left-associative binary levels, loosest first (comparisons are handled above them). */
static const fe_tok levels[][5] = {
    {FE_T_PIPE},
    {FE_T_CARET},
    {FE_T_AMP},
    {FE_T_SHL, FE_T_SHR},
    {FE_T_PLUS, FE_T_MINUS},
    {FE_T_STAR, FE_T_SLASH, FE_T_DSLASH, FE_T_PERCENT},
};
#define NUM_LEVELS (int)(sizeof levels / sizeof levels[0])

static int at_level(const parser *p, int level) {
    for (int i = 0; i < 5 && levels[level][i]; i++)
        if (p->tok.kind == levels[level][i])
            return 1;
    return 0;
}

static fusor_status parse_binary(parser *p, int level, fe_expr **out) {
    if (level == NUM_LEVELS)
        return parse_unary(p, out);
    fe_expr *lhs;
    TRY(parse_binary(p, level + 1, &lhs));
    while (at_level(p, level)) {
        fe_tok op = p->tok.kind;
        fe_pos pos = p->tok.pos;
        TRY(next(p));
        fe_expr *rhs;
        TRY(parse_binary(p, level + 1, &rhs));
        TRY(make_op(p, FE_E_BINARY, op, pos, lhs->start, lhs, rhs, &lhs));
    }
    *out = lhs;
    return FUSOR_OK;
}

static int is_comparison(fe_tok k) { return k >= FE_T_LT && k <= FE_T_NE; }

static fusor_status parse_expr(parser *p, fe_expr **out) {
    fe_expr *lhs;
    TRY(parse_binary(p, 0, &lhs));
    if (!is_comparison(p->tok.kind)) {
        *out = lhs;
        return FUSOR_OK;
    }
    fe_tok op = p->tok.kind;
    fe_pos pos = p->tok.pos;
    TRY(next(p));
    fe_expr *rhs;
    TRY(parse_binary(p, 0, &rhs));
    if (is_comparison(p->tok.kind))
        return fe_error_at(p->src, p->tok.pos,
                           "comparisons do not chain: write (a %s b) & (b %s c)",
                           fe_tok_spelling(op), fe_tok_spelling(p->tok.kind));
    return make_op(p, FE_E_BINARY, op, pos, lhs->start, lhs, rhs, out);
}

/* ------------------------------------------------------------------ kernels */

static const char *const type_names[FUSOR_NUM_DTYPES] = {"bool", "i8",  "i16", "i32", "i64", "u8",
                                                         "u16",  "u32", "u64", "f32", "f64", "f16"};

static fusor_status parse_type(parser *p, fe_decl *d) {
    if (p->tok.kind != FE_T_NAME)
        return expected(p, "a type (bool, i8..i64, u8..u64, f16, f32, f64)");
    char name[48];
    snprintf(name, sizeof name, "%.*s", p->tok.len > 40 ? 40 : p->tok.len, p->tok.text);
    int dt = -1;
    for (int i = 0; i < FUSOR_NUM_DTYPES; i++)
        if (!strcmp(name, type_names[i]))
            dt = i;
    if (dt < 0) {
        fusor_dtype alias;
        const char *near = fe_nearest(name, type_names, FUSOR_NUM_DTYPES);
        if (fusor_dtype_from_name(name, &alias) == FUSOR_OK)
            near = type_names[alias];
        if (near)
            return fe_error_at(p->src, p->tok.pos, "unknown type '%s' (did you mean '%s'?)", name,
                               near);
        return fe_error_at(p->src, p->tok.pos,
                           "unknown type '%s' (the types are bool, i8, i16, i32, i64, u8, "
                           "u16, u32, u64, f16, f32 and f64)",
                           name);
    }
    d->dtype = (fusor_dtype)dt;
    d->is_array = 0;
    TRY(next(p));
    if (p->tok.kind == FE_T_LBRACKET) {
        TRY(next(p));
        /* Optional dimension names: f64[n, m] declares a rank-2 array (for stencils). */
        int cap = 0;
        while (p->tok.kind == FE_T_NAME) {
            if (d->ndims == FUSOR_MAX_DIMS)
                return fe_error_at(p->src, p->tok.pos, "an array has at most %d dimensions",
                                   FUSOR_MAX_DIMS);
            if (d->ndims == cap) {
                cap = cap ? cap * 2 : 4;
                d->dims = arena_grow(p->a, d->dims, sizeof *d->dims, (size_t)d->ndims,
                                     (size_t)cap);
                if (!d->dims)
                    return fu_oom("the kernel's parameters");
            }
            TRY(take_name(p, &d->dims[d->ndims]));
            d->ndims++;
            if (p->tok.kind != FE_T_COMMA)
                break;
            TRY(next(p));
        }
        if (p->tok.kind != FE_T_RBRACKET)
            return expected(p, "']' (an array type is written like f64[], whatever its rank, "
                               "or for stencils with named dimensions, f64[n, m])");
        TRY(next(p));
        d->is_array = 1;
    }
    /* Boundary handling of a stencil parameter: f64[n, m] clamp. */
    static const char *const bounds[] = {"clamp", "wrap", "zero", "mirror", "interior"};
    for (int b = 0; b < 5 && p->tok.kind == FE_T_NAME; b++)
        if (is_name(p, bounds[b])) {
            d->boundary = IR_BOUND_CLAMP + b;
            d->boundary_pos = p->tok.pos;
            if (!d->ndims)
                return fe_error_at(p->src, p->tok.pos,
                                   "boundary '%s' needs an array with declared dimensions, "
                                   "e.g. f64[n, m] %s",
                                   bounds[b], bounds[b]);
            TRY(next(p));
            break;
        }
    return FUSOR_OK;
}

/* A name that a declaration or a binding introduces. */
static fusor_status new_name(parser *p, const char *what, const char **name, fe_pos *pos) {
    if (p->tok.kind != FE_T_NAME)
        return expected(p, what);
    *pos = p->tok.pos;
    TRY(take_name(p, name));
    const char *reserved = fe_reserved_what(*name);
    if (reserved)
        return fe_error_at(p->src, *pos, "'%s' is %s and cannot be used as a name", *name,
                           reserved);
    return FUSOR_OK;
}

static fusor_status parse_decls(parser *p, fe_decl **decls, int *n, const char *what) {
    fe_pos lparen = p->tok.pos;
    TRY(expect(p, FE_T_LPAREN, "'('"));
    int cap = 0;
    while (p->tok.kind != FE_T_RPAREN) {
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, lparen, "'(' was never closed");
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *decls = arena_grow(p->a, *decls, sizeof **decls, (size_t)*n, (size_t)cap);
            if (!*decls)
                return fu_oom("the kernel's parameters");
        }
        fe_decl *d = &(*decls)[(*n)++];
        *d = (fe_decl){.dtype = FUSOR_NUM_DTYPES, .is_array = -1};
        TRY(new_name(p, what, &d->name, &d->pos));
        if (p->tok.kind == FE_T_COLON) {
            TRY(next(p));
            TRY(parse_type(p, d));
        }
        if (p->tok.kind == FE_T_COMMA)
            TRY(next(p));
        else if (p->tok.kind != FE_T_RPAREN && p->tok.kind != FE_T_EOF)
            return expected(p, "',' or ')' after the parameter");
    }
    return next(p);
}

static fusor_status check_unique_decls(parser *p, const fe_kernel *k) {
    fe_map names = {.a = p->a};
    for (int i = 0; i < k->nin + k->nout; i++) {
        const fe_decl *d = i < k->nin ? &k->in[i] : &k->out[i - k->nin];
        int32_t prev = fe_map_get(&names, d->name);
        if (prev >= 0) {
            const fe_decl *f = prev < k->nin ? &k->in[prev] : &k->out[prev - k->nin];
            return fe_error_at(p->src, d->pos,
                               "'%s' is declared twice (first at line %d, column %d)", d->name,
                               (int)f->pos.line, (int)f->pos.col);
        }
        if (fe_map_put(&names, d->name, i) < 0)
            return fu_oom("the kernel's parameters");
    }
    return FUSOR_OK;
}

static fusor_status parse_stmt(parser *p, fe_stmt *s) {
    if (p->tok.kind != FE_T_NAME)
        return expected(p, "a statement ('let name = ...' or 'output = ...')");
    if (is_name(p, "let")) {
        s->is_let = 1;
        TRY(next(p));
        TRY(new_name(p, "a name after 'let'", &s->name, &s->pos));
    } else {
        s->pos = p->tok.pos;
        TRY(take_name(p, &s->name));
    }
    if (p->tok.kind != FE_T_ASSIGN) {
        char what[96];
        snprintf(what, sizeof what, "'=' after '%.40s'", s->name);
        return expected(p, what);
    }
    TRY(next(p));
    return parse_expr(p, &s->value);
}

static fusor_status parse_body(parser *p, fe_kernel *k) {
    fe_pos lbrace = p->tok.pos;
    TRY(expect(p, FE_T_LBRACE, "'{' to begin the kernel's body"));
    int cap = 0;
    for (;;) {
        while (p->tok.kind == FE_T_NEWLINE || p->tok.kind == FE_T_SEMI)
            TRY(next(p));
        if (p->tok.kind == FE_T_RBRACE)
            break;
        if (p->tok.kind == FE_T_EOF)
            return fe_error_at(p->src, lbrace, "'{' was never closed");
        if (is_name(p, "kernel"))
            return fe_error_at(p->src, p->tok.pos,
                               "expected '}' to close the body of kernel '%s' (opened at line "
                               "%d, column %d) before the next kernel",
                               k->name, (int)lbrace.line, (int)lbrace.col);
        if (k->nstmts == cap) {
            cap = cap ? cap * 2 : 8;
            k->stmts = arena_grow(p->a, k->stmts, sizeof *k->stmts, (size_t)k->nstmts, (size_t)cap);
            if (!k->stmts)
                return fu_oom("the kernel's statements");
        }
        fe_stmt *s = &k->stmts[k->nstmts++];
        *s = (fe_stmt){0};
        TRY(parse_stmt(p, s));
        fe_tok t = p->tok.kind;
        if (t != FE_T_NEWLINE && t != FE_T_SEMI && t != FE_T_RBRACE) {
            if (t == FE_T_EOF)
                return fe_error_at(p->src, lbrace, "'{' was never closed");
            return expected(p, "an operator or the end of the statement (a new line or ';')");
        }
    }
    return next(p);
}

static fusor_status parse_kernel(parser *p, fe_kernel *k) {
    if (!is_name(p, "kernel"))
        return expected(p, "'kernel'");
    TRY(next(p));
    TRY(new_name(p, "the kernel's name", &k->name, &k->pos));
    TRY(parse_decls(p, &k->in, &k->nin, "a parameter name"));
    TRY(skip_newlines(p));
    if (p->tok.kind != FE_T_ARROW)
        return expected(p, "'->' and the kernel's outputs");
    TRY(next(p));
    TRY(skip_newlines(p));
    if (p->tok.kind == FE_T_LPAREN) {
        TRY(parse_decls(p, &k->out, &k->nout, "an output name"));
    } else {
        k->out = arena_alloc(p->a, sizeof *k->out);
        if (!k->out)
            return fu_oom("the kernel's outputs");
        *k->out = (fe_decl){.dtype = FUSOR_NUM_DTYPES, .is_array = -1};
        TRY(new_name(p, "an output name or '('", &k->out->name, &k->out->pos));
        k->nout = 1;
        if (p->tok.kind == FE_T_COLON) {
            TRY(next(p));
            TRY(parse_type(p, k->out));
        }
    }
    if (k->nout == 0)
        return fe_error_at(p->src, k->pos, "kernel '%s' has no outputs", k->name);
    TRY(check_unique_decls(p, k));
    TRY(skip_newlines(p));
    return parse_body(p, k);
}

static fusor_status parse_program(parser *p, fe_program *prog) {
    fe_map names = {.a = p->a};
    int cap = 0;
    TRY(next(p));
    for (;;) {
        while (p->tok.kind == FE_T_NEWLINE || p->tok.kind == FE_T_SEMI)
            TRY(next(p));
        if (p->tok.kind == FE_T_EOF)
            break;
        if (prog->nkernels == cap) {
            cap = cap ? cap * 2 : 4;
            prog->kernels = arena_grow(p->a, prog->kernels, sizeof(fe_kernel),
                                       (size_t)prog->nkernels, (size_t)cap);
            if (!prog->kernels)
                return fu_oom("the program");
        }
        fe_kernel *k = &prog->kernels[prog->nkernels];
        *k = (fe_kernel){0};
        TRY(parse_kernel(p, k));
        int32_t prev = fe_map_get(&names, k->name);
        if (prev >= 0)
            return fe_error_at(
                p->src, k->pos, "kernel '%s' is defined twice (first at line %d, column %d)",
                k->name, (int)prog->kernels[prev].pos.line, (int)prog->kernels[prev].pos.col);
        if (fe_map_put(&names, k->name, prog->nkernels++) < 0)
            return fu_oom("the program");
    }
    if (prog->nkernels == 0)
        return fe_error_at(&prog->src, (fe_pos){0, 1, 1},
                           "the source holds no kernel (expected 'kernel name(inputs) -> "
                           "(outputs) { ... }')");
    return FUSOR_OK;
}

/* Copies the source into the arena after checking its size (before any other work). */
static fusor_status new_program(arena *a, const char *source, const char *filename,
                                fe_program **out) {
    size_t len = strnlen(source, (size_t)FE_MAX_SOURCE_BYTES + 1);
    if (len > FE_MAX_SOURCE_BYTES)
        return fu_error(FUSOR_ERROR_LANGUAGE,
                        "%s:1:1: error: the source is larger than the limit of %u bytes (16 MiB)",
                        filename, FE_MAX_SOURCE_BYTES);
    fe_program *prog = arena_alloc(a, sizeof *prog);
    if (!prog)
        return fu_oom("the program");
    prog->src.text = arena_strndup(a, source, len);
    prog->src.filename = arena_strdup(a, filename);
    if (!prog->src.text || !prog->src.filename)
        return fu_oom("the program's source");
    prog->src.len = len;
    *out = prog;
    return FUSOR_OK;
}

fusor_status fe_parse(arena *a, const char *source, const char *filename, fe_program **out) {
    if (!a || !source || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fe_parse: NULL argument");
    fe_program *prog = NULL;
    TRY(new_program(a, source, filename ? filename : "<source>", &prog));
    parser p = {.a = a, .src = &prog->src};
    TRY(fe_lex_init(&p.lx, &prog->src));
    TRY(parse_program(&p, prog));
    *out = prog;
    return FUSOR_OK;
}

static fusor_status parse_whole_expr(parser *p, fe_expr **out) {
    TRY(next(p));
    TRY(skip_newlines(p));
    TRY(parse_expr(p, out));
    TRY(skip_newlines(p));
    if (p->tok.kind != FE_T_EOF)
        return expected(p, "an operator or the end of the expression");
    return FUSOR_OK;
}

fusor_status fe_parse_standalone_expr(arena *a, const fe_source *src, fe_expr **out) {
    parser p = {.a = a, .src = src};
    TRY(fe_lex_init(&p.lx, src));
    return parse_whole_expr(&p, out);
}

/* Adds the free name e (a NAME node) to the ufunc's inputs unless already there. */
static fusor_status add_free_name(parser *p, const fe_expr *e, fe_map *seen, fe_kernel *k,
                                  int *cap) {
    if (fe_is_constant_name(e->name) || fe_is_function_name(e->name) || fe_reserved_what(e->name) ||
        fe_map_get(seen, e->name) >= 0)
        return FUSOR_OK;
    if (!strcmp(e->name, "out"))
        return fe_error_at(p->src, e->pos, "'out' names the ufunc's output and cannot be an input");
    if (k->nin == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        k->in = arena_grow(p->a, k->in, sizeof *k->in, (size_t)k->nin, (size_t)*cap);
        if (!k->in)
            return fu_oom("the ufunc's inputs");
    }
    k->in[k->nin] =
        (fe_decl){.name = e->name, .pos = e->pos, .dtype = FUSOR_NUM_DTYPES, .is_array = -1};
    if (fe_map_put(seen, e->name, k->nin++) < 0)
        return fu_oom("the ufunc's inputs");
    return FUSOR_OK;
}

/* The free names of e in order of first appearance in the text (operands are stored
 * left to right, so a depth-first walk visits them in that order). */
static fusor_status collect_free_names(parser *p, const fe_expr *e, fe_map *seen, fe_kernel *k,
                                       int *cap) {
    if (e->kind == FE_E_NAME)
        return add_free_name(p, e, seen, k, cap);
    for (int i = 0; i < e->nargs; i++)
        TRY(collect_free_names(p, e->args[i], seen, k, cap));
    return FUSOR_OK;
}

fusor_status fe_parse_expr(arena *a, const char *expression, fe_program **out) {
    if (!a || !expression || !out)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fe_parse_expr: NULL argument");
    fe_program *prog = NULL;
    TRY(new_program(a, expression, "<expression>", &prog));
    parser p = {.a = a, .src = &prog->src};
    TRY(fe_lex_init(&p.lx, &prog->src));
    fe_expr *e;
    TRY(parse_whole_expr(&p, &e));

    fe_kernel *k = arena_alloc(a, sizeof *k);
    fe_decl *o = arena_alloc(a, sizeof *o);
    fe_stmt *s = arena_alloc(a, sizeof *s);
    if (!k || !o || !s)
        return fu_oom("the ufunc");
    k->name = "ufunc";
    k->pos = e->start;
    fe_map seen = {.a = a};
    int cap = 0;
    TRY(collect_free_names(&p, e, &seen, k, &cap));
    *o = (fe_decl){.name = "out", .pos = e->start, .dtype = FUSOR_NUM_DTYPES, .is_array = -1};
    *s = (fe_stmt){.is_let = 0, .name = "out", .pos = e->start, .value = e};
    k->out = o;
    k->nout = 1;
    k->stmts = s;
    k->nstmts = 1;
    prog->kernels = k;
    prog->nkernels = 1;
    *out = prog;
    return FUSOR_OK;
}

/* ------------------------------------------------------------------ the interface */

int fe_num_kernels(const fe_program *p) { return p ? p->nkernels : 0; }

const char *fe_kernel_name(const fe_program *p, int i) {
    return p && i >= 0 && i < p->nkernels ? p->kernels[i].name : NULL;
}

static void list_kernels(const fe_program *p, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < p->nkernels && used + 1 < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", p->kernels[i].name);
    if (used >= n && n > 4)
        strcpy(buf + n - 4, "...");
}

fusor_status fe_find_kernel(const fe_program *p, const char *name, int *index) {
    if (!p || !index)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fe_find_kernel: NULL argument");
    char names[1024];
    list_kernels(p, names, sizeof names);
    if (!name) {
        if (p->nkernels == 1) {
            *index = 0;
            return FUSOR_OK;
        }
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "%s holds %d kernels (%s): name the one to use", p->src.filename,
                        p->nkernels, names);
    }
    for (int i = 0; i < p->nkernels; i++) {
        if (!strcmp(p->kernels[i].name, name)) {
            *index = i;
            return FUSOR_OK;
        }
    }
    return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "%s has no kernel named '%s' (its kernels: %s)",
                    p->src.filename, name, names);
}

int fe_num_params(const fe_program *p, int i) {
    return p && i >= 0 && i < p->nkernels ? p->kernels[i].nin + p->kernels[i].nout : 0;
}

fusor_param_info fe_param(const fe_program *p, int i, int param) {
    fusor_param_info info = {NULL, FUSOR_NUM_DTYPES, -1, 0};
    if (param < 0 || param >= fe_num_params(p, i))
        return info;
    const fe_kernel *k = &p->kernels[i];
    const fe_decl *d = param < k->nin ? &k->in[param] : &k->out[param - k->nin];
    info.name = d->name;
    info.dtype = d->dtype;
    info.is_array = d->is_array;
    info.is_output = param >= k->nin;
    return info;
}

/* Generic means an input's type is left out: such a kernel needs bindings to be checked.
 * An output whose type is left out simply takes its expression's type. */
int fe_is_generic(const fe_program *p, int i) {
    if (!p || i < 0 || i >= p->nkernels)
        return 0;
    for (int j = 0; j < p->kernels[i].nin; j++)
        if (p->kernels[i].in[j].is_array < 0)
            return 1;
    return 0;
}
