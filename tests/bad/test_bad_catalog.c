/*
 * test_bad_catalog.c — runs every case of the bad-input catalog (tests/bad/<kind>/).
 *
 * One file per case; its first lines say what must happen:
 *
 *     # expect: FUSOR_ERROR_LANGUAGE "nested too deeply" "limit is 256"
 *     # expect: exit 1 "--threads needs a count"            (cli cases)
 *
 * The status (or exit code) must be exactly that, and the message (fusor_last_error(), or
 * the command's stderr) must contain every quoted text.  Other '#' lines at the top are
 * comments or directives.  Kinds:
 *
 *   lang/  a kernel source, compiled with fusor_kernel_compile (file name = the case's).
 *          "# kernel: NAME" picks a kernel; "# ufunc" compiles the text after the header
 *          as a ufunc expression; "# generate: TEMPLATE" replaces the text by a generated
 *          one: {TEXT*N} repeats TEXT N times ($i in TEXT counts 1..N, $p 0..N-1);
 *          \n \t \\ \{ \} \xNN are escapes.
 *   npy/   the bytes after the header lines are a .npy file, read with fusor_npy_load;
 *          the message must also name the file.
 *   cli/   "args: ..." is a `fusor` command line (words split on spaces, '...' and "..."
 *          quoted, \xNN in "..."; @SRC@ is the source tree, @TMP@ a scratch directory
 *          holding x.npy (f64, 4), i.npy (i32, 4), m.npy (f64, 2x3), corrupt.npy (text),
 *          one.fu (scale: x, s -> y, total), two.fu (kernels a and b), u8.fu (addn: x, n)).
 *   api/   a short script of C API calls (commands below); every call must succeed but
 *          the last, which must fail as expected.  After every failed launch the memory
 *          all arrays wrap must be exactly as before: nothing half-written.
 *
 * api commands (NAME: an array of the script; PARAM: a kernel parameter, "null" = NULL):
 *   context [target=N] [opt=N]      a new context with these options
 *   compile [kernel=K] SOURCE...    compile (\n escapes) and create its argument set
 *   ufunc EXPR...                   the same for a ufunc
 *   buffer BYTES                    the memory arrays wrap (default 4096, patterned)
 *   wrap NAME DTYPE SHAPE STRIDES OFFSET   SHAPE "-" (0-d) or "2,3"; STRIDES "-" (C
 *                                   order) or "8,-16"; OFFSET bytes into the buffer or
 *                                   "null"; DTYPE a name or a number
 *   create NAME DTYPE SHAPE         an array fusor allocates
 *   bind PARAM NAME                 fusor_args_set_array
 *   set_f64|set_i64 PARAM V, set_literal PARAM TEXT, set_scalar PARAM DTYPE V
 *   launch, launch_other            (launch_other: the previous kernel with this one's args)
 *   get_array|get_scalar|get_f64 PARAM
 *   threads N, target N, emit N, param I, dtype NAME, kernels SOURCE...
 *   call NAME                       one call with a NULL argument (see null_call)
 *
 * The driver prints every failing case with what happened, and the number of cases.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fusor.h"

extern char **environ;

/* Under AddressSanitizer, a 1 PB allocation must fail like it does without it (the library
 * then reports out of memory) instead of stopping the program. */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

static char tmpdir[256];
static char case_name[512]; /* kind/file of the case being run */
static char why[2048];      /* why the current case failed */

/* ------------------------------------------------------------------ helpers */

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, got;
    unsigned char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *nb = realloc(buf, (cap *= 2) + 1);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

static int write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int fail(const char *fmt, const char *a, const char *b) {
    snprintf(why, sizeof why, fmt, a, b);
    return 0;
}

/* ------------------------------------------------------------------ expectations */

typedef struct expect {
    int is_exit;     /* cli: an exit code */
    int code;        /* exit code */
    char status[64]; /* "FUSOR_ERROR_..." */
    int nsubs;
    char subs[8][256];
} expect;

