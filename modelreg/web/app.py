"""Routes, sessions and security headers of the auditor's web view; the HTML lives in ``pages``."""

from __future__ import annotations

import hmac
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from modelreg import clock
from modelreg.errors import BadInput, ModelregError, NotFound
from modelreg.web import pages

# Roles that may look (read only here, whatever they may do elsewhere).
VIEW_ROLES = frozenset({"auditor", "validator", "approver", "admin"})
SESSION_COOKIE = "modelreg_session"
LOGIN_CSRF_COOKIE = "modelreg_login_csrf"
MAX_SESSION = timedelta(hours=8)
MAX_FORM_BYTES = 16 * 1024  # a pasted JWT is a few KB; anything larger is not a login
PAGE_SIZE = 50
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
# Paths (inside the mount) that accept a POST; every other write method anywhere is refused with 405.
POST_PATHS = frozenset({"/login", "/logout"})


@dataclass
class WebSession:
    subject: str
    roles: frozenset[str]
    expires: datetime
    csrf: str


class SessionStore:
    """Server-side sessions keyed by a random id: the cookie carries nothing but that id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, WebSession] = {}

    def create(self, subject: str, roles: frozenset[str], expires: datetime) -> tuple[str, WebSession]:
        sid = secrets.token_urlsafe(32)
        s = WebSession(subject, roles, expires, secrets.token_urlsafe(32))
        with self._lock:
            self._by_id[sid] = s
        return sid, s

    def get(self, sid: str | None) -> WebSession | None:
        if not sid:
            return None
        with self._lock:
            s = self._by_id.get(sid)
            if s is not None and s.expires <= clock.now():
                del self._by_id[sid]
                return None
            return s

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


class FailureLimiter:
    """At most ``limit`` failed logins per client address in ``window``: a token cannot be guessed by flooding."""

    def __init__(self, limit: int = 10, window: timedelta = timedelta(minutes=5)) -> None:
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._fails: dict[str, list[datetime]] = {}

    def _recent(self, who: str, now: datetime) -> list[datetime]:
        kept = [t for t in self._fails.get(who, []) if now - t < self.window]
        self._fails[who] = kept
        return kept

    def blocked(self, who: str) -> bool:
        with self._lock:
            return len(self._recent(who, clock.now())) >= self.limit

    def failed(self, who: str) -> None:
        with self._lock:
            self._recent(who, clock.now()).append(clock.now())


class SecurityHeaders:
    """ASGI middleware: security headers on every response, and only GET/HEAD (plus POST to login/logout)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = _inner_path(scope)
        if method not in ("GET", "HEAD") and not (method == "POST" and path in POST_PATHS):
            resp = HTMLResponse(
                pages.error_page("405", "只读视图不接受此请求 / This read-only view accepts no such request"),
                status_code=405,
                headers={"allow": "GET, HEAD"},
            )
            await _with_headers(resp)(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_headers(resp: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        resp.headers[k] = v
    resp.headers["cache-control"] = "no-store"
    return resp


def _inner_path(scope: dict) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    # Starlette's Mount keeps the full path in "path" and the mount prefix in "root_path".
    return path[len(root) :] if root and path.startswith(root) else path


def create_web_app(
    open_registry: Callable[[str], Any],
    verify_token: Callable[[str], tuple[str, frozenset[str]]],
    *,
    secure_cookies: bool = True,
    failures: Any = None,
    on_event: Callable[[str, str, str, str, str], None] | None = None,
    sessions: Any = None,
) -> Any:
    """The read-only web view as an ASGI app (mount it at ``/ui``). ``open_registry(actor)`` gives a registry
    acting as that user; ``verify_token(jwt)`` returns (subject, roles) or raises a modelreg error.
    ``failures`` (``blocked(address)``, ``failed(address)``) limits failed logins, per process by default; the
    registry service passes one counted in its security log. ``on_event(kind, code, address, path, detail)``
    hears every refused login (the service writes it to the security log). ``sessions`` (``create``, ``get``,
    ``drop`` as ``SessionStore``) keeps sign-ins, in process memory by default; the service keeps them in its
    database, so every worker knows them and a logout ends them everywhere."""
    sessions = sessions if sessions is not None else SessionStore()
    failures = failures if failures is not None else FailureLimiter()

    def log(request: Request, kind: str, code: str, detail: str) -> None:
        if on_event is not None:
            who = request.client.host if request.client else "?"
            on_event(kind, code, who, request.url.path, detail)

    registries: dict[str, Any] = {}
    reg_lock = threading.Lock()

    def registry_for(actor: str) -> Any:
        # One registry (one engine, one connection pool) per signed-in user, not one per request.
        with reg_lock:
            if actor not in registries:
                registries[actor] = open_registry(actor)
            return registries[actor]

    def base(request: Request) -> str:
        return request.scope.get("root_path", "")

    def current(request: Request) -> WebSession | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def to_login(request: Request) -> Response:
        return RedirectResponse(f"{base(request)}/login", status_code=303)

    def page(request: Request, render: Callable[[WebSession, Any], str]) -> Response:
        s = current(request)
        if s is None:
            return to_login(request)
        if not (s.roles & VIEW_ROLES):
            return HTMLResponse(
                pages.error_page(
                    "403", "您的角色无权查看 / Your roles do not allow this view", ctx(request, s)
                ),
                status_code=403,
            )
        try:
            return HTMLResponse(render(s, registry_for(s.subject)))
        except NotFound as exc:
            return HTMLResponse(pages.error_page("404", exc.message, ctx(request, s)), status_code=404)
        except BadInput as exc:
            return HTMLResponse(pages.error_page("400", exc.message, ctx(request, s)), status_code=400)
        except ModelregError as exc:
            # A refused read (permission) or registry state problem: the message, never a traceback.
            return HTMLResponse(pages.error_page("403", exc.message, ctx(request, s)), status_code=403)

    def ctx(request: Request, s: WebSession | None) -> pages.Ctx:
        return pages.Ctx(base(request), s.subject if s else None, s.csrf if s else None, clock.now())

    # -- login / logout --------------------------------------------------------------------------------
    async def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        resp = HTMLResponse(pages.login_page(ctx(request, None), token, request.query_params.get("error")))
        resp.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            max_age=600,
            path=base(request) or "/",
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
        )
        return resp

    async def read_form(request: Request) -> dict[str, str] | None:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return None
        # Parsed here (urlencoded only): the two forms are tiny, and python-multipart is not needed for them.
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {}
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def refused(request: Request, why: str, status: int = 403) -> Response:
        return HTMLResponse(
            pages.error_page(str(status), why, ctx(request, current(request))), status_code=status
        )

    async def login(request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return refused(request, "请求过大 / Request too large", 413)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, form.get("csrf", "")):
            log(request, "precondition", "csrf_failed", "web login without a matching CSRF token")
            return refused(request, "CSRF 校验失败 / CSRF check failed")
        who = request.client.host if request.client else "?"
        if failures.blocked(who):
            log(request, "rate_limit", "rate_limited", "web login refused: too many failed logins")
            return refused(
                request, "登录失败次数过多，请稍后再试 / Too many failed logins; try again later", 429
            )
        try:
            subject, roles = verify_token(form.get("token", "").strip())
        except ModelregError as exc:
            failures.failed(who)
            log(request, "authentication", "authentication_failed", f"web login: {exc.message}")
            return RedirectResponse(f"{base(request)}/login?error=1", status_code=303)
        expiry = clock.now() + MAX_SESSION
        exp = _token_exp(form.get("token", ""))
        if exp is not None and exp < expiry:
            expiry = exp
        sid, _ = sessions.create(subject, frozenset(roles), expiry)
        resp = RedirectResponse(f"{base(request)}/inventory", status_code=303)
        resp.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=max(1, int((expiry - clock.now()).total_seconds())),
            path=base(request) or "/",
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
        )
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path=base(request) or "/")
        return resp

    async def logout(request: Request) -> Response:
        s = current(request)
        form = await read_form(request)
        if form is None:
            return refused(request, "请求过大 / Request too large", 413)
        if s is None:
            return to_login(request)
        if not hmac.compare_digest(s.csrf, form.get("csrf", "")):
            return refused(request, "CSRF 校验失败 / CSRF check failed")
        sessions.drop(request.cookies.get(SESSION_COOKIE))
        resp = to_login(request)
        resp.delete_cookie(SESSION_COOKIE, path=base(request) or "/")
        return resp

    # -- pages ------------------------------------------------------------------------------------------
    async def root(request: Request) -> Response:
        return RedirectResponse(f"{base(request)}/inventory", status_code=303)

    async def inventory(request: Request) -> Response:
        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("stage", "tier", "owner", "overdue")}

        def render(s: WebSession, reg: Any) -> str:
            from modelreg.operations.inventory import rows

            data = rows(reg)
            owners = sorted({r["owner"] for r in data})
            shown = [r for r in data if _matches(r, filters)]
            return pages.inventory_page(ctx(request, s), shown, len(data), filters, owners)

        return page(request, render)

    async def version(request: Request) -> Response:
        name, ver = request.path_params["model"], request.path_params["version"]

        def render(s: WebSession, reg: Any) -> str:
            from modelreg.client import Client
            from modelreg.governance.service import load_policy, signed
            from modelreg.operations.findings import list_findings

            view = Client(reg).show(name, ver)
            pack = load_policy(reg)
            records = signed(reg, name, ver)
            tracked = list_findings(reg, model=name, version=ver)
            return pages.version_page(ctx(request, s), view, pack, records, tracked)

        return page(request, render)

    async def audit(request: Request) -> Response:
        try:
            pageno = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            pageno = 1

        def render(s: WebSession, reg: Any) -> str:
            events = reg.audit_log()
            pages_total = max(1, -(-len(events) // PAGE_SIZE))
            n = min(pageno, pages_total)
            # Newest first: an auditor looks at what happened lately.
            newest = list(reversed(events))
            return pages.audit_page(
                ctx(request, s), newest[(n - 1) * PAGE_SIZE : n * PAGE_SIZE], n, pages_total, len(events)
            )

        return page(request, render)

    async def proof(request: Request) -> Response:
        raw = request.path_params["seq"]

        def render(s: WebSession, reg: Any) -> str:
            from modelreg.audit import log as audit_log
            from modelreg.audit import merkle
            from modelreg.audit.proofs import inclusion_proof

            if not raw.isdigit():
                raise BadInput(f"event number must be a whole number. Got {raw!r} instead.")
            p = inclusion_proof(reg, int(raw))
            tree_hash, _ = audit_log.crypto_settings(reg.engine)
            ok = merkle.verify_inclusion(
                bytes.fromhex(p["leaf_hash"]),
                p["seq"],
                p["tree_size"],
                [bytes.fromhex(h) for h in p["proof"]],
                bytes.fromhex(p["root_hash"]),
                tree_hash=tree_hash,
            )
            return pages.proof_page(ctx(request, s), p, ok, tree_hash)

        return page(request, render)

    async def checkpoint(request: Request) -> Response:
        def render(s: WebSession, reg: Any) -> str:
            from modelreg.audit.checkpoint import Checkpoint
            from modelreg.store import repo

            with reg.reading() as rd:
                body = repo.latest_checkpoint(rd.session)
            if body is None:
                return pages.checkpoint_page(ctx(request, s), None, None)
            with tempfile.TemporaryDirectory(prefix="modelreg-web-") as tmp:
                path = Path(tmp) / "checkpoint.json"
                Checkpoint.from_dict(body, source="the registry's latest checkpoint").save(path)
                report = reg.audit_verify(path, tables=False)
            return pages.checkpoint_page(ctx(request, s), body, report)

        return page(request, render)

    async def evidence(request: Request) -> Response:
        s = current(request)
        if s is None:
            return to_login(request)
        if not (s.roles & VIEW_ROLES):
            return refused(request, "您的角色无权查看 / Your roles do not allow this view")
        name, ver = request.path_params["model"], request.path_params["version"]
        from modelreg.evidence.pack import build_pack, safe_relpath

        try:
            with tempfile.TemporaryDirectory(prefix="modelreg-web-") as tmp:
                out = Path(tmp) / "pack.zip"
                build_pack(registry_for(s.subject), name, ver, out)
                data = out.read_bytes()  # the temp dir goes away; a pack is a few MB
        except NotFound as exc:
            return refused(request, exc.message, 404)
        except ModelregError as exc:
            return refused(request, exc.message)
        filename = safe_relpath(f"{name}-{ver}-evidence.zip").replace("/", "_")
        return Response(
            data,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    async def style(request: Request) -> Response:
        return Response(pages.CSS, media_type="text/css")

    routes = [
        Route("/", root),
        Route("/style.css", style),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/inventory", inventory),
        Route("/version/{model}/{version}", version),
        Route("/audit", audit),
        Route("/audit/proof/{seq}", proof),
        Route("/audit/checkpoint", checkpoint),
        Route("/evidence/{model}/{version}", evidence),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse(pages.error_page("404", "页面不存在 / No such page"), status_code=404)

    async def internal(request: Request, exc: Exception) -> Response:
        return HTMLResponse(pages.error_page("500", "内部错误 / Internal error"), status_code=500)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 500: internal})
    app.add_middleware(SecurityHeaders)
    return app


def _token_exp(token: str) -> datetime | None:
    """The ``exp`` of a token verify_token has just accepted (read without re-verifying: it was verified)."""
    import base64
    import json
    from datetime import UTC

    try:
        part = token.strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def _matches(row: dict, f: dict[str, str]) -> bool:
    if f["stage"] and row["stage"] != f["stage"]:
        return False
    if f["tier"] and row["risk_tier"] != f["tier"]:
        return False
    if f["owner"] and row["owner"] != f["owner"]:
        return False
    return not (f["overdue"] in ("1", "yes", "true") and row["due_status"] != "overdue")


def query(filters: dict[str, str]) -> str:
    return urlencode({k: v for k, v in filters.items() if v})
