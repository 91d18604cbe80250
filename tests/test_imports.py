"""The package's import structure: every module imports alone, imports run one way.

Why a test: an import circle works until someone imports the modules in another order (a
Ray worker, a subprocess, a user's script), and a function-local import that dodges a circle
hides it from every reader. So the graph is read from the source (ast: top-level AND
function-local imports, both count), and the rules of the developers' guide are checked on
it: the layers import downward only (LAYERS, docs/architecture.md); no cycles; only
archlab.tracking imports wandb; only archlab.search imports ray; the genome module imports no
torch; nothing imports archlab.cli; the product never imports archlab.testing (the test
oracles and fixture writers).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "archlab"
# Modules that run a program when imported (python -m ...): never imported by anything.
ENTRY_POINTS = {"archlab.__main__", "archlab.bench.__main__", "archlab.cli.__main__"}
# The package's layers, lowest first. A module imports archlab modules of its own package or
# of a lower layer only; packages in one layer do not import each other. Nothing but the
# package's __init__ and __main__ sits at the root: every module belongs to a layer.
LAYERS: list[tuple[str, ...]] = [
    ("util",),  # errors, files, tables, versions, YAML file resolution: no torch, no archlab above
    ("model", "data"),  # genome -> nn.Module; clips -> tensors
    ("measure",),  # what a network costs: MACs, params, latency, forms, runtimes
    ("training",),  # the recipe, the trainer, checkpoints, calibration (it runs training steps)
    ("results", "spaces"),  # the trial record and the study's tables; the search spaces
    ("tracking",),  # W&B
    ("search", "fidelity"),
    ("experiments",),  # fixed comparisons, built from searches and fidelity's measurements
    ("report", "export"),
    ("testing",),  # test oracles and fixture writers (only the benchmarks use them)
    ("bench",),
    ("cli",),
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
ROOT_MODULES = {"archlab", "archlab.__main__"}
# Edges allowed for now, each with the reason; the test fails if one disappears, so the list
# cannot go stale.
TRANSITION: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


def _resolve(mod: str, is_pkg: bool, level: int, name: str | None) -> str:
    """The absolute module a relative import in ``mod`` names."""
    if level == 0:
        return name or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(mod: str) -> set[str]:
    """Every module ``mod`` imports, anywhere in its source: archlab modules by their full
    name (``from .x import y`` counts as x.y when y is a submodule, else as x), others by
    their top-level distribution name."""
    path = MODULES[mod]
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.add(a.name if a.name.startswith("archlab") else a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, is_pkg, node.level, node.module)
            if not target.startswith("archlab"):
                out.add(target.split(".")[0])
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in MODULES else target)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):  # importlib.import_module("archlab.x")
            out.add(node.args[0].value)
    out.discard(mod)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def _importers(target: str) -> set[str]:
    return {m for m, deps in GRAPH.items() if any(d == target or d.startswith(target + ".") for d in deps)}


def _owned_by(mod: str, owner: str) -> bool:
    return mod == owner or mod.startswith(owner + ".")


def test_every_module_imports_alone():
    """One fresh interpreter imports each module with every archlab module forgotten first
    (third-party packages stay loaded: torch cannot be imported twice), so each import
    starts from nothing of archlab, as it would in a fresh process."""
    code = """
import importlib, json, sys, traceback, warnings
warnings.simplefilter("ignore")
failed = {}
for name in json.loads(sys.argv[1]):
    for m in [m for m in sys.modules if m == "archlab" or m.startswith("archlab.")]:
        del sys.modules[m]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc().strip().splitlines()[-1]
