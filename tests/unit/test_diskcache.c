/*
 * test_diskcache.c — the persistent kernel cache, across real processes: a kernel
 * compiled by one process is loaded by the next without LLVM's optimisation; truncated,
 * flipped, wrong-version and foreign entries are ignored and rebuilt; processes racing to
 * compile the same kernel all succeed and leave one valid entry; FUSOR_CACHE=0 writes
 * nothing; `fusor cache` lists and clears.  Also here: the front cache (a compile of the
 * same source returns the same handle), unfused launches and the vector math accuracy.
 *
 * The child processes are this program run again (/proc/self/exe child MODE), so each
 * really is a new process; they report through their exit status.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "codegen.h"
#include "diskcache.h"
#include "error.h"
#include "gpu.h"
#include "fusor.h"
#include "scheduler.h"

static const char *source = "kernel three(a: f64, x: f64[], y: f64[]) -> (v: f64[], w: f64[]) {\n"
                            "    let u = a * x + y\n    v = sqrt(u * u + 1)\n    w = u - v\n}\n";

static char dir[256];

/* ------------------------------------------------------------------ the child */

enum { CHILD_FAIL = 1, CHILD_MISS = 10, CHILD_HIT = 20 };

/* A child's exit status: its results were wrong (bad), or its one kernel came from disk
 * (a hit skipped optimisation and code generation), or was compiled (a miss did both and
 * wrote the entry; plus the entries rejected on the way). */
static int child_verdict(int bad, const dc_counters *c, const cg_timing *t) {
    if (bad)
        return CHILD_FAIL;
    if (c->hits == 1 && c->rejected == 0 && t->opt_ms == 0 && t->codegen_ms == 0)
        return CHILD_HIT;
    if (c->hits == 0 && t->opt_ms > 0 && t->codegen_ms > 0)
        return CHILD_MISS + (int)c->rejected;
    return CHILD_FAIL;
}

/* Compiles and runs the kernel, checks its results, and says whether it came from disk. */
static int child_compile(void) {
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_args *a = NULL;
    if (fusor_context_create(NULL, &ctx) || fusor_kernel_compile(ctx, source, "three.fu", NULL, &k))
        return CHILD_FAIL;
    cg_timing t;
    cg_host_last_timing(&t);
    dc_counters c;
    dc_get_counters(&c);
    double x[64], y[64], v[64], w[64];
    for (int i = 0; i < 64; i++) {
        x[i] = i * 0.25 - 3;
        y[i] = 1.5 - i * 0.125;
        v[i] = w[i] = NAN;
    }
    int64_t n = 64;
    fusor_array *ax = NULL, *ay = NULL, *av = NULL, *aw = NULL;
    int bad = fusor_args_create(k, &a) || fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &ax) ||
              fusor_array_wrap(ctx, y, FUSOR_F64, 1, &n, NULL, &ay) ||
              fusor_array_wrap(ctx, v, FUSOR_F64, 1, &n, NULL, &av) ||
              fusor_array_wrap(ctx, w, FUSOR_F64, 1, &n, NULL, &aw) ||
              fusor_args_set_f64(a, "a", 0.5) || fusor_args_set_array(a, "x", ax) ||
              fusor_args_set_array(a, "y", ay) || fusor_args_set_array(a, "v", av) ||
              fusor_args_set_array(a, "w", aw) || fusor_launch(k, a);
    for (int i = 0; i < 64 && !bad; i++) {
        double u = 0.5 * x[i] + y[i], vv = sqrt(u * u + 1);
        bad = v[i] != vv || w[i] != u - vv;
    }
    /* Everything is released before the child exits, so LeakSanitizer has nothing to say. */
    fusor_args_destroy(a);
    fusor_array_destroy(ax);
    fusor_array_destroy(ay);
    fusor_array_destroy(av);
    fusor_array_destroy(aw);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    return child_verdict(bad, &c, &t);
}

