"""Shared CLI plumbing: the context object, output formatting, shared options."""

from __future__ import annotations

import json
import re
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
            if self.settings.url:  # MODELREG_URL: the shared service, never the database
                from modelreg.service.client import RemoteRegistry

                self._registry = RemoteRegistry(self.settings, actor=self.actor)
                return self._registry
            from modelreg.client import open_registry

            self._registry = open_registry(self.settings, actor=self.actor)
        return self._registry


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)

SERVER_PREFIX = "server:"
MSG_SERVER_LOCAL = (
    "{option} {value} names a file in a data root of the registry service: it works over MODELREG_URL "
    "only; here, give the file's own path"
)


class DataPath(click.Path):
    """A data option's value: a local path (``click.Path``'s checks), or over ``MODELREG_URL`` a
    ``server:<root>/<relative path>`` reference the service resolves in its own data roots. Locally such a
    reference is one line of bad input (exit 2). ``check_path=False``: any text passes (``monitor --data``
    also takes duckdb:/spark: tables)."""

    def __init__(self, *, check_path: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.check_path = check_path

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value.startswith(SERVER_PREFIX):
            obj = ctx.find_object(CliContext) if ctx is not None else None
            if obj is None or not obj.settings.url:
                from modelreg.errors import BadInput

                option = param.opts[0] if param is not None and param.opts else "the data"
                raise BadInput(MSG_SERVER_LOCAL.format(option=option, value=value))
            return value
        if not self.check_path:
            return value
        return super().convert(value, param, ctx)


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
    if all(len(r) == len(headers) for r in cells):
        # One format string for every line: `modelreg list` prints 10,000 of them.
        widths = [
            max(len(h), max(map(len, col))) for h, col in zip(headers, zip(*cells, strict=True), strict=True)
        ]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join(
            [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
            + [fmt.format(*r).rstrip() for r in cells]
        )
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


#: Kept here (not imported from modelreg.datasets) so ``--help`` stays light; tests check they agree.
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030")


def encoding_option(fn: Callable) -> Callable:
    return click.option(
        "--encoding",
        metavar="|".join(ENCODINGS),
        help="Text encoding of CSV files (default utf-8; a UTF-8 byte-order mark is detected). "
        "Bank exports are often gbk or gb18030.",
    )(fn)


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


# What MLflow prints through its own event stream (``eprint`` and its logging handler), which writes to
# whatever ``sys.stderr`` is at the time and which MLflow itself switches back on inside log_model: a
# caller cannot silence it by levels. Under --json these lines are dropped; everything else passes through.
_MLFLOW_NOISE = re.compile(
    r"^(Successfully registered model '|Created version '\d+' of model '|Registered model .* already exists\. "
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|DEBUG) mlflow[.\w]*: )"
)


class _WithoutMlflowNoise:
    """A stand-in for sys.stderr that drops MLflow's event lines and forwards the rest, line by line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if not _MLFLOW_NOISE.match(line):
                self._stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def close_partial(self) -> None:
        if self._partial and not _MLFLOW_NOISE.match(self._partial):
            self._stream.write(self._partial)
        self._partial = ""

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ... of the real stream
        return getattr(self._stream, name)


def quiet_mlflow():
    """Context manager: MLflow's event lines kept off stderr for the block."""
    import contextlib
    import sys

    @contextlib.contextmanager
    def scope():
        real = sys.stderr
        wrapper = _WithoutMlflowNoise(real)
        sys.stderr = wrapper
        try:
            yield
        finally:
            wrapper.close_partial()
            if sys.stderr is wrapper:
                sys.stderr = real

    return scope()
