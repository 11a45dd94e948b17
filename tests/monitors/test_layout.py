"""The monitors package's import graph, every import statement counted (lazy ones inside functions too):
no module takes part in a cycle, so the reduction engines, the monitors and ``scale`` layer cleanly
(``engines/pandas`` ← ``engines/sql`` ← ``engines/duckdb`` ← ``engines/spark``, ``engines/backend`` opens
them; the monitors reduce through ``engines/backend``; ``scale`` chooses the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "monitors"


def import_graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            # a package's own __init__ is imported by its submodules anyway: not an edge back
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_monitors():
    graph = import_graph()
    assert "monitors.engines.sql" in graph["monitors.engines.duckdb"]  # the graph sees real edges
    assert cycles(graph) == []


def test_engines_do_not_import_scale_and_monitors_reduce_through_the_backend():
    graph = import_graph()
    engines = [m for m in graph if m.startswith("monitors.engines")]
    assert all("monitors.scale" not in graph[m] for m in engines)
    for monitor in ("monitors.drift", "monitors.fairness"):
        assert "monitors.engines.backend" in graph[monitor]
        assert "monitors.scale" not in graph[monitor]
