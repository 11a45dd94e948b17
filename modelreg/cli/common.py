"""Shared CLI plumbing: the context object, output formatting, shared options."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click


@dataclass
class CliContext:
    actor: str | None = None
    debug: bool = False
    _settings: Any = None
    _registry: Any = None
    extras: dict = field(default_factory=dict)

    @property
    def settings(self):
        if self._settings is None:
            from modelreg import settings

            self._settings = settings.load()
        return self._settings

    def registry(self):
        if self._registry is None:
            from modelreg.api import open_registry

            self._registry = open_registry(self.settings, actor=self.actor)
        return self._registry


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(fn)


def _default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "isoformat"):
        from modelreg import clock

        return clock.isoformat(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "value"):
        return o.value
    return str(o)


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_default, ensure_ascii=False, indent=2, sort_keys=True))


def emit(obj: Any, as_json: bool, human: Callable[[Any], str] | str) -> None:
    if as_json:
        emit_json(obj)
    else:
        click.echo(human(obj) if callable(human) else human)


def table(rows: list[list[Any]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(c) if c is not None else "" for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def progress(as_json: bool, stream: Any = None) -> Callable[[str], None]:
    """Where a long command says what it is doing: on a terminal only. Under --json, or when stderr is a
    pipe or a file (cron, CI, a scheduler's log), it says nothing, so logs hold results, not chatter."""
    import sys

    out = stream if stream is not None else sys.stderr
    try:
        interactive = bool(out.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        interactive = False
    if as_json or not interactive:
        return lambda _message: None

    def say(message: str) -> None:
        click.echo(f"  … {message}", err=True)

    return say


class _SilenceMlflowOnImport:
    """A meta-path hook: MLflow prints "Successfully registered model …" and its INFO lines through its own
    stream (``eprint``), not through levels a caller could raise; under --json that noise must not reach
    stderr. The hook switches that stream off when MLflow's logging module is imported (MLflow is imported
    lazily, often deep inside a command), or at once when it already is."""

    target = "mlflow.utils.logging_utils"

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.target:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            module.disable_logging()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def quiet_mlflow():
    """Context manager: MLflow's event stream off for the block (restored afterwards)."""
    import contextlib
    import sys

    @contextlib.contextmanager
    def scope():
        loaded = sys.modules.get(_SilenceMlflowOnImport.target)
        hook = _SilenceMlflowOnImport()
        was_enabled = True
        if loaded is not None:
            was_enabled = loaded.MLFLOW_LOGGING_STREAM.enabled
            loaded.disable_logging()
        else:
            sys.meta_path.insert(0, hook)
        try:
            yield
        finally:
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)
            module = sys.modules.get(_SilenceMlflowOnImport.target)
            if module is not None and was_enabled:
                module.enable_logging()

    return scope()
