/*
 * test_pool.c — the host thread pool: each team member runs exactly once with the real
 * team size, binding is one distinct core per member and leaves the caller's mask as it
 * was, the thread count settings, FUSOR_NUM_THREADS, and cgroup quota parsing on files
 * this test writes.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"
#include "pool.h"

static char tmpdir[] = "/tmp/fusor_test_pool_XXXXXX";
static cpu_set_t initial_mask; /* the main thread's, before any launch */

static const char *tmp(const char *name) {
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void put(const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp(name));
    for (char *p = path + strlen(tmpdir) + 1; *p; p++) /* make the parent folders */
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0700);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------ the default, from the outside */

/* Physical cores (distinct package/core id pairs) among the CPUs this process may use,
 * read from sysfs rather than hwloc. */
static int sysfs_cores_in_mask(void) {
    cpu_set_t set = initial_mask;
    long seen[CPU_SETSIZE];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        char path[128];
        long pkg = 0, core = c;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 c);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld", &core) != 1) core = c;
            fclose(f);
        }
        long key = pkg << 20 | core;
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= seen[i] == key;
        if (!dup) seen[n++] = key;
    }
    return n;
}

static int expected_default(void) {
    int cores = sysfs_cores_in_mask();
    int quota = host_cgroup_cpus("/proc/self/cgroup", "/sys/fs/cgroup");
    return quota > 0 && quota < cores ? quota : cores;
}

/* Runs the pool's first use in a child with FUSOR_NUM_THREADS set to `env` (NULL: unset)
 * and returns the child's default thread count, or -1 when describe disagrees. */