/* Parses the text after "# expect:". */
static int parse_expect(const char *line, expect *e) {
    memset(e, 0, sizeof *e);
    const char *p = line;
    while (*p == ' ')
        p++;
    if (!strncmp(p, "exit ", 5)) {
        e->is_exit = 1;
        e->code = atoi(p + 5);
        p += 5;
        while (*p && *p != ' ')
            p++;
    } else {
        int n = 0;
        while (p[n] && p[n] != ' ' && p[n] != '\n' && n < 63)
            n++;
        memcpy(e->status, p, (size_t)n);
        p += n;
    }
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p != '"')
            break;
        if (e->nsubs == 8)
            return 0;
        char *out = e->subs[e->nsubs++];
        size_t n = 0;
        for (p++; *p && *p != '"' && *p != '\n' && n < 255; p++) {
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                p++;
            out[n++] = *p;
        }
        out[n] = 0;
        if (*p != '"')
            return 0;
        p++;
    }
    return *p == 0 || *p == '\n';
}

static int check_message(const expect *e, const char *msg) {
    for (int i = 0; i < e->nsubs; i++)
        if (!strstr(msg, e->subs[i])) {
            snprintf(why, sizeof why, "the message lacks \"%s\"; it is:\n%s", e->subs[i], msg);
            return 0;
        }
    return 1;
}

static int check_status(const expect *e, fusor_status st, const char *msg) {
    if (strcmp(fusor_status_name(st), e->status)) {
        snprintf(why, sizeof why, "expected %s, got %s: %s", e->status, fusor_status_name(st), msg);
        return 0;
    }
    return check_message(e, msg);
}

/* The header: leading lines starting with '#'.  Returns where the body starts. */
typedef struct header {
    expect e;
    int have_expect, ufunc;
    char kernel[128];
    const char *generate; /* into the file's text, up to the end of its line */
    const char *args;     /* cli */
} header;

static size_t parse_header(const char *text, size_t len, header *h) {
    memset(h, 0, sizeof *h);
    size_t at = 0;
    while (at < len && text[at] == '#') {
        const char *line = text + at;
        const char *nl = memchr(line, '\n', len - at);
        size_t n = nl ? (size_t)(nl - line) : len - at;
        if (!strncmp(line, "# expect:", 9))
            h->have_expect = parse_expect(line + 9, &h->e);
        else if (!strncmp(line, "# kernel:", 9))
            sscanf(line + 9, " %127s", h->kernel);
        else if (!strncmp(line, "# ufunc", 7))
            h->ufunc = 1;
        else if (!strncmp(line, "# generate:", 11))
            h->generate = line + 11;
        at += n + (nl != NULL);
    }
    return at;
}

/* ------------------------------------------------------------------ generation */

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

typedef struct growbuf {
    char *p;
    size_t len, cap;
} growbuf;

static void put(growbuf *g, const char *s, size_t n) {
    if (g->len + n + 1 > g->cap) {
        size_t cap = (g->len + n + 1) * 2;
        char *p = realloc(g->p, cap);
        if (!p)
            abort();
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, s, n);
    g->len += n;
    g->p[g->len] = 0;
}

/* Decodes escapes of t[0, n) into g. */
static void put_escaped(growbuf *g, const char *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '\\' && i + 1 < n) {
            char d = t[++i];
            if (d == 'n')
                c = '\n';
            else if (d == 't')
                c = '\t';
            else if (d == 'x' && i + 2 < n + 0 && hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0) {
                c = (char)(hexval(t[i + 1]) * 16 + hexval(t[i + 2]));
                i += 2;
            } else
                c = d;
        }
        put(g, &c, 1);
    }
}

/* Expands a template line: {TEXT*N} repeats TEXT (escapes decoded) N times. */
static char *generate(const char *tmpl, size_t *len) {
    growbuf g = {0};
    put(&g, "", 0);
    const char *end = strchr(tmpl, '\n');
    if (!end)
        end = tmpl + strlen(tmpl);
    while (*tmpl == ' ')
        tmpl++;
    for (const char *p = tmpl; p < end;) {
        const char *open = p;
        while (open < end && !(*open == '{' && (open == p || open[-1] != '\\')))
            open++;
        put_escaped(&g, p, (size_t)(open - p));
        if (open == end)
            break;
        const char *close = open + 1;
        while (close < end && !(*close == '}' && close[-1] != '\\'))
            close++;
        const char *star = close;
        while (star > open && *star != '*')
            star--;
        long times = strtol(star + 1, NULL, 10);
        growbuf unit = {0};
        put(&unit, "", 0);
        put_escaped(&unit, open + 1, (size_t)(star - open - 1));
        for (long i = 0; i < times; i++) {
            if (!strchr(unit.p, '$')) {
                put(&g, unit.p, unit.len);
                continue;
            }
            for (const char *u = unit.p; *u; u++) { /* $i: i + 1, $p: i */
                if (u[0] == '$' && (u[1] == 'i' || u[1] == 'p')) {
                    char num[24];
                    put(&g, num, (size_t)snprintf(num, sizeof num, "%ld", i + (u[1] == 'i')));
                    u++;
                } else {
                    put(&g, u, 1);
                }
            }
        }
        free(unit.p);
        p = close + 1;
    }
    *len = g.len;
    return g.p;
}

