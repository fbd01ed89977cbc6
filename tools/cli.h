/*
 * cli.h — the `fusor` command line, parsed into a plain struct.
 *
 * Parsing is separate from running so that a fuzz target (tests/fuzz/fuzz_cli.c) can
 * feed it any argv without compiling or running a kernel.  It allocates nothing, prints
 * nothing and keeps pointers into argv.
 */
#ifndef FUSOR_CLI_H
#define FUSOR_CLI_H

#include "fusor.h"

enum { EXIT_USAGE = 1, EXIT_LANGUAGE = 2 };

/* The most NAME=VALUE arguments and -o options of one run. */
#define CLI_MAX_ARGS 256

typedef enum cli_command {
    CLI_NONE = 0, /* no command: print the usage on stderr and fail */
    CLI_HELP,
    CLI_VERSION,
    CLI_RUN,
    CLI_COMPILE,
    CLI_INFO
} cli_command;

typedef struct cli_opts {
    cli_command cmd;
    /* run and compile */
    const char *file, *expr, *kernel, *target;
    int threads, verbose;
    int nbind, nout;
    const char *bind[CLI_MAX_ARGS]; /* NAME=VALUE, as given */
    const char *out[CLI_MAX_ARGS];  /* -o NAME=PATH (or PATH with -e), as given */
    fusor_emit emit;                /* compile */
    fusor_gpu_options gpu;          /* compile --emit ptx|cuda: --via, --arch, flags */
    char error[512];                /* what is wrong, when cli_parse fails */
} cli_opts;

/* Parses argv (argv[0] is the program).  Returns 0, or EXIT_USAGE with o->error set
 * (o->error is empty for CLI_NONE, which wants the whole usage printed). */
int cli_parse(int argc, char **argv, cli_opts *o);

#endif
