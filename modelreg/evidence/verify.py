"""Offline verification of an evidence pack. Needs only the zip, trusted public keys and optionally a signed
checkpoint of the audit log: no registry, no database, no network. Imports nothing heavier than
``cryptography`` (never SQLAlchemy or MLflow).

Checks, each reported by the file or entry that fails:

1. zip safety: no ``..``, absolute or drive paths, symlinks, duplicate names or absurd sizes;
2. the manifest's detached signature (DSSE pre-authentication encoding) against the trusted keys only;
3. every listed file's SHA-256 (and SM3, in a pack of an SM3 registry) and size; no file missing, none extra;
4. the policy pack file against the digest the manifest records;
5. every approval / rejection / attestation / waiver signature against the signer's key in the pack;
6. the audit extract: each event's canonical bytes hash to its leaf, each inclusion proof leads to the
   manifest's root, and the full leaf list reproduces that root;
7. with a checkpoint: its signature (trusted key) and that the pack's log is consistent with it.

Signatures are checked in the suite each one records (Ed25519, or SM2 with SM3 — which needs tongsuopy);
the audit tree in the hash the manifest records (SHA-256, or SM3).

This module is also the core of the standalone verifier shipped inside every pack
(``modelreg.evidence.standalone``): standard library and ``cryptography`` only, and names — never modules —
imported from the other modelreg sources of that file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelreg.audit.checkpoint import Checkpoint, verify_checkpoint_signature
from modelreg.audit.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion
from modelreg.errors import BadInput
from modelreg.evidence.crosscheck import crosscheck
from modelreg.suites import TREE_HASHES, Signature, key_id_of, load_public_key, sm3_digest, suite_verify

FORMAT = "modelreg.evidence-pack/v1"
PAYLOAD_TYPE = "application/vnd.modelreg.evidence-manifest.v1+json"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
LEAVES = "audit/leaves.bin"
EVENTS = "audit/events.jsonl"
MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 4 << 30  # uncompressed; a real pack is megabytes
MAX_RATIO = 1000  # uncompressed / compressed per member: beyond this it is a zip bomb, not evidence

MEDIA_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".csv": "text/csv",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pem": "application/x-pem-file",
    ".txt": "text/plain",
    ".bin": "application/octet-stream",
    ".py": "text/x-python",
}


def media_type(path: str) -> str:
    return MEDIA_TYPES.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the signature binds the payload type as well as the bytes."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str]
    path: str = ""
    checks: list[str] = field(default_factory=list)  # what was verified, in order
    manifest_key_id: str | None = None
    signer_key_ids: dict[str, str] = field(default_factory=dict)  # signed record file -> key id used
    model: str | None = None
    version: str | None = None
    files: int = 0
    audit_events: int = 0
    tree_size: int | None = None
    root_hash: str | None = None
    checkpoint: dict | None = None
    tree_hash: str = "sha256"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "path": self.path,
            "problems": list(self.problems),
            "checks": list(self.checks),
            "manifest_key_id": self.manifest_key_id,
            "signer_key_ids": dict(self.signer_key_ids),
            "model": self.model,
            "version": self.version,
            "files": self.files,
            "audit_events": self.audit_events,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint,
            "tree_hash": self.tree_hash,
        }

    def text(self) -> str:
        """The human-readable verdict, the same from ``modelreg evidence verify`` and the standalone file."""
        head = f"{'OK' if self.ok else 'FAILED'}: {self.path} ({self.model} {self.version})"
        lines = [head] + [f"  ✓ {c}" for c in self.checks] + [f"  ✗ {p}" for p in self.problems]
        return "\n".join(lines)

    def json_text(self) -> str:
        return json.dumps(self.to_dict(), default=str, ensure_ascii=False, indent=2, sort_keys=True)


# -- zip safety -----------------------------------------------------------------------------------------


def unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be read or extracted, or None."""
    name = info.filename
    if not name or "\x00" in name:
        return f"member {name!r} has an empty or NUL-containing name"
    if "\\" in name:
        return f"member {name!r} uses backslashes (a Windows path)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"member {name!r} is an absolute path"
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        return f"member {name!r} climbs out of the pack with '..'"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return f"member {name!r} is a symbolic link"
    if info.is_dir():
        return f"member {name!r} is a directory entry (packs hold files only)"
    if info.file_size > MAX_TOTAL_BYTES:
        return f"member {name!r} claims {info.file_size} bytes uncompressed"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > (1 << 20):
        return f"member {name!r} expands {info.file_size // info.compress_size}× (zip bomb)"
    return None


