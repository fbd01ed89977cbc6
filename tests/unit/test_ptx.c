/*
 * test_ptx.c — every kernel of the kernels/std files and of the examples compiles to PTX by
 * both paths (LLVM NVPTX and NVRTC), for sm_80 and sm_90, and ptxas accepts every PTX.
 *
 * The examples hold their kernels in C and C++ string literals (and ufunc expressions);
 * they are read from the example sources so a new example is covered without a list.
 * Generic kernels (ufuncs) are bound to f32 and f64 arrays.  Stencil kernels (heat2d's)
 * are among them; tests/unit/test_stencil_gpu.c covers stencils in depth.
 */
#include <ctype.h>
#include <dirent.h>

#include "test_ptx_util.h"

static const char *ptxas;
static int nvrtc_ok;
static int compiled;

static int stencils;

static void check_all_paths(const ir_kernel *k, const ir_plan *plan, const char *what) {
    static const int archs[] = {80, 90};
    /* Stencil kernels compile too (to fusor_pass<p>_stencil: codegen/gpu.h). */
    stencils += cg_gpu_is_stencil(k, NULL);
    CHECK_MSG(ptx_check_archs(ptxas, k, plan, FUSOR_GPU_PATH_NVPTX, 2, archs, 3, what),
              "%s (NVPTX)", what);
    if (nvrtc_ok)
        CHECK_MSG(ptx_check_archs(ptxas, k, plan, FUSOR_GPU_PATH_NVRTC, 2, archs, 3, what),
                  "%s (NVRTC)", what);
    compiled += 2;
}

/* Every kernel of one source; generic ones bound to arrays of f32, then of f64. */
static void check_source(const char *src, const char *file) {
    char names[64][64];
    int n = ptx_kernel_names(src, names, 64);
    for (int i = 0; i < n; i++) {
        for (int variant = 0; variant < 2; variant++) {
            arena a;
            arena_init(&a);
            fe_program *p;
            int index;
            fusor_status st = fe_parse(&a, src, file, &p);
            if (!st)
                st = fe_find_kernel(p, names[i], &index);
            if (st) { /* e.g. the example that shows a language error on purpose */
                arena_free(&a);
                break;
            }
            int generic = fe_is_generic(p, index);
            if (!generic && variant) {
                arena_free(&a);
                break;
            }
            fe_binding b[16];
            for (int j = 0; j < 16; j++)
                b[j] = (fe_binding){.dtype = variant ? FUSOR_F64 : FUSOR_F32, .is_array = 1};
            ir_kernel *k;
            ir_plan *plan;
            st = fe_check(&a, p, index, generic ? b : NULL, &k);
            if (!st)
                st = ir_plan_build(k, &plan);
            char what[256];
            snprintf(what, sizeof what, "%.100s: kernel %.64s%s", file, names[i],
                     generic ? (variant ? " (f64)" : " (f32)") : "");
            CHECK_MSG(st == FUSOR_OK, "%s: %s", what, fusor_last_error());
            if (!st)
                check_all_paths(k, plan, what);
            arena_free(&a);
        }
    }
}

