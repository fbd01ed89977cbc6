#include "error.h"

#include <stdarg.h>
#include <stdio.h>

/* Fixed-size so that reporting an out-of-memory error never allocates. */
static _Thread_local char last_message[4096];

fusor_status fu_error(fusor_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

fusor_status fu_oom(const char *what) {
    return fu_error(FUSOR_ERROR_OUT_OF_MEMORY, "out of memory while allocating %s", what);
}

void fu_clear_error(void) { last_message[0] = 0; }

const char *fusor_last_error(void) { return last_message; }

const char *fusor_status_name(fusor_status s) {
    switch (s) {
    case FUSOR_OK: return "FUSOR_OK";
    case FUSOR_ERROR_INVALID_ARGUMENT: return "FUSOR_ERROR_INVALID_ARGUMENT";
    case FUSOR_ERROR_LANGUAGE: return "FUSOR_ERROR_LANGUAGE";
    case FUSOR_ERROR_SHAPE: return "FUSOR_ERROR_SHAPE";
    case FUSOR_ERROR_DTYPE: return "FUSOR_ERROR_DTYPE";
    case FUSOR_ERROR_ALIAS: return "FUSOR_ERROR_ALIAS";
    case FUSOR_ERROR_VALUE: return "FUSOR_ERROR_VALUE";
    case FUSOR_ERROR_OUT_OF_MEMORY: return "FUSOR_ERROR_OUT_OF_MEMORY";
    case FUSOR_ERROR_COMPILE: return "FUSOR_ERROR_COMPILE";
    case FUSOR_ERROR_IO: return "FUSOR_ERROR_IO";
    case FUSOR_ERROR_UNSUPPORTED: return "FUSOR_ERROR_UNSUPPORTED";
    case FUSOR_ERROR_NO_DEVICE: return "FUSOR_ERROR_NO_DEVICE";
    case FUSOR_ERROR_INTERNAL: return "FUSOR_ERROR_INTERNAL";
    }
    return "FUSOR_ERROR_UNKNOWN";
}
