"""Dependencies run one way, with no import cycles (read from the source with ``ast``).

Layers (module names as installed: ``converters/`` is ``edge_embedder.convert``,
``benchmarks/`` is ``edge_embedder.bench``):

* runtime: ``edge_embedder.*`` except the three below; it never imports them;
* tooling: ``edge_embedder.convert.*`` and ``edge_embedder.bench.*``; they
  import the runtime through its public modules and names only, never the CLI;
  the converters never import the benchmarks;
* app: ``edge_embedder.cli.*`` and ``edge_embedder.__main__``, which may import anything.

Every ``import`` statement counts, also those inside functions: a lazy import
is still a dependency. Within the core, nothing knows a task.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from .conftest import ROOT

ROOTS = {"edge_embedder": ROOT / "edge_embedder", "edge_embedder.convert": ROOT / "converters",
         "edge_embedder.bench": ROOT / "benchmarks"}
TOOLING = ("edge_embedder.convert", "edge_embedder.bench")
APP = ("edge_embedder.cli", "edge_embedder.__main__")
#: What the tooling may import from the runtime: modules whose ``__all__`` is the public API.
PUBLIC_MODULES = {
    "edge_embedder", "edge_embedder.errors", "edge_embedder.exit_codes", "edge_embedder.files", "edge_embedder.extras",
    "edge_embedder.argtypes", "edge_embedder.metadata", "edge_embedder.vision", "edge_embedder.text",
    "edge_embedder.containers", "edge_embedder.resources", "edge_embedder.folder", "edge_embedder.progress",
    "edge_embedder.search", "edge_embedder.integrations.ray", "edge_embedder.zero_shot",
}


def _modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in ROOTS.items():
        for f in sorted(folder.rglob("*.py")):
            rel = f.relative_to(folder).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            if prefix == "edge_embedder" and (name.startswith(TOOLING) or "data" in parts):
                continue
            out[name] = f
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import statement of ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    package = name if _is_package(name) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            # `from pkg import submodule` is an import of the submodule
            subs = [n for n in names if f"{target}.{n}" in MODULES]
            if subs:
                found += [(f"{target}.{n}", [], node.lineno) for n in subs]
                names = [n for n in names if n not in subs]
            if names or not subs:
                found.append((target, names, node.lineno))
    return found


def _internal(target: str) -> str | None:
    """The project module ``target`` resolves to (a module or its package), or None if external."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def _layer(name: str) -> str:
    if name.startswith(APP):
        return "app"
    if name.startswith(TOOLING):
        return "tooling"
    return "runtime"


def test_the_walk_sees_every_layer():
    layers = {_layer(m) for m in MODULES}
    assert layers == {"app", "tooling", "runtime"}
    assert "edge_embedder.convert.pipeline" in MODULES and "edge_embedder.bench.harness" in MODULES


def test_no_top_level_converters_or_benchmarks_imports():
    bad = [(m, t, line) for m in MODULES for t, _, line in _imports(m)
           if t.split(".")[0] in ("converters", "benchmarks")]
    assert not bad, f"only edge_embedder is an import root: {bad}"


def test_runtime_never_imports_tooling_or_the_cli():
    bad = []
    for m in MODULES:
        if _layer(m) != "runtime":
            continue
        for t, _, line in _imports(m):
            target = _internal(t)
            if target and _layer(target) != "runtime":
                bad.append(f"{m}:{line} imports {target}")
    assert not bad, bad


def test_tooling_uses_the_runtime_public_api_only():
    bad = []
    for m in MODULES:
        if _layer(m) != "tooling":
            continue
        for t, names, line in _imports(m):
            target = _internal(t)
            if target is None or _layer(target) == "tooling":
                if target and m.startswith("edge_embedder.convert") and target.startswith("edge_embedder.bench"):
                    bad.append(f"{m}:{line} (converters) imports the benchmarks ({target})")
                continue
            if _layer(target) == "app":
                bad.append(f"{m}:{line} imports the CLI ({target})")
                continue
            if t not in PUBLIC_MODULES:
                bad.append(f"{m}:{line} imports the private module {t}")
                continue
            public = set(getattr(importlib.import_module(t), "__all__", ()))
            private = [n for n in names if n not in public and n != "__version__"]
            if private:
                bad.append(f"{m}:{line} imports {private} from {t}, not in its __all__")
    assert not bad, "\n".join(bad)


def test_core_knows_no_task():
    bad = [f"{m}:{line} imports {t}" for m in MODULES if m.startswith("edge_embedder.core")
           for t, _, line in _imports(m)
           if (_internal(t) or "").startswith(("edge_embedder.vision", "edge_embedder.text", "edge_embedder.folder",
                                              "edge_embedder.zero_shot"))]
    assert not bad, bad


def test_no_import_cycles():
    graph = {m: sorted({_internal(t) for t, _, _ in _imports(m)} - {None, m}) for m in MODULES}
    # importing a submodule runs its package first, but that is not an edge of the submodule's own code
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for n in graph[m]:
            if seen.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in seen:
                visit(n)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(PUBLIC_MODULES))
def test_public_modules_declare_their_api(module):
    mod = importlib.import_module(module)
    assert getattr(mod, "__all__", None), f"{module} has no __all__"
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists {name!r}, which does not exist"
