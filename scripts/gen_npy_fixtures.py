#!/usr/bin/env python3
"""Writes the .npy fixtures of tests/unit/test_npy.c into tests/fixtures/npy/ with NumPy.

Run from the repository root:  /work/venv/bin/python scripts/gen_npy_fixtures.py

Every numeric fixture holds, at C-order position i, the value v(i) below; the C test
recomputes v(i) on its own and compares, so both sides must keep the formula in step:

    raw(i) = (i + 1) * 0x9E3779B97F4A7C15  mod 2**64
    bool:    (raw >> 32) % 3 == 0
    ints:    raw wrapped to the type (its low bits, two's complement)
    floats:  (((raw >> 40) % 4001) - 2000) / 16        (exact in f16, f32 and f64)
"""
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "npy")

DTYPES = {
    "b1": np.bool_, "i1": np.int8, "i2": np.int16, "i4": np.int32, "i8": np.int64,
    "u1": np.uint8, "u2": np.uint16, "u4": np.uint32, "u8": np.uint64,
    "f4": np.float32, "f8": np.float64, "f2": np.float16,
}
SHAPES = {0: (), 1: (5,), 2: (3, 4), 3: (2, 3, 4)}


def values(code, shape):
    n = int(np.prod(shape, dtype=np.int64))
    raw = (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    if code == "b1":
        v = (raw >> np.uint64(32)) % np.uint64(3) == 0
    elif code[0] in "iu":
        v = raw.astype(DTYPES[code])  # wraps: keeps the low bits
    else:
        v = (((raw >> np.uint64(40)) % np.uint64(4001)).astype(np.int64) - 2000) / 16.0
        v = v.astype(DTYPES[code])
    return v.reshape(shape)


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, arr, allow_pickle=arr.dtype == object)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".npy"):
            os.remove(os.path.join(OUT, old))
    for code in DTYPES:
        for rank, shape in SHAPES.items():
            save(f"{code}_r{rank}.npy", values(code, shape))
        # Fortran order: NumPy writes the elements in column-major order.
        save(f"{code}_r3_f.npy", np.asfortranarray(values(code, SHAPES[3])))
    save("f8_r2_f.npy", np.asfortranarray(values("f8", SHAPES[2])))
    save("f8_r2_v2.npy", values("f8", SHAPES[2]), version=(2, 0))
    save("f8_r2_v3.npy", values("f8", SHAPES[2]), version=(3, 0))
    save("i4_r3_f_v3.npy", np.asfortranarray(values("i4", SHAPES[3])), version=(3, 0))
    # Views NumPy saves in C order: fusor must write the same bytes from strided arrays.
    # (np.save would write a transpose as a Fortran-order file; these are C-order copies.)
    save("f8_r2_T.npy", np.ascontiguousarray(values("f8", SHAPES[2]).T))
    save("i2_r3_rev.npy", values("i2", SHAPES[3])[::-1, :, ::-1])
    save("u1_bcast.npy", np.broadcast_to(values("u1", (4,)), (3, 4)))
    save("f8_empty_r1.npy", np.zeros((0,), np.float64))
    save("f8_empty_r2.npy", np.zeros((3, 0), np.float64))
    # Long enough that NumPy's growth room pushes the header past 128 bytes.
    save("f8_empty_r8.npy", np.zeros((0, 1, 1, 1, 1, 1, 10**9, 10**9), np.float64))
    save("f8_special.npy", np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324,
                                     np.finfo(np.float64).max], np.float64))
    save("f2_special.npy", np.array([np.nan, np.inf, -np.inf, -0.0, 6e-8, 65504.0, 0.1],
                                    np.float16))
    # dtypes fusor cannot hold: each must be FUSOR_ERROR_UNSUPPORTED naming the descr.
    save("be_f8.npy", values("f8", (4,)).astype(">f8"))
    save("be_i4.npy", values("i4", (4,)).astype(">i4"))
    save("c16.npy", np.arange(4, dtype=np.complex128))
    save("unicode.npy", np.array(["ab", "cde"]))
    save("structured.npy", np.zeros(3, dtype=[("x", "<f8"), ("y", "<i4")]))
    save("object.npy", np.array([1, "a", None], dtype=object))
    save("r9.npy", np.zeros((1,) * 9, np.float64))
    print(f"wrote {len(os.listdir(OUT))} files to {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
