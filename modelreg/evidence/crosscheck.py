"""Cross-check an evidence pack's signed records and evaluation files against the audit events it proves.

The manifest signature only says "the registry's evidence key vouches for these files". Whoever holds that key
(an insider, or a compromised registry host) can rewrite any file and re-sign the manifest: forge an
approver's waiver with a fresh key and ship that key in the pack, drop a waiver, or flip an evaluation from
fail to pass. What such a person cannot rewrite are the audit events below a checkpoint someone else signed:
every ``approval.signed``, ``attestation.signed`` and ``waiver.granted`` event (and ``finding.closed``, for a
finding closed by a signed acceptance) names its record id and the key id that signed it, and every
``evaluation.recorded`` event names the evaluation's digest, status, status counts and failing controls. This module compares the files with those events, both ways.

Standard library only, no modelreg import: the standalone verifier carries this file as it is. The caller
passes members whose digests already matched the manifest, and the key id that verified each signed
record's signature; it runs this only when the audit extract verified (each event's bytes hash to its leaf
and its inclusion proof reaches the root).

Not covered, by construction: an event and every file that refers to it removed together. The extract holds
only this version's events, and a leaf hash does not say which version it belongs to; ``modelreg audit
verify`` on the registry against the same checkpoint covers that case.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENTS_FILE = "audit/events.jsonl"
SIGNED_EVENTS = {
    "approval": "approval.signed",
    "rejection": "approval.signed",
    "attestation": "attestation.signed",
    "waiver": "waiver.granted",
    "acceptance": "finding.closed",  # a tracked finding closed by a signed acceptance
}
RAW_FAILING = ("fail", "error")

# Stable problem codes (tests and the standalone verifier's users match on these).
NO_EVENT = "XC-RECORD-NO-EVENT"
EVENT_KIND = "XC-RECORD-EVENT-KIND"
KEY_MISMATCH = "XC-RECORD-KEY"
SIGNER_MISMATCH = "XC-RECORD-SIGNER"
FIELD_MISMATCH = "XC-RECORD-FIELD"
RECORD_MISSING = "XC-RECORD-MISSING"
UNTRUSTED_SIGNER = "XC-SIGNER-UNTRUSTED"
EVAL_NO_EVENT = "XC-EVAL-NO-EVENT"
EVAL_MISMATCH = "XC-EVAL-MISMATCH"
EVAL_MISSING = "XC-EVAL-MISSING"
WAIVER_UNBACKED = "XC-WAIVER-UNBACKED"
APPROVAL_EVAL = "XC-APPROVAL-EVALUATION"
NOT_ANCHORED = "XC-NOT-ANCHORED"
MALFORMED = "XC-MALFORMED"


@dataclass(frozen=True)
class Problem:
    code: str
    where: str  # the pack file (or event) the problem is about
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.code}]"


def _json(files: Mapping[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def proven_events(files: Mapping[str, bytes]) -> list[dict]:
    """The decoded canonical events of the extract (their inclusion is the caller's check, not this one's)."""
    out: list[dict] = []
    data = files.get(EVENTS_FILE) or b""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            event = json.loads(base64.b64decode(entry["canonical_b64"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error):
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def crosscheck(
    files: Mapping[str, bytes],
    *,
    signer_key_ids: Mapping[str, str],
    trusted_signer_key_ids: set[str] | frozenset[str] | None = None,
    anchored_size: int | None = None,
) -> list[Problem]:
    """Problems found comparing the pack's signed records and evaluations with its proven audit events.

    ``files``: members whose digest matched the manifest. ``signer_key_ids``: signed record file -> the key id
    whose signature verified. ``trusted_signer_key_ids``: when given, every signed record must be signed by
    one of these (the approvers' keys the auditor obtained independently). ``anchored_size``: the size of a
    verified checkpoint; events at or beyond it are not anchored by anything the key holder cannot rewrite.
    """
    events = proven_events(files)
    problems: list[Problem] = []
    by_record: dict[int, dict] = {}
    by_evaluation: dict[int, dict] = {}
    for ev in events:
        payload = ev.get("payload") if isinstance(ev.get("payload"), dict) else {}
        name = ev.get("event")
        if name in SIGNED_EVENTS.values() and isinstance(payload.get("record_id"), int):
            by_record[payload["record_id"]] = ev
        elif name == "evaluation.recorded" and isinstance(payload.get("evaluation_id"), int):
            by_evaluation[payload["evaluation_id"]] = ev

    def anchored(ev: dict, where: str) -> None:
        if anchored_size is not None and isinstance(ev.get("seq"), int) and ev["seq"] >= anchored_size:
            problems.append(
                Problem(
                    NOT_ANCHORED,
                    where,
                    f"its audit event #{ev['seq']} is newer than the checkpoint (size {anchored_size}), which "
                    "therefore does not anchor it: verify with a checkpoint taken after it",
                )
            )

    # -- signed records --------------------------------------------------------------------------------
    records: dict[int, tuple[str, dict]] = {}
    for name in sorted(n for n in files if n.startswith("signed/") and n.endswith(".json")):
        rec = _json(files, name)
        meta = rec.get("record") if isinstance(rec, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("id"), int):
            problems.append(Problem(MALFORMED, name, "not a signed record (no record id)"))
            continue
        records[meta["id"]] = (name, rec)
        key_id = signer_key_ids.get(name)
        if key_id is None:
            continue  # its signature did not verify: reported by the signature check
        if trusted_signer_key_ids is not None and key_id not in trusted_signer_key_ids:
            problems.append(
                Problem(
                    UNTRUSTED_SIGNER,
                    name,
                    f"signed by {rec.get('signer')!r} with key {key_id}, which is not among the trusted "
                    "signer keys (--trusted-signer)",
                )
            )
        ev = by_record.get(meta["id"])
        if ev is None:
            problems.append(
                Problem(
                    NO_EVENT,
                    name,
                    f"no audit event records signed record #{meta['id']}: the record was not made through the "
                    "registry (forged or inserted)",
                )
            )
            continue
        want = SIGNED_EVENTS.get(str(meta.get("kind")))
        if ev.get("event") != want:
            problems.append(
                Problem(
                    EVENT_KIND,
                    name,
                    f"a {meta.get('kind')} record, but audit event #{ev.get('seq')} recorded #{meta['id']} "
                    f"as {ev.get('event')}",
                )
            )
            continue
        payload = ev["payload"]
        if payload.get("key_id") != key_id:
            problems.append(
                Problem(
                    KEY_MISMATCH,
                    name,
                    f"signed with key {key_id}, but audit event #{ev.get('seq')} recorded key "
                    f"{payload.get('key_id')}: the record was re-signed with another key",
                )
            )
        if ev.get("actor") != rec.get("signer"):
            problems.append(
                Problem(
                    SIGNER_MISMATCH,
                    name,
                    f"signer {rec.get('signer')!r}, but audit event #{ev.get('seq')} was written by "
                    f"{ev.get('actor')!r}",
                )
            )
        for field, signed_value, logged in _record_fields(meta, rec.get("payload") or {}, payload):
            if signed_value != logged:
                problems.append(
                    Problem(
                        FIELD_MISMATCH,
                        name,
                        f"{field} is {signed_value!r} in the record, {logged!r} in audit event #{ev.get('seq')}",
                    )
                )
        anchored(ev, name)
    for rid, ev in sorted(by_record.items()):
        if rid not in records:
            kind = str(ev.get("event", "")).split(".")[0]
            problems.append(
                Problem(
                    RECORD_MISSING,
                    f"{EVENTS_FILE} event #{ev.get('seq')}",
                    f"{ev.get('event')} by {ev.get('actor')} recorded signed record #{rid}, which is not in "
                    f"the pack: the {kind} was removed",
                )
            )

    # -- evaluations -----------------------------------------------------------------------------------
    evaluation_files: dict[int, dict] = {}
    for name in sorted(n for n in files if n.startswith("evaluations/") and n.endswith(".json")):
        doc = _json(files, name)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), int):
            problems.append(Problem(MALFORMED, name, "not an evaluation record (no id)"))
            continue
        evaluation_files[doc["id"]] = doc
        ev = by_evaluation.get(doc["id"])
        if ev is None:
            problems.append(
                Problem(
                    EVAL_NO_EVENT,
                    name,
                    f"no evaluation.recorded event for evaluation #{doc['id']}: not stored through the registry",
                )
            )
            continue
        for field, in_file, logged in _evaluation_fields(doc, ev["payload"]):
            if in_file != logged:
                problems.append(
                    Problem(
                        EVAL_MISMATCH,
                        name,
                        f"{field} is {in_file!r} in the file, {logged!r} in audit event #{ev.get('seq')}",
                    )
                )
        problems += _waivers_backed(name, doc, records)
        anchored(ev, name)
    for eid, ev in sorted(by_evaluation.items()):
        if eid not in evaluation_files:
            problems.append(
                Problem(
                    EVAL_MISSING,
                    f"{EVENTS_FILE} event #{ev.get('seq')}",
                    f"evaluation #{eid} ({ev['payload'].get('purpose')}, {ev['payload'].get('status')}) was "
                    "recorded but its file is not in the pack",
                )
            )

    # -- approvals bind an evaluation: the one they name must be the one the log recorded ---------------
    for _rid, (name, rec) in sorted(records.items()):
        payload = rec.get("payload") or {}
        eid = payload.get("evaluation_id")
        if payload.get("kind") not in ("approval", "rejection") or not isinstance(eid, int):
            continue
        ev = by_evaluation.get(eid)
        if ev is not None and ev["payload"].get("digest") != payload.get("evaluation_digest"):
            problems.append(
                Problem(
                    APPROVAL_EVAL,
                    name,
                    f"approves evaluation #{eid} with digest {payload.get('evaluation_digest')}, but the log "
                    f"recorded digest {ev['payload'].get('digest')} for it",
                )
            )
    return problems


def _record_fields(meta: dict, signed: dict, logged: dict) -> list[tuple[str, Any, Any]]:
    """(field, value in the signed record, value in the audit event) pairs the registry writes to both."""
    kind = meta.get("kind")
    out: list[tuple[str, Any, Any]] = []
    if kind in ("approval", "rejection"):
        out += [
            ("decision", signed.get("decision"), logged.get("decision")),
            ("role", signed.get("role"), logged.get("role")),
            ("evaluation_digest", signed.get("evaluation_digest"), logged.get("evaluation_digest")),
            ("comment", signed.get("comment"), logged.get("comment")),
        ]
    elif kind == "attestation":
        out.append(("control_id", signed.get("control_id"), logged.get("control_id")))
    elif kind == "acceptance":
        out += [
            ("control_id", signed.get("control_id"), logged.get("control_id")),
            ("finding_id", signed.get("finding_id"), logged.get("finding_id")),
            ("reason", signed.get("reason"), logged.get("reason")),
        ]
    elif kind == "waiver":
        gate = logged.get("gate")
        logged_gates = ["deploy", "monitor"] if gate == "all" else [gate]
        out += [
            ("control_id", signed.get("control_id"), logged.get("control_id")),
            ("until", signed.get("until"), logged.get("until")),
            ("reason", signed.get("reason"), logged.get("reason")),
            ("gates", signed.get("gates"), logged_gates),
            ("until (record)", meta.get("until"), logged.get("until")),
        ]
    out.append(("control_id (record)", meta.get("control_id"), signed.get("control_id")))
    return out


def _evaluation_fields(doc: dict, logged: dict) -> list[tuple[str, Any, Any]]:
    findings = [f for f in doc.get("findings") or [] if isinstance(f, dict)]
    raw_counts: dict[str, int] = {}
    for f in findings:
        raw = f.get("raw_status") or f.get("status")
        raw_counts[raw] = raw_counts.get(raw, 0) + 1
    failing = sorted(
        str(f.get("control_id")) for f in findings if (f.get("raw_status") or f.get("status")) in RAW_FAILING
    )
    policy = doc.get("policy") or {}
    return [
        ("digest", doc.get("digest"), logged.get("digest")),
        ("status", doc.get("status"), logged.get("status")),
        ("purpose", doc.get("purpose"), logged.get("purpose")),
        ("gate", doc.get("gate"), logged.get("gate")),
        ("policy digest", policy.get("digest"), logged.get("policy_digest")),
        (
            "status counts",
            dict(sorted(raw_counts.items())),
            dict(sorted((logged.get("counts") or {}).items())),
        ),
        ("failing controls", failing, sorted(logged.get("failed_controls") or [])),
    ]


def _waivers_backed(name: str, doc: dict, records: dict[int, tuple[str, dict]]) -> list[Problem]:
    """A finding shown as waived must point at a waiver record of the pack (same control, signer, expiry)."""
    waivers = [
        (rec.get("payload") or {})
        for _, rec in records.values()
        if (rec.get("record") or {}).get("kind") == "waiver"
    ]
    out = []
    for f in doc.get("findings") or []:
        if not isinstance(f, dict) or f.get("status") != "waived":
            continue
        w = f.get("waiver") or {}
        if not any(
            p.get("control_id") == f.get("control_id")
            and p.get("signer") == w.get("by")
            and p.get("until") == w.get("until")
            for p in waivers
        ):
            out.append(
                Problem(
                    WAIVER_UNBACKED,
                    name,
                    f"{f.get('control_id')} is shown as waived by {w.get('by')!r} until {w.get('until')}, but "
                    "the pack holds no such waiver record",
                )
            )
    return out
