/*
 * test_bench_cli.c — `fusor bench`, `fusor info --bandwidth` and `fusor cache` as a user
 * runs them: the JSON and CSV outputs carry every documented field with sane values, the
 * plot is an SVG with one line per series, bad options are usage errors.  No timing is
 * judged here (timings belong to benchmarks, not tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Runs a shell command; returns its exit status and its stdout in out. */
static int run(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void test_json_points(void) {
    static char out[16384];
    CHECK(run(FUSOR_CLI " bench -e 'a * b + c' --size 1000,5000 --threads 1,2 --repeat 3 --json "
                        "--unfused -q",
              out, sizeof out) == 0);
    int lines = 0;
    const char *keys[] = {"n",
                          "threads",
                          "median_s",
                          "min_s",
                          "max_s",
                          "bytes",
                          "gbps",
                          "copy_bw_fraction",
                          "compile_cold_s",
                          "compile_cached_s",
                          "launch_overhead_s"};
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        CHECK_MSG(strstr(line, "\"kernel\": \"a * b + c\"") && strstr(line, "\"dtype\": \"f64\"") &&
                      strstr(line, "\"target\": \"cpu\""),
                  "%s", line);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK_MSG(field(line, keys[k]) > 0, "%s missing or not positive in %s", keys[k], line);
        double n = field(line, "n");
        CHECK(n == 1000 || n == 5000);
        CHECK(field(line, "bytes") == 32 * n); /* three f64 inputs and one output */
        CHECK(field(line, "min_s") <= field(line, "median_s") &&
              field(line, "median_s") <= field(line, "max_s"));
    }
    CHECK_MSG(lines == 8, "%d points, expected 2 sizes x 2 thread counts x fused/unfused", lines);
}

static void test_csv_and_plot(void) {
    static char out[8192];
    char svg[] = "/tmp/fusor-bench-XXXXXX";
    int fd = mkstemp(svg);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             FUSOR_CLI " bench " FUSOR_SOURCE_DIR "/kernels/std/finance.fu --kernel black_scholes "
                       "--sweep 1e3:5e3 --repeat 2 --csv -q --plot %s",
             svg);
    CHECK(run(cmd, out, sizeof out) == 0);
    static const char header[] =
        "kernel,mode,n,dtype,threads,target,median_s,min_s,max_s,runs,bytes,gbps,"
        "copy_bw_fraction,compile_cold_s,compile_cached_s,launch_overhead_s\n";
    CHECK(strncmp(out, header, sizeof header - 1) == 0);
    CHECK(strstr(out, "black_scholes,fused,1000,f64,") &&
          strstr(out, "black_scholes,fused,2000,") && strstr(out, "black_scholes,fused,5000,"));
    FILE *f = fopen(svg, "r");
    REQUIRE_VOID(f != NULL);
    static char text[65536];
    size_t got = fread(text, 1, sizeof text - 1, f);
    text[got] = 0;
    fclose(f);
    unlink(svg);
    CHECK(strstr(text, "<svg") && strstr(text, "</svg>") && strstr(text, "<polyline"));
    CHECK(strstr(text, "copy bandwidth") != NULL);
}

static void test_bandwidth_and_errors(void) {
    static char out[4096];
    CHECK(run(FUSOR_CLI " info --bandwidth", out, sizeof out) == 0);
    double gbps = 0;
    CHECK_MSG(sscanf(out, "copy bandwidth: %lf GB/s", &gbps) == 1 && gbps > 0.1, "%s", out);
    CHECK(run(FUSOR_CLI " bench -e 'a+1' --size 0 2>/dev/null", out, sizeof out) == 1);
    CHECK(run(FUSOR_CLI " bench -e 'a+1' --threads x 2>/dev/null", out, sizeof out) == 1);
    CHECK(run(FUSOR_CLI " bench 2>/dev/null", out, sizeof out) == 1);
    CHECK(run(FUSOR_CLI " bench -e 'a+' --size 10 2>/dev/null", out, sizeof out) == 2);
    CHECK(run(FUSOR_CLI " cache frobnicate 2>/dev/null", out, sizeof out) == 1);
    CHECK(run(FUSOR_CLI " cache dir", out, sizeof out) == 0 && strlen(out) > 1);
}

