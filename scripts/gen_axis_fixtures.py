#!/usr/bin/env python3
"""Writes tests/fixtures/axis/: NumPy's results of axis reductions, the expected values of
tests/unit/test_axis.c (the interpreter and the JIT must reproduce them).

Run from the repository root:  /work/venv/bin/python scripts/gen_axis_fixtures.py

Layout:
  manifest.txt   one case per line, tab-separated:
                   name  check  kernel-source
                 check is "exact" (integers, bools, min/max: bit for bit), a relative
                 tolerance such as "1e-12" (float sums, products and means: NumPy sums an
                 outer axis in order and an inner one pairwise, fusor always pairwise), or
                 "error:<STATUS>" (the launch must fail with that fusor_status name).
  <name>.<param>.npy   the inputs, by parameter name
  <name>.<out>.npy     NumPy's result for each output (absent for error cases)
  NUMPY_VERSION.txt
"""
import os
import sys
import warnings

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "axis")
rng = np.random.default_rng(20250808)

DT = {"f64": np.float64, "f32": np.float32, "i32": np.int32, "i64": np.int64, "u8": np.uint8,
      "i8": np.int8, "bool": np.bool_}
OPS = {"sum": np.sum, "prod": np.prod, "min": np.min, "max": np.max, "mean": np.mean,
       "any": np.any, "all": np.all}

cases = []


def values(dt, shape):
    if dt == "bool":
        return rng.random(shape) < 0.6
    if dt in ("f64", "f32"):
        return rng.uniform(-2.0, 2.0, shape).astype(DT[dt])
    if dt == "u8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.integers(-5, 6, shape).astype(DT[dt])


def tol(op, dt, res):
    if res.dtype.kind == "f" and op in ("sum", "prod", "mean"):
        return "1e-5" if res.dtype == np.float32 else "1e-12"
    return "exact"


def axis_text(axis):
    if isinstance(axis, tuple):
        return "(" + ", ".join(str(a) for a in axis) + ")"
    return str(axis)


def add(name, check, source, inputs, outputs):
    cases.append((name, check, source))
    for k, v in inputs.items():
        np.save(os.path.join(OUT, f"{name}.{k}.npy"), v)
    for k, v in outputs.items():
        np.save(os.path.join(OUT, f"{name}.{k}.npy"), np.asarray(v))


