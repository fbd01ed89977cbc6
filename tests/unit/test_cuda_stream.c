/*
 * test_cuda_stream.c — fusor streams and events on the host queue (scheduler/stream.c),
 * for real: worker threads, launches on the CPU, waits between streams.
 *
 * The dependent chain runs on two streams joined by events, with a host call that
 * sleeps at the head of the first stream: if a wait did not hold, the second stream
 * would read an output before it is written (outputs are poisoned with NaN) and the
 * exact integer-valued results would differ.  Also: event states, errors that stick to
 * a stream until it is synchronised, destroy waiting for work, the default stream's
 * ordering with fusor_launch, copies on a stream, and many streams at once.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "check.h"
#include "fusor.h"

#define N 200000

static fusor_context *ctx;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void nap(void *arg) { sleep_ms(*(int *)arg); }

static fusor_array *vec(double fill) {
    int64_t n = N;
    fusor_array *a = NULL;
    if (fusor_array_create(ctx, FUSOR_F64, 1, &n, &a) != FUSOR_OK)
        return NULL;
    double *p = fusor_array_data(a);
    for (int64_t i = 0; i < n; i++)
        p[i] = isnan(fill) ? fill : (double)i + fill;
    return a;
}

static fusor_kernel *ufunc(const char *expr) {
    fusor_kernel *k = NULL;
    CHECK_OK(fusor_ufunc_create(ctx, expr, &k));
    return k;
}

static fusor_args *bind2(fusor_kernel *k, fusor_array *a, fusor_array *b, fusor_array *out) {
    fusor_args *args = NULL;
    CHECK_OK(fusor_args_create(k, &args));
    CHECK_OK(fusor_args_set_array(args, "a", a));
    if (b)
        CHECK_OK(fusor_args_set_array(args, "b", b));
    CHECK_OK(fusor_args_set_array(args, "out", out));
    return args;
}

static void test_chain(void) {
    fusor_array *x = vec(0), *y = vec(NAN), *z = vec(NAN), *w = vec(NAN);
    fusor_kernel *k1 = ufunc("a * 2"), *k2 = ufunc("a + 1"), *k3 = ufunc("a * b");
    fusor_args *a1 = bind2(k1, x, NULL, y), *a2 = bind2(k2, y, NULL, z), *a3 = bind2(k3, z, y, w);
    fusor_stream *s1, *s2;
    fusor_event *e1, *e2;
    CHECK_OK(fusor_stream_create(ctx, &s1));
    CHECK_OK(fusor_stream_create(ctx, &s2));
    CHECK_OK(fusor_event_create(ctx, &e1));
    CHECK_OK(fusor_event_create(ctx, &e2));
    CHECK(fusor_event_done(e1)); /* never recorded */
    static int ms = 60;
    CHECK_OK(fusor_stream_host_call(s1, nap, &ms));
    CHECK_OK(fusor_launch_async(k1, a1, s1)); /* y = 2x */
    CHECK_OK(fusor_event_record(e1, s1));
    CHECK_OK(fusor_event_wait(e1, s2));
    CHECK_OK(fusor_launch_async(k2, a2, s2)); /* z = y + 1 */
    CHECK_OK(fusor_event_record(e2, s2));
    CHECK_OK(fusor_event_wait(e2, s1));
    CHECK_OK(fusor_launch_async(k3, a3, s1));              /* w = z * y */
    CHECK(!fusor_event_done(e1) && !fusor_event_done(e2)); /* s1 is still asleep */
    CHECK_OK(fusor_event_synchronize(e2));
    CHECK(fusor_event_done(e1) && fusor_event_done(e2));
    CHECK_OK(fusor_stream_synchronize(s1));
    const double *wp = fusor_array_data(w), *zp = fusor_array_data(z);
    int64_t bad = 0;
    for (int64_t i = 0; i < N; i++) {
        double want = (2.0 * (double)i + 1) * (2.0 * (double)i);
        bad += wp[i] != want || zp[i] != 2.0 * (double)i + 1;
    }
    CHECK_MSG(bad == 0, "%lld elements of the chain are wrong", (long long)bad);
    fusor_placement pl;
    CHECK_OK(fusor_args_last_placement(a3, &pl));
    CHECK(pl.target == FUSOR_TARGET_CPU && pl.device == -1);
    CHECK(!strcmp(fusor_args_last_target(a3), "cpu"));
    fusor_event_destroy(e1);
    fusor_event_destroy(e2);
    fusor_stream_destroy(s1);
    fusor_stream_destroy(s2);
    fusor_args_destroy(a1);
    fusor_args_destroy(a2);
    fusor_args_destroy(a3);
    fusor_kernel_destroy(k1);
    fusor_kernel_destroy(k2);
    fusor_kernel_destroy(k3);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
    fusor_array_destroy(w);
}

static void set_flag(void *arg) {
    sleep_ms(30);
    __atomic_store_n((int *)arg, 1, __ATOMIC_RELEASE);
}