/* A pass that only reduces a float max: its row functions with and without the zero tag
 * (codegen/emit.h) both come from disk, so a zero result still gets the last zero's sign
 * (+0 then -0 is -0: the pass runs again with the tag). */
static int child_minmax(void) {
    fusor_context *ctx;
    fusor_kernel *k;
    if (fusor_context_create(NULL, &ctx) ||
        fusor_kernel_compile(ctx,
                             "kernel mx(x: f64[]) -> (m: f64, p: f64) {\n"
                             "    m = max(x)\n    p = max(-x) }\n",
                             "mx.fu", NULL, &k))
        return CHILD_FAIL;
    cg_timing t;
    cg_host_last_timing(&t);
    dc_counters c;
    dc_get_counters(&c);
    static double x[10000];
    for (int i = 0; i < 10000; i++)
        x[i] = -1.0 - i % 5;
    x[3] = 0.0, x[9000] = -0.0;
    int64_t n = 10000;
    fusor_array *ax = NULL;
    fusor_args *a = NULL;
    double m = NAN, p = NAN;
    int bad = fusor_args_create(k, &a) || fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &ax) ||
              fusor_args_set_array(a, "x", ax) || fusor_launch(k, a) ||
              fusor_args_get_f64(a, "m", &m) || fusor_args_get_f64(a, "p", &p);
    bad = bad || m != 0 || !signbit(m) || p != 5.0;
    fusor_args_destroy(a);
    fusor_array_destroy(ax);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    return child_verdict(bad, &c, &t);
}

/* Compiles the kernel, then its PTX (the default NVPTX path), writes the PTX to
 * $FUSOR_TEST_PTX_OUT and says whether the PTX came from disk. */
static int child_ptx(void) {
    fusor_context *ctx;
    fusor_kernel *k;
    if (fusor_context_create(NULL, &ctx) || fusor_kernel_compile(ctx, source, "three.fu", NULL, &k))
        return CHILD_FAIL;
    dc_counters before, after;
    dc_get_counters(&before);
    char *ptx = NULL;
    fusor_status st = fusor_kernel_emit(k, FUSOR_EMIT_PTX, &ptx);
    dc_get_counters(&after);
    cg_timing t;
    cg_nvptx_last_timing(&t);
    const char *out = getenv("FUSOR_TEST_PTX_OUT");
    FILE *f = out ? fopen(out, "w") : NULL;
    int bad = st != FUSOR_OK || !ptx || !strstr(ptx, ".entry") || !f;
    if (f) {
        if (ptx)
            fputs(ptx, f);
        fclose(f);
    }
    fusor_free(ptx);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    if (bad)
        return CHILD_FAIL;
    if (after.hits == before.hits + 1 && after.writes == before.writes && t.total_ms == 0)
        return CHILD_HIT;
    if (after.hits == before.hits && after.writes == before.writes + 1 && t.total_ms > 0)
        return CHILD_MISS;
    return CHILD_FAIL;
}

/* A kernel with axis reductions: three stages (an outer-axis reduction with its map
 * kernel, an inner one, the store), each kept on disk, and each stage's PTX. */
static const char *axis_source =
    "kernel ax(x: f64[n, m]) -> (c: f64[], y: f64[]) {\n"
    "    c = sum(x, axis=0)\n    y = x / sum(x, axis=1, keepdims=true)\n}\n";

/* Compiles and runs it (and, with NVPTX, emits its PTX); CHILD_HIT when every piece came
 * from disk and nothing was written, CHILD_MISS when nothing came from disk. */
