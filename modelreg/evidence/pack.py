"""Build an evidence pack: collect (read-only), lay out the files, sign the manifest, write a deterministic zip.

Two builds of the same state give byte-identical files except ``manifest.json`` (its ``generated_at``) and
``manifest.sig.json``: members are written in sorted order with a fixed timestamp and permissions, JSON with
sorted keys, and no page shows the generation time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelreg import clock, signing
from modelreg.errors import BadInput
from modelreg.evidence import attestation_checks, render
from modelreg.evidence.collect import Collected, collect
from modelreg.evidence.verify import FORMAT, MANIFEST, PAYLOAD_TYPE, SIGNATURE, media_type, pae, sha256_hex
from modelreg.suites import SUITE_LABEL, sm3_digest

TREE_HASH_LABEL = {"sha256": "SHA-256", "sm3": "SM3"}

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _segment(text: str) -> str:
    s = _SAFE.sub("_", str(text)).strip("._") or "_"
    return s[:120]


def safe_relpath(name: str) -> str:
    """An artifact name as a pack path: plain segments only (no '..', no absolute path, no odd bytes)."""
    parts = [_segment(p) for p in str(name).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "_"


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_default) + "\n").encode(
        "utf-8"
    )


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return clock.isoformat(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "value"):
        return o.value
    if isinstance(o, set | frozenset | tuple):
        return sorted(o) if isinstance(o, set | frozenset) else list(o)
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(f"cannot put {type(o).__name__} into the evidence pack")


class Paths:
    version_file = "model/version.json"
    policy_file = "policy/pack.json"
    evidence_key = "keys/evidence.pub.pem"

    @staticmethod
    def evaluation(eid: int) -> str:
        return f"evaluations/{eid}.json"

    @staticmethod
    def result(eid: int, kind: str) -> str:
        return f"monitors/{eid}/{_segment(kind)}.json"

    @staticmethod
    def artifact(eid: int, kind: str, name: str) -> str:
        return f"monitors/{eid}/{_segment(kind)}/{safe_relpath(name)}"

    @staticmethod
    def signed(record_id: int, kind: str) -> str:
        return f"signed/{record_id}-{_segment(kind)}.json"

    @staticmethod
    def signer_key(key_id: str) -> str:
        return f"keys/signers/{_segment(key_id.replace(':', '-'))}.pem"


@dataclass
class PackContext:
    collected: Collected
    evidence_key_id: str
    paths: type[Paths] = Paths
    matrix: dict = field(default_factory=dict)
    reason_codes: dict[int, bytes] = field(default_factory=dict)
    contradictions: list = field(default_factory=list)  # attestation_checks.Contradiction
    institution: dict = field(default_factory=dict)  # name/name_zh/contact for the disclosure

    @staticmethod
    def sha256(data: bytes) -> str:
        return sha256_hex(data)


@dataclass(frozen=True)
class PackSummary:
    path: str
    model: str
    version: str
    stage: str
    files: int
    bytes: int
    manifest_sha256: str
    key_id: str
    tree_size: int
    root_hash: str
    audit_events: int
    evaluations: int
    signed_records: int
    generated_at: str
    as_of: str | None
    coverage: dict
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**self.__dict__, "notes": list(self.notes)}


def build_pack(
    registry: Any,
    name: str,
    version: str,
    out: str | Path,
    *,
    as_of: str | datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> PackSummary:
    """Collect ``name``/``version`` from ``registry`` (needs the evidence.pack permission) and write the
    signed zip to ``out`` atomically. ``progress`` hears a line per phase (the CLI passes one on a TTY)."""
    if getattr(registry, "remote", False):  # MODELREG_URL: built by the service, downloaded here
        return registry.evidence_pack(name, version, out, as_of=as_of)
    say = progress or (lambda _m: None)
    out = Path(out)
    if out.exists() and out.is_dir():
        raise BadInput(f"-o {out} is a folder; give a file name ending in .zip")
    say(f"collecting the records of {name} {version}")
    c = collect(registry, name, version, as_of=as_of)
    key = registry.registry_key(registry.settings.evidence_key_path)
    say(f"rendering pages and proofs: {len(c.evaluations)} evaluation(s), {len(c.events)} audit event(s)")
    files, ctx = layout(c, key)
    generated_at = clock.isoformat(clock.now())
    manifest = make_manifest(c, files, ctx, generated_at)
    manifest_bytes = json_bytes(manifest)
    sig = signing.sign(key, pae(PAYLOAD_TYPE, manifest_bytes))
    envelope = {
        "payload_type": PAYLOAD_TYPE,
        "manifest_sha256": sha256_hex(manifest_bytes),
        "signature": sig.to_dict(),
        "note": f"{SUITE_LABEL[sig.algorithm]} over the DSSE v1 pre-authentication encoding of manifest.json's exact bytes",
    }
    members = dict(files)
    members[MANIFEST] = manifest_bytes
    members[SIGNATURE] = json_bytes(envelope)
    say(f"signing the manifest and writing {len(members)} files to {out}")
    write_zip(out, members)
    return PackSummary(
        path=str(out),
        model=c.version.model,
        version=c.version.version,
        stage=c.version.stage.value,
        files=len(members),
        bytes=out.stat().st_size,
        manifest_sha256=sha256_hex(manifest_bytes),
        key_id=sig.key_id,
        tree_size=c.tree_size,
        root_hash=c.root_hash.hex(),
        audit_events=len(c.events),
        evaluations=len(c.evaluations),
        signed_records=len(c.signed),
        generated_at=generated_at,
        as_of=clock.isoformat(c.as_of) if c.as_of else None,
        coverage=ctx.matrix.get("summary", {}),
        notes=tuple(c.notes),
    )


def layout(c: Collected, evidence_key: Any) -> tuple[dict[str, bytes], PackContext]:
    from modelreg.audit.merkle import MerkleTree

    kid = signing.key_id(evidence_key)
    ctx = PackContext(collected=c, evidence_key_id=kid)
    files: dict[str, bytes] = {}
    v = c.version
    files[Paths.version_file] = json_bytes(
        {
            "version": v.to_dict(),
            "history": [h.to_dict() for h in c.history],
            "datasets": [d.to_dict() for d in c.datasets],
            "gate_requirements_unmet": c.gate_unmet,
        }
    )
    if c.policy is not None:
        files[Paths.policy_file] = c.policy.canonical_bytes()
    for ev in c.evaluations:
        files[Paths.evaluation(ev.id)] = json_bytes(ev.to_dict())
        for kind, result in c.monitor_results.get(ev.id, {}).items():
            files[Paths.result(ev.id, kind)] = json_bytes(result)
    for a in c.artifacts:
        path = Paths.artifact(a.evaluation_id, a.monitor, a.name)
        if path in files:
            raise BadInput(f"two artifacts of evaluation #{a.evaluation_id} map to {path}")
        files[path] = a.data
        if a.monitor == "explainability" and a.name.endswith("reason_codes.csv"):
            ctx.reason_codes[a.evaluation_id] = a.data
    for rec in c.signed:
        pem = c.signer_keys.get(rec.actor)
        key_file = None
        if pem:
            kid_s = signing.key_id(signing.load_public_key(pem.encode()))
            key_file = Paths.signer_key(kid_s)
            files[key_file] = pem.encode()
        files[Paths.signed(rec.id, rec.kind)] = json_bytes(
            {
                "record": {
                    "id": rec.id,
                    "kind": rec.kind,
                    "role": rec.role,
                    "control_id": rec.control_id,
                    "at": clock.isoformat(rec.at),
                    "until": clock.isoformat(rec.until) if rec.until else None,
                },
                "signer": rec.actor,
                "signer_key_file": key_file,
                "payload": rec.payload,
                "payload_b64": base64.b64encode(rec.payload_bytes).decode("ascii"),
                "signature": rec.signature,
                "signature_valid_at_packing": rec.valid_signature,
            }
        )
    files[Paths.evidence_key] = signing.public_key_to_pem(evidence_key)
    # The auditor's verifier travels with the evidence (stdlib + cryptography; tongsuopy for SM2 packs).
    from modelreg.evidence.standalone import PACK_MEMBER, standalone_source

    files[PACK_MEMBER] = standalone_source()

    # Audit extract: exact canonical bytes (base64) with the decoded event beside them for reading.
    tree = MerkleTree.from_leaf_hashes(c.leaves, tree_hash=c.tree_hash) if c.leaves else None
    lines = []
    for e in c.events:
        proof = tree.inclusion_proof(e.seq, c.tree_size) if tree is not None else []
        lines.append(
            json.dumps(
                {
                    "seq": e.seq,
                    "leaf_hash": e.leaf_hash.hex(),
                    "canonical_b64": base64.b64encode(e.canonical).decode("ascii"),
                    "inclusion_proof": [h.hex() for h in proof],
                    "event": json.loads(e.canonical),
                },
                sort_keys=True,
                ensure_ascii=False,
            )
        )
    files["audit/events.jsonl"] = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    files["audit/leaves.bin"] = b"".join(c.leaves)
    files["audit/tree.json"] = json_bytes(
        {
            "tree_size": c.tree_size,
            "root_hash": c.root_hash.hex(),
            "leaves_file": "audit/leaves.bin",
            "leaf_hash": f"{TREE_HASH_LABEL[c.tree_hash]}(0x00 || canonical event bytes), RFC 6962; 32 bytes per leaf, in log order",
            "events_file": "audit/events.jsonl",
        }
    )
    files["provenance.json"] = json_bytes(provenance(c))
    if c.replay is not None:
        # What the registry's tables held for this version against the state its audit log proves, when packed.
        files["audit/replay.json"] = json_bytes(
            {k: v for k, v in c.replay.items() if k not in ("seconds", "events_per_second")}
        )
    ctx.contradictions = attestation_checks.contradictions(ctx)
    files[attestation_checks.FILE] = json_bytes(
        {
            "about": "signed attestations that a file of this pack contradicts (modelreg.evidence.attestation_checks)",
            "rules": sorted(attestation_checks.RULES),
            "contradictions": [x.to_dict() for x in ctx.contradictions],
        }
    )
    if c.operations is not None:
        files["operations.json"] = json_bytes(c.operations)
    ctx.matrix = render.policy_matrix(ctx)
    files["decision_summary.json"] = json_bytes(render.decision_summary(ctx))
    files["policy/matrix.json"] = json_bytes(ctx.matrix)
    card = render.model_card(ctx)
    files["model_card.md"] = card.markdown().encode("utf-8")
    files["model_card.html"] = card.html("模型卡 Model card", f"{v.model} {v.version}").encode("utf-8")
    disc = render.disclosure(ctx)
    files["disclosure.md"] = disc.markdown().encode("utf-8")
    files["disclosure.html"] = disc.html(
        "算法信息披露 Algorithm disclosure", f"{v.model} {v.version}"
    ).encode("utf-8")
    files["index.html"] = render.index_html(ctx, dict(files)).encode("utf-8")
    return files, ctx


def provenance(c: Collected) -> dict:
    v = c.version
    evals = []
    for ev in c.evaluations:
        res = c.monitor_results.get(ev.id, {})
        evals.append(
            {
                "evaluation_id": ev.id,
                "purpose": ev.purpose,
                "digest": ev.digest,
                "created_by": ev.created_by,
                "created_at": clock.isoformat(ev.created_at),
                "policy": {"id": ev.policy_id, "version": ev.policy_version, "digest": ev.policy_digest},
                "model_artifact_digest": ev.model_artifact_digest,
                "data_fingerprints": (ev.data or {}).get("fingerprints"),
                "column_spec": (ev.data or {}).get("spec"),
                "parameters": (ev.data or {}).get("params"),
                "model_loading": (ev.data or {}).get("model_loading"),
                "monitors": {
                    kind: {
                        "monitor_version": r.get("monitor_version"),
                        "contract_version": r.get("contract_version"),
                        "seed": r.get("seed"),
                        "params": r.get("params"),
                        "library_versions": r.get("library_versions"),
                        "fingerprints": r.get("fingerprints"),
                    }
                    for kind, r in sorted(res.items())
                },
            }
        )
    return {
        "model": v.model,
        "version": v.version,
        "mlflow": v.mlflow or {},
        "mlflow_run_id": v.mlflow_run_id,
        "model_uri": v.model_uri,
        "model_artifact_digest": v.artifact_digest,
        "pip_requirements": (v.mlflow or {}).get("pip_requirements"),
        "datasets": [d.to_dict() for d in c.datasets],
        "evaluations": evals,
        "registry": c.registry_info,
    }


def make_manifest(c: Collected, files: dict[str, bytes], ctx: PackContext, generated_at: str) -> dict:
    v = c.version
    policy_file = None
    if Paths.policy_file in files:
        policy_file = {
            "path": Paths.policy_file,
            "digest": "sha256:" + hashlib.sha256(files[Paths.policy_file]).hexdigest(),
        }
    return {
        "format": FORMAT,
        "generated_at": generated_at,
        "as_of": clock.isoformat(c.as_of) if c.as_of else None,
        "model": {
            "name": v.model,
            "version": v.version,
            "stage": v.stage.value,
            "suspended": v.suspended,
            "risk_tier": v.risk_tier,
            "owner": v.owner,
        },
        "registry": c.registry_info,
        "policy": c.policy_ref,
        "policy_file": policy_file,
        "coverage": ctx.matrix.get("summary", {}),
        "audit": {
            "tree_size": c.tree_size,
            "root_hash": c.root_hash.hex(),
            "events": len(c.events),
            "leaves_file": "audit/leaves.bin",
            # Only an SM3 log says so: SHA-256 packs stay byte-for-byte what they were before SM3 existed.
            **({"tree_hash": c.tree_hash} if c.tree_hash != "sha256" else {}),
        },
        "evidence_key": {
            "key_id": ctx.evidence_key_id,
            "algorithm": signing.suite_of_key_id(ctx.evidence_key_id),
            "public_key_file": Paths.evidence_key,
        },
        "files": [
            {
                "path": p,
                "sha256": sha256_hex(d),
                # An SM3 (国密) registry's packs name each file by SM3 as well; SHA-256 packs are unchanged.
                **({"sm3": sm3_digest(d).hex()} if c.tree_hash == "sm3" else {}),
                "size": len(d),
                "media_type": media_type(p),
            }
            for p, d in sorted(files.items())
        ],
    }


def write_zip(out: Path, members: dict[str, bytes]) -> None:
    """Deterministic: sorted names, fixed time and mode, deflate level 9; written to a temp file and
    renamed so a reader never sees half a pack."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = (0o100644 & 0xFFFF) << 16
                zf.writestr(info, members[name], compresslevel=9)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