static void test_errors_and_destroy(void) {
    fusor_kernel *k = ufunc("a + b");
    fusor_array *x = vec(1), *out = vec(NAN);
    fusor_args *bad = NULL, *good = bind2(k, x, x, out);
    CHECK_OK(fusor_args_create(k, &bad)); /* nothing bound: fails when it runs */
    fusor_stream *s;
    CHECK_OK(fusor_stream_create(ctx, &s));
    CHECK_OK(fusor_launch_async(k, bad, s));
    CHECK_OK(fusor_launch_async(k, good, s)); /* skipped: an error is pending */
    int flag = 0;
    CHECK_OK(fusor_stream_host_call(s, set_flag, &flag)); /* host calls still run */
    fusor_status st = fusor_stream_synchronize(s);
    CHECK(st == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(fusor_last_error(), "missing argument 'a'") != NULL, "%s", fusor_last_error());
    CHECK(flag == 1);
    CHECK(isnan(((double *)fusor_array_data(out))[5]));
    CHECK_OK(fusor_stream_synchronize(s)); /* reported once */
    CHECK_OK(fusor_launch_async(k, good, s));
    CHECK_OK(fusor_stream_synchronize(s));
    CHECK(((double *)fusor_array_data(out))[5] == 12.0);
    /* The wrong argument set is refused at once. */
    fusor_kernel *k2 = ufunc("a - b");
    CHECK(fusor_launch_async(k2, good, s) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_launch_async(NULL, good, s) == FUSOR_ERROR_INVALID_ARGUMENT);
    /* destroy waits for queued work. */
    flag = 0;
    CHECK_OK(fusor_stream_host_call(s, set_flag, &flag));
    fusor_stream_destroy(s);
    CHECK(__atomic_load_n(&flag, __ATOMIC_ACQUIRE) == 1);
    fusor_stream_destroy(NULL);
    fusor_event_destroy(NULL);
    CHECK(fusor_stream_synchronize(NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    CHECK(fusor_event_record(NULL, NULL) == FUSOR_ERROR_INVALID_ARGUMENT);
    fusor_args_destroy(bad);
    fusor_args_destroy(good);
    fusor_kernel_destroy(k);
    fusor_kernel_destroy(k2);
    fusor_array_destroy(x);
    fusor_array_destroy(out);
}

static void test_default_stream(void) {
    /* An async launch on the default stream, then a synchronous launch reading its
     * output: fusor_launch waits for the default stream first. */
    fusor_kernel *k1 = ufunc("a * 3"), *k2 = ufunc("a - 1");
    fusor_array *x = vec(0), *y = vec(NAN), *z = vec(NAN);
    fusor_args *a1 = bind2(k1, x, NULL, y), *a2 = bind2(k2, y, NULL, z);
    fusor_stream *d;
    CHECK_OK(fusor_stream_default(ctx, &d));
    static int ms = 40;
    CHECK_OK(fusor_stream_host_call(d, nap, &ms));
    CHECK_OK(fusor_launch_async(k1, a1, NULL));
    CHECK_OK(fusor_launch(k2, a2));
    const double *zp = fusor_array_data(z);
    int64_t bad = 0;
    for (int64_t i = 0; i < N; i++)
        bad += zp[i] != 3.0 * (double)i - 1;
    CHECK(bad == 0);
    fusor_stream_destroy(d); /* the context's: only waits */
    fusor_stream *d2;
    CHECK_OK(fusor_stream_default(ctx, &d2));
    CHECK(d2 == d);
    /* A queued copy, in order with a launch on the same stream. */
    fusor_array *c = vec(NAN);
    CHECK_OK(fusor_launch_async(k1, a1, d));
    CHECK_OK(fusor_array_copy(c, y, d));
    CHECK_OK(fusor_stream_synchronize(d));
    CHECK(memcmp(fusor_array_data(c), fusor_array_data(y), N * sizeof(double)) == 0);
    fusor_array_destroy(c);
    fusor_args_destroy(a1);
    fusor_args_destroy(a2);
    fusor_kernel_destroy(k1);
    fusor_kernel_destroy(k2);
    fusor_array_destroy(x);
    fusor_array_destroy(y);
    fusor_array_destroy(z);
}

/* Many streams, each a chain of host calls that must run in its order. */
typedef struct counter {
    int next, errors;
} counter;
typedef struct step {
    counter *c;
    int index;
} step;
static void take_step(void *arg) {
    step *s = arg;
    if (s->c->next != s->index)
        s->c->errors++;
    s->c->next++;
}

static void test_many_streams(void) {
    enum { S = 6, K = 200 };
    fusor_stream *st[S];
    counter c[S];
    static step steps[S][K];
    for (int i = 0; i < S; i++) {
        c[i] = (counter){0, 0};
        CHECK_OK(fusor_stream_create(ctx, &st[i]));
        for (int j = 0; j < K; j++) {
            steps[i][j] = (step){&c[i], j};
            CHECK_OK(fusor_stream_host_call(st[i], take_step, &steps[i][j]));
        }
    }
    for (int i = 0; i < S; i++) {
        CHECK_OK(fusor_stream_synchronize(st[i]));
        CHECK(c[i].next == K && c[i].errors == 0);
        fusor_stream_destroy(st[i]);
    }
}

int main(void) {
    fusor_context_options o = {.target = FUSOR_TARGET_CPU};
    REQUIRE(fusor_context_create(&o, &ctx) == FUSOR_OK);
    /* Process-wide state (LLVM's target, the JIT, the topology) is set up once, first,
     * in a context of its own. */
    fusor_kernel *warm = ufunc("a + 0.5");
    fusor_array *wx = vec(0), *wy = vec(NAN);
    fusor_args *wa = bind2(warm, wx, NULL, wy);
    CHECK_OK(fusor_launch(warm, wa));
    fusor_args_destroy(wa);
    fusor_kernel_destroy(warm);
    fusor_array_destroy(wx);
    fusor_array_destroy(wy);
    fusor_context_destroy(ctx);
    long live = fu_alloc_live();
    REQUIRE(fusor_context_create(&o, &ctx) == FUSOR_OK);
    test_chain();
    test_errors_and_destroy();
    test_default_stream();
    test_many_streams();
    fusor_context_destroy(ctx);
    CHECK_MSG(fu_alloc_live() == live, "%ld blocks leaked", fu_alloc_live() - live);
    return check_done();
}
