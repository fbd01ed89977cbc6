/*
 * test_frontend_errors.c — language errors: every case must fail with
 * FUSOR_ERROR_LANGUAGE and a message "t.fu:LINE:COL: error: ..." holding a key phrase,
 * then the source line and a caret under the column.
 *
 * A case names the expected column by an anchor: the caret must be under the first
 * occurrence of that text in the expected line (or by an explicit column).
 */
#include <stdlib.h>

#include "test_frontend_util.h"

typedef struct err_case {
    const char *src;
    int line;
    const char *anchor; /* NULL: use col */
    int col;
    const char *phrase;
} err_case;

/* A kernel with many parameters of different types; the body starts on line 2. */
#define P "kernel k(x: f32[], i: i32[], u: u8[], b: bool[], s: f32, n: i64) -> (y) {\n"

static const err_case cases[] = {
    {P "    y = x < s < 2\n}", 2, "< 2", 0, "comparisons do not chain: write (a < b) & (b < c)"},
    {P "    y = x < 1 == b\n}", 2, "==", 0, "write (a < b) & (b == c)"},
    {P "    y = xx + 1\n}", 2, "xx", 0, "unknown name 'xx' (did you mean 'x'?)"},
    {P "    y = qqqqqq\n}", 2, "qqqqqq", 0, "unknown name 'qqqqqq'\n"},
    {P "    y = exq(x)\n}", 2, "exq", 0, "unknown function 'exq' (did you mean 'exp'?)"},
    {P "    y = x\n    y = x + 1\n}", 3, "y", 0, "output 'y' is assigned twice (first at line 2"},
    {"kernel k(x: f32[]) -> (y, zz) {\n    y = x\n}", 1, "zz", 0, "output 'zz' is never assigned"},
    {P "    let d = x\n    let d = x + 1\n}", 3, "d =", 0, "'d' is already defined"},
    {P "    let x = 1\n    y = x\n}", 2, "x =", 0, "'x' is already defined"},
    {P "    y = sin(x, x)\n}", 2, "sin", 0, "sin() takes 1 argument, but 2 were given"},
    {P "    y = where(b, x)\n}", 2, "where", 0, "where() takes 3 arguments"},
    {P "    y = i8(x) + 300\n}", 2, "300", 0, "the literal value 300 does not fit i8"},
    {P "    y = i ** -2\n}", 2, "-2", 0, "integers to negative integer powers are not allowed"},
    {P "    y = power(i, -1)\n}", 2, "-1", 0, "negative integer powers"},
    {P "    y = power(2, -1)\n}", 2, "power", 0, "negative integer powers"},
    {P "    y = x & 1\n}", 2, "&", 0, "'&' needs integer or bool operands"},
    {P "    y = ~1.5\n}", 2, "~", 0, "unary '~' needs integer or bool operands"},
    {P "    y = x $ 1\n}", 2, "$", 0, "unexpected character '$'"},
    {P "    y = x @ 1\n}", 2, "@", 0, "unexpected character '@'"},
    {P "    y = \"s\"\n}", 2, "\"", 0, "the language has no strings"},
    {P "    y = !b\n}", 2, "!", 0, "write '~' for not"},
    {P "    y = (x + 1\n", 2, "(", 0, "'(' was never closed"},
    {P "    y = sin(x\n", 2, "(x", 0, "'(' was never closed"},
    {P "    y = (x + 1 }\n", 2, "}", 0, "expected ')' or an operator, found '}'"},
    {"kernel k(x: f32[]) -> (y) {\n    y = x\n", 1, "{", 0, "'{' was never closed"},
    {P "    y = x \xff 1\n}", 2, NULL, 11, "invalid UTF-8 (byte 0xff)"},
    {P "    y = x \xc3\n}", 2, NULL, 11, "invalid UTF-8 (byte 0xc3)"},
    {P "    y = x \xc0\xaf\n}", 2, NULL, 11, "invalid UTF-8"}, /* overlong '/' */
    {P "    y = x \xc3\xa9 1\n}", 2, "\xc3\xa9", 0, "unexpected character '\xc3\xa9'"},
    {P "    y = x \x01 1\n}", 2, NULL, 11, "unexpected control character (byte 0x01)"},
    {"kernel k(x: f32[]) -> (t: f32) {\n    t = x * 2\n}", 2, "x * 2", 0,
     "the scalar output 't' is assigned an element-wise expression"},
    {P "    y = sum(s)\n}", 2, "s)", 0, "sum() reduces an element-wise (array) value"},
    {P "    y = mean(1.5)\n}", 2, "1.5", 0, "argument is a scalar"},
    {P "    y = sum(sum(x))\n}", 2, "sum(x)", 0, "argument is a scalar"},
    {P "    y = min(x, 1)\n}", 2, "min", 0, "use minimum(a, b)"},
    {P "    y = max(x, s)\n}", 2, "max", 0, "use maximum(a, b)"},
    {P "    y = b - b\n}", 2, "-", 0, "'-' is not defined for bool operands"},
    {P "    y = -b\n}", 2, "-b", 0, "use '~' (logical not)"},
    {P "    y = +b\n}", 2, "+", 0, "unary '+' is not defined for bool"},
    {P "    y = sign(b)\n}", 2, "sign", 0, "sign() is not defined for bool"},
    {P "    x = 1\n}", 2, "x", 0, "cannot assign to the input 'x'"},
    {P "    let d = x\n    d = 2\n}", 3, "d", 0, "'d' is a 'let' binding"},
    {P "    z = x\n}", 2, "z", 0, "'z' is not an output of kernel 'k'"},
    {P "    let d = y + 1\n    y = x\n}", 2, "y + 1", 0,
     "output 'y' is read before it is assigned"},
    {"kernel k(x: f64[]) -> (y: f32[]) {\n    y = x * 2\n}", 2, "x * 2", 0,
     "convert it explicitly with f32(...)"},
    {"kernel k(x: i32[]) -> (y: f32[]) {\n    y = x\n}", 2, "x", 0,
     "NumPy does not cast safely to f32"},
    {"kernel k(x: f64[]) -> (y: i32) {\n    y = 2.5\n}", 2, "2.5", 0,
     "cannot assign a float literal to the i32 output 'y' without a cast"},
    {"kernel k(x: f64[]) -> (y: u8) {\n    y = 256\n}", 2, "256", 0, "256 does not fit u8"},
    {"kernel k(x: f64[]) -> (y: bool) {\n    y = 1\n}", 2, "1", 0, "without a cast"},
    {P "    y = x + 1 // 0\n}", 2, "//", 0, "division by zero in a constant expression"},
    {P "    y = 5 % 0\n}", 2, "%", 0, "division by zero"},
    {P "    y = 1.0 / 0\n}", 2, "/", 0, "division by zero"},
    {P "    y = 0.0 ** -1\n}", 2, "**", 0, "0.0 raised to a negative power"},
    {P "    y = (-8.0) ** 0.5\n}", 2, "**", 0, "fractional power is complex"},
    {P "    y = 2 ** 63\n}", 2, "**", 0, "integer overflow in a constant expression"},
    {P "    y = -(-9223372036854775807 - 1)\n}", 2, "-(", 0, "integer overflow"},
    {P "    y = 1 << -1\n}", 2, "<<", 0, "negative shift count"},
    {P "    y = 9223372036854775808\n}", 2, "9223", 0,
     "integer literal 9223372036854775808 is too large"},
    {P "    y = 1e+\n}", 2, "e+", 0, "malformed exponent"},
    {P "    y = 3x\n}", 2, "3x", 0, "invalid number literal '3x'"},
    {P "    y = 0x\n}", 2, "0x", 0, "needs digits after '0x'"},
    {P "    y = x * 1e300\n}", 2, "1e300", 0, "does not fit f32"},
    {P "    y = i8(300)\n}", 2, "300", 0, "300 does not fit i8 (the type it meets in the cast)"},
    {P "    y = u + -1\n}", 2, "-1", 0, "-1 does not fit u8 (the type it meets in '+')"},
    {P "    y = clip(u, 0, -1)\n}", 2, "-1", 0, "does not fit u8"},
    {P "    y = where(b, i8(x), 300)\n}", 2, "300", 0, "does not fit i8"},
    {P "    y = sin + 1\n}", 2, "sin", 0, "'sin' is a function: call it"},
    {P "    y = f32 + 1\n}", 2, "f32", 0, "'f32' is a type"},
    {P "    y = x(1)\n}", 2, "x(1)", 0, "'x' is not a function"},
    {P "    y + 1\n}", 2, "+", 0, "expected '=' after 'y'"},
    {P "    y = x s\n}", 2, "s", 0, "expected an operator or the end of the statement"},
    {P "    y = 1 +\n}", 2, NULL, 12, "expected an expression, found end of line"},
    {P "    y = let\n}", 2, "let", 0, "expected an expression, found 'let'"},
    {P "    let let = 1\n}", 2, "let =", 0, "'let' is a keyword"},
    {P "    1 = y\n}", 2, "1", 0, "expected a statement"},
    {"kernel k(f32: f32[]) -> (y) { y = 1 }", 1, "f32:", 0, "'f32' is a type"},
    {"kernel k(x: f33[]) -> (y) { y = 1 }", 1, "f33", 0,
     "unknown type 'f33' (did you mean 'f32'?)"},
    {"kernel k(x: float32[]) -> (y) { y = 1 }", 1, "float32", 0, "(did you mean 'f32'?)"},
    {"kernel k(x: f32[3]) -> (y) { y = 1 }", 1, "3]", 0, "expected ']'"},
    {"kernel k(x: f32[], x: f64) -> (y) { y = 1 }", 1, "x: f64", 0, "'x' is declared twice"},
    {"kernel k(x: f32[]) -> (x) { x = 1 }", 1, "x) {", 0, "'x' is declared twice"},
    {"kernel a() -> (y) { y = 1 }\nkernel a() -> (y) { y = 2 }", 2, "a(", 0,
     "kernel 'a' is defined twice (first at line 1, column 8)"},
    {"kernel k(x: f32[]) (y) { y = x }", 1, "(y)", 0, "expected '->'"},
    {"kernel a() -> (y) {\n    y = 1\nkernel b() -> (y) { y = 2 }", 3, "kernel", 0,
     "expected '}' to close the body of kernel 'a' (opened at line 1, column 19)"},
    {"kernel k(x: f32[]) -> () { }", 1, "k(", 0, "kernel 'k' has no outputs"},
    {"kernel k(x: f32[]) -> (y) { y = x }  junk", 1, "junk", 0, "expected 'kernel', found 'junk'"},
    {"kernel (x: f32[]) -> (y) { y = x }", 1, "(x", 0, "expected the kernel's name"},
    {"", 1, NULL, 1, "the source holds no kernel"},
    {"# only a comment\n\n", 1, NULL, 1, "the source holds no kernel"},
};

