/*
 * diskcache.c — the persistent kernel cache on disk, the copy-bandwidth figure kept
 * beside it, and the public fusor_cache_* and fusor_copy_bandwidth functions.
 *
 * Layout of the directory:
 *   kernels/<32 hex digits>.fkc   one entry: header, kernel name, key, payload
 *   bandwidth.txt                 "<cpu>\t<threads>\t<bytes per second>" lines
 *
 * An entry's header holds a magic string, the format version, the lengths of the name,
 * key and payload, and a checksum of all three.  The file name is a 128-bit hash of the
 * key, but an entry is used only when its stored key equals the lookup key byte for byte,
 * its lengths agree with the file's size and the checksum holds.  The key (built by
 * context.c) names the fusor build, the LLVM version, the CPU and its features, the
 * options and the normalised IR — never file names or timestamps.
 */
#include "diskcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "devpool.h"
#include "error.h"
#include "pool.h"
#include "strbuf.h"

#define DC_MAGIC  "FUSORKC\0"
#define DC_FORMAT 1u

typedef struct dc_header {
    char magic[8];
    uint32_t format;
    uint32_t namelen;
    uint64_t keylen;
    uint64_t size;
    uint64_t checksum;
} dc_header;

static atomic_long n_hits, n_misses, n_writes, n_rejected;

void dc_get_counters(dc_counters *out) {
    out->hits = atomic_load(&n_hits);
    out->misses = atomic_load(&n_misses);
    out->writes = atomic_load(&n_writes);
    out->rejected = atomic_load(&n_rejected);
}

int dc_enabled(int setting) {
    if (setting)
        return setting > 0;
    const char *e = getenv("FUSOR_CACHE");
    if (!e)
        return 1;
    return strcmp(e, "0") && strcasecmp(e, "off") && strcasecmp(e, "no") && strcasecmp(e, "false");
}

char *dc_dir(void) {
    strbuf s = {0};
    const char *d = getenv("FUSOR_CACHE_DIR");
    if (d && *d) {
        sb_printf(&s, "%s", d);
    } else if ((d = getenv("XDG_CACHE_HOME")) && *d == '/') {
        sb_printf(&s, "%s/fusor", d);
    } else if ((d = getenv("HOME")) && *d) {
        sb_printf(&s, "%s/.cache/fusor", d);
    } else {
        fu_error(FUSOR_ERROR_IO, "no kernel cache directory: set FUSOR_CACHE_DIR (or HOME)");
        return NULL;
    }
    char *p = sb_take(&s);
    if (!p)
        fu_oom("the cache directory's name");
    return p;
}

/* ------------------------------------------------------------------ build id */

static char build_id[80];
static pthread_once_t build_id_once = PTHREAD_ONCE_INIT;

/* Finds the loaded object holding this function and copies its NT_GNU_BUILD_ID. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    uintptr_t self = (uintptr_t)data;
    int mine = 0;
    for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        mine = ph->p_type == PT_LOAD && self >= lo && self < lo + ph->p_memsz;
    }
    if (!mine)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + sizeof *nh;
            const unsigned char *desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
                desc + nh->n_descsz <= end) {
                size_t n = nh->n_descsz < 32 ? nh->n_descsz : 32;
                for (size_t k = 0; k < n; k++)
                    snprintf(build_id + 2 * k, 3, "%02x", desc[k]);
                return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    return 1;
}

static void load_build_id(void) {
    dl_iterate_phdr(find_build_id, (void *)(uintptr_t)&dc_build_id);
    if (!build_id[0])
        snprintf(build_id, sizeof build_id, "version-%s", FUSOR_VERSION_STRING);
}

const char *dc_build_id(void) {
    pthread_once(&build_id_once, load_build_id);
    return build_id;
}

/* ------------------------------------------------------------------ entries */

static char *entry_path(const char *dir, const unsigned char *key, size_t keylen) {
    uint64_t h1 = dc_hash64(key, keylen, 0x66757361), h2 = dc_hash64(key, keylen, 0x6b65726e);
    strbuf s = {0};
    sb_printf(&s, "%s/kernels/%016llx%016llx.fkc", dir, (unsigned long long)h1,
              (unsigned long long)h2);
    return sb_take(&s);
}

static uint64_t checksum(const char *name, size_t namelen, const unsigned char *key, size_t keylen,
                         const void *payload, size_t size) {
    uint64_t h = dc_hash64(name, namelen, 1);
    h = dc_hash64(key, keylen, h);
    return dc_hash64(payload, size, h);
}