/* The text of the C string literal starting at p (after the quote); *end gets what follows. */
static char *c_literal(const char *p, const char **end) {
    size_t cap = strlen(p) + 1, n = 0;
    char *s = malloc(cap);
    while (*p && *p != '"') {
        if (*p == '\\' && p[1]) {
            p++;
            s[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            s[n++] = *p;
        }
        p++;
    }
    s[n] = 0;
    *end = *p ? p + 1 : p;
    return s;
}

/* Adjacent C string literals joined ("a" "b" -> "ab"); *end gets what follows. */
static char *joined_literals(const char *p, const char **end) {
    char *all = calloc(1, 1);
    while (*p == '"') {
        char *s = c_literal(p + 1, &p);
        all = realloc(all, strlen(all) + strlen(s) + 1);
        strcat(all, s);
        free(s);
        while (isspace((unsigned char)*p))
            p++;
    }
    *end = p;
    return all;
}

/* The kernel sources and ufunc expressions of one example program. */
static int check_example(const char *path, const char *file) {
    char *text = check_read_file(path, NULL);
    if (!text)
        return 0;
    int found = 0;
    for (const char *p = text; *p;) {
        if (!strncmp(p, "R\"(", 3)) { /* a C++ raw string */
            const char *e = strstr(p + 3, ")\"");
            if (!e)
                break;
            char *s = strndup(p + 3, (size_t)(e - p - 3));
            if (strstr(s, "kernel ")) {
                check_source(s, file);
                found++;
            }
            free(s);
            p = e + 2;
        } else if (*p == '"' && (p == text || p[-1] != '\'')) {
            /* A ufunc expression is the literal right after "fusor_ufunc_create(ctx, ". */
            const char *from = p - text > 40 ? p - 40 : text;
            char before[48];
            memcpy(before, from, (size_t)(p - from));
            before[p - from] = 0;
            int ufunc = strstr(before, "ufunc_create(") != NULL;
            char *s = joined_literals(p, &p);
            if (ufunc && strlen(s) < 200) {
                arena a;
                arena_init(&a);
                fe_program *prog;
                if (fe_parse_expr(&a, s, &prog) == FUSOR_OK) {
                    for (int dt = 0; dt < 2; dt++) {
                        fe_binding b[16];
                        for (int j = 0; j < 16; j++)
                            b[j] = (fe_binding){.dtype = dt ? FUSOR_F64 : FUSOR_F32, .is_array = 1};
                        ir_kernel *k;
                        ir_plan *plan;
                        fusor_status st = fe_check(&a, prog, 0, b, &k);
                        if (!st)
                            st = ir_plan_build(k, &plan);
                        char what[300];
                        snprintf(what, sizeof what, "%s: ufunc '%s' (%s)", file, s,
                                 dt ? "f64" : "f32");
                        CHECK_MSG(st == FUSOR_OK, "%s: %s", what, fusor_last_error());
                        if (!st)
                            check_all_paths(k, plan, what);
                    }
                    found++;
                }
                arena_free(&a);
            } else if (strstr(s, "kernel ") && strstr(s, "->")) {
                check_source(s, file);
                found++;
            }
            free(s);
        } else {
            p++;
        }
    }
    free(text);
    return found;
}

int main(void) {
    ptxas = ptx_ptxas();
    nvrtc_ok = cg_nvrtc_available() == FUSOR_OK;
    if (!nvrtc_ok)
        printf("SKIP: the NVRTC path: %s\n", fusor_last_error());
    REQUIRE(cg_nvptx_available());

    static const char *const std_files[] = {"blas1.fu", "elementwise.fu", "finance.fu", "stats.fu"};
    for (size_t i = 0; i < sizeof std_files / sizeof std_files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/kernels/std/%s", FUSOR_SOURCE_DIR, std_files[i]);
        char *src = check_read_file(path, NULL);
        CHECK_MSG(src != NULL, "cannot read %s", path);
        if (src)
            check_source(src, std_files[i]);
        free(src);
    }
    int std_compiled = compiled;
    CHECK(std_compiled >= 30); /* 17 kernels today, two arches each */

    DIR *d = opendir(FUSOR_SOURCE_DIR "/examples");
    REQUIRE(d != NULL);
    int examples = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        int c = len > 2 && !strcmp(e->d_name + len - 2, ".c");
        int cpp = len > 4 && !strcmp(e->d_name + len - 4, ".cpp");
        if (!c && !cpp)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/examples/%s", FUSOR_SOURCE_DIR, e->d_name);
        examples += check_example(path, e->d_name);
    }
    closedir(d);
    CHECK(examples >= 2); /* axpy.c's kernel and ufunc.c's expression at least */
    printf("%d std and %d example compilations for sm_80 and sm_90 (NVPTX%s)%s\n", std_compiled,
           compiled - std_compiled, nvrtc_ok ? " and NVRTC" : "",
           ptxas ? ", each assembled by ptxas" : "");
    printf("%d of them stencil kernels\n", stencils);
    CHECK(stencils >= 1); /* examples/heat2d.c's */
    return check_done();
}