/* ------------------------------------------------------------------ lang */

static int run_lang(const char *file, unsigned char *text, size_t len) {
    header h;
    size_t body = parse_header((const char *)text, len, &h);
    if (!h.have_expect)
        return fail("no valid '# expect:' line%s%s", "", "");
    char *gen = NULL;
    const char *src = (const char *)text;
    if (h.generate) {
        size_t n;
        src = gen = generate(h.generate, &n);
    } else if (h.ufunc) {
        src = (const char *)text + body;
    }
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    if (fusor_context_create(NULL, &ctx) != FUSOR_OK)
        return fail("no context%s%s", "", "");
    fusor_status st = h.ufunc
                          ? fusor_ufunc_create(ctx, src, &k)
                          : fusor_kernel_compile(ctx, src, file, h.kernel[0] ? h.kernel : NULL, &k);
    int ok = check_status(&h.e, st, fusor_last_error());
    if (ok && st != FUSOR_OK && k)
        ok = fail("a failed compile returned a kernel%s%s", "", "");
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(gen);
    return ok;
}

/* ------------------------------------------------------------------ npy */

static int run_npy(const char *file, unsigned char *text, size_t len) {
    header h;
    size_t body = parse_header((const char *)text, len, &h);
    if (!h.have_expect)
        return fail("no valid '# expect:' line%s%s", "", "");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    if (!write_all(path, text + body, len - body))
        return fail("cannot write %s%s", path, "");
    fusor_array *a = (fusor_array *)&h; /* must be reset to NULL */
    fusor_status st = fusor_npy_load(NULL, path, &a);
    int ok = check_status(&h.e, st, fusor_last_error());
    if (ok && st != FUSOR_OK && !strstr(fusor_last_error(), path))
        ok = fail("the message does not name the file: %s%s", fusor_last_error(), "");
    if (ok && st != FUSOR_OK && a)
        ok = fail("a failed load did not set *out to NULL%s%s", "", "");
    if (st == FUSOR_OK)
        fusor_array_destroy(a);
    remove(path);
    return ok;
}

/* ------------------------------------------------------------------ cli */

/* The line with @SRC@ and @TMP@ replaced (up to its end). */
static char *expand_places(const char *line) {
    growbuf g = {0};
    put(&g, "", 0);
    for (const char *p = line; *p && *p != '\n';) {
        if (!strncmp(p, "@SRC@", 5)) {
            put(&g, FUSOR_SOURCE_DIR, strlen(FUSOR_SOURCE_DIR));
            p += 5;
        } else if (!strncmp(p, "@TMP@", 5)) {
            put(&g, tmpdir, strlen(tmpdir));
            p += 5;
        } else {
            put(&g, p++, 1);
        }
    }
    return g.p;
}

/* Splits a command line into words (quotes, \xNN in double quotes). */
static int split_args(const char *line, char **argv, int max) {
    int argc = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '\n')
            break;
        if (argc == max - 1)
            return -1;
        growbuf w = {0};
        put(&w, "", 0);
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                const char *s = p;
                while (*p && *p != q)
                    p++;
                if (q == '"')
                    put_escaped(&w, s, (size_t)(p - s));
                else
                    put(&w, s, (size_t)(p - s));
                if (*p)
                    p++;
            } else {
                put(&w, p++, 1);
            }
        }
        argv[argc++] = w.p;
    }
    argv[argc] = NULL;
    return argc;
}

/* Runs argv, waiting at most `seconds`; returns the exit code (128 + signal, -1 on a
 * timeout) and the output in *out. */
