/*
 * test_gpu_stencil.c — stencil kernels on a real GPU against the reference interpreter.
 *
 * The programs of tests/unit/test_stencil_gpu.c (hand-written: every boundary, 1-D to 3-D,
 * reductions, several outputs; and its random ones) run through the public API with the
 * context's target set to the GPU, on the unit test's shapes plus larger ones (many blocks,
 * rows longer than a block), by each path (NVPTX, NVRTC).  Host arrays are copied to the
 * device and back; outputs are poisoned first, so an `interior` kernel must leave their
 * edges as they were.  Element outputs must agree bit for bit (add, subtract and multiply
 * only, no FMA contraction on either GPU path); float sums within 1e-12 (f64) / 1e-5
 * (f32) relative.  Then examples/heat2d's kernel steps device arrays (ping-pong, no copies)
 * and must equal the interpreter's steps bit for bit.
 */
#include "gpu_skip.h"

#define main stencil_gpu_main
#include "../unit/test_stencil_gpu.c"
#undef main

static int gpu_runs;

static void set_scalar(fusor_args *a, const char *name, fusor_dtype d, ir_value v) {
    unsigned char buf[8] = {0};
    sc_store((char *)buf, d, v);
    CHECK(fusor_args_set_scalar(a, name, d, buf) == FUSOR_OK);
}

static void gpu_run(fusor_context *ctx, const prog *p, const int64_t *shape) {
    const ir_kernel *k = p->k;
    int na = k->nparams + k->noutputs, D = p->rank;
    int64_t size = 1;
    for (int d = 0; d < D; d++)
        size *= shape[d];
    fusor_kernel *kern = NULL;
    fusor_args *args = NULL;
    CHECK_MSG(fusor_kernel_compile(ctx, p->src, "stencil.fu", NULL, &kern) == FUSOR_OK, "%s: %s",
              p->src, fusor_last_error());
    if (!kern)
        return;
    CHECK(fusor_args_create(kern, &args) == FUSOR_OK);
    char *base[16] = {0}, *ref[16] = {0};
    int64_t strides[16][FUSOR_MAX_DIMS] = {{0}};
    ir_value scalars[16] = {{0}};
    fusor_array *arr[16] = {0};
    for (int a = 0; a < na && a < 16; a++) {
        int isarr = a < k->nparams ? k->params[a].is_array : k->outputs[a - k->nparams].is_array;
        fusor_dtype dt = a < k->nparams ? k->params[a].dtype : k->outputs[a - k->nparams].dtype;
        const char *name = a < k->nparams ? k->params[a].name : k->outputs[a - k->nparams].name;
        if (!isarr) {
            if (a < k->nparams) {
                scalars[a] = random_value(dt);
                set_scalar(args, name, dt, scalars[a]);
            }
            continue;
        }
        size_t sz = fusor_dtype_size(dt);
        int64_t st = (int64_t)sz;
        for (int d = D - 1; d >= 0; d--) {
            strides[a][d] = st;
            st *= shape[d];
        }
        fill_pair(k, a, dt, size, &base[a], &ref[a]);
        CHECK(fusor_array_wrap(ctx, base[a], dt, D, shape, NULL, &arr[a]) == FUSOR_OK);
        CHECK(fusor_args_set_array(args, name, arr[a]) == FUSOR_OK);
    }
    ir_domain dom = {.ndim = D, .size = size, .narrays = na, .base = ref, .strides = strides};
    for (int d = 0; d < D; d++)
        dom.shape[d] = shape[d];
    ir_value want[16] = {{0}};
    fusor_status ist = interp_run(k, &dom, scalars, want);
    fusor_status gst = fusor_launch(kern, args);
    CHECK_MSG(gst == ist, "%s: the GPU says %s, the interpreter %s (%s)", p->src,
              fusor_status_name(gst), fusor_status_name(ist), fusor_last_error());
    if (!gst && !ist) {
        fusor_placement pl;
        fusor_args_last_placement(args, &pl);
        CHECK_MSG(pl.target == FUSOR_TARGET_GPU, "%s ran on the CPU: %s", p->src, pl.reason);
        ir_value got[16] = {{0}};
        for (int j = 0; j < k->noutputs; j++) {
            fusor_dtype dt;
            unsigned char buf[8];
            if (!k->outputs[j].is_array) {
                CHECK(fusor_args_get_scalar(args, k->outputs[j].name, &dt, buf) == FUSOR_OK);
                got[j] = sc_load((const char *)buf, k->outputs[j].dtype);
            }
        }
        int bad = count_differences(p, base, ref, size, got, want);
        CHECK_MSG(bad == 0, "%s: %d differences on the GPU (rank %d, %lld elements)", p->src, bad,
                  D, (long long)size);
        gpu_runs++;
    }
    for (int a = 0; a < na && a < 16; a++) {
        fusor_array_destroy(arr[a]);
        free(base[a]);
        free(ref[a]);
    }
    fusor_args_destroy(args);
    fusor_kernel_destroy(kern);
}

