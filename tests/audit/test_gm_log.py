"""An SM3 audit log (``modelreg init --hash sm3``): RFC 6962 structure with SM3, recorded once, never mixed.

Expected roots are computed independently of ``modelreg.audit.merkle``: RFC 6962's recursive MTH written
out here, over ``cryptography``'s SM3 (not the hashlib SM3 the log uses), plus one tree composed by hand.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import text

from modelreg.audit import merkle
from modelreg.errors import BadInput
from modelreg.store.schema import HEAD_REVISION


def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def mth(entries: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, literally: split at the largest power of two smaller than n."""
    n = len(entries)
    if n == 0:
        return sm3(b"")
    if n == 1:
        return sm3(b"\x00" + entries[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sm3(b"\x01" + mth(entries[:k]) + mth(entries[k:]))


ENTRIES = [f"event {i}".encode() for i in range(7)]


def test_three_leaf_tree_composed_by_hand() -> None:
    a, b, c = (sm3(b"\x00" + e) for e in ENTRIES[:3])
    want = sm3(b"\x01" + sm3(b"\x01" + a + b) + c)
    leaves = merkle.leaf_hashes(ENTRIES[:3], "sm3")
    assert leaves == [a, b, c]
    assert merkle.root_from_leaf_hashes(leaves, "sm3") == want
    assert merkle.MerkleTree(leaves, tree_hash="sm3").root() == want


@pytest.mark.parametrize("n", range(1, 8))
def test_sm3_roots_and_proofs_for_one_to_seven_leaves(n: int) -> None:
    entries = ENTRIES[:n]
    want = mth(entries)
    leaves = [merkle.leaf_hash(e, "sm3") for e in entries]
    assert merkle.root_from_leaf_hashes(leaves, "sm3") == want
    tree = merkle.MerkleTree.from_leaf_hashes(leaves, tree_hash="sm3")
    appended = merkle.MerkleTree(leaves, tree_hash="sm3")
    assert tree.root() == appended.root() == want
    assert want != merkle.root_from_leaf_hashes(merkle.leaf_hashes(entries), "sha256")
    for i in range(n):
        proof = tree.inclusion_proof(i)
        assert merkle.verify_inclusion(leaves[i], i, n, proof, want, "sm3")
        # The same proof read as SHA-256 fails (a 1-leaf tree's root is the leaf: nothing to re-hash).
        assert merkle.verify_inclusion(leaves[i], i, n, proof, want, "sha256") is (n == 1)
    for m in range(1, n + 1):
        old = mth(entries[:m])
        assert tree.root_at(m) == old
        proof = tree.consistency_proof(m, n)
        assert merkle.verify_consistency(m, n, old, want, proof, "sm3")
    assert merkle.empty_root("sm3") == sm3(b"")


# -- the registry's log -------------------------------------------------------------------------------


def _sm3_registry(db_url, settings_for, suite: str = "sm2"):
    from modelreg.registry import Registry

    reg = Registry(settings_for(db_url), actor="admin")
    reg.init(tree_hash="sm3", suite=suite)
    reg.add_user("admin", ["admin"])
    return reg


def test_sm3_log_on_the_database(db_url, settings_for, tmp_path) -> None:
    pytest.importorskip("tongsuopy")
    from modelreg import signing
    from modelreg.audit import log as audit_log

    reg = _sm3_registry(db_url, settings_for)
    try:
        # One registry holds keys of both suites.
        for name, suite in (("alice", "sm2"), ("bob", "ed25519")):
            key = signing.write_key_pair(tmp_path / name, tmp_path / f"{name}.pub", suite=suite)
            reg.add_user(name, ["validator"], public_key_pem=signing.public_key_to_pem(key).decode())
        with reg.engine.connect() as conn:
            rows = conn.execute(text("SELECT seq, canonical, leaf_hash FROM audit_events ORDER BY seq")).all()
            suites_ = dict(conn.execute(text("SELECT name, key_suite FROM users")).all())
        assert suites_ == {"admin": None, "alice": "sm2-sm3", "bob": "ed25519"}
        canon = [bytes(r[1]) for r in rows]
        assert [bytes(r[2]) for r in rows] == [sm3(b"\x00" + c) for c in canon]
        assert {k: v for k, v in json.loads(canon[0])["payload"].items() if k != "event_key"} == {
            "schema_revision": HEAD_REVISION,
            "signing_suite": "sm2-sm3",
            "tree_hash": "sm3",
        }
        report = reg.audit_verify()
        assert report.ok and report.size == len(canon) and report.root_hash == mth(canon).hex()
        assert audit_log.crypto_settings(reg.engine) == ("sm3", "sm2-sm3")
        from modelreg.audit.proofs import inclusion_proof

        proof = inclusion_proof(reg, 1)
        assert proof["root_hash"] == mth(canon).hex()
        assert merkle.verify_inclusion(
            sm3(b"\x00" + canon[1]),
            1,
            len(canon),
            [bytes.fromhex(h) for h in proof["proof"]],
            mth(canon),
            "sm3",
        )

        cp_path = tmp_path / "cp.json"
        out = reg.audit_checkpoint(cp_path)
        assert out["checkpoint"]["tree_hash"] == "sm3" and out["checkpoint"]["algorithm"] == "sm2-sm3"
        assert out["checkpoint"]["root_hash"] == mth(canon).hex()
        assert reg.audit_verify(cp_path).ok
    finally:
        reg.engine.dispose()


def test_mixing_is_refused(db_url, settings_for, tmp_path) -> None:
    pytest.importorskip("tongsuopy")
    from modelreg import signing
    from modelreg.audit.checkpoint import sign_checkpoint

    reg = _sm3_registry(db_url, settings_for)
    try:
        with pytest.raises(BadInput, match=r"audit log uses sm3 .* --hash sha256 is refused"):
            reg.init(tree_hash="sha256")
        with pytest.raises(
            BadInput, match=r"signs its checkpoints and packs with sm2-sm3 .* --suite ed25519"
        ):
            reg.init(suite="ed25519")
        assert reg.init(tree_hash="sm3", suite="sm2")["created"] is False  # asking for what it has is fine

        # An Ed25519 key file where this SM2 registry keeps its audit key: refused, not silently used. (The
        # SM2 key init created for the registry's event signatures is moved away first.)
        from pathlib import Path

        Path(reg.settings.audit_key_path).unlink()
        signing.public_key_path_for(reg.settings.audit_key_path).unlink()
        signing.write_key_pair(
            reg.settings.audit_key_path, signing.public_key_path_for(reg.settings.audit_key_path)
        )
        with pytest.raises(BadInput, match="holds a ed25519 key but suite sm2-sm3 was asked for"):
            reg.audit_checkpoint(tmp_path / "cp.json")

        # A checkpoint over a SHA-256 tree is not a checkpoint of this SM3 log.
        key = signing.generate_private_key("sm2")
        foreign = sign_checkpoint(1, bytes(32), key, time="2026-01-01T00:00:00Z")
        foreign.save(tmp_path / "foreign.json")
        (tmp_path / "foreign.pub").write_bytes(signing.public_key_to_pem(key))
        with pytest.raises(
            BadInput, match="checkpoint is over a sha256 tree but this registry's audit log uses sm3"
        ):
            reg.audit_verify(tmp_path / "foreign.json", trusted_key=tmp_path / "foreign.pub")
    finally:
        reg.engine.dispose()


def test_upgrading_a_0001_registry_keeps_sha256_and_the_guards(db_url, settings_for) -> None:
    from alembic import command

    from modelreg.audit import log as audit_log
    from modelreg.registry import Registry
    from modelreg.store.schema import _alembic_config

    reg = Registry(settings_for(db_url), actor="admin")
    try:
        with reg.engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0001")
        result = reg.init()
        from modelreg.store.schema import HEAD_REVISION

        assert result["upgraded"] and result["before"] == "0001" and result["after"] == HEAD_REVISION
        assert audit_log.crypto_settings(reg.engine) == ("sha256", "ed25519")
        reg.add_user("admin", ["admin"])
        assert reg.audit_verify().ok
        # The forward-only guard on audit_state survived the ALTERs.
        with pytest.raises(Exception, match=r"(?i)shrink|forward"):
            with reg.engine.begin() as conn:
                conn.execute(text("UPDATE audit_state SET size = 0 WHERE id = 1"))
    finally:
        reg.engine.dispose()