static int run_command(char **argv, int seconds, char **out) {
    char outpath[512];
    snprintf(outpath, sizeof outpath, "%s/cli.out", tmpdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -2;
    int status = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > seconds) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            *out = NULL;
            return -1;
        }
        usleep(2000);
    }
    size_t n;
    *out = (char *)read_all(outpath, &n);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_cli(const char *file, unsigned char *text, size_t len) {
    (void)file;
    header h;
    parse_header((const char *)text, len, &h);
    const char *args = strstr((const char *)text, "\nargs:");
    if (!h.have_expect || !h.e.is_exit || !args)
        return fail("needs '# expect: exit N ...' and an 'args:' line%s%s", "", "");
    char *argv[64];
    argv[0] = strdup(FUSOR_CLI);
    char *line = expand_places(args + 6);
    int argc = split_args(line, argv + 1, 63);
    free(line);
    if (argc < 0)
        return fail("too many arguments%s%s", "", "");
    char *out = NULL;
    int code = run_command(argv, 60, &out);
    for (int i = 0; i <= argc; i++)
        free(argv[i]);
    int ok;
    char got[32];
    snprintf(got, sizeof got, "%d", code);
    if (code != h.e.code) {
        snprintf(why, sizeof why, "expected exit %d, got %s; output:\n%s", h.e.code,
                 code == -1 ? "a timeout" : got, out ? out : "");
        ok = 0;
    } else {
        ok = check_message(&h.e, out ? out : "");
    }
    free(out);
    return ok;
}

/* ------------------------------------------------------------------ api */

enum { MAX_ARRAYS = 16 };

typedef struct api {
    fusor_context *ctx;
    fusor_kernel *k, *prev;
    fusor_args *args, *prev_args;
    unsigned char *buf;
    size_t buflen;
    char names[MAX_ARRAYS][256];
    fusor_array *arrays[MAX_ARRAYS];
    int narrays;
} api;

static void api_release(api *s) {
    for (int i = 0; i < s->narrays; i++)
        fusor_array_destroy(s->arrays[i]);
    s->narrays = 0;
    fusor_args_destroy(s->args);
    fusor_args_destroy(s->prev_args);
    fusor_kernel_destroy(s->k);
    fusor_kernel_destroy(s->prev);
    fusor_context_destroy(s->ctx);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static void pattern(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 37 + 11);
}

static fusor_array *array_named(api *s, const char *name) {
    for (int i = 0; i < s->narrays; i++)
        if (!strcmp(s->names[i], name))
            return s->arrays[i];
    return NULL;
}

static const char *nullable(const char *word) { return strcmp(word, "null") ? word : NULL; }

static int parse_dtype(const char *w, fusor_dtype *dt) {
    char *end;
    long v = strtol(w, &end, 10);
    if (!*end) {
        *dt = (fusor_dtype)v;
        return 1;
    }
    return fusor_dtype_from_name(w, dt) == FUSOR_OK;
}

/* "-" for none, else a comma list; returns the count. */
static int parse_list(const char *w, int64_t *v) {
    if (!strcmp(w, "-"))
        return 0;
    int n = 0;
    for (const char *p = w; n < 16;) {
        v[n++] = strtoll(p, (char **)&p, 10);
        if (*p != ',')
            break;
        p++;
    }
    return n;
}

static char *rest_of_line(const char *line, int skip_words) {
    const char *p = line;
    for (int i = 0; i < skip_words; i++) {
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
    }
    while (*p == ' ')
        p++;
    growbuf g = {0};
    put(&g, "", 0);
    put_escaped(&g, p, strlen(p));
    return g.p;
}

static fusor_status add_kernel(api *s, fusor_status st, fusor_kernel *k) {
    if (st != FUSOR_OK)
        return st;
    fusor_args_destroy(s->prev_args);
    fusor_kernel_destroy(s->prev);
    s->prev = s->k;
    s->prev_args = s->args;
    s->k = k;
    s->args = NULL;
    return fusor_args_create(k, &s->args);
}

