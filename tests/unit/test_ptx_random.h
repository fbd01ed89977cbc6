/*
 * test_ptx_random.h — random programs from the differential generator
 * (tests/differential/gen.c, included here unchanged) compiled to PTX by one path and
 * assembled by ptxas for sm_80 and sm_90: NVPTX compiles for each arch; NVRTC, ten times
 * slower, compiles once for compute_80, whose PTX both archs accept (test_ptx.c compiles
 * every std and example kernel by both paths for each arch).  Generic programs are bound to their
 * generated input dtypes; programs the checker refuses are skipped (and counted).
 *
 * FUSOR_PTX_PROGRAMS overrides the number of programs, FUSOR_PTX_SEED the first seed.
 */
#ifndef TEST_PTX_RANDOM_H
#define TEST_PTX_RANDOM_H

#include "test_ptx_util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "differential/gen.c"
#pragma GCC diagnostic pop

static inline int ptx_random(fusor_gpu_path path, int programs) {
    const char *ptxas = ptx_ptxas();
    if (getenv("FUSOR_PTX_PROGRAMS"))
        programs = atoi(getenv("FUSOR_PTX_PROGRAMS"));
    uint64_t seed0 =
        getenv("FUSOR_PTX_SEED") ? strtoull(getenv("FUSOR_PTX_SEED"), NULL, 0) : 0x5eed0000ull;
    int ok = 0, refused = 0, reductions = 0, multipass = 0;
    for (int n = 0; n < programs; n++) {
        uint64_t seed = seed0 + (uint64_t)n;
        gprog g;
        gen_program(seed, &g);
        fe_binding b[GEN_MAX_IN];
        for (int i = 0; i < g.nin; i++)
            b[i] = (fe_binding){.dtype = (fusor_dtype)g.in[i].dtype, .is_array = g.in[i].is_array};
        arena a;
        arena_init(&a);
        ir_kernel *k;
        ir_plan *plan;
        fusor_status st =
            ptx_build(&a, g.src, "random.fu", g.name, g.generic ? b : NULL, &k, &plan);
        if (st) {
            refused++;
        } else {
            char what[96];
            snprintf(what, sizeof what, "random program seed 0x%llx", (unsigned long long)seed);
            static const int archs[] = {80, 90};
            int good;
            if (path == FUSOR_GPU_PATH_NVPTX) { /* cheap: compile for each arch */
                good = ptx_check_archs(ptxas, k, plan, path, 2, archs, 0, what);
            } else { /* NVRTC is slow: PTX for compute_80, assembled for both */
                fusor_gpu_options o = {.path = path, .arch = 80};
                cg_gpu_code *c = NULL;
                fusor_status cst = cg_gpu_compile(k, plan, &o, &c);
                good = cst == FUSOR_OK && c->path == path;
                if (!good)
                    fprintf(stderr, "%s: %s\n", what, fusor_last_error());
                const char *text[2] = {good ? c->ptx : "", good ? c->ptx : ""};
                if (good && ptxas)
                    good = ptx_assemble_n(ptxas, 2, text, archs, 0, what);
                cg_gpu_code_free(c);
            }
            CHECK_MSG(good, "%s:\n%s", what, g.src);
            ok += good;
            reductions += plan->npasses > 0 && plan->passes[0].nreductions > 0;
            multipass += plan->npasses > 1;
        }
        arena_free(&a);
        gprog_free(&g);
    }
    printf("%d random programs by %s: %d compiled%s for sm_80 and sm_90 (%d with reductions, %d "
           "multi-pass), %d refused by the checker\n",
           programs, path == FUSOR_GPU_PATH_NVRTC ? "NVRTC" : "NVPTX", ok,
           ptxas ? " and assembled" : "", reductions, multipass, refused);
    CHECK(refused * 10 < programs * 3); /* the generator's own bound */
    CHECK(reductions > 0 && multipass > 0);
    return check_done();
}

#endif