def reduction_case(op, dt, shape, axis, keepdims=False, dims=None):
    x = values(dt, shape)
    ty = f"{dt}[{', '.join(dims)}]" if dims else f"{dt}[]"
    kd = ", keepdims=true" if keepdims else ""
    src = f"kernel k(x: {ty}) -> (y) {{ y = {op}(x, axis={axis_text(axis)}{kd}) }}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = OPS[op](x, axis=axis, keepdims=keepdims)
    name = f"{op}_{dt}_{'x'.join(map(str, shape))}_a{axis_text(axis).replace(', ', '_').strip('()')}"
    if keepdims:
        name += "_kd"
    if dims:
        name += "_dims"
    add(name, tol(op, dt, np.asarray(y)), src, {"x": x}, {"y": y})


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    for op in OPS:
        for dt in ("f64", "f32", "i32", "u8", "bool"):
            if op in ("mean",) and dt == "bool":
                continue
            for axis in (0, 1, -1):
                reduction_case(op, dt, (7, 9), axis)
            for axis in (0, 1, -1, (0, 2)):
                reduction_case(op, dt, (3, 4, 5), axis)
        reduction_case(op, "f64", (4, 6), 1, keepdims=True)
        reduction_case(op, "i64", (2, 3, 4), -2, dims=("a", "b", "c"))
        reduction_case(op, "f64", (2, 3, 4), (0, -1), dims=("a", "b", "c"))
        reduction_case(op, "i8", (5, 300), 1)
    # Long rows: more than one HOST_BLOCK (4096) along the axis.
    reduction_case("sum", "f64", (2, 5000), 1)
    reduction_case("max", "f32", (5000, 2), 0)
    # Empty axes: sum 0, prod 1, any false, all true; min/max have no identity.
    for op in ("sum", "prod", "any", "all"):
        reduction_case(op, "f64" if op in ("sum", "prod") else "bool", (0, 3), 0)
        reduction_case(op, "i32", (4, 0), 1)
    reduction_case("sum", "f64", (3, 0), 0)  # an empty result of a non-empty axis
    reduction_case("min", "f64", (3, 0), 0)  # min of an empty result: no error in NumPy
    for op in ("min", "max"):
        x = np.zeros((0, 3))
        add(f"{op}_empty_axis", "error:FUSOR_ERROR_VALUE",
            f"kernel k(x: f64[]) -> (y) {{ y = {op}(x, axis=0) }}", {"x": x}, {})
    # gufunc signatures: matvec over loop dimensions, keepdims normalisation, outputs of
    # different shapes from one kernel, element-wise work on a reduction's result.
    x = values("f64", (2, 3, 4))
    w = values("f64", (4,))
    add("matvec_loop", "1e-12",
        "kernel k(x: f64[n, k], w: f64[k]) -> (y: f64[n]) { y = sum(x * w, axis=-1) }",
        {"x": x, "w": w}, {"y": (x * w).sum(axis=-1)})
    x = values("f64", (5, 6)) + 3.0
    add("normalize", "1e-12",
        "kernel k(x: f64[n, m]) -> (y: f64[n, m]) { y = x / sum(x, axis=1, keepdims=true) }",
        {"x": x}, {"y": x / x.sum(axis=1, keepdims=True)})
    x = values("f32", (4, 5))
    t = values("f32", (5,))
    add("mixed", "1e-5",
        "kernel k(x: f32[r, c], t: f32[c]) -> (s: f32[r], d: f32[r, c], m: f32[c], n: i64) {\n"
        "  let mx = max(x, axis=1, keepdims=true)\n"
        "  s = sum(exp(x - mx), axis=-1)\n"
        "  d = x - mean(x, axis=0) + t\n"
        "  m = min(x * 2, axis=0)\n"
        "  n = 7\n}",
        {"x": x, "t": t},
        {"s": np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=-1),
         "d": x - x.mean(axis=0) + t, "m": (x * 2).min(axis=0), "n": np.int64(7)})
    x = values("f64", (3, 4, 5))
    add("nested", "1e-12",
        "kernel k(x: f64[a, b, c]) -> (y: f64[a]) { y = sum(max(x, axis=2) * 2, axis=1) }",
        {"x": x}, {"y": (x.max(axis=2) * 2).sum(axis=1)})
    x = values("i32", (6, 7))
    add("int_rowsum_cast", "exact",
        "kernel k(x: i32[n, m]) -> (y: f64[n]) { y = sum(x, axis=1) }",
        {"x": x}, {"y": x.sum(axis=1).astype(np.float64)})
    # Whole-array reductions in a kernel with axis reductions: over all the argument's axes,
    # a 0-d array (NumPy's x.sum() and friends).
    x = values("f64", (5, 7))
    add("whole_mixed", "1e-12",
        "kernel k(x: f64[n, m]) -> (y: f64[n, m], c: f64[m], s: f64[]) {\n"
        "  y = x - mean(x)\n"
        "  c = sum(x, axis=0) / max(x)\n"
        "  s = sum(x)\n}",
        {"x": x}, {"y": x - x.mean(), "c": x.sum(axis=0) / x.max(), "s": x.sum()})
    x = values("i32", (4, 6))
    add("whole_int", "exact",
        "kernel k(x: i32[n, m]) -> (y: i32[n], r: bool[]) {\n"
        "  y = max(x, axis=1) - min(x)\n"
        "  r = any(x > 4) & all(sum(x, axis=0) < 100)\n}",
        {"x": x}, {"y": x.max(axis=1) - x.min(), "r": np.any(x > 4) & np.all(x.sum(axis=0) < 100)})
    x = values("f32", (3, 4, 5))
    add("whole_mean_f32", "1e-5",
        "kernel k(x: f32[a, b, c]) -> (y: f32[a, b]) { y = sum(x, axis=2) / mean(x * x) }",
        {"x": x}, {"y": x.sum(axis=2) / (x * x).mean()})
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        for name, check, src in cases:
            f.write(f"{name}\t{check}\t{src.replace(chr(10), chr(92) + 'n')}\n")
    with open(os.path.join(OUT, "NUMPY_VERSION.txt"), "w") as f:
        f.write(np.__version__ + "\n")
    print(f"{len(cases)} cases in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
