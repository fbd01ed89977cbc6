/*
 * test_cuda_loader.c — the Driver API loader (scheduler/cuda.c) and device layer
 * (scheduler/device.c) against real libraries that are not drivers and against the fake
 * driver (fake_cuda.h): every state the loader can end in, with its message; how entry
 * points are resolved; the PTX ISA table and PTX fitting; module loading with the JIT's
 * logs and the per-device module cache; and the launch-shape rule.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "device.h"
#include "fake_cuda.h"
#include "fusor.h"
#include "gpu.h"

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static void check_state(sched_cuda_state want, const char *text) {
    const char *why;
    sched_cuda_state s = sched_cuda_state_get(&why);
    CHECK_MSG(s == want, "state %d, wanted %d (%s)", (int)s, (int)want, why);
    CHECK_MSG(contains(why, text), "reason '%s' lacks '%s'", why, text);
    /* The public view agrees: a status with the same reason. */
    fusor_status st = fusor_gpu_status();
    if (want == SCHED_CUDA_READY) {
        CHECK(st == FUSOR_OK);
    } else {
        CHECK(st == FUSOR_ERROR_NO_DEVICE);
        CHECK_MSG(contains(fusor_last_error(), text), "fusor_gpu_status says '%s'",
                  fusor_last_error());
        CHECK(fusor_gpu_count() == 0);
    }
}

