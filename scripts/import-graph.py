#!/usr/bin/env python3
"""The crate's import graph: module-level edges, imports that point up a layer, file cycles.

Reads every `.rs` file under src/ (or the directory given as the first argument) and
collects the paths it uses from the crate: `use crate::…` statements (grouped ones such
as `use crate::{a, b::{c, d}}` included, and those inside function bodies), `super::…`
and `self::…` paths, child-module paths (`use writer::X` in a `mod.rs`), and qualified
paths written inline (`crate::store::Run` in a signature or a call). In src/main.rs the
library is `agent_mesh::`. Comments and string literals are skipped.

Each file belongs to its top-level module: a file under src/X/ to X, src/X.rs to X.

Layer order, bottom to top (a module may import only from layers below it):

    util                       small helpers, import nothing of the crate
    clock                      timestamps
    secret, ids, log           leaf utilities (log stamps lines with clock)
    model                      the run model every layer shares (`events` counts as
                               model in trees from before src/model/ existed)
    metrics                    counters and histograms
    trace                      spans and their OTLP export (counts in metrics)
    providers, store           peers: neither imports the other
    mcp                        the MCP client: an adapter to outside tool servers, like
                               providers (on their HTTP client and SSE parser); the
                               pipeline's tool loop calls it, the providers never do
    pipeline
    config                     every subsystem's settings, parsed and assembled
    http                       the request/response toolkit handlers use: bodies, JSON
                               errors, the event stream, client address, auth
    tls, api                   peers; api holds the state its handlers read (AppState)
    server                     serve loop, connections, router: calls into api, so above it
    app                        (trees from before AppState moved into api)
    cli
    main

An edge to a higher layer, or between two different modules of the same layer, is a
violation. A module missing from this list is reported as unlayered.

Output: the module edges (with how many import sites and files back each), the
violations (with the file pairs behind them), the file-level import cycles (strongly
connected components of the file graph, `mod tests` blocks included; those spanning
top-level modules are marked, and the pairs of files that import each other directly are
listed), and on the last lines the counts. `--no-tests` leaves out `#[cfg(test)]` blocks.

Standard library only: python3 scripts/import-graph.py [SRC_DIR] [--no-tests]
"""

import os
import re
import sys
from collections import defaultdict

LAYERS = [
    ["util"],
    ["clock"],
    ["secret", "ids", "log"],
    ["model", "events"],
    ["metrics"],
    ["trace"],
    ["providers", "store"],
    ["mcp"],
    ["pipeline"],
    ["config"],
    ["http"],
    ["tls", "api"],
    ["server"],
    ["app"],
    ["cli"],
    ["main"],
]
LAYER_OF = {m: i for i, group in enumerate(LAYERS) for m in group}

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i] or " "):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1f}'), not a lifetime ('a).
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)


def drop_test_blocks(text):
    """Blanks every `#[cfg(test)]` item that has a brace block (usually `mod tests`)."""
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]", text))):
        brace = text.find("{", m.end())
        semi = text.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        end = matching_brace(text, brace)
        text = text[: m.start()] + re.sub(r"[^\n]", " ", text[m.start() : end + 1]) + text[end + 1 :]
    return text


def inline_mod_spans(text):
    spans = []
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", text):
        brace = m.end() - 1
        spans.append((brace, matching_brace(text, brace)))
    return spans