static int child_axis(void) {
    fusor_context *ctx;
    fusor_kernel *k;
    if (fusor_context_create(NULL, &ctx) || fusor_kernel_compile(ctx, axis_source, "ax.fu", NULL, &k))
        return CHILD_FAIL;
    char *ptx = NULL;
    if (cg_nvptx_available() && fusor_kernel_emit(k, FUSOR_EMIT_PTX, &ptx))
        return CHILD_FAIL;
    fusor_free(ptx);
    dc_counters c;
    dc_get_counters(&c);
    double x[6 * 20], cc[20], y[6 * 20];
    for (int i = 0; i < 6 * 20; i++)
        x[i] = 1 + i % 7;
    int64_t xs[2] = {6, 20}, cs[1] = {20};
    fusor_array *ax = NULL, *ac = NULL, *ay = NULL;
    fusor_args *a = NULL;
    int bad = fusor_args_create(k, &a) || fusor_array_wrap(ctx, x, FUSOR_F64, 2, xs, NULL, &ax) ||
              fusor_array_wrap(ctx, cc, FUSOR_F64, 1, cs, NULL, &ac) ||
              fusor_array_wrap(ctx, y, FUSOR_F64, 2, xs, NULL, &ay) ||
              fusor_args_set_array(a, "x", ax) || fusor_args_set_array(a, "c", ac) ||
              fusor_args_set_array(a, "y", ay) || fusor_launch(k, a);
    for (int j = 0; j < 20 && !bad; j++) {
        double s = 0;
        for (int i = 0; i < 6; i++)
            s += x[i * 20 + j];
        bad = cc[j] != s;
    }
    for (int i = 0; i < 6 && !bad; i++) {
        double s = 0;
        for (int j = 0; j < 20; j++)
            s += x[i * 20 + j];
        for (int j = 0; j < 20 && !bad; j++)
            bad = y[i * 20 + j] != x[i * 20 + j] / s;
    }
    fusor_args_destroy(a);
    fusor_array_destroy(ax);
    fusor_array_destroy(ac);
    fusor_array_destroy(ay);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    long pieces = 4 + (cg_nvptx_available() ? 3 : 0); /* host: 3 stages + 1 map; PTX: 3 */
    if (bad || c.rejected)
        return CHILD_FAIL;
    if (c.hits == pieces && c.writes == 0)
        return CHILD_HIT;
    if (c.hits == 0 && c.writes == pieces)
        return CHILD_MISS;
    fprintf(stderr, "child_axis: %ld hits, %ld writes, %ld pieces\n", c.hits, c.writes, pieces);
    return CHILD_FAIL;
}

/* ------------------------------------------------------------------ the parent */

static int run_child_mode(const char *mode, const char *extra_env) {
    pid_t pid = fork();
    if (pid == 0) {
        if (extra_env)
            putenv((char *)extra_env);
        execl("/proc/self/exe", "test_diskcache", mode, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_child(const char *extra_env) { return run_child_mode("child", extra_env); }

/* The entries (*.fkc) in the kernels directory; *temps counts leftover temporaries. */
static int count_entries(char *first, size_t n, int *temps) {
    char kdir[300];
    snprintf(kdir, sizeof kdir, "%s/kernels", dir);
    DIR *d = opendir(kdir);
    int count = 0;
    if (temps)
        *temps = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strstr(e->d_name, ".tmp.")) {
            if (temps)
                (*temps)++;
        } else if (strstr(e->d_name, ".fkc")) {
            if (first && !count)
                snprintf(first, n, "%s/%s", kdir, e->d_name);
            count++;
        }
    }
    closedir(d);
    return count;
}

static void clear_cache(void) {
    long removed = -1;
    CHECK_OK(fusor_cache_clear(&removed));
    CHECK(removed >= 0);
    CHECK(count_entries(NULL, 0, NULL) == 0);
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) ? -1 : (long)sb.st_size;
}

static void test_hit_in_a_new_process(void) {
    clear_cache();
    CHECK_MSG(run_child(NULL) == CHILD_MISS, "the first process compiles");
    CHECK(count_entries(NULL, 0, NULL) == 1);
    CHECK_MSG(run_child(NULL) == CHILD_HIT, "the second loads without optimising");
    CHECK_MSG(run_child("FUSOR_CACHE=0") == CHILD_MISS, "FUSOR_CACHE=0 compiles");
    CHECK_MSG(run_child_mode("child-minmax", NULL) == CHILD_MISS, "a max kernel compiles");
    CHECK_MSG(run_child_mode("child-minmax", NULL) == CHILD_HIT,
              "the next process loads it, with and without the zero tag");
}

