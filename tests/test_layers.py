"""The package's layers: every module says its layer, imports run only down, and nothing imports in a circle.

Each module's docstring ends with a line `Layer N, name: imports layers 1-N only.` The tests parse
every import of the package, those deferred into functions included (a cycle hidden in a function
is still a cycle), and fail naming the modules of any cycle or upward import. The benchmarks are
held to the same: no cycle among them. The README's package layout is generated from the
docstrings:

    python tests/test_layers.py --readme     # rewrite the README's layout section
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seamountae"
BENCHMARKS = ROOT / "benchmarks"
LAYER_LINE = re.compile(r"^Layer (\d), ([a-z ]+): imports layers? 1(?:-(\d))? only\.$", re.M)
LAYER_NAMES = {1: "foundations", 2: "files", 3: "arithmetic", 4: "judgement", 5: "stages", 6: "command line"}
README_START, README_END = "<!-- package layout: python tests/test_layers.py --readme -->", "<!-- end of package layout -->"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `path` imports anywhere in it (top level, functions, branches)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found.update(names or [target])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != me}


def graph(root: Path, top_level_names: bool = False) -> dict[str, set[str]]:
    """Module → the modules it imports. `top_level_names`: modules are importable by file name alone
    (the benchmarks put their folder on sys.path)."""
    files = sorted(root.rglob("*.py"))
    if top_level_names:
        known = {p.stem for p in files}
        out = {}
        for p in files:
            names = set()
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and not node.level and node.module in known:
                    names.add(node.module)
                elif isinstance(node, ast.Import):
                    names.update(a.name for a in node.names if a.name in known)
            out[p.stem] = names - {p.stem}
        return out
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): imports(p, root, known) for p in files}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layers() -> dict[str, tuple[int, str]]:
    """Module → (layer, the docstring's first line), from each module's docstring."""
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
        match = LAYER_LINE.search(doc)
        layer = int(match.group(1)) if match else 0
        if match and (LAYER_NAMES.get(layer) != match.group(2) or int(match.group(3) or 1) != layer):
            layer = 0  # a line that names the wrong layer or range counts as none
        out[module_name(p, PACKAGE)] = (layer, doc.split("\n\n")[0].replace("\n", " ").strip())
    return out


def test_every_module_says_its_layer():
    missing = [m for m, (layer, _) in layers().items() if not layer]
    assert not missing, ("modules without a line 'Layer N, name: imports layers 1-N only.' ending their docstring "
                         f"(names: {LAYER_NAMES}): {', '.join(missing)}")


def test_the_package_has_no_import_cycle():
    found = cycles(graph(PACKAGE))
    assert not found, "import cycles (deferred imports counted): " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_imports_a_higher_layer():
    layer = {m: v[0] for m, v in layers().items()}
    upward = [f"{m} (layer {layer[m]}) imports {t} (layer {layer[t]})"
              for m, targets in graph(PACKAGE).items() for t in sorted(targets)
              if layer[m] and layer[t] > layer[m] and t != "seamountae"]
    assert not upward, "imports from a lower layer to a higher one: " + "; ".join(upward)


def test_the_benchmarks_have_no_import_cycle():
    found = cycles(graph(BENCHMARKS, top_level_names=True))
    assert not found, "benchmark import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_names_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from .c import y\n")
    (pkg / "c.py").write_text("from . import a\n")
    (pkg / "d.py").write_text("from .a import x\n")
    assert cycles(graph(pkg)) == [["pkg.a", "pkg.b", "pkg.c"]]


def layout_markdown() -> str:
    """The README's package layout: the layers, bottom up, each module with its docstring's first line."""
    by_layer: dict[int, list[str]] = {}
    for module, (layer, summary) in layers().items():
        if module == "seamountae" or module.startswith("seamountae.cli"):
            continue
        name = module.removeprefix("seamountae.").replace(".", "/")
        name = f"{name}/" if (PACKAGE / name).is_dir() else f"{name}.py"
        by_layer.setdefault(layer, []).append(f"  - `{name}`: {summary}")
    commands = sorted(m.rsplit(".", 1)[1] for m in layers() if m.startswith("seamountae.cli.") and not m.endswith("options"))
    by_layer.setdefault(6, []).append(f"  - `cli/`: {layers()['seamountae.cli'][1]} Commands: {', '.join(commands)}; "
                                      "`options.py` holds the options shared by every command")
    lines = []
    for layer in sorted(by_layer):
        below = f"imports layers 1–{layer}" if layer > 1 else "imports layer 1"
        lines.append(f"- **{layer} {LAYER_NAMES[layer]}** ({below} only)")
        lines += by_layer[layer]
    return "\n".join(lines) + "\n"


def test_the_readme_layout_matches_the_modules():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_START in text and README_END in text, f"README.md lacks the markers {README_START} ... {README_END}"
    section = text.split(README_START, 1)[1].split(README_END, 1)[0].strip("\n") + "\n"
    assert section == layout_markdown(), "README's package layout is out of date: run python tests/test_layers.py --readme"


if __name__ == "__main__":
    if sys.argv[1:] != ["--readme"]:
        sys.exit(__doc__)
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(README_START, 1)
    readme.write_text(head + README_START + "\n" + layout_markdown() + README_END + rest.split(README_END, 1)[1],
                      encoding="utf-8")
