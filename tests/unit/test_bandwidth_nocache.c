/*
 * test_bandwidth_nocache.c — with the disk cache off, measuring the copy bandwidth
 * writes no file anywhere (it once wrote files named by an unterminated buffer into the
 * working directory).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fusor.h"

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

int main(void) {
    char dir[] = "/tmp/fusor_bw_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    REQUIRE(chdir(dir) == 0);
    setenv("FUSOR_CACHE", "0", 1);
    double bw = 0;
    int threads = 0;
    CHECK_OK(fusor_copy_bandwidth(0, &bw, &threads));
    CHECK(bw > 0 && threads >= 1);
    CHECK_MSG(entries(dir) == 0, "files appeared in the working directory");
    CHECK(chdir("/") == 0);
    rmdir(dir);
    return check_done();
}
