/*
 * nvrtc.c — NVRTC, opened with dlopen into a table of function pointers (never a
 * link-time dependency), and compiling CUDA C to PTX with it.
 *
 * The library is looked for once per process: $FUSOR_NVRTC (a path) if set, else
 * libnvrtc.so, libnvrtc.so.13, .12, .11.2.  Only the nine entry points used are
 * resolved; a missing library or symbol is FUSOR_ERROR_UNSUPPORTED with the reason, and
 * a failed compilation is FUSOR_ERROR_COMPILE with NVRTC's log as the message.  NVRTC
 * needs no GPU and no driver.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "gpu.h"
#include "strbuf.h"

typedef int nvrtc_result; /* nvrtcResult; 0 is NVRTC_SUCCESS */
typedef struct nvrtc_program *nvrtc_program;

static struct {
    pthread_once_t once;
    void *lib;
    char name[256];
    char why[512];
    const char *(*get_error_string)(nvrtc_result);
    nvrtc_result (*version)(int *, int *);
    nvrtc_result (*create_program)(nvrtc_program *, const char *, const char *, int,
                                   const char *const *, const char *const *);
    nvrtc_result (*destroy_program)(nvrtc_program *);
    nvrtc_result (*compile_program)(nvrtc_program, int, const char *const *);
    nvrtc_result (*get_ptx_size)(nvrtc_program, size_t *);
    nvrtc_result (*get_ptx)(nvrtc_program, char *);
    nvrtc_result (*get_log_size)(nvrtc_program, size_t *);
    nvrtc_result (*get_log)(nvrtc_program, char *);
} rt = {.once = PTHREAD_ONCE_INIT};

static int resolve(const char *name, void **slot) {
    dlerror();
    *slot = dlsym(rt.lib, name);
    if (*slot)
        return 1;
    snprintf(rt.why, sizeof rt.why, "%s has no %s (too old an NVRTC?)", rt.name, name);
    return 0;
}

static void nvrtc_init(void) {
    static const char *const names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                                        "libnvrtc.so.11.2", NULL};
    const char *env = getenv("FUSOR_NVRTC");
    strbuf tried = {0};
    for (int i = 0; !rt.lib && (env && *env ? i < 1 : names[i] != NULL); i++) {
        const char *n = env && *env ? env : names[i];
        rt.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
        if (rt.lib) {
            snprintf(rt.name, sizeof rt.name, "%s", n);
        } else {
            const char *e = dlerror();
            sb_printf(&tried, "%s%s", tried.len ? "; " : "", e ? e : n);
        }
    }
    if (!rt.lib) {
        snprintf(rt.why, sizeof rt.why, "NVRTC is not available (%s)",
                 tried.p ? tried.p : "not found");
        sb_discard(&tried);
        return;
    }
    sb_discard(&tried);
    int ok = resolve("nvrtcGetErrorString", (void **)&rt.get_error_string) &&
             resolve("nvrtcVersion", (void **)&rt.version) &&
             resolve("nvrtcCreateProgram", (void **)&rt.create_program) &&
             resolve("nvrtcDestroyProgram", (void **)&rt.destroy_program) &&
             resolve("nvrtcCompileProgram", (void **)&rt.compile_program) &&
             resolve("nvrtcGetPTXSize", (void **)&rt.get_ptx_size) &&
             resolve("nvrtcGetPTX", (void **)&rt.get_ptx) &&
             resolve("nvrtcGetProgramLogSize", (void **)&rt.get_log_size) &&
             resolve("nvrtcGetProgramLog", (void **)&rt.get_log);
    if (!ok) {
        dlclose(rt.lib);
        rt.lib = NULL;
    }
}

fusor_status cg_nvrtc_available(void) {
    pthread_once(&rt.once, nvrtc_init);
    return rt.lib ? FUSOR_OK : fu_error(FUSOR_ERROR_UNSUPPORTED, "%s", rt.why);
}

char *cg_nvrtc_describe(void) {
    if (cg_nvrtc_available())
        return NULL;
    int major = 0, minor = 0;
    rt.version(&major, &minor);
    strbuf s = {0};
    sb_printf(&s, "NVRTC %d.%d (%s)", major, minor, rt.name);
    return sb_take(&s);
}

static const char *rt_error(nvrtc_result r) {
    const char *s = rt.get_error_string ? rt.get_error_string(r) : NULL;
    return s ? s : "unknown NVRTC error";
}

/* NVRTC's log, trimmed, or NULL. */
static char *program_log(nvrtc_program prog) {
    size_t n = 0;
    if (rt.get_log_size(prog, &n) || n <= 1)
        return NULL;
    char *log = fu_malloc(n + 1);
    if (!log || rt.get_log(prog, log)) {
        fu_free(log);
        return NULL;
    }
    log[n] = 0;
    size_t len = strlen(log);
    while (len && (log[len - 1] == '\n' || log[len - 1] == ' '))
        log[--len] = 0;
    return log;
}

fusor_status cg_nvrtc_ptx(const char *source, const char *name, const char *const *opts, int nopts,
                          char **ptx, size_t *len) {
    *ptx = NULL;
    *len = 0;
    fusor_status st = cg_nvrtc_available();
    if (st)
        return st;
    nvrtc_program prog = NULL;
    nvrtc_result r = rt.create_program(&prog, source, name, 0, NULL, NULL);
    if (r)
        return fu_error(FUSOR_ERROR_COMPILE, "NVRTC could not create a program: %s", rt_error(r));
    r = rt.compile_program(prog, nopts, opts);
    if (r) {
        char *log = program_log(prog);
        st = fu_error(FUSOR_ERROR_COMPILE, "NVRTC failed to compile %s (%s):\n%s", name,
                      rt_error(r), log ? log : "(no log)");
        fu_free(log);
        rt.destroy_program(&prog);
        return st;
    }
    size_t n = 0;
    r = rt.get_ptx_size(prog, &n);
    char *text = r ? NULL : fu_malloc(n + 1);
    if (!r && !text) {
        st = fu_oom("the PTX text");
    } else if (r || (r = rt.get_ptx(prog, text)) != 0) {
        st = fu_error(FUSOR_ERROR_COMPILE, "NVRTC gave no PTX for %s: %s", name, rt_error(r));
        fu_free(text);
        text = NULL;
    }
    rt.destroy_program(&prog);
    if (st)
        return st;
    text[n] = 0;
    *ptx = text;
    *len = strlen(text);
    return FUSOR_OK;
}