def open_pack(path: str | Path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"evidence pack not found: {path}")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BadInput(
            f"{path} is not a zip file (an evidence pack is a .zip made by `modelreg evidence pack`)"
        ) from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def safety_problems(zf: zipfile.ZipFile) -> list[str]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        return [f"the zip holds {len(infos)} members; a pack holds at most {MAX_MEMBERS}"]
    problems = [p for p in (unsafe_member(i) for i in infos) if p]
    names = [i.filename for i in infos]
    dupes = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    problems += [f"member {n!r} occurs more than once" for n in dupes]
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        problems.append(f"the zip expands to {total} bytes, more than {MAX_TOTAL_BYTES}")
    return problems


def extract_pack(path: str | Path, dest: str | Path) -> Path:
    """Unzip a pack into ``dest`` after the safety checks (for reading index.html offline)."""
    dest = Path(dest)
    with open_pack(path) as zf:
        problems = safety_problems(zf)
        if problems:
            raise BadInput(f"refusing to extract {path}: {problems[0]}")
        root = dest.resolve()
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if root not in target.parents:
                raise BadInput(f"refusing to extract {path}: member {info.filename!r} lands outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    return dest


# -- keys ------------------------------------------------------------------------------------------------


def _load_trusted(keys: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in keys:
        if isinstance(k, str | Path | bytes | bytearray):
            public = load_public_key(bytes(k) if isinstance(k, bytes | bytearray) else k)
        else:
            public = k
        try:
            kid = key_id_of(public)
        except BadInput:
            raise BadInput(
                f"--trusted-key must be an Ed25519 or SM2 public key. Got {type(k).__name__} instead."
            ) from None
        out[kid] = public
    return out


def _public_from_pem(data: bytes) -> Any | None:
    try:
        return load_public_key(data)
    except BadInput:
        return None


# -- the verification --------------------------------------------------------------------------------------


class _Reader:
    """Members whose digest matched the manifest; everything later reads only these."""

    def __init__(self) -> None:
        self.good: dict[str, bytes] = {}

    def json(self, name: str) -> Any:
        data = self.good.get(name)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None


def verify_pack(
    path: str | Path,
    *,
    trusted_keys: Iterable[Any] = (),
    checkpoint: str | Path | Checkpoint | None = None,
    trusted_signers: Iterable[Any] | None = None,
) -> VerifyResult:
    """Verify ``path`` offline. Bad arguments (unreadable key, not a zip) raise ``BadInput``; everything the
    pack gets wrong is a problem in the result (``ok`` False)."""
    trusted = _load_trusted(trusted_keys)
    signers = set(_load_trusted(trusted_signers)) if trusted_signers is not None else None
    cp = Checkpoint.load(checkpoint) if isinstance(checkpoint, str | Path) else checkpoint
    result = VerifyResult(ok=False, problems=[], path=str(path))
    with open_pack(path) as zf:
        problems = safety_problems(zf)
        if problems:
            result.problems = [f"refused: {p}" for p in problems]
            return result
        result.checks.append("zip members are plain relative files")
        members = {i.filename: i for i in zf.infolist()}
        _verify(zf, members, trusted, cp, result, signers)
    result.ok = not result.problems
    return result


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, result: VerifyResult) -> bytes | None:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        result.problems.append(f"{info.filename}: cannot be read from the zip ({exc})")
        return None


def _verify(
    zf: zipfile.ZipFile,
    members: dict,
    trusted: dict,
    cp: Checkpoint | None,
    result: VerifyResult,
    signers: set[str] | None = None,
) -> None:
    P = result.problems
    for required in (MANIFEST, SIGNATURE):
        if required not in members:
            P.append(f"{required} is missing: this is not a modelreg evidence pack, or it was stripped")
    if P:
        return
    manifest_bytes = _read(zf, members[MANIFEST], result)
    sig_bytes = _read(zf, members[SIGNATURE], result)
    if manifest_bytes is None or sig_bytes is None:
        return
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        P.append(f"{MANIFEST} is not valid JSON ({exc})")
        return
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), list)
    ):
        P.append(f"{MANIFEST} is not a {FORMAT} manifest (format field or file list missing)")
        return
    model = manifest.get("model") or {}
    result.model, result.version = model.get("name"), model.get("version")

    _check_signature(manifest, manifest_bytes, sig_bytes, members, zf, trusted, result)
    reader = _Reader()
    _check_files(manifest, members, zf, reader, result)
    _check_policy(manifest, reader, result)
    _check_signed_records(manifest, reader, result)
    before = len(result.problems)
    leaves = _check_audit(manifest, reader, result)
    audit_ok = len(result.problems) == before and EVENTS in reader.good
    if cp is not None:
        _check_checkpoint(cp, leaves, trusted, result)
    _check_replay(result.model, result.version, reader, result)
    if audit_ok:  # signed records and evaluations against the proven events (crosscheck.py, stdlib only)
        found = crosscheck(
            reader.good,
            signer_key_ids=result.signer_key_ids,
            trusted_signer_key_ids=signers,
            anchored_size=cp.size if cp is not None else None,
        )
        result.problems += [str(p) for p in found]
        if not found:
            result.checks.append("signed records and evaluations agree with the proven audit events")


