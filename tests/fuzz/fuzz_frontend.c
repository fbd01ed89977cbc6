/*
 * fuzz_frontend.c — libFuzzer target: kernel source text → AST → typed IR → plan → LLVM IR.
 *
 * Nothing is executed or JIT-compiled (that is LLVM's own business and slow): the module is
 * built, checked by LLVM's verifier and printed at -O0 (cg_host_emit).  Every kernel of the source
 * is checked, generic ones under a few binding sets; the same text is also tried as a ufunc
 * expression. Findings: crashes and sanitizer reports, and broken invariants, which abort:
 *   - a failure must be a language error, out of memory or "unsupported", never
 *     FUSOR_ERROR_INTERNAL, and its message must be set (a language error names the file);
 *   - a kernel that checks must plan, print, key and emit a module the verifier accepts.
 * Built as a libFuzzer binary in a FUSOR_FUZZ build and as a corpus replay (replay.c)
 * test everywhere else.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codegen.h"
#include "error.h"
#include "frontend.h"

/* Inputs larger than this are left to the bad-input catalog (tests/bad): the fuzzer's
 * time is better spent on many small sources than on a few huge ones. */
#define FUZZ_MAX_INPUT 65536

static void finding(const char *what, fusor_status st) {
    fprintf(stderr, "fuzz_frontend: %s: %s: %s\n", what, fusor_status_name(st), fusor_last_error());
    abort();
}

/* A failed stage must say why, with a status the stage may return. */
static void check_failure(const char *stage, fusor_status st, int language_ok) {
    const char *msg = fusor_last_error();
    if (st == FUSOR_ERROR_OUT_OF_MEMORY || st == FUSOR_ERROR_UNSUPPORTED)
        return;
    if (st == FUSOR_ERROR_LANGUAGE && language_ok) {
        if (!strstr(msg, "error: "))
            finding("a language error without 'error: '", st);
        return;
    }
    if (!msg[0])
        finding("a failure without a message", st);
    finding(stage, st);
}

/* Plans, prints, keys and emits one checked kernel. */
static void lower(ir_kernel *k) {
    ir_plan *plan = NULL;
    fusor_status st = ir_plan_build(k, &plan);
    if (st != FUSOR_OK) {
        check_failure("ir_plan_build", st, 0);
        return;
    }
    char *text = ir_print(k, plan);
    size_t len = 0;
    unsigned char *key = ir_key(k, &len);
    if (!text || !key)
        finding("ir_print/ir_key returned NULL without an allocation failure", FUSOR_OK);
    fu_free(text);
    fu_free(key);
    cg_options o = {.opt_level = 0};
    st = cg_host_emit(k, plan, &o, FUSOR_EMIT_LLVM, &text);
    if (st != FUSOR_OK)
        check_failure("cg_host_emit", st, 0);
    fusor_free(text);
}

/* Binding sets for generic inputs: arrays of one dtype, typed scalars, weak literals,
 * and a mix chosen by the input's first byte. */
static void bindings_for(int set, int n, unsigned seed, fe_binding *b) {
    static const char *const literals[] = {"2", "-3", "2.5", "true", "0", "1e300"};
    for (int i = 0; i < n; i++) {
        b[i] = (fe_binding){0};
        switch (set) {
        case 0: b[i].dtype = FUSOR_F64, b[i].is_array = 1; break;
        case 1: b[i].dtype = FUSOR_I32, b[i].is_array = 0; break;
        case 2: b[i].literal = literals[(seed + (unsigned)i) % 6]; break;
        default:
            b[i].dtype = (fusor_dtype)((seed + 7u * (unsigned)i) % FUSOR_NUM_DTYPES);
            b[i].is_array = (int)((seed >> (i % 8)) & 1);
            if ((seed + (unsigned)i) % 5 == 0)
                b[i].literal = literals[(unsigned)i % 6];
            break;
        }
    }
}

static void check_all(const fe_program *prog, unsigned seed) {
    int nk = fe_num_kernels(prog);
    for (int i = 0; i < nk && i < 8; i++) {
        int generic = fe_is_generic(prog, i);
        int nin = 0;
        for (int p = 0; p < fe_num_params(prog, i); p++)
            nin += !fe_param(prog, i, p).is_output;
        fe_binding b[64];
        if (generic && nin > 64)
            continue;
        for (int set = 0; set < (generic ? 4 : 1); set++) {
            arena a;
            arena_init(&a);
            ir_kernel *k = NULL;
            if (generic)
                bindings_for(set, nin, seed, b);
            fusor_status st = fe_check(&a, prog, i, generic ? b : NULL, &k);
            if (st == FUSOR_OK)
                lower(k);
            else
                check_failure("fe_check", st, 1);
            arena_free(&a);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_INPUT)
        return 0;
    char *src = fu_malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = 0; /* the API takes C strings: an embedded NUL ends the source */
    unsigned seed = size ? data[0] : 0;

    arena a;
    arena_init(&a);
    fe_program *prog = NULL;
    fusor_status st = fe_parse(&a, src, "fuzz.fu", &prog);
    if (st == FUSOR_OK) {
        if (fe_num_kernels(prog) < 1)
            finding("a program without kernels parsed", st);
        check_all(prog, seed);
    } else {
        check_failure("fe_parse", st, 1);
        if (st == FUSOR_ERROR_LANGUAGE && !strstr(fusor_last_error(), "fuzz.fu:"))
            finding("a language error that does not name the file", st);
    }
    arena_free(&a);

    arena_init(&a);
    st = fe_parse_expr(&a, src, &prog);
    if (st == FUSOR_OK)
        check_all(prog, seed);
    else
        check_failure("fe_parse_expr", st, 1);
    arena_free(&a);
    fu_free(src);
    return 0;
}
