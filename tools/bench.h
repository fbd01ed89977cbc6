/*
 * bench.h — the performance commands of the `fusor` command line (tools/bench.c):
 * `fusor bench`, `fusor cache`, and the copy bandwidth of `fusor info --bandwidth`.
 */
#ifndef FUSOR_TOOLS_BENCH_H
#define FUSOR_TOOLS_BENCH_H

/* Each takes the arguments after its command word and returns the exit status. */
int fusor_cmd_bench(int argc, char **argv);
int fusor_cmd_cache(int argc, char **argv);
int fusor_cmd_bandwidth(int remeasure);

#endif
