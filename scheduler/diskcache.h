/*
 * diskcache.h — the persistent kernel cache: compiled code kept on disk between
 * processes, and the machine's measured copy bandwidth beside it.
 *
 * An entry is found by a hash of its key and accepted only when the whole key matches
 * and its checksum holds; anything else (truncated, corrupt, written by another build or
 * for another key) is ignored and replaced by a fresh compilation.  Writes go to a
 * temporary file renamed into place, so readers never see half an entry and processes
 * compiling the same kernel at once are safe (the last rename wins; both are valid).
 */
#ifndef FUSOR_DISKCACHE_H
#define FUSOR_DISKCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fusor.h"

/* A fast 64-bit hash (8 bytes a step, murmur's finaliser): the file name of an entry, its
 * checksum, and the context's front cache.  Not cryptographic; keys are compared whole. */
static inline uint64_t dc_hash64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h ^= w * 0xff51afd7ed558ccdull;
        h = (h << 29 | h >> 35) * 0x9e3779b97f4a7c15ull;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)p[i] << (8 * i);
    h ^= t * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Whether the cache is used, given a context's setting (0 default, 1 on, -1 off) and
 * FUSOR_CACHE from the environment ("0", "off", "no", "false" turn the default off). */
int dc_enabled(int setting);
/* The directory: $FUSOR_CACHE_DIR, else $XDG_CACHE_HOME/fusor, else $HOME/.cache/fusor
 * (fu_malloc'd; NULL with an error when none can be named). */
char *dc_dir(void);
/* Identifies this build of the library (its ELF build id, else the version), for keys. */
const char *dc_build_id(void);

/* The payload stored under `key`, fu_malloc'd, or NULL when there is no valid entry. */
void *dc_load(const unsigned char *key, size_t keylen, size_t *size);
/* Stores a payload under `key`, with the kernel's name for `fusor cache list`.  Best
 * effort: a cache that cannot be written is not an error. */
void dc_store(const unsigned char *key, size_t keylen, const char *name, const void *payload,
              size_t size);

/* The most bytes the cache keeps: $FUSOR_CACHE_MAX_SIZE ("512M", "2G"), else 1 GiB.  A
 * write that takes it past the limit removes the least recently used entries (a load
 * marks its entry used) down to three quarters of it. */
#define DC_DEFAULT_LIMIT (1ull << 30)
uint64_t dc_limit(void);

/* Entries seen by this process, for tests and `fusor cache stats`. */
typedef struct dc_counters {
    long hits, misses, writes, rejected;
} dc_counters;
void dc_get_counters(dc_counters *out);

#endif
