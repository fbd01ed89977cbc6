/*
 * heat2d.c — a 2-D heat equation time loop: fusor against the same loop written by hand.
 *
 * u_t = alpha * laplacian(u) on an N x N plate whose edges are held at fixed temperatures
 * (the left edge hot), by explicit Euler steps with the 5-point Laplacian.  The kernel
 * declares its input `interior`: each step writes only the inner points, so the edges of
 * both buffers keep their fixed values.  Two buffers ping-pong, three ways: two argument
 * sets bound once, one per direction, launched alternately with fusor_launch; one prepared
 * launch (fusor_prepare) whose buffers are swapped between steps; and the same queued on
 * a stream, where the host only pays for queuing a step (on the GPU, a CUDA Graph replay).
 * After the steps every result must be identical bit for bit to the hand-written loop's;
 * the time per step of each is printed.  Built and run by CTest.
 *
 *   example_heat2d [N [steps]]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusor.h"

static const char *source =
    "kernel heat_step(u: f64[n, m] interior, r: f64) -> (out: f64[]) {\n"
    "    out = u + r * (u[-1, 0] + u[1, 0] + u[0, -1] + u[0, 1] - 4.0 * u)\n"
    "}\n";

#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != FUSOR_OK) {                                                                  \
            fprintf(stderr, "%s failed: %s\n", #call, fusor_last_error());                         \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The initial plate: 0 inside, the left edge at 100, the others at 0..25 along them. */
static void init(double *u, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double v = 0.0;
            if (j == 0)
                v = 100.0;
            else if (i == 0 || i == n - 1 || j == n - 1)
                v = 25.0 * j / (n - 1);
            u[(size_t)i * n + j] = v;
        }
}

/* One step by hand, the same arithmetic in the same order as the kernel. */
static void hand_step(const double *u, double *out, int n, double r) {
    for (int i = 1; i < n - 1; i++)
        for (int j = 1; j < n - 1; j++) {
            size_t c = (size_t)i * n + j;
            out[c] = u[c] + r * (u[c - n] + u[c + n] + u[c - 1] + u[c + 1] - 4.0 * u[c]);
        }
}

/* The two argument sets of a ping-pong loop: fwd steps a into b, back steps b into a. */
static int pingpong_args(fusor_kernel *k, fusor_array *a, fusor_array *b, double r,
                         fusor_args **fwd, fusor_args **back) {
    CHECK(fusor_args_create(k, fwd));
    CHECK(fusor_args_create(k, back));
    CHECK(fusor_args_set_array(*fwd, "u", a));
    CHECK(fusor_args_set_array(*fwd, "out", b));
    CHECK(fusor_args_set_f64(*fwd, "r", r));
    CHECK(fusor_args_set_array(*back, "u", b));
    CHECK(fusor_args_set_array(*back, "out", a));
    CHECK(fusor_args_set_f64(*back, "r", r));
    return 0;
}

/*
 * The same loop on the GPU with device arrays: the plate is copied there once, the steps
 * ping-pong between two device buffers with nothing copied, and the result comes back
 * once.  It must match the CPU's within 1e-12 relative (the GPU paths add and multiply in
 * the same order without contracting to FMA, so it is normally bit for bit).  Returns
 * nonzero when it does not.
 */
