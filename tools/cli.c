/* cli.c — parsing the `fusor` command line (cli.h); tools/fusor.c runs what it says. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage_error(cli_opts *o, const char *fmt, const char *arg) {
    snprintf(o->error, sizeof o->error, fmt, arg);
    return EXIT_USAGE;
}

static int parse_run(int argc, char **argv, cli_opts *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-e") || !strcmp(a, "--kernel") || !strcmp(a, "--threads") ||
            !strcmp(a, "--target") || !strcmp(a, "-o")) {
            if (!next)
                return usage_error(o, "%s needs a value", a);
            i++;
            if (!strcmp(a, "-e")) {
                o->expr = next;
            } else if (!strcmp(a, "--kernel")) {
                o->kernel = next;
            } else if (!strcmp(a, "--target")) {
                if (strcmp(next, "cpu") && strcmp(next, "gpu") && strcmp(next, "auto"))
                    return usage_error(o, "--target must be cpu, gpu or auto, not '%s'", next);
                o->target = next;
            } else if (!strcmp(a, "--threads")) {
                char *end;
                long n = strtol(next, &end, 10);
                if (*end || end == next || n < 0 || n > 4096)
                    return usage_error(o, "--threads needs a count >= 0, not '%s'", next);
                o->threads = (int)n;
            } else {
                if (o->nout == CLI_MAX_ARGS)
                    return usage_error(o, "too many -o options%s", "");
                o->out[o->nout++] = next;
            }
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error(o, "unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (o->nbind == CLI_MAX_ARGS)
                return usage_error(o, "too many arguments%s", "");
            o->bind[o->nbind++] = a;
        } else if (!o->file && !o->expr) {
            o->file = a;
        } else {
            return usage_error(o, "unexpected argument '%s' (inputs are NAME=VALUE)", a);
        }
    }
    if (!o->file && !o->expr)
        return usage_error(o, "run needs FILE.fu or -e EXPR%s", "");
    if (o->file && o->expr)
        return usage_error(o, "give FILE.fu or -e EXPR, not both%s", "");
    if (o->expr && o->kernel)
        return usage_error(o, "--kernel does not apply to -e%s", "");
    return 0;
}

/* The GPU options of compile: --via nvptx|nvrtc, --arch sm_XX, --ftz, --approx-div,
 * --approx-sqrt.  Returns 1 when argv[*i] was one (and advances *i), 0 when it was not,
 * -1 when it was malformed (o->error says how). */
static int parse_gpu_option(int argc, char **argv, int *i, cli_opts *o) {
    const char *a = argv[*i];
    if (!strcmp(a, "--ftz") || !strcmp(a, "--approx-div") || !strcmp(a, "--approx-sqrt")) {
        *(a[2] == 'f' ? &o->gpu.ftz : a[9] == 'd' ? &o->gpu.approx_div : &o->gpu.approx_sqrt) = 1;
        return 1;
    }
    if ((strcmp(a, "--via") && strcmp(a, "--arch")) || *i + 1 >= argc)
        return 0;
    const char *v = argv[++*i];
    if (a[2] == 'v') {
        if (!strcmp(v, "nvptx") || !strcmp(v, "nvrtc")) {
            o->gpu.path = v[2] == 'p' ? FUSOR_GPU_PATH_NVPTX : FUSOR_GPU_PATH_NVRTC;
            return 1;
        }
        usage_error(o, "--via must be nvptx or nvrtc, not '%s'", v);
        return -1;
    }
    int arch = 0, len = 0;
    if (sscanf(v, "sm_%d%n", &arch, &len) == 1 && v[len] == 0 && arch > 0) {
        o->gpu.arch = arch;
        return 1;
    }
    usage_error(o, "--arch must look like sm_80, not '%s'", v);
    return -1;
}

static int parse_compile(int argc, char **argv, cli_opts *o) {
    const char *emit = NULL;
    for (int i = 0; i < argc; i++) {
        int gpu = parse_gpu_option(argc, argv, &i, o);
        if (gpu < 0)
            return EXIT_USAGE;
        if (gpu)
            continue;
        if ((!strcmp(argv[i], "--kernel") || !strcmp(argv[i], "--emit")) && i + 1 < argc) {
            if (argv[i][2] == 'k')
                o->kernel = argv[++i];
            else
                emit = argv[++i];
        } else if (argv[i][0] == '-') {
            return usage_error(o, "unknown or incomplete option '%s'", argv[i]);
        } else if (!o->file) {
            o->file = argv[i];
        } else {
            return usage_error(o, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!o->file)
        return usage_error(o, "compile needs FILE.fu%s", "");
    if (!emit || !strcmp(emit, "ir"))
        o->emit = FUSOR_EMIT_IR;
    else if (!strcmp(emit, "llvm"))
        o->emit = FUSOR_EMIT_LLVM;
    else if (!strcmp(emit, "asm"))
        o->emit = FUSOR_EMIT_ASM;
    else if (!strcmp(emit, "ptx"))
        o->emit = FUSOR_EMIT_PTX;
    else if (!strcmp(emit, "cuda"))
        o->emit = FUSOR_EMIT_CUDA;
    else
        return usage_error(o, "--emit must be ir, llvm, asm, ptx or cuda, not '%s'", emit);
    return 0;
}

int cli_parse(int argc, char **argv, cli_opts *o) {
    memset(o, 0, sizeof *o);
    if (argc < 2)
        return EXIT_USAGE; /* CLI_NONE */
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        o->cmd = CLI_HELP;
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        o->cmd = CLI_VERSION;
        return 0;
    }
    if (!strcmp(cmd, "run")) {
        o->cmd = CLI_RUN;
        return parse_run(argc - 2, argv + 2, o);
    }
    if (!strcmp(cmd, "compile")) {
        o->cmd = CLI_COMPILE;
        return parse_compile(argc - 2, argv + 2, o);
    }
    if (!strcmp(cmd, "info")) {
        o->cmd = CLI_INFO;
        return argc > 2 ? usage_error(o, "info takes no arguments%s", "") : 0;
    }
    return usage_error(o, "unknown command '%s'", cmd);
}
