/*
 * lexer.h — tokens of the fusor language, read one at a time from a validated source.
 *
 * The source is checked whole before the first token (size limit, valid UTF-8, no control
 * characters outside comments), so every later error has a position.  Newlines are
 * tokens only outside parentheses and brackets: an expression or a parameter list may
 * span lines, a statement ends at the end of its line.
 */
#ifndef FUSOR_LEXER_H
#define FUSOR_LEXER_H

#include "ast.h"

#define FE_TOKENS(X)                                                                               \
    X(EOF, "end of input")                                                                         \
    X(NEWLINE, "end of line")                                                                      \
    X(NAME, "name")                                                                                \
    X(INT, "integer")                                                                              \
    X(FLOAT, "number")                                                                             \
    X(LPAREN, "'('")                                                                               \
    X(RPAREN, "')'")                                                                               \
    X(LBRACKET, "'['")                                                                             \
    X(RBRACKET, "']'")                                                                             \
    X(LBRACE, "'{'")                                                                               \
    X(RBRACE, "'}'")                                                                               \
    X(COMMA, "','")                                                                                \
    X(COLON, "':'")                                                                                \
    X(SEMI, "';'")                                                                                 \
    X(ARROW, "'->'")                                                                               \
    X(ASSIGN, "'='")                                                                               \
    X(PLUS, "'+'")                                                                                 \
    X(MINUS, "'-'")                                                                                \
    X(STAR, "'*'")                                                                                 \
    X(SLASH, "'/'")                                                                                \
    X(DSLASH, "'//'")                                                                              \
    X(PERCENT, "'%'")                                                                              \
    X(DSTAR, "'**'")                                                                               \
    X(TILDE, "'~'")                                                                                \
    X(AMP, "'&'")                                                                                  \
    X(PIPE, "'|'")                                                                                 \
    X(CARET, "'^'")                                                                                \
    X(SHL, "'<<'")                                                                                 \
    X(SHR, "'>>'")                                                                                 \
    X(LT, "'<'")                                                                                   \
    X(LE, "'<='")                                                                                  \
    X(GT, "'>'")                                                                                   \
    X(GE, "'>='")                                                                                  \
    X(EQ, "'=='")                                                                                  \
    X(NE, "'!='")

typedef enum fe_tok {
#define FE_TOK_ENUM(name, text) FE_T_##name,
    FE_TOKENS(FE_TOK_ENUM)
#undef FE_TOK_ENUM
        FE_T_NUM
} fe_tok;

typedef struct fe_token {
    fe_tok kind;
    fe_pos pos;
    const char *text; /* into the source; not NUL-terminated */
    int32_t len;
    ir_value value; /* INT: .i, FLOAT: .f */
} fe_token;

typedef struct fe_lexer {
    const fe_source *src;
    size_t at;         /* byte offset of the next character */
    int32_t line, col; /* of the next character */
    int32_t nesting;   /* open '(' and '[' */
} fe_lexer;

/* Checks the whole source (FE_MAX_SOURCE_BYTES, UTF-8, odd bytes) and starts at its
 * beginning. */
fusor_status fe_lex_init(fe_lexer *lx, const fe_source *src);
fusor_status fe_lex_next(fe_lexer *lx, fe_token *t);
/* "'+'", "end of line", ...: what a token is, for "expected X, found Y" messages. */
const char *fe_tok_text(fe_tok kind);
/* The operator's spelling ("+", "//"), for messages about operators. */
const char *fe_tok_spelling(fe_tok kind);

#endif
