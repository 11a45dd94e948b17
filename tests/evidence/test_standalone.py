"""The standalone verifier: generated from the verification sources, committed, shipped in every pack, and
run in a fresh virtual environment without modelreg, where it gives the verdicts ``modelreg evidence
verify`` gives."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from modelreg.evidence.standalone import COMMITTED, PACK_MEMBER, SOURCES, StandaloneBuildError, build
from tests.evidence._standalone import clean_venv, run_standalone  # noqa: F401  (fixture)
from tests.evidence.conftest import REPO_ROOT, members, rezip


def test_the_committed_file_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == build(), (
        "modelreg/evidence/standalone_verify.py is stale: run `python -m modelreg.evidence.standalone`"
    )


def test_every_pack_ships_the_committed_verifier(pack_path) -> None:
    files = members(pack_path)
    assert files[PACK_MEMBER] == COMMITTED.read_bytes()
    manifest = json.loads(files["manifest.json"])
    assert PACK_MEMBER in {f["path"] for f in manifest["files"]}  # covered by the signature like any file


def _tree_with(tmp_path: Path, extra: dict[str, str]) -> Path:
    root = tmp_path / "src"
    for rel in SOURCES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, root / rel)
    for rel, text in extra.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_one_more_stdlib_module_is_a_one_line_change(tmp_path) -> None:
    """How a module joins (as evidence/crosscheck.py did): one entry in SOURCES, after what it imports."""
    module = (
        '"""Cross-checks."""\n\nfrom __future__ import annotations\n\nimport json\n\n'
        "from modelreg.evidence.verify import VerifyResult\n\n\n"
        "def crosscheck_summary(result: VerifyResult) -> str:\n"
        '    return json.dumps({"ok": result.ok})\n'
    )
    root = _tree_with(tmp_path, {"modelreg/evidence/extra_check.py": module})
    sources = (*SOURCES[:-1], "modelreg/evidence/extra_check.py", SOURCES[-1])
    text = build(sources, root)
    assert "# -------------------- modelreg/evidence/extra_check.py" in text
    built = types.ModuleType("standalone_with_crosscheck")
    sys.modules[built.__name__] = built  # dataclasses look their module up while the class is created
    try:
        exec(compile(text, built.__name__, "exec"), built.__dict__)
    finally:
        del sys.modules[built.__name__]
    assert built.crosscheck_summary(built.VerifyResult(ok=True, problems=[])) == '{"ok": true}'


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from modelreg import clock\n", "imports from modelreg, which is not an earlier source"),
        ("from modelreg.registry import Registry\n", "which is not an earlier source"),
        ("from modelreg.errors import BadInput as Bad\n", "'import ... as' is not allowed"),
        ("import requests\n", "imports requests, which is neither the standard library nor cryptography"),
        ("def f():\n    import sqlalchemy\n", "imports sqlalchemy"),
        ("def verify_pack():\n    pass\n", "verify_pack is also defined by modelreg/evidence/verify.py"),
        ("from modelreg.errors import NoSuchName\n", "NoSuchName is not defined by an earlier source"),
    ],
)
def test_build_refuses_a_source_that_breaks_the_rules(tmp_path, source: str, message: str) -> None:
    root = _tree_with(tmp_path, {"modelreg/evidence/bad.py": "from __future__ import annotations\n" + source})
    with pytest.raises(StandaloneBuildError, match=message):
        build((*SOURCES, "modelreg/evidence/bad.py"), root)


# -- in a fresh virtual environment ------------------------------------------------------------------------


def _unpack_verifier(pack: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    script = dest / PACK_MEMBER
    script.write_bytes(members(pack)[PACK_MEMBER])
    return script


def test_the_shipped_verifier_runs_without_modelreg(clean_venv, german, pack_path, tmp_path) -> None:  # noqa: F811
    from modelreg.evidence import verify_pack

    script = _unpack_verifier(pack_path, tmp_path / "auditor")
    key = str(german.evidence_pub)
    want = verify_pack(pack_path, trusted_keys=[key])
    assert want.ok

    as_json = run_standalone(clean_venv, script, str(pack_path), "--trusted-key", key, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == json.loads(want.json_text())
    as_text = run_standalone(clean_venv, script, str(pack_path), "--trusted-key", key)
    assert as_text.returncode == 0 and as_text.stdout == want.text() + "\n"

    # A tampered pack: exit 1 and the same problems, word for word.
    victim = f"monitors/{german.validation.id}/fairness/fairness_groups.csv"
    bad = rezip(pack_path, tmp_path / "bad.zip", replace={victim: b"group,rate\nx,0.5\n"})
    got = run_standalone(clean_venv, script, str(bad), "--trusted-key", key, "--json")
    assert got.returncode == 1
    assert json.loads(got.stdout)["problems"] == verify_pack(bad, trusted_keys=[key]).problems != []

    # Bad input: one line on stderr, exit 2, nothing on stdout.
    missing = run_standalone(clean_venv, script, str(pack_path), "--trusted-key", str(tmp_path / "nope.pub"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        f"error: public key file not found: {tmp_path / 'nope.pub'}. "
        "Check the path, or create a key pair first."
    ]
    not_zip = run_standalone(clean_venv, script, str(script), "--trusted-key", key)
    assert (
        not_zip.returncode == 2
        and "is not a zip file" in not_zip.stderr
        and len(not_zip.stderr.splitlines()) == 1
    )