/* Reads a whole file (at most 256 MiB). */
static unsigned char *read_all(const char *path, size_t *n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < (1 << 28)) {
        size_t want = (size_t)sb.st_size, got = 0;
        buf = fu_malloc(want ? want : 1);
        while (buf && got < want) {
            ssize_t r = read(fd, buf + got, want - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (buf && got != want) {
            fu_free(buf);
            buf = NULL;
        }
        *n = got;
    }
    close(fd);
    return buf;
}

/* The parts of an entry; 0 when the bytes are not a well-formed entry. */
static int parse_entry(const unsigned char *buf, size_t n, dc_header *h, const char **name,
                       const unsigned char **key, const unsigned char **payload) {
    if (n < sizeof *h)
        return 0;
    memcpy(h, buf, sizeof *h);
    if (memcmp(h->magic, DC_MAGIC, 8) || h->format != DC_FORMAT)
        return 0;
    uint64_t rest = n - sizeof *h;
    if (h->namelen > rest || h->keylen > rest - h->namelen ||
        h->size != rest - h->namelen - h->keylen)
        return 0;
    *name = (const char *)buf + sizeof *h;
    *key = buf + sizeof *h + h->namelen;
    *payload = *key + h->keylen;
    return checksum(*name, h->namelen, *key, h->keylen, *payload, h->size) == h->checksum;
}

void *dc_load(const unsigned char *key, size_t keylen, size_t *size) {
    char *dir = dc_dir();
    char *path = dir ? entry_path(dir, key, keylen) : NULL;
    fu_free(dir);
    if (!path) {
        fu_clear_error();
        return NULL;
    }
    size_t n = 0;
    unsigned char *buf = read_all(path, &n);
    if (buf) /* marks the entry used: trimming removes the least recently used first */
        utimensat(AT_FDCWD, path, NULL, 0);
    fu_free(path);
    if (!buf) {
        atomic_fetch_add(&n_misses, 1);
        return NULL;
    }
    dc_header h;
    const char *name;
    const unsigned char *k, *payload;
    void *out = NULL;
    if (parse_entry(buf, n, &h, &name, &k, &payload) && h.keylen == keylen &&
        !memcmp(k, key, keylen)) {
        out = fu_malloc(h.size ? h.size : 1);
        if (out) {
            memcpy(out, payload, h.size);
            *size = h.size;
        }
    }
    fu_free(buf);
    atomic_fetch_add(out ? &n_hits : &n_rejected, 1);
    return out;
}

static int mkdir_p(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* Writes `n` bytes to a unique temporary beside `path` and renames it over `path`. */
static int write_atomically(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    static atomic_ulong serial;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lu", path, (long)getpid(),
             (unsigned long)atomic_fetch_add(&serial, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = 1;
    const void *parts[2] = {a, b};
    size_t sizes[2] = {na, nb};
    for (int i = 0; i < 2 && ok; i++) {
        const char *p = parts[i];
        size_t left = sizes[i];
        while (left && ok) {
            ssize_t w = write(fd, p, left);
            ok = w > 0;
            if (ok) {
                p += w;
                left -= (size_t)w;
            }
        }
    }
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    return -1;
}

void dc_store(const unsigned char *key, size_t keylen, const char *name, const void *payload,
              size_t size) {
    char *dir = dc_dir();
    strbuf sub = {0};
    if (dir)
        sb_printf(&sub, "%s/kernels", dir);
    char *kdir = sb_take(&sub);
    char *path = dir ? entry_path(dir, key, keylen) : NULL;
    size_t namelen = strlen(name);
    dc_header h = {
        .format = DC_FORMAT, .namelen = (uint32_t)namelen, .keylen = keylen, .size = size};
    memcpy(h.magic, DC_MAGIC, 8);
    h.checksum = checksum(name, namelen, key, keylen, payload, size);
    size_t headlen = sizeof h + namelen + keylen;
    unsigned char *head = path && kdir ? fu_malloc(headlen) : NULL;
    if (head && mkdir_p(kdir) == 0) {
        memcpy(head, &h, sizeof h);
        memcpy(head + sizeof h, name, namelen);
        memcpy(head + sizeof h + namelen, key, keylen);
        if (write_atomically(path, head, headlen, payload, size) == 0)
            atomic_fetch_add(&n_writes, 1);
    }
    fu_free(head);
    fu_free(path);
    fu_free(kdir);
    fu_free(dir);
    fu_clear_error();
    fusor_cache_trim(0, NULL); /* keeps the cache within its limit */
    fu_clear_error();
}

/* ------------------------------------------------------------------ public: cache */

fusor_status fusor_cache_dir(char **path) {
    if (!path)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_cache_dir: NULL");
    *path = dc_dir();
    return *path ? FUSOR_OK : FUSOR_ERROR_IO;
}

typedef void (*entry_fn)(void *ctx, const char *dir, const char *file, const struct stat *sb);

/* Calls fn for every entry file (and leftover temporary) of the kernels directory. */
static fusor_status each_entry(entry_fn fn, void *ctx, char **dirout) {
    char *dir = dc_dir();
    if (!dir)
        return FUSOR_ERROR_IO;
    strbuf s = {0};
    sb_printf(&s, "%s/kernels", dir);
    char *kdir = sb_take(&s);
    if (!kdir) {
        fu_free(dir);
        return fu_oom("a path");
    }
    DIR *d = opendir(kdir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strstr(e->d_name, ".fkc"))
                continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", kdir, e->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
                fn(ctx, kdir, e->d_name, &sb);
        }
        closedir(d);
    }
    fu_free(kdir);
    if (dirout)
        *dirout = dir;
    else
        fu_free(dir);
    return FUSOR_OK;
}

typedef struct listing {
    strbuf text;
    long entries, bad;
    long long bytes;
} listing;

static void list_one(void *ctx, const char *dir, const char *file, const struct stat *sb) {
    listing *l = ctx;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t n = 0;
    unsigned char *buf = read_all(path, &n);
    dc_header h;
    const char *name;
    const unsigned char *key, *payload;
    int ok = buf && !strstr(file, ".tmp.") && parse_entry(buf, n, &h, &name, &key, &payload);
    long age = (long)(time(NULL) - sb->st_mtime);
    sb_printf(&l->text, "%s  %8lld bytes  %-24.*s  used %ld s ago%s\n", file, (long long)sb->st_size,
              ok ? (int)h.namelen : 1, ok ? name : "?", age, ok ? "" : "  (invalid: ignored)");
    l->entries += ok;
    l->bad += !ok;
    l->bytes += sb->st_size;
    fu_free(buf);
}

fusor_status fusor_cache_list(char **text) {
    if (!text)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_cache_list: NULL");
    *text = NULL;
    listing l = {0};
    fusor_status st = each_entry(list_one, &l, NULL);
    if (st) {
        sb_discard(&l.text);
        return st;
    }
    sb_printf(&l.text, "%s", "");
    *text = sb_take(&l.text);
    return *text ? FUSOR_OK : fu_oom("the cache listing");
}

static void remove_one(void *ctx, const char *dir, const char *file, const struct stat *sb) {
    (void)sb;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (unlink(path) == 0)
        (*(long *)ctx)++;
}

fusor_status fusor_cache_clear(long *removed) {
    long n = 0;
    fusor_status st = each_entry(remove_one, &n, NULL);
    if (removed)
        *removed = n;
    return st;
}

/* ------------------------------------------------------------------ trimming */

uint64_t dc_limit(void) {
    const char *v = getenv("FUSOR_CACHE_MAX_SIZE");
    uint64_t b = v ? mem_parse_bytes(v) : 0;
    return b ? b : DC_DEFAULT_LIMIT;
}

typedef struct trim_entry {
    char file[256];
    long long bytes;
    struct timespec used;
    int temporary;
} trim_entry;

typedef struct trim_scan {
    trim_entry *e;
    size_t n, cap;
    long long bytes;
    int failed;
} trim_scan;

static void trim_one(void *ctx, const char *dir, const char *file, const struct stat *sb) {
    (void)dir;
    trim_scan *t = ctx;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        trim_entry *e = fu_realloc(t->e, cap * sizeof *e);
        if (!e) {
            t->failed = 1;
            return;
        }
        t->e = e;
        t->cap = cap;
    }
    trim_entry *e = &t->e[t->n++];
    snprintf(e->file, sizeof e->file, "%s", file);
    e->bytes = (long long)sb->st_size;
    e->used = sb->st_mtim;
    e->temporary = strstr(file, ".tmp.") != NULL;
    t->bytes += e->bytes;
}

