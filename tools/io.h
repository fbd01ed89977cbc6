/*
 * io.h — reading a whole file for the command line (kernel sources).
 */
#ifndef FUSOR_TOOLS_IO_H
#define FUSOR_TOOLS_IO_H

/* The file's bytes, NUL-terminated (malloc'd; the caller frees), or NULL after printing
 * "fusor: cannot read PATH: reason" on stderr. */
char *tool_read_file(const char *path);

#endif
