#!/usr/bin/env python3
"""Generates kernels/typetable.inc (and the promotion tables of docs/language.md) by asking
NumPy how it resolves every operation the fusor language maps to a ufunc.

For each ufunc and each combination of operand kinds (the 12 fusor dtypes plus Python's
weak `int` and `float`, NEP 50), `ufunc.resolve_dtypes` says which loop NumPy picks (the
dtypes the operands are cast to and the result dtype) or that it raises.  float16 is last
among the dtypes, as FUSOR_F16 is last in fusor_dtype.  The script also records np.can_cast(..., 'safe'), np.result_type (where, clip) and the result
dtypes of the reductions.

Run with the project's venv:   /work/venv/bin/python scripts/gen_typetable.py
"""
import itertools
import os
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_INC = os.path.join(ROOT, "kernels", "typetable.inc")
DOC = os.path.join(ROOT, "docs", "language.md")
DOC_BEGIN = "<!-- BEGIN GENERATED TYPE TABLES (scripts/gen_typetable.py) -->"
DOC_END = "<!-- END GENERATED TYPE TABLES -->"

# fusor's dtypes in fusor_dtype order, their one-letter codes in the table, and names.
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64", "float16"]
NAMES = ["bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "f16"]
CODES = "?bhilBHILfde"
# Operand kinds: the dtypes, then weak int and weak float.
KINDS = [np.dtype(d) for d in DTYPES] + [int, float]
KIND_NAMES = NAMES + ["int", "float"]
NK = len(KINDS)
ERR = "-"

# (enum name, NumPy ufunc, arity).  The order is the C enum's.
BINARY = ["add", "subtract", "multiply", "true_divide", "floor_divide", "remainder", "fmod",
          "power", "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift",
          "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "arctan2",
          "hypot", "copysign", "minimum", "maximum", "fmin", "fmax"]
UNARY = ["negative", "positive", "invert", "absolute", "sign", "sqrt", "cbrt", "square",
         "reciprocal", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos",
         "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
         "arctanh", "floor", "ceil", "trunc", "rint", "isnan", "isinf", "isfinite",
         "logical_not"]

def code(dt, where):
    dt = np.dtype(dt)
    if dt.name not in DTYPES:
        sys.exit("%s: NumPy picks %s, which fusor lacks" % (where, dt))
    return CODES[DTYPES.index(dt.name)]


def resolve(ufunc, kinds):
    """The loop's dtype codes (inputs then output), or None when NumPy raises."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loop = ufunc.resolve_dtypes(tuple(kinds) + (None,))
    except (TypeError, ValueError, OverflowError):
        return None
    if any(d == object for d in loop):
        return None  # equal(int, int): Python's own comparison; fusor folds it itself
    where = "%s(%s)" % (ufunc.__name__, ", ".join(kind_name(k) for k in kinds))
    return "".join(code(d, where) for d in loop)


def is_weak(k):
    # Identity, not ==: np.dtype('int64') == int holds.
    return k is int or k is float


def kind_name(k):
    if is_weak(k):
        return KIND_NAMES[len(DTYPES) + (0 if k is int else 1)]
    return NAMES[DTYPES.index(k.name)]


def weak_value(k):
    """A representative of a kind for np.result_type (Python scalars are weak)."""
    return 0 if k is int else 0.0 if k is float else k


def result_type(*kinds):
    try:
        return np.result_type(*[weak_value(k) for k in kinds])
    except TypeError:
        return None


def c_string_lines(s, width):
    return ['        "%s"' % s[i:i + width] for i in range(0, len(s), width)]


def ufunc_tables():
    """(enum, name, arity, table string) per ufunc: the loop for every kind combination."""
    rows = []
    for name in BINARY:
        u = getattr(np, name)
        t = "".join(resolve(u, (a, b)) or ERR * 3 for a in KINDS for b in KINDS)
        rows.append((name.upper(), name, 2, t))
    for name in UNARY:
        u = getattr(np, name)
        t = "".join(resolve(u, (a,)) or ERR * 2 for a in KINDS)
        rows.append((name.upper(), name, 1, t))
    return rows


def result_table(n):
    """np.result_type of every n kinds.  n = 3 serves clip: NumPy's promotion of several
    operands is not the pairwise one (result_type(i8, u16, f32) is f32, not f64)."""
    out = ""
    for kinds in itertools.product(KINDS, repeat=n):
        r = result_type(*kinds)
        out += code(r, "result_type") if r is not None else ERR
    return out


def check_clip():
    """clip's loop must be result_type of its three operands: checked, not assumed."""
    clip = np._core.umath.clip
    for kinds in itertools.product(KINDS, repeat=3):
        if all(is_weak(k) for k in kinds):
            continue
        loop = resolve(clip, kinds)
        r = result_type(*kinds)
        want = None if r is None else code(r, "clip") * 4
        if loop != want:
            sys.exit("clip(%s): loop %s but result_type %s" %
                     (", ".join(kind_name(k) for k in kinds), loop, want))


def safe_table():
    return "".join("1" if np.can_cast(a, b, "safe") else "0" for a in DTYPES for b in DTYPES)


def reduction_tables():
    reductions = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for red in ["sum", "prod", "min", "max", "mean"]:
            f = getattr(np, red)
            reductions[red] = "".join(code(f(np.ones(2, d)).dtype, red) for d in DTYPES)
    return reductions


def generate():
    check_clip()
    return ufunc_tables(), result_table(2), result_table(3), safe_table(), reduction_tables()


def write_inc(ufunc_rows, result, result3, safe, reductions):
    out = []
    out.append("/*\n * typetable.inc — NumPy's type resolution for the fusor language.\n *")
    out.append(" * GENERATED by scripts/gen_typetable.py from NumPy %s; do not edit." %
               np.__version__)
    nd = len(DTYPES)
    out.append(" *\n * Operand kinds 0..%d are fusor_dtype values; %d is a weak (Python) int" %
               (nd - 1, nd))
    out.append(" * and %d a weak float.  Dtype codes: %s =" % (nd + 1, CODES))
    out.append(" * %s; '-' means NumPy raises.\n */" % " ".join(NAMES))
    out.append("#ifndef TY_TYPETABLE_LIST")
    out.append("#define TY_TYPETABLE_LIST")
    out.append('#define TY_NUMPY_VERSION "%s"' % np.__version__)
    out.append("#define TY_NUM_KINDS %d" % NK)
    out.append('#define TY_DTYPE_CODES "%s"' % CODES)
    out.append("/* X(ENUM, numpy name, arity) */")
    out.append("#define TY_UFUNCS(X) \\")
    for enum, name, arity, _ in ufunc_rows:
        out.append('    X(%s, "%s", %d) \\' % (enum, name, arity))
    out.append("")
    out.append("#endif\n")
    out.append("#ifdef TY_TYPETABLE_DATA")
    out.append("/* Per ufunc: for each operand kind (row-major over operands), the loop's dtype")
    out.append(" * codes, inputs then output. */")
    out.append("static const char *const ty_loops[] = {")
    for enum, name, arity, t in ufunc_rows:
        width = (arity + 1) * NK
        out.append("    /* %s */" % name)
        out.extend(c_string_lines(t, width))
        out[-1] += ","
    out.append("};\n")
    out.append("/* np.result_type(a, b) for kinds a (row) and b (column). */")
    out.append("static const char ty_result[] =")
    out.extend(c_string_lines(result, NK))
    out[-1] += ";\n"
    out.append("/* np.result_type(a, b, c) (the clip ufunc's loop): [a][b][c]. */")
    out.append("static const char ty_result3[] =")
    out.extend(c_string_lines(result3, NK * 3))
    out[-1] += ";\n"
    out.append("/* np.can_cast(from (row), to (column), 'safe') over the dtypes. */")
    out.append("static const char ty_safe[] =")
    out.extend(c_string_lines(safe, len(DTYPES)))
    out[-1] += ";\n"
    out.append("/* Result dtype of np.sum, np.prod, np.min, np.max and np.mean per dtype. */")
    for red, s in reductions.items():
        out.append('static const char ty_reduce_%s[] = "%s";' % (red, s))
    out.append("#endif")
    with open(OUT_INC, "w") as f:
        f.write("\n".join(out) + "\n")


def md_table(corner, rows, cols, cell):
    lines = ["| %s | %s |" % (corner, " | ".join(cols)),
             "|" + " --- |" * (len(cols) + 1)]
    for r in rows:
        lines.append("| **%s** | %s |" % (r, " | ".join(cell(r, c) for c in cols)))
    return lines


def write_doc(ufunc_rows, result, safe, reductions):
    loops = {name: t for _, name, _, t in ufunc_rows}
    name_of = dict(zip(CODES, NAMES))

    def binary_out(ufunc, a, b):
        i, j = KIND_NAMES.index(a), KIND_NAMES.index(b)
        e = loops[ufunc][(i * NK + j) * 3:(i * NK + j) * 3 + 3]
        return "—" if e[0] == ERR else name_of[e[2]]

    def unary_out(ufunc, a):
        i = KIND_NAMES.index(a)
        e = loops[ufunc][i * 2:i * 2 + 2]
        return "—" if e[0] == ERR else name_of[e[1]]

    md = [DOC_BEGIN, "",
          "Generated from NumPy %s by `scripts/gen_typetable.py`; `int` and `float` are weak" %
          np.__version__,
          "(literal) operands, `—` means the combination is an error.", "",
          "#### `+` (and `*`, `-`, `//`, `%`, `**`, minimum/maximum): result dtype", ""]
    md += md_table("a \\ b", KIND_NAMES, KIND_NAMES, lambda a, b: binary_out("add", a, b))
    md += ["", "Exceptions: `bool - bool` is an error (use `^`); `bool + bool` is logical or and",
           "`bool * bool` logical and (result bool); `bool // bool`, `bool % bool` and",
           "`bool ** bool` compute in i8.  `int op int` of two literals is folded "
           "(see above).", "",
           "#### `/` (true division): result dtype", ""]
    md += md_table("a \\ b", KIND_NAMES, KIND_NAMES,
                   lambda a, b: binary_out("true_divide", a, b))
    md += ["", "#### Element-wise functions of one operand: result dtype", "",
           "`float fn` stands for sqrt cbrt exp exp2 expm1 log log2 log10 log1p sin cos tan",
           "arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh.", ""]
    fns = [("-", "negative"), ("~", "invert"), ("abs", "absolute"), ("sign", "sign"),
           ("square", "square"), ("reciprocal", "reciprocal"), ("float fn", "sqrt"),
           ("floor ceil trunc", "floor"), ("rint", "rint")]
    md += md_table("operand", KIND_NAMES, [f for f, _ in fns],
                   lambda a, f: unary_out(dict(fns)[f], a))
    md += ["", "#### Reductions: result dtype", ""]
    reds = ["sum", "prod", "min", "max", "mean"]
    md += md_table("operand", NAMES, reds,
                   lambda a, r: name_of[reductions[r][NAMES.index(a)]])
    md += ["", "`any` and `all` give bool.", "",
           "#### Safe casts (`can_cast(from, to, 'safe')`): assignment to an output", "",
           "A ✓ means a value of the row's dtype may be assigned to an output of the column's",
           "dtype without an explicit cast.", ""]
    md += md_table("from \\ to", NAMES, NAMES,
                   lambda a, b: "✓" if safe[NAMES.index(a) * len(NAMES) + NAMES.index(b)] ==
                   "1" else "")
    md += ["", DOC_END]

    if not os.path.exists(DOC):
        sys.exit("%s is missing (it holds the markers %s ... %s)" % (DOC, DOC_BEGIN, DOC_END))
    with open(DOC) as f:
        text = f.read()
    b, e = text.find(DOC_BEGIN), text.find(DOC_END)
    if b < 0 or e < 0:
        sys.exit("%s lacks the generated-table markers" % DOC)
    text = text[:b] + "\n".join(md) + text[e + len(DOC_END):]
    with open(DOC, "w") as f:
        f.write(text)


def main():
    rows, result, result3, safe, reductions = generate()
    write_inc(rows, result, result3, safe, reductions)
    write_doc(rows, result, safe, reductions)
    print("wrote %s (NumPy %s, %d ufuncs)" %
          (os.path.relpath(OUT_INC, ROOT), np.__version__, len(rows)))


if __name__ == "__main__":
    main()
