/*
 * pool.c — the CPU side of a launch: a team of one thread per physical core, placed
 * compactly with hwloc.
 *
 * The topology is loaded once, lazily, and never changes afterwards; the requested
 * thread count is an atomic that any thread may change between launches.
 *
 * Launches use fusor's own persistent pool: worker threads created on first need, each
 * pinned to one core for life, that spin (FUSOR_SPIN_US, default 200 µs) waiting for the
 * next job before they sleep on a futex.  Waking a sleeping thread costs ~100 µs on small
 * VMs, more than a whole launch of 1e5 elements; a spinning one starts in well under a
 * microsecond.  The calling thread is team member 0 and is never rebound (no system call
 * on the caller's path, and a user's thread is never left pinned): members 1.. go to the
 * cores other than the one the caller is running on, so no two members share a core.
 * The count may change between any two launches (a job names its team size).
 *
 *   caller: job = {fn, ctx, n, tid per worker}; gen++ (release); wake sleepers;
 *           fn(ctx, 0, n); wait until pending == 0
 *   worker: wait for gen to change (spin, then futex); if it has a tid, fn(ctx, tid, n);
 *           pending-- (release), waking the caller if it sleeps
 *
 * One launch uses the pool at a time (a mutex, tried, not waited for); a launch that finds
 * it busy (another thread launching, or a launch from inside a kernel's team) runs an
 * OpenMP team instead, bound as before: each OpenMP thread remembers (in a _Thread_local)
 * which core it is bound to and rebinds only when its place changes, and the caller's mask
 * is restored afterwards.
 */
#include "pool.h"

#include <errno.h>
#include <hwloc.h>
#include <linux/futex.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "strbuf.h"

typedef struct host_state {
    hwloc_topology_t topo;
    int topo_ok;
    hwloc_bitmap_t allowed; /* CPUs this process may run on */
    hwloc_bitmap_t *cores;  /* cpuset of each allowed core, within `allowed`, in order */
    int ncores;             /* allowed physical cores (0 when nothing can be bound) */
    int npackages, ncores_total, npus;
    int cgroup_limit; /* CPUs the cgroup quota allows, 0 for no limit */
    int hw_default;   /* cores in mask, capped by the quota, at least 1 */
    int env_threads;  /* FUSOR_NUM_THREADS, 0 when unset or invalid */
    char env_text[48];
    int env_set;
    int default_threads;
} host_state;

static host_state state;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static atomic_int requested_threads; /* 0: the default */

/* The core this thread is bound to, as an index into state.cores, or -1. */
static _Thread_local int bound_core = -1;

/* ---------------------------------------------------------- parsing helpers */

int host_parse_num_threads(const char *text) {
    if (!text) return 0;
    while (*text == ' ' || *text == '\t') text++;
    if (*text < '0' || *text > '9') return 0;
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n') end++;
    if (errno || *end || v < 1 || v > HOST_MAX_THREADS) return 0;
    return (int)v;
}

/* Reads up to n-1 bytes of a small file into buf; 0 on failure. */
static int read_small(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = 0;
    return got > 0;
}

/* A positive decimal integer filling a whole token of `s`; advances *s. */
static long long parse_positive(const char **s) {
    char *end;
    errno = 0;
    long long v = strtoll(*s, &end, 10);
    if (end == *s || errno || v <= 0 || (*end && *end != ' ' && *end != '\n')) return 0;
    *s = end;
    return v;
}

