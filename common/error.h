/*
 * error.h — errors are values.
 *
 * Every failing internal function sets the calling thread's message with fu_error()
 * and returns the status; public functions pass it on.  fusor_last_error() reads it.
 * Nothing in the library prints.
 */
#ifndef FUSOR_ERROR_H
#define FUSOR_ERROR_H

#include "fusor.h"

#if defined(__GNUC__)
#define FU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FU_PRINTF(a, b)
#endif

/* Sets this thread's message (printf-style) and returns `status`. */
fusor_status fu_error(fusor_status status, const char *fmt, ...) FU_PRINTF(2, 3);
/* FUSOR_ERROR_OUT_OF_MEMORY with a message naming what was being allocated. */
fusor_status fu_oom(const char *what);
void fu_clear_error(void);

#endif
