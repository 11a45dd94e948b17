"""Documentation tests: an undocumented event or command fails the build."""

from __future__ import annotations

from pathlib import Path

from modelreg.cli.main import COMMANDS
from modelreg.domain.events import EVENTS
from modelreg.domain.roles import PERMISSIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_audit_event_is_documented_in_the_readme():
    missing = [name for name in EVENTS if f"`{name}`" not in README]
    assert missing == []


def test_every_top_level_command_appears_in_the_readme():
    missing = [name for name in COMMANDS if f"`modelreg {name}" not in README]
    assert missing == []


def test_permission_table_names_only_known_roles():
    from modelreg.domain.roles import ANYONE, Role

    roles = {r.value for r in Role}
    for action, rule in PERMISSIONS.items():
        assert rule == ANYONE or (rule and set(rule) <= roles), action