static int cpus_of_quota(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    long long cpus = quota / period + (quota % period != 0);
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

int host_cgroup_v2_cpus(const char *cpu_max_path) {
    char buf[128];
    if (!read_small(cpu_max_path, buf, sizeof buf)) return 0;
    const char *p = buf;
    if (!strncmp(p, "max", 3)) return 0;
    long long quota = parse_positive(&p);
    if (*p != ' ') return 0;
    p++;
    long long period = parse_positive(&p);
    return cpus_of_quota(quota, period);
}

int host_cgroup_v1_cpus(const char *quota_path, const char *period_path) {
    char q[64], per[64];
    if (!read_small(quota_path, q, sizeof q) || !read_small(period_path, per, sizeof per)) return 0;
    const char *pq = q, *pp = per;
    return cpus_of_quota(parse_positive(&pq), parse_positive(&pp)); /* "-1" reads as 0 */
}

/* ------------------------------------------------------------ cgroup paths */

static int min_limit(int a, int b) { return !a ? b : !b ? a : a < b ? a : b; }

static int limit_at(const char *dir, int v1) {
    char a[4096], b[4096];
    if (!v1) {
        if (snprintf(a, sizeof a, "%s/cpu.max", dir) >= (int)sizeof a) return 0;
        return host_cgroup_v2_cpus(a);
    }
    if (snprintf(a, sizeof a, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof a ||
        snprintf(b, sizeof b, "%s/cpu.cfs_period_us", dir) >= (int)sizeof b)
        return 0;
    return host_cgroup_v1_cpus(a, b);
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The smallest limit from base/rel up to base.  When base/rel does not exist (the cgroup
 * path belongs to another namespace), only base is read. */
static int walk_up(const char *base, const char *rel, int v1) {
    char dir[4096];
    size_t baselen = strlen(base);
    snprintf(dir, sizeof dir, "%s%s%s", base, rel[0] == '/' ? "" : "/", rel);
    size_t n = strlen(dir);
    while (n > baselen && dir[n - 1] == '/') dir[--n] = 0;
    if (!is_dir(dir)) return limit_at(base, v1);
    int limit = 0;
    for (;;) {
        limit = min_limit(limit, limit_at(dir, v1));
        char *slash = strrchr(dir + baselen, '/');
        if (!slash) break;
        *slash = 0;
    }
    return limit;
}

/* Whether the comma-separated controller list `ctrls` names the cpu controller. */
static int has_cpu_controller(const char *ctrls) {
    for (const char *p = ctrls; *p;) {
        size_t n = strcspn(p, ",");
        if (n == 3 && !strncmp(p, "cpu", 3)) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

int host_cgroup_cpus(const char *proc_cgroup, const char *root) {
    char text[8192], v2path[4096] = "", v1path[4096] = "", v1ctrls[256] = "";
    int have_v2 = 0, have_v1 = 0;
    if (read_small(proc_cgroup, text, sizeof text)) {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
            if (!c2) continue;
            *c2 = 0;
            if (c2 == c1 + 1 && !strncmp(line, "0:", 2)) {
                snprintf(v2path, sizeof v2path, "%s", c2 + 1);
                have_v2 = 1;
            } else if (has_cpu_controller(c1 + 1)) {
                snprintf(v1ctrls, sizeof v1ctrls, "%s", c1 + 1);
                snprintf(v1path, sizeof v1path, "%s", c2 + 1);
                have_v1 = 1;
            }
        }
    }
    if (have_v1) { /* on a hybrid system the cpu controller lives in v1 */
        const char *mounts[3] = {v1ctrls, "cpu", "cpu,cpuacct"};
        for (int i = 0; i < 3; i++) {
            char base[4096];
            snprintf(base, sizeof base, "%s/%s", root, mounts[i]);
            if (is_dir(base)) return walk_up(base, v1path, 1);
        }
        return 0;
    }
    if (have_v2) return walk_up(root, v2path, 0);
    char cpu_dir[4096];
    snprintf(cpu_dir, sizeof cpu_dir, "%s/cpu", root);
    return min_limit(limit_at(root, 0), limit_at(cpu_dir, 1));
}

/* ---------------------------------------------------------------- topology */

/* The CPUs of the process: hwloc's view of its binding, else sched_getaffinity. */
static void load_allowed(host_state *s) {
    s->allowed = hwloc_bitmap_alloc();
    if (!s->allowed) return;
    if (hwloc_get_cpubind(s->topo, s->allowed, HWLOC_CPUBIND_PROCESS) != 0) {
        cpu_set_t set;
        hwloc_bitmap_zero(s->allowed);
        if (sched_getaffinity(0, sizeof set, &set) == 0)
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &set)) hwloc_bitmap_set(s->allowed, (unsigned)c);
    }
    hwloc_bitmap_and(s->allowed, s->allowed, hwloc_topology_get_allowed_cpuset(s->topo));
}

/* The allowed cores, in topology order (compact placement), each as its allowed PUs.
 * Without core objects the PUs stand in for cores. */
static void load_cores(host_state *s) {
    hwloc_obj_type_t type =
        hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    int n = hwloc_get_nbobjs_by_type(s->topo, type);
    s->cores = n > 0 ? fu_calloc((size_t)n, sizeof *s->cores) : NULL;
    if (!s->cores) return;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(s->topo, type, (unsigned)i);
        if (!obj || !hwloc_bitmap_intersects(obj->cpuset, s->allowed)) continue;
        hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
        if (!set) continue;
        hwloc_bitmap_and(set, set, s->allowed);
        s->cores[s->ncores++] = set;
    }
}

static int affinity_cpu_count(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

static void load_topology(host_state *s) {
    if (hwloc_topology_init(&s->topo) != 0) return;
    if (hwloc_topology_load(s->topo) != 0) {
        hwloc_topology_destroy(s->topo);
        return;
    }
    s->topo_ok = 1;
    s->npackages = hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_PACKAGE);
    s->ncores_total = hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_CORE);
    s->npus = hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_PU);
    load_allowed(s);
    if (s->allowed) load_cores(s);
}

