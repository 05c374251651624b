"""The house: no import circles, imports point down the layers, the seed's names where a reader
would look for them.

Every ``import`` and ``from ... import`` of every module of ``botclave_cli`` counts, wherever it
stands (top level, inside a function, under ``TYPE_CHECKING``): a lazy import still ties two
modules together, and a circle that only works because one side imports late is still a circle.
The graph is read from the source (``ast``), so nothing is imported to draw it.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "botclave_cli"

#: the layers from the top down; a module may import its own layer, the foundation, and any layer
#: of a lower group (siblings in one group do not import each other)
LAYER_GROUPS: list[tuple[str, ...]] = [
    ("cli", "dashboard"),
    ("pipeline",),
    ("report",),
    ("validate",),
    ("live",),  # paper trading drives the backtester's simulated exchange (one set of rules)
    ("backtest",),
    ("strategy",),
    ("execution",),
    ("engine",),
    ("data",),
]
#: importable from anywhere; they import only one another (config, errors, logs and the small
#: helpers they stand beside: secrets filtering, progress callbacks, the run lock, lazy package
#: faces, the version)
FOUNDATION = {"", "config", "errors", "logs", "secrets", "progress", "lock", "lazy"}
#: top-level modules that belong to a layer by what they are
ENTRY_POINTS = {"__main__": "cli", "demo": "cli"}
#: the exchange layer talks to the network: it may use the engine and the data layer, and only
#: the live loop and the layers that run whole workflows may use it
EXCHANGE_USES = {"engine", "data"}
EXCHANGE_USERS = {"live", "pipeline", "cli", "dashboard"}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def module_names(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def import_edges(package_dir: Path) -> list[Edge]:
    """Every import of a module of the package by a module of the package."""
    package = package_dir.name
    modules = module_names(package_dir)

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    edges = []
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == package]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != package:
                    continue
                # "from pkg import module" imports the module; "from pkg import Name" the package
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source
                           for a in node.names]
            for target in targets:
                target = known(target)
                if target != name:
                    edges.append(Edge(name, target, node.lineno))
    return edges


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
        graph.setdefault(e.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> str:
    """``botclave_cli.engine.book.kernel`` -> ``engine``; the foundation is ``foundation``."""
    top = module.split(".")[1] if "." in module else ""
    if top in FOUNDATION:
        return "foundation"
    if top in ENTRY_POINTS:
        return ENTRY_POINTS[top]
    return top


def may_import(importer: str, imported: str) -> bool:
    if imported == "foundation" or importer == imported:
        return True
    if importer == "foundation":
        return False
    if importer == "exchange":
        return imported in EXCHANGE_USES
    if imported == "exchange":
        return importer in EXCHANGE_USERS
    rank = {layer: i for i, group in enumerate(LAYER_GROUPS) for layer in group}
    if importer not in rank or imported not in rank:
        return False  # a module outside every layer: test_every_module_has_a_layer names it
    return rank[imported] > rank[importer]


def upward_imports(edges: list[Edge]) -> list[str]:
    return [f"{e.importer} (line {e.line}) imports {e.imported}: "
            f"{layer_of(e.importer)} may not import {layer_of(e.imported)}"
            for e in edges if not may_import(layer_of(e.importer), layer_of(e.imported))]


# ---- the checker finds what it should (a house built to fail) ----------------------------------

def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "botclave_cli" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "botclave_cli"


def test_checker_finds_a_circle_of_lazy_and_relative_imports(tmp_path):
    pkg = _fake_package(tmp_path, {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/a.py": "from botclave_cli.engine import b\n",
        "engine/b.py": "def f():\n    from .c import g\n",
        "engine/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    import botclave_cli.engine.a\n",
        "engine/d.py": "from botclave_cli.engine.a import x\n",
    })
    assert cycles(import_edges(pkg)) == [["botclave_cli.engine.a", "botclave_cli.engine.b",
                                          "botclave_cli.engine.c"]]


def test_checker_finds_an_upward_import_and_names_it(tmp_path):
    pkg = _fake_package(tmp_path, {
        "__init__.py": "",
        "errors.py": "",
        "data/__init__.py": "",
        "data/store.py": "from botclave_cli.errors import X\n\n"
                         "def f():\n    from botclave_cli.strategy.params import P\n",
        "strategy/__init__.py": "",
        "strategy/params.py": "from botclave_cli.data.store import S\n",
        "backtest/__init__.py": "",
        "backtest/run.py": "from botclave_cli.exchange.connector import C\n",
        "exchange/__init__.py": "",
        "exchange/connector.py": "import botclave_cli.engine\n",
        "engine/__init__.py": "",
    })
    assert upward_imports(import_edges(pkg)) == [
        "botclave_cli.backtest.run (line 1) imports botclave_cli.exchange.connector: "
        "backtest may not import exchange",
        "botclave_cli.data.store (line 4) imports botclave_cli.strategy.params: "
        "data may not import strategy",
    ]


def test_layer_rules_read_as_the_architecture_says():
    assert may_import("cli", "pipeline") and may_import("dashboard", "report")
    assert not may_import("pipeline", "cli") and not may_import("report", "dashboard")
    assert not may_import("cli", "dashboard") and not may_import("dashboard", "cli")
    assert may_import("validate", "backtest") and not may_import("backtest", "validate")
    assert may_import("live", "exchange") and not may_import("backtest", "exchange")
    assert may_import("exchange", "engine") and not may_import("exchange", "strategy")
    assert may_import("strategy", "execution") and not may_import("execution", "strategy")
    assert may_import("live", "backtest") and not may_import("backtest", "live")
    assert may_import("data", "foundation") and not may_import("foundation", "data")


# ---- the real house ---------------------------------------------------------------------------

def test_no_import_circle_anywhere():
    found = cycles(import_edges(PACKAGE_DIR))
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_module_has_a_layer():
    layers = {layer for group in LAYER_GROUPS for layer in group} | {"foundation", "exchange"}
    strays = [m for m in module_names(PACKAGE_DIR) if layer_of(m) not in layers]
    assert not strays, f"modules outside every layer (place them in test_architecture): {strays}"


def test_imports_point_down_the_layers():
    wrong = upward_imports(import_edges(PACKAGE_DIR))
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


SEED_NAMES = [
    # (the package a reader would guess, the module that defines it, the name)
    ("botclave_cli.engine.footprint", "botclave_cli.engine.footprint.builder", "FootprintChart"),
    ("botclave_cli.engine.book", "botclave_cli.engine.book.dom_builder", "DOMBuilder"),
    ("botclave_cli.engine.depth", "botclave_cli.engine.depth.analyzer", "DepthAnalyzer"),
    ("botclave_cli.engine.signals", "botclave_cli.engine.signals.indicators",
     "OrderFlowIndicators"),
    ("botclave_cli.strategy", "botclave_cli.strategy.strategy", "OrderFlowStrategy"),
    ("botclave_cli.backtest", "botclave_cli.backtest.backtester", "Backtester"),
    ("botclave_cli.backtest", "botclave_cli.backtest.metrics", "MetricsCalculator"),
    ("botclave_cli.validate", "botclave_cli.validate.validator", "StrategyValidator"),
    ("botclave_cli.report", "botclave_cli.report.charts", "ChartGenerator"),
]


@pytest.mark.parametrize(("package", "module", "name"), SEED_NAMES,
                         ids=[name for _, _, name in SEED_NAMES])
def test_seed_names_are_where_a_reader_looks(package, module, name):
    defined = getattr(importlib.import_module(module), name)
    assert isinstance(defined, type) and defined.__module__ == module
    assert getattr(importlib.import_module(package), name) is defined
    if package.startswith("botclave_cli.engine."):
        assert getattr(importlib.import_module("botclave_cli.engine"), name) is defined


def test_wave_two_rooms_exist_in_their_layers():
    for room in ("execution", "exchange.orders", "live", "dashboard"):
        module = importlib.import_module(f"botclave_cli.{room}")
        assert module.__doc__, f"botclave_cli.{room} says what goes in it"
