/*
 * lexer.c — source validation, tokens, and the language's error messages.
 *
 * Columns count characters (UTF-8 code points), not bytes, so carets line up under
 * non-ASCII text in comments.  Numbers are converted with the C locale whatever the
 * program's locale is.
 */
#include "lexer.h"

#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "error.h"

static const char *const tok_text[FE_T_NUM] = {
#define FE_TOK_TEXT(name, text) text,
    FE_TOKENS(FE_TOK_TEXT)
#undef FE_TOK_TEXT
};

const char *fe_tok_text(fe_tok kind) { return (unsigned)kind < FE_T_NUM ? tok_text[kind] : "?"; }

const char *fe_tok_spelling(fe_tok kind) {
    static const char *const spelling[FE_T_NUM] = {
        [FE_T_PLUS] = "+",    [FE_T_MINUS] = "-",   [FE_T_STAR] = "*",   [FE_T_SLASH] = "/",
        [FE_T_DSLASH] = "//", [FE_T_PERCENT] = "%", [FE_T_DSTAR] = "**", [FE_T_TILDE] = "~",
        [FE_T_AMP] = "&",     [FE_T_PIPE] = "|",    [FE_T_CARET] = "^",  [FE_T_SHL] = "<<",
        [FE_T_SHR] = ">>",    [FE_T_LT] = "<",      [FE_T_LE] = "<=",    [FE_T_GT] = ">",
        [FE_T_GE] = ">=",     [FE_T_EQ] = "==",     [FE_T_NE] = "!=",
    };
    return (unsigned)kind < FE_T_NUM && spelling[kind] ? spelling[kind] : fe_tok_text(kind);
}

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is invalid:
 * overlong forms, surrogates and code points above U+10FFFF are invalid. */
