/*
 * test_gpu_axis.c — on a machine with a GPU, kernels with axis reductions (which have no
 * GPU code yet) must not be sent to the GPU: AUTO runs them on the CPU with the reason in
 * the placement, and the GPU target refuses them with a clear message — also with inputs
 * large enough that AUTO would otherwise pick the GPU.  Results still match hand-written
 * loops.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gpu_skip.h"

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_axis"))
        return GPU_SKIP_CODE;
    const char *src = "kernel r(x: f64[n, m]) -> (y: f64[n]) { y = sum(x * 2, axis=1) }";
    enum { N = 2048, M = 1024 };
    double *x = malloc(sizeof(double) * N * M), y[N];
    for (int i = 0; i < N * M; i++)
        x[i] = (double)(i % 17) - 8;
    int64_t shape[2] = {N, M};
    for (int t = 0; t < 2; t++) {
        fusor_context *ctx;
        CHECK_OK(fusor_context_create(NULL, &ctx));
        CHECK_OK(fusor_context_set_target(ctx, t ? FUSOR_TARGET_GPU : FUSOR_TARGET_AUTO));
        fusor_kernel *k;
        CHECK_OK(fusor_kernel_compile(ctx, src, "ax.fu", NULL, &k));
        fusor_array *X, *Y;
        int64_t ys[1] = {N};
        CHECK_OK(fusor_array_wrap(ctx, x, FUSOR_F64, 2, shape, NULL, &X));
        CHECK_OK(fusor_array_wrap(ctx, y, FUSOR_F64, 1, ys, NULL, &Y));
        fusor_args *a;
        CHECK_OK(fusor_args_create(k, &a));
        CHECK_OK(fusor_args_set_array(a, "x", X));
        CHECK_OK(fusor_args_set_array(a, "y", Y));
        fusor_status st = fusor_launch(k, a);
        if (t) {
            CHECK_MSG(st == FUSOR_ERROR_UNSUPPORTED && strstr(fusor_last_error(), "no GPU code"),
                      "%s: %s", fusor_status_name(st), fusor_last_error());
        } else {
            CHECK_OK(st);
            fusor_placement pl;
            CHECK_OK(fusor_args_last_placement(a, &pl));
            CHECK(pl.target == FUSOR_TARGET_CPU);
            CHECK_MSG(strstr(pl.reason, "axis reductions") != NULL, "%s", pl.reason);
            int bad = 0;
            for (int i = 0; i < N; i++) {
                double s = 0; /* integers: exact in any order */
                for (int j = 0; j < M; j++)
                    s += 2 * x[i * M + j];
                bad += s != y[i];
            }
            CHECK_MSG(!bad, "%d rows differ", bad);
        }
        fusor_args_destroy(a);
        fusor_array_destroy(X);
        fusor_array_destroy(Y);
        fusor_kernel_destroy(k);
        fusor_context_destroy(ctx);
    }
    free(x);
    return check_done();
}
