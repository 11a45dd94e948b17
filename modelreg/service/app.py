"""The registry service: FastAPI routes under ``/api/v1`` over the same registry functions the CLI calls.

Why FastAPI (on Starlette, on uvicorn): the OpenAPI document the issue asks for comes from the routes
themselves, request bodies are validated once at the boundary by typed models, and it adds nothing at run
time that Starlette alone would not need hand-written.

Every request is one registry call made as the identity the service established (``modelreg.service.auth``);
a name claimed by the caller (``--as``, ``MODELREG_USER``, a header) is never looked at. Each route declares
its registry action and the service checks the caller's effective roles for it before the registry checks
again with the roles it records (deny by default on both sides). State-changing version routes need
``If-Match`` with the version's ``ETag``; the comparison runs inside the registry's write transaction, so
two clients that read the same state cannot both move it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelreg.client import open_registry
from modelreg.domain.roles import PERMISSIONS, allowed
from modelreg.errors import AuthenticationFailed, ModelregError, PermissionDenied
from modelreg.registry import Registry
from modelreg.service import httpsig
from modelreg.service.auth import AuthConfig, Identity, OidcVerifier, SecurityLogLimiter, check_window
from modelreg.service.errors import ServiceError, body, status_of
from modelreg.settings import Settings
from modelreg.store import service_rows

API = "/api/v1"
UPLOADS = f"{API}/uploads"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Refusals worth a line in the security log (a bad request or a missing version is not a refusal).
REFUSALS = {
    "authentication_failed": "authentication",
    "permission_denied": "authorization",
    "segregation_of_duties": "authorization",
    "precondition_failed": "precondition",
    "precondition_required": "precondition",
    "rate_limited": "rate_limit",
    "payload_too_large": "request_size",
    "gate_refused": "refused",
    "invalid_transition": "refused",
    "signature_error": "refused",
    "concurrent_modification": "refused",
}


class GuardMiddleware:
    """Plain ASGI (no body buffering of its own): refuses bodies over the limit with 413 (by Content-Length
    up front, or while streaming) and adds the security headers to every response."""

    def __init__(
        self,
        app,
        max_body: int,
        on_refusal: Callable[[dict, str, str], None],
        max_upload: int | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload or max_body
        self.on_refusal = on_refusal

    def limit(self, scope) -> int:
        return self.max_upload if scope["path"] == UPLOADS else self.max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                names = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", API_CSP))
                if scope["path"].startswith(API) and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        max_body = self.limit(scope)
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > max_body):
            await self._too_large(scope, send_with_headers)
            return
        seen = 0
        refused = False

        async def limited_receive():
            # A streamed body (no Content-Length) is counted as it arrives: past the limit the 413 goes out at
            # once and the application sees a disconnected client, whose own answer is then dropped.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body and not started:
                    refused = True
                    await self._too_large(scope, send_with_headers)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            if not refused:
                await send_with_headers(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _too_large(self, scope, send) -> None:
        message = f"the request body is larger than {self.limit(scope)} bytes"
        await run_in_threadpool(self.on_refusal, scope, "payload_too_large", message)
        response = JSONResponse(body("payload_too_large", message), status_code=413)
        await response(scope, None, send)  # type: ignore[arg-type]


# -- request bodies ---------------------------------------------------------------------------------------
class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class DeployBody(BaseModel):
    replace: str | None = Field(
        default=None, description="retire (default) or validate: what happens to the deployed version"
    )


class RegisterBody(BaseModel):
    version: str | None = None
    run_id: str | None = None
    artifact_path: str = "model"
    owner: str
    risk_tier: str
    purpose: str
    business_line: str | None = None
    model_card: dict | None = None


class DraftBody(BaseModel):
    role: str
    decision: str = "approve"
    comment: str | None = None


class SignedBody(BaseModel):
    role: str
    decision: str = "approve"
    comment: str | None = None
    payload: dict
    signature: dict


def _client(request_or_scope: Any) -> str:
    client = (
        request_or_scope.client if hasattr(request_or_scope, "client") else request_or_scope.get("client")
    )
    if client is None:
        return "unknown"
    return str(client[0] if isinstance(client, (tuple, list)) else client.host)


def etag_of(session, target) -> str:
    """The version's state as a strong ETag: its row (stage, suspended flag, compare-and-set counter) and the
    newest audit event about it (approvals, evaluations and waivers do not touch the row)."""
    rev = service_rows.version_revision(session, target.version.model, target.version.version)
    raw = f"{target.id}:{target.row_version}:{target.stage}:{int(target.suspended)}:{rev}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def create_app(settings: Settings, auth_config: AuthConfig | None = None) -> FastAPI:
    """The service over the registry ``settings`` name. ``auth_config`` defaults to the settings' OIDC
    configuration (``MODELREG_OIDC_*``) with request signatures on."""
    config = auth_config or AuthConfig.from_settings(settings)
    base = open_registry(settings, actor=None)
    base.ensure_schema()  # a missing or old schema stops the start, not the first request
    engine = base.engine
    # Failures are counted in the security log (shared by every worker and process), not in this process.
    limiter = SecurityLogLimiter(
        lambda client, since: service_rows.recent_failures(engine, client, since),
        config.failure_limit,
        config.failure_period,
    )

    def registered_roles(name: str) -> frozenset[str] | None:
        user = service_rows.user_named(engine, name)
        return None if user is None else frozenset(user.roles)

    oidc = OidcVerifier(config.oidc, registered_roles) if config.oidc is not None else None

    def record(
        kind: str,
        code: str,
        *,
        client: str,
        subject: str | None,
        method: str | None,
        path: str | None,
        detail: str,
    ) -> None:
        # the security log must never turn a refusal into a 500
        with contextlib.suppress(Exception):
            service_rows.record_security_event(
                engine,
                kind=kind,
                code=code,
                client=client,
                subject=subject,
                method=method,
                path=path,
                detail=detail,
            )

    def on_size_refusal(scope: dict, code: str, message: str) -> None:
        record(
            REFUSALS[code],
            code,
            client=_client(scope),
            subject=None,
            method=scope.get("method"),
            path=scope.get("path"),
            detail=message,
        )

    app = FastAPI(
        title="modelreg registry service (模型与算法风险登记库服务)",
        version="1",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        GuardMiddleware,
        max_body=config.max_body_bytes,
        max_upload=config.max_upload_bytes,
        on_refusal=on_size_refusal,
    )
    app.state.registry = base
    app.state.oidc = oidc

    # -- errors -------------------------------------------------------------------------------------------
    def _refused(request: Request, code: str, message: str) -> None:
        kind = REFUSALS.get(code)
        if kind is None:
            return
        ident = getattr(request.state, "identity", None)
        record(
            kind,
            code,
            client=_client(request),
            subject=ident.user if ident else None,
            method=request.method,
            path=request.url.path,
            detail=message,
        )

    @app.exception_handler(ModelregError)
    async def _modelreg_error(request: Request, exc: ModelregError) -> JSONResponse:
        await run_in_threadpool(_refused, request, exc.code, exc.message)
        headers = dict(getattr(exc, "headers", {}) or {})
        if exc.code == "authentication_failed":
            headers.setdefault("WWW-Authenticate", 'Bearer, Signature realm="modelreg"')
        return JSONResponse(
            body(exc.code, exc.message, exc.details), status_code=status_of(exc.code), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return JSONResponse(
            body("bad_input", f"{where or 'request'}: {first.get('msg', 'invalid')}"), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_input")
        return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log (uvicorn), never to the client.
        return JSONResponse(
            body("internal_error", f"internal error ({type(exc).__name__}); the service logged it"),
            status_code=500,
        )

    # -- identity -----------------------------------------------------------------------------------------
    def verify_signature(method: str, url: str, headers: dict[str, str], raw: bytes | None) -> Identity:
        parsed = httpsig.parse(headers["signature-input"], headers.get("signature", ""))
        check_window(parsed.created, config.window_seconds)
        user = service_rows.user_by_key_id(engine, parsed.keyid)
        if user is None or not user.public_key_pem:
            raise AuthenticationFailed(f"key {parsed.keyid!r} is not registered for any user")
        httpsig.verify(parsed, user.public_key_pem, method, url, headers.get("content-digest"), raw)
        created = datetime.fromtimestamp(parsed.created, UTC)
        expires = created + timedelta(seconds=2 * config.window_seconds)
        if not service_rows.claim_nonce(engine, parsed.keyid, parsed.nonce, created, expires):
            raise AuthenticationFailed(
                "this signed request was already used (nonce seen before): replay refused"
            )
        return Identity(user=user.name, roles=frozenset(user.roles), method="signature", key_id=parsed.keyid)

    async def identity(request: Request) -> Identity:
        client = _client(request)
        wait = await run_in_threadpool(limiter.retry_after, client)
        if wait is not None:
            exc = ServiceError(
                "rate_limited", f"too many failed authentications from {client}; retry in {wait} s"
            )
            exc.headers = {"Retry-After": str(wait)}  # type: ignore[attr-defined]
            raise exc
        auth = request.headers.get("authorization", "")
        try:
            if auth[:7].lower() == "bearer ":
                if oidc is None:
                    raise AuthenticationFailed(
                        "this service accepts no bearer tokens (no OIDC issuer is configured)"
                    )
                ident = await run_in_threadpool(oidc.identity, auth[7:].strip())
            elif "signature-input" in request.headers:
                # The upload route streams its body to disk and checks it against the signed Content-Digest
                # itself (httpsig.verify with body None); every other body is read and checked here.
                raw = None if request.scope["path"] == UPLOADS else await request.body()
                ident = await run_in_threadpool(
                    verify_signature, request.method, str(request.url), dict(request.headers), raw
                )
            else:
                raise AuthenticationFailed(
                    "authentication required: an OIDC bearer token or a request signed with your registered key"
                )
        except AuthenticationFailed:
            limiter.failed(client)
            raise
        request.state.identity = ident
        return ident

    def requires(action: str) -> Callable:
        if action not in PERMISSIONS:  # a route without a declared permission cannot exist
            raise RuntimeError(f"route action {action!r} has no declared permission")

        async def dep(ident: Identity = Depends(identity)) -> Identity:
            if not allowed(action, ident.roles):
                rule = PERMISSIONS[action]
                raise PermissionDenied(
                    f"{action} needs the role {' or '.join(sorted(rule))}; {ident.user!r} may use "  # type: ignore[arg-type]
                    f"{', '.join(sorted(ident.roles)) or 'no roles'} here"
                )
            return ident

        return dep

    def as_user(ident: Identity) -> Registry:
        return base.as_user(ident.user)

    def with_if_match(reg: Registry, if_match: str | None) -> Registry:
        if if_match is None:
            raise ServiceError(
                "precondition_required",
                "state-changing version requests need If-Match with the ETag of the version you read (GET it first)",
            )
        wanted = {t.strip() for t in if_match.split(",")}

        def check(tx) -> None:
            if tx.target is None:
                return
            current = etag_of(tx.session, tx.target)
            if current not in wanted and "*" not in wanted:
                raise ServiceError(
                    "precondition_failed",
                    f"{tx.target.version.model} {tx.target.version.version} changed since you read it "
                    f"(ETag now {current}): read it again and decide on what it is now",
                )

        reg.change_checks.append(check)
        return reg

    def current_etag(reg: Registry, model: str, version: str) -> str:
        with reg.reading(model=model, version=version) as rd:
            return etag_of(rd.session, rd.target)

    def moved(reg: Registry, model: str, version: str, result: Any, status_code: int = 200) -> JSONResponse:
        """The result of a version-scoped write with the version's new ETag (the next If-Match)."""
        return JSONResponse(
            result.to_dict() if hasattr(result, "to_dict") else result,
            status_code=status_code,
            headers={"ETag": current_etag(reg, model, version)},
        )

    # -- reads --------------------------------------------------------------------------------------------
    @app.get(f"{API}/whoami", tags=["identity"])
    def whoami(ident: Identity = Depends(identity)) -> dict:
        return {
            "user": ident.user,
            "roles": sorted(ident.roles),
            "method": ident.method,
            "key_id": ident.key_id,
        }

    @app.get(f"{API}/versions", tags=["read"])
    def list_versions(
        stage: str | None = Query(None),
        model: str | None = Query(None),
        ident: Identity = Depends(requires("list")),
    ) -> list[dict]:
        return [v.to_dict() for v in as_user(ident).list(stage, model)]

    @app.get(f"{API}/models/{{model}}/versions/{{version}}", tags=["read"])
    def show(model: str, version: str, ident: Identity = Depends(requires("show"))) -> JSONResponse:
        reg = as_user(ident)
        tag = current_etag(reg, model, version)  # first: a change in between makes this tag stale, never new
        payload = {
            "version": reg.show(model, version).to_dict(),
            "history": [h.to_dict() for h in reg.history(model, version)],
            "datasets": [d.to_dict() for d in reg.datasets(model, version)],
        }
        return JSONResponse(payload, headers={"ETag": tag})

    @app.get(f"{API}/models/{{model}}/versions/{{version}}/history", tags=["read"])
    def history(model: str, version: str, ident: Identity = Depends(requires("show"))) -> list[dict]:
        return [h.to_dict() for h in as_user(ident).history(model, version)]

    @app.get(f"{API}/models/{{model}}/versions/{{version}}/findings", tags=["read"])
    def findings(model: str, version: str, ident: Identity = Depends(requires("findings"))) -> list[dict]:
        from modelreg.governance.service import latest

        return [e.to_dict() for e in latest(as_user(ident), model, version)]

    @app.get(f"{API}/models/{{model}}/versions/{{version}}/records", tags=["read"])
    def signed_records(
        model: str, version: str, kind: str | None = Query(None), ident: Identity = Depends(requires("show"))
    ) -> list[dict]:
        """Approvals, rejections, attestations and waivers, each with its signature and whether it counts."""
        from modelreg.governance.service import signed

        return [r.to_dict() for r in signed(as_user(ident), model, version, kind)]

    @app.get(f"{API}/models/{{model}}/versions/{{version}}/gate", tags=["read"])
    def gate(
        model: str, version: str, action: str = Query("deploy"), ident: Identity = Depends(requires("show"))
    ) -> list[dict]:
        from modelreg.client import Client

        return [u.to_dict() for u in Client(as_user(ident)).gate_check(model, version, action)]

    @app.get(f"{API}/audit/log", tags=["audit"])
    def audit_log(
        model: str | None = Query(None),
        version: str | None = Query(None),
        limit: int | None = Query(None, ge=1),
        ident: Identity = Depends(requires("audit.log")),
    ) -> list[dict]:
        return [e.to_dict() for e in as_user(ident).audit_log(model, version, limit=limit)]

    @app.get(f"{API}/audit/verify", tags=["audit"])
    def audit_verify(ident: Identity = Depends(requires("audit.verify"))) -> dict:
        return as_user(ident).audit_verify().to_dict()

    @app.get(f"{API}/audit/proof/{{seq}}", tags=["audit"])
    def audit_proof(
        seq: int, size: int | None = Query(None, ge=1), ident: Identity = Depends(requires("audit.proof"))
    ) -> dict:
        from modelreg.audit.proofs import inclusion_proof

        if seq < 0:
            raise ServiceError("bad_input", "seq must be >= 0")
        return inclusion_proof(as_user(ident), seq, size)

    # -- writes -------------------------------------------------------------------------------------------
    @app.post(f"{API}/models/{{model}}/versions", tags=["lifecycle"], status_code=201)
    def register(model: str, req: RegisterBody, ident: Identity = Depends(requires("register"))) -> dict:
        from modelreg.errors import BadInput
        from modelreg.integrations.mlflow.registration import register_from_mlflow

        if (req.version is None) == (req.run_id is None):
            raise BadInput("give exactly one of version or run_id")
        mv = register_from_mlflow(
            as_user(ident),
            model,
            req.version,
            run_id=req.run_id,
            artifact_path=req.artifact_path,
            owner=req.owner,
            risk_tier=req.risk_tier,
            purpose=req.purpose,
            business_line=req.business_line,
            model_card=req.model_card,
        )
        return mv.to_dict()

    def _move_route(
        action: str, call: Callable[[Registry, str, str, Any], Any], body_model: type | None
    ) -> None:
        path = f"{API}/models/{{model}}/versions/{{version}}/{action.replace('_', '-')}"

        if body_model is None:

            def route(
                model: str,
                version: str,
                if_match: str | None = Header(None),
                ident: Identity = Depends(requires(action)),
            ) -> JSONResponse:
                reg = with_if_match(as_user(ident), if_match)
                return moved(reg, model, version, call(reg, model, version, None))

        else:

            def route(  # type: ignore[misc]
                model: str,
                version: str,
                req: body_model,  # type: ignore[valid-type]
                if_match: str | None = Header(None),
                ident: Identity = Depends(requires(action)),
            ) -> JSONResponse:
                reg = with_if_match(as_user(ident), if_match)
                return moved(reg, model, version, call(reg, model, version, req))

        if body_model is not None:  # the closure's annotation is a string this module cannot resolve
            route.__annotations__["req"] = body_model
        route.__name__ = action
        app.post(path, tags=["lifecycle"], name=action)(route)

    _move_route("submit", lambda r, m, v, _: r.submit(m, v), None)
    _move_route("send_back", lambda r, m, v, b: r.send_back(m, v, reason=b.reason), Reason)
    _move_route("deploy", lambda r, m, v, b: r.deploy(m, v, replace=b.replace), DeployBody)
    _move_route("suspend", lambda r, m, v, b: r.suspend(m, v, reason=b.reason), Reason)
    _move_route("resume", lambda r, m, v, b: r.resume(m, v, reason=b.reason), Reason)
    _move_route("retire", lambda r, m, v, b: r.retire(m, v, reason=b.reason), Reason)

    @app.post(f"{API}/models/{{model}}/versions/{{version}}/approvals/draft", tags=["governance"])
    def approval_draft(model: str, version: str, req: DraftBody, ident: Identity = Depends(identity)) -> dict:
        """The payload to sign on your own machine (RFC 8785 JSON), then POST it to ``approvals``."""
        from modelreg.governance.service import approval_draft as draft

        _require(ident, "approve" if req.decision != "reject" else "reject", req.role)
        return draft(
            as_user(ident), model, version, role=req.role, comment=req.comment, decision=req.decision
        )

    @app.post(f"{API}/models/{{model}}/versions/{{version}}/approvals", tags=["governance"], status_code=201)
    def approve(
        model: str,
        version: str,
        req: SignedBody,
        if_match: str | None = Header(None),
        ident: Identity = Depends(identity),
    ) -> JSONResponse:
        """Record an approval or rejection the signer signed with their registered key."""
        from modelreg.governance.service import approve as record_approval

        _require(ident, "approve" if req.decision != "reject" else "reject", req.role)
        reg = with_if_match(as_user(ident), if_match)
        result = record_approval(
            reg,
            model,
            version,
            role=req.role,
            comment=req.comment,
            decision=req.decision,
            presigned={"payload": req.payload, "signature": req.signature},
        )
        response = moved(reg, model, version, result)
        response.status_code = 201
        return response

    def _require(ident: Identity, action: str, role: str) -> None:
        if not allowed(action, ident.roles) or role not in ident.roles:
            raise PermissionDenied(
                f"{action} as {role} needs that role in this session; {ident.user!r} may use "
                f"{', '.join(sorted(ident.roles)) or 'no roles'} here"
            )

    from modelreg.service import operations

    operations.add_routes(
        app,
        operations.Helpers(
            base=base,
            identity=identity,
            requires=requires,
            as_user=as_user,
            with_if_match=with_if_match,
            moved=moved,
            require_role=_require,
        ),
    )

    def web_event(kind: str, code: str, client: str, path: str, detail: str) -> None:
        record(kind, code, client=client, subject=None, method="POST", path=path, detail=detail)

    web_limiter = SecurityLogLimiter(
        lambda client, since: service_rows.recent_failures(engine, client, since), 10, 300.0
    )
    _mount_web(app, base, oidc, web_limiter, web_event, DbSessionStore(engine))
    return app