/* The text of line `line` of src, and the column (in characters) of anchor in it. */
static int anchor_col(const char *src, int line, const char *anchor) {
    const char *s = src;
    for (int l = 1; l < line && s; l++) {
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    if (!s)
        return -1;
    const char *end = strchr(s, '\n');
    const char *hit = strstr(s, anchor);
    if (!hit || (end && hit > end))
        return -1;
    int col = 1;
    for (const char *c = s; c < hit; c++)
        if (((unsigned char)*c & 0xC0) != 0x80)
            col++;
    return col;
}

/* Checks the message's shape: "t.fu:L:C: error: ...phrase...\n<line>\n<caret>". */
static void expect_error(const char *src, fusor_status st, int line, int col, const char *phrase) {
    CHECK_MSG(st == FUSOR_ERROR_LANGUAGE, "%s: status %s", src, fusor_status_name(st));
    const char *msg = fusor_last_error();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.fu:%d:%d: error: ", line, col);
    CHECK_MSG(!strncmp(msg, prefix, strlen(prefix)), "source:\n%s\nwant %s\ngot %s", src, prefix,
              msg);
    CHECK_MSG(strstr(msg, phrase) != NULL, "source:\n%s\nwant phrase: %s\ngot %s", src, phrase,
              msg);
    const char *caret = strrchr(msg, '\n');
    CHECK_MSG(caret && caret[strlen(caret) - 1] == '^', "no caret line in %s", msg);
    if (!caret)
        return;
    int chars = 0;
    for (const char *c = caret + 1; *c && *c != '^'; c++) {
        CHECK(*c == ' ' || *c == '\t');
        chars++;
    }
    const char *echo = strchr(msg, '\n');
    CHECK_MSG(echo < caret, "no source line in %s", msg);
    if (strncmp(echo + 1, "...", 3)) /* long lines are windowed; see test_limits */
        CHECK_MSG(chars == col - 1, "caret at %d, want column %d in\n%s", chars + 1, col, msg);
}

static void test_cases(void) {
    int n = (int)(sizeof cases / sizeof cases[0]);
    CHECK(n >= 40);
    for (int i = 0; i < n; i++) {
        const err_case *c = &cases[i];
        int col = c->anchor ? anchor_col(c->src, c->line, c->anchor) : c->col;
        CHECK_MSG(col > 0, "bad anchor in case %d", i);
        fusor_status st;
        fe_compile(c->src, NULL, NULL, &st);
        expect_error(c->src, st, c->line, col, c->phrase);
    }
}

/* The echoed line keeps tabs in the caret line so the caret lines up. */
static void test_tabs(void) {
    fusor_status st;
    fe_compile("kernel k(x: f32[]) -> (y) {\n\ty = \txx\n}", NULL, NULL, &st);
    expect_error("tabs", st, 2, 7, "unknown name 'xx'");
    const char *caret = strrchr(fusor_last_error(), '\n');
    CHECK(caret && !strcmp(caret + 1, "\t    \t^"));
    CHECK(strstr(fusor_last_error(), "\n\ty = \txx\n") != NULL);
}

static void test_deep_nesting(void) {
    static char src[8192];
    fusor_status st;
    /* 300 parentheses: the 257th goes beyond FE_MAX_DEPTH. */
    int n = snprintf(src, sizeof src, "kernel k(x: f32[]) -> (y) {\n    y = ");
    for (int i = 0; i < 300; i++)
        src[n++] = '(';
    src[n++] = 'x';
    for (int i = 0; i < 300; i++)
        src[n++] = ')';
    snprintf(src + n, sizeof src - (size_t)n, "\n}\n");
    fe_compile(src, NULL, NULL, &st);
    expect_error(src, st, 2, 9 + 256, "nested too deeply");

    /* A long chain of binary operators builds a deep tree too. */
    n = snprintf(src, sizeof src, "kernel k(x: f32[]) -> (y) {\n    y = x");
    for (int i = 0; i < 300; i++)
        n += snprintf(src + n, sizeof src - (size_t)n, "+x");
    snprintf(src + n, sizeof src - (size_t)n, "\n}\n");
    fe_compile(src, NULL, NULL, &st);
    expect_error(src, st, 2, 10 + 2 * 255, "nested too deeply");

    /* Unary operators and exponents recurse as well (a million of them must not crash). */
    size_t big = 3u << 20;
    char *deep = malloc(big + 64);
    REQUIRE_VOID(deep);
    n = snprintf(deep, 64, "kernel k(x: f32[]) -> (y) { y = ");
    memset(deep + n, '-', big);
    strcpy(deep + n + big, "x }");
    fe_compile(deep, NULL, NULL, &st);
    CHECK(st == FUSOR_ERROR_LANGUAGE && strstr(fusor_last_error(), "nested too deeply"));
    for (size_t j = 0; j + 3 < big; j += 3)
        memcpy(deep + n + j, "x**", 3);
    fe_compile(deep, NULL, NULL, &st);
    CHECK(st == FUSOR_ERROR_LANGUAGE && strstr(fusor_last_error(), "nested too deeply"));
    free(deep);

    /* 256 levels are fine. */
    n = snprintf(src, sizeof src, "kernel k(x: f32[]) -> (y) {\n    y = ");
    for (int i = 0; i < 255; i++)
        src[n++] = '-';
    snprintf(src + n, sizeof src - (size_t)n, "x\n}\n");
    CHECK(fe_compile(src, NULL, NULL, &st) != NULL);
}

static void test_limits(void) {
    /* A source over FE_MAX_SOURCE_BYTES is refused before any work. */
    size_t n = (size_t)FE_MAX_SOURCE_BYTES + 10;
    char *src = malloc(n + 1);
    REQUIRE_VOID(src);
    memset(src, ' ', n);
    src[n] = 0;
    fe_program *p;
    CHECK(fe_parse(&fe_test_arena, src, "t.fu", &p) == FUSOR_ERROR_LANGUAGE);
    CHECK(strstr(fusor_last_error(), "t.fu:1:1: error:") && strstr(fusor_last_error(), "limit"));
    free(src);

    /* A very long line is shown as a window around the column, the caret still under it. */
    static char line[6000];
    int k = snprintf(line, sizeof line, "kernel k(x: f32[]) -> (y) {\n    y = x");
    for (int i = 0; i < 200; i++)
        k += snprintf(line + k, sizeof line - (size_t)k, " + x * 1.000000000");
    snprintf(line + k, sizeof line - (size_t)k, " + nope\n}\n");
    fusor_status st;
    ir_kernel *kk = fe_compile(line, NULL, NULL, &st);
    CHECK(kk == NULL && st == FUSOR_ERROR_LANGUAGE);
    const char *msg = fusor_last_error();
    const char *echo = strchr(msg, '\n'), *caret = strrchr(msg, '\n');
    REQUIRE_VOID(echo && caret && echo < caret);
    CHECK(!strncmp(echo + 1, "...", 3) && strlen(caret + 1) < 200);
    const char *hit = strstr(echo + 1, "nope");
    CHECK(hit && hit - (echo + 1) == (long)strlen(caret + 1) - 1);

    /* Errors on later lines of a file name the right line. */
    fe_compile("# one\n# two\nkernel k(x: f32[]) -> (y) {\n\n  y = bad\n}", NULL, NULL, &st);
    expect_error("later line", st, 5, 7, "unknown name 'bad'");
}

int main(void) {
    arena_init(&fe_test_arena);
    test_cases();
    test_tabs();
    test_deep_nesting();
    test_limits();
    arena_free(&fe_test_arena);
    return check_done();
}