/* One call with a NULL argument; -1 when the name is unknown. */
static int null_call(api *s, const char *name, fusor_status *st) {
    fusor_kernel *k = NULL;
    fusor_args *a = NULL;
    fusor_array *arr = NULL;
    fusor_context *c = NULL;
    char *text = NULL;
    fusor_param_info info;
    fusor_dtype dt;
    int64_t shape[1] = {4};
    fusor_array *any = s->narrays ? s->arrays[0] : NULL;
    static const char *const names[] = {"launch_null_kernel",
                                        "launch_null_args",
                                        "args_create_null_kernel",
                                        "args_create_null_out",
                                        "compile_null_ctx",
                                        "compile_null_source",
                                        "compile_null_out",
                                        "ufunc_null_ctx",
                                        "ufunc_null_expr",
                                        "ufunc_null_out",
                                        "set_array_null_args",
                                        "set_array_null_name",
                                        "set_f64_null_args",
                                        "set_literal_null_args",
                                        "get_array_null_out",
                                        "get_scalar_null_args",
                                        "wrap_null_out",
                                        "create_null_out",
                                        "npy_load_null_path",
                                        "npy_load_null_out",
                                        "npy_save_null_path",
                                        "npy_save_null_array",
                                        "context_create_null_out",
                                        "set_target_null_ctx",
                                        "runtime_info_null",
                                        "source_kernels_null_source",
                                        "source_kernels_null_out",
                                        "emit_null_kernel",
                                        "emit_null_text",
                                        "param_null_kernel",
                                        "param_null_out",
                                        "dtype_from_name_null",
                                        NULL};
    int i = 0;
    while (names[i] && strcmp(names[i], name))
        i++;
    switch (i) {
    case 0: *st = fusor_launch(NULL, s->args); break;
    case 1: *st = fusor_launch(s->k, NULL); break;
    case 2: *st = fusor_args_create(NULL, &a); break;
    case 3: *st = fusor_args_create(s->k, NULL); break;
    case 4:
        *st = fusor_kernel_compile(NULL, "kernel k(x: f64[]) -> (y) { y = x }", "n.fu", NULL, &k);
        break;
    case 5: *st = fusor_kernel_compile(s->ctx, NULL, "n.fu", NULL, &k); break;
    case 6:
        *st =
            fusor_kernel_compile(s->ctx, "kernel k(x: f64[]) -> (y) { y = x }", "n.fu", NULL, NULL);
        break;
    case 7: *st = fusor_ufunc_create(NULL, "a + 1", &k); break;
    case 8: *st = fusor_ufunc_create(s->ctx, NULL, &k); break;
    case 9: *st = fusor_ufunc_create(s->ctx, "a + 1", NULL); break;
    case 10: *st = fusor_args_set_array(NULL, "x", any); break;
    case 11: *st = fusor_args_set_array(s->args, NULL, any); break;
    case 12: *st = fusor_args_set_f64(NULL, "x", 1.0); break;
    case 13: *st = fusor_args_set_literal(NULL, "x", "1"); break;
    case 14: *st = fusor_args_get_array(s->args, "y", NULL); break;
    case 15: *st = fusor_args_get_scalar(NULL, "y", &dt, text); break;
    case 16: *st = fusor_array_wrap(s->ctx, s->buf, FUSOR_F64, 1, shape, NULL, NULL); break;
    case 17: *st = fusor_array_create(s->ctx, FUSOR_F64, 1, shape, NULL); break;
    case 18: *st = fusor_npy_load(s->ctx, NULL, &arr); break;
    case 19: *st = fusor_npy_load(s->ctx, "x.npy", NULL); break;
    case 20: *st = fusor_npy_save(NULL, any); break;
    case 21: *st = fusor_npy_save("x.npy", NULL); break;
    case 22: *st = fusor_context_create(NULL, NULL); break;
    case 23: *st = fusor_context_set_target(NULL, FUSOR_TARGET_CPU); break;
    case 24: *st = fusor_runtime_info(NULL); break;
    case 25: *st = fusor_source_kernels(NULL, "n.fu", &text); break;
    case 26: *st = fusor_source_kernels("kernel k(x) -> (y) { y = x }", "n.fu", NULL); break;
    case 27: *st = fusor_kernel_emit(NULL, FUSOR_EMIT_IR, &text); break;
    case 28: *st = fusor_kernel_emit(s->k, FUSOR_EMIT_IR, NULL); break;
    case 29: *st = fusor_kernel_param(NULL, 0, &info); break;
    case 30: *st = fusor_kernel_param(s->k, 0, NULL); break;
    case 31: *st = fusor_dtype_from_name(NULL, &dt); break;
    default: return -1;
    }
    (void)c;
    /* A failing call must leave nothing behind; a succeeding one is cleaned up. */
    fusor_kernel_destroy(k);
    fusor_args_destroy(a);
    fusor_array_destroy(arr);
    fusor_free(text);
    return 0;
}

