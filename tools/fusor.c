/*
 * fusor.c — the `fusor` command line: run, compile, info.
 *
 * Everything here goes through the public API in fusor.h; the command line only parses
 * arguments, reads and writes files, and formats results.  Exit status: 0 success, 1 a
 * bad command line or input file (or any other failure), 2 a language error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusor.h"

enum { EXIT_USAGE = 1, EXIT_LANGUAGE = 2 };

static const char usage[] =
    "usage:\n"
    "  fusor run FILE.fu [--kernel NAME] [--threads N] [--target cpu|gpu|auto] [-v]\n"
    "            NAME=VALUE ... [-o NAME=PATH.npy ...]\n"
    "  fusor run -e 'EXPR' [--threads N] [--target T] [-v] NAME=VALUE ... [-o PATH.npy]\n"
    "  fusor compile FILE.fu [--kernel NAME] --emit ir|llvm|asm\n"
    "  fusor info\n"
    "  fusor --version | --help\n"
    "\n"
    "VALUE is a .npy file or a number; scalar outputs print as NAME = VALUE.\n"
    "See docs/cli.md.\n";

static int fail_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "fusor: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see fusor --help)\n");
    return EXIT_USAGE;
}

/* Prints the library's message and maps the status to an exit code. */
static int fail_status(fusor_status st) {
    fprintf(stderr, "fusor: %s\n", fusor_last_error());
    return st == FUSOR_ERROR_LANGUAGE ? EXIT_LANGUAGE : EXIT_USAGE;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fusor: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "fusor: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Formats a scalar output exactly (17 significant digits for f64, 9 for f32). */
static void print_scalar(const char *name, fusor_dtype dt, const unsigned char *v) {
    printf("%s = ", name);
    switch (dt) {
    case FUSOR_BOOL: printf("%s\n", v[0] ? "true" : "false"); break;
    case FUSOR_I8: printf("%d\n", *(const int8_t *)v); break;
    case FUSOR_I16: printf("%d\n", *(const int16_t *)v); break;
    case FUSOR_I32: printf("%d\n", *(const int32_t *)v); break;
    case FUSOR_I64: printf("%lld\n", (long long)*(const int64_t *)v); break;
    case FUSOR_U8: printf("%u\n", *(const uint8_t *)v); break;
    case FUSOR_U16: printf("%u\n", *(const uint16_t *)v); break;
    case FUSOR_U32: printf("%u\n", *(const uint32_t *)v); break;
    case FUSOR_U64: printf("%llu\n", (unsigned long long)*(const uint64_t *)v); break;
    case FUSOR_F32: printf("%.9g\n", (double)*(const float *)v); break;
    case FUSOR_F64: printf("%.17g\n", *(const double *)v); break;
    default: printf("?\n"); break;
    }
}

typedef struct run_opts {
    const char *file, *expr, *kernel, *target;
    int threads, verbose;
    int nbind, nout;
    const char *bind[256];
    const char *out[256];
} run_opts;

static int parse_run(int argc, char **argv, run_opts *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-e") || !strcmp(a, "--kernel") || !strcmp(a, "--threads") ||
            !strcmp(a, "--target") || !strcmp(a, "-o")) {
            if (!next) return fail_usage("%s needs a value", a);
            i++;
            if (!strcmp(a, "-e")) {
                o->expr = next;
            } else if (!strcmp(a, "--kernel")) {
                o->kernel = next;
            } else if (!strcmp(a, "--target")) {
                if (strcmp(next, "cpu") && strcmp(next, "gpu") && strcmp(next, "auto"))
                    return fail_usage("--target must be cpu, gpu or auto, not '%s'", next);
                o->target = next;
            } else if (!strcmp(a, "--threads")) {
                char *end;
                long n = strtol(next, &end, 10);
                if (*end || end == next || n < 0 || n > 4096)
                    return fail_usage("--threads needs a count >= 0, not '%s'", next);
                o->threads = (int)n;
            } else {
                if (o->nout == 256) return fail_usage("too many -o options%s", "");
                o->out[o->nout++] = next;
            }
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            return fail_usage("unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (o->nbind == 256) return fail_usage("too many arguments%s", "");
            o->bind[o->nbind++] = a;
        } else if (!o->file && !o->expr) {
            o->file = a;
        } else {
            return fail_usage("unexpected argument '%s' (inputs are NAME=VALUE)", a);
        }
    }
    if (!o->file && !o->expr) return fail_usage("run needs FILE.fu or -e EXPR%s", "");
    if (o->file && o->expr) return fail_usage("give FILE.fu or -e EXPR, not both%s", "");
    if (o->expr && o->kernel) return fail_usage("--kernel does not apply to -e%s", "");
    return 0;
}