static int older_first(const void *a, const void *b) {
    const trim_entry *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec) return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec) return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->file, y->file);
}

fusor_status fusor_cache_trim(uint64_t max_bytes, long *removed) {
    if (removed) *removed = 0;
    if (!max_bytes) max_bytes = dc_limit();
    trim_scan t = {0};
    char *dir = NULL;
    fusor_status st = each_entry(trim_one, &t, &dir);
    if (!st && t.failed) st = fu_oom("the cache's entry list");
    long n = 0;
    if (!st) {
        qsort(t.e, t.n, sizeof *t.e, older_first);
        time_t now = time(NULL);
        /* Below the limit by a quarter, so that the next writes do not trim again; and
         * temporaries a crashed writer left an hour ago or more, whatever the size. */
        long long target = t.bytes > (long long)max_bytes ? (long long)(max_bytes / 4 * 3) : t.bytes;
        for (size_t i = 0; i < t.n; i++) {
            int stale_tmp = t.e[i].temporary && now - t.e[i].used.tv_sec > 3600;
            if (!stale_tmp && (t.bytes <= target || t.e[i].temporary)) continue;
            char path[4400];
            snprintf(path, sizeof path, "%s/kernels/%s", dir, t.e[i].file);
            if (unlink(path) == 0) {
                t.bytes -= t.e[i].bytes;
                n += !t.e[i].temporary;
            }
        }
    }
    fu_free(t.e);
    fu_free(dir);
    if (removed) *removed = n;
    return st;
}

