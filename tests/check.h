/*
 * check.h — the few assertion macros fusor's tests share.
 *
 * CHECK records a failure and goes on; REQUIRE stops the test.  check_done() prints
 * "N passed, N failed" and gives main's exit status.
 */
#ifndef FUSOR_TEST_CHECK_H
#define FUSOR_TEST_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                  \
    } while (0)

#define CHECK_MSG(cond, ...)                                                               \
    do {                                                                                   \
        if (cond) {                                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

#define REQUIRE(cond)                                                                      \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);     \
            check_failed++;                                                                \
            return check_done();                                                           \
        }                                                                                  \
        check_passed++;                                                                    \
    } while (0)

/* REQUIRE for functions returning void: records the failure and returns. */
#define REQUIRE_VOID(cond)                                                                 \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);     \
            check_failed++;                                                                \
            return;                                                                        \
        }                                                                                  \
        check_passed++;                                                                    \
    } while (0)

/* Status check that prints fusor's message on failure. */
#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        fusor_status check_st_ = (expr);                                                   \
        CHECK_MSG(check_st_ == FUSOR_OK, "%s: %s", fusor_status_name(check_st_),          \
                  fusor_last_error());                                                     \
    } while (0)

/* A whole file, NUL-terminated (malloc'd; the caller frees), or NULL when it cannot be
 * read.  *size receives its length unless size is NULL. */
static inline char *check_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) {
        s[n] = 0;
        if (size) *size = (size_t)n;
    } else {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

/* A xorshift64 step of *state (nonzero): the tests' reproducible inputs. */
static inline uint64_t check_xorshift(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
