"""The registry service's client: what ``MODELREG_URL`` turns the CLI and ``modelreg.connect()`` into.

``RemoteRegistry`` answers the calls the CLI's commands and ``modelreg.Client`` make on a ``Registry`` (reads,
moves, registration, model card, data, evaluations, signed records, findings, evidence packs, checkpoints,
users and keys) with the same domain objects, read from the service's JSON, so the commands print the same
output. The library functions the CLI calls (``attach_file``, ``run_evaluation``, ``attest``, ``waive``,
``approve``, ``latest``, ``signed``, the finding operations, ``build_pack``, ``register_from_mlflow``) hand a
``RemoteRegistry`` to the method of the same purpose here, and the service runs that same function.
Data files are uploaded (``POST /api/v1/uploads``, streamed from disk: the file is read once for its signed
Content-Digest, then sent in chunks) and named by their id; a ``server:<root>/<path>`` value names a file in
one of the service's data roots and is passed as it is, never uploaded; the service never reads a path of
the client's. Every request is signed (RFC 9421,
``modelreg.service.httpsig``) with the user's private key found where the CLI finds it today
(``$MODELREG_SIGNING_KEY``, else ``<home>/keys/<user>.key``); ``--as`` / ``MODELREG_USER`` only choose
which key file that is; the service decides who the key belongs to. Approvals are signed here, on the
signer's machine: the service sends the payload it would record and verifies the signature.

``report validation`` reads the report's data from the service and writes the document here (the template
and the evidence pack are the caller's files; the pack is hashed here, never uploaded). ``attest --batch``
reads the file here, the service drafts every entry, each is signed here and one request records all or
none. ``audit verify --checkpoint`` is judged here: the service sends the consistency proof from the
checkpoint's size to its current signed checkpoint, and the client checks it with the auditor's key.

Only httpx and the standard library at import: the light CLI commands stay light. Commands with no
remote form (``init``, which needs the database's credentials, ``demo``, ``evidence verify/recompute``) say so
in one line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.domain.entities import AuditEvent, Dataset, ModelVersion, TransitionRecord, VerifyReport
from modelreg.domain.stages import Stage
from modelreg.errors import BadInput, DatabaseUnavailable, GateRefused, ModelregError
from modelreg.service import httpsig
from modelreg.settings import Settings

REMOTE_COMMANDS = (
    "list",
    "show",
    "register",
    "card",
    "attach-data",
    "precheck",
    "validate",
    "monitor",
    "findings",
    "submit",
    "send-back",
    "deploy",
    "suspend",
    "resume",
    "retire",
    "approve",
    "reject",
    "attest (--batch too)",
    "waive",
    "finding list/show/assign/propose/close",
    "evidence pack",
    "audit log",
    "audit verify (--checkpoint too, judged by the client)",
    "audit proof",
    "audit checkpoint",
    "audit rotate-key",
    "user add/roles/list",
    "keys register",
    "outcomes add/report",
    "inventory",
    "due",
    "challenger run",
    "sync (--check and the repair)",
    "report validation",
)
SERVER_PREFIX = "server:"  # server:<root>/<relative path>: a file in one of the service's data roots
MSG_LOCAL_ONLY = (
    "{what} runs only on the registry database (embedded mode), not through the service at {url}; "
    "over MODELREG_URL these commands work: " + ", ".join(REMOTE_COMMANDS)
)

#: ``init`` stays local on purpose: it creates or upgrades the database, which needs the database's credentials.
MSG_INIT_REMOTE = (
    "init creates or upgrades the registry database, so it runs only where the database's credentials are: the "
    "service's operator runs `modelreg init` on the service's host (MODELREG_DATABASE_URL), never through the "
    "service at {url}; unset MODELREG_URL to initialise a registry of your own"
)

MSG_SERVICE_ANSWER = (
    "the service at {url} sent a current checkpoint that is not signed by its audit key or does not state the "
    "log it verified: its answer cannot be trusted"
)


class RemoteError(ModelregError):
    """An error the service reported with a code this client has no class for; same code, same message."""

    def __init__(self, code: str, message: str, status: int, details: dict | None = None) -> None:
        super().__init__(message, details=details)
        self.code = code
        self.exit_status = 1 if status in (401, 403, 409, 412, 422, 428, 429) else 2


def _dt(value: str | None):
    return clock.parse(value) if value else None


def version_from(d: dict) -> ModelVersion:
    return ModelVersion(
        **{
            **d,
            "stage": Stage(d["stage"]),
            "created_at": _dt(d["created_at"]),
            "updated_at": _dt(d["updated_at"]),
        }
    )


def event_from(d: dict) -> AuditEvent:
    return AuditEvent(**{**d, "at": _dt(d["at"])})


class RemoteResult:
    """A move's result (``TransitionResult``'s shape) read from the service."""

    def __init__(self, d: dict) -> None:
        self.version = version_from(d["version"])
        self.event = event_from(d["event"])
        self.replaced = version_from(d["replaced"]) if d.get("replaced") else None
        self._d = d

    def to_dict(self) -> dict:
        return self._d


class RemoteChallengerRun:
    """A champion/challenger run (``ChallengerRun``'s shape) read from the service."""

    def __init__(self, d: dict) -> None:
        self.champion = evaluation_from(d["champion"])
        self.challenger = evaluation_from(d["challenger"])
        self._d = d

    def comparison(self) -> list[dict]:
        return self._d["comparison"]

    def to_dict(self) -> dict:
        return self._d


class RemoteRegistry:
    remote = True

    def __init__(self, settings: Settings, *, actor: str | None = None, transport: Any = None) -> None:
        import httpx

        if not settings.url:
            raise BadInput("MODELREG_URL is not set")
        self.settings = settings
        self.actor = actor or settings.user
        self.base = settings.url.rstrip("/")
        self._http = httpx.Client(timeout=60.0, transport=transport)
        self._key = None
        self._key_id: str | None = None
        self._shown: dict[tuple[str, str], dict] = {}
        self._sync: dict | None = None

    # -- plumbing -----------------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise BadInput(MSG_LOCAL_ONLY.format(what=f"this command ({name})", url=self.base))

    def close(self) -> None:
        self._http.close()

    def _signing_key(self):
        if self._key is None:
            from modelreg import signing

            path = self.settings.signing_key_for(self.actor)
            if not Path(path).exists():
                raise BadInput(
                    f"no private key for {self.actor} at {path}: the service at {self.base} knows you by your "
                    "registered key; create one with `modelreg keys generate` and have it registered"
                )
            self._key = signing.load_private_key(Path(path))
            self._key_id = signing.key_id(self._key)
        return self._key

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        content: bytes | None = None,
        file: Path | None = None,
    ):
        """One signed request. ``file``: the body is that file, streamed from disk in chunks; its
        Content-Digest (which the signature covers) is computed first by reading it once."""
        import json as jsonlib

        import httpx

        key = self._signing_key()
        url = httpx.URL(self.base + path, params={k: v for k, v in (params or {}).items() if v is not None})
        body: Any
        digest = None
        if file is not None:
            raw = b""
            digest = httpsig.file_digest(file)
            size = file.stat().st_size
            body = _file_chunks(file, size)
        elif content is not None:
            raw = body = content
        else:
            raw = body = b"" if json is None else jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        signed = httpsig.sign_request(
            key, self._key_id or "", method, str(url), raw, created=int(time.time()), digest=digest
        )
        all_headers = {**signed, **(headers or {})}
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        elif content is not None or file is not None:
            all_headers["Content-Type"] = "application/octet-stream"
        if file is not None:
            all_headers["Content-Length"] = str(size)  # not chunked: the service's limit is checked up front
        try:
            resp = self._http.request(method, url, content=body, headers=all_headers)
        except httpx.HTTPError as exc:
            raise DatabaseUnavailable(f"cannot reach the registry service at {self.base}: {exc}") from None
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    def _error(self, resp) -> ModelregError:
        from modelreg.service.errors import error_class

        try:
            err = resp.json()["error"]
            code, message, details = err["code"], err["message"], err.get("details") or {}
        except Exception:
            return RemoteError(
                "service_error", f"the service answered HTTP {resp.status_code}", resp.status_code
            )
        if code == GateRefused.code:
            return GateRefused(message, unmet=details.get("unmet"))
        cls = error_class(code)
        if cls is ModelregError:
            return RemoteError(code, message, resp.status_code, details)
        exc = cls(message, details=details) if cls is not GateRefused else cls(message)
        return exc

    def _get(self, path: str, **params):
        return self.request("GET", path, params=params).json()

    def _vpath(self, name: str, version: str) -> str:
        from urllib.parse import quote

        return f"/api/v1/models/{quote(name, safe='')}/versions/{quote(str(version), safe='')}"

    # -- reads ----------------------------------------------------------------------------------------------
    def whoami(self) -> dict:
        return self._get("/api/v1/whoami")

    def list(self, stage: str | None = None, model: str | None = None) -> list[ModelVersion]:
        return [version_from(d) for d in self._get("/api/v1/versions", stage=stage, model=model)]

    def _show(self, name: str, version: str, *, fresh: bool = False) -> tuple[dict, str]:
        key = (name, str(version))
        if fresh or key not in self._shown:
            resp = self.request("GET", self._vpath(name, version))
            self._shown[key] = {"payload": resp.json(), "etag": resp.headers.get("etag", "")}
        entry = self._shown[key]
        return entry["payload"], entry["etag"]

    def show(self, name: str, version: str) -> ModelVersion:
        return version_from(self._show(name, version, fresh=True)[0]["version"])

    def history(self, name: str, version: str) -> list[TransitionRecord]:
        return [
            TransitionRecord(**{**h, "at": _dt(h["at"])}) for h in self._show(name, version)[0]["history"]
        ]

    def datasets(self, name: str, version: str) -> list[Dataset]:
        return [Dataset(**{**d, "at": _dt(d["at"])}) for d in self._show(name, version)[0]["datasets"]]

    def audit_log(
        self, name: str | None = None, version: str | None = None, *, limit: int | None = None
    ) -> list[AuditEvent]:
        return [
            event_from(d) for d in self._get("/api/v1/audit/log", model=name, version=version, limit=limit)
        ]

    def audit_verify(
        self, checkpoint_path=None, *, trusted_key=None, tables: bool = True, progress=None
    ) -> VerifyReport:
        """The log verified by the service; with a checkpoint, judged HERE (``judge_checkpoint``, as locally):
        the checkpoint's signature with ``trusted_key`` (default: the service's audit key, as locally the
        registry's), its size, and the consistency proof from it to the service's current, signed checkpoint."""
        if checkpoint_path is None:
            return VerifyReport(**self._get("/api/v1/audit/verify"))
        return self._verify_checkpoint(checkpoint_path, trusted_key)

    def _verify_checkpoint(self, checkpoint_path, trusted_key) -> VerifyReport:
        import json
        from dataclasses import replace

        from modelreg import signing
        from modelreg.audit.checkpoint import Checkpoint, verify_checkpoint_signature
        from modelreg.audit.consistency import judge_checkpoint
        from modelreg.registry.audit import MSG_MIXED_CHECKPOINT

        checkpoint = Checkpoint.load(checkpoint_path)
        d = self._get("/api/v1/audit/consistency", size=checkpoint.size)
        full = VerifyReport(**d["report"])
        if not full.ok and full.replay is None:
            return full  # the log failed its own verification: the checkpoint is not looked at (as locally)
        verified = replace(full, ok=True, first_bad_seq=None, problem=None, replay=None)
        public = signing.load_public_key(Path(trusted_key) if trusted_key else d["public_key_pem"].encode())
        if checkpoint.tree_hash != d["tree_hash"]:
            raise BadInput(MSG_MIXED_CHECKPOINT.format(have=d["tree_hash"], got=checkpoint.tree_hash))
        current = Checkpoint.from_dict(d["current"], source="of the service's current log")
        served = signing.load_public_key(d["public_key_pem"].encode())
        said = (current.size, current.root_hash, current.tree_hash)
        if not verify_checkpoint_signature(current, served) or said != (
            verified.size,
            verified.root_hash,
            d["tree_hash"],
        ):
            return VerifyReport(
                False,
                verified.size,
                verified.root_hash,
                problem=MSG_SERVICE_ANSWER.format(url=self.base),
                checkpoint=json.loads(checkpoint.to_json()),
            )
        proof = [bytes.fromhex(p) for p in d["proof"] or []]
        verdict = judge_checkpoint(
            verified, checkpoint, public, d["tree_hash"], lambda _size: (current.size, current.root, proof)
        )
        if not verdict.ok:
            return verdict
        return replace(
            verdict, ok=full.ok, first_bad_seq=full.first_bad_seq, problem=full.problem, replay=full.replay
        )

    def rotate_event_key(self) -> dict:
        """``audit rotate-key`` (admin): the service's event key is rotated; ``retired_key`` is a path on the
        service's host, where the old private key is kept."""
        return self._post("/api/v1/audit/rotate-key", {})

    def audit_proof(self, seq: int, size: int | None = None) -> dict:
        return self._get(f"/api/v1/audit/proof/{int(seq)}", size=size)

    # -- moves ------------------------------------------------------------------------------------------------
    def _move(self, action: str, name: str, version: str, body: dict | None = None) -> RemoteResult:
        _, etag = self._show(name, version, fresh=True)
        resp = self.request(
            "POST", f"{self._vpath(name, version)}/{action}", json=body or {}, headers={"If-Match": etag}
        )
        return RemoteResult(resp.json())

    def submit(self, name: str, version: str) -> RemoteResult:
        return self._move("submit", name, version)

    def send_back(self, name: str, version: str, *, reason: str) -> RemoteResult:
        return self._move("send-back", name, version, {"reason": reason})

    def deploy(self, name: str, version: str, *, replace: str | None = None) -> RemoteResult:
        return self._move("deploy", name, version, {"replace": replace})

    def suspend(self, name: str, version: str, *, reason: str) -> RemoteResult:
        return self._move("suspend", name, version, {"reason": reason})

    def resume(self, name: str, version: str, *, reason: str) -> RemoteResult:
        return self._move("resume", name, version, {"reason": reason})

    def retire(self, name: str, version: str, *, reason: str) -> RemoteResult:
        return self._move("retire", name, version, {"reason": reason})

    def approve(
        self,
        name: str,
        version: str,
        *,
        role: str,
        comment: str | None = None,
        decision: str = "approve",
        key_path: str | Path | None = None,
    ) -> dict:
        """Fetch the payload the registry would record, check it says what was asked, sign it here."""
        from modelreg import signing
        from modelreg.audit.canonical import canonical_json

        key = signing.load_private_key(Path(key_path)) if key_path else self._signing_key()
        _, etag = self._show(name, version, fresh=True)
        ask = {"role": role, "decision": decision, "comment": comment}
        payload = self.request("POST", f"{self._vpath(name, version)}/approvals/draft", json=ask).json()
        expected = {
            "model": name,
            "version": str(version),
            "role": role,
            "decision": decision,
            "comment": comment or "",
        }
        if any(payload.get(k) != v for k, v in expected.items()):
            raise BadInput("the service offered a payload that does not say what you asked to sign: refused")
        sig = signing.sign(key, canonical_json(payload))
        resp = self.request(
            "POST",
            f"{self._vpath(name, version)}/approvals",
            json={**ask, "payload": payload, "signature": sig.to_dict()},
            headers={"If-Match": etag},
        )
        return resp.json()

    # -- the rest of the operations (the library functions hand a RemoteRegistry here) ------------------------
    @property
    def registry(self) -> RemoteRegistry:
        """So ``modelreg.Client`` code that reaches ``client.registry`` gets this same remote registry."""
        return self

    def _post(self, path: str, body: dict, *, if_match_of: tuple[str, str] | None = None) -> dict:
        headers = None
        if if_match_of is not None:
            _, etag = self._show(*if_match_of, fresh=True)
            headers = {"If-Match": etag}
        return self.request("POST", path, json=body, headers=headers).json()

    def _sign_draft(self, payload: dict, expected: dict, key_path: str | Path | None) -> dict:
        """Check the registry's draft says what was asked, then sign it here, with the signer's own key."""
        from modelreg import signing
        from modelreg.audit.canonical import canonical_json

        if any(payload.get(k) != v for k, v in expected.items()):
            raise BadInput("the service offered a payload that does not say what you asked to sign: refused")
        key = signing.load_private_key(Path(key_path)) if key_path else self._signing_key()
        return signing.sign(key, canonical_json(payload)).to_dict()

    def upload(self, path: str | Path) -> str:
        """Upload a CSV or Parquet file (streamed from disk); the id the service names it by."""
        path = Path(path)
        if not path.is_file():
            raise BadInput(
                f"{path} is not a file: over MODELREG_URL data is a CSV or Parquet file uploaded to the service "
                "(or server:<root>/<path>, a file in one of the service's data roots)"
            )
        resp = self.request("POST", "/api/v1/uploads", params={"name": path.name}, file=path)
        return resp.json()["upload"]

    def _upload_any(self, data: Any, what: str) -> str | None:
        """What a request's data field says: a ``server:`` reference as it is, else the upload id of the file
        (a DataFrame is written to Parquet first)."""
        if data is None:
            return None
        if isinstance(data, (str, Path)) and str(data).startswith(SERVER_PREFIX):
            return str(data)
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / f"{what}.parquet"
                data.to_parquet(target, index=False)
                return self.upload(target)
        if isinstance(data, (str, Path)):
            return self.upload(data)
        raise BadInput(
            f"{what} must be a CSV/Parquet file or a DataFrame over MODELREG_URL. Got {type(data).__name__} instead."
        )

    def register_from_mlflow(self, name: str, version: str | None, **kw: Any) -> ModelVersion:
        body = {"version": version, **kw}
        return version_from(self._post(self._vpath(name, "_").rsplit("/", 1)[0], body))

    def register(self, name: str, version: str | None = None, **kw: Any) -> ModelVersion:
        return self.register_from_mlflow(name, version, **kw)

    def update_card(self, name: str, version: str, fields: dict | None = None, **more: Any) -> ModelVersion:
        body = {"fields": {**(fields or {}), **more}}
        return version_from(
            self._post(f"{self._vpath(name, version)}/card", body, if_match_of=(name, version))
        )

    def attach_file(self, name: str, version: str, *, role: str, path, owner=None, encoding=None) -> Dataset:
        upload = self._upload_any(path, "data")
        body = {"role": role, "upload": upload, "owner": owner, "encoding": encoding}
        d = self._post(f"{self._vpath(name, version)}/data", body, if_match_of=(name, version))
        return Dataset(**{**d, "at": _dt(d["at"])})

    def attach_data(self, name: str, version: str, *, role: str, data: Any, owner=None, **_: Any) -> Dataset:
        return self.attach_file(name, version, role=role, path=data, owner=owner)

    def run_evaluation(self, name: str, version: str, inp: Any, *, purpose: str, policy: str | None = None):
        action = {"precheck": "precheck", "validation": "validate", "monitoring": "monitor"}[purpose]
        if inp.model is not None:
            raise BadInput(
                "a model object cannot be sent to the service: give its MLflow models:/ or runs:/ URI"
            )
        if inp.data is not None and isinstance(inp.data, str) and inp.data.startswith(("duckdb:", "spark:")):
            raise BadInput(
                "over MODELREG_URL the data is a file uploaded to the service, not a duckdb:/spark: table"
            )
        body = {
            "data": self._upload_any(inp.data, "data"),
            "reference": self._upload_any(inp.reference, "reference"),
            "period_reference": self._upload_any(inp.period_reference, "period_reference"),
            "target": inp.target,
            "positive_label": inp.positive_label,
            "prediction": inp.prediction,
            "score": inp.score,
            "model_uri": inp.model_uri,
            "sensitive": list(inp.sensitive),
            "segments": list(inp.segments),
            "cross_segments": inp.cross_segments,
            "feature_labels": {k: list(v) for k, v in (inp.feature_labels or {}).items()},
            "policy": policy,
            "encoding": inp.encoding,
            "engine": inp.engine,
        }
        d = self._post(f"{self._vpath(name, version)}/{action}", body, if_match_of=(name, version))
        return evaluation_from(d)

    def _evaluate(self, purpose: str, name: str, version: str, data: Any, **kw: Any):
        from modelreg.governance.runner import EvaluationInput

        policy = kw.pop("policy", None)
        for k in ("sensitive", "segments"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return self.run_evaluation(
            name, version, EvaluationInput(data=data, **kw), purpose=purpose, policy=policy
        )

    def precheck(self, name: str, version: str, *, data: Any, **kw: Any):
        return self._evaluate("precheck", name, version, data, **kw)

    def validate(self, name: str, version: str, *, data: Any, **kw: Any):
        return self._evaluate("validation", name, version, data, **kw)

    def monitor(self, name: str, version: str, *, data: Any, **kw: Any):
        return self._evaluate("monitoring", name, version, data, **kw)

    def latest(self, name: str, version: str, purpose: str | None = None) -> list:
        evs = [evaluation_from(d) for d in self._get(f"{self._vpath(name, version)}/findings")]
        return [e for e in evs if purpose is None or e.purpose == purpose]

    def findings(self, name: str, version: str) -> list:
        return self.latest(name, version)

    def signed(self, name: str, version: str, kind: str | None = None) -> list:
        return [record_from(d) for d in self._get(f"{self._vpath(name, version)}/records", kind=kind)]

    def gate_check(self, name: str, version: str, gate_or_action: str = "deploy", action: str | None = None):
        from modelreg.registry.gates import Unmet

        rows = self._get(f"{self._vpath(name, version)}/gate", action=action or gate_or_action)
        return [Unmet(**{**u, "clause_ids": tuple(u.get("clause_ids") or ())}) for u in rows]

    def attest(self, name: str, version: str, *, control_id: str | None = None, control: str | None = None,
               comment: str | None = None, key_path: str | Path | None = None) -> dict:  # fmt: skip
        control_id = control_id or control
        ask = {"control_id": control_id, "comment": comment}
        path = f"{self._vpath(name, version)}/attestations"
        _, etag = self._show(name, version, fresh=True)
        payload = self.request("POST", f"{path}/draft", json=ask).json()
        expected = {
            "model": name,
            "version": str(version),
            "control_id": control_id,
            "comment": comment or "",
        }
        sig = self._sign_draft(payload, expected, key_path)
        body = {**ask, "payload": payload, "signature": sig}
        return self.request("POST", path, json=body, headers={"If-Match": etag}).json()

    def attest_batch(
        self, source: Any, *, key_path: str | Path | None = None, policy: str | None = None
    ) -> list:
        """``attest --batch``: the file is read here (the same shape checks and messages), the service drafts
        every entry's payload, each is checked and signed here with the signer's key, and one request records
        them all or none."""
        from modelreg.governance.batch import read_entries, to_wire

        if policy is not None:
            raise BadInput("over MODELREG_URL the batch is checked against the service's policy pack")
        wire = to_wire(read_entries(source))
        drafts = self._post("/api/v1/attestations/batch/draft", wire)["drafts"]
        if len(drafts) != len(wire["entries"]):
            raise BadInput("the service offered a draft that does not hold every entry of the batch: refused")
        signed = []
        for entry, draft in zip(wire["entries"], drafts, strict=True):
            expected = {
                "model": entry["model"],
                "version": entry["version"],
                "control_id": entry["control"],
                "comment": entry.get("comment") or "",
            }
            sig = self._sign_draft(draft["payload"], expected, key_path)
            signed.append({"payload": draft["payload"], "signature": sig})
        return self._post("/api/v1/attestations/batch", {**wire, "signed": signed})["attestations"]

    def waive(self, name: str, version: str, *, until: Any, reason: str, control_id: str | None = None,
              control: str | None = None, gate: str = "deploy", key_path: str | Path | None = None) -> dict:  # fmt: skip
        control_id = control_id or control
        until_text = until if isinstance(until, str) else clock.isoformat(clock.to_utc(until))
        ask = {"control_id": control_id, "until": until_text, "reason": reason, "gate": gate}
        path = f"{self._vpath(name, version)}/waivers"
        _, etag = self._show(name, version, fresh=True)
        payload = self.request("POST", f"{path}/draft", json=ask).json()
        gates = ["deploy", "monitor"] if gate == "all" else [gate]
        expected = {"model": name, "version": str(version), "control_id": control_id, "gates": gates,
                    "reason": (reason or "").strip()}  # fmt: skip
        sig = self._sign_draft(payload, expected, key_path)
        body = {**ask, "payload": payload, "signature": sig}
        return self.request("POST", path, json=body, headers={"If-Match": etag}).json()

    # -- findings ---------------------------------------------------------------------------------------------
    def finding_list(self, *, model=None, version=None, status=None, owner=None) -> list:
        rows = self._get("/api/v1/findings", model=model, version=version, status=status, owner=owner)
        return [finding_from(d) for d in rows]

    def finding_show(self, finding_id) -> Any:
        return finding_from(self._get(f"/api/v1/findings/{_fid(finding_id)}"))

    def finding_assign(self, finding_id, *, owner=None, due=None, reason: str = "") -> Any:
        due_text = due if due is None or isinstance(due, str) else clock.isoformat(clock.to_utc(due))
        body = {"owner": owner, "due": due_text, "reason": reason}
        return finding_from(self._post(f"/api/v1/findings/{_fid(finding_id)}/assign", body))

    def finding_propose(self, finding_id, *, remediation: str) -> Any:
        body = {"remediation": remediation}
        return finding_from(self._post(f"/api/v1/findings/{_fid(finding_id)}/propose", body))

    def finding_close(self, finding_id, *, accept: bool = False, reason: str = "", key_path=None) -> Any:
        path = f"/api/v1/findings/{_fid(finding_id)}"
        body: dict = {"accept": accept, "reason": reason}
        if accept:
            payload = self._post(f"{path}/acceptance/draft", {"reason": reason})
            expected = {"finding_id": int(_fid(finding_id)), "reason": (reason or "").strip()}
            body.update(payload=payload, signature=self._sign_draft(payload, expected, key_path))
        return finding_from(self._post(f"{path}/close", body))

    # -- evidence and checkpoints -----------------------------------------------------------------------------
    def evidence_pack(self, name: str, version: str, out: str | Path, *, as_of: Any = None) -> Any:
        from modelreg.evidence.pack import PackSummary

        out = Path(out)
        if out.exists() and out.is_dir():
            raise BadInput(f"-o {out} is a folder; give a file name ending in .zip")
        as_of_text = (
            as_of if as_of is None or isinstance(as_of, str) else clock.isoformat(clock.to_utc(as_of))
        )
        d = self._post(f"{self._vpath(name, version)}/evidence", {"as_of": as_of_text})
        resp = self.request("GET", d.pop("download"))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(resp.content)
        tmp.replace(out)
        d["path"] = str(out)
        d["notes"] = tuple(d.get("notes") or ())
        return PackSummary(**d)

    def audit_checkpoint(self, out: str | Path) -> dict:
        from modelreg.audit.canonical import canonical_json

        out = Path(out)
        if out.exists() and out.is_dir():
            raise BadInput(f"-o {out} is a folder; give a file name")
        d = self._post("/api/v1/audit/checkpoint", {})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(canonical_json(d["checkpoint"]).decode("utf-8") + "\n", encoding="utf-8")
        pub = out.with_suffix(out.suffix + ".pub")
        pub.write_text(d["public_key_pem"], encoding="utf-8")
        return {"checkpoint": d["checkpoint"], "file": str(out), "public_key": str(pub)}

    # -- late outcomes, inventory, review calendar, champion/challenger -----------------------------------------
    def add_outcomes(self, name: str, version: str, data: Any, *, id_column: str | None = None,
                     outcome_column: str | None = None, time_column: str | None = None,
                     positive_label: Any = None, encoding: str | None = None, strict: bool = False) -> dict:  # fmt: skip
        body = {
            "upload": self._upload_any(data, "outcomes"),
            "id_column": id_column,
            "outcome_column": outcome_column,
            "time_column": time_column,
            "positive_label": positive_label,
            "encoding": encoding,
            "strict": strict,
        }
        return self._post(f"{self._vpath(name, version)}/outcomes", body, if_match_of=(name, str(version)))

    def outcomes_report(self, name: str, version: str, *, min_class_count: int | None = None) -> dict:
        return self._get(f"{self._vpath(name, version)}/outcomes/report", min_class_count=min_class_count)

    def inventory_export(self, fmt: str, out: Path | None = None, *, policy: str | None = None) -> dict:
        """The service's inventory rows and text; a file (xlsx too) is written here, as ``export`` writes it."""
        d = self._get("/api/v1/inventory", format="json" if fmt == "xlsx" else fmt, policy=policy)
        text = None if fmt == "xlsx" else d["text"]
        if out is not None:
            path = Path(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "xlsx":
                from modelreg.operations.inventory import write_xlsx

                write_xlsx(d["rows"], path, as_of=d["as_of"])
            else:
                path.write_text(text or "", encoding="utf-8")
        file = str(out) if out is not None else None
        return {"format": fmt, "file": file, "rows": d["rows"], "text": text, "as_of": d["as_of"]}

    def calendar(self, *, within_days: int | None = None, policy: str | None = None) -> dict:
        from dataclasses import fields

        from modelreg.operations.calendar import DueItem

        d = self._get("/api/v1/due", within_days=within_days, policy=policy)

        def item(x: dict) -> DueItem:
            kw = {f.name: x.get(f.name) for f in fields(DueItem)}
            kw.update(
                last_at=_dt(kw["last_at"]), due_at=_dt(kw["due_at"]), clause_ids=tuple(kw["clause_ids"] or ())
            )
            return DueItem(**kw)

        lists = {k: [item(x) for x in d[k]] for k in ("items", "all", "overdue")}
        return {"as_of": _dt(d["as_of"]), "within_days": d["within_days"], "policy": d["policy"], **lists}

    def run_challenger(self, name: str, *, champion: str, challenger: str, data: Any, target: str,
                       segments: tuple[str, ...] = (), positive_label: Any = None, min_segment_size: int = 100,
                       confidence: float = 0.95, policy: str | None = None, encoding: str | None = None,
                       progress: Any = None, models: dict | None = None) -> RemoteChallengerRun:  # fmt: skip
        if models:
            raise BadInput(
                "model objects cannot be sent to the service: the versions' MLflow models are scored"
            )
        body = {
            "champion": str(champion),
            "challenger": str(challenger),
            "data": self._upload_any(data, "data"),
            "target": target,
            "positive_label": positive_label,
            "segments": list(segments),
            "min_segment_size": min_segment_size,
            "confidence": confidence,
            "policy": policy,
            "encoding": encoding,
        }
        from urllib.parse import quote

        path = f"/api/v1/models/{quote(name, safe='')}/challenger"
        return RemoteChallengerRun(self._post(path, body, if_match_of=(name, str(champion))))

    def sync_check(self, *, fresh: bool = False, consume: bool = False) -> dict:
        """``sync --check`` as the service ran it: one request runs check, ungoverned and the record of what
        was found (so over MODELREG_URL ``check`` alone records it too, for an operator or admin). The CLI's
        three calls read that one answer: ``check`` asks afresh, ``record_ungoverned`` consumes it."""
        if fresh or self._sync is None:
            from modelreg.integrations.mlflow.projection import Divergence

            d = self.request("POST", "/api/v1/sync/check", json={}).json()
            self._sync = {
                "divergences": [Divergence(**x) for x in d["divergences"]],
                "ungoverned": [Divergence(**x) for x in d["ungoverned"]],
                "record": d["record"],
            }
        answer = self._sync
        if consume:
            self._sync = None
        return answer

    def sync_repair(self) -> list:
        """``sync`` (the repair) as the service ran it: the repair, what MLflow holds outside governance and
        that finding recorded, in one request; the CLI's ``ungoverned`` and ``record_ungoverned`` then read (and
        consume) that same answer, as after ``sync_check``."""
        from modelreg.integrations.mlflow.projection import Divergence

        d = self.request("POST", "/api/v1/sync/repair", json={}).json()
        self._sync = {
            "divergences": [Divergence(**x) for x in d["divergences"]],
            "ungoverned": [Divergence(**x) for x in d["ungoverned"]],
            "record": d["record"],
        }
        return self._sync["divergences"]

    # -- the validation report ----------------------------------------------------------------------------
    def report_data(self, name: str, version: str, *, policy: str | None = None) -> dict:
        """The report's data as the service read it (``report_data``); the document is written here."""
        return self._get(f"{self._vpath(name, version)}/report", policy=policy)

    # -- users and keys ---------------------------------------------------------------------------------------
    def users(self) -> list:
        return [user_from(d) for d in self._get("/api/v1/users")]

    def user(self, name: str) -> Any:
        for u in self.users():
            if u.name == name:
                return u
        from modelreg.errors import NotFound

        raise NotFound(f"user {name!r} is not registered")

    def add_user(self, name: str, roles, *, public_key_pem: str | None = None) -> Any:
        body = {
            "name": name,
            "roles": [str(getattr(r, "value", r)) for r in roles],
            "public_key_pem": public_key_pem,
        }
        return user_from(self._post("/api/v1/users", body))

    def set_roles(self, name: str, roles) -> Any:
        from urllib.parse import quote

        body = {"roles": [str(getattr(r, "value", r)) for r in roles]}
        return user_from(self.request("PUT", f"/api/v1/users/{quote(name, safe='')}/roles", json=body).json())

    def register_key(self, public_key_pem: str, *, user: str | None = None) -> Any:
        from urllib.parse import quote

        who = quote(user or self.actor or "", safe="")
        return user_from(self._post(f"/api/v1/users/{who}/key", {"public_key_pem": public_key_pem}))


def _file_chunks(path: Path, size: int, chunk: int = httpsig.CHUNK):
    """The file's bytes in chunks, exactly ``size`` of them (the Content-Length sent): a file that grew since
    its digest was taken is cut there, one that shrank ends short, and the service refuses either."""
    left = size
    with path.open("rb") as fh:
        while left > 0:
            piece = fh.read(min(chunk, left))
            if not piece:
                return
            left -= len(piece)
            yield piece


def _fid(finding_id) -> str:
    text = str(finding_id).strip().lstrip("#")
    if not text.isdigit():
        raise BadInput(f"a finding id is a number (see modelreg finding list). Got {finding_id!r} instead.")
    return text


_FINDING_KEYS = ("control_id", "status", "raw_status", "severity", "clause_ids", "waiver")


def evaluation_from(d: dict):
    """An ``Evaluation`` (with its findings) from the service's JSON: what ``Evaluation.to_dict`` wrote."""
    from modelreg.governance.records import Evaluation, Finding

    findings = tuple(
        Finding(
            control_id=f["control_id"],
            status=f["status"],
            severity=f["severity"],
            clause_ids=tuple(f.get("clause_ids") or ()),
            detail={k: v for k, v in f.items() if k not in _FINDING_KEYS},
            raw_status=f.get("raw_status", f["status"]),
            waiver=f.get("waiver"),
        )
        for f in d.get("findings", [])
    )
    known = {"id", "model", "version", "purpose", "gate", "tier", "policy", "model_artifact_digest", "data",
             "status", "digest", "mlflow_run_id", "created_by", "created_at", "counts", "suspended", "findings"}  # fmt: skip
    return Evaluation(
        id=d["id"],
        model=d["model"],
        version=d["version"],
        purpose=d["purpose"],
        gate=d["gate"],
        tier=d["tier"],
        policy_id=d["policy"]["id"],
        policy_version=d["policy"]["version"],
        policy_digest=d["policy"]["digest"],
        model_artifact_digest=d.get("model_artifact_digest"),
        data=d.get("data") or {},
        status=d["status"],
        digest=d["digest"],
        mlflow_run_id=d.get("mlflow_run_id"),
        created_by=d["created_by"],
        created_at=_dt(d["created_at"]),
        findings=findings,
        suspended=bool(d.get("suspended")),
        extra={k: v for k, v in d.items() if k not in known},
    )


def finding_from(d: dict):
    from dataclasses import fields

    from modelreg.domain.findings import TrackedFinding

    out = {}
    for f in fields(TrackedFinding):
        value = d.get(f.name)
        if f.name.endswith("_at") and value is not None:
            value = _dt(value)
        elif f.name == "clause_ids":
            value = tuple(value or ())
        out[f.name] = value
    return TrackedFinding(**out)


def record_from(d: dict):
    from modelreg.governance.signatures import SignedRecord

    return SignedRecord(
        id=d["id"],
        kind=d["kind"],
        role=d.get("role"),
        control_id=d.get("control_id"),
        actor=d["actor"],
        payload=d["payload"],
        payload_bytes=b"",
        signature=d["signature"],
        until=_dt(d.get("until")),
        at=_dt(d["at"]),
        valid_signature=bool(d.get("signature_valid")),
        problems=tuple(d.get("problems") or ()),
    )


def user_from(d: dict):
    from modelreg.domain.entities import User

    return User(
        name=d["name"],
        roles=tuple(d.get("roles") or ()),
        key_id=d.get("key_id"),
        public_key_pem=d.get("public_key_pem"),
        created_at=_dt(d.get("created_at")),
    )
