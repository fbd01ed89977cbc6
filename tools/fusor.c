/*
 * fusor.c — the `fusor` command line: run, compile, info (bench and cache: bench.c).
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

#include "bench.h"
#include "cli.h"
#include "fusor.h"
#include "io.h"

static const char usage[] =
    "usage:\n"
    "  fusor run FILE.fu [--kernel NAME] [--threads N] [--target cpu|gpu|auto] [-v]\n"
    "            NAME=VALUE ... [-o NAME=PATH.npy ...]\n"
    "  fusor run -e 'EXPR' [--threads N] [--target T] [-v] NAME=VALUE ... [-o PATH.npy]\n"
    "  fusor compile FILE.fu [--kernel NAME] --emit ir|llvm|asm\n"
    "  fusor compile FILE.fu [--kernel NAME] --emit ptx|cuda [--via nvptx|nvrtc] [--arch sm_XX]\n"
    "                [--ftz] [--approx-div] [--approx-sqrt]\n"
    "  fusor bench FILE.fu [--kernel NAME] | -e 'EXPR'  [--size N,... | --sweep 1e3:1e8 |\n"
    "              --shape 512x512]\n"
    "            [--dtype T] [--threads 1,2,...] [--target cpu|gpu] [--repeat R] [--unfused]\n"
    "            [--math default|fast|scalar] [--json | --csv] [--plot FILE.svg] [NAME=VALUE ...]\n"
    "  fusor cache list|clear|stats|dir|trim [SIZE]\n"
    "  fusor info [--bandwidth [--remeasure] | --memory]\n"
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

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Formats a scalar output exactly (17 significant digits for f64, 9 for f32, 5 for f16). */
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
    case FUSOR_F16: {
        uint16_t h;
        memcpy(&h, v, sizeof h);
        printf("%.5g\n", fusor_f16_to_f64(h));
        break;
    }
    default: printf("?\n"); break;
    }
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
static const char *output_path(const cli_opts *o, const char *name, int is_expr) {
    for (int i = 0; i < o->nout; i++) {
        const char *eq = strchr(o->out[i], '=');
        if (is_expr && !eq) return o->out[i];
        if (eq && (size_t)(eq - o->out[i]) == strlen(name) && !strncmp(o->out[i], name, strlen(name)))
            return eq + 1;
    }
    return NULL;
}