print(json.dumps(failed))
"""
    names = sorted(set(MODULES) - ENTRY_POINTS)
    assert len(names) > 40  # the walk found the package
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {}


def test_the_graph_reads_real_imports():
    """The walker sees what the modules do import (a walker that saw nothing would pass the
    rules below)."""
    assert (
        "archlab.model.genome" in GRAPH["archlab.results.reader"] and "optuna" in GRAPH["archlab.results.study"]
    )  # local import
    assert "archlab.measure.graph_files" in GRAPH["archlab.export.run"]
    assert "archlab.testing.reference" in GRAPH["archlab.bench.main"]  # lazy: via importlib/_LAZY table
    assert "wandb" in GRAPH["archlab.tracking.tracker"] and "ray" in GRAPH["archlab.search.driver"]


def _package(mod: str) -> str:
    return mod.split(".")[1]


def test_every_module_sits_in_a_layer():
    assert sorted(m for m in MODULES if m.count(".") == 1 and m not in ROOT_MODULES and _package(m) not in RANK) == []
    assert {p.name for p in PKG.glob("*.py")} == {"__init__.py", "__main__.py"}


def climbing_edges(graph: dict[str, set[str]]) -> list[str]:
    """The edges of ``graph`` that break LAYERS: an archlab import of another package in the
    same or a higher layer, or of the package root."""
    out = []
    for mod, deps in graph.items():
        if mod in ROOT_MODULES:
            continue
        for dep in deps:
            if dep == "archlab":
                out.append(f"{mod} -> {dep}")
            elif (
                dep.startswith("archlab.")
                and _package(dep) != _package(mod)
                and RANK[_package(dep)] >= RANK[_package(mod)]
            ):
                out.append(f"{mod} -> {dep}")
    return sorted(out)


def test_layers_import_downward_only():
    """The import graph, read from the source, against LAYERS."""
    assert climbing_edges(GRAPH) == []


def test_the_layer_rule_catches_climbing_imports():
    """The rule on planted edges: upward, sideways within a layer and to the root all fail;
    downward and within a package pass."""
    planted = {
        "archlab.model.builder": {"archlab.measure.profile", "archlab.model.blocks", "archlab.util.errors", "torch"},
        "archlab.search.trial": {"archlab.fidelity.runner", "archlab.training.trainer"},
        "archlab.results.reader": {"archlab"},
        "archlab.cli.search": {"archlab.search.driver", "archlab.report.figures"},
    }
    assert climbing_edges(planted) == [
        "archlab.model.builder -> archlab.measure.profile",
        "archlab.results.reader -> archlab",
        "archlab.search.trial -> archlab.fidelity.runner",
    ]


def test_no_import_cycles():
    """Imports run one way: a depth-first walk finds no module that (transitively) imports
    itself. Package __init__ files re-exporting their submodules are edges like any other."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH.get(m, ())):
            if d not in MODULES:
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m)
    assert cycles == []


@pytest.mark.parametrize("dist, owner", [("wandb", "archlab.tracking"), ("ray", "archlab.search")])
def test_one_package_talks_to_each_service(dist, owner):
    users = {m for m, deps in GRAPH.items() if dist in deps and not _owned_by(m, owner)}
    allowed = {m for (m, d) in TRANSITION if d == dist}
    assert users == allowed, f"{dist} is imported outside {owner}: {sorted(users - allowed)}"


def test_transition_exceptions_still_exist():
    for (m, d), why in TRANSITION.items():
        assert d in GRAPH[m], f"{m} no longer imports {d}: remove it from TRANSITION ({why})"


def test_genome_imports_no_torch_and_nothing_imports_cli():
    assert not {"torch", "numpy"} & GRAPH["archlab.model.genome"]
    importers = {m for m in _importers("archlab.cli") if not _owned_by(m, "archlab.cli")} - ENTRY_POINTS
    assert importers == set()


def test_the_product_does_not_import_the_test_oracles():
    """archlab.testing (reference networks, fixture writers) is for tests and benchmarks: only
    archlab.bench (the benchmarks compare against the oracle) may import it."""
    users = {m for m in _importers("archlab.testing") if not _owned_by(m, "archlab.testing")}
    assert users <= {m for m in MODULES if _owned_by(m, "archlab.bench")}, sorted(users)
    assert not any(_owned_by(d, "archlab.testing") for d in GRAPH["archlab.bench.blocks"] | GRAPH["archlab.bench"])


def test_data_reads_one_way():
    """The cache reader does not know the datasets or the writer; the writer knows them all."""
    allowed = {
        "archlab.data.video": set(),
        "archlab.data.cache": {"archlab.data.video"},
        "archlab.data.clips": {"archlab.data.video", "archlab.data.cache"},
    }
    for mod, ok in allowed.items():
        assert {d for d in GRAPH[mod] if d.startswith("archlab.data")} == ok, mod
    assert {"archlab.data.cache", "archlab.data.ucf101", "archlab.data.folder"} <= GRAPH["archlab.data.prepare"]
    assert _importers("archlab.data.prepare") <= {"archlab.cli.data"}