static int gpu_loop(const char *src, double *scratch, int n, int steps, double r,
                    const double *cpu_result) {
    fusor_context_options o = {.target = FUSOR_TARGET_GPU};
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_array *host, *d0, *d1;
    fusor_args *fwd, *back;
    int64_t shape[2] = {n, n};
    size_t cells = (size_t)n * n;
    init(scratch, n);
    CHECK(fusor_context_create(&o, &ctx));
    CHECK(fusor_kernel_compile(ctx, src, "heat2d.fu", NULL, &k));
    CHECK(fusor_array_wrap(ctx, scratch, FUSOR_F64, 2, shape, NULL, &host));
    CHECK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &d0));
    CHECK(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &d1));
    if (pingpong_args(k, d0, d1, r, &fwd, &back))
        return 1;
    CHECK(fusor_array_copy(d0, host, NULL));
    CHECK(fusor_array_copy(d1, host, NULL));
    CHECK(fusor_launch(k, fwd)); /* compiles and loads; then start again */
    CHECK(fusor_array_copy(d1, host, NULL));
    double t0 = now();
    for (int s = 0; s < steps; s++)
        CHECK(fusor_launch(k, s % 2 == 0 ? fwd : back));
    CHECK(fusor_array_copy(host, steps % 2 ? d1 : d0, NULL)); /* waits for the last step */
    double gpu_s = now() - t0;
    double launch_diff = 0.0;
    for (size_t c = 0; c < cells; c++) {
        double d = fabs(scratch[c] - cpu_result[c]);
        launch_diff = d > launch_diff ? d : launch_diff;
    }
    /* Prepared and queued: the step is captured as a CUDA Graph once per direction and
     * replayed; the host only queues (its cost per step is printed). */
    fusor_prepared *p;
    fusor_stream *stream;
    init(scratch, n);
    CHECK(fusor_array_copy(d0, host, NULL));
    CHECK(fusor_array_copy(d1, host, NULL));
    CHECK(fusor_prepare(k, fwd, &p));
    CHECK(fusor_stream_create(ctx, &stream));
    CHECK(fusor_prepared_launch(p)); /* captures both directions, then start again */
    CHECK(fusor_prepared_swap(p, "u", "out"));
    CHECK(fusor_prepared_launch(p));
    CHECK(fusor_prepared_swap(p, "u", "out"));
    CHECK(fusor_array_copy(d1, host, NULL));
    CHECK(fusor_array_copy(d0, host, NULL));
    t0 = now();
    for (int s = 0; s < steps; s++) {
        CHECK(fusor_prepared_launch_async(p, stream));
        CHECK(fusor_prepared_swap(p, "u", "out"));
    }
    double queue_s = now() - t0;
    CHECK(fusor_stream_synchronize(stream));
    double prep_s = now() - t0;
    CHECK(fusor_array_copy(host, steps % 2 ? d1 : d0, NULL));
    double maxdiff = 0.0;
    for (size_t c = 0; c < cells; c++) {
        double d = fabs(scratch[c] - cpu_result[c]);
        maxdiff = d > maxdiff ? d : maxdiff;
    }
    maxdiff = launch_diff > maxdiff ? launch_diff : maxdiff;
    fusor_placement pl;
    fusor_args_last_placement(fwd, &pl);
    printf("  GPU, fusor_launch:   %8.1f us/step (device arrays, %s)\n", 1e6 * gpu_s / steps,
           pl.target == FUSOR_TARGET_GPU ? "ran on the GPU" : "NOT on the GPU");
    printf("  GPU, prepared:       %8.1f us/step (CUDA Graph replays; the host spent %.2f us "
           "per step queuing them)\n",
           1e6 * prep_s / steps, 1e6 * queue_s / steps);
    printf("  max |GPU - CPU| = %.3g (tolerance 1e-12 relative)\n", maxdiff);
    fusor_stream_destroy(stream);
    fusor_prepared_destroy(p);
    fusor_args_destroy(fwd);
    fusor_args_destroy(back);
    fusor_array_destroy(host);
    fusor_array_destroy(d0);
    fusor_array_destroy(d1);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    return maxdiff > 1e-12 || pl.target != FUSOR_TARGET_GPU;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 512, steps = argc > 2 ? atoi(argv[2]) : 200;
    if (n < 3 || steps < 1) {
        fprintf(stderr, "usage: %s [N >= 3 [steps >= 1]]\n", argv[0]);
        return 2;
    }
    const double r = 0.2; /* alpha * dt / dx^2, below the stability limit 0.25 */
    size_t cells = (size_t)n * n;
    double *a = malloc(cells * sizeof *a), *b = malloc(cells * sizeof *b);
    double *ha = malloc(cells * sizeof *ha), *hb = malloc(cells * sizeof *hb);
    if (!a || !b || !ha || !hb)
        return 1;
    init(a, n), init(b, n), init(ha, n), init(hb, n);

    /* By hand. */
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        if (s % 2 == 0)
            hand_step(ha, hb, n, r);
        else
            hand_step(hb, ha, n, r);
    }
    double hand_s = now() - t0;
    const double *hand_result = steps % 2 ? hb : ha;

    /* With fusor: the same plate, two argument sets bound once. */
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_array *aa, *ab;
    fusor_args *fwd, *back;
    int64_t shape[2] = {n, n};
    fusor_context_options cpu = {.target = FUSOR_TARGET_CPU};
    CHECK(fusor_context_create(&cpu, &ctx));
    CHECK(fusor_kernel_compile(ctx, source, "heat2d.fu", NULL, &k));
    CHECK(fusor_array_wrap(ctx, a, FUSOR_F64, 2, shape, NULL, &aa));
    CHECK(fusor_array_wrap(ctx, b, FUSOR_F64, 2, shape, NULL, &ab));
    if (pingpong_args(k, aa, ab, r, &fwd, &back))
        return 1;
    CHECK(fusor_launch(k, fwd)); /* compiles; then start again from the initial plate */
    init(b, n);
    t0 = now();
    for (int s = 0; s < steps; s++)
        CHECK(fusor_launch(k, s % 2 == 0 ? fwd : back));
    double fusor_s = now() - t0;
    const double *fusor_result = steps % 2 ? b : a;

    size_t differ = 0;
    for (size_t c = 0; c < cells; c++)
        differ += memcmp(&fusor_result[c], &hand_result[c], sizeof(double)) != 0;

    /* The same loop prepared: bound once, the buffers swapped between steps; then queued
     * on a stream, where the host only pays for queuing a step. */
    fusor_prepared *p;
    init(a, n), init(b, n);
    CHECK(fusor_prepare(k, fwd, &p));
    t0 = now();
    for (int s = 0; s < steps; s++) {
        CHECK(fusor_prepared_launch(p));
        CHECK(fusor_prepared_swap(p, "u", "out"));
    }
    double prepared_s = now() - t0;
    for (size_t c = 0; c < cells; c++)
        differ += memcmp(&fusor_result[c], &hand_result[c], sizeof(double)) != 0;
    fusor_stream *stream;
    CHECK(fusor_stream_create(ctx, &stream));
    init(a, n), init(b, n);
    if (steps % 2) /* back to u = a */
        CHECK(fusor_prepared_swap(p, "u", "out"));
    t0 = now();
    for (int s = 0; s < steps; s++) {
        CHECK(fusor_prepared_launch_async(p, stream));
        CHECK(fusor_prepared_swap(p, "u", "out"));
    }
    double queued_s = now() - t0;
    CHECK(fusor_stream_synchronize(stream));
    double queued_total_s = now() - t0;
    for (size_t c = 0; c < cells; c++)
        differ += memcmp(&fusor_result[c], &hand_result[c], sizeof(double)) != 0;
    fusor_stream_destroy(stream);
    fusor_prepared_destroy(p);
    double mean = 0.0;
    for (size_t c = 0; c < cells; c++)
        mean += fusor_result[c];
    mean /= (double)cells;
    printf("heat2d %dx%d, %d steps: mean temperature %.6f, next to the hot edge %.6f\n", n, n,
           steps, mean, fusor_result[(size_t)(n / 2) * n + 1]);
    /* The threads the launches used: fewer than fusor_get_num_threads() on small plates,
     * which fusor runs on one thread. */
    char label[32];
    int used = fusor_args_last_threads(fwd);
    snprintf(label, sizeof label, "fusor (%d thread%s):", used, used == 1 ? "" : "s");
    printf("  %-21s%8.1f us/step\n", "by hand (1 thread):", 1e6 * hand_s / steps);
    printf("  %-21s%8.1f us/step (fusor_launch)\n", label, 1e6 * fusor_s / steps);
    printf("  %-21s%8.1f us/step (fusor_prepared_launch)\n", "", 1e6 * prepared_s / steps);
    printf("  %-21s%8.1f us/step queued on a stream (the host spent %.2f us per step "
           "queuing)\n",
           "", 1e6 * queued_total_s / steps, 1e6 * queued_s / steps);
    printf("  %zu of %zu values differ bitwise (3 fusor loops against the hand loop)\n", differ,
           cells);
    /* The GPU loop's host buffer: the hand-made loop's other buffer, no longer needed. */
    double *scratch = ha == hand_result ? hb : ha;
    int gpu_bad = fusor_gpu_status() == FUSOR_OK
                      ? gpu_loop(source, scratch, n, steps, r, fusor_result)
                      : 0;

    fusor_args_destroy(fwd);
    fusor_args_destroy(back);
    fusor_array_destroy(aa);
    fusor_array_destroy(ab);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(a), free(b), free(ha), free(hb);
    return differ == 0 && !gpu_bad ? 0 : 1;
}
