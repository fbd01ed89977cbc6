/*
 * c_loops.h — the hand-written C loops every benchmark case is compared with.
 *
 * c_loops.c is compiled twice with the same compiler at -O3 -march=native -fopenmp: as
 * written (suffix _libm: math functions are glibc's scalar libm, one element at a time,
 * which is what gcc does without -ffast-math) and with -ffast-math (suffix _mvec: gcc then
 * calls glibc's libmvec vector functions).  Each loop is an OpenMP parallel for with the
 * same small-size cut-off as fusor's pool, as a careful C programmer would write it.
 */
#ifndef FUSOR_BENCH_C_LOOPS_H
#define FUSOR_BENCH_C_LOOPS_H

#include <stdint.h>

#define C_LOOPS(S)                                                                                 \
    void c_triad##S(int64_t n, const double *b, const double *c, double s, double *a);             \
    void c_saxpy##S(int64_t n, float a, const float *x, float *y);                                 \
    void c_poly##S(int64_t n, const double *x, double *p);                                         \
    void c_sincos##S(int64_t n, const double *a, const double *b, double *out);                    \
    void c_gauss##S(int64_t n, const double *a, const double *b, double *out);                     \
    void c_hypot##S(int64_t n, const double *a, const double *b, double *out);                     \
    void c_select##S(int64_t n, const double *a, const double *b, double *out);                    \
    double c_dot##S(int64_t n, const double *a, const double *b);                                  \
    void c_softmax##S(int64_t n, const double *x, double *out);                                    \
    void c_black_scholes##S(int64_t n, const double *s, const double *k, const double *t,          \
                            double r, double v, double *call, double *put);                        \
    void c_three##S(int64_t n, double a, const double *x, const double *y, double *v, double *w);

C_LOOPS(_libm)
C_LOOPS(_mvec)

#endif