def expand_use_tree(tree):
    """`a::{b, c::{d as e, *}}` -> [['a','b'], ['a','c','d'], ['a','c','*']]."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)
    paths = []

    def walk(s, prefix):
        # s is a comma-separated list at one level.
        depth, start = 0, 0
        for k, ch in enumerate(s + ","):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                item = s[start:k]
                start = k + 1
                if not item:
                    continue
                brace = item.find("{")
                if brace >= 0:
                    head = [p for p in item[:brace].split("::") if p]
                    walk(item[brace + 1 : item.rfind("}")], prefix + head)
                else:
                    paths.append(prefix + [p for p in item.split("::") if p])

    walk(tree, [])
    return paths


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # relative path -> module path (list of segments)
        for root, _, names in os.walk(src):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                rel = os.path.relpath(os.path.join(root, name), src).replace(os.sep, "/")
                self.files[rel] = self.module_path(rel)
        self.by_module = {tuple(mp): rel for rel, mp in self.files.items()}

    @staticmethod
    def module_path(rel):
        parts = rel[:-3].split("/")
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            return [] if parts == ["lib"] else ["main"]
        return parts

    def file_of(self, segments):
        """The file that defines the longest module prefix of an absolute path."""
        for k in range(len(segments), -1, -1):
            rel = self.by_module.get(tuple(segments[:k]))
            if rel is not None:
                return rel
        return None

    def is_module(self, segments):
        return tuple(segments) in self.by_module


def top_module(rel):
    first = rel.split("/")[0]
    return first[:-3] if first.endswith(".rs") else first


def resolve(crate, rel, segments, inline_depth):
    """An absolute module path for `segments` as written in file `rel`, or None when the
    path leaves the crate (std, a dependency) or stays inside the file."""
    here = crate.files[rel]
    if rel == "main.rs" and segments and segments[0] == "agent_mesh":
        return segments[1:]
    if not segments:
        return None
    head = segments[0]
    if head == "crate":
        return segments[1:]
    if head in ("self", "super"):
        supers = 0
        rest = segments
        while rest and rest[0] == "super":
            supers, rest = supers + 1, rest[1:]
        if rest and rest[0] == "self":
            rest = rest[1:]
        if supers <= inline_depth:
            # Inside `mod tests { use super::*; }`: the file's own module.
            base = here
        else:
            up = supers - inline_depth
            if up > len(here):
                return None
            base = here[: len(here) - up]
        return base + rest
    # A child module of the current one (`use writer::unix_ms` in redis/mod.rs).
    if crate.is_module(here + [head]) and inline_depth == 0:
        return here + segments
    return None


def edges_of_file(crate, rel, skip_tests):
    text = open(os.path.join(crate.src, rel), encoding="utf-8").read()
    text = strip_comments_and_strings(text)
    if skip_tests:
        text = drop_test_blocks(text)
    spans = inline_mod_spans(text)

    def depth_at(pos):
        return sum(1 for a, b in spans if a < pos < b)

    found = []  # (absolute path segments)
    used = []
    for m in re.finditer(r"(?<![\w$])use\s+([^;]*);", text):
        used.append((m.start(), m.end()))
        tree = m.group(1)
        for path in expand_use_tree(tree):
            absolute = resolve(crate, rel, path, depth_at(m.start()))
            if absolute is not None:
                found.append(absolute)
    # Inline qualified paths outside `use` statements.
    blank = list(text)
    for a, b in used:
        blank[a:b] = " " * (b - a)
    rest = "".join(blank)
    prefix = r"(?<![\w$:])((?:crate|super|self|agent_mesh|" + IDENT + r")(?:::" + IDENT + r")+)"
    for m in re.finditer(prefix, rest):
        path = m.group(1).split("::")
        if path[0] not in ("crate", "super", "self", "agent_mesh") and not crate.is_module(
            crate.files[rel] + [path[0]]
        ):
            continue
        absolute = resolve(crate, rel, path, depth_at(m.start()))
        if absolute is not None:
            found.append(absolute)
    targets = []
    for absolute in found:
        target = crate.file_of(absolute)
        if target is not None and target != rel and target not in ("lib.rs",):
            targets.append(target)
    return targets


def strongly_connected(nodes, succ):
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    skip_tests = "--no-tests" in argv
    args = [a for a in argv if not a.startswith("--")]
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    crate = Crate(src)

    file_edges = defaultdict(int)  # (from file, to file) -> import sites
    for rel in sorted(crate.files):
        for target in edges_of_file(crate, rel, skip_tests):
            file_edges[(rel, target)] += 1

    module_edges = defaultdict(lambda: [0, set()])  # (from, to) -> [sites, file pairs]
    for (a, b), sites in file_edges.items():
        ma, mb = top_module(a), top_module(b)
        if ma == mb:
            continue
        module_edges[(ma, mb)][0] += sites
        module_edges[(ma, mb)][1].add((a, b))

    print("# module edges (from -> to: import sites, file pairs)")
    for (a, b), (sites, pairs) in sorted(module_edges.items()):
        print(f"{a} -> {b}: {sites} sites, {len(pairs)} file pairs")

    violations, unlayered = [], set()
    for (a, b), (sites, pairs) in sorted(module_edges.items()):
        if a not in LAYER_OF or b not in LAYER_OF:
            unlayered.update(m for m in (a, b) if m not in LAYER_OF)
            continue
        if LAYER_OF[b] > LAYER_OF[a]:
            violations.append(("up", a, b, sites, pairs))
        elif LAYER_OF[b] == LAYER_OF[a]:
            violations.append(("peer", a, b, sites, pairs))

    print()
    print("# violations: edges up a layer or between peers of one layer")
    for kind, a, b, sites, pairs in violations:
        print(f"{a} -> {b} ({kind}): {sites} sites, {len(pairs)} file pairs")
        for fa, fb in sorted(pairs):
            print(f"    {fa} -> {fb}")
    if unlayered:
        print("unlayered modules (add them to LAYERS): " + ", ".join(sorted(unlayered)))

    succ = defaultdict(set)
    for a, b in file_edges:
        succ[a].add(b)
    cycles = [c for c in strongly_connected(crate.files, succ) if len(c) > 1]
    mutual = sorted((a, b) for a, b in file_edges if a < b and (b, a) in file_edges)
    print()
    print("# file-level import cycles (strongly connected files; * = spans top-level modules)")
    for comp in cycles:
        across = len({top_module(f) for f in comp}) > 1
        print(("* " if across else "  ") + " <-> ".join(comp))
    print("# of which files importing each other directly")
    for a, b in mutual:
        print(f"  {a} <-> {b}")

    print()
    print(f"module edges: {len(module_edges)}")
    print(
        f"violations: {len(violations)} module edges, "
        f"{sum(len(v[4]) for v in violations)} file pairs, {sum(v[3] for v in violations)} sites"
    )
    across = sum(1 for c in cycles if len({top_module(f) for f in c}) > 1)
    print(f"file cycles: {len(cycles)} ({across} across top-level modules), {len(mutual)} mutual file pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
