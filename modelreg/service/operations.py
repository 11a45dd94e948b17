"""The service's routes for the rest of the registry's operations, each calling the function the CLI calls.

* data: ``POST /uploads`` takes a CSV or Parquet file as the raw request body (its own size limit,
  ``AuthConfig.max_upload_bytes``), streamed to a partial file in chunks while it is hashed (never the whole
  body in memory; a signed upload's bytes are checked against its signed Content-Digest before the file is
  kept), renamed into place content-addressed under ``<home>/service/uploads`` and answered by its id
  (``sha256:<hex>/<name>``); a cut-short or refused (413) upload leaves nothing behind. ``attach-data``,
  ``precheck``, ``validate``, ``monitor``, ``outcomes add`` and ``challenger run`` name their data by an upload
  id or by ``server:<root>/<relative path>``, a file in one of the operator's data roots
  (``MODELREG_SERVICE_DATA_ROOTS``: the bank's landing zone, never copied through the API), resolved strictly
  inside its root; never by any other path on the server. They run the same ``attach_file`` /
  ``run_evaluation`` as the CLI. Uploads and built evidence packs are swept by ``modelreg.service.retention``.
* signed records (attestations, waivers, finding acceptances): ``.../draft`` answers the payload the registry
  would record now; the signer signs it on their own machine and POSTs payload and signature, which the
  registry checks against what it would record and against the signer's registered key (as for approvals).
* model card, findings (list, show, assign, propose, close), evidence packs (build, then download by the
  builder), audit checkpoints, users and keys (admin).

Every route declares its registry action (``requires``); version-scoped writes need ``If-Match``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from modelreg.domain.roles import allowed
from modelreg.errors import AuthenticationFailed, BadInput, NotFound, PermissionDenied
from modelreg.service import httpsig, retention
from modelreg.service.auth import Identity
from modelreg.service.errors import body as error_body

API = "/api/v1"
VERSION = f"{API}/models/{{model}}/versions/{{version}}"
UPLOAD_ID = re.compile(r"^sha256:([0-9a-f]{64})/([A-Za-z0-9][A-Za-z0-9._-]{0,120})$")
UPLOAD_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv", ".txt")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
PACK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
MODEL_SCHEMES = ("models:/", "runs:/")
DATA_ACTIONS = ("attach_data", "precheck", "validate", "monitor", "outcomes.add")
PURPOSE_OF = {"precheck": "precheck", "validate": "validation", "monitor": "monitoring"}

MSG_UPLOAD_NAME = "name must be a plain file name ending in {suffixes} (letters, digits, '.', '_', '-'). Got {got!r} instead."
MSG_UPLOAD_ID = (
    "{field} must be the id of an uploaded file (sha256:<64 hex digits>/<name>, from POST /api/v1/uploads) "
    "or server:<root>/<relative path> (a file in one of the service's data roots). Got {got!r} instead."
)
MSG_UPLOAD_GONE = (
    "{field}: no uploaded file {got} on this service: it was never uploaded here, or it was removed after "
    "{days:g} days without use; upload it again (POST /api/v1/uploads) and use the id that answers"
)
MSG_NO_ROOT = (
    "{field}: the service has no data root {root!r}; its data roots are {roots} "
    "(MODELREG_SERVICE_DATA_ROOTS). Got {got!r} instead."
)
MSG_BAD_REL = (
    "{field}: server:<root>/<relative path> must name a path inside the root: no absolute path, no '..', "
    "no symlink leading out of it. Got {got!r} instead."
)
MSG_NO_SERVER_FILE = "{field}: {got} does not exist on the service (in data root {root!r})"
SERVER_REF = re.compile(r"^server:([A-Za-z0-9][A-Za-z0-9_-]{0,63})/(.*)$", re.S)
UPLOAD_CHUNK_BYTES = 1_048_576  # written to disk (and hashed) in pieces of this size while an upload arrives
MSG_MODEL_URI = "model_uri must be an MLflow models:/ or runs:/ URI over the service. Got {got!r} instead."


@dataclass(frozen=True)
class Helpers:
    base: Any
    identity: Callable
    requires: Callable[[str], Callable]
    as_user: Callable[[Identity], Any]
    with_if_match: Callable[[Any, str | None], Any]
    moved: Callable[..., JSONResponse]
    require_role: Callable[[Identity, str, str], None]


# -- request bodies ---------------------------------------------------------------------------------------
class AttachBody(BaseModel):
    role: str
    upload: str = Field(description="upload id, or server:<root>/<relative path> in a data root")
    owner: str | None = None
    encoding: str | None = None


class EvaluationBody(BaseModel):
    data: str = Field(description="upload id (or server:<root>/<path>) of the hold-out / scoring data")
    reference: str | None = Field(
        default=None, description="upload id (or server:<root>/<path>) of the training / reference data"
    )
    period_reference: str | None = Field(
        default=None, description="upload id (or server:<root>/<path>) (monitor --reference-period)"
    )
    target: str | None = None
    positive_label: str | int | None = None
    prediction: str | None = None
    score: str | None = None
    model_uri: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    cross_segments: bool = False
    feature_labels: dict[str, list[str]] = Field(default_factory=dict)
    policy: str | None = None
    encoding: str | None = None
    engine: str | None = None


class OutcomesBody(BaseModel):
    upload: str = Field(
        description="upload id (or server:<root>/<path>) of the outcomes file (CSV or Parquet)"
    )
    id_column: str | None = None
    outcome_column: str | None = None
    time_column: str | None = None
    positive_label: str | int | None = None
    encoding: str | None = None
    strict: bool = False


class ChallengerBody(BaseModel):
    champion: str
    challenger: str
    data: str = Field(description="upload id (or server:<root>/<path>) of the labelled monitoring data")
    target: str
    positive_label: str | int | None = None
    segments: list[str] = Field(default_factory=list)
    min_segment_size: int = Field(default=100, ge=1)
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)
    policy: str | None = None
    encoding: str | None = None


class CardBody(BaseModel):
    fields: dict


class AttestDraftBody(BaseModel):
    control_id: str
    comment: str | None = None


class AttestBody(AttestDraftBody):
    payload: dict
    signature: dict


class BatchDraftBody(BaseModel):
    source: str = Field(default="batch", max_length=1000, description="the batch file's name, for messages")
    entries: list[dict] = Field(description="model, version, control, comment per entry (the file's entries)")
    lines: list[int | None] | None = Field(default=None, description="each entry's line in the file")


class BatchBody(BatchDraftBody):
    signed: list[dict] = Field(
        description="one {payload, signature} per entry, in order, signed by the caller"
    )


class WaiverDraftBody(BaseModel):
    control_id: str
    until: str
    reason: str = Field(min_length=1, max_length=4000)
    gate: str = "deploy"


class WaiverBody(WaiverDraftBody):
    payload: dict
    signature: dict


class AssignBody(BaseModel):
    owner: str | None = None
    due: str | None = None
    reason: str = ""


class ProposeBody(BaseModel):
    remediation: str


class AcceptDraftBody(BaseModel):
    reason: str


class CloseBody(BaseModel):
    accept: bool = False
    reason: str = ""
    payload: dict | None = None
    signature: dict | None = None


class PackBody(BaseModel):
    as_of: str | None = None


class UserBody(BaseModel):
    name: str
    roles: list[str]
    public_key_pem: str | None = None


class RolesBody(BaseModel):
    roles: list[str]


class KeyBody(BaseModel):
    public_key_pem: str = Field(min_length=1, max_length=20_000)


def _pem(value: str | None) -> str | None:
    """A public key PEM checked at the boundary: a bad one is bad input, not an internal error."""
    if value is None:
        return None
    from modelreg import signing

    try:
        signing.load_public_key(value.encode())
    except Exception:
        raise BadInput("public_key_pem must be an Ed25519 or SM2 public key in PEM form") from None
    return value


def _presigned(payload: dict | None, signature: dict | None) -> dict:
    if not isinstance(payload, dict) or not isinstance(signature, dict):
        raise BadInput("a signed record needs a payload object and a signature object")
    return {"payload": payload, "signature": signature}


def _as_cli_json(obj: Any, status_code: int = 200) -> Response:
    """``obj`` encoded as the CLI's ``--json`` encodes it (the same default for dates, tuples, enums), so the
    remote command prints what the local one prints."""
    from modelreg.cli.common import _default

    text = json.dumps(obj, default=_default, ensure_ascii=False)
    return Response(text, status_code=status_code, media_type="application/json")


def resolve_server_ref(value: str, field: str, roots: dict[str, Path]) -> Path:
    """``server:<root>/<relative path>`` as the path it names, strictly inside the root: an unknown root, an
    absolute path, a ``..`` component or a symlink (of the path, or inside a Parquet folder it names) that
    leads out of the root is bad input; a path that is not there is not found."""
    m = SERVER_REF.match(value)
    if m is None:
        raise BadInput(MSG_UPLOAD_ID.format(field=field, got=value))
    root_name, rel = m.group(1), m.group(2)
    if root_name not in roots:
        known = ", ".join(sorted(roots)) or "none (none is configured)"
        raise BadInput(MSG_NO_ROOT.format(field=field, root=root_name, roots=known, got=value))
    parts = rel.replace("\\", "/").split("/")
    if not rel or rel.startswith("/") or "\0" in rel or any(p in ("..", "") for p in parts):
        raise BadInput(MSG_BAD_REL.format(field=field, got=value))
    root = roots[root_name].resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise BadInput(MSG_BAD_REL.format(field=field, got=value))
    if not target.exists():
        raise NotFound(MSG_NO_SERVER_FILE.format(field=field, got=value, root=root_name))
    if target.is_dir():  # a Parquet folder: every file the reader may open must stay inside the root too
        for folder, dirs, files in os.walk(target):
            for entry in (*dirs, *files):
                if not (Path(folder) / entry).resolve().is_relative_to(root):
                    raise BadInput(MSG_BAD_REL.format(field=field, got=value))
    return target


def _take(fh, hasher, buf: bytes) -> None:
    hasher.update(buf)
    fh.write(buf)


def _sync_answer(reg: Any, divergences: list) -> Response:
    """What ``sync`` answers after its check or repair: the divergences, what MLflow holds outside governance,
    and that finding recorded (an operator's or admin's; for anyone else, the reason it was not)."""
    from modelreg.integrations.mlflow import projection

    loose = projection.ungoverned(reg)
    record = projection.record_ungoverned(reg, loose)
    return _as_cli_json(
        {
            "divergences": [d.to_dict() for d in divergences],
            "ungoverned": [d.to_dict() for d in loose],
            "record": record,
        }
    )


def add_routes(app: FastAPI, h: Helpers) -> None:
    def writer(ident: Identity, if_match: str | None) -> Any:
        """The registry as the caller, its version-scoped write bound to ``If-Match`` (428/412 otherwise)."""
        return h.with_if_match(h.as_user(ident), if_match)

    settings = h.base.settings
    uploads, packs = retention.folders(settings.home)
    roots = {name: Path(folder) for name, folder in settings.service_data_roots}
    engine = h.base.engine

    def log_sweep(report: retention.SweepReport) -> None:
        if report.uploads or report.packs or report.partials:  # a sweep that removed nothing is no news
            retention.log(engine, report)

    sweeper = retention.Sweeper(
        settings.home,
        upload_days=settings.service_upload_days,
        pack_hours=settings.service_pack_hours,
        record=log_sweep,
    )
    sweeper.run_once()  # at start: what piled up while the service was down goes first
    app.state.sweeper = sweeper

    def upload_path(value: str | None, field: str, ident: Identity | None = None) -> Path | None:
        """The file a data field names: an upload id (touched: the sweep goes by last use) or a
        ``server:<root>/<path>`` reference into an operator's data root (for a caller who may upload)."""
        if value is None:
            return None
        sweeper.due()
        text = str(value)
        if text.startswith("server:"):
            if ident is not None:
                _may_send_data(ident, "reading server-side data")
            return resolve_server_ref(text, field, roots)
        m = UPLOAD_ID.match(text)
        if m is None:
            raise BadInput(MSG_UPLOAD_ID.format(field=field, got=value))
        path = uploads / m.group(1) / m.group(2)
        if not path.is_file():
            raise NotFound(MSG_UPLOAD_GONE.format(field=field, got=value, days=settings.service_upload_days))
        retention.touch(path)
        return path

    # -- data -------------------------------------------------------------------------------------------
    def _may_send_data(ident: Identity, what: str) -> None:
        if not any(allowed(a, ident.roles) for a in DATA_ACTIONS):
            raise PermissionDenied(
                f"{what} needs a role that may {', '.join(DATA_ACTIONS)}; {ident.user!r} may use "
                f"{', '.join(sorted(ident.roles)) or 'no roles'} here"
            )

    async def may_upload(ident: Identity = Depends(h.identity)) -> Identity:
        _may_send_data(ident, "uploading data")
        return ident

    @app.post(f"{API}/uploads", tags=["data"], status_code=201)
    async def upload(request: Request, name: str = Query(...), ident: Identity = Depends(may_upload)):
        """A CSV or Parquet file as the raw body; answers the id attach-data and the evaluations name it by.
        The body is streamed to a partial file while it is hashed and renamed into place once complete (and,
        for a signed request, once its bytes match the signed Content-Digest); otherwise it is deleted."""
        if not SAFE_NAME.match(name) or not name.lower().endswith(UPLOAD_SUFFIXES):
            raise BadInput(MSG_UPLOAD_NAME.format(suffixes="/".join(UPLOAD_SUFFIXES), got=name))
        claimed = request.headers.get("content-digest")
        expected = httpsig.digest_value(claimed)
        if ident.method == "signature" and expected is None:  # verify() already refused this; belt and braces
            raise AuthenticationFailed("a streamed upload needs a Content-Digest: sha-256=:<base64>: header")
        if claimed is not None and expected is None:
            raise BadInput("Content-Digest must be sha-256=:<base64 of the body's SHA-256>:")
        sweeper.due()
        partial = uploads / retention.PARTIAL
        partial.mkdir(parents=True, exist_ok=True)
        tmp = partial / f"{secrets.token_hex(16)}.part"
        hasher = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as fh:
                buf = bytearray()
                try:
                    async for chunk in request.stream():
                        buf += chunk
                        size += len(chunk)
                        while len(buf) >= UPLOAD_CHUNK_BYTES:
                            await run_in_threadpool(_take, fh, hasher, bytes(buf[:UPLOAD_CHUNK_BYTES]))
                            del buf[:UPLOAD_CHUNK_BYTES]
                except ClientDisconnect:
                    # the client went away, or the size guard answered 413 and cut the body off: nothing kept
                    message = "the upload was cut short before its end: nothing was stored; send it again"
                    return JSONResponse(error_body("bad_input", message), status_code=400)
                if buf:
                    await run_in_threadpool(_take, fh, hasher, bytes(buf))
            if size == 0:
                raise BadInput("the upload is empty: send the file as the request body")
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) != size:
                raise BadInput(f"the upload ended after {size} of its {length} bytes: nothing was stored")
            if expected is not None and hasher.digest() != expected:
                raise AuthenticationFailed("Content-Digest does not match the request body")
            digest = hasher.hexdigest()
            await run_in_threadpool(_place, tmp, uploads / digest / name)
        finally:
            tmp.unlink(missing_ok=True)
        return {"upload": f"sha256:{digest}/{name}", "name": name, "bytes": size, "sha256": digest}

    def _place(tmp: Path, target: Path) -> None:
        for _ in range(3):  # the sweep may remove the (empty) folder between mkdir and the rename
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # the same bytes under the same name: keep the one there, mark it used
                retention.touch(target)
                return
            try:
                os.replace(tmp, target)
                return
            except FileNotFoundError:
                if not tmp.exists():
                    raise
        raise BadInput("the upload could not be put in place (its folder kept vanishing); send it again")

    @app.post(f"{VERSION}/data", tags=["data"], status_code=201)
    def attach_data(
        model: str,
        version: str,
        req: AttachBody,
        if_match: str | None = Header(None),
        ident: Identity = Depends(h.requires("attach_data")),
    ) -> JSONResponse:
        from modelreg.datasets import attach_file

        path = upload_path(req.upload, "upload", ident)
        reg = writer(ident, if_match)
        with retention.pinned(path):
            ds = attach_file(
                reg, model, version, role=req.role, path=path, owner=req.owner, encoding=req.encoding
            )
        return h.moved(reg, model, version, ds, 201)

    def _evaluation_route(action: str) -> None:
        purpose = PURPOSE_OF[action]

        def route(
            model: str,
            version: str,
            req: EvaluationBody,
            if_match: str | None = Header(None),
            ident: Identity = Depends(h.requires(action)),
        ) -> JSONResponse:
            from modelreg.governance.runner import EvaluationInput
            from modelreg.governance.service import run_evaluation

            reg = h.as_user(ident)
            if req.model_uri is not None and not req.model_uri.startswith(MODEL_SCHEMES):
                raise BadInput(MSG_MODEL_URI.format(got=req.model_uri))
            model_uri = req.model_uri
            if model_uri is None and req.score is None and req.prediction is None:
                model_uri = reg.show(model, version).model_uri  # the version's own MLflow model
            labels = {k: tuple(v) for k, v in req.feature_labels.items()}
            if any(len(v) != 2 for v in labels.values()):
                raise BadInput("feature_labels must map a feature to [zh, en]")
            engine = req.engine or ("auto" if purpose == "monitoring" else "pandas")
            if engine not in ("auto", "pandas", "duckdb"):
                raise BadInput(
                    f"engine must be auto, pandas or duckdb over the service. Got {engine!r} instead."
                )
            inp = EvaluationInput(
                data=upload_path(req.data, "data", ident),
                reference=upload_path(req.reference, "reference", ident),
                period_reference=upload_path(req.period_reference, "period_reference", ident),
                target=req.target,
                positive_label=req.positive_label,
                prediction=req.prediction,
                score=req.score,
                model_uri=model_uri,
                sensitive=tuple(req.sensitive),
                segments=tuple(req.segments),
                cross_segments=req.cross_segments,
                feature_labels=labels,
                encoding=req.encoding,
                engine=engine,
            )
            reg = h.with_if_match(reg, if_match)
            with retention.pinned(inp.data, inp.reference, inp.period_reference):
                ev = run_evaluation(reg, model, version, inp, purpose=purpose, policy=req.policy)
            return h.moved(reg, model, version, ev, 201)

        route.__name__ = action
        app.post(f"{VERSION}/{action}", tags=["governance"], name=action, status_code=201)(route)

    for _action in PURPOSE_OF:
        _evaluation_route(_action)

    # -- model card -------------------------------------------------------------------------------------
    @app.post(f"{VERSION}/card", tags=["lifecycle"])
    def update_card(
        model: str,
        version: str,
        req: CardBody,
        if_match: str | None = Header(None),
        ident: Identity = Depends(h.requires("update_card")),
    ) -> JSONResponse:
        reg = writer(ident, if_match)
        return h.moved(reg, model, version, reg.update_card(model, version, req.fields))

    # -- attestations and waivers (signed on the signer's machine) -------------------------------------
    def signed_record_routes(
        path: str,
        action: str,
        drafter: str,
        draft_body: type[BaseModel],
        body: type[BaseModel],
        fields: tuple[str, ...],
    ) -> None:
        """A signed record's two routes: ``…/{path}/draft`` answers the payload the registry would record now
        (RFC 8785 JSON, to sign on the signer's machine); ``…/{path}`` records it with its signature, which
        the registry checks against what it would record and against the signer's registered key. The
        attestation and the waiver differ only in their fields and their functions in governance.service
        (``action`` records, ``drafter`` drafts)."""
        draft_name, record_name = drafter, action

        def draft(model: str, version: str, req, ident: Identity = Depends(h.requires(action))) -> dict:
            from modelreg.governance import service

            return getattr(service, drafter)(
                h.as_user(ident), model, version, **{f: getattr(req, f) for f in fields}
            )

        def record(
            model: str,
            version: str,
            req,
            if_match: str | None = Header(None),
            ident: Identity = Depends(h.requires(action)),
        ) -> JSONResponse:
            from modelreg.governance import service

            reg = writer(ident, if_match)
            presigned = _presigned(req.payload, req.signature)
            kw = {f: getattr(req, f) for f in fields}
            result = getattr(service, record_name)(reg, model, version, **kw, presigned=presigned)
            return h.moved(reg, model, version, result, 201)

        # The body types are set here, not annotated above: with postponed annotations FastAPI would look
        # the names up among the module's globals, where these parameters are not.
        draft.__annotations__["req"], record.__annotations__["req"] = draft_body, body
        draft.__name__, record.__name__ = draft_name, record_name
        draft.__doc__ = (
            f"The payload to sign on your own machine (RFC 8785 JSON), then POST it to ``{path}``."
        )
        app.post(f"{VERSION}/{path}/draft", tags=["governance"], name=draft_name)(draft)
        app.post(f"{VERSION}/{path}", tags=["governance"], name=record_name, status_code=201)(record)

    signed_record_routes(
        "attestations", "attest", "attestation_draft", AttestDraftBody, AttestBody, ("control_id", "comment")
    )
    signed_record_routes(
        "waivers",
        "waive",
        "waiver_draft",
        WaiverDraftBody,
        WaiverBody,
        ("control_id", "until", "reason", "gate"),
    )

    @app.post(f"{API}/attestations/batch/draft", tags=["governance"])
    def attestation_batch_draft(req: BatchDraftBody, ident: Identity = Depends(h.requires("attest"))) -> dict:
        """``attest --batch``: the payload of each entry to sign on your own machine, then POST them all to
        ``attestations/batch``. Refused as a whole, naming the entry, as the local batch is."""
        from modelreg.governance.service import attestation_batch_draft as draft

        drafts = draft(h.as_user(ident), req.entries, name=req.source, lines=req.lines)
        return {"drafts": drafts}

    @app.post(f"{API}/attestations/batch", tags=["governance"], status_code=201)
    def attest_batch(req: BatchBody, ident: Identity = Depends(h.requires("attest"))) -> Response:
        """Record every signed entry in one unit of work or none (``attest_batch`` with presigned records).
        No If-Match: the batch spans versions; each signed payload must still be exactly what the registry
        would record, which is the check a changed version fails."""
        from modelreg.governance.service import attest_batch as record

        signed = [_presigned(x.get("payload"), x.get("signature")) for x in req.signed]
        done = record(h.as_user(ident), req.entries, presigned=signed, name=req.source, lines=req.lines)
        return _as_cli_json({"attestations": done}, 201)

    # -- findings ---------------------------------------------------------------------------------------
    @app.get(f"{API}/findings", tags=["findings"])
    def finding_list(
        model: str | None = Query(None),
        version: str | None = Query(None),
        status: str | None = Query(None),
        owner: str | None = Query(None),
        ident: Identity = Depends(h.requires("findings")),
    ) -> list[dict]:
        from modelreg.operations.findings import list_findings

        found = list_findings(h.as_user(ident), model=model, version=version, status=status, owner=owner)
        return [f.to_dict() for f in found]

    @app.get(f"{API}/findings/{{finding_id}}", tags=["findings"])
    def finding_show(finding_id: str, ident: Identity = Depends(h.requires("findings"))) -> dict:
        from modelreg.operations.findings import get_finding

        return get_finding(h.as_user(ident), finding_id).to_dict()

    @app.post(f"{API}/findings/{{finding_id}}/assign", tags=["findings"])
    def finding_assign(
        finding_id: str, req: AssignBody, ident: Identity = Depends(h.requires("finding.assign"))
    ) -> dict:
        from modelreg.operations.findings import assign

        reg = h.as_user(ident)
        return assign(reg, finding_id, owner=req.owner, due=req.due, reason=req.reason).to_dict()

    @app.post(f"{API}/findings/{{finding_id}}/propose", tags=["findings"])
    def finding_propose(
        finding_id: str, req: ProposeBody, ident: Identity = Depends(h.requires("finding.propose"))
    ) -> dict:
        from modelreg.operations.findings import propose

        return propose(h.as_user(ident), finding_id, remediation=req.remediation).to_dict()

    @app.post(f"{API}/findings/{{finding_id}}/acceptance/draft", tags=["findings"])
    def acceptance_draft(
        finding_id: str, req: AcceptDraftBody, ident: Identity = Depends(h.requires("finding.close"))
    ) -> dict:
        """The acceptance payload to sign on your own machine, then POST it to ``close`` with accept."""
        from modelreg.operations.findings import acceptance_draft as draft

        return draft(h.as_user(ident), finding_id, reason=req.reason)

    @app.post(f"{API}/findings/{{finding_id}}/close", tags=["findings"])
    def finding_close(
        finding_id: str, req: CloseBody, ident: Identity = Depends(h.requires("finding.close"))
    ) -> dict:
        from modelreg.operations.findings import close

        presigned = _presigned(req.payload, req.signature) if req.accept else None
        f = close(h.as_user(ident), finding_id, accept=req.accept, reason=req.reason, presigned=presigned)
        return f.to_dict()

    # -- evidence packs and audit checkpoints -------------------------------------------------------------
    @app.post(f"{VERSION}/evidence", tags=["audit"], status_code=201)
    def evidence_pack(
        model: str, version: str, req: PackBody, ident: Identity = Depends(h.requires("evidence.pack"))
    ) -> dict:
        """Build the signed pack on the server; download it (the builder only) from ``download``."""
        from modelreg.evidence.pack import build_pack

        sweeper.due()
        packs.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(24)
        summary = build_pack(h.as_user(ident), model, version, packs / f"{token}.zip", as_of=req.as_of)
        (packs / f"{token}.json").write_text(json.dumps({"user": ident.user}), encoding="utf-8")
        return {**summary.to_dict(), "path": None, "download": f"{API}/evidence/{token}"}

    @app.get(f"{API}/evidence/{{token}}", tags=["audit"])
    def evidence_download(token: str, ident: Identity = Depends(h.identity)):
        """Only the user who built the pack (who held evidence.pack then) downloads it; others see 404."""
        meta = packs / f"{token}.json"
        missing = NotFound(f"no evidence pack {token!r} built by {ident.user!r} on this service")
        if not PACK_TOKEN.match(token) or not meta.is_file():
            raise missing
        if json.loads(meta.read_text(encoding="utf-8")).get("user") != ident.user:
            raise missing
        return FileResponse(packs / f"{token}.zip", media_type="application/zip", filename="evidence.zip")

    @app.post(f"{API}/audit/checkpoint", tags=["audit"], status_code=201)
    def audit_checkpoint(ident: Identity = Depends(h.requires("audit.checkpoint"))) -> dict:
        """A signed checkpoint of the log as it is now (and the audit public key to check it with)."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "checkpoint.json"
            result = h.as_user(ident).audit_checkpoint(out)
            public = Path(result["public_key"]).read_text(encoding="utf-8")
        return {"checkpoint": result["checkpoint"], "public_key_pem": public}

    @app.get(f"{API}/audit/consistency", tags=["audit"])
    def audit_consistency(
        size: int = Query(0, ge=0, description="the tree size of the checkpoint you kept"),
        ident: Identity = Depends(h.requires("audit.verify")),
    ) -> Response:
        """What ``audit verify --checkpoint`` needs to judge the log on the auditor's machine: the log's own
        verification (as ``GET /audit/verify``: leaves, roots, event signatures, the tables' replay), and, when
        the log verified, a checkpoint of its verified prefix signed now with the audit key (not recorded: a
        verification writes nothing), that key, and the RFC 6962 consistency proof from ``size`` to it."""
        from modelreg import clock, signing
        from modelreg.audit import checkpoint as cp_mod
        from modelreg.audit import log as audit_log
        from modelreg.audit import merkle

        reg = h.as_user(ident)
        full = reg.audit_verify()
        tree_hash, _ = audit_log.crypto_settings(reg.engine)
        out: dict = {"report": full.to_dict(), "tree_hash": tree_hash, "proof": None, "current": None}
        if full.ok or full.replay is not None:  # the log verified (the tables' replay is judged after)
            leaves = reg.audit_leaf_hashes()[: full.size]
            tree = merkle.MerkleTree.from_leaf_hashes(leaves, tree_hash=tree_hash)
            if 0 < size <= len(leaves):
                out["proof"] = [p.hex() for p in tree.consistency_proof(size, len(leaves))]
            key = reg.registry_key(reg.settings.audit_key_path)
            now = clock.isoformat(clock.now())
            current = cp_mod.sign_checkpoint(len(leaves), tree.root(), key, time=now, tree_hash=tree_hash)
            out["current"] = current.to_dict()
            out["public_key_pem"] = signing.public_key_to_pem(key.public_key()).decode("ascii")
        return _as_cli_json(out)

    @app.post(f"{API}/audit/rotate-key", tags=["audit"])
    def audit_rotate_key(ident: Identity = Depends(h.requires("audit.rotate_key"))) -> dict:
        """``modelreg audit rotate-key`` (admin): the service's event key is replaced (``rotate_event_key``), the
        old key endorsing the new one in the log; the retired private key stays on the service's host, at the
        path the answer names. This process signs with the new key from now on; other workers or processes of
        the service holding the old key refuse to write until restarted (as after a local rotation)."""
        reg = h.as_user(ident)
        result = reg.rotate_event_key()
        h.base._event_signer = reg._event_signer  # later requests (as_user copies of the base) sign with it
        h.base._key_introduced = reg._key_introduced
        return result

    # -- users and keys -----------------------------------------------------------------------------------
    @app.get(f"{API}/users", tags=["users"])
    def users(ident: Identity = Depends(h.requires("user.list"))) -> list[dict]:
        return [u.to_dict() for u in h.as_user(ident).users()]

    @app.post(f"{API}/users", tags=["users"], status_code=201)
    def add_user(req: UserBody, ident: Identity = Depends(h.requires("user.add"))) -> dict:
        reg = h.as_user(ident)
        return reg.add_user(req.name, req.roles, public_key_pem=_pem(req.public_key_pem)).to_dict()

    @app.put(f"{API}/users/{{name}}/roles", tags=["users"])
    def set_roles(name: str, req: RolesBody, ident: Identity = Depends(h.requires("user.roles"))) -> dict:
        return h.as_user(ident).set_roles(name, req.roles).to_dict()

    @app.post(f"{API}/users/{{name}}/key", tags=["users"], status_code=201)
    def register_key(name: str, req: KeyBody, ident: Identity = Depends(h.requires("keys.register"))) -> dict:
        """Your own public key (or another user's, as admin); the registry checks who may."""
        reg = h.as_user(ident)
        pem = _pem(req.public_key_pem)
        return reg.register_key(pem, user=None if name == ident.user else name).to_dict()

    # -- late outcomes, inventory, review calendar, champion/challenger -------------------------------------
    @app.post(f"{VERSION}/outcomes", tags=["outcomes"], status_code=201)
    def outcomes_add(
        model: str,
        version: str,
        req: OutcomesBody,
        if_match: str | None = Header(None),
        ident: Identity = Depends(h.requires("outcomes.add")),
    ) -> Response:
        """Record an uploaded outcomes file for the version (``add_outcomes``: all or nothing, audited)."""
        from modelreg.governance.outcomes import add_outcomes

        path = upload_path(req.upload, "upload", ident)
        reg = writer(ident, if_match)
        with retention.pinned(path):
            done = add_outcomes(
                reg,
                model,
                version,
                path,
                id_column=req.id_column,
                outcome_column=req.outcome_column,
                time_column=req.time_column,
                positive_label=req.positive_label,
                encoding=req.encoding,
                strict=req.strict,
            )
        return _as_cli_json(done, 201)

    @app.get(f"{VERSION}/outcomes/report", tags=["outcomes"])
    def outcomes_report(
        model: str,
        version: str,
        min_class_count: int | None = Query(None, ge=1),
        ident: Identity = Depends(h.requires("outcomes.report")),
    ) -> Response:
        from modelreg.governance.outcomes import outcomes_report as report

        return _as_cli_json(report(h.as_user(ident), model, version, min_class_count=min_class_count))

    @app.get(f"{API}/inventory", tags=["read"])
    def inventory(
        fmt: str = Query("csv", alias="format", description="csv, html or json (xlsx: ask json, write it)"),
        policy: str | None = Query(None),
        ident: Identity = Depends(h.requires("list")),
    ) -> Response:
        """The model inventory (台账): its rows and, for csv/html/json, the text the CLI prints."""
        from modelreg.operations.inventory import export

        result = export(h.as_user(ident), fmt, None, policy=policy)
        return _as_cli_json({k: result[k] for k in ("format", "rows", "text", "as_of")})

    @app.get(f"{API}/due", tags=["read"])
    def due(
        within_days: int | None = Query(None),
        policy: str | None = Query(None),
        ident: Identity = Depends(h.requires("list")),
    ) -> Response:
        """The review calendar of the deployed versions (``modelreg due``)."""
        from modelreg.operations.calendar import calendar

        cal = calendar(h.as_user(ident), within_days=within_days, policy=policy)
        return _as_cli_json(
            {
                "as_of": cal["as_of"],
                "within_days": cal["within_days"],
                "policy": cal["policy"],
                **{k: [i.to_dict() for i in cal[k]] for k in ("items", "all", "overdue")},
            }
        )

    @app.post(f"{API}/sync/check", tags=["read"])
    def sync_check(ident: Identity = Depends(h.requires("sync.check"))) -> Response:
        """``modelreg sync --check`` on the service's MLflow settings: the divergences, what MLflow holds
        outside governance, and that finding recorded (``sync.record_check``: an operator's or admin's; anyone
        else gets the report with the reason it was not recorded). Nothing in MLflow is changed."""
        from modelreg.integrations.mlflow import projection

        reg = h.as_user(ident)
        return _sync_answer(reg, projection.check(reg))

    @app.post(f"{API}/sync/repair", tags=["mlflow"])
    def sync_repair(ident: Identity = Depends(h.requires("sync"))) -> Response:
        """``modelreg sync`` (the repair) on the service's MLflow settings: ``projection.repair`` (the same
        role as locally, ``sync``; audited as one ``mlflow.synced`` event), then what MLflow holds outside
        governance and that finding recorded, as the local command does after its repair."""
        from modelreg.integrations.mlflow import projection

        reg = h.as_user(ident)
        return _sync_answer(reg, projection.repair(reg))

    # -- the validation report's data (the document is written on the caller's machine) -----------------
    @app.get(f"{VERSION}/report", tags=["read"])
    def report(
        model: str,
        version: str,
        policy: str | None = Query(None),
        ident: Identity = Depends(h.requires("show")),
    ) -> Response:
        """What ``modelreg report validation`` writes (``report_data``, without an evidence pack: the caller
        names their own pack file and the client adds its name and SHA-256)."""
        from modelreg.operations.report import report_data

        return _as_cli_json(report_data(h.as_user(ident), model, version, policy=policy))

    @app.post(f"{API}/models/{{model}}/challenger", tags=["governance"], status_code=201)
    def challenger_run(
        model: str,
        req: ChallengerBody,
        if_match: str | None = Header(None),
        ident: Identity = Depends(h.requires("monitor")),
    ) -> Response:
        """Score champion and challenger on the uploaded data (``run_challenger``); no version moves. If-Match
        is the champion's ETag."""
        from modelreg.governance.challenger import run_challenger

        path = upload_path(req.data, "data", ident)
        reg = writer(ident, if_match)
        with retention.pinned(path):
            done = run_challenger(
                reg,
                model,
                champion=req.champion,
                challenger=req.challenger,
                data=path,
                target=req.target,
                segments=tuple(req.segments),
                positive_label=req.positive_label,
                min_segment_size=req.min_segment_size,
                confidence=req.confidence,
                policy=req.policy,
                encoding=req.encoding,
            )
        return _as_cli_json(done.to_dict(), 201)
