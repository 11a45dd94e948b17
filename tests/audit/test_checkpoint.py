"""Signed checkpoints: sign/verify, tamper detection on every field, file round trip, malformed files."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from modelreg import signing
from modelreg.audit.canonical import canonical_json
from modelreg.audit.checkpoint import (
    Checkpoint,
    checkpoints_consistent,
    sign_checkpoint,
    verify_checkpoint_signature,
)
from modelreg.audit.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_consistency
from modelreg.errors import BadInput

T0 = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def key():
    return signing.generate_private_key()


@pytest.fixture(scope="module")
def other_key():
    return signing.generate_private_key()


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    return MerkleTree(leaf_hash(b'{"event":%d}' % i) for i in range(11))


@pytest.fixture(scope="module")
def cp(key, tree: MerkleTree) -> Checkpoint:
    return sign_checkpoint(tree.size, tree.root(), key, time=T0)


def test_sign_and_verify(cp: Checkpoint, key, tree: MerkleTree) -> None:
    assert cp.size == 11
    assert cp.root_hash == tree.root().hex() and cp.root == tree.root()
    assert cp.time == "2026-11-25T09:30:00.123456Z"
    assert cp.key_id == signing.key_id(key)
    assert cp.algorithm == "ed25519" and cp.origin == "modelreg"
    assert verify_checkpoint_signature(cp, key.public_key())


def test_payload_is_canonical_json_of_all_fields_but_signature(cp: Checkpoint, key) -> None:
    expected = canonical_json(
        {
            "size": cp.size,
            "root_hash": cp.root_hash,
            "time": cp.time,
            "key_id": cp.key_id,
            "algorithm": "ed25519",
            "origin": "modelreg",
        }
    )
    assert cp.payload() == expected
    # Verifiable with nothing but the signing module: what an auditor's own script would do.
    sig = signing.Signature(algorithm=cp.algorithm, key_id=cp.key_id, value=cp.signature)
    assert signing.verify(key.public_key(), expected, sig)


def test_wrong_key_fails(cp: Checkpoint, other_key) -> None:
    assert not verify_checkpoint_signature(cp, other_key.public_key())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 12),
        ("size", 10),
        ("root_hash", EMPTY_ROOT.hex()),
        ("time", "2026-11-25T09:30:00.123457Z"),
        ("key_id", "ed25519:0000000000000000"),
        ("algorithm", "ed448"),
        ("origin", "someone-else"),
        ("signature", ""),
        ("signature", "AAAA"),
    ],
)
def test_changing_any_field_fails(cp: Checkpoint, key, field: str, value: object) -> None:
    tampered = dataclasses.replace(cp, **{field: value})
    assert not verify_checkpoint_signature(tampered, key.public_key())


def test_flipping_any_signature_bit_fails(cp: Checkpoint, key) -> None:
    import base64

    raw = base64.b64decode(cp.signature)
    for bit in range(0, len(raw) * 8, 37):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered = dataclasses.replace(cp, signature=base64.b64encode(bytes(flipped)).decode())
        assert not verify_checkpoint_signature(tampered, key.public_key())


@pytest.mark.parametrize("junk", [None, "key", b"\x00" * 32, 42])
def test_garbage_key_or_checkpoint_is_false(cp: Checkpoint, junk: object) -> None:
    assert verify_checkpoint_signature(cp, junk) is False  # type: ignore[arg-type]
    assert verify_checkpoint_signature(junk, signing.generate_private_key().public_key()) is False  # type: ignore[arg-type]
    weird = dataclasses.replace(cp, size=float("nan"))  # type: ignore[arg-type]
    assert verify_checkpoint_signature(weird, signing.generate_private_key().public_key()) is False


def test_time_inputs(key) -> None:
    root = EMPTY_ROOT
    plus8 = timezone(timedelta(hours=8))
    a = sign_checkpoint(0, root, key, time=T0)
    b = sign_checkpoint(0, root, key, time=T0.astimezone(plus8))  # Beijing wall clock, same instant
    c = sign_checkpoint(0, root, key, time="2026-11-25T17:30:00.123456+08:00")
    assert a.time == b.time == c.time == "2026-11-25T09:30:00.123456Z"
    with pytest.raises(BadInput, match="timezone-aware"):
        sign_checkpoint(0, root, key, time=datetime(2026, 1, 1))
    with pytest.raises(BadInput, match="ISO 8601"):
        sign_checkpoint(0, root, key, time="yesterday")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "size"),
        ({"size": True}, "size"),
        ({"root_hash": b"short"}, "32 bytes"),
        ({"root_hash": EMPTY_ROOT.hex()}, "32 bytes"),
        ({"origin": ""}, "origin"),
    ],
)
def test_sign_argument_errors(key, kwargs: dict, message: str) -> None:
    args = {"size": 1, "root_hash": EMPTY_ROOT, "origin": "modelreg", **kwargs}
    with pytest.raises(BadInput, match=message):
        sign_checkpoint(args["size"], args["root_hash"], key, time=T0, origin=args["origin"])
    with pytest.raises(BadInput):
        sign_checkpoint(1, EMPTY_ROOT, "not a key", time=T0)  # type: ignore[arg-type]


def test_json_round_trip(cp: Checkpoint, key) -> None:
    text = cp.to_json()
    # A SHA-256 checkpoint is every dataclass field but tree_hash (written only for SM3 logs).
    fields_ = {k: v for k, v in dataclasses.asdict(cp).items() if k != "tree_hash"}
    assert cp.tree_hash == "sha256" and text.encode() == canonical_json(fields_)
    back = Checkpoint.from_json(text)
    assert back == cp
    assert Checkpoint.from_json(text.encode()) == cp
    assert verify_checkpoint_signature(back, key.public_key())


def test_save_and_load(cp: Checkpoint, key, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "checkpoint.json"
    cp.save(path)
    assert path.read_text(encoding="utf-8") == cp.to_json() + "\n"
    loaded = Checkpoint.load(path)
    assert loaded == cp
    assert verify_checkpoint_signature(loaded, key.public_key())
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.json"]  # no temp file left behind


def _good_dict(cp: Checkpoint) -> dict:
    return dataclasses.asdict(cp)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
        ("drop:size", "Missing ['size']"),
        ("add:extra", "unexpected ['extra']"),
        ("set:size=-1", "size must be a non-negative integer"),
        ("set:size=true", "size must be a non-negative integer"),
        ("set:size=1.5", "size must be a non-negative integer"),
        ('set:root_hash="ABCD"', "root_hash must be 64 lower-case hex digits"),
        ("set:root_hash=null", "root_hash must be 64 lower-case hex digits"),
        ('set:time="not a time"', "time must be an ISO 8601 UTC timestamp"),
        ("set:signature=7", "signature must be a string"),
        ("set:origin=[]", "origin must be a string"),
    ],
)
def test_load_malformed_file(cp: Checkpoint, tmp_path: Path, content: bytes | str, message: str) -> None:
    if isinstance(content, str):
        data = _good_dict(cp)
        op, _, arg = content.partition(":")
        if op == "drop":
            del data[arg]
        elif op == "add":
            data[arg] = 1
        else:
            name, _, value = arg.partition("=")
            data[name] = json.loads(value)
        content = json.dumps(data).encode()
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    with pytest.raises(BadInput) as info:
        Checkpoint.load(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text
    assert "\n" not in text


def test_load_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="checkpoint file not found"):
        Checkpoint.load(tmp_path / "absent.json")
    with pytest.raises(BadInput, match="cannot read checkpoint file"):
        Checkpoint.load(tmp_path)


def test_old_checkpoint_plus_consistency_proof_detects_rewrite(key) -> None:
    # The auditor's workflow end to end: keep a signed checkpoint, later check the log only grew.
    events = [canonical_json({"seq": i, "type": "stage_changed"}) for i in range(20)]
    log = MerkleTree(leaf_hash(e) for e in events[:13])
    old = sign_checkpoint(log.size, log.root(), key, time=T0)
    log.extend(leaf_hash(e) for e in events[13:])
    new = sign_checkpoint(log.size, log.root(), key, time=T0 + timedelta(days=1))
    assert verify_checkpoint_signature(old, key.public_key()) and verify_checkpoint_signature(
        new, key.public_key()
    )
    proof = log.consistency_proof(old.size, new.size)
    assert verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert checkpoints_consistent(old, new, proof)
    assert not checkpoints_consistent(new, old, proof)
    assert not checkpoints_consistent(old, dataclasses.replace(new, origin="elsewhere"), proof)
    assert not checkpoints_consistent(old, dataclasses.replace(new, root_hash="zz"), proof)
    assert not checkpoints_consistent(old, "junk", proof)  # type: ignore[arg-type]

    rewritten = list(events)
    rewritten[4] = canonical_json({"seq": 4, "type": "stage_changed", "actor": "mallory"})
    forged = MerkleTree(leaf_hash(e) for e in rewritten)
    assert not verify_consistency(
        old.size, new.size, old.root, forged.root(), forged.consistency_proof(13, 20)
    )
