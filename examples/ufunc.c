/*
 * ufunc.c — a ufunc from C: one expression, specialised for each combination of dtypes
 * it is called with (like Numba's @vectorize without signatures), then cached.
 */
#include <math.h>
#include <stdio.h>

#include "fusor.h"

#define CHECK(call)                                                                        \
    do {                                                                                   \
        if ((call) != FUSOR_OK) {                                                          \
            fprintf(stderr, "%s failed: %s\n", #call, fusor_last_error());                 \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(void) {
    enum { N = 1000 };
    static float a32[N], b32[N];
    static double a64[N], b64[N];
    for (int i = 0; i < N; i++) {
        a32[i] = (float)(0.01 * i);
        b32[i] = (float)(1.0 - 0.001 * i);
        a64[i] = 0.01 * i;
        b64[i] = 1.0 - 0.001 * i;
    }
    fusor_context *ctx;
    fusor_kernel *uf;
    CHECK(fusor_context_create(NULL, &ctx));
    CHECK(fusor_ufunc_create(ctx, "a * sin(b) + 1", &uf));

    int64_t shape[1] = {N};
    int bad = 0;
    for (int pass = 0; pass < 2; pass++) {
        fusor_dtype dt = pass == 0 ? FUSOR_F32 : FUSOR_F64;
        void *pa = pass == 0 ? (void *)a32 : (void *)a64, *pb = pass == 0 ? (void *)b32 : (void *)b64;
        fusor_array *xa, *xb, *out;
        fusor_args *args;
        CHECK(fusor_array_wrap(ctx, pa, dt, 1, shape, NULL, &xa));
        CHECK(fusor_array_wrap(ctx, pb, dt, 1, shape, NULL, &xb));
        CHECK(fusor_args_create(uf, &args));
        CHECK(fusor_args_set_array(args, "a", xa));
        CHECK(fusor_args_set_array(args, "b", xb));
        CHECK(fusor_launch(uf, args));
        CHECK(fusor_args_get_array(args, "out", &out));
        if (fusor_array_dtype(out) != dt) bad++;
        for (int i = 0; i < N; i++) {
            double got = dt == FUSOR_F32 ? ((float *)fusor_array_data(out))[i]
                                         : ((double *)fusor_array_data(out))[i];
            double want = dt == FUSOR_F32 ? (double)(a32[i] * sinf(b32[i]) + 1.0f)
                                          : a64[i] * sin(b64[i]) + 1.0;
            double tol = dt == FUSOR_F32 ? 1e-6 : 1e-14;
            if (fabs(got - want) > tol * (1 + fabs(want))) bad++;
        }
        printf("ufunc a*sin(b)+1 on %s: out is %s\n", fusor_dtype_name(dt),
               fusor_dtype_name(fusor_array_dtype(out)));
        fusor_array_destroy(out);
        fusor_args_destroy(args);
        fusor_array_destroy(xa);
        fusor_array_destroy(xb);
    }
    fusor_kernel_destroy(uf);
    fusor_context_destroy(ctx);
    printf("ufunc: %d mismatches\n", bad);
    return bad != 0;
}
