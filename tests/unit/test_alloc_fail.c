/*
 * test_alloc_fail.c — allocation failure, every allocation in turn.
 *
 * One "scenario" is a whole compile-and-launch through the public API: a context, a
 * two-pass kernel (a reduction, then element-wise work that needs it) compiled and
 * launched with an output fusor allocates, a ufunc specialised at launch, results read
 * back, everything destroyed.  For k = 0, 1, 2, ... the k-th allocation made through
 * common/alloc.h fails — once (later ones succeed) and then persistently (every later one
 * fails too) — until a run makes no allocation fail.  Each run must:
 *   - end in FUSOR_OK with exact results (a failure the library may tolerate), or in
 *     FUSOR_ERROR_OUT_OF_MEMORY with a message saying what was being allocated;
 *   - leave no block allocated (fu_alloc_live() is back where it started), and under
 *     ASan, LeakSanitizer checks the same at exit, LLVM's own memory included.
 * LLVM, hwloc and the OpenMP runtime allocate for themselves and are not injected.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"

enum { N = 1000 };

static const char *const source = "kernel center(x: f64[], s: f64) -> (y: f64[], total: f64) {\n"
                                  "    total = sum(x)\n"
                                  "    y = (x - total / 1000) * s\n"
                                  "}\n";

typedef struct outcome {
    fusor_status st;
    const char *where;
    char message[512];
    int wrong; /* a successful run with a wrong result */
} outcome;

#define STEP(call, name)                                                                           \
    do {                                                                                           \
        if (o->st == FUSOR_OK && (o->st = (call)) != FUSOR_OK) {                                   \
            o->where = name;                                                                       \
            snprintf(o->message, sizeof o->message, "%s", fusor_last_error());                     \
        }                                                                                          \
    } while (0)

static void scenario(outcome *o) {
    static double x[N], yref[N];
    double sum = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (double)(i % 13);
        sum += x[i];
    }
    for (int i = 0; i < N; i++)
        yref[i] = (x[i] - sum / 1000) * 0.5;
    memset(o, 0, sizeof *o);
    fusor_context *ctx = NULL;
    fusor_kernel *k = NULL, *u = NULL;
    fusor_args *a = NULL, *b = NULL;
    fusor_array *xa = NULL, *y = NULL, *out = NULL;
    int64_t n = N;
    double total = 0;
    /* -O1: the allocations fusor makes do not depend on the level; LLVM is faster at O1. */
    fusor_context_options copts = {.opt_level = 1};
    STEP(fusor_context_create(&copts, &ctx), "fusor_context_create");
    STEP(fusor_kernel_compile(ctx, source, "center.fu", NULL, &k), "fusor_kernel_compile");
    STEP(fusor_args_create(k, &a), "fusor_args_create");
    STEP(fusor_array_wrap(ctx, x, FUSOR_F64, 1, &n, NULL, &xa), "fusor_array_wrap");
    STEP(fusor_args_set_array(a, "x", xa), "fusor_args_set_array");
    STEP(fusor_args_set_f64(a, "s", 0.5), "fusor_args_set_f64");
    STEP(fusor_launch(k, a), "fusor_launch");
    STEP(fusor_args_get_array(a, "y", &y), "fusor_args_get_array");
    STEP(fusor_args_get_f64(a, "total", &total), "fusor_args_get_f64");
    STEP(fusor_ufunc_create(ctx, "a * 2 + b", &u), "fusor_ufunc_create");
    STEP(fusor_args_create(u, &b), "fusor_args_create (ufunc)");
    STEP(fusor_args_set_array(b, "a", xa), "fusor_args_set_array (ufunc)");
    STEP(fusor_args_set_literal(b, "b", "3"), "fusor_args_set_literal");
    STEP(fusor_launch(u, b), "fusor_launch (ufunc)");
    STEP(fusor_args_get_array(b, "out", &out), "fusor_args_get_array (ufunc)");
    if (o->st == FUSOR_OK) {
        const double *yd = fusor_array_data(y), *od = fusor_array_data(out);
        o->wrong = total != sum;
        for (int i = 0; i < N; i++)
            if (yd[i] != yref[i] || od[i] != x[i] * 2 + 3)
                o->wrong = 1;
    }
    fusor_array_destroy(out);
    fusor_array_destroy(y);
    fusor_array_destroy(xa);
    fusor_args_destroy(b);
    fusor_args_destroy(a);
    fusor_kernel_destroy(u);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
}

/* Fails the k-th allocation for every k in turn; returns how many runs were made. */
static long sweep(int once, long baseline, int *statuses_seen) {
    long k;
    for (k = 0;; k++) {
        if (once)
            fu_alloc_fail_once_after(k);
        else
            fu_alloc_fail_after(k);
        outcome o;
        scenario(&o);
        long failures = fu_alloc_failures();
        fu_alloc_fail_after(-1);
        long live = fu_alloc_live();
        CHECK_MSG(live == baseline, "%s k=%ld: %ld blocks leaked (failed in %s)",
                  once ? "once" : "persistent", k, live - baseline, o.where ? o.where : "nothing");
        if (o.st == FUSOR_OK) {
            CHECK_MSG(!o.wrong, "%s k=%ld: succeeded with a wrong result", once ? "once" : "from",
                      k);
        } else {
            statuses_seen[0]++;
            CHECK_MSG(o.st == FUSOR_ERROR_OUT_OF_MEMORY && strstr(o.message, "out of memory"),
                      "%s k=%ld: %s failed with %s: '%s'", once ? "once" : "persistent", k, o.where,
                      fusor_status_name(o.st), o.message);
            CHECK_MSG(failures > 0, "k=%ld: %s failed but no allocation was made to fail", k,
                      o.where);
        }
        if (failures == 0)
            break; /* k is past the scenario's last allocation */
        if (k > 100000) {
            CHECK_MSG(0, "the scenario never stops allocating");
            break;
        }
    }
    return k + 1;
}

int main(void) {
    setenv("FUSOR_CACHE", "0", 1); /* every run compiles: no kernel comes from disk */
    fusor_set_num_threads(1);
    /* Process-wide state (LLVM's target, the JIT, the topology) is set up once, here. */
    outcome o;
    scenario(&o);
    REQUIRE(o.st == FUSOR_OK && !o.wrong);
    long baseline = fu_alloc_live();

    int failed_runs[2] = {0, 0};
    long runs_once = sweep(1, baseline, &failed_runs[0]);
    long runs_from = sweep(0, baseline, &failed_runs[1]);
    printf("allocation failure: %ld runs failing one allocation (%d ended in out of memory), "
           "%ld failing from the k-th on (%d)\n",
           runs_once, failed_runs[0], runs_from, failed_runs[1]);
    CHECK(runs_once > 20 && failed_runs[0] > 0 && failed_runs[1] == runs_from - 1);
    return check_done();
}
