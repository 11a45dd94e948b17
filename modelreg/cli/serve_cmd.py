"""``modelreg serve``: the shared registry service (FastAPI on uvicorn; needs ``modelreg[service]``)."""

from __future__ import annotations

import click

from modelreg.cli.common import CliContext, pass_ctx

MSG_NO_AS = (
    "modelreg serve establishes every caller's identity itself (OIDC token or signed request): "
    "--as / MODELREG_USER are for the embedded single-user mode and are refused here"
)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--max-body",
    default=1_048_576,
    show_default=True,
    type=click.IntRange(1024),
    help="Request size limit (bytes).",
)
@click.option(
    "--max-upload",
    default=256 * 1_048_576,
    show_default=True,
    type=click.IntRange(1024),
    help="Size limit of a data upload (CSV/Parquet for attach-data and evaluations), bytes.",
)
@click.option(
    "--sweep",
    is_flag=True,
    default=False,
    help="Run the retention sweep of the service's working files once (uploads unused for "
    "MODELREG_SERVICE_UPLOAD_DAYS, evidence packs older than MODELREG_SERVICE_PACK_HOURS), print what it "
    "removed and exit; the service also sweeps at start and hourly.",
)
@pass_ctx
def serve_cmd(
    obj: CliContext, host: str, port: int, workers: int, max_body: int, max_upload: int, sweep: bool
) -> None:
    """Serve the registry over HTTP: REST API under /api/v1 (OpenAPI at /api/v1/openapi.json)."""
    from modelreg.errors import BadInput, ConfigError, MissingExtra

    if obj.actor is not None or obj.settings.user_explicit:
        raise BadInput(MSG_NO_AS)
    if obj.settings.url:
        raise ConfigError(
            "MODELREG_URL is set: this process would be a client of another service, not serve one"
        )
    if sweep:
        _sweep_once(obj.settings)
        return
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise MissingExtra(exc.name or "fastapi", "service") from None
    settings = obj.settings
    _refuse_privileged(settings)
    from modelreg.service.app import create_app
    from modelreg.service.auth import AuthConfig

    config = AuthConfig.from_settings(settings, max_body_bytes=max_body, max_upload_bytes=max_upload)
    app = create_app(settings, config)
    if workers > 1:
        click.echo(
            "note: --workers > 1 runs one process per worker; nonces are shared through the database",
            err=True,
        )
    click.echo(
        f"modelreg service on http://{host}:{port}{'/api/v1'} (registry {_safe(settings.database_url)})",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="info", proxy_headers=False)


def _sweep_once(settings) -> None:
    """``serve --sweep``: one retention sweep, each removal printed, one line in the security/operations log."""
    from modelreg.service import retention
    from modelreg.store.engine import make_engine

    report = retention.sweep(
        settings.home, upload_days=settings.service_upload_days, pack_hours=settings.service_pack_hours
    )
    engine = make_engine(settings.database_url)
    try:
        retention.log(engine, report, subject="modelreg serve --sweep")
    finally:
        engine.dispose()
    for line in report.removed:
        click.echo(f"removed {line}")
    click.echo(report.summary())


def _refuse_privileged(settings) -> None:
    """Production: never serve as a PostgreSQL superuser or as the owner of the audit tables (whoever owns them
    can switch off their append-only triggers); the application role of `modelreg init --pg-roles` instead."""
    if settings.mode != "production" or not settings.database_url.startswith(("postgresql", "postgres")):
        return
    from modelreg.errors import ConfigError
    from modelreg.store.engine import make_engine
    from modelreg.store.pg_roles import privileged_connection

    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            why = privileged_connection(conn)
    finally:
        engine.dispose()
    if why is not None:
        raise ConfigError(
            f"MODELREG_MODE=production: {why}; serve as the application role that `modelreg init --pg-roles` creates (modelreg_app)"
        )


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable url)"
