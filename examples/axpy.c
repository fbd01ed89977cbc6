/*
 * axpy.c — a kernel from C on the caller's own arrays.
 *
 * Compiles a two-output kernel, wraps existing C arrays (no copy), launches it, and
 * checks the result against a plain C loop.  Built and run by CTest.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fusor.h"

static const char *source =
    "kernel axpy_stats(a: f64, x: f64[], y: f64[]) -> (z: f64[], zmax: f64) {\n"
    "    z = a * x + y\n"
    "    zmax = max(z)\n"
    "}\n";

#define CHECK(call)                                                                        \
    do {                                                                                   \
        if ((call) != FUSOR_OK) {                                                          \
            fprintf(stderr, "%s failed: %s\n", #call, fusor_last_error());                 \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

int main(void) {
    enum { N = 1000000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    if (!x || !y || !z) return 1;
    for (int i = 0; i < N; i++) {
        x[i] = sin(0.001 * i);
        y[i] = cos(0.002 * i);
    }

    fusor_context *ctx;
    fusor_kernel *k;
    fusor_args *args;
    fusor_array *ax, *ay, *az;
    int64_t shape[1] = {N};
    CHECK(fusor_context_create(NULL, &ctx));
    CHECK(fusor_kernel_compile(ctx, source, "axpy.c", NULL, &k));
    CHECK(fusor_array_wrap(ctx, x, FUSOR_F64, 1, shape, NULL, &ax));
    CHECK(fusor_array_wrap(ctx, y, FUSOR_F64, 1, shape, NULL, &ay));
    CHECK(fusor_array_wrap(ctx, z, FUSOR_F64, 1, shape, NULL, &az));
    CHECK(fusor_args_create(k, &args));
    CHECK(fusor_args_set_f64(args, "a", 2.5));
    CHECK(fusor_args_set_array(args, "x", ax));
    CHECK(fusor_args_set_array(args, "y", ay));
    CHECK(fusor_args_set_array(args, "z", az));
    CHECK(fusor_launch(k, args));
    double zmax;
    CHECK(fusor_args_get_f64(args, "zmax", &zmax));

    double ref_max = -INFINITY;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double r = 2.5 * x[i] + y[i];
        if (z[i] != r) bad++;
        if (r > ref_max) ref_max = r;
    }
    printf("axpy: %d of %d elements differ from the C loop; zmax = %.17g (C loop: %.17g)\n", bad,
           N, zmax, ref_max);

    fusor_args_destroy(args);
    fusor_array_destroy(ax);
    fusor_array_destroy(ay);
    fusor_array_destroy(az);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    free(x);
    free(y);
    free(z);
    return bad || zmax != ref_max;
}
