/*
 * test_cuda_cubin.c — the device binary (cubin) in the persistent cache, against the fake
 * driver: the first load has the driver's JIT linker make the binary from PTX and keeps
 * it on disk; after the driver is reloaded (as in a new process) the module is loaded
 * from that binary without linking; another device (compute capability) or driver
 * version does not find it; FUSOR_CACHE=0 and a driver without the linker load PTX.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "scheduler.h"

static const char *source = "kernel axpy(a: f64, x: f64[], y: f64[]) -> (z: f64[]) {\n"
                            "    z = a * x + y\n}\n";

static char *ptx;

/* Loads the kernel's PTX as a module on device 0 of a freshly loaded fake. */
static int load_module(int cc_major, int driver, sched_device **dev) {
    fake_fresh();
    F.cc_major = cc_major;
    F.driver_version = driver;
    if (fake_load() != FUSOR_OK)
        return 0;
    sched_device *d;
    sched_module *m;
    if (sched_device_get(0, &d) || sched_device_activate(d))
        return 0;
    if (sched_module_load(d, ptx, 80, &m) != FUSOR_OK)
        return 0;
    *dev = d;
    return 1;
}

int main(void) {
    char dir[] = "/tmp/fusor-cubin-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    setenv("FUSOR_CACHE_DIR", dir, 1);
    unsetenv("FUSOR_CACHE");
    fusor_context *ctx;
    fusor_kernel *k;
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE(fusor_kernel_compile(ctx, source, "axpy.fu", NULL, &k) == FUSOR_OK);
    REQUIRE(fusor_kernel_emit(k, FUSOR_EMIT_PTX, &ptx) == FUSOR_OK);

    sched_device *d = NULL;
    /* First: linked from PTX, loaded as a binary, kept. */
    REQUIRE(load_module(9, 12040, &d));
    CHECK(F.links == 1 && F.cubin_loads == 1 && F.module_loads == 1 && d->cubin_hits == 0);
    /* "A new process": the binary comes from disk, no linking. */
    REQUIRE(load_module(9, 12040, &d));
    CHECK_MSG(F.links == 0 && F.cubin_loads == 1 && d->cubin_hits == 1,
              "links %ld, cubin loads %ld, hits %ld", F.links, F.cubin_loads, d->cubin_hits);
    /* Another compute capability, or another driver: not the same binary. */
    REQUIRE(load_module(8, 12040, &d));
    CHECK(F.links == 1 && d->cubin_hits == 0);
    REQUIRE(load_module(9, 12080, &d));
    CHECK(F.links == 1 && d->cubin_hits == 0);
    /* The cache off: PTX straight to the JIT, nothing linked or loaded as a binary. */
    setenv("FUSOR_CACHE", "0", 1);
    REQUIRE(load_module(9, 12040, &d));
    CHECK(F.links == 0 && F.cubin_loads == 0 && F.module_loads == 1);
    unsetenv("FUSOR_CACHE");
    /* A driver without the linker entry points: PTX as before. */
    fake_fresh();
    F.missing[0] = "cuLinkCreate";
    F.cc_major = 7; /* a key with no entry yet */
    REQUIRE(fake_load() == FUSOR_OK);
    sched_module *m;
    REQUIRE(sched_device_get(0, &d) == FUSOR_OK && sched_device_activate(d) == FUSOR_OK);
    CHECK_OK(sched_module_load(d, ptx, 80, &m));
    CHECK(F.cubin_loads == 0 && F.module_loads == 1);

    fake_fresh();
    fusor_free(ptx);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
