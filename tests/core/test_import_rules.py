"""The tree's dependency rules, checked on the source (AST), not by convention:

* ``monitors/`` never imports ``modelreg`` (pure computations; the registry depends on them, never back);
* only ``modelreg/integrations/mlflow/`` imports ``mlflow`` (in ``modelreg/`` and ``monitors/``);
* nothing outside the registry package writes: no ``session.add``/``merge``/``delete``, no SQLAlchemy
  ``insert``/``update``/``delete`` statements and no store table rows outside ``modelreg/registry/`` and
  ``modelreg/store/`` (the Merkle log, ``modelreg/audit/log.py``, appends its own rows and is called only by
  the registry's unit of work);
* no module outside the registry package calls the registry's private methods.

Each rule is also run on a small offending snippet, so a scan that silently finds nothing fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

MODELREG = REPO_ROOT / "modelreg"
MONITORS = REPO_ROOT / "monitors"
MLFLOW_PACKAGE = MODELREG / "integrations" / "mlflow"
WRITERS = (MODELREG / "registry", MODELREG / "store")
AUDIT_LOG = MODELREG / "audit" / "log.py"  # the Merkle log's own rows (append-only)
PRIVATE_REGISTRY = {
    "_write",
    "_read",
    "_authorize",
    "_event",
    "_project",
    "_check_schema",
    "_transition",
    "_unmet",
    "_move",
    "_flag",
}
SESSION_WRITES = {"add", "add_all", "merge", "delete", "bulk_save_objects", "bulk_insert_mappings"}
STATEMENTS = {"insert", "update", "delete"}


def _under(path: Path, *roots: Path) -> bool:
    return any(path == r or r in path.parents for r in roots)


def imported_modules(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _top(module: str) -> str:
    return module.split(".")[0]


def write_calls(tree: ast.AST) -> list[str]:
    """``<...session...>.add(...)`` and friends, and SQLAlchemy insert/update/delete statements."""
    sqlalchemy_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sqlalchemy"):
            sqlalchemy_names.update(a.asname or a.name for a in node.names if a.name in STATEMENTS)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute) and fn.attr in SESSION_WRITES and "session" in ast.unparse(fn.value):
            found.append(f"line {node.lineno}: {ast.unparse(fn)}")
        elif isinstance(fn, ast.Name) and fn.id in sqlalchemy_names:
            found.append(f"line {node.lineno}: {fn.id}(...)")
        elif (
            isinstance(fn, ast.Attribute)
            and fn.attr in STATEMENTS
            and ast.unparse(fn.value) in ("sa", "sqlalchemy")
        ):
            found.append(f"line {node.lineno}: {ast.unparse(fn)}")
    return found


def private_registry_calls(tree: ast.AST) -> list[str]:
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in PRIVATE_REGISTRY
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]


def _sources(*roots: Path) -> list[tuple[Path, ast.AST]]:
    return [
        (p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p)))
        for root in roots
        for p in sorted(root.rglob("*.py"))
    ]


def test_monitors_never_import_modelreg():
    bad = {
        str(p.relative_to(REPO_ROOT)): sorted(m for m in imported_modules(t) if _top(m) == "modelreg")
        for p, t in _sources(MONITORS)
    }
    assert not {k: v for k, v in bad.items() if v}


def test_only_the_mlflow_integration_imports_mlflow():
    importers = [
        str(p.relative_to(REPO_ROOT))
        for p, t in _sources(MODELREG, MONITORS)
        if any(_top(m) == "mlflow" for m in imported_modules(t))
    ]
    inside = [i for i in importers if _under(REPO_ROOT / i, MLFLOW_PACKAGE)]
    assert inside, "the scan found no mlflow import at all (it guards itself: the integration has some)"
    assert sorted(set(importers) - set(inside)) == []


def test_nothing_outside_the_registry_package_writes():
    offenders: dict[str, list[str]] = {}
    for p, t in _sources(MODELREG):
        if _under(p, *WRITERS) or p == AUDIT_LOG:
            continue
        found = write_calls(t)
        found += [f"imports {m}" for m in imported_modules(t) if m.startswith("modelreg.store.tables")]
        if found:
            offenders[str(p.relative_to(REPO_ROOT))] = found
    assert offenders == {}
    # and the registry package does write (the scan sees what it is meant to see)
    assert any(write_calls(t) for p, t in _sources(MODELREG / "store"))


def test_no_private_registry_calls_outside_the_registry_package():
    offenders = {
        str(p.relative_to(REPO_ROOT)): private_registry_calls(t)
        for p, t in _sources(MODELREG)
        if not _under(p, MODELREG / "registry")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scans_catch_offending_code():
    snippet = ast.parse(
        "import mlflow.sklearn\n"
        "from modelreg.registry import Registry\n"
        "from sqlalchemy import update as upd\n"
        "def f(reg, session, row):\n"
        "    session.add(row)\n"
        "    tx.session.merge(row)\n"
        "    session.execute(upd(T).values(x=1))\n"
        "    with reg._write() as s:\n"
        "        reg._event(s, 'x')\n"
    )
    assert {"mlflow.sklearn", "modelreg.registry", "modelreg.registry.Registry"} <= imported_modules(snippet)
    assert len(write_calls(snippet)) == 3
    assert len(private_registry_calls(snippet)) == 2