static void init_state(void) {
    host_state *s = &state;
    load_topology(s);
    int cores = s->ncores > 0 ? s->ncores : affinity_cpu_count();
    s->cgroup_limit = host_cgroup_cpus("/proc/self/cgroup", "/sys/fs/cgroup");
    s->hw_default = s->cgroup_limit > 0 && s->cgroup_limit < cores ? s->cgroup_limit : cores;
    if (s->hw_default < 1) s->hw_default = 1;
    const char *env = getenv("FUSOR_NUM_THREADS");
    s->env_set = env != NULL;
    if (env) snprintf(s->env_text, sizeof s->env_text, "%s", env);
    s->env_threads = host_parse_num_threads(env);
    s->default_threads = s->env_threads ? s->env_threads : s->hw_default;
}

static host_state *get_state(void) {
    pthread_once(&state_once, init_state);
    return &state;
}

/* ---------------------------------------------------------------- threads */

int host_default_threads(void) { return get_state()->default_threads; }

int host_get_threads(void) {
    int n = atomic_load_explicit(&requested_threads, memory_order_relaxed);
    return n > 0 ? n : host_default_threads();
}

fusor_status host_set_threads(int n) {
    if (n < 0 || n > HOST_MAX_THREADS)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT,
                        "fusor_set_num_threads: n is %d; it must be 0 (the default) to %d", n,
                        HOST_MAX_THREADS);
    atomic_store_explicit(&requested_threads, n, memory_order_relaxed);
    return FUSOR_OK;
}

fusor_status fusor_set_num_threads(int n) { return host_set_threads(n); }
int fusor_get_num_threads(void) { return host_get_threads(); }
int fusor_default_num_threads(void) { return host_default_threads(); }

/* Binds the calling thread to the core of team member `tid`, unless it already is.  A
 * failure (a container may forbid binding) is remembered too, so it costs one try. */
static void bind_to(const host_state *s, int tid) {
    int core = tid % s->ncores;
    if (bound_core == core) return;
    hwloc_set_cpubind(s->topo, s->cores[core], HWLOC_CPUBIND_THREAD);
    bound_core = core;
}

/* ---------------------------------------------------------------- the pool */

typedef void (*team_fn)(void *ctx, int tid, int nthreads);

typedef struct pool_worker {
    pthread_t thread;
    int started;
    /* (job generation << 32) | team member number: a worker runs a job only when the
     * generation is the one it woke for, so a slow worker never runs a job twice. */
    _Atomic uint64_t assign;
    unsigned start_gen; /* the generation before the worker's first job */
} pool_worker;

/* Workers are indexed round * ncores + core: worker w is pinned to core w % ncores. */
static struct {
    pthread_mutex_t busy; /* held by the launch using the pool */
    pthread_mutex_t grow; /* creating workers */
    pool_worker workers[HOST_MAX_THREADS];
    team_fn fn;
    void *ctx;
    int nthreads;
    atomic_uint gen;     /* a new job: futex word of sleeping workers */
    atomic_int sleepers; /* workers in (or entering) futex_wait on gen */
    atomic_int pending;  /* workers of this job not done: futex word of the caller */
    atomic_int caller_sleeps;
    atomic_long spin_ns; /* atomic: workers read it while the caller may set it */
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .grow = PTHREAD_MUTEX_INITIALIZER, .spin_ns = -1};

