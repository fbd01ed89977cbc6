/*
 * test_gpu_differential.c — the differential test on the GPU: random kernels from
 * tests/differential/gen.c, run by the GPU (a context whose target is the GPU) and by
 * the reference interpreter, compared with test_differential.c's rules (which this
 * file includes whole, renaming its main).  FUSOR_DIFF_COUNT defaults to 400 here.
 *
 * test_differential.c expects its compiled back end to report the target "cpu"; here
 * every compiled launch must have run on the GPU instead, so the target it reads is
 * translated ("gpu" is what it calls "cpu") and counted, and a compiled launch that ran
 * anywhere but the GPU fails the test.
 */
#include "fusor.h"
#include "gpu_skip.h"

static long gpu_runs, other_runs;

static const char *gpu_last_target(const fusor_args *a) {
    const char *t = (fusor_args_last_target)(a);
    if (t && !strcmp(t, "gpu")) {
        gpu_runs++;
        return "cpu";
    }
    if (t && strcmp(t, "reference") && strcmp(t, "none"))
        other_runs++;
    return t;
}

#define fusor_context_create(o, out) gpu_context_create(o, out)
#define fusor_args_last_target(a)    gpu_last_target(a)
#define main                         differential_main
#include "../differential/test_differential.c"
#undef main

int main(void) {
    if (gpu_skip_unless_usable("test_gpu_differential"))
        return GPU_SKIP_CODE;
    setenv("FUSOR_DIFF_COUNT", "400", 0);
    int rc = differential_main();
    printf("compiled launches: %ld on the GPU, %ld elsewhere\n", gpu_runs, other_runs);
    if (gpu_runs == 0 || other_runs)
        rc = 1;
    return rc;
}