fusor_status fusor_cache_stats(char **text) {
    if (!text)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_cache_stats: NULL");
    *text = NULL;
    listing l = {0};
    char *dir = NULL;
    fusor_status st = each_entry(list_one, &l, &dir);
    sb_discard(&l.text);
    if (st)
        return st;
    dc_counters c;
    dc_get_counters(&c);
    strbuf s = {0};
    sb_printf(&s,
              "directory: %s\nenabled: %s\nentries: %ld (%lld bytes; limit %llu bytes, "
              "FUSOR_CACHE_MAX_SIZE)%s\n"
              "this process: %ld hits, %ld misses, %ld writes, %ld rejected\n",
              dir, dc_enabled(0) ? "yes" : "no (FUSOR_CACHE)", l.entries, l.bytes,
              (unsigned long long)dc_limit(), l.bad ? " and invalid files that will be replaced" : "", c.hits, c.misses, c.writes,
              c.rejected);
    fu_free(dir);
    *text = sb_take(&s);
    return *text ? FUSOR_OK : fu_oom("the cache statistics");
}

/* ------------------------------------------------------------------ bandwidth */

static pthread_mutex_t bw_lock = PTHREAD_MUTEX_INITIALIZER;
static double bw_value;
static int bw_threads;

/* The CPU's model name, so that a cache directory shared between machines (a home on
 * NFS) keeps one figure per kind of machine. */
static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10))
            continue;
        char *v = strchr(line, ':');
        if (!v)
            break;
        v += 1 + (v[1] == ' ');
        v[strcspn(v, "\n\t")] = 0;
        snprintf(buf, n, "%s", v);
        break;
    }
    fclose(f);
}

static int read_bandwidth(const char *path, const char *cpu, int threads, double *out) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[640];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = 0;
        double v = strtod(t2 + 1, NULL);
        if (!strcmp(line, cpu) && atoi(t1 + 1) == threads && v > 0) {
            *out = v;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Rewrites the file with this (cpu, threads) line replaced. */
static void write_bandwidth(const char *dir, const char *path, const char *cpu, int threads,
                            double v) {
    strbuf s = {0};
    FILE *f = fopen(path, "r");
    char line[640];
    while (f && fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t');
        if (!t1 || strchr(line, '\n') == NULL)
            continue;
        size_t cl = (size_t)(t1 - line);
        if (cl == strlen(cpu) && !strncmp(line, cpu, cl) && atoi(t1 + 1) == threads)
            continue;
        sb_printf(&s, "%s", line);
    }
    if (f)
        fclose(f);
    sb_printf(&s, "%s\t%d\t%.6g\n", cpu, threads, v);
    char *text = sb_take(&s);
    if (text && mkdir_p(dir) == 0)
        write_atomically(path, text, strlen(text), "", 0);
    fu_free(text);
}

fusor_status fusor_copy_bandwidth(int remeasure, double *bytes_per_second, int *threads) {
    if (!bytes_per_second)
        return fu_error(FUSOR_ERROR_INVALID_ARGUMENT, "fusor_copy_bandwidth: NULL");
    int n = host_default_threads();
    pthread_mutex_lock(&bw_lock);
    fusor_status st = FUSOR_OK;
    if (!bw_value || bw_threads != n || remeasure) {
        char cpu[256];
        cpu_model(cpu, sizeof cpu);
        char *dir = dc_enabled(0) ? dc_dir() : NULL;
        fu_clear_error();
        char *path = NULL;
        if (dir) {
            strbuf s = {0};
            sb_printf(&s, "%s/bandwidth.txt", dir);
            path = sb_take(&s);
        }
        double v = 0;
        if (remeasure || !path || !read_bandwidth(path, cpu, n, &v)) {
            st = host_measure_copy_bandwidth(n, &v);
            if (st == FUSOR_OK && path)
                write_bandwidth(dir, path, cpu, n, v);
        }
        if (st == FUSOR_OK) {
            bw_value = v;
            bw_threads = n;
        }
        fu_free(path);
        fu_free(dir);
    }
    *bytes_per_second = bw_value;
    if (threads)
        *threads = bw_threads;
    pthread_mutex_unlock(&bw_lock);
    return st;
}