class DbSessionStore:
    """The web view's sessions in the registry's database (``web_sessions``): the same interface as
    ``modelreg.web.app.SessionStore``, shared by every worker and process of the service."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def create(self, subject: str, roles: frozenset[str], expires: datetime):
        import secrets

        from modelreg.web.app import WebSession

        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        service_rows.add_web_session(
            self.engine, sid, subject=subject, roles=sorted(roles), csrf=csrf, expires_at=expires
        )
        return sid, WebSession(subject, frozenset(roles), expires, csrf)

    def get(self, sid: str | None):
        from modelreg.web.app import WebSession

        if not sid or len(sid) > 200:
            return None
        row = service_rows.web_session(self.engine, sid)
        if row is None:
            return None
        return WebSession(row["subject"], frozenset(row["roles"]), row["expires_at"], row["csrf"])

    def drop(self, sid: str | None) -> None:
        if sid and len(sid) <= 200:
            service_rows.drop_web_session(self.engine, sid)


def _mount_web(
    app: FastAPI,
    base: Registry,
    oidc: OidcVerifier | None,
    failures: SecurityLogLimiter,
    on_event: Callable[[str, str, str, str, str], None],
    sessions: DbSessionStore,
) -> None:
    """The auditor's web view (``modelreg.web``), when that package is installed, at ``/ui``."""
    from importlib.util import find_spec

    if find_spec("modelreg.web") is None:
        return
    import modelreg.web as web

    def verify_token(token: str) -> tuple[str, frozenset[str]]:
        if oidc is None:
            raise AuthenticationFailed("no OIDC issuer is configured for this service")
        return oidc(token)

    app.mount(
        "/ui",
        web.create_web_app(
            open_registry=base.as_user,
            verify_token=verify_token,
            failures=failures,
            on_event=on_event,
            sessions=sessions,
        ),
    )