/* Binds one NAME=VALUE: a .npy file or a number. */
static int bind_input(fusor_context *ctx, fusor_args *args, const char *spec) {
    const char *eq = strchr(spec, '=');
    char name[256];
    size_t n = (size_t)(eq - spec);
    if (n == 0 || n >= sizeof name) return fail_usage("bad argument '%s' (expected NAME=VALUE)", spec);
    memcpy(name, spec, n);
    name[n] = 0;
    const char *value = eq + 1;
    fusor_status st;
    if (ends_with(value, ".npy")) {
        fusor_array *arr;
        st = fusor_npy_load(ctx, value, &arr);
        if (st != FUSOR_OK) return fail_status(st);
        st = fusor_args_set_array(args, name, arr);
        fusor_array_destroy(arr);
    } else {
        st = fusor_args_set_literal(args, name, value);
    }
    return st == FUSOR_OK ? 0 : fail_status(st);
}

/* The -o destination of output `name`, or NULL. */
static const char *output_path(const run_opts *o, const char *name, int is_expr) {
    for (int i = 0; i < o->nout; i++) {
        const char *eq = strchr(o->out[i], '=');
        if (is_expr && !eq) return o->out[i];
        if (eq && (size_t)(eq - o->out[i]) == strlen(name) && !strncmp(o->out[i], name, strlen(name)))
            return eq + 1;
    }
    return NULL;
}

static int check_outputs_named(fusor_kernel *k, const run_opts *o) {
    for (int i = 0; i < o->nout; i++) {
        const char *eq = strchr(o->out[i], '=');
        if (!eq) {
            if (o->expr) continue;
            return fail_usage("-o needs NAME=PATH.npy, not '%s'", o->out[i]);
        }
        int found = 0;
        for (int p = 0; p < fusor_kernel_num_params(k); p++) {
            fusor_param_info info;
            fusor_kernel_param(k, p, &info);
            if (info.is_output && (size_t)(eq - o->out[i]) == strlen(info.name) &&
                !strncmp(o->out[i], info.name, strlen(info.name)))
                found = 1;
        }
        if (!found) return fail_usage("-o %s: the kernel has no such output", o->out[i]);
    }
    return 0;
}

static int write_outputs(fusor_context *ctx, fusor_kernel *k, fusor_args *args, const run_opts *o) {
    for (int p = 0; p < fusor_kernel_num_params(k); p++) {
        fusor_param_info info;
        fusor_kernel_param(k, p, &info);
        if (!info.is_output) continue;
        const char *path = output_path(o, info.name, o->expr != NULL);
        fusor_array *arr = NULL;
        if (fusor_args_get_array(args, info.name, &arr) == FUSOR_OK) {
            if (!path) {
                fprintf(stderr, "fusor: output '%s' is an array; save it with -o %s%s\n",
                        info.name, o->expr ? "" : info.name, o->expr ? "PATH.npy" : "=PATH.npy");
                fusor_array_destroy(arr);
                return EXIT_USAGE;
            }
            fusor_status st = fusor_npy_save(path, arr);
            fusor_array_destroy(arr);
            if (st != FUSOR_OK) return fail_status(st);
            continue;
        }
        unsigned char v[8] = {0};
        fusor_dtype dt;
        fusor_status st = fusor_args_get_scalar(args, info.name, &dt, v);
        if (st != FUSOR_OK) return fail_status(st);
        print_scalar(info.name, dt, v);
        if (path) {
            fusor_array *s;
            st = fusor_array_create(ctx, dt, 0, NULL, &s);
            if (st == FUSOR_OK) {
                memcpy(fusor_array_data(s), v, fusor_dtype_size(dt));
                st = fusor_npy_save(path, s);
                fusor_array_destroy(s);
            }
            if (st != FUSOR_OK) return fail_status(st);
        }
    }
    return 0;
}