REPLAY = "audit/replay.json"


def _check_replay(model: Any, version: Any, reader: _Reader, result: VerifyResult) -> None:
    """The registry's tables for this version, replayed against its audit log when the pack was built
    (``modelreg.audit.replay``): a pack of a registry whose rows the log did not prove does not verify."""
    data = reader.good.get(REPLAY)
    if data is None:
        return  # packs from before replay, and as-of packs, carry none
    try:
        replay = json.loads(data)
    except ValueError as exc:
        result.problems.append(f"{REPLAY} is not valid JSON ({exc})")
        return
    scope = replay.get("scope") or {}
    if scope.get("model") != model or str(scope.get("version")) != str(version):
        result.problems.append(
            f"{REPLAY} is a replay of {scope.get('model')} {scope.get('version')}, not of this pack's version"
        )
        return
    if not replay.get("ok"):
        first = (replay.get("divergences") or [{}])[0]
        at = f" (event #{first.get('seq')})" if first.get("seq") is not None else ""
        result.problems.append(
            f"{REPLAY}: when the pack was built the registry's tables diverged from its audit log at "
            f"{first.get('table')} {first.get('key')}: {first.get('problem')}{at}"
        )
        return
    result.checks.append(
        f"the version's tables agreed with its audit log when packed ({replay.get('events')} events replayed)"
    )


