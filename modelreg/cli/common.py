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
            from modelreg.client import open_registry

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