/* Runs one command; returns its status, or -1 for a malformed command. */
static int api_command(api *s, char *line, int *launched) {
    char w[8][256] = {{0}};
    int nw =
        sscanf(line, "%255s %255s %255s %255s %255s %255s", w[0], w[1], w[2], w[3], w[4], w[5]);
    fusor_status st = FUSOR_OK;
    *launched = 0;
    const char *cmd = w[0];
    if (!strcmp(cmd, "context")) {
        fusor_context_options o = {0};
        for (int i = 1; i < nw; i++) {
            if (!strncmp(w[i], "target=", 7))
                o.target = (fusor_target)atoi(w[i] + 7);
            if (!strncmp(w[i], "opt=", 4))
                o.opt_level = atoi(w[i] + 4);
        }
        fusor_context *c = NULL;
        st = fusor_context_create(&o, &c);
        if (st == FUSOR_OK) {
            fusor_context_destroy(s->ctx);
            s->ctx = c;
        }
    } else if (!strcmp(cmd, "compile")) {
        int named = !strncmp(w[1], "kernel=", 7);
        char *src = rest_of_line(line, named ? 2 : 1);
        fusor_kernel *k = NULL;
        st = fusor_kernel_compile(s->ctx, src, "api.fu", named ? w[1] + 7 : NULL, &k);
        st = add_kernel(s, st, k);
        free(src);
    } else if (!strcmp(cmd, "ufunc")) {
        char *src = rest_of_line(line, 1);
        fusor_kernel *k = NULL;
        st = fusor_ufunc_create(s->ctx, src, &k);
        st = add_kernel(s, st, k);
        free(src);
    } else if (!strcmp(cmd, "buffer")) {
        free(s->buf);
        s->buflen = (size_t)atol(w[1]);
        s->buf = aligned_alloc(64, (s->buflen + 63) / 64 * 64);
        pattern(s->buf, s->buflen);
    } else if (!strcmp(cmd, "wrap") || !strcmp(cmd, "create")) {
        int wrap = cmd[0] == 'w';
        fusor_dtype dt;
        int64_t shape[16], strides[16];
        if (nw < (wrap ? 6 : 4) || !parse_dtype(w[2], &dt) || s->narrays == MAX_ARRAYS)
            return -1;
        int ndim = parse_list(w[3], shape);
        fusor_array *a = NULL;
        if (wrap) {
            int ns = parse_list(w[4], strides);
            (void)ns;
            void *data = strcmp(w[5], "null") ? s->buf + atol(w[5]) : NULL;
            st = fusor_array_wrap(s->ctx, data, dt, ndim, shape, strcmp(w[4], "-") ? strides : NULL,
                                  &a);
        } else {
            st = fusor_array_create(s->ctx, dt, ndim, shape, &a);
        }
        if (st == FUSOR_OK) {
            snprintf(s->names[s->narrays], sizeof s->names[0], "%s", w[1]);
            s->arrays[s->narrays++] = a;
        } else if (a) {
            return -2; /* a failed call returned an array */
        }
    } else if (!strcmp(cmd, "bind")) {
        st = fusor_args_set_array(s->args, nullable(w[1]), array_named(s, w[2]));
    } else if (!strcmp(cmd, "set_f64")) {
        st = fusor_args_set_f64(s->args, nullable(w[1]), strtod(w[2], NULL));
    } else if (!strcmp(cmd, "set_i64")) {
        st = fusor_args_set_i64(s->args, nullable(w[1]), strtoll(w[2], NULL, 10));
    } else if (!strcmp(cmd, "set_literal")) {
        st = fusor_args_set_literal(s->args, nullable(w[1]), nullable(w[2]));
    } else if (!strcmp(cmd, "set_scalar")) {
        fusor_dtype dt;
        if (!parse_dtype(w[2], &dt))
            return -1;
        unsigned char v[8] = {0};
        double d = strtod(w[3], NULL);
        if (dt == FUSOR_F64)
            memcpy(v, &d, 8);
        else if (dt == FUSOR_F32) {
            float f = (float)d;
            memcpy(v, &f, 4);
        } else {
            int64_t i = (int64_t)d;
            memcpy(v, &i, 8);
        }
        st = fusor_args_set_scalar(s->args, nullable(w[1]), dt, strcmp(w[3], "null") ? v : NULL);
    } else if (!strcmp(cmd, "launch")) {
        *launched = 1;
        st = fusor_launch(s->k, s->args);
    } else if (!strcmp(cmd, "launch_other")) {
        *launched = 1;
        st = fusor_launch(s->prev, s->args);
    } else if (!strcmp(cmd, "get_array")) {
        fusor_array *a = NULL;
        st = fusor_args_get_array(s->args, nullable(w[1]), &a);
        fusor_array_destroy(a);
    } else if (!strcmp(cmd, "get_scalar")) {
        fusor_dtype dt;
        unsigned char v[8];
        st = fusor_args_get_scalar(s->args, nullable(w[1]), &dt, v);
    } else if (!strcmp(cmd, "get_f64")) {
        double v;
        st = fusor_args_get_f64(s->args, nullable(w[1]), &v);
    } else if (!strcmp(cmd, "threads")) {
        st = fusor_set_num_threads(atoi(w[1]));
    } else if (!strcmp(cmd, "target")) {
        st = fusor_context_set_target(s->ctx, (fusor_target)atoi(w[1]));
    } else if (!strcmp(cmd, "emit")) {
        char *text = NULL;
        st = fusor_kernel_emit(s->k, (fusor_emit)atoi(w[1]), &text);
        fusor_free(text);
    } else if (!strcmp(cmd, "param")) {
        fusor_param_info info;
        st = fusor_kernel_param(s->k, atoi(w[1]), &info);
    } else if (!strcmp(cmd, "dtype")) {
        fusor_dtype dt;
        st = fusor_dtype_from_name(w[1], &dt);
    } else if (!strcmp(cmd, "kernels")) {
        char *src = rest_of_line(line, 1), *names = NULL;
        st = fusor_source_kernels(src, "api.fu", &names);
        fusor_free(names);
        free(src);
    } else if (!strcmp(cmd, "call")) {
        if (null_call(s, w[1], &st) < 0)
            return -1;
    } else {
        return -1;
    }
    return (int)st;
}