/* The stages of a kernel with axis reductions (host code and PTX) are kept on disk too. */
static void test_stages_in_a_new_process(void) {
    clear_cache();
    CHECK_MSG(run_child_mode("child-axis", NULL) == CHILD_MISS, "the first process compiles");
    CHECK_MSG(run_child_mode("child-axis", NULL) == CHILD_HIT, "the second loads every stage");
}

/* PTX is kept on disk too: the second process loads it without running NVPTX, and gets
 * the same text.  A payload cut anywhere is refused by the parser, not crashed on. */
static void test_ptx_in_a_new_process(void) {
    if (!cg_nvptx_available()) {
        printf("SKIP ptx disk cache: this LLVM has no NVPTX back end\n");
        return;
    }
    clear_cache();
    char a[320], b[320], env_a[340], env_b[340];
    snprintf(a, sizeof a, "%s/first.ptx", dir);
    snprintf(b, sizeof b, "%s/second.ptx", dir);
    snprintf(env_a, sizeof env_a, "FUSOR_TEST_PTX_OUT=%s", a);
    snprintf(env_b, sizeof env_b, "FUSOR_TEST_PTX_OUT=%s", b);
    CHECK_MSG(run_child_mode("child-ptx", env_a) == CHILD_MISS, "the first process makes PTX");
    CHECK_MSG(run_child_mode("child-ptx", env_b) == CHILD_HIT, "the second loads it");
    char *pa = check_read_file(a, NULL), *pb = check_read_file(b, NULL);
    CHECK(pa && pb && !strcmp(pa, pb));
    free(pa);
    free(pb);

    fusor_context *ctx;
    fusor_kernel *k;
    REQUIRE_VOID(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    REQUIRE_VOID(fusor_kernel_compile(ctx, source, "three.fu", NULL, &k) == FUSOR_OK);
    const cg_gpu_code *code;
    REQUIRE_VOID(sched_gpu_code(k, &code) == FUSOR_OK);
    void *bytes;
    size_t n;
    REQUIRE_VOID(cg_gpu_code_serialize(code, &bytes, &n) == FUSOR_OK);
    cg_gpu_code *back = NULL;
    CHECK_OK(cg_gpu_code_deserialize(bytes, n, &back));
    CHECK(back && back->ptx_len == code->ptx_len && !strcmp(back->ptx, code->ptx) &&
          back->npasses == code->npasses && back->arch == code->arch &&
          back->path == code->path && back->has_finish == code->has_finish);
    cg_gpu_code_free(back);
    int refused = 0;
    for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 97) {
        back = NULL;
        refused += cg_gpu_code_deserialize(bytes, cut, &back) != FUSOR_OK && !back;
        cg_gpu_code_free(back);
    }
    int tried = 0;
    for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 97)
        tried++;
    CHECK_MSG(refused == tried, "%d of %d truncated payloads refused", refused, tried);
    fu_clear_error();
    fusor_free(bytes);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
}

static int has_entry(const char *key) {
    size_t n = 0;
    void *p = dc_load((const unsigned char *)key, strlen(key), &n);
    fu_free(p);
    return p != NULL;
}

/* The cache keeps to its size limit by removing the least recently used entries: a load
 * counts as a use; temporaries a crashed writer left behind go after an hour. */
