/*
 * test_prepared.c — prepared launches: bind once, launch many times.
 *
 * A 1-D diffusion time loop (a stencil that reads neighbours, so it needs two buffers) is
 * run with fusor_prepare + fusor_prepared_swap and compared bit for bit with the same loop
 * written in C; the same loop queued on a stream with swaps between the queued launches
 * must give the same field.  No step may allocate: the allocator is set to fail every
 * allocation while the steps run.  Scalar updates, reductions, allocated outputs and the
 * errors (bad swaps, literal and generic scalars, a synchronous launch while queued ones
 * are pending) are checked too.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"

enum { N = 10007, STEPS = 60 };

static const char *const diffusion =
    "kernel step(u: f64[n] clamp, r: f64) -> (out: f64[], total: f64) {\n"
    "    out = u + r * (u[-1] - 2.0 * u + u[1])\n"
    "    total = sum(out)\n"
    "}\n";

static void reference(double *u, double *tmp, const double *rs, int steps) {
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < N; i++) {
            double l = u[i > 0 ? i - 1 : 0], c = u[i], r = u[i < N - 1 ? i + 1 : N - 1];
            tmp[i] = c + rs[s] * (l - 2.0 * c + r);
        }
        memcpy(u, tmp, sizeof(double) * N);
    }
}

static void init(double *u) {
    for (int i = 0; i < N; i++)
        u[i] = (double)((i * 7919) % 1000) / 10.0;
}

static double rate(int s) { return 0.1 + 0.3 * (double)(s % 5) / 5.0; }

typedef struct gate {
    atomic_int open;
} gate;

static void wait_gate(void *arg) {
    gate *g = arg;
    while (!atomic_load(&g->open)) {
    }
}

/* A sequence of two prepared kernels per step (a diffusion step u -> v, then a source term
 * added on the way back v -> u), run synchronously and queued, with the source's value
 * changed between steps, against the same loop in C, bit for bit. */
