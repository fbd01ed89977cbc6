/*
 * test_ptx_cli.c — `fusor compile --emit ptx|cuda` with --via, --arch and the float flags,
 * and what happens without NVRTC or without libdevice (set through FUSOR_NVRTC and
 * FUSOR_LIBDEVICE for the child process): a clear message, and AUTO falling back from
 * NVPTX to NVRTC when libdevice is missing.
 */
#include <sys/wait.h>

#include "test_ptx_util.h"

static char fu_path[] = "/tmp/fusor_cli_XXXXXX.fu";

/* Runs the CLI through the shell; returns its exit status, output in *out (caller frees). */
static int run(const char *env, const char *args, char **out) {
    char cmd[2048], outp[] = "/tmp/fusor_cli_out_XXXXXX";
    int fd = mkstemp(outp);
    if (fd < 0)
        return -1;
    close(fd);
    snprintf(cmd, sizeof cmd, "%s '%s' compile '%s' %s >'%s' 2>&1", env, FUSOR_CLI, fu_path, args,
             outp);
    int st = system(cmd);
    *out = check_read_file(outp, NULL);
    unlink(outp);
    if (!*out)
        *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    const char *ptxas = ptx_ptxas();
    int fd = mkstemps(fu_path, 3);
    REQUIRE(fd >= 0);
    const char *src = "kernel k(x: f32[], y: f32[]) -> (z: f32[], s: f64) {\n"
                      "    z = sin(x) / y\n"
                      "    s = sum(f64(z))\n"
                      "}\n";
    REQUIRE(write(fd, src, strlen(src)) == (ssize_t)strlen(src));
    close(fd);
    int nvrtc = cg_nvrtc_available() == FUSOR_OK;
    char *out;

    CHECK(run("", "--emit ptx", &out) == 0);
    CHECK(strstr(out, "LLVM NVPTX") && strstr(out, ".target sm_80") &&
          strstr(out, ".entry fusor_pass0_vec("));
    if (ptxas)
        CHECK(ptx_assemble(ptxas, out, 80, 0, "fusor compile --emit ptx"));
    free(out);

    CHECK(run("", "--emit ptx --via nvptx --arch sm_90 --ftz --approx-div --approx-sqrt", &out) ==
          0);
    CHECK(strstr(out, ".target sm_90") && strstr(out, "div.full.ftz.f32"));
    free(out);

    CHECK(run("", "--emit cuda --arch sm_86", &out) == 0);
    CHECK(strstr(out, "extern \"C\" __global__") && strstr(out, "sm_86"));
    free(out);

    if (nvrtc) {
        CHECK(run("", "--emit ptx --via nvrtc --arch sm_90", &out) == 0);
        CHECK(strstr(out, "NVVM") && strstr(out, ".target sm_90"));
        if (ptxas)
            CHECK(ptx_assemble(ptxas, out, 90, 0, "fusor compile --via nvrtc"));
        free(out);
        /* no libdevice: AUTO falls back to NVRTC; NVPTX alone says why it cannot */
        CHECK(run("FUSOR_LIBDEVICE=/nonexistent/libdevice.10.bc", "--emit ptx", &out) == 0);
        CHECK(strstr(out, "NVVM") != NULL);
        free(out);
    } else {
        printf("SKIP: the NVRTC runs (%s)\n", fusor_last_error());
    }
    CHECK(run("FUSOR_LIBDEVICE=/nonexistent/libdevice.10.bc", "--emit ptx --via nvptx", &out) == 1);
    CHECK_MSG(strstr(out, "libdevice") && strstr(out, "FUSOR_LIBDEVICE"), "%s", out);
    free(out);
    /* no NVRTC: a clear message, not a crash */
    CHECK(run("FUSOR_NVRTC=/nonexistent/libnvrtc.so", "--emit ptx --via nvrtc", &out) == 1);
    CHECK_MSG(strstr(out, "NVRTC is not available") != NULL, "%s", out);
    free(out);

    /* bad options */
    CHECK(run("", "--emit ptx --arch sm_81", &out) == 1);
    CHECK(strstr(out, "unknown arch sm_81") != NULL);
    free(out);
    CHECK(run("", "--emit ptx --arch 80", &out) == 1);
    CHECK(strstr(out, "--arch") != NULL);
    free(out);
    CHECK(run("", "--emit ptx --via gcc", &out) == 1);
    CHECK(strstr(out, "nvptx or nvrtc") != NULL);
    free(out);
    CHECK(run("", "--emit sass", &out) == 1);
    CHECK(strstr(out, "ptx") != NULL);
    free(out);
    unlink(fu_path);
    return check_done();
}