static void test_trim_least_recently_used(void) {
    clear_cache();
    static unsigned char payload[10000];
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "trim-key-%d", i);
        dc_store((const unsigned char *)key, strlen(key), "t", payload, sizeof payload);
        usleep(2000); /* distinct use times */
    }
    CHECK(count_entries(NULL, 0, NULL) == 10);
    CHECK(has_entry("trim-key-0")); /* now the most recently used */
    long removed = -1;
    CHECK_OK(fusor_cache_trim(60000, &removed));
    /* 10 x ~10 KB > 60 KB: down to 45 KB, the oldest uses first. */
    CHECK_MSG(removed == 6, "removed %ld", removed);
    CHECK(has_entry("trim-key-0") && !has_entry("trim-key-1") && !has_entry("trim-key-6") &&
          has_entry("trim-key-7") && has_entry("trim-key-9"));
    CHECK_OK(fusor_cache_trim(60000, &removed));
    CHECK(removed == 0); /* within the limit: nothing */

    /* Every write applies the limit by itself. */
    setenv("FUSOR_CACHE_MAX_SIZE", "30K", 1);
    dc_store((const unsigned char *)"trim-key-10", 11, "t", payload, sizeof payload);
    CHECK_MSG(count_entries(NULL, 0, NULL) == 2, "%d entries", count_entries(NULL, 0, NULL));
    CHECK(has_entry("trim-key-10"));
    char *stats = NULL;
    CHECK_OK(fusor_cache_stats(&stats));
    CHECK(stats && strstr(stats, "limit 30720 bytes"));
    fusor_free(stats);
    unsetenv("FUSOR_CACHE_MAX_SIZE");

    /* A stale temporary goes, a fresh one (a writer at work) stays. */
    char stale[400], fresh[400];
    snprintf(stale, sizeof stale, "%s/kernels/00.fkc.tmp.1.1", dir);
    snprintf(fresh, sizeof fresh, "%s/kernels/00.fkc.tmp.1.2", dir);
    FILE *f = fopen(stale, "w"), *g = fopen(fresh, "w");
    CHECK(f && g);
    if (f) fclose(f);
    if (g) fclose(g);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 7200}, {.tv_sec = time(NULL) - 7200}};
    CHECK(utimensat(AT_FDCWD, stale, old, 0) == 0);
    CHECK_OK(fusor_cache_trim(0, &removed));
    CHECK(access(stale, F_OK) != 0 && access(fresh, F_OK) == 0);
    unlink(fresh);
}

typedef enum damage { TRUNCATE, FLIP_PAYLOAD, FLIP_KEY, WRONG_VERSION, EMPTY } damage;

static void damage_entry(const char *path, damage how) {
    FILE *f = fopen(path, "r+b");
    REQUIRE_VOID(f != NULL);
    long n = file_size(path);
    unsigned char b;
    switch (how) {
    case TRUNCATE: CHECK(truncate(path, n / 2) == 0); break;
    case EMPTY: CHECK(truncate(path, 0) == 0); break;
    case FLIP_PAYLOAD:
    case FLIP_KEY: {
        long at = how == FLIP_PAYLOAD ? n - 100 : 60; /* the object's end, the key's start */
        fseek(f, at, SEEK_SET);
        CHECK(fread(&b, 1, 1, f) == 1);
        b ^= 0x10;
        fseek(f, at, SEEK_SET);
        fwrite(&b, 1, 1, f);
        break;
    }
    case WRONG_VERSION: /* the format word follows the 8-byte magic */
        fseek(f, 8, SEEK_SET);
        b = 99;
        fwrite(&b, 1, 1, f);
        break;
    }
    fclose(f);
}

static void test_damaged_entries_are_rebuilt(void) {
    const char *names[] = {"truncated", "payload byte flipped", "key byte flipped",
                           "wrong format version", "empty"};
    for (int how = TRUNCATE; how <= EMPTY; how++) {
        clear_cache();
        CHECK(run_child(NULL) == CHILD_MISS);
        char path[1024];
        REQUIRE_VOID(count_entries(path, sizeof path, NULL) == 1);
        long good = file_size(path);
        damage_entry(path, (damage)how);
        int rc = run_child(NULL);
        /* rejected and recompiled (an empty or truncated file may also just fail to parse) */
        CHECK_MSG(rc == CHILD_MISS + 1, "%s: the child returned %d", names[how], rc);
        CHECK_MSG(file_size(path) == good, "%s: the entry was not rewritten", names[how]);
        CHECK_MSG(run_child(NULL) == CHILD_HIT, "%s: the rebuilt entry is not used", names[how]);
    }
}