def _check_signature(
    manifest: dict,
    manifest_bytes: bytes,
    sig_bytes: bytes,
    members: dict,
    zf,
    trusted: dict,
    result: VerifyResult,
) -> None:
    P = result.problems
    try:
        envelope = json.loads(sig_bytes)
        sig = Signature.from_dict(envelope.get("signature"))
        payload_type = envelope.get("payload_type")
    except (ValueError, AttributeError, BadInput) as exc:
        P.append(f"{SIGNATURE} is malformed: {exc}")
        return
    result.manifest_key_id = sig.key_id
    if payload_type != PAYLOAD_TYPE:
        P.append(f"{SIGNATURE}: payload_type must be {PAYLOAD_TYPE}. Got {payload_type!r} instead.")
        return
    signed = pae(PAYLOAD_TYPE, manifest_bytes)
    declared = (manifest.get("evidence_key") or {}).get("key_id")
    if declared != sig.key_id:
        P.append(f"{SIGNATURE}: signed by {sig.key_id} but the manifest names the evidence key {declared}")
    if sig.key_id in trusted:
        if suite_verify(trusted[sig.key_id], signed, sig):
            result.checks.append(f"manifest signature valid with trusted key {sig.key_id}")
        else:
            P.append(
                f"{SIGNATURE}: the signature does not verify with trusted key {sig.key_id}: manifest.json or the signature was altered"
            )
        return
    # Not trusted: say whether it would verify with the key the pack carries, so the auditor knows which
    # key to obtain from the registry's operator (never accept the pack's own key as trust).
    own = None
    key_file = (manifest.get("evidence_key") or {}).get("public_key_file")
    if isinstance(key_file, str) and key_file in members:
        own = _public_from_pem(zf.read(members[key_file]))
    trusted_ids = ", ".join(sorted(trusted)) or "none"
    if own is not None and key_id_of(own) == sig.key_id and suite_verify(own, signed, sig):
        P.append(
            f"{SIGNATURE}: signature valid for key {sig.key_id}, which was not given as trusted (trusted: {trusted_ids}); "
            "pass the registry's evidence public key with --trusted-key"
        )
    else:
        P.append(
            f"{SIGNATURE}: signed by key {sig.key_id}, which was not given as trusted (trusted: {trusted_ids}), "
            "and the signature does not verify with the key the pack carries either"
        )


def _check_files(manifest: dict, members: dict, zf, reader: _Reader, result: VerifyResult) -> None:
    P = result.problems
    listed: dict[str, dict] = {}
    for entry in manifest["files"]:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("path"), str)
            or not isinstance(entry.get("sha256"), str)
        ):
            P.append(f"{MANIFEST}: malformed file entry {entry!r}")
            continue
        if entry["path"] in listed:
            P.append(f"{MANIFEST}: {entry['path']} is listed twice")
        listed[entry["path"]] = entry
    for name in (MANIFEST, SIGNATURE):
        if name in listed:
            P.append(f"{MANIFEST}: lists {name}, which cannot cover itself")
    ok = 0
    for name, entry in sorted(listed.items()):
        info = members.get(name)
        if info is None:
            P.append(f"{name}: listed in the manifest but missing from the pack")
            continue
        if info.file_size != entry.get("size"):
            P.append(
                f"{name}: size {info.file_size} differs from the manifest's {entry.get('size')} (modified)"
            )
            continue
        data = _read(zf, info, result)
        if data is None:
            continue
        digest = sha256_hex(data)
        if digest != entry["sha256"]:
            P.append(
                f"{name}: SHA-256 {digest[:16]}… differs from the manifest's {entry['sha256'][:16]}… (modified)"
            )
            continue
        if "sm3" in entry:
            sm3 = sm3_digest(data).hex()
            if sm3 != entry["sm3"]:
                P.append(
                    f"{name}: SM3 {sm3[:16]}… differs from the manifest's {str(entry['sm3'])[:16]}… (modified)"
                )
                continue
        reader.good[name] = data
        ok += 1
    for name in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        P.append(f"{name}: in the pack but not in the manifest (added)")
    result.files = ok
    if ok == len(listed):
        result.checks.append(f"{ok} file digests match the manifest; no file missing or extra")


