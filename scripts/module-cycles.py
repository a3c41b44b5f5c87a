#!/usr/bin/env python3
"""Import circles among the files of a Rust crate.

Edges: every `crate::a::b` path in a file (in `use` lines with their brace groups, and in
code), every `super::` path, and a parent module's use of its child modules (`child::x` in
the parent after `mod child;`). A path is resolved to the deepest file module it names.
Prints each strongly connected component of more than one file, largest first, and exits 1
if the largest has more files than --max.

    scripts/module-cycles.py crates/server/src --max 4
"""
import argparse
import os
import re
import sys

COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_files(src):
    """Maps module path tuples (('apply', 'kv'), ...) to files."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = path
    return mods


def resolve(mods, path):
    """The deepest file module a path (tuple of segments) names."""
    for n in range(len(path), -1, -1):
        if path[:n] in mods:
            return path[:n]
    return ()


def expand_use(tree):
    """Expands a use tree (`a::{b, c::{d, e}}`) into paths."""
    # `x as y` loses its alias first, then whitespace goes.
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, t):
        depth, start, parts = 0, 0, []
        # split the top level on commas
        for i, ch in enumerate(t):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(t[start:i])
                start = i + 1
        parts.append(t[start:])
        for p in parts:
            if not p:
                continue
            if "{" in p:
                head, rest = p.split("{", 1)
                walk(prefix + [s for s in head.split("::") if s], rest[: rest.rfind("}")])
            else:
                segs = [s for s in p.split("::") if s]
                out.append(prefix + segs)

    walk([], tree)
    return out


def inline_mod_spans(text):
    """(start, end) of every inline `mod name { .. }` block."""
    spans = []
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        spans.append((m.start(), i))
    return spans


def edges_of(mods, me, text):
    text = STRING.sub('""', COMMENT.sub("", text))
    # Inline `mod name { ... }` blocks (tests) belong to the file; `mod name;` declares a child.
    children = set(re.findall(r"\bmod\s+(" + IDENT + r")\s*;", text))
    targets = set()
    paths = []
    inline = inline_mod_spans(text)

    def nesting(pos):
        return sum(1 for a, b in inline if a <= pos < b)

    def add(pos, segs):
        # `super` inside an inline `mod tests { .. }` first climbs out of that block.
        skip = nesting(pos)
        while skip and segs and segs[0] == "super":
            segs, skip = segs[1:], skip - 1
        if segs and not skip:
            paths.append(segs)

    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for segs in expand_use(m.group(1)):
            add(m.start(), segs)
    for m in re.finditer(r"\b((?:crate|super)(?:::" + IDENT + r")+)", text):
        # The head of a brace group (`crate::a::{b, c}`) was expanded with its `use`.
        if not text.startswith("::{", m.end()):
            add(m.start(), m.group(1).split("::"))
    for child in children:
        if re.search(r"(?<!::)\b" + child + r"::", text):
            targets.add(me + (child,))
    for p in paths:
        base = None
        if p and p[0] == "crate":
            base = list(p[1:])
        elif p and p[0] == "super":
            up = list(me)
            while p and p[0] == "super":
                up = up[:-1]
                p = p[1:]
            base = up + list(p)
        elif p and p[0] in children:
            base = list(me) + list(p)
        if base is None:
            continue
        t = resolve(mods, tuple(base))
        if t != me and t in mods:
            targets.add(t)
    return {t for t in targets if t in mods and t != me}


def sccs(nodes, graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            strong(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--max", type=int, default=None)
    ap.add_argument("--edges", action="store_true", help="print every edge")
    args = ap.parse_args()
    mods = module_files(args.src)
    graph = {}
    for m, path in mods.items():
        with open(path, encoding="utf-8") as f:
            graph[m] = edges_of(mods, m, f.read())
    if args.edges:
        for m in sorted(graph):
            for t in sorted(graph[m]):
                print(f"{os.path.relpath(mods[m], args.src)} -> {os.path.relpath(mods[t], args.src)}")
    comps = sorted((c for c in sccs(sorted(mods), graph) if len(c) > 1), key=len, reverse=True)
    for c in comps:
        files = sorted(os.path.relpath(mods[m], args.src) for m in c)
        lines = sum(sum(1 for _ in open(mods[m], encoding="utf-8")) for m in c)
        print(f"circle of {len(c)} files, {lines} lines: {', '.join(files)}")
    largest = len(comps[0]) if comps else 1
    print(f"largest circle: {largest} file(s)")
    if args.max is not None and largest > args.max:
        print(f"more than {args.max}: the layers import upward somewhere", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