static int check_outputs_named(fusor_kernel *k, const cli_opts *o) {
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

static int write_outputs(fusor_context *ctx, fusor_kernel *k, fusor_args *args, const cli_opts *o) {
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

/* fusor run -v: where the launch ran and why, and the GPU memory it used. */
static void print_placement(const fusor_args *args) {
    fusor_placement pl;
    if (fusor_args_last_placement(args, &pl) != FUSOR_OK) return;
    fprintf(stderr, "fusor: placement: %s", pl.target == FUSOR_TARGET_GPU ? "GPU" : "CPU");
    if (pl.device >= 0) fprintf(stderr, " %d", pl.device);
    fprintf(stderr, ": %s", pl.reason);
    if (pl.copy_bytes > 0) fprintf(stderr, " (%.1f MB copied)", pl.copy_bytes / 1e6);
    fputc('\n', stderr);
    char *mem = NULL;
    if (pl.target == FUSOR_TARGET_GPU && fusor_memory_describe(&mem) == FUSOR_OK)
        fprintf(stderr, "fusor: memory: %s", mem);
    fusor_free(mem);
}

static int cmd_run(const cli_opts *o) {
    int rc = 0;
    char *source = NULL;
    if (o->file && !(source = tool_read_file(o->file))) return EXIT_USAGE;

    fusor_context_options copts = {0};
    if (o->target) copts.target = !strcmp(o->target, "cpu")   ? FUSOR_TARGET_CPU
                                  : !strcmp(o->target, "gpu") ? FUSOR_TARGET_GPU
                                                              : FUSOR_TARGET_AUTO;
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    fusor_args *args = NULL;
    fusor_status st = fusor_context_create(&copts, &ctx);
    if (st == FUSOR_OK && o->threads) st = fusor_set_num_threads(o->threads);
    double t0 = now_seconds();
    if (st == FUSOR_OK)
        st = o->expr ? fusor_ufunc_create(ctx, o->expr, &k)
                     : fusor_kernel_compile(ctx, source, o->file, o->kernel, &k);
    double t_compile = now_seconds() - t0;
    if (st == FUSOR_OK) st = fusor_args_create(k, &args);
    if (st != FUSOR_OK) {
        rc = fail_status(st);
        goto done;
    }
    if ((rc = check_outputs_named(k, o))) goto done;
    for (int i = 0; i < o->nbind && !rc; i++) rc = bind_input(ctx, args, o->bind[i]);
    if (rc) goto done;
    t0 = now_seconds();
    st = fusor_launch(k, args);
    double t_run = now_seconds() - t0;
    if (st != FUSOR_OK) {
        rc = fail_status(st);
        goto done;
    }
    rc = write_outputs(ctx, k, args, o);
    if (o->verbose)
        fprintf(stderr, "fusor: kernel %s ran on %s with %d thread%s: compile %.3f ms, run %.3f ms\n",
                fusor_kernel_name(k), fusor_args_last_target(args), fusor_args_last_threads(args),
                fusor_args_last_threads(args) == 1 ? "" : "s", 1e3 * t_compile, 1e3 * t_run);
    if (o->verbose) print_placement(args);
done:
    fusor_args_destroy(args);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(source);
    return rc;
}

static int cmd_compile(const cli_opts *o) {
    const char *file = o->file, *kernel = o->kernel;
    fusor_emit what = o->emit;
    char *source = tool_read_file(file);
    if (!source) return EXIT_USAGE;
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL;
    char *text = NULL;
    fusor_status st = fusor_context_create(NULL, &ctx);
    if (st == FUSOR_OK) st = fusor_context_set_gpu_options(ctx, &o->gpu);
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

/* fusor info --memory: the GPU pools' and the pinned pool's statistics and settings. */
static int cmd_info_memory(void) {
    char *text = NULL;
    fusor_status st = fusor_memory_describe(&text);
    if (st != FUSOR_OK) return fail_status(st);
    fputs(text, stdout);
    fusor_free(text);
    return 0;
}

static int cmd_info(void) {
    char *text = NULL;
    fusor_status st = fusor_runtime_info(&text);
    if (st != FUSOR_OK) return fail_status(st);
    fputs(text, stdout);
    fusor_free(text);
    return 0;
}

int main(int argc, char **argv) {
    static cli_opts o; /* big (argument tables): not on the stack */
    /* The performance commands parse their own arguments (bench.c). */
    if (argc >= 2 && !strcmp(argv[1], "bench")) return fusor_cmd_bench(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "cache")) return fusor_cmd_cache(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "info") && !strcmp(argv[2], "--bandwidth") &&
        (argc == 3 || (argc == 4 && !strcmp(argv[3], "--remeasure"))))
        return fusor_cmd_bandwidth(argc == 4);
    if (argc == 3 && !strcmp(argv[1], "info") && !strcmp(argv[2], "--memory"))
        return cmd_info_memory();
    if (cli_parse(argc, argv, &o)) {
        if (!o.error[0]) {
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
        return fail_usage("%s", o.error);
    }
    switch (o.cmd) {
    case CLI_HELP: fputs(usage, stdout); return 0;
    case CLI_VERSION: printf("fusor %s\n", fusor_version()); return 0;
    case CLI_RUN: return cmd_run(&o);
    case CLI_COMPILE: return cmd_compile(&o);
    case CLI_INFO: return cmd_info();
    default: return EXIT_USAGE;
    }
}
