/*
 * fuzz_cli.c — libFuzzer target: the `fusor` command-line parser (tools/cli.c).
 *
 * The input is split at NUL bytes into argv[1..] (argv[0] is "fusor"), at most 64
 * arguments.  Findings: crashes and sanitizer reports, and broken invariants, which abort:
 * a failure has a message (or is the bare usage case), a success describes one command
 * whose fields point into argv and respect the documented limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void finding(const char *what, const cli_opts *o) {
    fprintf(stderr, "fuzz_cli: %s (cmd %d, error '%s')\n", what, (int)o->cmd, o->error);
    abort();
}

static int in_argv(const char *p, int argc, char **argv) {
    if (!p)
        return 1;
    for (int i = 0; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 16384)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[66];
    int argc = 0;
    argv[argc++] = "fusor";
    for (size_t i = 0; i <= size && argc < 65;) { /* NUL-separated arguments */
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
        if (i > size)
            break;
    }
    if (size == 0)
        argc = 1;
    argv[argc] = NULL;

    static cli_opts o;
    int rc = cli_parse(argc, argv, &o);
    if (rc) {
        if (rc != EXIT_USAGE)
            finding("a failure with an unexpected exit code", &o);
        if (!o.error[0] && !(o.cmd == CLI_NONE && argc < 2))
            finding("a failure without a message", &o);
        if (!memchr(o.error, 0, sizeof o.error))
            finding("an unterminated message", &o);
    } else {
        if (o.cmd == CLI_NONE)
            finding("a success without a command", &o);
        if (o.nbind < 0 || o.nbind > CLI_MAX_ARGS || o.nout < 0 || o.nout > CLI_MAX_ARGS)
            finding("argument counts out of range", &o);
        if (o.threads < 0 || o.threads > 4096)
            finding("a thread count out of range", &o);
        if (o.cmd == CLI_RUN && !o.file == !o.expr)
            finding("run without exactly one source", &o);
        if (o.cmd == CLI_COMPILE && !o.file)
            finding("compile without a file", &o);
        if ((int)o.emit < 0 || (int)o.emit > 64)
            finding("a bad emit kind", &o);
        const char *ptrs[] = {o.file, o.expr, o.kernel, o.target};
        for (int i = 0; i < 4; i++)
            if (!in_argv(ptrs[i], argc, argv))
                finding("a field that does not point into argv", &o);
        for (int i = 0; i < o.nbind; i++)
            if (!strchr(o.bind[i], '=') || !in_argv(o.bind[i], argc, argv))
                finding("a binding without '='", &o);
    }
    free(buf);
    return 0;
}