static int default_in_child(const char *env) {
    pid_t pid = fork();
    if (pid == 0) {
        if (env)
            setenv("FUSOR_NUM_THREADS", env, 1);
        else
            unsetenv("FUSOR_NUM_THREADS");
        int n = fusor_default_num_threads();
        char *text = host_describe();
        char want[64];
        snprintf(want, sizeof want, "default threads: %d (", n);
        int ok = text && strstr(text, want) && fusor_get_num_threads() == n;
        if (host_parse_num_threads(env)) ok = ok && strstr(text, "(FUSOR_NUM_THREADS=");
        fu_free(text);
        _exit(ok ? n : 255);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    return code == 255 ? -1 : code;
}

static void test_default_and_environment_override(void) {
    int hw = expected_default();
    CHECK_MSG(default_in_child(NULL) == hw, "default %d, expected %d", default_in_child(NULL), hw);
    CHECK(default_in_child("3") == 3);
    CHECK(default_in_child(" 7\n") == 7);
    CHECK(default_in_child("abc") == hw);
    CHECK(default_in_child("0") == hw);
    CHECK(default_in_child("-4") == hw);
    CHECK(default_in_child("") == hw);
    CHECK(default_in_child("2000") == hw);
}

static void test_parse_num_threads(void) {
    static const struct {
        const char *text;
        int n;
    } cases[] = {{"1", 1},       {"16", 16}, {" 4", 4},   {"4 ", 4},
                 {"1024", 1024}, {"0", 0},   {"-2", 0},   {"abc", 0},
                 {"4x", 0},      {"", 0},    {"1025", 0}, {"99999999999999999999", 0},
                 {"2.5", 0},     {"+3", 0},  {"0x10", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(host_parse_num_threads(cases[i].text) == cases[i].n, "\"%s\"", cases[i].text);
    CHECK(host_parse_num_threads(NULL) == 0);
}

/* --------------------------------------------------------------- cgroups */

static void test_cgroup_files(void) {
    static const struct {
        const char *text;
        int cpus;
    } v2[] = {{"max 100000\n", 0},    {"200000 100000\n", 2},
              {"150000 100000\n", 2}, {"50000 100000\n", 1},
              {"100000 100000", 1},   {"max\n", 0},
              {"garbage\n", 0},       {"", 0},
              {"0 100000\n", 0},      {"100000 0\n", 0},
              {"-5 100000\n", 0},     {"100000\n", 0},
              {"250000 50000\n", 5},  {"99999999999999999999 1\n", 0}};
    for (size_t i = 0; i < sizeof v2 / sizeof v2[0]; i++) {
        put("cpu.max", v2[i].text);
        CHECK_MSG(host_cgroup_v2_cpus(tmp("cpu.max")) == v2[i].cpus, "cpu.max \"%s\"", v2[i].text);
    }
    CHECK(host_cgroup_v2_cpus(tmp("missing")) == 0);
    static const struct {
        const char *quota, *period;
        int cpus;
    } v1[] = {{"-1\n", "100000\n", 0},    {"150000\n", "100000\n", 2}, {"400000\n", "100000\n", 4},
              {"50000\n", "100000\n", 1}, {"x\n", "100000\n", 0},      {"100000\n", "0\n", 0}};
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
        put("q", v1[i].quota);
        put("p", v1[i].period);
        CHECK_MSG(host_cgroup_v1_cpus(tmp("q"), tmp("p")) == v1[i].cpus, "quota %s", v1[i].quota);
    }
    CHECK(host_cgroup_v1_cpus(tmp("q"), tmp("missing")) == 0);
}

static void test_cgroup_hierarchies(void) {
    char root[1024];
    /* v2: the smallest limit on the way up from the process's cgroup. */
    put("v2/cpu.max", "max 100000\n");
    put("v2/a/cpu.max", "250000 100000\n");
    put("v2/a/b/cpu.max", "max 100000\n");
    put("proc_v2", "0::/a/b\n");
    snprintf(root, sizeof root, "%s", tmp("v2"));
    CHECK(host_cgroup_cpus(tmp("proc_v2"), root) == 3);
    put("v2/a/b/cpu.max", "100000 100000\n");
    CHECK(host_cgroup_cpus(tmp("proc_v2"), root) == 1);
    /* A path from another cgroup namespace: only the root's own file counts. */
    put("proc_v2_ns", "0::/elsewhere/deep\n");
    put("v2/cpu.max", "300000 100000\n");
    CHECK(host_cgroup_cpus(tmp("proc_v2_ns"), root) == 3);
    put("proc_v2_root", "0::/\n");
    CHECK(host_cgroup_cpus(tmp("proc_v2_root"), root) == 3);
    /* No /proc/self/cgroup: the root's cpu.max. */
    CHECK(host_cgroup_cpus(tmp("no_such_file"), root) == 3);

    /* v1 (and hybrid: the cpu controller is in v1 even beside a "0::" line). */
    put("v1/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put("v1/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put("v1/cpu,cpuacct/x/cpu.cfs_quota_us", "150000\n");
    put("v1/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
    put("proc_v1", "12:memory:/y\n3:cpu,cpuacct:/x\n0::/z\n1:name=systemd:/x\n");
    snprintf(root, sizeof root, "%s", tmp("v1"));
    CHECK(host_cgroup_cpus(tmp("proc_v1"), root) == 2);
    put("proc_v1_root", "3:cpu,cpuacct:/\n");
    CHECK(host_cgroup_cpus(tmp("proc_v1_root"), root) == 0);
    /* Mounted as plain "cpu" although /proc names "cpu,cpuacct" (a symlinked layout). */
    put("v1b/cpu/x/cpu.cfs_quota_us", "50000\n");
    put("v1b/cpu/x/cpu.cfs_period_us", "100000\n");
    snprintf(root, sizeof root, "%s", tmp("v1b"));
    CHECK(host_cgroup_cpus(tmp("proc_v1"), root) == 1);
}

/* ------------------------------------------------------------- the team */

enum { MAX_T = 64 };

typedef struct team_record {
    atomic_int runs[MAX_T];
    atomic_int calls;
    atomic_int bad; /* a call with tid out of range or a team size unlike the others */
    atomic_int size;
    pthread_t thread[MAX_T];
    cpu_set_t mask[MAX_T];
} team_record;

static void record(void *ctx, int tid, int nthreads) {
    team_record *r = ctx;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&r->size, &expect, nthreads) && expect != nthreads)
        atomic_fetch_add(&r->bad, 1);
    if (tid < 0 || tid >= nthreads || tid >= MAX_T) {
        atomic_fetch_add(&r->bad, 1);
        return;
    }
    atomic_fetch_add(&r->runs[tid], 1);
    atomic_fetch_add(&r->calls, 1);
    r->thread[tid] = pthread_self();
    sched_getaffinity(0, sizeof r->mask[tid], &r->mask[tid]);
}

/* Each of the team's members ran exactly once; returns the team size. */
static int check_team(team_record *r, int asked) {
    int n = atomic_load(&r->size);
    CHECK_MSG(atomic_load(&r->bad) == 0, "asked %d: inconsistent calls", asked);
    CHECK_MSG(atomic_load(&r->calls) == n, "asked %d: %d calls for %d threads", asked,
              atomic_load(&r->calls), n);
    for (int t = 0; t < n && t < MAX_T; t++)
        CHECK_MSG(atomic_load(&r->runs[t]) == 1, "asked %d: tid %d ran %d times", asked, t,
                  atomic_load(&r->runs[t]));
    return n;
}

static void test_each_tid_runs_once(void) {
    int sizes[] = {1, 2, 3, 2, 5, 1, 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        team_record r;
        memset(&r, 0, sizeof r);
        host_parallel(sizes[i], record, &r);
        CHECK_MSG(check_team(&r, sizes[i]) == sizes[i], "asked %d", sizes[i]);
        if (sizes[i] == 1) CHECK(pthread_equal(r.thread[0], pthread_self()));
    }
    /* 0 means the current setting. */
    CHECK_OK(fusor_set_num_threads(3));
    team_record r;
    memset(&r, 0, sizeof r);
    host_parallel(0, record, &r);
    CHECK(check_team(&r, 0) == 3);
    CHECK_OK(fusor_set_num_threads(0));
}

/* Inside another parallel region OpenMP gives each inner team what it can (one thread
 * unless nesting is on): fn must be told the real size. */
static void launch_inner(void *ctx, int tid, int nthreads) {
    team_record *inner = ctx;
    if (nthreads == 2 && tid < 2) host_parallel(3, record, &inner[tid]);
}

static void test_nested_team_reports_real_size(void) {
    team_record inner[2];
    memset(inner, 0, sizeof inner);
    host_parallel(2, launch_inner, inner);
    for (int t = 0; t < 2; t++) {
        int n = check_team(&inner[t], 3);
        CHECK(n >= 1 && n <= 3);
    }
}

static void check_caller_mask_unchanged(const char *when) {
    cpu_set_t now;
    sched_getaffinity(0, sizeof now, &now);
    CHECK_MSG(CPU_EQUAL(&now, &initial_mask), "the caller's mask changed %s", when);
}

/* The caller (tid 0) is never rebound; every other member runs pinned to one core of the
 * process mask, no two members share a core, and none shares the caller's core at the
 * time of the launch. */
static void test_binding_is_compact_and_caller_mask_is_untouched(void) {
    check_caller_mask_unchanged("before the binding test");
    int cores = sysfs_cores_in_mask();
    for (int round = 0; round < 3; round++) {
        team_record r;
        memset(&r, 0, sizeof r);
        int cpu = sched_getcpu();
        host_parallel(2, record, &r);
        int size = check_team(&r, 2);
        check_caller_mask_unchanged("by a launch");
        CHECK_MSG(CPU_EQUAL(&r.mask[0], &initial_mask), "the caller was rebound for a launch");
        if (cores < 2 || size < 2) continue; /* one core: nothing to place */
        for (int t = 1; t < size; t++) {
            cpu_set_t outside;
            CPU_XOR(&outside, &r.mask[t], &initial_mask);
            CPU_AND(&outside, &outside, &r.mask[t]);
            CHECK_MSG(CPU_COUNT(&r.mask[t]) > 0 && CPU_COUNT(&outside) == 0,
                      "tid %d runs outside the process mask", t);
            CHECK_MSG(CPU_COUNT(&r.mask[t]) < CPU_COUNT(&initial_mask), "tid %d is not bound", t);
        }
        /* The caller may migrate after sched_getcpu; a core rarely changes in between. */
        if (cpu >= 0 && CPU_ISSET(cpu, &r.mask[1]) && sched_getcpu() == cpu)
            CHECK_MSG(0, "tid 1 was placed on the caller's core %d", cpu);
    }
}

static void test_thread_count_settings(void) {
    int def = fusor_default_num_threads();
    CHECK(def >= 1 && def == host_default_threads());
    CHECK(def == expected_default() || getenv("FUSOR_NUM_THREADS"));
    CHECK(fusor_get_num_threads() == def);
    CHECK_OK(fusor_set_num_threads(5));
    CHECK(fusor_get_num_threads() == 5 && host_get_threads() == 5);
    CHECK(fusor_default_num_threads() == def);
    fusor_status st = fusor_set_num_threads(-1);
    CHECK(st == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "fusor_set_num_threads: n is -1") != NULL);
    CHECK(fusor_set_num_threads(HOST_MAX_THREADS + 1) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_get_num_threads() == 5);
    CHECK_OK(fusor_set_num_threads(0));
    CHECK(fusor_get_num_threads() == def);
    char *text = host_describe();
    CHECK(text != NULL);
    if (!text) return;
    char want[64];
    snprintf(want, sizeof want, "default threads: %d (", def);
    CHECK_MSG(strstr(text, want) && strstr(text, "allowed CPUs: "), "%s", text);
    printf("%s", text);
    fu_free(text);
}

int main(void) {
    if (sched_getaffinity(0, sizeof initial_mask, &initial_mask) != 0) return 1;
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* First, while this process has not used the pool: children see a fresh first use. */
    test_default_and_environment_override();
    test_parse_num_threads();
    test_cgroup_files();
    test_cgroup_hierarchies();
    test_thread_count_settings();
    test_each_tid_runs_once();
    test_nested_team_reports_real_size();
    test_binding_is_compact_and_caller_mask_is_untouched();
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
