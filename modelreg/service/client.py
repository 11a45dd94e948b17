"""The registry service's client: what ``MODELREG_URL`` turns the CLI and ``modelreg.connect()`` into.

``RemoteRegistry`` answers the calls the CLI's commands make on a ``Registry`` (``list``, ``show``, ``history``,
``datasets``, the moves, ``approve``, ``audit_log``, ``audit_verify``) with the same domain objects, read from
the service's JSON, so the commands print the same output. Every request is signed (RFC 9421,
``modelreg.service.httpsig``) with the user's private key found where the CLI finds it today
(``$MODELREG_SIGNING_KEY``, else ``<home>/keys/<user>.key``); ``--as`` / ``MODELREG_USER`` only choose
which key file that is; the service decides who the key belongs to. Approvals are signed here, on the
signer's machine: the service sends the payload it would record and verifies the signature.

Only httpx and the standard library: the light CLI commands stay light. Commands with no remote form
(``init``, ``user``, ``keys``, ``register``, ``attach-data``, ``card``, evaluations, evidence, ``sync``, ...) say
so in one line.
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
    "submit",
    "send-back",
    "deploy",
    "suspend",
    "resume",
    "retire",
    "approve",
    "reject",
    "audit log",
    "audit verify",
    "audit proof",
)
MSG_LOCAL_ONLY = (
    "{what} runs only on the registry database (embedded mode), not through the service at {url}; "
    "over MODELREG_URL these commands work: " + ", ".join(REMOTE_COMMANDS)
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
    ):
        import json as jsonlib

        import httpx

        key = self._signing_key()
        url = httpx.URL(self.base + path, params={k: v for k, v in (params or {}).items() if v is not None})
        raw = b"" if json is None else jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        signed = httpsig.sign_request(
            key, self._key_id or "", method, str(url), raw, created=int(time.time())
        )
        all_headers = {**signed, **(headers or {})}
        if json is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            resp = self._http.request(method, url, content=raw, headers=all_headers)
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
        if checkpoint_path is not None or trusted_key is not None:
            raise BadInput(
                MSG_LOCAL_ONLY.format(what="audit verify --checkpoint/--trusted-key", url=self.base)
            )
        return VerifyReport(**self._get("/api/v1/audit/verify"))

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