static int run_api(const char *file, unsigned char *text, size_t len) {
    (void)file;
    header h;
    size_t at = parse_header((const char *)text, len, &h);
    if (!h.have_expect)
        return fail("no valid '# expect:' line%s%s", "", "");
    api s = {0};
    s.buflen = 4096;
    s.buf = aligned_alloc(64, s.buflen);
    pattern(s.buf, s.buflen);
    if (fusor_context_create(NULL, &s.ctx) != FUSOR_OK)
        return fail("no context%s%s", "", "");
    char *lines = strdup((const char *)text + at);
    int ok = 1, step = 0, last = -1;
    char *save = NULL, *cmds[64];
    int ncmds = 0;
    for (char *l = strtok_r(lines, "\n", &save); l && ncmds < 64; l = strtok_r(NULL, "\n", &save))
        if (l[0] && l[0] != '#')
            cmds[ncmds++] = l;
    for (step = 0; step < ncmds && ok; step++) {
        unsigned char *before = malloc(s.buflen);
        memcpy(before, s.buf, s.buflen);
        size_t before_len = s.buflen;
        int launched;
        last = api_command(&s, cmds[step], &launched);
        if (last < 0) {
            ok = fail(last == -2 ? "'%s': a failed call returned an array%s"
                                 : "malformed command '%s'%s",
                      cmds[step], "");
        } else if (step < ncmds - 1) {
            if (last != FUSOR_OK) {
                snprintf(why, sizeof why, "step '%s' failed: %s: %s", cmds[step],
                         fusor_status_name((fusor_status)last), fusor_last_error());
                ok = 0;
            }
        } else {
            ok = check_status(&h.e, (fusor_status)last, fusor_last_error());
        }
        if (ok && launched && last != FUSOR_OK && before_len == s.buflen &&
            memcmp(before, s.buf, s.buflen))
            ok = fail("a failed launch ('%s') wrote into the arrays' memory%s", cmds[step], "");
        free(before);
    }
    free(lines);
    api_release(&s);
    return ok;
}

/* ------------------------------------------------------------------ driver */

