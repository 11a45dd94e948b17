"""Policy packs shipped with modelreg, as data (YAML). ``modelreg.policy`` reads them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACK_SUFFIXES = (".yaml", ".yml")


def pack_dir() -> Path:
    """The folder holding the shipped packs (a real folder: the package is installed unzipped)."""
    return Path(str(resources.files(__name__)))


def shipped_pack_files() -> list[Path]:
    """Every shipped pack file (policy unit tests live in ``tests/`` and are not packs)."""
    folder = pack_dir()
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PACK_SUFFIXES)


def shipped_tests_file(pack_file: Path) -> Path:
    """Where the policy unit tests of a shipped pack live: ``tests/<stem>.tests.yaml``."""
    return pack_file.parent / "tests" / f"{pack_file.stem}.tests.yaml"