static int utf8_len(const unsigned char *s, size_t n) {
    if (s[0] < 0x80)
        return 1;
    int len;
    uint32_t cp;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2, cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3, cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* ------------------------------------------------------------------ errors */

/* Appends text[from, to) with invalid bytes and control characters shown as '?'. */
static size_t echo_segment(char *out, size_t cap, const char *text, size_t from, size_t to) {
    size_t n = 0;
    for (size_t i = from; i < to && n + 4 < cap;) {
        const unsigned char *s = (const unsigned char *)text + i;
        int len = utf8_len(s, to - i);
        if (len == 0 || (len == 1 && s[0] < 0x20 && s[0] != '\t') || s[0] == 0x7F) {
            out[n++] = '?';
            i++;
            continue;
        }
        memcpy(out + n, s, (size_t)len);
        n += (size_t)len;
        i += (size_t)len;
    }
    out[n] = 0;
    return n;
}

fusor_status fe_error_at(const fe_source *src, fe_pos pos, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    const char *text = src->text;
    size_t off = (size_t)pos.offset < src->len ? (size_t)pos.offset : src->len;
    size_t ls = off, le = off;
    while (ls > 0 && text[ls - 1] != '\n')
        ls--;
    while (le < src->len && text[le] != '\n')
        le++;
    if (le > ls && text[le - 1] == '\r')
        le--;
    if (off > le)
        off = le;

    /* Very long lines are shown as a window around the column. */
    int cut_left = 0, cut_right = 0;
    if (off - ls > 120) {
        ls = off - 80;
        while (ls < off && is_continuation((unsigned char)text[ls]))
            ls++;
        cut_left = 1;
    }
    if (le - off > 120) {
        le = off + 80;
        while (le > off && is_continuation((unsigned char)text[le]))
            le--;
        cut_right = 1;
    }
    char line[1200], caret[800];
    size_t n = 0;
    if (cut_left)
        n += (size_t)snprintf(line, sizeof line, "...");
    n += echo_segment(line + n, sizeof line - n - 4, text, ls, le);
    if (cut_right)
        snprintf(line + n, sizeof line - n, "...");

    size_t c = 0;
    if (cut_left)
        c += (size_t)snprintf(caret, sizeof caret, "   ");
    for (size_t i = ls; i < off && c + 2 < sizeof caret; i++)
        if (!is_continuation((unsigned char)text[i]))
            caret[c++] = text[i] == '\t' ? '\t' : ' ';
    caret[c++] = '^';
    caret[c] = 0;
    return fu_error(FUSOR_ERROR_LANGUAGE, "%s:%d:%d: error: %s\n%s\n%s", src->filename,
                    (int)pos.line, (int)pos.col, msg, line, caret);
}

/* ------------------------------------------------------------------ validation */

static fe_pos pos_of(const fe_lexer *lx) { return (fe_pos){(int32_t)lx->at, lx->line, lx->col}; }

/* One step over the character at lx->at (which is valid UTF-8). */
static void advance(fe_lexer *lx) {
    const unsigned char *s = (const unsigned char *)lx->src->text + lx->at;
    if (s[0] == '\n') {
        lx->line++;
        lx->col = 1;
        lx->at++;
        return;
    }
    lx->at += (size_t)utf8_len(s, lx->src->len - lx->at);
    lx->col++;
}

static fusor_status odd_character(fe_lexer *lx) {
    const unsigned char *s = (const unsigned char *)lx->src->text + lx->at;
    if (s[0] < 0x20 || s[0] == 0x7F)
        return fe_error_at(lx->src, pos_of(lx), "unexpected control character (byte 0x%02x)", s[0]);
    int len = utf8_len(s, lx->src->len - lx->at);
    return fe_error_at(lx->src, pos_of(lx),
                       "unexpected character '%.*s': names and operators are ASCII (other "
                       "text may appear only in comments)",
                       len, (const char *)s);
}

/* The whole source is checked first so that no later stage meets a byte it cannot show. */
static fusor_status validate(fe_lexer *lx) {
    int in_comment = 0;
    while (lx->at < lx->src->len) {
        const unsigned char *s = (const unsigned char *)lx->src->text + lx->at;
        if (s[0] == '\n') {
            in_comment = 0;
        } else if (s[0] == '#') {
            in_comment = 1;
        } else if (s[0] >= 0x80) {
            if (!utf8_len(s, lx->src->len - lx->at))
                return fe_error_at(lx->src, pos_of(lx), "invalid UTF-8 (byte 0x%02x)", s[0]);
            if (!in_comment)
                return odd_character(lx);
        } else if ((s[0] < 0x20 && s[0] != '\t' && s[0] != '\r') || s[0] == 0x7F) {
            return odd_character(lx);
        }
        advance(lx);
    }
    return FUSOR_OK;
}

fusor_status fe_lex_init(fe_lexer *lx, const fe_source *src) {
    *lx = (fe_lexer){.src = src, .at = 0, .line = 1, .col = 1, .nesting = 0};
    if (src->len > FE_MAX_SOURCE_BYTES)
        return fu_error(FUSOR_ERROR_LANGUAGE,
                        "%s:1:1: error: the source is %zu bytes; the limit is %u bytes (16 MiB)",
                        src->filename, src->len, FE_MAX_SOURCE_BYTES);
    fusor_status st = validate(lx);
    *lx = (fe_lexer){.src = src, .at = 0, .line = 1, .col = 1, .nesting = 0};
    return st;
}

/* ------------------------------------------------------------------ tokens */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_alnum(char c) { return is_alpha(c) || is_digit(c); }
static int hex_digit(char c) {
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static locale_t c_locale;
static once_flag c_locale_once = ONCE_FLAG_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static double parse_double(const char *text, size_t len) {
    char buf[512];
    if (len >= sizeof buf)
        len = sizeof buf - 1; /* only absurdly long literals; rounds */
    memcpy(buf, text, len);
    buf[len] = 0;
    call_once(&c_locale_once, make_c_locale);
    return c_locale ? strtod_l(buf, NULL, c_locale) : strtod(buf, NULL);
}

static fusor_status lex_number(fe_lexer *lx, fe_token *t) {
    const char *s = lx->src->text;
    size_t i = lx->at;
    int is_float = 0;
    uint64_t v = 0;
    int too_big = 0;
    if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        if (hex_digit(s[i]) < 0)
            return fe_error_at(lx->src, t->pos, "a hexadecimal literal needs digits after '0x'");
        for (; hex_digit(s[i]) >= 0; i++) {
            if (v > (uint64_t)INT64_MAX >> 4)
                too_big = 1;
            v = v << 4 | (uint64_t)hex_digit(s[i]);
        }
        if (v > (uint64_t)INT64_MAX)
            too_big = 1;
    } else {
        for (; is_digit(s[i]); i++) {
            if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                too_big = 1;
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (s[i] == '.') {
            is_float = 1;
            for (i++; is_digit(s[i]); i++) {
            }
        }
        if (s[i] == 'e' || s[i] == 'E') {
            size_t e = i + 1;
            if (s[e] == '+' || s[e] == '-')
                e++;
            if (!is_digit(s[e])) {
                lx->col += (int32_t)(i - lx->at);
                lx->at = i;
                return fe_error_at(lx->src, pos_of(lx), "malformed exponent in number literal");
            }
            for (i = e; is_digit(s[i]); i++) {
            }
            is_float = 1;
        }
    }
    /* Messages quote at most 40 characters of a literal: a literal of a million digits
     * used to fill the message buffer and cut off the explanation after it. */
    int shown = i - lx->at + 1 > 40 ? 40 : (int)(i - lx->at + 1);
    const char *more = i - lx->at + 1 > 40 ? "..." : "";
    if (is_alnum(s[i]) || s[i] == '.')
        return fe_error_at(lx->src, t->pos, "invalid number literal '%.*s%s'", shown, s + lx->at,
                           more);
    t->len = (int32_t)(i - lx->at);
    if (is_float) {
        t->kind = FE_T_FLOAT;
        t->value.f = parse_double(s + lx->at, i - lx->at);
    } else {
        if (too_big)
            return fe_error_at(lx->src, t->pos,
                               "integer literal %.*s%s is too large (integers are exact in i64: "
                               "the largest is 9223372036854775807)",
                               t->len > 40 ? 40 : (int)t->len, s + lx->at,
                               t->len > 40 ? "..." : "");
        t->kind = FE_T_INT;
        t->value.i = (int64_t)v;
    }
    lx->col += t->len;
    lx->at = i;
    return FUSOR_OK;
}

/* Operators: the longest spelling that matches wins. */
static const struct {
    const char *text;
    fe_tok kind;
} operators[] = {
    {"->", FE_T_ARROW},   {"**", FE_T_DSTAR}, {"//", FE_T_DSLASH}, {"<<", FE_T_SHL},
    {">>", FE_T_SHR},     {"<=", FE_T_LE},    {">=", FE_T_GE},     {"==", FE_T_EQ},
    {"!=", FE_T_NE},      {"(", FE_T_LPAREN}, {")", FE_T_RPAREN},  {"[", FE_T_LBRACKET},
    {"]", FE_T_RBRACKET}, {"{", FE_T_LBRACE}, {"}", FE_T_RBRACE},  {",", FE_T_COMMA},
    {":", FE_T_COLON},    {";", FE_T_SEMI},   {"=", FE_T_ASSIGN},  {"+", FE_T_PLUS},
    {"-", FE_T_MINUS},    {"*", FE_T_STAR},   {"/", FE_T_SLASH},   {"%", FE_T_PERCENT},
    {"~", FE_T_TILDE},    {"&", FE_T_AMP},    {"|", FE_T_PIPE},    {"^", FE_T_CARET},
    {"<", FE_T_LT},       {">", FE_T_GT},
};

static fusor_status lex_operator(fe_lexer *lx, fe_token *t) {
    const char *s = lx->src->text + lx->at;
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++) {
        size_t n = strlen(operators[k].text);
        if (strncmp(s, operators[k].text, n))
            continue;
        t->kind = operators[k].kind;
        t->len = (int32_t)n;
        if (t->kind == FE_T_LPAREN || t->kind == FE_T_LBRACKET)
            lx->nesting++;
        if ((t->kind == FE_T_RPAREN || t->kind == FE_T_RBRACKET) && lx->nesting > 0)
            lx->nesting--;
        lx->at += n;
        lx->col += (int32_t)n;
        return FUSOR_OK;
    }
    if (s[0] == '!')
        return fe_error_at(lx->src, t->pos,
                           "unexpected character '!': write '~' for not, "
                           "'!=' for not equal");
    if (s[0] == '"' || s[0] == '\'')
        return fe_error_at(lx->src, t->pos,
                           "unexpected character '%c': the language has no strings", s[0]);
    return fe_error_at(lx->src, t->pos, "unexpected character '%c'", s[0]);
}

fusor_status fe_lex_next(fe_lexer *lx, fe_token *t) {
    const char *s = lx->src->text;
    for (;;) {
        char c = s[lx->at];
        if (c == ' ' || c == '\t' || c == '\r') {
            advance(lx);
        } else if (c == '#') {
            while (lx->at < lx->src->len && s[lx->at] != '\n')
                advance(lx);
        } else if (c == '\n' && lx->nesting > 0) {
            advance(lx);
        } else {
            break;
        }
    }
    *t = (fe_token){.pos = pos_of(lx), .text = s + lx->at, .len = 0};
    char c = s[lx->at];
    if (lx->at >= lx->src->len) {
        t->kind = FE_T_EOF;
        return FUSOR_OK;
    }
    if (c == '\n') {
        t->kind = FE_T_NEWLINE;
        t->len = 1;
        advance(lx);
        return FUSOR_OK;
    }
    if (is_digit(c) || (c == '.' && is_digit(s[lx->at + 1])))
        return lex_number(lx, t);
    if (is_alpha(c)) {
        size_t i = lx->at;
        while (is_alnum(s[i]))
            i++;
        t->kind = FE_T_NAME;
        t->len = (int32_t)(i - lx->at);
        lx->col += t->len;
        lx->at = i;
        return FUSOR_OK;
    }
    if ((unsigned char)c >= 0x80 || (unsigned char)c < 0x20)
        return odd_character(lx);
    return lex_operator(lx, t);
}
