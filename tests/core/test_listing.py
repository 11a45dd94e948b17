"""``modelreg list`` reads SQLite through the sqlite3 driver (no SQLAlchemy on that path): it must return
exactly what ``Registry.list`` returns, refuse an unusable database the same way, and on PostgreSQL read
through the registry itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelreg.errors import BadInput, SchemaError
from modelreg.store.listing import list_versions, sqlite_file
from tests.conftest import register_version


def _populate(reg) -> None:
    for name, version in (("credit_scoring", "1"), ("credit_scoring", "2"), ("aml", "7"), ("zeta", "1")):
        register_version(reg, name, version)
    dev, ops = reg.as_user("dev"), reg.as_user("ops")
    dev.submit("credit_scoring", "2")
    dev.submit("aml", "7")
    reg.as_user("app1").deploy("aml", "7")
    ops.suspend("aml", "7", reason="drill")
    reg.as_user("app1").retire("zeta", "1", reason="replaced")


def test_listing_equals_registry_list(registry, db_url, settings_for):
    _populate(registry)
    settings = settings_for(db_url)
    for stage, model in (
        (None, None),
        ("validate", None),
        ("deploy", None),
        (None, "credit_scoring"),
        ("develop", "aml"),
    ):
        assert list_versions(settings, stage, model) == registry.list(stage, model), (stage, model)
    everything = list_versions(settings)
    assert [(v.model, v.version, v.stage.value, v.suspended) for v in everything] == [
        ("aml", "7", "deploy", True),
        ("credit_scoring", "1", "develop", False),
        ("credit_scoring", "2", "validate", False),
        ("zeta", "1", "retire", False),
    ]
    assert all(v.updated_at.tzinfo is not None for v in everything)
    with pytest.raises(BadInput, match="--stage must be one of"):
        list_versions(settings, "production")


def test_sqlite_file_of_urls(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/r.db") == tmp_path / "r.db"
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://postgres@127.0.0.1/x") is None


def test_unusable_sqlite_databases_are_refused_like_the_registry(tmp_path, settings_for):
    missing = settings_for(f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(SchemaError, match=r"no registry database at .*run `modelreg init` first"):
        list_versions(missing)
    assert not (tmp_path / "nope.db").exists()  # a read never creates the file
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(SchemaError, match=r"not initialised: run `modelreg init` first"):
        list_versions(settings_for(f"sqlite:///{tmp_path / 'empty.db'}"))


def test_cli_list_does_not_import_sqlalchemy_on_sqlite(registry, env_for, tmp_path, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the driver path is the SQLite one")
    _populate(registry)
    code = (
        "import sys, json; from modelreg.cli.main import main; rc = main(['list', '--json']); "
        "print('@@' + json.dumps({'rc': rc, 'sa': 'sqlalchemy' in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env_for(db_url), capture_output=True, text=True)
    out, marker = done.stdout.rsplit("@@", 1)
    assert json.loads(marker) == {"rc": 0, "sa": False}
    assert [(v["model"], v["version"]) for v in json.loads(out)] == [
        ("aml", "7"),
        ("credit_scoring", "1"),
        ("credit_scoring", "2"),
        ("zeta", "1"),
    ]