/* An entry of another kernel under this kernel's file name is foreign: its key differs. */
static void test_foreign_entry_is_ignored(void) {
    clear_cache();
    CHECK(run_child(NULL) == CHILD_MISS);
    char path[1024];
    REQUIRE_VOID(count_entries(path, sizeof path, NULL) == 1);
    char *saved = NULL;
    if (asprintf(&saved, "%s/saved-entry", dir) < 0)
        return;
    CHECK(rename(path, saved) == 0);
    /* a different kernel's entry, written by this process */
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_context_options o = {.disk_cache = 1};
    CHECK_OK(fusor_context_create(&o, &ctx));
    CHECK_OK(fusor_kernel_compile(ctx, "kernel other(x: f64[]) -> (y: f64[]) { y = x * 3 }",
                                  "other.fu", NULL, &k));
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    char other[1024];
    REQUIRE_VOID(count_entries(other, sizeof other, NULL) == 1);
    CHECK(rename(other, path) == 0);
    CHECK_MSG(run_child(NULL) == CHILD_MISS + 1, "a foreign entry is rejected and rebuilt");
    CHECK(run_child(NULL) == CHILD_HIT);
    unlink(saved);
    free(saved);
}

static void test_racing_processes(void) {
    for (int round = 0; round < 2; round++) {
        clear_cache();
        enum { N = 4 };
        pid_t pids[N];
        for (int i = 0; i < N; i++) {
            pids[i] = fork();
            if (pids[i] == 0) {
                execl("/proc/self/exe", "test_diskcache", "child", (char *)NULL);
                _exit(127);
            }
        }
        for (int i = 0; i < N; i++) {
            int status = 0;
            waitpid(pids[i], &status, 0);
            int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            CHECK_MSG(rc == CHILD_MISS || rc == CHILD_HIT, "racer %d returned %d", i, rc);
        }
        int temps = 0;
        CHECK(count_entries(NULL, 0, &temps) == 1);
        CHECK_MSG(temps == 0, "%d temporary files left behind", temps);
        CHECK(run_child(NULL) == CHILD_HIT);
    }
}

static void test_cli_cache_commands(void) {
    clear_cache();
    CHECK(run_child(NULL) == CHILD_MISS);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "FUSOR_CACHE_DIR=%s %s cache list", dir, FUSOR_CLI);
    FILE *p = popen(cmd, "r");
    REQUIRE_VOID(p != NULL);
    char out[4096] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    CHECK(pclose(p) == 0);
    CHECK_MSG(strstr(out, "three") && strstr(out, ".fkc"), "cache list printed: %s", out);
    snprintf(cmd, sizeof cmd, "FUSOR_CACHE_DIR=%s %s cache clear >/dev/null", dir, FUSOR_CLI);
    CHECK(system(cmd) == 0);
    CHECK(count_entries(NULL, 0, NULL) == 0);
    char *stats = NULL;
    CHECK_OK(fusor_cache_stats(&stats));
    CHECK(stats && strstr(stats, dir) && strstr(stats, "entries: 0"));
    fusor_free(stats);
}

/* ------------------------------------------------------------------ in one process */

