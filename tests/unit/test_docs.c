/*
 * test_docs.c — the C API guide's complete example is the example the test suite builds
 * and runs (so the documented program compiles and works), and every function of
 * fusor.h is mentioned in the guide.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) {
        s[n] = 0;
    } else {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

int main(void) {
    char *doc = slurp(FUSOR_SOURCE_DIR "/docs/c-api.md");
    char *example = slurp(FUSOR_SOURCE_DIR "/examples/axpy.c");
    char *header = slurp(FUSOR_SOURCE_DIR "/include/fusor.h");
    REQUIRE(doc && example && header);
    CHECK_MSG(strstr(doc, example) != NULL, "docs/c-api.md must contain examples/axpy.c verbatim");

    /* Every public function (a line "FUSOR_API <type> fusor_name(") appears in the guide. */
    int functions = 0;
    for (char *p = strstr(header, "FUSOR_API "); p; p = strstr(p + 1, "FUSOR_API ")) {
        /* The function's name is the identifier just before the first '('. */
        char *paren = strchr(p, '(');
        char *name = paren;
        while (name && name > p && (isalnum((unsigned char)name[-1]) || name[-1] == '_')) name--;
        if (!paren || paren - name > 64 || strncmp(name, "fusor_", 6)) continue;
        char fn[80];
        memcpy(fn, name, (size_t)(paren - name));
        fn[paren - name] = 0;
        functions++;
        CHECK_MSG(strstr(doc, fn) != NULL, "docs/c-api.md does not mention %s", fn);
    }
    CHECK(functions > 40);
    free(doc);
    free(example);
    free(header);
    return check_done();
}