static int cmd_run(int argc, char **argv) {
    run_opts o = {0};
    int rc = parse_run(argc, argv, &o);
    if (rc) return rc;
    char *source = NULL;
    if (o.file && !(source = read_file(o.file))) return EXIT_USAGE;

    fusor_context_options copts = {0};
    if (o.target) copts.target = !strcmp(o.target, "cpu")   ? FUSOR_TARGET_CPU
                                 : !strcmp(o.target, "gpu") ? FUSOR_TARGET_GPU
                                                            : FUSOR_TARGET_AUTO;
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    fusor_args *args = NULL;
    fusor_status st = fusor_context_create(&copts, &ctx);
    if (st == FUSOR_OK && o.threads) st = fusor_set_num_threads(o.threads);
    double t0 = now_seconds();
    if (st == FUSOR_OK)
        st = o.expr ? fusor_ufunc_create(ctx, o.expr, &k)
                    : fusor_kernel_compile(ctx, source, o.file, o.kernel, &k);
    double t_compile = now_seconds() - t0;
    if (st == FUSOR_OK) st = fusor_args_create(k, &args);
    if (st != FUSOR_OK) {
        rc = fail_status(st);
        goto done;
    }
    if ((rc = check_outputs_named(k, &o))) goto done;
    for (int i = 0; i < o.nbind && !rc; i++) rc = bind_input(ctx, args, o.bind[i]);
    if (rc) goto done;
    t0 = now_seconds();
    st = fusor_launch(k, args);
    double t_run = now_seconds() - t0;
    if (st != FUSOR_OK) {
        rc = fail_status(st);
        goto done;
    }
    rc = write_outputs(ctx, k, args, &o);
    if (o.verbose)
        fprintf(stderr, "fusor: kernel %s ran on %s with %d thread%s: compile %.3f ms, run %.3f ms\n",
                fusor_kernel_name(k), fusor_args_last_target(args), fusor_args_last_threads(args),
                fusor_args_last_threads(args) == 1 ? "" : "s", 1e3 * t_compile, 1e3 * t_run);
done:
    fusor_args_destroy(args);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(source);
    return rc;
}

static int cmd_compile(int argc, char **argv) {
    const char *file = NULL, *kernel = NULL, *emit = NULL;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "--kernel") || !strcmp(argv[i], "--emit")) && i + 1 < argc) {
            if (argv[i][2] == 'k')
                kernel = argv[++i];
            else
                emit = argv[++i];
        } else if (argv[i][0] == '-') {
            return fail_usage("unknown or incomplete option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else {
            return fail_usage("unexpected argument '%s'", argv[i]);
        }
    }
    if (!file) return fail_usage("compile needs FILE.fu%s", "");
    fusor_emit what;
    if (!emit || !strcmp(emit, "ir"))
        what = FUSOR_EMIT_IR;
    else if (!strcmp(emit, "llvm"))
        what = FUSOR_EMIT_LLVM;
    else if (!strcmp(emit, "asm"))
        what = FUSOR_EMIT_ASM;
    else
        return fail_usage("--emit must be ir, llvm or asm, not '%s'", emit);
    char *source = read_file(file);
    if (!source) return EXIT_USAGE;
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    char *text = NULL;
    fusor_status st = fusor_context_create(NULL, &ctx);
    if (st == FUSOR_OK) st = fusor_kernel_compile(ctx, source, file, kernel, &k);
    if (st == FUSOR_OK) st = fusor_kernel_emit(k, what, &text);
    int rc = 0;
    if (st == FUSOR_OK)
        fputs(text, stdout);
    else
        rc = fail_status(st);
    fusor_free(text);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(source);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    (void)argv;
    if (argc) return fail_usage("info takes no arguments%s", "");
    char *text = NULL;
    fusor_status st = fusor_runtime_info(&text);
    if (st != FUSOR_OK) return fail_status(st);
    fputs(text, stdout);
    fusor_free(text);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("fusor %s\n", fusor_version());
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "compile")) return cmd_compile(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    return fail_usage("unknown command '%s'", cmd);
}