static void test_sequence(fusor_context *ctx) {
    enum { M = 5003, S = 30 };
    fusor_kernel *kd, *ks;
    REQUIRE_VOID(fusor_kernel_compile(ctx, diffusion, "diffusion.fu", NULL, &kd) == FUSOR_OK);
    REQUIRE_VOID(fusor_kernel_compile(ctx,
                                      "kernel src(v: f64[], q: f64) -> (w: f64[]) { w = v + q }",
                                      "src.fu", NULL, &ks) == FUSOR_OK);
    double *u = malloc(sizeof(double) * M), *v = malloc(sizeof(double) * M);
    double *ru = malloc(sizeof(double) * M), *rv = malloc(sizeof(double) * M);
    for (int queued = 0; queued < 2; queued++) {
        for (int i = 0; i < M; i++)
            ru[i] = u[i] = (double)((i * 31) % 97), v[i] = -1;
        for (int st = 0; st < S; st++) { /* C: v = diffuse(u); v += q; swap */
            for (int i = 0; i < M; i++) {
                double l = ru[i > 0 ? i - 1 : 0], c = ru[i], r = ru[i < M - 1 ? i + 1 : M - 1];
                rv[i] = c + 0.2 * (l - 2.0 * c + r);
            }
            for (int i = 0; i < M; i++)
                ru[i] = rv[i] + 0.001 * st;
        }
        int64_t shape[1] = {M};
        fusor_array *U, *V;
        CHECK_OK(fusor_array_wrap(ctx, u, FUSOR_F64, 1, shape, NULL, &U));
        CHECK_OK(fusor_array_wrap(ctx, v, FUSOR_F64, 1, shape, NULL, &V));
        fusor_args *ad, *as;
        CHECK_OK(fusor_args_create(kd, &ad));
        CHECK_OK(fusor_args_set_array(ad, "u", U));
        CHECK_OK(fusor_args_set_array(ad, "out", V));
        CHECK_OK(fusor_args_set_f64(ad, "r", 0.2));
        CHECK_OK(fusor_args_create(ks, &as));
        CHECK_OK(fusor_args_set_array(as, "v", V));
        CHECK_OK(fusor_args_set_array(as, "w", U));
        CHECK_OK(fusor_args_set_f64(as, "q", 0.0));
        fusor_prepared *pd, *ps;
        CHECK_OK(fusor_prepare(kd, ad, &pd));
        CHECK_OK(fusor_prepare(ks, as, &ps));
        fusor_sequence *q;
        CHECK_OK(fusor_sequence_create(ctx, &q));
        CHECK_OK(fusor_sequence_add(q, pd));
        CHECK_OK(fusor_sequence_add(q, ps));
        fusor_stream *s = NULL;
        if (queued)
            CHECK_OK(fusor_stream_create(ctx, &s));
        for (int st = 0; st < S; st++) {
            CHECK_OK(fusor_prepared_set_f64(ps, "q", 0.001 * st));
            CHECK_OK(queued ? fusor_sequence_launch_async(q, s) : fusor_sequence_launch(q));
        }
        if (queued)
            CHECK_OK(fusor_stream_synchronize(s));
        CHECK_MSG(memcmp(u, ru, sizeof(double) * M) == 0, "%s sequence differs from C",
                  queued ? "queued" : "synchronous");
        fusor_stream_destroy(s);
        fusor_sequence_destroy(q);
        fusor_prepared_destroy(pd);
        fusor_prepared_destroy(ps);
        fusor_args_destroy(ad);
        fusor_args_destroy(as);
        fusor_array_destroy(U);
        fusor_array_destroy(V);
    }
    CHECK(fusor_sequence_add(NULL, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    fusor_sequence_destroy(NULL);
    free(u), free(v), free(ru), free(rv);
    fusor_kernel_destroy(kd);
    fusor_kernel_destroy(ks);
}

int main(void) {
    fusor_context *ctx;
    REQUIRE(fusor_context_create(NULL, &ctx) == FUSOR_OK);
    fusor_kernel *k;
    REQUIRE(fusor_kernel_compile(ctx, diffusion, "diffusion.fu", NULL, &k) == FUSOR_OK);

    double *want = malloc(sizeof(double) * N), *tmp = malloc(sizeof(double) * N);
    double *ua = malloc(sizeof(double) * N), *ub = malloc(sizeof(double) * N);
    double rs[STEPS];
    for (int s = 0; s < STEPS; s++)
        rs[s] = rate(s);
    init(want);
    reference(want, tmp, rs, STEPS);

    /* Synchronous steps, ping-pong, no allocation per step. */
    int64_t shape[1] = {N};
    fusor_array *A, *B;
    init(ua);
    for (int i = 0; i < N; i++)
        ub[i] = -1.0; /* poisoned */
    REQUIRE(fusor_array_wrap(ctx, ua, FUSOR_F64, 1, shape, NULL, &A) == FUSOR_OK);
    REQUIRE(fusor_array_wrap(ctx, ub, FUSOR_F64, 1, shape, NULL, &B) == FUSOR_OK);
    fusor_args *a;
    REQUIRE(fusor_args_create(k, &a) == FUSOR_OK);
    CHECK_OK(fusor_args_set_array(a, "u", A));
    CHECK_OK(fusor_args_set_array(a, "out", B));
    CHECK_OK(fusor_args_set_f64(a, "r", 0.0));
    fusor_prepared *p;
    REQUIRE(fusor_prepare(k, a, &p) == FUSOR_OK);
    /* Rebinding the argument set afterwards does not reach the prepared launch. */
    fusor_array *C;
    REQUIRE(fusor_array_create(ctx, FUSOR_F64, 1, shape, &C) == FUSOR_OK);
    CHECK_OK(fusor_args_set_array(a, "out", C));

    CHECK_OK(fusor_prepared_set_f64(p, "r", rs[0]));
    CHECK_OK(fusor_prepared_launch(p)); /* warms the thread pool up */
    CHECK_OK(fusor_prepared_swap(p, "u", "out"));
    fu_alloc_fail_after(0);
    int ok = 1;
    for (int s = 1; s < STEPS && ok; s++) {
        ok = fusor_prepared_set_f64(p, "r", rs[s]) == FUSOR_OK &&
             fusor_prepared_launch(p) == FUSOR_OK && fusor_prepared_swap(p, "u", "out") == FUSOR_OK;
    }
    long failures = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(ok, "a prepared step failed: %s", fusor_last_error());
    CHECK_MSG(failures == 0, "the steps tried %ld allocations", failures);
    /* After an even number of steps the newest field is in ua, and bound to u. */
    CHECK(memcmp(ua, want, sizeof(double) * N) == 0);
    fusor_array *cur;
    CHECK_OK(fusor_prepared_get_array(p, "u", &cur));
    CHECK(fusor_array_data(cur) == ua);
    fusor_array_destroy(cur);
    double total = 0, expect_total = 0;
    CHECK_OK(fusor_args_get_f64(a, "total", &total));
    for (int i = 0; i < N; i++)
        expect_total += ua[i];
    CHECK_MSG(total > expect_total * (1 - 1e-12) && total < expect_total * (1 + 1e-12),
              "total %.17g vs %.17g", total, expect_total);
    fusor_array *res;
    CHECK_OK(fusor_args_get_array(a, "out", &res));
    CHECK(fusor_array_data(res) == ua); /* the last launch wrote ua */
    fusor_array_destroy(res);

    /* The same loop queued on a stream, swapping between queued launches. */
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(ctx, &s));
    init(ua);
    for (int i = 0; i < N; i++)
        ub[i] = -1.0;
    if (fusor_array_data(cur) != ua)
        CHECK_OK(fusor_prepared_swap(p, "u", "out"));
    for (int st = 0; st < STEPS; st++) {
        CHECK_OK(fusor_prepared_set_f64(p, "r", rs[st]));
        CHECK_OK(fusor_prepared_launch_async(p, s));
        CHECK_OK(fusor_prepared_swap(p, "u", "out"));
    }
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK(memcmp(ua, want, sizeof(double) * N) == 0);
    /* Steady state of a queued loop: launch, wait, launch ... allocates nothing. */
    fu_alloc_fail_after(0);
    ok = 1;
    for (int st = 0; st < 10 && ok; st++)
        ok = fusor_prepared_launch_async(p, s) == FUSOR_OK &&
             fusor_stream_synchronize(s) == FUSOR_OK &&
             fusor_prepared_swap(p, "u", "out") == FUSOR_OK;
    failures = fu_alloc_failures();
    fu_alloc_fail_after(-1);
    CHECK_MSG(ok, "a queued prepared step failed: %s", fusor_last_error());
    CHECK_MSG(failures == 0, "queued steps tried %ld allocations", failures);

    /* A synchronous launch while queued ones wait is refused, and destroy waits. */
    gate g = {0};
    CHECK_OK(fusor_stream_host_call(s, wait_gate, &g));
    CHECK_OK(fusor_prepared_launch_async(p, s));
    CHECK(fusor_prepared_launch(p) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "queued") != NULL);
    atomic_store(&g.open, 1);
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK_OK(fusor_prepared_launch(p));

    /* Errors name what is wrong and change nothing. */
    CHECK(fusor_prepared_swap(p, "u", "nope") == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "'nope'") != NULL);
    CHECK(fusor_prepared_swap(p, "u", "r") == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_prepared_set_f64(p, "u", 1.0) == FUSOR_ERROR_INVALID_ARGUMENT);
    fusor_prepared_destroy(p);

    fusor_array *small;
    int64_t half[1] = {N / 2};
    REQUIRE(fusor_array_create(ctx, FUSOR_F64, 1, half, &small) == FUSOR_OK);
    fusor_kernel *scale;
    REQUIRE(fusor_kernel_compile(ctx,
                                 "kernel scale(x: f64[], y: f64[], r: f64) -> (o: f64[], q: f64[]) "
                                 "{ o = x * r\n q = y + r }",
                                 "scale.fu", NULL, &scale) == FUSOR_OK);
    fusor_args *sa;
    REQUIRE(fusor_args_create(scale, &sa) == FUSOR_OK);
    CHECK_OK(fusor_args_set_array(sa, "x", A));
    CHECK_OK(fusor_args_set_array(sa, "y", small));
    CHECK_OK(fusor_args_set_literal(sa, "r", "2"));
    /* x and y do not broadcast: fusor_prepare checks like fusor_launch does. */
    CHECK(fusor_prepare(scale, sa, &p) == FUSOR_ERROR_SHAPE);
    fusor_array *one;
    int64_t shape1[1] = {1};
    REQUIRE(fusor_array_create(ctx, FUSOR_F64, 1, shape1, &one) == FUSOR_OK);
    *(double *)fusor_array_data(one) = 0.5;
    CHECK_OK(fusor_args_set_array(sa, "y", one)); /* broadcast */
    REQUIRE(fusor_prepare(scale, sa, &p) == FUSOR_OK);
    fusor_array_destroy(one); /* the prepared launch keeps its own reference */
    /* Outputs fusor allocated keep their memory from launch to launch. */
    CHECK_OK(fusor_prepared_launch(p));
    fusor_array *o1, *o2;
    CHECK_OK(fusor_args_get_array(sa, "o", &o1));
    CHECK_OK(fusor_prepared_launch(p));
    CHECK_OK(fusor_args_get_array(sa, "o", &o2));
    CHECK(o1 == o2);
    const double *od = fusor_array_data(o2);
    int right = 1;
    for (int i = 0; i < N; i++)
        right &= od[i] == ua[i] * 2;
    CHECK(right);
    const double *qd;
    fusor_array *q;
    CHECK_OK(fusor_args_get_array(sa, "q", &q));
    qd = fusor_array_data(q);
    CHECK(qd[0] == 2.5 && qd[N - 1] == 2.5);
    fusor_array_destroy(q);
    /* Swapping arrays of different shapes is refused; o and q may trade places. */
    CHECK(fusor_prepared_swap(p, "x", "y") == FUSOR_ERROR_SHAPE);
    CHECK(strstr(fusor_last_error(), "'x' and 'y'") != NULL);
    CHECK_OK(fusor_prepared_swap(p, "o", "q"));
    CHECK_OK(fusor_prepared_launch(p));
    CHECK_OK(fusor_args_get_array(sa, "q", &q));
    CHECK(q == o1 && ((const double *)fusor_array_data(q))[3] == 2.5);
    fusor_array_destroy(q);
    fusor_array_destroy(o1);
    fusor_array_destroy(o2);
    fusor_prepared_destroy(p);
    fusor_args_destroy(sa);
    fusor_kernel_destroy(scale);

    /* A generic kernel: the scalar's dtype chose the code and cannot change. */
    fusor_kernel *uf;
    REQUIRE(fusor_ufunc_create(ctx, "x * r", &uf) == FUSOR_OK);
    fusor_args *ua2;
    REQUIRE(fusor_args_create(uf, &ua2) == FUSOR_OK);
    CHECK_OK(fusor_args_set_array(ua2, "x", small));
    CHECK_OK(fusor_args_set_i64(ua2, "r", 3));
    REQUIRE(fusor_prepare(uf, ua2, &p) == FUSOR_OK);
    CHECK(fusor_prepared_set_f64(p, "r", 2.5) == FUSOR_ERROR_DTYPE);
    CHECK(strstr(fusor_last_error(), "prepared as i64") != NULL);
    int64_t four = 4;
    CHECK_OK(fusor_prepared_set_scalar(p, "r", FUSOR_I64, &four));
    double *sd = fusor_array_data(small);
    for (int i = 0; i < N / 2; i++)
        sd[i] = i;
    CHECK_OK(fusor_prepared_launch(p));
    fusor_array *uo;
    CHECK_OK(fusor_args_get_array(ua2, "out", &uo));
    const double *uod = fusor_array_data(uo);
    right = fusor_array_size(uo) == N / 2;
    for (int i = 0; right && i < N / 2; i++)
        right &= uod[i] == 4.0 * i;
    CHECK(right);
    fusor_array_destroy(uo);
    fusor_prepared_destroy(p);
    /* A literal is compiled into a generic kernel's code: it cannot be set per launch. */
    CHECK_OK(fusor_args_set_literal(ua2, "r", "2"));
    REQUIRE(fusor_prepare(uf, ua2, &p) == FUSOR_OK);
    CHECK(fusor_prepared_set_f64(p, "r", 3.0) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(fusor_last_error(), "literal") != NULL);
    fusor_prepared_destroy(p);
    fusor_args_destroy(ua2);
    fusor_kernel_destroy(uf);

    fusor_stream_destroy(s);
    test_sequence(ctx);
    fusor_array_destroy(small);
    fusor_array_destroy(C);
    fusor_array_destroy(A);
    fusor_array_destroy(B);
    fusor_args_destroy(a);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(want);
    free(tmp);
    free(ua);
    free(ub);
    fusor_prepared_destroy(NULL);
    return check_done();
}