/* Real libraries that are not a usable driver, through dlopen. */
static void test_no_driver(void) {
    setenv("FUSOR_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    sched_cuda_reload(NULL, NULL, NULL);
    check_state(SCHED_CUDA_NO_DRIVER, "no CUDA driver");
    check_state(SCHED_CUDA_NO_DRIVER, "/nonexistent/libcuda.so.1");
    char *info = NULL;
    CHECK_OK(fusor_runtime_info(&info));
    CHECK_MSG(contains(info, "CUDA driver: no CUDA driver"), "fusor info says:\n%s", info);
    fusor_free(info);
    /* Nothing that needs the GPU crashes: each says why. */
    fusor_array *a = NULL;
    int64_t n = 4;
    CHECK(fusor_array_create_on(NULL, FUSOR_MEMORY_DEVICE, 0, FUSOR_F32, 1, &n, &a) ==
          FUSOR_ERROR_NO_DEVICE);
    CHECK(contains(fusor_last_error(), "no CUDA driver"));
    CHECK(fusor_array_wrap_device(NULL, 4096, 0, FUSOR_F32, 1, &n, NULL, &a) ==
          FUSOR_ERROR_NO_DEVICE);
    fusor_memory_stats ms;
    CHECK(fusor_memory_stats_get(0, &ms) == FUSOR_ERROR_NO_DEVICE);
    CHECK_OK(fusor_memory_stats_get(FUSOR_PINNED_POOL, &ms));
    CHECK(ms.in_use == 0 && ms.allocations == 0);
    char *mem = NULL;
    CHECK_OK(fusor_memory_describe(&mem));
    CHECK(contains(mem, "GPU memory: none (no CUDA driver"));
    fusor_free(mem);

    /* The toolkit's stub is a library with every symbol that refuses to work. */
    const char *stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
    if (access(stub, R_OK) == 0) {
        setenv("FUSOR_CUDA_LIBRARY", stub, 1);
        sched_cuda_reload(NULL, NULL, NULL);
        check_state(SCHED_CUDA_STUB, "stub library");
    } else {
        printf("note: %s not found; the stub case is not checked\n", stub);
    }
    /* A library that is not a driver at all. */
    setenv("FUSOR_CUDA_LIBRARY", "libm.so.6", 1);
    sched_cuda_reload(NULL, NULL, NULL);
    check_state(SCHED_CUDA_MISSING_SYMBOL, "not a CUDA driver");
    unsetenv("FUSOR_CUDA_LIBRARY");

    setenv("FUSOR_CUDA", "0", 1);
    sched_cuda_reload(NULL, NULL, NULL);
    check_state(SCHED_CUDA_DISABLED, "FUSOR_CUDA=0");
    unsetenv("FUSOR_CUDA");
}

static void test_fake_states(void) {
    /* Healthy: CUDA 12.4 with cuGetProcAddress_v2, two devices. */
    fake_fresh();
    F.ndevices = 2;
    CHECK_OK(fake_load());
    check_state(SCHED_CUDA_READY, "CUDA driver 12.4");
    CHECK(sched_cuda_driver_version() == 12040);
    CHECK(fusor_gpu_count() == 2);
    int by_proc, by_dlsym, asked;
    sched_cuda_resolution(&by_proc, &by_dlsym, &asked);
    CHECK_MSG(by_proc >= 40 && by_dlsym == 0, "by_proc %d by_dlsym %d", by_proc, by_dlsym);
    CHECK(asked == SCHED_CUDA_ABI_VERSION && F.proc_version_asked == 12000);
    CHECK(sched_cuda_has_pools());
    char *info = NULL;
    CHECK_OK(fusor_runtime_info(&info));
    CHECK_MSG(contains(info, "PTX ISA up to 8.4") && contains(info, "Fake GPU 1") &&
                  contains(info, "sm_90"),
              "fusor info says:\n%s", info);
    fusor_free(info);
    sched_device *d;
    CHECK_OK(sched_device_get(1, &d));
    CHECK(d->cc_major == 9 && d->sms == 132 && !strcmp(d->name, "Fake GPU 1"));
    CHECK(sched_device_arch(d) == 90);
    CHECK(sched_device_get(2, &d) == FUSOR_ERROR_NO_DEVICE);
    CHECK(contains(fusor_last_error(), "no CUDA device 2"));

    /* A driver asked for its own version when it is older than the table's ABI. */
    fake_fresh();
    F.driver_version = 11040;
    F.has_proc_v2 = 0;
    F.has_proc_v1 = 1;
    CHECK_OK(fake_load());
    CHECK(F.proc_version_asked == 11040);

    /* No cuGetProcAddress at all (CUDA 11.2): versioned symbols by name. */
    fake_fresh();
    F.driver_version = 11020;
    F.has_proc_v2 = 0;
    CHECK_OK(fake_load());
    sched_cuda_resolution(&by_proc, &by_dlsym, &asked);
    CHECK(by_proc == 0 && by_dlsym >= 40 && asked == 0);
    CHECK(fake_was_looked_up("cuMemAlloc_v2") && fake_was_looked_up("cuStreamDestroy_v2") &&
          fake_was_looked_up("cuMemcpyHtoDAsync_v2"));

    /* Old driver. */
    fake_fresh();
    F.driver_version = 10020;
    CHECK(fake_load() == FUSOR_ERROR_NO_DEVICE);
    check_state(SCHED_CUDA_OLD_DRIVER, "CUDA 10.2) is too old: fusor needs CUDA 11.2");

    /* A required entry point missing from both lookups. */
    fake_fresh();
    F.missing[0] = "cuLaunchKernel";
    CHECK(fake_load() == FUSOR_ERROR_NO_DEVICE);
    check_state(SCHED_CUDA_MISSING_SYMBOL, "lacks the entry point cuLaunchKernel");

    /* Optional ones missing: the feature is off, the driver usable. */
    fake_fresh();
    F.missing[0] = "cuMemAllocFromPoolAsync";
    F.missing[1] = "cuOccupancyMaxPotentialBlockSize";
    CHECK_OK(fake_load());
    CHECK(!sched_cuda_has_pools());
    CHECK_OK(sched_device_get(0, &d));
    CHECK(d->pools == 0);

    /* cuInit failures and no device. */
    fake_fresh();
    F.init_result = 803;
    CHECK(fake_load() == FUSOR_ERROR_NO_DEVICE);
    check_state(SCHED_CUDA_INIT_FAILED, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH");
    fake_fresh();
    F.init_result = CUDRV_ERROR_NO_DEVICE;
    fake_load();
    check_state(SCHED_CUDA_NO_DEVICE, "sees no device");
    fake_fresh();
    F.ndevices = 0;
    fake_load();
    check_state(SCHED_CUDA_NO_DEVICE, "sees no device");
    fake_fresh();
    F.init_result = CUDRV_ERROR_STUB_LIBRARY;
    fake_load();
    check_state(SCHED_CUDA_STUB, "stub library");
    fake_fresh();
    F.version_result = CUDRV_ERROR_STUB_LIBRARY;
    fake_load();
    check_state(SCHED_CUDA_STUB, "stub library");
}

static void test_ptx_versions(void) {
    CHECK(sched_cuda_max_ptx(13000) == 90);
    CHECK(sched_cuda_max_ptx(13010) == 91);
    CHECK(sched_cuda_max_ptx(14000) == 91); /* newer than the table: its newest */
    CHECK(sched_cuda_max_ptx(12090) == 88);
    CHECK(sched_cuda_max_ptx(12080) == 87);
    CHECK(sched_cuda_max_ptx(12070) == 86);
    CHECK(sched_cuda_max_ptx(12060) == 85); /* 12.6 kept 8.5 */
    CHECK(sched_cuda_max_ptx(12040) == 84);
    CHECK(sched_cuda_max_ptx(12000) == 80);
    CHECK(sched_cuda_max_ptx(11080) == 78);
    CHECK(sched_cuda_max_ptx(11020) == 72);
    CHECK(sched_cuda_max_ptx(11000) == 70);
    CHECK(sched_cuda_max_ptx(10020) == 65);
    CHECK(sched_cuda_max_ptx(8000) == 0);

    const char *ptx = "//\n.version 9.0\n.target sm_90\n.address_size 64\n.entry k() { ret; }\n";
    char *fixed = NULL;
    CHECK_OK(sched_cuda_fit_ptx(ptx, 84, 78, &fixed));
    CHECK(fixed && !strcmp(fixed, "//\n.version 8.4\n.target sm_90\n.address_size 64\n.entry k() "
                                  "{ ret; }\n"));
    fusor_free(fixed);
    CHECK_OK(sched_cuda_fit_ptx(ptx, 90, 78, &fixed));
    CHECK(fixed == NULL);
    CHECK(sched_cuda_fit_ptx(ptx, 76, 78, &fixed) == FUSOR_ERROR_UNSUPPORTED);
    CHECK(contains(fusor_last_error(), "up to 7.6") && contains(fusor_last_error(), "needs 7.8"));
    CHECK(sched_cuda_fit_ptx("no version here", 84, 78, &fixed) == FUSOR_ERROR_INTERNAL);
}

static void test_modules(void) {
    fake_fresh();
    F.max_ptx = 84;
    CHECK_OK(fake_load());
    sched_device *d;
    CHECK_OK(sched_device_get(0, &d));
    CHECK_OK(sched_device_activate(d));
    CHECK(F.ctx_retained == 1);
    CHECK_OK(sched_device_activate(d)); /* retained once */
    CHECK(F.ctx_retained == 1);
    const char *good = ".version 7.8\n.target sm_90\n.visible .entry fusor_pass0_contig(\n.param "
                       ".u64 p)\n{ ret; }\n";
    sched_module *m = NULL, *m2 = NULL;
    CHECK_OK(sched_module_load(d, good, 78, &m));
    CHECK(m && contains(m->info_log, "fake JIT"));
    CHECK_OK(sched_module_load(d, good, 78, &m2));
    CHECK(m2 == m && F.module_loads == 1 && d->module_loads == 1);
    sched_function *f = NULL;
    CHECK_OK(sched_module_function(d, m, "fusor_pass0_contig", &f));
    CHECK(f && f->occ_block == 768 && f->occ_min_grid == 264 && f->max_block == 1024);
    CHECK(sched_module_function(d, m, "fusor_pass0", &f) == FUSOR_ERROR_INTERNAL);

    /* Newer PTX than the driver loads: lowered to the driver's newest. */
    const char *newer = ".version 9.0\n.target sm_90\n.visible .entry k()\n{ ret; }\n";
    CHECK_OK(sched_module_load(d, newer, 78, &m));
    CHECK(!strcmp(F.last_ptx_version, "8.4"));
    /* ... unless the target itself needs more. */
    F.max_ptx = 90;
    fake_fresh();
    F.driver_version = 11040; /* loads PTX ISA 7.4 */
    F.max_ptx = 74;
    CHECK_OK(fake_load());
    CHECK_OK(sched_device_get(0, &d));
    CHECK_OK(sched_device_activate(d));
    CHECK(sched_module_load(d, newer, 78, &m) == FUSOR_ERROR_UNSUPPORTED);
    CHECK(contains(fusor_last_error(), "update the driver"));

    /* The JIT's error log becomes the message. */
    fake_fresh();
    CHECK_OK(fake_load());
    CHECK_OK(sched_device_get(0, &d));
    CHECK_OK(sched_device_activate(d));
    const char *bad = ".version 7.8\n.target sm_90\nFAKE_BAD_PTX\n";
    CHECK(sched_module_load(d, bad, 78, &m) == FUSOR_ERROR_COMPILE);
    CHECK_MSG(contains(fusor_last_error(), "CUDA_ERROR_INVALID_PTX") &&
                  contains(fusor_last_error(), "syntax error at 'FAKE_BAD_PTX'") &&
                  contains(fusor_last_error(), "Fake GPU 0"),
              "%s", fusor_last_error());
    F.max_ptx = 70; /* the fake claims less than the driver table: its log says so */
    CHECK(sched_module_load(d, good, 70, &m) == FUSOR_ERROR_COMPILE);
    CHECK(contains(fusor_last_error(), "Unsupported .version 7.8"));
    /* Forgetting the driver unloads modules and releases contexts. */
    fake_fresh();
    CHECK_OK(fake_load());
    CHECK_OK(sched_device_get(0, &d));
    CHECK_OK(sched_device_activate(d));
    CHECK_OK(sched_module_load(d, good, 78, &m));
    CHECK(F.modules != NULL && F.ctx_retained == 1);
    sched_cuda_reload(fake_sym, &F, "again");
    CHECK(F.modules == NULL && F.ctx_retained == 0);
    fake_fresh();
}

static void test_shapes(void) {
    int b, g;
    /* Element-wise: the occupancy block, as many blocks as the elements need ... */
    sched_shape_choose(1000, 1, 0, 768, 264, 132, 1024, 0, 0, &b, &g);
    CHECK(b == 768 && g == 2);
    sched_shape_choose(100000000, 1, 0, 768, 264, 132, 1024, 0, 0, &b, &g);
    CHECK(b == 768 && g == 4 * 264); /* ... at most four waves (grid-stride) */
    sched_shape_choose(100000000, 4, 0, 0, 0, 80, 1024, 0, 0, &b, &g);
    CHECK(b == 256 && g == 32 * 80); /* no occupancy API */
    sched_shape_choose(4096, 4, 0, 256, 1000, 80, 1024, 0, 0, &b, &g);
    CHECK(b == 256 && g == 4); /* lanes per thread */
    sched_shape_choose(0, 1, 0, 256, 264, 132, 1024, 0, 0, &b, &g);
    CHECK(g == 1);
    sched_shape_choose(1000, 1, 0, 1000, 264, 132, 512, 0, 0, &b, &g);
    CHECK(b == 512); /* the kernel's own limit */
    /* Reductions: block 256 and a grid from n alone, whatever the device says. */
    sched_shape_choose(1 << 20, 1, 1, 768, 264, 132, 1024, 0, 0, &b, &g);
    CHECK(b == 256 && g == 256);
    int b2, g2;
    sched_shape_choose(1 << 20, 1, 1, 128, 16, 8, 1024, 0, 0, &b2, &g2);
    CHECK(b2 == b && g2 == g);
    sched_shape_choose((int64_t)1 << 34, 1, 1, 768, 264, 132, 1024, 0, 0, &b, &g);
    CHECK(g == 1024);
    /* Overrides win, rounded and clamped. */
    sched_shape_choose(1 << 20, 1, 1, 768, 264, 132, 1024, 100, 7, &b, &g);
    CHECK(b == 128 && g == 7);
    sched_shape_choose(1 << 20, 1, 0, 768, 264, 132, 1024, 4096, 0, &b, &g);
    CHECK(b == 1024);
}

int main(void) {
    setenv("FUSOR_CACHE", "0", 1); /* the JIT itself, not device binaries from the cache */
    test_ptx_versions();
    test_shapes();
    test_no_driver();
    test_fake_states();
    test_modules();
    /* Leave the process as it started: no driver from here on. */
    setenv("FUSOR_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    sched_cuda_reload(NULL, NULL, NULL);
    CHECK(F.ctx_retained == 0 && F.pools_live == 0);
    fake_reset();
    return check_done();
}
