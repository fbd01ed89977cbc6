/*
 * c_loops.c — the C reference loops (see c_loops.h).  SUFFIX is _libm or _mvec.
 */
#include <math.h>
#include <stdint.h>

#include "c_loops.h"

#define CAT2(a, b) a##b
#define CAT(a, b)  CAT2(a, b)
#define FN(name)   CAT(name, SUFFIX)
/* fusor's pool runs arrays below 32,768 elements on the calling thread; so do these. */
#define PAR _Pragma("omp parallel for schedule(static) if (n >= 32768)")

void FN(c_triad)(int64_t n, const double *b, const double *c, double s, double *a) {
    PAR for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

void FN(c_saxpy)(int64_t n, float a, const float *x, float *y) {
    PAR for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + y[i];
}

void FN(c_poly)(int64_t n, const double *x, double *p) {
    PAR for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        p[i] = ((((((0.5 * v - 1.25) * v + 2.0) * v - 0.75) * v + 3.5) * v - 1.0) * v) + 0.25;
    }
}

void FN(c_sincos)(int64_t n, const double *a, const double *b, double *out) {
    PAR for (int64_t i = 0; i < n; i++) {
        double s = sin(a[i]), c = cos(b[i]);
        out[i] = s * s + c * c;
    }
}

void FN(c_gauss)(int64_t n, const double *a, const double *b, double *out) {
    PAR for (int64_t i = 0; i < n; i++) out[i] = exp(-a[i] * a[i]) * b[i];
}

void FN(c_hypot)(int64_t n, const double *a, const double *b, double *out) {
    PAR for (int64_t i = 0; i < n; i++) out[i] = sqrt(a[i] * a[i] + b[i] * b[i]);
}

void FN(c_select)(int64_t n, const double *a, const double *b, double *out) {
    PAR for (int64_t i = 0; i < n; i++) out[i] = a[i] > b[i] ? a[i] - b[i] : b[i] * 0.5;
}

double FN(c_dot)(int64_t n, const double *a, const double *b) {
    double s = 0;
    /* The reduction clause lets gcc vectorise the sum (as fusor's reassociating sum). */
    _Pragma(
        "omp parallel for simd schedule(static) reduction(+ : s) if (n >= 32768)") for (int64_t i =
                                                                                            0;
                                                                                        i < n; i++)
        s += a[i] * b[i];
    return s;
}

void FN(c_softmax)(int64_t n, const double *x, double *out) {
    double s = 0;
    _Pragma(
        "omp parallel for simd schedule(static) reduction(+ : s) if (n >= 32768)") for (int64_t i =
                                                                                            0;
                                                                                        i < n; i++)
        s += exp(x[i]);
    double inv = 1 / s;
    PAR for (int64_t i = 0; i < n; i++) out[i] = exp(x[i]) * inv;
}

static inline double cnd(double d) {
    double k = 1 / (1 + 0.2316419 * fabs(d));
    double p = k * (0.319381530 +
                    k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))));
    double w = 1 - 0.3989422804014327 * exp(-0.5 * d * d) * p;
    return d < 0 ? 1 - w : w;
}

void FN(c_black_scholes)(int64_t n, const double *s, const double *k, const double *t, double r,
                         double v, double *call, double *put) {
    PAR for (int64_t i = 0; i < n; i++) {
        double st = sqrt(t[i]);
        double d1 = (log(s[i] / k[i]) + (r + 0.5 * v * v) * t[i]) / (v * st);
        double d2 = d1 - v * st;
        double disc = k[i] * exp(-r * t[i]);
        double n1 = cnd(d1), n2 = cnd(d2);
        call[i] = s[i] * n1 - disc * n2;
        put[i] = disc * (1 - n2) - s[i] * (1 - n1);
    }
}

void FN(c_three)(int64_t n, double a, const double *x, const double *y, double *v, double *w) {
    PAR for (int64_t i = 0; i < n; i++) {
        double u = a * x[i] + y[i];
        double vv = sqrt(u * u + 1);
        v[i] = vv;
        w[i] = u - vv;
    }
}
