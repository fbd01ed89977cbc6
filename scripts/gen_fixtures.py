#!/usr/bin/env python3
"""Generates tests/fixtures/ops/: NumPy's result of every IR element-wise op on every dtype.

Run with NumPy 2 (the reference for fusor's semantics):  python scripts/gen_fixtures.py

Layout (read by tests/unit/test_scalar_numpy.c):
  <D>.in1.npy   (N1,)     unary operands of dtype D
  <D>.in2.npy   (2, N2)   binary operand pairs (a row, b row) of dtype D
  <R>.res1.npy  (k, N1)   rows of results of dtype R of unary ops (and casts)
  <R>.res2.npy  (k, N2)   rows of results of dtype R of binary ops
  manifest.txt  one line per row: op operand-dtype result-dtype row skip
                where skip lists the columns to ignore ("-" when none)
  reduce.<D>.npy, reduce.<D>.res.npy   values and their [np.sum, np.mean] (f16, f32, f64), which
                the interpreter's pairwise sum must match exactly (tests/unit/test_interp.c)
  NUMPY_VERSION.txt

Columns are skipped only where ir.h deliberately differs from NumPy:
  * cast float -> integer of NaN or of a value whose truncation is out of range
    (NumPy: undefined behaviour of C; ir.h: saturate, NaN -> 0);
  * integer ** negative exponent (NumPy raises; ir.h: the truncated true value);
  * integer reciprocal of 0 (NumPy casts 1.0/0 = inf to an integer: undefined behaviour;
    ir.h: 0);
  * fmin/fmax of +0 and -0 (NumPy's result depends on its SIMD path; ir.h: b).
Integer division and remainder by zero give 0 in both and are kept, as is MIN // -1.
Integer rint is left out: NumPy has no integer loop (it returns floats); ir.h: a itself.
"""
import os
import sys
import warnings

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")
N1, N2 = 40, 64
rng = np.random.default_rng(20240611)

DTYPES = {
    "bool": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
    "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
    "f32": np.float32, "f64": np.float64, "f16": np.float16,
}
INTS = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"]
FLOATS = ["f32", "f64", "f16"]

# fusor op name -> NumPy ufunc.  Unary ops first.
UNARY_FLOAT = {
    "neg": np.negative, "abs": np.absolute, "sign": np.sign, "sqrt": np.sqrt, "cbrt": np.cbrt,
    "square": np.square, "reciprocal": np.reciprocal, "exp": np.exp, "exp2": np.exp2,
    "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos,
    "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh, "floor": np.floor,
    "ceil": np.ceil, "trunc": np.trunc, "rint": np.rint,
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
}
UNARY_INT = {
    "neg": np.negative, "not": np.invert, "abs": np.absolute, "sign": np.sign,
    "square": np.square, "reciprocal": np.reciprocal, "floor": np.floor, "ceil": np.ceil,
    "trunc": np.trunc,
}
UNARY_BOOL = {"not": np.logical_not, "abs": np.absolute}
BINARY_FLOAT = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "fmod": np.fmod, "pow": np.power,
    "arctan2": np.arctan2, "hypot": np.hypot, "copysign": np.copysign,
    "minimum": np.minimum, "maximum": np.maximum, "fmin": np.fmin, "fmax": np.fmax,
}
BINARY_INT = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "floordiv": np.floor_divide,
    "mod": np.remainder, "fmod": np.fmod, "pow": np.power, "and": np.bitwise_and,
    "or": np.bitwise_or, "xor": np.bitwise_xor, "shl": np.left_shift, "shr": np.right_shift,
    "minimum": np.minimum, "maximum": np.maximum,
}
BINARY_BOOL = {
    "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
    "minimum": np.minimum, "maximum": np.maximum,
}
COMPARE = {
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
}


def fill(edges, n, draw):
    """edges, then random values from draw(k), n in all."""
    edges = list(edges)[:n]
    return edges + list(draw(n - len(edges)))