/* A stencil kernel takes arrays of its declared rank: --shape gives them. */
static void test_shape(void) {
    static char out[8192];
    FILE *f = fopen("bench_stencil.fu", "w");
    REQUIRE_VOID(f != NULL);
    fputs("kernel heat(u: f64[n, m] clamp, r: f64) -> (o: f64[]) {\n"
          "    o = u + r * (u[-1, 0] + u[1, 0] + u[0, -1] + u[0, 1] - 4.0 * u)\n}\n"
          "kernel norm(x: f64[n, m]) -> (y: f64[n, m]) {\n"
          "    y = x / sqrt(sum(x * x, axis=1, keepdims=true))\n}\n",
          f);
    fclose(f);
    CHECK(run(FUSOR_CLI " bench bench_stencil.fu --kernel heat --shape 64x48 --repeat 3 --json "
                        "-q",
              out, sizeof out) == 0);
    CHECK_MSG(field(out, "n") == 64 * 48, "%s", out);
    CHECK(field(out, "bytes") == 2.0 * 64 * 48 * 8); /* u in, o out */
    /* Stencils and axis reductions unfused as well: a fused and an unfused point each. */
    for (int k = 0; k < 2; k++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd,
                 FUSOR_CLI " bench bench_stencil.fu --kernel %s --shape 40x50 --repeat 2 "
                           "--unfused --json -q",
                 k ? "norm" : "heat");
        CHECK(run(cmd, out, sizeof out) == 0);
        CHECK_MSG(strstr(out, "\"mode\": \"fused\"") && strstr(out, "\"mode\": \"unfused\""), "%s",
                  out);
    }
    CHECK(run(FUSOR_CLI " bench bench_stencil.fu --kernel heat --size 1000 -q 2>&1", out,
              sizeof out) != 0);
    CHECK(run(FUSOR_CLI " bench bench_stencil.fu --kernel heat --shape 64x0 -q 2>&1", out,
              sizeof out) != 0);
    CHECK(strstr(out, "--shape") != NULL);
    CHECK(run(FUSOR_CLI " bench bench_stencil.fu --kernel heat --size 10 --shape 4x4 -q 2>&1", out,
              sizeof out) != 0);
    remove("bench_stencil.fu");
}

/* --target gpu keeps the arrays in GPU memory and measures against the device's own copy
 * bandwidth; run against the fake driver (no GPU here: only the control flow). */
static void test_gpu_target(void) {
    static char out[16384];
    CHECK(run("FUSOR_CUDA_LIBRARY=" FUSOR_FAKE_CUDA " " FUSOR_CLI
              " bench -e 'a * b + c' --target gpu --size 1000,5000 --repeat 3 -q",
              out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "arrays in GPU 0's memory") && strstr(out, "device-to-device copy"),
              "%s", out);
    CHECK(run("FUSOR_CUDA_LIBRARY=" FUSOR_FAKE_CUDA " " FUSOR_CLI
              " bench -e 'a * b' --target gpu --size 1000 --repeat 3 --json -q",
              out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "\"target\": \"gpu\"") && field(out, "copy_bw_fraction") > 0, "%s",
              out);
    /* The unfused launch runs on the host: a usage error before anything is timed. */
    CHECK(run("FUSOR_CUDA_LIBRARY=" FUSOR_FAKE_CUDA " " FUSOR_CLI
              " bench -e 'a * b' --target gpu --unfused --size 1000 -q 2>&1",
              out, sizeof out) == 1);
    CHECK_MSG(strstr(out, "--unfused runs on the CPU only") && !strstr(out, "GB/s"), "%s", out);
}

int main(void) {
    test_gpu_target();
    test_json_points();
    test_csv_and_plot();
    test_bandwidth_and_errors();
    test_shape();
    return check_done();
}