/* heat2d's kernel on device arrays, 20 steps, against 20 interpreter steps. */
static int heat_on_device(fusor_context *ctx) {
    enum { N = 203, M = 301, STEPS = 20 };
    const char *src = fixed[0];
    arena ar;
    arena_init(&ar);
    ir_kernel *ik;
    ir_plan *plan;
    REQUIRE(ptx_build(&ar, src, "heat.fu", NULL, NULL, &ik, &plan) == FUSOR_OK);
    int64_t shape[2] = {N, M};
    double *h0 = malloc(sizeof(double) * N * M), *h1 = malloc(sizeof(double) * N * M);
    double *back = malloc(sizeof(double) * N * M);
    for (int i = 0; i < N * M; i++)
        h0[i] = h1[i] = (i % 7 == 0) ? 1.0 : (double)(i % 13) / 16.0;
    fusor_array *w0, *d0, *d1, *hb;
    REQUIRE(fusor_array_wrap(ctx, h0, FUSOR_F64, 2, shape, NULL, &w0) == FUSOR_OK);
    REQUIRE(fusor_array_wrap(ctx, back, FUSOR_F64, 2, shape, NULL, &hb) == FUSOR_OK);
    REQUIRE(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &d0) == 0);
    REQUIRE(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, 0, FUSOR_F64, 2, shape, &d1) == 0);
    REQUIRE(fusor_array_copy(d0, w0, NULL) == FUSOR_OK);
    REQUIRE(fusor_array_copy(d1, w0, NULL) == FUSOR_OK);
    fusor_kernel *k;
    fusor_args *fwd, *bwd;
    REQUIRE(fusor_kernel_compile(ctx, src, "heat.fu", NULL, &k) == FUSOR_OK);
    REQUIRE(fusor_args_create(k, &fwd) == FUSOR_OK && fusor_args_create(k, &bwd) == FUSOR_OK);
    fusor_args_set_array(fwd, "u", d0), fusor_args_set_array(fwd, "out", d1);
    fusor_args_set_array(bwd, "u", d1), fusor_args_set_array(bwd, "out", d0);
    fusor_args_set_f64(fwd, "r", 0.2), fusor_args_set_f64(bwd, "r", 0.2);
    for (int s = 0; s < STEPS; s++)
        CHECK(fusor_launch(k, s % 2 ? bwd : fwd) == FUSOR_OK);
    CHECK(fusor_array_copy(hb, STEPS % 2 ? d1 : d0, NULL) == FUSOR_OK);
    /* The interpreter's steps on the host copies. */
    double *cur = h0, *nxt = h1;
    ir_value sc[2] = {{0}, {.f = 0.2}};
    for (int s = 0; s < STEPS; s++) {
        /* params: u (0), r (1); output out (2) */
        char *b3[3] = {(char *)cur, NULL, (char *)nxt};
        int64_t st3[3][FUSOR_MAX_DIMS] = {{M * 8, 8}, {0, 0}, {M * 8, 8}};
        ir_domain dom = {.ndim = 2, .size = N * M, .narrays = 3, .base = b3, .strides = st3};
        dom.shape[0] = N;
        dom.shape[1] = M;
        ir_value outs[1];
        CHECK(interp_run(ik, &dom, sc, outs) == FUSOR_OK);
        double *t = cur;
        cur = nxt;
        nxt = t;
    }
    size_t differ = 0;
    for (int i = 0; i < N * M; i++)
        differ += memcmp(&cur[i], &back[i], 8) != 0;
    CHECK_MSG(differ == 0, "heat2d on device arrays: %zu of %d values differ from the interpreter",
              differ, N * M);
    printf("heat2d kernel, %dx%d, %d steps on device arrays: %zu values differ\n", N, M, STEPS,
           differ);
    fusor_args_destroy(fwd);
    fusor_args_destroy(bwd);
    fusor_kernel_destroy(k);
    fusor_array_destroy(w0);
    fusor_array_destroy(hb);
    fusor_array_destroy(d0);
    fusor_array_destroy(d1);
    free(h0);
    free(h1);
    free(back);
    arena_free(&ar);
    return 0;
}

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_stencil"))
        return GPU_SKIP_CODE;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        add(fixed[i]);
    for (int i = 0; i < 24; i++) {
        char src[640];
        random_program(src, sizeof src);
        add(src);
    }
    static const int64_t big[4][3] = {{0}, {100003}, {517, 1030}, {19, 67, 131}};
    for (int path = FUSOR_GPU_PATH_NVPTX; path <= FUSOR_GPU_PATH_NVRTC; path++) {
        fusor_context_options o = {.target = FUSOR_TARGET_GPU};
        fusor_context *ctx;
        REQUIRE(fusor_context_create(&o, &ctx) == FUSOR_OK);
        fusor_gpu_options go = {.path = (fusor_gpu_path)path};
        if (fusor_context_set_gpu_options(ctx, &go) != FUSOR_OK) {
            printf("path %d unavailable: %s\n", path, fusor_last_error());
            fusor_context_destroy(ctx);
            continue;
        }
        static const int64_t shapes[4][4][3] = {
            {{0}},
            {{1}, {5}, {37}, {70}},
            {{1, 1}, {3, 4}, {7, 45}, {2, 33}},
            {{1, 2, 3}, {2, 3, 5}, {4, 5, 37}, {3, 1, 40}},
        };
        for (int i = 0; i < nprogs; i++) {
            for (int s = 0; s < 4; s++)
                gpu_run(ctx, &progs[i], shapes[progs[i].rank][s]);
            gpu_run(ctx, &progs[i], big[progs[i].rank]);
        }
        heat_on_device(ctx);
        fusor_context_destroy(ctx);
    }
    printf("%d stencil programs, %d GPU runs against the interpreter\n", nprogs, gpu_runs);
    for (int i = 0; i < nprogs; i++)
        arena_free(&progs[i].a);
    return check_done();
}
