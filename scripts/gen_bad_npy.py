#!/usr/bin/env python3
"""Writes the malformed .npy cases of the bad-input catalog (tests/bad/npy/).

Each case is one file: a '# expect: STATUS "text" ...' line, a '# what it is' line, then
the bytes of the .npy file itself (see tests/bad/test_bad_catalog.c).  The bytes are
built here by hand, not by NumPy, because they are files NumPy would never write.

    python3 scripts/gen_bad_npy.py      # rewrites tests/bad/npy/*.npy
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "tests", "bad", "npy")
IO, UNSUP = "FUSOR_ERROR_IO", "FUSOR_ERROR_UNSUPPORTED"


def npy(header, data=b"", version=(1, 0), pad=True, hlen=None):
    """A .npy file with this header text (padded like NumPy unless pad=False)."""
    h = header.encode("latin-1") if isinstance(header, str) else header
    lenbytes = 2 if version[0] == 1 else 4
    if pad:
        total = 6 + 2 + lenbytes + len(h) + 1
        h = h + b" " * ((64 - total % 64) % 64) + b"\n"
    n = len(h) if hlen is None else hlen
    length = struct.pack("<H" if lenbytes == 2 else "<I", n)
    return b"\x93NUMPY" + bytes(version) + length + h + data


def d(descr="'<f8'", fortran="False", shape="(3,)"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


F8 = struct.pack("<3d", 1.0, 2.0, 3.0)
CASES = [
    # --- not a .npy file, or cut short
    ("empty", IO, ["not a .npy file (bad magic)"], "an empty file", b""),
    ("text_file", IO, ["not a .npy file (bad magic)"], "a text file", b"x,y\n1,2\n"),
    ("magic_only", IO, ["not a .npy file (bad magic)"], "the magic string cut short", b"\x93NUM"),
    ("wrong_magic", IO, ["not a .npy file (bad magic)"], "one byte of the magic wrong",
     b"\x93NUMPZ\x01\x00" + npy(d(), F8)[8:]),
    ("no_header_length", IO, ["truncated before the header length"],
     "the file ends after the version", b"\x93NUMPY\x01\x00\x10"),
    ("header_truncated", IO, ["truncated header (118 bytes announced)"],
     "the header length promises more than the file has", npy(d(), F8)[:60]),
    ("data_truncated", IO, ["the header's shape (3,) of f64 needs 24 data bytes but the file has 16"],
     "one element missing", npy(d(), F8[:16])),
    ("data_too_long", IO, ["needs 24 data bytes but the file has 32"],
     "one element too many", npy(d(), F8 + F8[:8])),
    ("data_missing", IO, ["needs 24 data bytes but the file has 0"], "no data at all", npy(d())),
    # --- versions
    ("version_0", UNSUP, [".npy format version 0.0 is not supported"], "version 0.0",
     npy(d(), F8, version=(0, 0))),
    ("version_4", UNSUP, [".npy format version 4.0 is not supported (1.0, 2.0 and 3.0 are)"],
     "a future version", npy(d(), F8, version=(4, 0))),
    ("version_1_1", UNSUP, [".npy format version 1.1 is not supported"], "a minor version",
     npy(d(), F8, version=(1, 1))),
    # --- lying or absurd header lengths
    ("header_length_huge", IO, ["header length 4294967295 is too long"],
     "a version 2.0 header length of 4 GiB, refused before allocating",
     npy(d(), F8, version=(2, 0), hlen=0xFFFFFFFF)),
    ("header_length_too_short", IO, ["malformed header"],
     "the header length cuts the dict in the middle", npy(d(), F8, hlen=20)),
    ("header_length_zero", IO, ["malformed header at byte 0: expected '{'"],
     "a zero-length header", npy(b"", F8, pad=False)),
    # --- malformed dicts
    ("not_a_dict", IO, ["malformed header at byte 0: expected '{'"], "a list instead of a dict",
     npy("['descr', '<f8']", F8)),
    ("missing_shape", IO, ["header has no 'shape' key"], "no shape",
     npy("{'descr': '<f8', 'fortran_order': False, }", F8)),
    ("missing_descr", IO, ["header has no 'descr' key"], "no descr",
     npy("{'fortran_order': False, 'shape': (3,), }", F8)),
    ("missing_fortran_order", IO, ["header has no 'fortran_order' key"], "no fortran_order",
     npy("{'descr': '<f8', 'shape': (3,), }", F8)),
    ("duplicate_key", IO, ["header key 'shape' appears twice"], "shape given twice",
     npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'shape': (3,), }", F8)),
    ("unknown_key", IO, ["unexpected header key 'order'"], "an extra key",
     npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'order': 'C', }", F8)),
    ("unterminated_string", IO, ["unterminated string"], "a quote never closed",
     npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x", F8, pad=False)),
    ("escape_in_string", IO, ["unsupported character in a string"], "a backslash in the descr",
     npy("{'descr': '<f\\8', 'fortran_order': False, 'shape': (3,), }", F8)),
    ("fortran_order_not_bool", IO, ["'fortran_order' must be True or False"], "fortran_order 0",
     npy(d(fortran="0"), F8)),
    ("fortran_order_truthy", IO, ["'fortran_order' must be True or False"], "TrueX",
     npy(d(fortran="TrueX"), F8)),
    ("shape_not_tuple", IO, ["'shape' must be a tuple"], "a list", npy(d(shape="[3]"), F8)),
    ("shape_int_not_tuple", IO, ["'shape' (n) is not a tuple; write (n,)"], "(3) is an int",
     npy(d(shape="(3)"), F8)),
    ("shape_negative", IO, ["shape[0] is negative"], "a negative extent", npy(d(shape="(-3,)"), F8)),
    ("shape_float", IO, ["malformed header"], "a float extent", npy(d(shape="(3.0,)"), F8)),
    ("shape_leading_zero", IO, ["integer with a leading zero"], "03",
     npy(d(shape="(03,)"), F8)),
    ("shape_extent_overflows", IO, ["shape[0] overflows int64"], "an extent beyond int64",
     npy(d(shape="(9223372036854775808,)"), F8)),
    ("shape_product_overflows", IO, ["shape (4294967296, 4294967296) is too large: its byte size overflows int64"],
     "2^32 x 2^32 elements: the product overflows 64 bits", npy(d(shape="(4294967296, 4294967296)"), F8)),
    ("shape_bytes_overflow", IO, ["is too large: its byte size overflows int64"],
     "2^61 elements of 8 bytes: the element count fits int64, the byte count does not",
     npy(d(shape="(2305843009213693952,)"), F8)),
    ("shape_zero_hides_overflow", IO, ["shape (0, 4294967296, 4294967296) is too large"],
     "a zero extent does not excuse an overflowing product (as in NumPy)",
     npy(d(shape="(0, 4294967296, 4294967296)"))),
    ("shape_huge_lying", IO, ["the header's shape (1000000000000,) of f64 needs 8000000000000 data bytes but the file has 24"],
     "a header claiming 8 TB, refused before any allocation", npy(d(shape="(1000000000000,)"), F8)),
    ("too_many_dims", UNSUP, ["the array has 9 dimensions; fusor supports at most 8"], "9 dimensions",
     npy(d(shape="(1, 1, 1, 1, 1, 1, 1, 1, 3)"), F8)),
    ("very_many_dims", UNSUP, ["the array has 20000 dimensions"], "20000 dimensions in a 60 KB header",
     npy(d(shape="(" + "1, " * 20000 + ")"), b"", version=(2, 0))),
    ("text_after_dict", IO, ["unexpected text after the dict"], "trailing garbage in the header",
     npy(d() + " x", F8)),
    ("nul_in_header", IO, ["malformed header"], "a NUL byte inside the dict",
     npy("{'descr': '<f8', \0'fortran_order': False, 'shape': (3,), }", F8)),
    # --- dtypes
    ("big_endian_f8", UNSUP, ["dtype '>f8' is big-endian; fusor reads little-endian files only"],
     "big-endian float64", npy(d(descr="'>f8'"), F8)),
    ("big_endian_i4", UNSUP, ["dtype '>i4' is big-endian"], "big-endian int32",
     npy(d(descr="'>i4'"), F8[:12])),
    ("big_endian_f2", UNSUP, ["dtype '>f2' is big-endian"], "big-endian float16",
     npy(d(descr="'>f2'"), F8[:6])),
    ("dtype_c16", UNSUP, ["dtype '<c16' is not supported"], "complex128",
     npy(d(descr="'<c16'"), F8 * 2)),
    ("dtype_object", UNSUP, ["dtype '|O' is not supported"], "Python objects",
     npy(d(descr="'|O'"), F8)),
    ("dtype_unicode", UNSUP, ["dtype '<U5' is not supported"], "strings",
     npy(d(descr="'<U5'"), b"\0" * 60)),
    ("dtype_datetime", UNSUP, ["dtype '<M8[ns]' is not supported"], "datetime64",
     npy(d(descr="'<M8[ns]'"), F8)),
    ("dtype_structured", UNSUP, ["structured dtypes (descr '[...]') are not supported"],
     "a record dtype", npy(d(descr="[('a', '<f8')]"), F8)),
    ("dtype_empty", UNSUP, ["dtype '' is not supported"], "an empty descr", npy(d(descr="''"), F8)),
    ("dtype_long_string", IO, ["string too long"], "a 100-character descr",
     npy(d(descr="'" + "f" * 100 + "'"), F8)),
    ("dtype_not_string", IO, ["expected a string"], "descr given as a number",
     npy(d(descr="8"), F8)),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, status, texts, what, data in CASES:
        expect = "# expect: %s %s\n# %s\n" % (status, " ".join('"%s"' % t for t in texts), what)
        with open(os.path.join(OUT, name + ".npy"), "wb") as f:
            f.write(expect.encode() + data)
    print(len(CASES), "cases in", OUT)


if __name__ == "__main__":
    main()