def _check_policy(manifest: dict, reader: _Reader, result: VerifyResult) -> None:
    pf = manifest.get("policy_file")
    if not pf:
        return
    data = reader.good.get(pf.get("path", ""))
    if data is None:
        return  # already reported as missing or modified
    got = "sha256:" + sha256_hex(data)
    if got != pf.get("digest"):
        result.problems.append(
            f"{pf.get('path')}: policy digest {got} differs from the manifest's {pf.get('digest')}"
        )
    else:
        result.checks.append(f"policy pack content matches digest {got}")


def _check_signed_records(manifest: dict, reader: _Reader, result: VerifyResult) -> None:
    P = result.problems
    model = manifest.get("model") or {}
    for name in sorted(n for n in reader.good if n.startswith("signed/") and n.endswith(".json")):
        rec = reader.json(name)
        if not isinstance(rec, dict):
            P.append(f"{name}: not a JSON object")
            continue
        try:
            payload = base64.b64decode(rec["payload_b64"], validate=True)
            sig = Signature.from_dict(rec["signature"])
        except (KeyError, binascii.Error, ValueError, BadInput) as exc:
            P.append(f"{name}: malformed signed record ({exc})")
            continue
        key_file = rec.get("signer_key_file")
        pem = reader.good.get(key_file) if isinstance(key_file, str) else None
        public = _public_from_pem(pem) if pem else None
        who = rec.get("signer")
        if public is None:
            P.append(f"{name}: the pack holds no public key for signer {who!r} ({key_file})")
            continue
        if not suite_verify(public, payload, sig):
            P.append(f"{name}: signature by {who} does not verify with {key_file} ({key_id_of(public)})")
            continue
        try:
            decoded = json.loads(payload)
        except ValueError:
            P.append(f"{name}: the signed payload is not JSON")
            continue
        if decoded != rec.get("payload"):
            P.append(f"{name}: the readable payload differs from the signed bytes")
            continue
        if decoded.get("model") != model.get("name") or decoded.get("version") != model.get("version"):
            P.append(
                f"{name}: signed for {decoded.get('model')} {decoded.get('version')}, not this pack's model"
            )
            continue
        result.signer_key_ids[name] = sig.key_id
    if result.signer_key_ids:
        used = sorted(set(result.signer_key_ids.values()))
        result.checks.append(
            f"{len(result.signer_key_ids)} signed record(s) verify with signer key(s) {', '.join(used)}"
        )