def float_unary_inputs(d):
    t = DTYPES[d]
    fi = np.finfo(t)
    near_exp_max = {"f16": 11.08, "f32": 88.7, "f64": 709.7}[d]
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 2.5, 3.5, np.inf, -np.inf, np.nan,
             fi.smallest_subnormal, -fi.smallest_normal * 0.75, fi.smallest_normal, fi.max,
             -fi.max, near_exp_max, -near_exp_max - 40, 1e-8, np.pi, -np.pi / 2, 0.999999,
             -0.9, 127.9, -128.9, 65535.5, -2147483648.7, 3e9, 9.3e18, 1.9e19]

    def draw(k):
        h = k // 2
        return list(rng.uniform(-1, 1, h)) + list(rng.standard_normal(k - h) * 10)
    return np.array(fill(edges, N1, draw), dtype=np.float64).astype(t)


def float_binary_inputs(d):
    t = DTYPES[d]
    edges = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan]
    a = [x for x in edges for _ in edges]
    b = [y for _ in edges for y in edges]
    k = N2 - len(a)
    ra = rng.standard_normal(k) * 10.0 ** rng.integers(-3, 4, k)
    rb = rng.standard_normal(k) * 10.0 ** rng.integers(-3, 4, k)
    rb[: k // 3] = np.round(rb[: k // 3])  # integral exponents for pow
    fi = np.finfo(t)
    ra[-1], rb[-1] = fi.max, 2.0           # overflow of mul and pow
    ra[-2], rb[-2] = fi.smallest_subnormal, 0.5
    return np.array([a + list(ra), b + list(rb)], dtype=np.float64).astype(t)


def int_unary_inputs(d):
    ii = np.iinfo(DTYPES[d])
    edges = [0, 1, 2, 3, 7, ii.max, ii.max - 1, ii.max // 2, ii.max // 2 + 1]
    if ii.min < 0:
        edges += [-1, -2, -7, ii.min, ii.min + 1, 100, -100]

    def draw(k):
        h = k // 2
        t = DTYPES[d]
        return list(rng.integers(ii.min, ii.max, h, endpoint=True, dtype=t)) + \
            list(rng.integers(max(ii.min, -20), 20, k - h, endpoint=True, dtype=t))
    return np.array(fill(edges, N1, draw), dtype=object).astype(DTYPES[d])


def int_binary_inputs(d):
    ii = np.iinfo(DTYPES[d])
    bits = ii.bits
    if ii.min < 0:
        edges = [0, 1, -1, ii.min, ii.max, 7, -7]
    else:
        edges = [0, 1, 2, ii.max, ii.max - 1, 7, bits]
    a = [x for x in edges for _ in edges]
    b = [y for _ in edges for y in edges]
    k = N2 - len(a)
    t = DTYPES[d]
    ra = list(rng.integers(ii.min, ii.max, k, endpoint=True, dtype=t))
    rb = list(rng.integers(max(ii.min, -2), bits + 2, k, endpoint=True, dtype=t))  # shifts, powers
    rb[0], rb[1] = bits - 1, bits
    return np.array([a + ra, b + rb], dtype=object).astype(DTYPES[d])


def bool_inputs():
    i1 = np.array([False, True] * (N1 // 2), dtype=np.bool_)
    pairs = [(False, False), (False, True), (True, False), (True, True)] * (N2 // 4)
    return i1, np.array(pairs, dtype=np.bool_).T.copy()


class Results:
    def __init__(self):
        self.rows = {(d, k): [] for d in DTYPES for k in (1, 2)}
        self.manifest = []

    def add(self, op, src, dst, arity, values, skip=()):
        values = np.asarray(values)
        want = np.dtype(DTYPES[dst])
        if values.dtype != want:
            sys.exit(f"{op} {src}: NumPy gave {values.dtype}, expected {want}")
        rows = self.rows[(dst, arity)]
        skip = sorted(int(i) for i in skip)
        self.manifest.append(f"{op} {src} {dst} {len(rows)} "
                             + (",".join(map(str, skip)) if skip else "-"))
        rows.append(values)


def float_to_int_skips(x, dst):
    """Columns where casting float x to integer dtype dst is undefined in NumPy (C)."""
    ii = np.iinfo(DTYPES[dst])
    t = np.trunc(x.astype(np.float64))
    with np.errstate(invalid="ignore"):
        bad = np.isnan(t) | (t >= float(ii.max) + 1) | (t < float(ii.min))
    return np.nonzero(bad)[0]


def generate():
    in1, in2 = {}, {}
    # f16 last, so the random draws of the other dtypes stay what they were before it.
    for d in ["f32", "f64"]:
        in1[d], in2[d] = float_unary_inputs(d), float_binary_inputs(d)
    for d in INTS:
        in1[d], in2[d] = int_unary_inputs(d), int_binary_inputs(d)
    in1["bool"], in2["bool"] = bool_inputs()
    in1["f16"], in2["f16"] = float_unary_inputs("f16"), float_binary_inputs("f16")
    for d in DTYPES:
        assert in1[d].shape == (N1,) and in2[d].shape == (2, N2), d

    res = Results()
    for d in DTYPES:
        x, (a, b) = in1[d], in2[d]
        t = DTYPES[d]
        if d in FLOATS:
            unary, binary = UNARY_FLOAT, BINARY_FLOAT
        elif d in INTS:
            unary, binary = UNARY_INT, BINARY_INT
        else:
            unary, binary = UNARY_BOOL, BINARY_BOOL
        for op, f in unary.items():
            skip = np.nonzero(x == 0)[0] if (op == "reciprocal" and d in INTS) else ()
            y = f(x)
            res.add(op, d, "bool" if y.dtype == np.bool_ else d, 1, y, skip)
        for op, f in binary.items():
            skip, bb = [], b
            if op == "pow" and d in INTS and np.iinfo(t).min < 0:
                skip = np.nonzero(b < 0)[0]
                bb = np.where(b < 0, t(1), b)
            if op in ("fmin", "fmax"):
                skip = np.nonzero((a == 0) & (b == 0) & (np.signbit(a) != np.signbit(b)))[0]
            res.add(op, d, d, 2, f(a, bb, dtype=t), skip)
        for op, f in COMPARE.items():
            res.add(op, d, "bool", 2, f(a, b))
        for dst in DTYPES:
            skip = float_to_int_skips(x, dst) if d in FLOATS and dst in INTS else ()
            res.add("cast", d, dst, 1, x.astype(DTYPES[dst]), skip)
    return in1, in2, res


def save_reductions():
    """reduce.<d>.npy: values whose np.sum (pairwise) the interpreter must match bit for bit;
    reduce.<d>.res.npy: [np.sum(x), np.mean(x)].  The sizes (17 * 61 and 21 * 25) make
    pairwise splits that are multiples of 4 but not of 8, and are 2-D domains too."""
    for d, n in (("f32", 1037), ("f64", 525), ("f16", 1037)):
        x = (rng.standard_normal(n) * 10.0 ** rng.integers(-2, 3, n)).astype(DTYPES[d])
        np.save(os.path.join(OUT, f"reduce.{d}.npy"), x)
        np.save(os.path.join(OUT, f"reduce.{d}.res.npy"), np.array([np.sum(x), np.mean(x)]))


def main():
    warnings.simplefilter("ignore")  # overflow, invalid and divide-by-zero are expected
    if int(np.__version__.split(".")[0]) < 2:
        sys.exit("NumPy 2 is the reference; found " + np.__version__)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy"):
            os.remove(os.path.join(OUT, f))
    with np.errstate(all="ignore"):
        in1, in2, res = generate()
    for d in DTYPES:
        np.save(os.path.join(OUT, f"{d}.in1.npy"), in1[d])
        np.save(os.path.join(OUT, f"{d}.in2.npy"), in2[d])
        for k in (1, 2):
            rows = res.rows[(d, k)]
            if rows:
                np.save(os.path.join(OUT, f"{d}.res{k}.npy"), np.stack(rows))
    save_reductions()
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("# op operand-dtype result-dtype row skipped-columns (scripts/gen_fixtures.py)\n")
        f.write("\n".join(res.manifest) + "\n")
    with open(os.path.join(OUT, "NUMPY_VERSION.txt"), "w") as f:
        f.write(f"numpy {np.__version__}\npython {sys.version.split()[0]}\n"
                f"N1 {N1} N2 {N2}\n")


if __name__ == "__main__":
    main()
