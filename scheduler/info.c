/*
 * info.c — what `fusor info` reports: versions, the host CPU, the topology and thread
 * defaults, the CUDA driver as its loader (cuda.c) sees it, and whether NVRTC can be
 * opened (never a link-time dependency: both are opened with dlopen, and absence is a
 * reason, not an error).
 */
#include <dlfcn.h>
#include <stdio.h>

#include "alloc.h"
#include "codegen.h"
#include "cuda.h"
#include "error.h"
#include "pool.h"
#include "strbuf.h"

/* Tries each name; returns the one that opened, or NULL with dlerror's reason.
 * RTLD_NODELETE: libnvrtc's own C++ runtime allocates a pool when loaded and never frees
 * it, so unloading it again leaked 72 KB per probe (found by LeakSanitizer). */
static const char *probe_library(const char *const *names, const char **reason) {
    *reason = "not found";
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_LAZY | RTLD_LOCAL | RTLD_NODELETE);
        if (h) {
            dlclose(h);
            return names[i];
        }
        const char *e = dlerror();
        if (e) *reason = e;
    }
    return NULL;
}

fusor_status fusor_runtime_info(char **text) {
    if (!text) return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_runtime_info: NULL");
    *text = NULL;
    strbuf s = {0};
    sb_printf(&s, "fusor %s\n", fusor_version());
    char *cg = cg_host_describe();
    char *host = host_describe();
    sb_printf(&s, "%s\n", cg ? cg : "(LLVM description unavailable)");
    sb_printf(&s, "%s", host ? host : "(topology unavailable)\n");
    fu_free(cg);
    fu_free(host);

    static const char *const nvrtc_names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                                              "libnvrtc.so.11.2", NULL};
    const char *why;
    char *cuda = sched_cuda_describe(); /* the loader's own report (cuda.c) */
    sb_printf(&s, "%s", cuda ? cuda : "CUDA driver: (description unavailable)\n");
    fu_free(cuda);
    const char *nvrtc = probe_library(nvrtc_names, &why);
    if (nvrtc)
        sb_printf(&s, "NVRTC: %s found\n", nvrtc);
    else
        sb_printf(&s, "NVRTC: not available (%s)\n", why);
    *text = sb_take(&s);
    return *text ? FUSOR_OK : fu_oom("the runtime description");
}
