"""Re-derive a pack's monitor metrics from the same data and parameters, and report every difference.

The pack holds what is needed besides the data: the evaluation's column spec, each monitor's validated
parameters (seed included) and, for monitoring runs, the validation baseline and reference profile. The
model's scores are either a column of ``--data`` (the spec's score column) or recomputed from ``model``.
Monitors that need the model itself (explainability, robustness) are skipped, with the reason, when no model
is given. Nothing is written anywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelreg.errors import BadInput
from modelreg.evidence.verify import MANIFEST, open_pack, safety_problems, sha256_hex

NEEDS_MODEL = ("explainability", "robustness")


@dataclass
class RecomputeResult:
    ok: bool
    path: str
    evaluation_id: int
    purpose: str
    tolerance: float
    compared: int = 0
    differences: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # role -> {"matches", "digest", "packed"}
    monitors: dict[str, int] = field(default_factory=dict)  # kind -> metrics compared

    @property
    def verdict(self) -> str:
        """``reproduced``, ``different``, or ``not_recomputed`` when nothing could be compared (every
        monitor skipped, with its reason): having compared nothing is not a difference."""
        if self.differences:
            return "different"
        return "reproduced" if self.ok else "not_recomputed"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "path": self.path,
            "evaluation_id": self.evaluation_id,
            "purpose": self.purpose,
            "tolerance": self.tolerance,
            "compared": self.compared,
            "monitors": dict(self.monitors),
            "differences": list(self.differences),
            "skipped": dict(self.skipped),
            "data": dict(self.data),
        }


class _Pack:
    """Members of a pack read through the manifest's digests (a tampered file is refused, not used)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.zf = open_pack(path)
        problems = safety_problems(self.zf)
        if problems:
            raise BadInput(f"refusing {path}: {problems[0]}")
        try:
            self.manifest = json.loads(self.zf.read(MANIFEST))
            self.digests = {f["path"]: f["sha256"] for f in self.manifest["files"]}
        except (KeyError, ValueError, TypeError):
            raise BadInput(
                f"{path} has no readable manifest.json: run `modelreg evidence verify` on it"
            ) from None

    def has(self, name: str) -> bool:
        return name in self.digests

    def read(self, name: str) -> bytes:
        if name not in self.digests:
            raise BadInput(f"{self.path} does not hold {name}")
        data = self.zf.read(name)
        if sha256_hex(data) != self.digests[name]:
            raise BadInput(
                f"{self.path}: {name} does not match its manifest digest: run `modelreg evidence verify`"
            )
        return data

    def json(self, name: str) -> Any:
        return json.loads(self.read(name))

    def evaluations(self) -> list[dict]:
        names = sorted(n for n in self.digests if n.startswith("evaluations/") and n.endswith(".json"))
        return [self.json(n) for n in names]


def _load_frame(data: Any, what: str, encoding: str | None = None):
    import pandas as pd

    from modelreg.datasets import read_table

    if isinstance(data, pd.DataFrame):
        return data
    # The same reader as validate/monitor: a GBK export the validation read with --encoding reads here too.
    frame = read_table(Path(data), encoding=encoding, what=what)
    if frame.empty:
        raise BadInput(f"{what} has no rows")
    return frame


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tolerance


def compare(packed: dict, fresh: dict, tolerance: float, kind: str) -> tuple[int, list[dict]]:
    """(metrics compared, differences) between two MonitorResult dicts."""
    key = lambda m: (m["name"], m.get("feature"), m.get("group"))  # noqa: E731
    old = {key(m): m for m in packed.get("metrics", [])}
    new = {key(m): m for m in fresh.get("metrics", [])}
    diffs = []
    if packed.get("status") != fresh.get("status"):
        diffs.append(
            {
                "monitor": kind,
                "metric": None,
                "packed": packed.get("status"),
                "recomputed": fresh.get("status"),
                "note": f"result status differs ({fresh.get('reason') or ''})",
            }
        )
    for k in sorted(set(old) | set(new), key=lambda t: tuple("" if x is None else str(x) for x in t)):
        name, feature, group = k
        where = {"monitor": kind, "metric": name, "feature": feature, "group": group}
        if k not in new:
            diffs.append(
                {
                    **where,
                    "packed": old[k].get("value"),
                    "recomputed": None,
                    "note": "missing from the recomputation",
                }
            )
            continue
        if k not in old:
            diffs.append(
                {**where, "packed": None, "recomputed": new[k].get("value"), "note": "not in the pack"}
            )
            continue
        a, b = old[k], new[k]
        if a.get("status") != b.get("status"):
            diffs.append(
                {
                    **where,
                    "packed": a.get("status"),
                    "recomputed": b.get("status"),
                    "note": "metric status differs",
                }
            )
        elif not _close(a.get("value"), b.get("value"), tolerance):
            va, vb = a.get("value"), b.get("value")
            diffs.append(
                {
                    **where,
                    "packed": va,
                    "recomputed": vb,
                    "difference": None if va is None or vb is None else vb - va,
                    "note": f"differs by more than {tolerance:g}",
                }
            )
    return len(set(old) & set(new)), diffs


