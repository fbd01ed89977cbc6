#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/) from what the
repository already holds: the standard kernels and every kernel source and ufunc
expression written as a C string in tests/unit, the .npy fixtures and the bad-input
catalog's .npy cases, and the command lines of docs/cli.md and the catalog.

Run from anywhere; rerun after adding tests and commit the result:
    python3 scripts/gen_fuzz_corpus.py
"""
import hashlib
import os
import re
import shlex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > 65536:  # the fuzz targets skip larger inputs; tests/bad keeps those
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def c_strings(path):
    """Concatenated C string literals of a file (adjacent literals joined)."""
    text = open(path, encoding="utf-8").read()
    lit = r'"((?:[^"\\\n]|\\.)*)"'
    for m in re.finditer(r'(?:%s\s*)+' % lit, text):
        parts = re.findall(lit, m.group(0))
        s = "".join(parts)
        try:
            s = bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
        yield s


def frontend():
    std = os.path.join(ROOT, "kernels", "std")
    for f in sorted(os.listdir(std)):
        if f.endswith(".fu"):
            put("frontend", open(os.path.join(std, f), "rb").read())
    unit = os.path.join(ROOT, "tests", "unit")
    seen = set()
    for f in sorted(os.listdir(unit)):
        if not f.endswith(".c"):
            continue
        for s in c_strings(os.path.join(unit, f)):
            if s in seen or len(s) > 4000:
                continue
            # kernel sources, and short strings that look like ufunc expressions
            if "kernel " in s and "->" in s:
                seen.add(s)
                put("frontend", s)
            elif 3 <= len(s) <= 80 and re.search(r"[a-z]\s*[-+*/(]", s) and "%" not in s \
                    and ":" not in s and "." not in s[-4:]:
                seen.add(s)
                put("frontend", s)
    lang = os.path.join(ROOT, "tests", "bad", "lang")
    if os.path.isdir(lang):
        for f in sorted(os.listdir(lang)):
            data = open(os.path.join(lang, f), "rb").read()
            if len(data) <= 4096 and b"# generate:" not in data:
                put("frontend", data)


def npy():
    fixtures = os.path.join(ROOT, "tests", "fixtures", "npy")
    for f in sorted(os.listdir(fixtures)):
        put("npy", open(os.path.join(fixtures, f), "rb").read())
    bad = os.path.join(ROOT, "tests", "bad", "npy")
    if os.path.isdir(bad):
        for f in sorted(os.listdir(bad)):
            data = open(os.path.join(bad, f), "rb").read()
            while data.startswith(b"#"):  # the catalog's header lines
                data = data.split(b"\n", 1)[1] if b"\n" in data else b""
            put("npy", data)


def cli():
    doc = open(os.path.join(ROOT, "docs", "cli.md"), encoding="utf-8").read()
    lines = [l.split("#")[0].strip() for l in doc.splitlines()]
    cmds = [l for l in lines if l.startswith("fusor ")]
    bad = os.path.join(ROOT, "tests", "bad", "cli")
    if os.path.isdir(bad):
        for f in sorted(os.listdir(bad)):
            for l in open(os.path.join(bad, f), encoding="utf-8"):
                if l.startswith("args:"):
                    cmds.append("fusor " + l[5:].strip())
    for c in cmds:
        try:
            argv = shlex.split(c)[1:]
        except ValueError:
            continue
        put("cli", "\0".join(argv))


if __name__ == "__main__":
    frontend()
    npy()
    cli()
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))))