def _check_audit(manifest: dict, reader: _Reader, result: VerifyResult) -> list[bytes] | None:
    P = result.problems
    audit = manifest.get("audit") or {}
    size, root_hex = audit.get("tree_size"), audit.get("root_hash")
    result.tree_size, result.root_hash = size, root_hex
    tree_hash = audit.get("tree_hash", "sha256")
    if tree_hash not in TREE_HASHES:
        P.append(f"{MANIFEST}: audit tree_hash must be sha256 or sm3. Got {tree_hash!r} instead.")
        return None
    result.tree_hash = tree_hash
    try:
        root = bytes.fromhex(root_hex)
    except (TypeError, ValueError):
        root = b""
    if type(size) is not int or size < 0 or len(root) != 32:
        P.append(f"{MANIFEST}: audit tree_size/root_hash malformed ({size!r}, {root_hex!r})")
        return None
    leaves_data = reader.good.get(LEAVES)
    leaves = None
    if leaves_data is not None:
        if len(leaves_data) != 32 * size:
            P.append(f"{LEAVES}: holds {len(leaves_data) // 32} leaf hashes, the manifest's tree has {size}")
        else:
            leaves = [leaves_data[i : i + 32] for i in range(0, len(leaves_data), 32)]
            if root_from_leaf_hashes(leaves, tree_hash) != root:
                P.append(f"{LEAVES}: the leaf hashes do not reproduce the manifest's root {root_hex[:16]}…")
                leaves = None
            else:
                result.checks.append(f"{size} leaf hashes reproduce the audit root {root_hex[:16]}…")
    events = reader.good.get(EVENTS)
    if events is None:
        return leaves
    model = manifest.get("model") or {}
    n = 0
    bad_before = len(P)
    for lineno, line in enumerate(events.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{EVENTS} line {lineno}"
        try:
            entry = json.loads(line)
            seq = entry["seq"]
            canonical = base64.b64decode(entry["canonical_b64"], validate=True)
            proof = [bytes.fromhex(h) for h in entry["inclusion_proof"]]
            where = f"{EVENTS} event #{seq}"
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            P.append(f"{where}: malformed ({exc})")
            continue
        leaf = leaf_hash(canonical, tree_hash)
        if entry.get("leaf_hash") != leaf.hex():
            P.append(f"{where}: its canonical bytes do not hash to the recorded leaf (edited)")
            continue
        if leaves is not None and (
            not isinstance(seq, int) or not 0 <= seq < len(leaves) or leaves[seq] != leaf
        ):
            P.append(f"{where}: not leaf #{seq} of {LEAVES}")
            continue
        if not verify_inclusion(leaf, seq, size, proof, root, tree_hash):
            P.append(
                f"{where}: the inclusion proof does not lead to the manifest's root (altered proof or event)"
            )
            continue
        try:
            decoded = json.loads(canonical)
        except ValueError:
            P.append(f"{where}: the canonical bytes are not JSON")
            continue
        if entry.get("event") != decoded:
            P.append(f"{where}: the readable event differs from the canonical bytes")
            continue
        if (
            decoded.get("seq") != seq
            or decoded.get("model") != model.get("name")
            or decoded.get("version") != model.get("version")
        ):
            P.append(
                f"{where}: belongs to {decoded.get('model')} {decoded.get('version')} #{decoded.get('seq')}, not this pack's version"
            )
            continue
        n += 1
    result.audit_events = n
    if len(P) == bad_before:
        if n != audit.get("events"):
            P.append(f"{EVENTS}: holds {n} events, the manifest says {audit.get('events')}")
        else:
            result.checks.append(
                f"{n} audit event(s) of this version proven included in the tree of size {size}"
            )
    return leaves


def _check_checkpoint(
    cp: Checkpoint, leaves: list[bytes] | None, trusted: dict, result: VerifyResult
) -> None:
    P = result.problems
    result.checkpoint = cp.to_dict()
    key = trusted.get(cp.key_id)
    if key is None:
        P.append(
            f"checkpoint: signed by key {cp.key_id}, which was not given as trusted (pass the registry's audit public key with --trusted-key)"
        )
    elif not verify_checkpoint_signature(cp, key):
        P.append(f"checkpoint: the signature does not verify with trusted key {cp.key_id}")
    else:
        result.checks.append(f"checkpoint (size {cp.size}) signature valid with trusted key {cp.key_id}")
    if leaves is None:
        P.append("checkpoint: cannot compare, the pack's leaf list did not verify")
        return
    if cp.tree_hash != result.tree_hash:
        P.append(
            f"checkpoint: it is over a {cp.tree_hash} tree but the pack's log uses {result.tree_hash}: "
            "hashes never mix in one log, so it is not a checkpoint of this log"
        )
        return
    if cp.size > len(leaves):
        P.append(
            f"checkpoint: it covers {cp.size} events but the pack's log has {len(leaves)}; a pack only proves "
            "consistency with checkpoints no newer than itself: ask for a pack made after the checkpoint"
        )
        return
    try:
        want = cp.root
    except BadInput as exc:
        P.append(f"checkpoint: {exc.message}")
        return
    got = root_from_leaf_hashes(leaves[: cp.size], cp.tree_hash)
    if got != want:
        P.append(
            f"checkpoint: the pack's first {cp.size} leaves give root {got.hex()[:16]}…, the checkpoint signed "
            f"{cp.root_hash[:16]}…: the log was rewritten after the checkpoint"
        )
    else:
        result.checks.append(f"the pack's log (size {len(leaves)}) extends the checkpoint (size {cp.size})")