def recompute(
    path: str | Path,
    data: Any,
    reference: Any = None,
    tolerance: float = 1e-9,
    *,
    evaluation: int | None = None,
    model: Any = None,
    encoding: str | None = None,
) -> RecomputeResult:
    """Re-run the monitors of one evaluation in the pack (default: the latest validation) on ``data``."""
    if (
        not isinstance(tolerance, int | float)
        or isinstance(tolerance, bool)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise BadInput(f"--tolerance must be a non-negative number. Got {tolerance!r} instead.")
    from modelreg.governance.runner import SCORE_COLUMN
    from monitors.base import (
        ColumnSpec,
        ModelError,
        MonitorResult,
        ParameterError,
        ReferenceProfile,
        check_model,
        fingerprint,
        get_monitor,
        predict_scores,
    )

    pack = _Pack(path)
    evs = pack.evaluations()
    if not evs:
        raise BadInput(f"{path} holds no evaluation to recompute")
    if evaluation is not None:
        chosen = [e for e in evs if e.get("id") == evaluation]
        if not chosen:
            raise BadInput(
                f"--evaluation must be one of {sorted(e['id'] for e in evs)}. Got {evaluation} instead."
            )
        ev = chosen[0]
    else:
        order = {"validation": 0, "monitoring": 1, "precheck": 2}
        with_results = [
            e for e in evs if any(n.startswith(f"monitors/{e['id']}/") for n in pack.digests)
        ] or evs
        ev = sorted(with_results, key=lambda e: (order.get(e["purpose"], 3), -e["id"]))[0]
    eid = ev["id"]
    result = RecomputeResult(
        ok=False, path=str(path), evaluation_id=eid, purpose=ev["purpose"], tolerance=float(tolerance)
    )
    spec_dict = (ev.get("data") or {}).get("spec")
    if not spec_dict:
        raise BadInput(f"evaluation #{eid} in {path} has no column spec to recompute with")
    spec = ColumnSpec.from_dict(spec_dict)

    current = _load_frame(data, "--data", encoding)
    ref = _load_frame(reference, "--reference", encoding) if reference is not None else None
    prints = {fp["role"]: fp for fp in (ev.get("data") or {}).get("fingerprints") or []}
    for role, frame in (("current", current), ("reference", ref)):
        if frame is None:
            continue
        # The registry fingerprints the data as given, before it adds the model's score column.
        got = fingerprint(frame.drop(columns=[SCORE_COLUMN], errors="ignore"), role).digest
        want = (prints.get(role) or {}).get("digest")
        result.data[role] = {"digest": got, "packed": want, "matches": got == want}
        if got != want:
            what = "--data" if role == "current" else "--reference"
            result.differences.append(
                {
                    "monitor": None,
                    "metric": None,
                    "packed": want,
                    "recomputed": got,
                    "note": f"{what} is not the data the evaluation used (fingerprint differs)",
                }
            )

    fitted = None
    refused: str | None = None
    if isinstance(model, str | Path):
        # The loader the registry's own runs use: an auditor never runs a format that can execute code.
        from modelreg.integrations.mlflow.models import load_model as load_uri
        from modelreg.integrations.mlflow.worker import ModelRefused

        try:
            fitted, _note = load_uri(str(model))
        except ModelRefused as exc:
            refused = exc.message
    elif model is not None:
        try:
            fitted = check_model(model)
        except ModelError as exc:
            raise BadInput(str(exc)) from None
    missing_score = spec.score is not None and spec.score not in current.columns
    if missing_score and fitted is not None:
        try:
            current = current.copy()
            current[spec.score] = predict_scores(fitted, current[spec.feature_names])
            if ref is not None and all(f in ref.columns for f in spec.feature_names):
                ref = ref.copy()
                ref[spec.score] = predict_scores(fitted, ref[spec.feature_names])
        except (ModelError, KeyError) as exc:
            raise BadInput(f"the model could not score --data: {exc}") from None
        missing_score = False

    baseline: dict[str, Any] = {}
    profile = None
    profiles: dict[str, Any] = {}  # other kinds' reference profiles (data_quality ranges)
    if ev["purpose"] == "monitoring":
        earlier = [e for e in evs if e["purpose"] == "validation" and e["id"] < eid]
        if earlier:
            base = max(earlier, key=lambda e: e["id"])
            for kind in ("performance", "explainability"):
                name = f"monitors/{base['id']}/{kind}.json"
                if pack.has(name):
                    baseline[kind] = MonitorResult.from_dict(pack.json(name))
            prof_name = f"monitors/{base['id']}/drift/reference_profile.json"
            if pack.has(prof_name):
                profile = ReferenceProfile.from_json(pack.read(prof_name).decode("utf-8"))
            dq_name = f"monitors/{base['id']}/data_quality/reference_profile.json"
            if pack.has(dq_name):
                profiles["data_quality"] = ReferenceProfile.from_json(pack.read(dq_name).decode("utf-8"))

    kinds = sorted(
        n.split("/")[2][: -len(".json")]
        for n in pack.digests
        if n.startswith(f"monitors/{eid}/") and n.count("/") == 2 and n.endswith(".json")
    )
    if not kinds:
        raise BadInput(f"evaluation #{eid} in {path} has no monitor results to recompute")
    # Read (and digest-check) every packed result before spending time computing anything.
    packed_results = {kind: pack.json(f"monitors/{eid}/{kind}.json") for kind in kinds}
    for kind in kinds:
        packed = packed_results[kind]
        if packed.get("status") == "invalid_input" and not packed.get("metrics"):
            result.skipped[kind] = f"the packed result computed nothing ({packed.get('reason')})"
            continue
        if refused is not None and (kind in NEEDS_MODEL or missing_score):
            result.skipped[kind] = f"model refused: {refused}"
            continue
        if kind in NEEDS_MODEL and fitted is None:
            result.skipped[kind] = f"the {kind} monitor runs the model: pass --model"
            continue
        if missing_score:
            result.skipped[kind] = (
                f"--data lacks the score column {spec.score!r}: add the model's scores or pass --model"
            )
            continue
        # The same call the registry's runner made: reference to every monitor when given.
        monitor = get_monitor(kind)
        # A result may record facts beside its inputs (e.g. performance's baseline_digest): pass inputs only.
        accepted = {p.name for p in monitor.params}
        params = {k: v for k, v in (packed.get("params") or {}).items() if k in accepted}
        kwargs: dict[str, Any] = {"current": current, "params": params, "artifacts_dir": None}
        if ref is not None:
            kwargs["reference"] = ref
        elif kind == "drift":
            if profile is None:
                result.skipped[kind] = (
                    "drift needs --reference (the pack's evaluation compared with reference data)"
                )
                continue
            kwargs["profile"] = profile
        elif kind in profiles:
            kwargs["profile"] = profiles[kind]
        if kind in NEEDS_MODEL:
            kwargs["model"] = fitted
        if kind == "performance" and "performance" in baseline:
            kwargs["baseline"] = baseline["performance"]
        if kind == "explainability" and "explainability" in baseline and ref is None:
            kwargs["reference"] = baseline["explainability"]
        try:
            fresh = monitor.run(spec, **kwargs).to_dict()
        except ParameterError as exc:
            result.skipped[kind] = f"the packed parameters are not accepted by this {kind} monitor: {exc}"
            continue
        n, diffs = compare(packed, fresh, float(tolerance), kind)
        result.compared += n
        result.monitors[kind] = n
        result.differences.extend(diffs)
    result.ok = not result.differences and result.compared > 0
    return result
