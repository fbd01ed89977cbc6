#!/usr/bin/env python3
"""NumPy, numexpr and Numba on fusor's benchmark cases, same sizes and thread count.

    python3 bench/peers/run_peers.py [--sizes 1e5,1e7] [--threads 2] [--cases dot,...] [--json]

Run by scripts/bench.sh with the venv it makes (bench/peers/.venv: numpy, numexpr,
numba); not part of the test suite.  Each case is timed like bench_cases.c times fusor
(repeat for at least 0.2 s, at least 5 runs, median), on the same inputs (uniform in
[0.5, 2)), with numexpr and Numba limited to the same thread count.  Prints one JSON
object per line and case, or a table.
"""
import argparse
import json
import os
import statistics
import sys
import time


def timed(fn):
    time.sleep(0.005)  # the previous contestant's idle threads stop spinning first
    fn()
    fn()
    runs, start = [], time.perf_counter()
    while len(runs) < 5 or time.perf_counter() - start < 0.2:
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e7")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    t = args.threads
    for var in ("OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS",
                "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(t)
    import numpy as np
    import numexpr as ne
    import numba
    from numba import njit, prange, vectorize

    ne.set_num_threads(t)
    numba.set_num_threads(t)
    versions = {"numpy": np.__version__, "numexpr": ne.__version__, "numba": numba.__version__,
                "python": sys.version.split()[0]}

    par = dict(target="parallel")

    @vectorize(["float64(float64, float64)"], **par)
    def nb_triad(b, c):
        return b + 0.5 * c

    @vectorize(["float32(float32, float32)"], **par)
    def nb_saxpy(x, y):
        return np.float32(0.5) * x + y

    @vectorize(["float64(float64)"], **par)
    def nb_poly(x):
        return ((((((0.5 * x - 1.25) * x + 2.0) * x - 0.75) * x + 3.5) * x - 1.0) * x) + 0.25

    @vectorize(["float64(float64, float64)"], **par)
    def nb_sincos(a, b):
        return np.sin(a) ** 2 + np.cos(b) ** 2

    @vectorize(["float64(float64, float64)"], **par)
    def nb_gauss(a, b):
        return np.exp(-a * a) * b

    @vectorize(["float64(float64, float64)"], **par)
    def nb_hypot(a, b):
        return np.sqrt(a * a + b * b)

    @vectorize(["float64(float64, float64)"], **par)
    def nb_where(a, b):
        return a - b if a > b else b * 0.5

    @njit(parallel=True, fastmath=False)
    def nb_dot(a, b):
        s = 0.0
        for i in prange(a.shape[0]):
            s += a[i] * b[i]
        return s

    @njit(parallel=True)
    def nb_softmax(x, out):
        s = 0.0
        for i in prange(x.shape[0]):
            s += np.exp(x[i])
        for i in prange(x.shape[0]):
            out[i] = np.exp(x[i]) / s

    @njit(parallel=True)
    def nb_bs(s, k, tt, r, v, call, put):
        for i in prange(s.shape[0]):
            st = np.sqrt(tt[i])
            d1 = (np.log(s[i] / k[i]) + (r + 0.5 * v * v) * tt[i]) / (v * st)
            d2 = d1 - v * st
            n = [0.0, 0.0]
            for j, d in enumerate((d1, d2)):
                kk = 1 / (1 + 0.2316419 * abs(d))
                p = kk * (0.319381530 + kk * (-0.356563782 + kk * (1.781477937 + kk * (-1.821255978 + kk * 1.330274429))))
                w = 1 - 0.3989422804014327 * np.exp(-0.5 * d * d) * p
                n[j] = 1 - w if d < 0 else w
            disc = k[i] * np.exp(-r * tt[i])
            call[i] = s[i] * n[0] - disc * n[1]
            put[i] = disc * (1 - n[1]) - s[i] * (1 - n[0])

    @njit(parallel=True)
    def nb_three(x, y, v, w):
        for i in prange(x.shape[0]):
            u = 0.5 * x[i] + y[i]
            vv = np.sqrt(u * u + 1)
            v[i] = vv
            w[i] = u - vv

    def np_cnd(d):
        kk = 1 / (1 + 0.2316419 * np.abs(d))
        p = kk * (0.319381530 + kk * (-0.356563782 + kk * (1.781477937 + kk * (-1.821255978 + kk * 1.330274429))))
        w = 1 - 0.3989422804014327 * np.exp(-0.5 * d * d) * p
        return np.where(d < 0, 1 - w, w)

    def np_bs(s, k, tt, r, v):
        st = np.sqrt(tt)
        d1 = (np.log(s / k) + (r + 0.5 * v * v) * tt) / (v * st)
        d2 = d1 - v * st
        disc = k * np.exp(-r * tt)
        return s * np_cnd(d1) - disc * np_cnd(d2), disc * (1 - np_cnd(d2)) - s * (1 - np_cnd(d1))

    bs_ne = ("(log(s / k) + (r + 0.5 * v * v) * tt) / (v * sqrt(tt))")
    cnd_ne = ("where({d} < 0, 0.3989422804014327 * exp(-0.5 * {d} * {d}) * {p}, "
              "1 - 0.3989422804014327 * exp(-0.5 * {d} * {d}) * {p})")
    poly_k = "(1 / (1 + 0.2316419 * abs({d})))"

    def ne_cnd(d):
        kk = poly_k.format(d=d)
        p = f"{kk} * (0.319381530 + {kk} * (-0.356563782 + {kk} * (1.781477937 + {kk} * (-1.821255978 + {kk} * 1.330274429))))"
        return cnd_ne.format(d=d, p=p)

    sizes = [int(float(x)) for x in args.sizes.split(",")]
    rng = np.random.default_rng(42)
    for n in sizes:
        a = 0.5 + 1.5 * rng.random(n)
        b = 0.5 + 1.5 * rng.random(n)
        c3 = 0.5 + 1.5 * rng.random(n)
        out = np.empty(n)
        out2 = np.empty(n)
        x32 = a.astype(np.float32)
        y32 = b.astype(np.float32)
        o32 = np.empty(n, np.float32)
        s, k, tt, r, v = 5 + 25 * a / 2, 1 + 99 * b / 2, 0.25 + 9.75 * c3 / 2, 0.02, 0.30
        d1 = bs_ne
        d2 = f"({bs_ne} - v * sqrt(tt))"
        ne_call = f"s * {ne_cnd(d1)} - k * exp(-r * tt) * {ne_cnd(d2)}"
        ne_put = f"k * exp(-r * tt) * (1 - {ne_cnd(d2)}) - s * (1 - {ne_cnd(d1)})"
        env = dict(a=a, b=b, x32=x32, y32=y32, s=s, k=k, tt=tt, r=r, v=v, out=out)

        def NE(ex, local_dict=None, **kw):
            return ne.evaluate(ex, local_dict=local_dict or env, **kw)

        cases = {
            "triad": (lambda: np.add(a, 0.5 * b, out=out), lambda: NE("a + 0.5 * b", out=out),
                      lambda: nb_triad(a, b, out=out)),
            "saxpy_f32": (lambda: np.add(np.float32(0.5) * x32, y32, out=o32),
                          lambda: NE("0.5 * x32 + y32", out=o32, casting="same_kind"),
                          lambda: nb_saxpy(x32, y32, out=o32)),
            "polynomial": (lambda: np.add(((((((0.5 * a - 1.25) * a + 2.0) * a - 0.75) * a + 3.5) * a - 1.0) * a), 0.25, out=out),
                           lambda: NE("((((((0.5 * a - 1.25) * a + 2.0) * a - 0.75) * a + 3.5) * a - 1.0) * a) + 0.25", out=out),
                           lambda: nb_poly(a, out=out)),
            "sin2_cos2": (lambda: np.add(np.sin(a) ** 2, np.cos(b) ** 2, out=out),
                          lambda: NE("sin(a)**2 + cos(b)**2", out=out),
                          lambda: nb_sincos(a, b, out=out)),
            "exp_gauss": (lambda: np.multiply(np.exp(-a * a), b, out=out),
                          lambda: NE("exp(-a*a) * b", out=out), lambda: nb_gauss(a, b, out=out)),
            "hypot": (lambda: np.sqrt(a * a + b * b, out=out), lambda: NE("sqrt(a*a + b*b)", out=out),
                      lambda: nb_hypot(a, b, out=out)),
            "where": (lambda: np.copyto(out, np.where(a > b, a - b, b * 0.5)),
                      lambda: NE("where(a > b, a - b, b * 0.5)", out=out), lambda: nb_where(a, b, out=out)),
            "dot": (lambda: np.sum(a * b), lambda: NE("sum(a * b)"), lambda: nb_dot(a, b)),
            "softmax": (lambda: np.divide(np.exp(a), np.sum(np.exp(a)), out=out),
                        lambda: NE("exp(a) / es", local_dict={"a": a, "es": NE("sum(exp(a))")}, out=out),
                        lambda: nb_softmax(a, out)),
            "black_scholes": (lambda: np_bs(s, k, tt, r, v),
                              lambda: (NE(ne_call, out=out), NE(ne_put, out=out2)),
                              lambda: nb_bs(s, k, tt, r, v, out, out2)),
            "three_stmt": (lambda: (np.sqrt((0.5 * a + b) ** 2 + 1, out=out), np.subtract(0.5 * a + b, out, out=out2)),
                           lambda: (NE("sqrt((0.5*a + b)**2 + 1)", out=out), NE("(0.5*a + b) - out", out=out2)),
                           lambda: nb_three(a, b, out, out2)),
        }
        only = set(filter(None, args.cases.split(",")))
        for name, (f_np, f_ne, f_nb) in cases.items():
            if only and name not in only:
                continue
            row = {"case": name, "n": n, "threads": t, "numpy_s": timed(f_np), "numexpr_s": timed(f_ne),
                   "numba_s": timed(f_nb), **versions}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                print(f"{name:14s} {n:>10d} {t:3d}  numpy {row['numpy_s']*1e6:10.1f}us  numexpr "
                      f"{row['numexpr_s']*1e6:10.1f}us  numba {row['numba_s']*1e6:10.1f}us", flush=True)


if __name__ == "__main__":
    main()
