"""The only source of "now". Always timezone-aware UTC; tests replace it with ``set_clock``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    value = _now()
    if value.tzinfo is None:
        raise ValueError("clock must return timezone-aware datetimes")
    return value.astimezone(UTC)


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Install a clock (tests); ``None`` restores the system clock."""
    global _now
    _now = fn if fn is not None else (lambda: datetime.now(UTC))


def to_utc(value: datetime) -> datetime:
    """Normalise a datetime read back from a database (SQLite drops tzinfo) to aware UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value: datetime) -> str:
    """Stable text form used in canonical bytes: UTC, microseconds, trailing Z."""
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return to_utc(value)
