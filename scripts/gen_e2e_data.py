#!/usr/bin/env python3
"""Writes the inputs and NumPy-computed expected outputs of tests/e2e/test_cli.c into
tests/e2e/data/ (beside kernels.fu, whose kernels they belong to).

Run from the repository root:  /work/venv/bin/python scripts/gen_e2e_data.py

Each expected output is what NumPy 2 computes for the kernel's expression on the same
inputs, with the same dtypes (weak Python scalars for literals, NEP 50).
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e", "data")


def save(name, a):
    np.save(os.path.join(OUT, name), a)


def main():
    rng = np.random.default_rng(20240611)
    with np.errstate(all="ignore"):
        # poly(x, c) = c*x*x - 3*x + 1, left to right as the kernel computes it.
        x = rng.uniform(-4, 4, size=(4, 5))
        c = np.float64(2.5)
        save("x_f64.npy", x)
        save("c_0d.npy", np.array(c))                      # a 0-d file: a scalar input
        save("poly_y.npy", c * x * x - 3 * x + 1)
        save("x_f64_fortran.npy", np.asfortranarray(x))    # same values, Fortran order

        # ints: broadcasting (4, 5) with (5,), floor division and remainder by zero.
        a = rng.integers(-1000, 1000, size=(4, 5), dtype=np.int32)
        b = np.array([3, -7, 0, 11, -2], dtype=np.int16)
        save("a_i32.npy", a)
        save("b_i16.npy", b)
        save("ints_s.npy", a + b * 3)
        save("ints_q.npy", a // b)
        save("ints_r.npy", a % b)

        # mixed: u8 + i8 is i16, u8 / i8 is f64.
        u = rng.integers(0, 256, size=12, dtype=np.uint8)
        i = rng.integers(-128, 128, size=12, dtype=np.int8)
        i[3] = 0
        save("u_u8.npy", u)
        save("i_i8.npy", i)
        save("mixed_m.npy", u + i)
        save("mixed_f.npy", u / i)

        # trig in f32 (0.5 is weak, so x * 0.5 stays f32).
        xf = rng.uniform(-3, 3, size=33).astype(np.float32)
        save("x_f32.npy", xf)
        save("trig_y.npy", np.sin(xf) * np.cos(xf) + np.exp(xf * 0.5))

        # compare: an element-wise bool array and two bool reductions.
        y = rng.uniform(-4, 4, size=(5,))
        save("y_f64.npy", y)
        gt = x > y
        save("compare_gt.npy", gt)
        save("compare_any_all.npy", np.array([gt.any(), gt.all()]))

        # stats over x: sum, max, mean, count of positives, and sum(|x|) for the bound.
        save("stats_expected.npy",
             np.array([x.sum(), x.max(), x.mean(), float((x > 0).sum()), np.abs(x).sum()]))

        # -e expressions.
        p = rng.uniform(-2, 2, size=17)
        q = rng.uniform(-2, 2, size=17)
        save("p_f64.npy", p)
        save("q_f64.npy", q)
        save("hypot_out.npy", np.sqrt(p * p + q * q))
        ai8 = rng.integers(-128, 128, size=9, dtype=np.int8)
        save("a_i8.npy", ai8)
        save("weak_out.npy", ai8 * 2 + 1)                 # stays i8 (wraps)
        save("small_y.npy", ai8 + np.int8(-5))            # kernel small with k=-5 (wraps)
        save("scaled_out.npy", xf * 2.5)                  # f32 * weak 2.5 stays f32
        save("sum_p.npy", np.array([p.sum(), np.abs(p).sum()]))

    # Files the loader must refuse.
    with open(os.path.join(OUT, "corrupt.npy"), "wb") as f:
        f.write(b"this is not an npy file\n")
    good = open(os.path.join(OUT, "x_f64.npy"), "rb").read()
    with open(os.path.join(OUT, "truncated.npy"), "wb") as f:
        f.write(good[: len(good) - 24])
    save("x_complex.npy", np.array([1 + 2j, 3 - 4j]))


if __name__ == "__main__":
    main()
