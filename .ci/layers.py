#!/usr/bin/env python3
"""Fails when a crate's top-level modules depend on each other in a circle.

A module depends on another when its non-test code names `crate::other` (a `use`,
a path, or a doc link). Each crate's modules must form layers: the store traits
and their records at the bottom of valet-core, nothing below naming what is above.
Prints each circle found, with the edges that close it.

    python3 .ci/layers.py [crates/]
"""

import os
import re
import sys


def module_of(src, path):
    """The top-level module a file belongs to (`lib` for the crate root)."""
    parts = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts[0] if parts else "lib"


def dependencies(src):
    """Top-level module -> the top-level modules its non-test code names."""
    deps = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as file:
                code = file.read().split("#[cfg(test)]")[0]
            module = module_of(src, path)
            named = set(re.findall(r"crate::(\w+)", code)) - {module}
            deps.setdefault(module, set()).update(named)
    return {module: named & deps.keys() for module, named in deps.items()}


def circles(deps):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(deps[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(deps):
        if module not in index:
            visit(module)
    return found


def main():
    crates = sys.argv[1] if len(sys.argv) > 1 else "crates"
    failed = False
    for crate in sorted(os.listdir(crates)):
        src = os.path.join(crates, crate, "src")
        if not os.path.isdir(src):
            continue
        deps = dependencies(src)
        for component in circles(deps):
            failed = True
            print(f"{crate}: import circle among {', '.join(component)}")
            for module in component:
                print(f"  {module} -> {', '.join(sorted(deps[module] & set(component)))}")
    if failed:
        sys.exit(1)
    print("layers: no import circles among any crate's modules")


if __name__ == "__main__":
    main()