static long futex(void *word, int op, int val) {
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* FUSOR_SPIN_US: how long an idle worker (and a waiting caller) spins before sleeping. */
static long spin_ns(void) {
    if (pool.spin_ns < 0) {
        const char *e = getenv("FUSOR_SPIN_US");
        long us = 200;
        if (e && *e >= '0' && *e <= '9')
            us = strtol(e, NULL, 10);
        if (us > 1000000)
            us = 1000000;
        pool.spin_ns = us * 1000;
    }
    return pool.spin_ns;
}

static void *worker_main(void *arg) {
    int w = (int)(intptr_t)arg;
    const host_state *s = get_state();
    if (s->ncores > 0)
        hwloc_set_cpubind(s->topo, s->cores[w % s->ncores], HWLOC_CPUBIND_THREAD);
    unsigned seen = pool.workers[w].start_gen;
    /* Spin only after a job of one's own: a worker left out of the last team (its core is
     * the caller's, say, when a stream's worker thread launches from the other core) goes
     * back to sleep at once instead of taking turns on that core with the caller. */
    int warm = 1;
    for (;;) {
        unsigned g;
        long long until = 0;
        for (int i = 0; (g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen; i++) {
            if ((i & 63) == 0) {
                long long t = now_ns();
                if (!until)
                    until = t + (warm ? spin_ns() : 0);
                if (t >= until) {
                    atomic_fetch_add(&pool.sleepers, 1);
                    if (atomic_load(&pool.gen) == seen)
                        futex(&pool.gen, FUTEX_WAIT_PRIVATE, (int)seen);
                    atomic_fetch_sub(&pool.sleepers, 1);
                    until = 0;
                    continue;
                }
            }
            cpu_relax();
        }
        seen = g;
        uint64_t a = atomic_load_explicit(&pool.workers[w].assign, memory_order_acquire);
        warm = (unsigned)(a >> 32) == g;
        if (!warm)
            continue; /* not in this team */
        pool.fn(pool.ctx, (int)(uint32_t)a, pool.nthreads);
        if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.caller_sleeps))
            futex(&pool.pending, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

/* A child of fork() has none of the parent's workers. */
static void pool_after_fork(void) {
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.grow, NULL);
    for (int i = 0; i < HOST_MAX_THREADS; i++)
        pool.workers[i].started = 0;
    atomic_store(&pool.sleepers, 0);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Starts worker w unless it runs; 0 on failure. */
static int ensure_worker(int w) {
    if (pool.workers[w].started)
        return 1;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.grow);
    if (!pool.workers[w].started) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);
        atomic_store(&pool.workers[w].assign, 0);
        pool.workers[w].start_gen = atomic_load(&pool.gen); /* the busy lock is held */
        if (pthread_create(&pool.workers[w].thread, &attr, worker_main, (void *)(intptr_t)w) == 0) {
            pthread_detach(pool.workers[w].thread);
            pool.workers[w].started = 1;
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&pool.grow);
    return pool.workers[w].started;
}

/* The core the calling thread runs on now (an index into s->cores), or 0. */
static int caller_core(const host_state *s) {
    int cpu = sched_getcpu();
    for (int c = 0; cpu >= 0 && c < s->ncores; c++)
        if (hwloc_bitmap_isset(s->cores[c], (unsigned)cpu))
            return c;
    return 0;
}

/* Runs the team on the pool; 0 when the pool is busy or workers cannot be started. */
static int pool_run(const host_state *s, int nthreads, team_fn fn, void *ctx) {
    if (pthread_mutex_trylock(&pool.busy))
        return 0;
    int ncores = s->ncores > 0 ? s->ncores : 1;
    int home = s->ncores > 0 ? caller_core(s) : 0;
    int nw = 0;
    unsigned next = atomic_load(&pool.gen) + 1;
    if (!next)
        next = 1; /* generation 0 is what a new worker's assignment says */
    for (int t = 1; t < nthreads; t++) {
        /* member t takes the t-th core counting from the caller's, round t / ncores */
        int core = (home + t) % ncores, round = t / ncores;
        if (ncores == 1)
            round = t - 1;
        int w = round * ncores + core;
        if (w >= HOST_MAX_THREADS || !ensure_worker(w)) {
            for (int u = 1; u < t; u++) { /* take the assignments back */
                int wu = (u / ncores) * ncores + (home + u) % ncores;
                if (ncores == 1)
                    wu = u - 1;
                atomic_store(&pool.workers[wu].assign, 0);
            }
            pthread_mutex_unlock(&pool.busy);
            return 0;
        }
        atomic_store_explicit(&pool.workers[w].assign, (uint64_t)next << 32 | (unsigned)t,
                              memory_order_relaxed);
        nw++;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.nthreads = nthreads;
    atomic_store_explicit(&pool.pending, nw, memory_order_relaxed);
    atomic_store_explicit(&pool.gen, next, memory_order_seq_cst);
    if (atomic_load(&pool.sleepers))
        futex(&pool.gen, FUTEX_WAKE_PRIVATE, INT_MAX);
    fn(ctx, 0, nthreads);
    long long until = 0;
    for (int i = 0; atomic_load_explicit(&pool.pending, memory_order_acquire); i++) {
        if ((i & 63) == 0) {
            long long t = now_ns();
            if (!until)
                until = t + spin_ns();
            if (t >= until) {
                atomic_store(&pool.caller_sleeps, 1);
                int left = atomic_load(&pool.pending);
                if (left)
                    futex(&pool.pending, FUTEX_WAIT_PRIVATE, left);
                atomic_store(&pool.caller_sleeps, 0);
                continue;
            }
        }
        cpu_relax();
    }
    pthread_mutex_unlock(&pool.busy);
    return 1;
}

void host_parallel(int nthreads, void (*fn)(void *ctx, int tid, int nthreads), void *ctx) {
    if (nthreads <= 0) nthreads = host_get_threads();
    if (nthreads > HOST_MAX_THREADS) nthreads = HOST_MAX_THREADS;
    if (nthreads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    const host_state *s = get_state();
    if (omp_get_level() == 0 && pool_run(s, nthreads, fn, ctx))
        return;
    /* Inside someone else's parallel region the cores are theirs to place. */
    int bind = s->ncores > 0 && omp_get_level() == 0;
    cpu_set_t caller_mask;
    int restore = bind && sched_getaffinity(0, sizeof caller_mask, &caller_mask) == 0;
#pragma omp parallel num_threads(nthreads)
    {
        int tid = omp_get_thread_num(), n = omp_get_num_threads();
        if (n > 1 && (tid > 0 ? bind : restore)) bind_to(s, tid);
        fn(ctx, tid, n);
    }
    if (restore && bound_core >= 0) {
        sched_setaffinity(0, sizeof caller_mask, &caller_mask);
        bound_core = -1;
    }
}

/* ---------------------------------------------------------------- describe */

static const char *default_reason(const host_state *s, char *buf, size_t n) {
    int cores = s->ncores > 0 ? s->ncores : affinity_cpu_count();
    if (s->env_threads)
        snprintf(buf, n, "FUSOR_NUM_THREADS=%d", s->env_threads);
    else if (s->hw_default < cores)
        snprintf(buf, n, "the cgroup CPU quota allows %d of %d cores", s->cgroup_limit, cores);
    else if (s->ncores > 0)
        snprintf(buf, n, "physical cores in the affinity mask");
    else
        snprintf(buf, n, "CPUs in the affinity mask (no hwloc topology)");
    return buf;
}

char *host_describe(void) {
    const host_state *s = get_state();
    char cpus[512] = "?", reason[128];
    if (s->allowed) hwloc_bitmap_list_snprintf(cpus, sizeof cpus, s->allowed);
    unsigned v = hwloc_get_api_version();
    strbuf text = {0};
    sb_printf(&text,
             "hwloc (API %u.%u): packages %d, cores %d, PUs %d%s\n"
             "allowed CPUs: %s (%d cores)\n"
             "cgroup CPU quota: ",
             v >> 16, (v >> 8) & 0xff, s->npackages, s->ncores_total, s->npus,
             s->topo_ok ? "" : " (topology unavailable)", cpus, s->ncores);
    if (s->cgroup_limit)
        sb_printf(&text, "%d CPUs\n", s->cgroup_limit);
    else
        sb_printf(&text, "none\n");
    if (s->env_set)
        sb_printf(&text, "FUSOR_NUM_THREADS: \"%s\"%s\n", s->env_text,
                  s->env_threads ? "" : " (ignored: not an integer from 1 to 1024)");
    else
        sb_printf(&text, "FUSOR_NUM_THREADS: unset\n");
    sb_printf(&text, "default threads: %d (%s)\nthreads: %d\n", s->default_threads,
              default_reason(s, reason, sizeof reason), host_get_threads());
    return sb_take(&text);
}
