"""The import graph of src/brenier: data flows down the layers, with no cycles (issue 14).

Every module is parsed with `ast` (imports at module level and inside functions, absolute and
relative); each module belongs to one layer and may import only from its own layer or lower ones.
Facades (the public names kept for users) may import anything, and nothing imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "brenier"

# lowest first: a module may import from its own layer or a lower one
LAYERS = {
    "brenier.validation": 0,
    "brenier.io": 0,
    "brenier.measures": 1,
    "brenier.datasets": 1,
    "brenier.analysis": 2,
    "brenier.ot": 3,
    "brenier.generators": 4,
    "brenier.morph": 4,
    "brenier.evaluation": 5,
    "brenier.report": 6,
    "brenier.cli": 7,
}
FACADES = {"brenier", "brenier.manifold", "brenier.metrics", "brenier.models"}
OT_FORBIDDEN = ("torch.nn", "torch.optim", "brenier.metrics", "brenier.evaluation", "brenier.generators",
                "brenier.report", "brenier.cli")
TORCH_KERNEL = "brenier.ot.assign"  # the top-k kernel's torch back-end: tensors only, no networks


def _modules() -> dict[str, tuple[Path, bool]]:
    """{dotted name: (file, is a package __init__)} for every module under src/brenier."""
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts.pop()
        out[".".join(parts)] = (path, package)
    return out


MODULES = _modules()


def _known(name: str) -> str:
    """The longest prefix of `name` that is a module of brenier (a name imported from a module
    resolves to that module)."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts)


def _imports(module: str) -> tuple[set[str], set[str], dict[str, int]]:
    """(brenier modules imported, outside top-level packages imported, line of each import) of a
    module, from every `import` / `from ... import` statement in it."""
    path, package = MODULES[module]
    here = module.split(".") if package else module.split(".")[:-1]
    inside, outside, lines = set(), set(), {}

    def add(target: str, line: int) -> None:
        if target == ROOT or target.startswith(ROOT + "."):
            target = _known(target)
            if target and target != module:
                inside.add(target)
                lines.setdefault(target, line)
        else:
            outside.add(target)
            lines.setdefault(target, line)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name if alias.name.startswith(ROOT + ".") or alias.name == ROOT
                    else alias.name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                base_name = ".".join(base)
            else:
                base_name = node.module
            if not (base_name == ROOT or base_name.startswith(ROOT + ".")):
                add(base_name.split(".")[0], node.lineno)
                continue
            for alias in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                sub = f"{base_name}.{alias.name}"
                add(sub if sub in MODULES else base_name, node.lineno)
    return inside, outside, lines


GRAPH = {m: _imports(m) for m in MODULES}


def layer(module: str) -> int | None:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len, default=None)
    return None if best is None else LAYERS[best]


def _where(module: str, target: str) -> str:
    path = MODULES[module][0].relative_to(SRC.parent)
    return f"{path}:{GRAPH[module][2][target]}"


def test_the_walk_sees_relative_and_function_level_imports():
    inside = GRAPH["brenier.report.demo"][0]
    assert "brenier.report.plots" in inside  # from . import plots (a submodule, not the package)
    assert "brenier.io" in inside  # from .. import io
    assert "brenier.report" not in inside
    assert "brenier.generators.aeot" in GRAPH["brenier.cli.analyze"][0]  # inside a function
    assert "brenier.measures" in GRAPH["brenier.generators.aeot"][0]  # from ..measures import Name


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m not in FACADES and layer(m) is None]
    assert not missing, f"modules without a layer (add them to LAYERS in {__file__}): {missing}"


def test_no_upward_import_and_no_facade_import():
    bad = []
    for m in sorted(MODULES):
        if m in FACADES:
            continue
        for t in sorted(GRAPH[m][0]):
            if t in FACADES:
                bad.append(f"{_where(m, t)}: {m} imports the public facade {t}; import the module behind it")
            elif layer(t) is not None and layer(m) is not None and layer(t) > layer(m):
                bad.append(f"{_where(m, t)}: {m} (layer {layer(m)}) imports {t} (layer {layer(t)})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(GRAPH):
        if start in index:
            continue
        work = [(start, iter(sorted(GRAPH[start][0])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(GRAPH[w][0]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    scc = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        scc.append(w)
                        if w == v:
                            break
                    if len(scc) > 1:
                        out.append(sorted(scc))
    return out


def test_no_import_cycles():
    lines = []
    for scc in _cycles():
        members = set(scc)
        edges = [f"    {_where(m, t)}: {m} → {t}" for m in scc for t in sorted(GRAPH[m][0]) if t in members]
        lines.append(f"cycle between {', '.join(scc)}:\n" + "\n".join(edges))
    assert not lines, "import cycles:\n" + "\n".join(lines)


def test_the_ot_core_imports_no_networks_metrics_generators_or_cli():
    bad = []
    for m in sorted(MODULES):
        if layer(m) != LAYERS["brenier.ot"]:
            continue
        inside, outside, _ = GRAPH[m]
        for t in sorted(inside | outside):
            torch_elsewhere = t == "torch" and m != TORCH_KERNEL
            if torch_elsewhere or any(t == f or t.startswith(f + ".") for f in OT_FORBIDDEN):
                bad.append(f"{_where(m, t)}: {m} imports {t}")
    assert not bad, "the OT core must stay free of these imports:\n" + "\n".join(bad)


@pytest.mark.parametrize("facade", sorted(FACADES))
def test_facades_are_modules(facade):
    assert facade in MODULES
