/*
 * replay.c — main() for a fuzz target outside libFuzzer: runs LLVMFuzzerTestOneInput on
 * every file named on the command line (directories are walked one level deep), so the
 * seed corpus and every past finding run as an ordinary CTest test in every build
 * (gcc, ASan+UBSan, TSan) without clang.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 0;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf)
        return 0;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
            failed++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            files += run_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        char **names = NULL;
        size_t nn = 0;
        for (struct dirent *e; d && (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char **nb = realloc(names, (nn + 1) * sizeof *names);
            if (!nb)
                break;
            names = nb;
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[nn] = malloc(len);
            if (names[nn])
                snprintf(names[nn++], len, "%s/%s", argv[i], e->d_name);
        }
        if (d)
            closedir(d);
        if (nn)
            qsort(names, nn, sizeof *names, cmp); /* a stable order for reading logs */
        for (size_t j = 0; j < nn; j++) {
            files += run_file(names[j]);
            free(names[j]);
        }
        free(names);
    }
    /* A finding aborts inside the target, so reaching here means every input passed. */
    printf("%d inputs replayed, %d passed, %d failed\n", files, files, failed);
    return failed || files == 0;
}
