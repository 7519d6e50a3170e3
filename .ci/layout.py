#!/usr/bin/env python3
"""Checks the shape of parallelizer-core/src that issue 9 asked for and CI keeps:

- no import cycle between the modules of one folder (the crate's top-level
  modules, and the files inside each module folder): a module names another
  through `use crate::x`, `crate::x::`, `super::x` or `self::x` (inline
  `#[cfg(test)] mod tests` blocks do not count);
- no source file over MAX_LINES lines.

Prints the module graph's problems and exits 1, or prints a summary."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "parallelizer-core", "src")
MAX_LINES = 720

def strip_tests(text):
    """The code before `#[cfg(test)]\nmod tests`, if any, without comments
    (doc links name modules without importing them)."""
    m = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    text = text[: m.start()] if m else text
    return "\n".join(line.split("//")[0] for line in text.splitlines())

def modules_of(folder):
    """Sibling modules in a folder: name -> path of their root file."""
    out = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.endswith(".rs") and entry not in ("mod.rs", "lib.rs"):
            out[entry[:-3]] = path
        elif os.path.isdir(path) and os.path.exists(os.path.join(path, "mod.rs")):
            out[entry] = path
    return out

def files_under(path):
    if os.path.isfile(path):
        return [path]
    found = []
    for dirpath, _, names in os.walk(path):
        found += [os.path.join(dirpath, n) for n in names if n.endswith(".rs")]
    return found

def references(path, siblings, crate_level, folder_path):
    """Sibling modules the module at `path` (a file or a folder) names."""
    names = set()
    for f in files_under(path):
        text = strip_tests(open(f).read())
        # `use` trees: expand `crate::{a, b::c}` / `super::{x, y}` groups.
        prefixes = []
        if crate_level:
            prefixes.append(r"crate::")
        # From a file directly in the folder, `super::` is the folder;
        # from a file one level deeper, `super::super::`.
        depth = os.path.relpath(os.path.dirname(f), folder_path).count(os.sep) + (
            0 if os.path.dirname(f) == folder_path else 1
        )
        if not crate_level or os.path.dirname(f) != folder_path:
            prefixes.append(r"super::" * (depth if os.path.dirname(f) != folder_path else 1))
        for prefix in prefixes:
            for m in re.finditer(prefix + r"\{([^}]*)\}", text):
                for part in m.group(1).split(","):
                    head = part.strip().split("::")[0].strip()
                    if head in siblings:
                        names.add(head)
            for m in re.finditer(prefix + r"([a-z_][a-z0-9_]*)", text):
                if m.group(1) in siblings:
                    names.add(m.group(1))
    return names

def cycles(graph):
    """Every cycle of the graph, each as a list of nodes."""
    found, stack, state = [], [], {}
    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2
    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found

problems = []
folders = [ROOT] + [d for d, _, names in os.walk(ROOT) if "mod.rs" in names]
edges = 0
for folder in folders:
    siblings = modules_of(folder)
    crate_level = os.path.abspath(folder) == os.path.abspath(ROOT)
    graph = {}
    for name, path in siblings.items():
        refs = references(path, siblings, crate_level, folder) - {name}
        graph[name] = refs
        edges += len(refs)
    for c in cycles(graph):
        where = os.path.relpath(folder, ROOT) if not crate_level else "crate"
        problems.append(f"import cycle in {where}: {' -> '.join(c)}")

for dirpath, _, names in os.walk(ROOT):
    for n in names:
        if n.endswith(".rs"):
            path = os.path.join(dirpath, n)
            lines = sum(1 for _ in open(path))
            if lines > MAX_LINES:
                problems.append(f"{os.path.relpath(path, ROOT)} has {lines} lines (max {MAX_LINES}): split it by concern")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"layout ok: {len(folders)} module folders, {edges} module dependencies, no cycle, no file over {MAX_LINES} lines")