static void prepare_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fusor_bad_XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
    double x[4] = {1, 2, 3, 4}, m[6] = {1, 2, 3, 4, 5, 6};
    int32_t i[4] = {1, 2, 3, 4};
    int64_t n4 = 4, shape23[2] = {2, 3};
    fusor_array *a;
    char path[512];
    snprintf(path, sizeof path, "%s/x.npy", tmpdir);
    fusor_array_wrap(NULL, x, FUSOR_F64, 1, &n4, NULL, &a);
    fusor_npy_save(path, a);
    fusor_array_destroy(a);
    snprintf(path, sizeof path, "%s/i.npy", tmpdir);
    fusor_array_wrap(NULL, i, FUSOR_I32, 1, &n4, NULL, &a);
    fusor_npy_save(path, a);
    fusor_array_destroy(a);
    snprintf(path, sizeof path, "%s/m.npy", tmpdir);
    fusor_array_wrap(NULL, m, FUSOR_F64, 2, shape23, NULL, &a);
    fusor_npy_save(path, a);
    fusor_array_destroy(a);
    static const char one[] = "kernel scale(x: f64[], s: f64) -> (y: f64[], total: f64) {\n"
                              "    y = x * s\n    total = sum(y)\n}\n";
    static const char two[] = "kernel a(x: f64[]) -> (y: f64[]) { y = x }\n"
                              "kernel b(x: f64[]) -> (y: f64[]) { y = -x }\n";
    snprintf(path, sizeof path, "%s/one.fu", tmpdir);
    write_all(path, one, sizeof one - 1);
    snprintf(path, sizeof path, "%s/two.fu", tmpdir);
    write_all(path, two, sizeof two - 1);
    static const char u8[] = "kernel addn(x: u8[], n: u8) -> (y: u8[]) { y = x + n }\n";
    snprintf(path, sizeof path, "%s/u8.fu", tmpdir);
    write_all(path, u8, sizeof u8 - 1);
    snprintf(path, sizeof path, "%s/corrupt.npy", tmpdir);
    write_all(path, "x,y\n1,2\n", 8);
}

static void remove_tmp(void) {
    DIR *d = opendir(tmpdir);
    char path[1024];
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        remove(path);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    static const struct {
        const char *dir;
        int (*run)(const char *, unsigned char *, size_t);
    } kinds[] = {{"lang", run_lang}, {"npy", run_npy}, {"cli", run_cli}, {"api", run_api}};
    const char *only = argc > 1 ? argv[1] : NULL; /* a substring of the cases to run */
    setenv("FUSOR_CACHE", "0", 1);
    prepare_tmp();
    int total = 0, counts[4] = {0};
    for (int kind = 0; kind < 4; kind++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/tests/bad/%s", FUSOR_SOURCE_DIR, kinds[kind].dir);
        DIR *d = opendir(dir);
        REQUIRE(d != NULL);
        char *names[1024];
        int n = 0;
        for (struct dirent *e; (e = readdir(d)) && n < 1024;)
            if (e->d_name[0] != '.')
                names[n++] = strdup(e->d_name);
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, cmp);
        for (int i = 0; i < n; i++) {
            snprintf(case_name, sizeof case_name, "%s/%s", kinds[kind].dir, names[i]);
            if (only && !strstr(case_name, only)) {
                free(names[i]);
                continue;
            }
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            size_t len;
            unsigned char *text = read_all(path, &len);
            why[0] = 0;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int ok = text && kinds[kind].run(names[i], text, len);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double secs =
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            if (ok && secs > 10) {
                snprintf(why, sizeof why, "took %.1f s (the limit is 10 s)", secs);
                ok = 0;
            }
            CHECK_MSG(ok, "%s: %s", case_name, why);
            if (getenv("FUSOR_BAD_VERBOSE"))
                printf("%-50s %s %.3f s\n", case_name, ok ? "ok" : "FAILED", secs);
            counts[kind]++;
            total++;
            free(text);
            free(names[i]);
        }
    }
    remove_tmp();
    printf("bad-input catalog: %d cases (lang %d, npy %d, cli %d, api %d)\n", total, counts[0],
           counts[1], counts[2], counts[3]);
    if (!only)
        CHECK_MSG(total >= 150, "the catalog has %d cases; it should have at least 150", total);
    return check_done();
}
