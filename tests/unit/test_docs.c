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

int main(void) {
    char *doc = check_read_file(FUSOR_SOURCE_DIR "/docs/c-api.md", NULL);
    char *example = check_read_file(FUSOR_SOURCE_DIR "/examples/axpy.c", NULL);
    char *header = check_read_file(FUSOR_SOURCE_DIR "/include/fusor.h", NULL);
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