static void test_front_cache_returns_the_same_kernel(void) {
    fusor_context *ctx;
    fusor_context_options o = {.disk_cache = -1};
    CHECK_OK(fusor_context_create(&o, &ctx));
    fusor_kernel *k1, *k2, *k3, *u1, *u2;
    CHECK_OK(fusor_kernel_compile(ctx, source, "three.fu", NULL, &k1));
    long compiles = sched_compile_count(ctx);
    CHECK_OK(fusor_kernel_compile(ctx, source, "three.fu", NULL, &k2));
    CHECK(k1 == k2 && sched_compile_count(ctx) == compiles);
    CHECK_OK(fusor_kernel_compile(ctx, source, "other.fu", "three", &k3)); /* other names */
    CHECK(k3 != k1);
    fusor_kernel_destroy(k1);
    CHECK(strcmp(fusor_kernel_name(k2), "three") == 0); /* still alive: one reference left */
    fusor_kernel_destroy(k2);
    fusor_kernel_destroy(k3);
    CHECK_OK(fusor_ufunc_create(ctx, "a * 2 + b", &u1));
    CHECK_OK(fusor_ufunc_create(ctx, "a * 2 + b", &u2));
    CHECK(u1 == u2);
    fusor_kernel_destroy(u1);
    fusor_kernel_destroy(u2);
    CHECK_OK(fusor_ufunc_create(ctx, "a * 2 + b", &u1)); /* after the last destroy: anew */
    fusor_kernel_destroy(u1);
    fusor_context_destroy(ctx);
}

/* The unfused run gives the fused results (element-wise exactly; sums to rounding). */
static void test_unfused_matches_fused(void) {
    static const char *src =
        "kernel k(x: f64[], y: f64[], s: f64) -> (z: f64[], w: f64[], total: f64, m: f64) {\n"
        "    let e = exp(x - s)\n    z = e / sum(e)\n    w = where(x > y, x * y, y - s)\n"
        "    total = sum(x * y) / 2\n    m = max(y) }\n";
    fusor_context *ctx;
    fusor_kernel *k;
    CHECK_OK(fusor_context_create(NULL, &ctx));
    CHECK_OK(fusor_kernel_compile(ctx, src, "k.fu", NULL, &k));
    enum { N = 50000 };
    static double x[N], y[N], z1[N], z2[N], w1[N], w2[N];
    for (int i = 0; i < N; i++) {
        x[i] = sin(i * 0.01);
        y[i] = cos(i * 0.003);
    }
    int64_t n = N;
    double t1, t2, m1, m2;
    for (int unfused = 0; unfused < 2; unfused++) {
        fusor_args *a;
        fusor_array *ax, *ay, *az, *aw;
        CHECK_OK(fusor_args_create(k, &a));
        CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &ax));
        CHECK_OK(fusor_array_wrap(ctx, y, FUSOR_F64, 1, &n, NULL, &ay));
        CHECK_OK(fusor_array_wrap(ctx, unfused ? z2 : z1, FUSOR_F64, 1, &n, NULL, &az));
        CHECK_OK(fusor_array_wrap(ctx, unfused ? w2 : w1, FUSOR_F64, 1, &n, NULL, &aw));
        CHECK_OK(fusor_args_set_array(a, "x", ax));
        CHECK_OK(fusor_args_set_array(a, "y", ay));
        CHECK_OK(fusor_args_set_array(a, "z", az));
        CHECK_OK(fusor_args_set_array(a, "w", aw));
        CHECK_OK(fusor_args_set_f64(a, "s", 0.25));
        CHECK_OK(unfused ? fusor_launch_unfused(k, a) : fusor_launch(k, a));
        CHECK_OK(fusor_args_get_f64(a, "total", unfused ? &t2 : &t1));
        CHECK_OK(fusor_args_get_f64(a, "m", unfused ? &m2 : &m1));
        fusor_array_destroy(ax);
        fusor_array_destroy(ay);
        fusor_array_destroy(az);
        fusor_array_destroy(aw);
        fusor_args_destroy(a);
    }
    int same_w = 1, close_z = 1;
    for (int i = 0; i < N; i++) {
        same_w &= w1[i] == w2[i];
        close_z &= fabs(z1[i] - z2[i]) <= 1e-14 * fabs(z1[i]);
    }
    CHECK(same_w);
    CHECK(close_z);
    CHECK(fabs(t1 - t2) <= 1e-12 * fabs(t1));
    CHECK(m1 == m2);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
}

