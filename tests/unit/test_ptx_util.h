/*
 * test_ptx_util.h — helpers of the GPU code generation tests (no GPU needed): a kernel's
 * IR and plan from source, with bindings for generic kernels, and the CUDA toolkit's
 * ptxas as the judge of PTX (found at configure time; without it the tests say SKIP).
 */
#ifndef TEST_PTX_UTIL_H
#define TEST_PTX_UTIL_H

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "frontend.h"
#include "gpu.h"

#ifndef FUSOR_PTXAS
#define FUSOR_PTXAS ""
#endif

/* ptxas, or NULL after printing why the PTX checks are skipped. */
static inline const char *ptx_ptxas(void) {
    const char *p = getenv("FUSOR_PTXAS") ? getenv("FUSOR_PTXAS") : FUSOR_PTXAS;
    if (p[0] && access(p, X_OK) == 0)
        return p;
    printf("SKIP: ptxas (CUDA toolkit) not found at configure time; PTX is generated but "
           "not assembled\n");
    return NULL;
}

/* Assembles ptx[i] for sm_<arch[i]>, i < n, with ptxas processes running side by side.
 * On failure prints ptxas' complaint and keeps the PTX in a file named in the message.
 * `opt` is ptxas' -O level (3 its default; 0 checks the same PTX rules in half the time).
 * Returns 1 when ptxas accepted all. */
static inline int ptx_assemble_n(const char *ptxas, int n, const char *const *ptx, const int *arch,
                                 int opt, const char *what) {
    enum { MAXN = 4 };
    char path[MAXN][40], err[MAXN][64], optarg[8], archarg[MAXN][24];
    pid_t pid[MAXN];
    int ok = 1;
    snprintf(optarg, sizeof optarg, "-O%d", opt);
    for (int i = 0; i < n && i < MAXN; i++) {
        snprintf(path[i], sizeof path[i], "/tmp/fusor_test_XXXXXX.ptx");
        snprintf(err[i], sizeof err[i], "%s", "");
        pid[i] = -1;
        int fd = mkstemps(path[i], 4);
        if (fd < 0) {
            ok = 0;
            continue;
        }
        size_t len = strlen(ptx[i]);
        int wrote = write(fd, ptx[i], len) == (ssize_t)len;
        close(fd);
        snprintf(err[i], sizeof err[i], "%.40s.err", path[i]);
        snprintf(archarg[i], sizeof archarg[i], "-arch=sm_%d", arch[i]);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 2, err[i], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char *argv[] = {(char *)ptxas, optarg, archarg[i], path[i], "-o", "/dev/null", NULL};
        if (!wrote || posix_spawn(&pid[i], ptxas, &fa, NULL, argv, environ) != 0)
            pid[i] = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    for (int i = 0; i < n && i < MAXN; i++) {
        int status = -1;
        if (pid[i] > 0)
            waitpid(pid[i], &status, 0);
        int good = pid[i] > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!good) {
            char *msg = err[i][0] ? check_read_file(err[i], NULL) : NULL;
            fprintf(stderr, "ptxas -arch=sm_%d rejected the PTX of %s (kept in %s):\n%.2000s\n",
                    arch[i], what, path[i], msg ? msg : "(no message)");
            free(msg);
            ok = 0;
        } else {
            unlink(path[i]);
        }
        if (err[i][0])
            unlink(err[i]);
    }
    return ok;
}

static inline int ptx_assemble(const char *ptxas, const char *ptx, int arch, int opt,
                               const char *what) {
    return ptx_assemble_n(ptxas, 1, &ptx, &arch, opt, what);
}

/* Parses `src` and checks kernel `name` (NULL: the only one) with `bindings` (NULL for a
 * non-generic kernel), then plans it. */
static inline fusor_status ptx_build(arena *a, const char *src, const char *file, const char *name,
                                     const fe_binding *bindings, ir_kernel **k, ir_plan **plan) {
    fe_program *p;
    int index;
    fusor_status st = fe_parse(a, src, file, &p);
    if (!st)
        st = fe_find_kernel(p, name, &index);
    if (!st)
        st = fe_check(a, p, index, bindings, k);
    if (!st)
        st = ir_plan_build(*k, plan);
    return st;
}

/* The kernels named in a source ("kernel NAME(") in order; returns how many. */
static inline int ptx_kernel_names(const char *src, char names[][64], int max) {
    int n = 0;
    for (const char *p = strstr(src, "kernel "); p && n < max; p = strstr(p + 1, "kernel ")) {
        if (p != src && p[-1] != '\n' && p[-1] != ' ' && p[-1] != '\t')
            continue;
        const char *q = p + 7;
        size_t len = strcspn(q, "( \t\n");
        if (len == 0 || len >= 64 || q[len] != '(')
            continue;
        memcpy(names[n], q, len);
        names[n][len] = 0;
        n++;
    }
    return n;
}

/* Compiles with the path `path` for each of sm_<archs[i]> and, when ptxas is known,
 * assembles each PTX for its arch (side by side); reports what failed.  Returns 1 on
 * success. */
static inline int ptx_check_archs(const char *ptxas, const ir_kernel *k, const ir_plan *plan,
                                  fusor_gpu_path path, int n, const int *archs, int opt,
                                  const char *what) {
    cg_gpu_code *c[4] = {0};
    const char *text[4];
    int ok = 1;
    for (int i = 0; i < n && i < 4 && ok; i++) {
        fusor_gpu_options o = {.path = path, .arch = archs[i]};
        fusor_status st = cg_gpu_compile(k, plan, &o, &c[i]);
        if (st) {
            fprintf(stderr, "%s: %s compile for sm_%d failed: %s: %.3000s\n", what,
                    path == FUSOR_GPU_PATH_NVRTC ? "NVRTC" : "NVPTX", archs[i],
                    fusor_status_name(st), fusor_last_error());
            ok = 0;
        } else if (c[i]->path != path || c[i]->arch != archs[i]) {
            fprintf(stderr, "%s: made by path %d for sm_%d, not %d for sm_%d\n", what,
                    (int)c[i]->path, c[i]->arch, (int)path, archs[i]);
            ok = 0;
        } else {
            text[i] = c[i]->ptx;
        }
    }
    if (ok && ptxas)
        ok = ptx_assemble_n(ptxas, n, text, archs, opt, what);
    for (int i = 0; i < n && i < 4; i++)
        cg_gpu_code_free(c[i]);
    return ok;
}

static inline int ptx_check_kernel(const char *ptxas, const ir_kernel *k, const ir_plan *plan,
                                   fusor_gpu_path path, int arch, int opt, const char *what) {
    return ptx_check_archs(ptxas, k, plan, path, 1, &arch, opt, what);
}

#endif