/* Distance in units in the last place between two doubles of the same sign. */
static double ulps(double a, double b) {
    if (a == b)
        return 0;
    double u = nextafter(fabs(b), INFINITY) - fabs(b);
    return fabs(a - b) / u;
}

/* The default math is SLEEF's 1-ulp functions (or the C library): within 1 ulp of the
 * correctly rounded value, so within 1.5 of glibc's libm (itself within 0.5 here);
 * FUSOR_MATH_FAST (libmvec) within 4 ulp. */
static void test_vector_math_accuracy(void) {
    const struct {
        fusor_math math;
        double limit;
    } modes[] = {{FUSOR_MATH_DEFAULT, 1.5}, {FUSOR_MATH_FAST, 4.5}, {FUSOR_MATH_SCALAR, 0}};
    enum { N = 20000 };
    static double x[N], out[N];
    for (int i = 0; i < N; i++)
        x[i] = -40 + 80.0 * i / N + 1e-7 * (i % 13);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        fusor_context *ctx;
        fusor_context_options o = {.math = modes[m].math, .disk_cache = -1};
        CHECK_OK(fusor_context_create(&o, &ctx));
        const char *exprs[] = {"sin(x)", "cos(x)", "exp(x / 8)", "log(abs(x) + 0.5)"};
        for (int e = 0; e < 4; e++) {
            fusor_kernel *k;
            fusor_args *a;
            fusor_array *ax, *ao;
            int64_t n = N;
            CHECK_OK(fusor_ufunc_create(ctx, exprs[e], &k));
            CHECK_OK(fusor_args_create(k, &a));
            CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &ax));
            CHECK_OK(fusor_array_wrap(ctx, out, FUSOR_F64, 1, &n, NULL, &ao));
            CHECK_OK(fusor_args_set_array(a, "x", ax));
            CHECK_OK(fusor_args_set_array(a, "out", ao));
            CHECK_OK(fusor_launch(k, a));
            double worst = 0;
            for (int i = 0; i < N; i++) {
                double ref = e == 0   ? sin(x[i])
                             : e == 1 ? cos(x[i])
                             : e == 2 ? exp(x[i] / 8)
                                      : log(fabs(x[i]) + 0.5);
                double d = ulps(out[i], ref);
                if (d > worst)
                    worst = d;
            }
            CHECK_MSG(worst <= modes[m].limit, "math %d: %s is %.2f ulp from libm",
                      (int)modes[m].math, exprs[e], worst);
            fusor_array_destroy(ax);
            fusor_array_destroy(ao);
            fusor_args_destroy(a);
            fusor_kernel_destroy(k);
        }
        fusor_context_destroy(ctx);
    }
}

int main(int argc, char **argv) {
    const char *env = getenv("FUSOR_CACHE_DIR");
    if (argc == 2 && !strcmp(argv[1], "child"))
        return child_compile();
    if (argc == 2 && !strcmp(argv[1], "child-ptx"))
        return child_ptx();
    if (argc == 2 && !strcmp(argv[1], "child-axis"))
        return child_axis();
    if (argc == 2 && !strcmp(argv[1], "child-minmax"))
        return child_minmax();
    /* Never the user's cache: a directory of our own, inherited by the children. */
    snprintf(dir, sizeof dir, "%s/fusor-test-cache-XXXXXX", env && *env ? env : "/tmp");
    if (env && *env)
        mkdir(env, 0755);
    REQUIRE(mkdtemp(dir) != NULL);
    setenv("FUSOR_CACHE_DIR", dir, 1);
    unsetenv("FUSOR_CACHE");
    test_hit_in_a_new_process();
    test_ptx_in_a_new_process();
    test_stages_in_a_new_process();
    test_trim_least_recently_used();
    test_damaged_entries_are_rebuilt();
    test_foreign_entry_is_ignored();
    test_racing_processes();
    test_cli_cache_commands();
    test_front_cache_returns_the_same_kernel();
    test_unfused_matches_fused();
    test_vector_math_accuracy();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
