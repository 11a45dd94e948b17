"""The retention sweep of the service's working files: uploads nobody used for a while, built evidence packs
and partial uploads a dropped connection left behind.

* uploads (``<home>/service/uploads/<sha256>/<name>``): removed when not used for
  ``Settings.service_upload_days`` (default 7). "Used" is the file's modification time: the upload route sets
  it when the same bytes arrive again and every route that resolves an upload id sets it before it reads
  the file (``touch``), so the sweep goes by last use, not by first upload. A file a request of this process
  is reading is pinned (``pinned``) and skipped whatever its time;
* evidence packs (``<home>/service/evidence/<token>.zip`` and its ``.json``): removed
  ``Settings.service_pack_hours`` (default 24) after they were built: the builder downloads at once;
* partial uploads (``<home>/service/uploads/.partial/*.part``): a live upload writes every chunk, so one not
  written for ``PARTIAL_STALE_SECONDS`` belongs to a process that died mid-upload.

When: at the service's start, then at most once an hour, started (in a thread of its own, so no request
waits for it) by the first request that touches these files after the hour is up; and once on demand with
``modelreg serve --sweep``. Request-triggered rather than a timer thread: nothing piles up while no request
arrives, every worker process runs its own without a thread to start and stop with uvicorn's lifecycle, and
two sweeps at once are harmless (each removal tolerates a file already gone). Each sweep is a line in the
service's security/operations log (``security_events``, kind ``operations``), never in the audit chain: it
changes no registry state.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelreg import clock

PARTIAL = ".partial"
PARTIAL_STALE_SECONDS = 3600.0
SWEEP_EVERY_SECONDS = 3600.0

_pins: Counter[str] = Counter()
_pins_lock = threading.Lock()


@dataclass
class SweepReport:
    uploads: int = 0
    upload_bytes: int = 0
    packs: int = 0
    pack_bytes: int = 0
    partials: int = 0
    partial_bytes: int = 0
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "uploads": self.uploads,
            "upload_bytes": self.upload_bytes,
            "packs": self.packs,
            "pack_bytes": self.pack_bytes,
            "partials": self.partials,
            "partial_bytes": self.partial_bytes,
            "removed": list(self.removed),
        }

    def summary(self) -> str:
        return (
            f"retention sweep removed {self.uploads} upload(s) ({self.upload_bytes} bytes), {self.packs} "
            f"evidence pack(s) ({self.pack_bytes} bytes), {self.partials} partial upload(s) "
            f"({self.partial_bytes} bytes)"
        )


def folders(home: Path) -> tuple[Path, Path]:
    """(uploads, evidence packs) under the service's home."""
    return Path(home) / "service" / "uploads", Path(home) / "service" / "evidence"


def touch(path: Path) -> None:
    """Mark an upload used now (the sweep's clock)."""
    now = clock.now().timestamp()
    with contextlib.suppress(FileNotFoundError):
        os.utime(path, (now, now))


@contextlib.contextmanager
def pinned(*paths: Path | None) -> Iterator[None]:
    """While the block runs, this process's sweep leaves these files alone."""
    keys = [str(p) for p in paths if p is not None]
    with _pins_lock:
        _pins.update(keys)
    try:
        yield
    finally:
        with _pins_lock:
            _pins.subtract(keys)
            for k in keys:
                if _pins[k] <= 0:
                    del _pins[k]


def _is_pinned(path: Path) -> bool:
    with _pins_lock:
        return _pins.get(str(path), 0) > 0


def _remove(path: Path) -> int:
    """Delete a file; its size, or -1 if it was already gone (another sweep, another worker)."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return -1
    return size


def sweep(home: Path, *, upload_days: float, pack_hours: float, now: float | None = None) -> SweepReport:
    """Remove what the retention settings say is stale; ``now`` (Unix seconds) defaults to the clock's."""
    now = clock.now().timestamp() if now is None else now
    uploads, packs = folders(home)
    report = SweepReport()
    upload_cutoff = now - upload_days * 86400.0
    if uploads.is_dir():
        for folder in uploads.iterdir():
            if not folder.is_dir():
                continue
            if folder.name == PARTIAL:
                for part in folder.glob("*.part"):
                    with contextlib.suppress(FileNotFoundError):
                        if part.stat().st_mtime < now - PARTIAL_STALE_SECONDS:
                            size = _remove(part)
                            if size >= 0:
                                report.partials += 1
                                report.partial_bytes += size
                                report.removed.append(f"partial upload {part.name}")
                continue
            for file in folder.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if not file.is_file() or file.stat().st_mtime >= upload_cutoff or _is_pinned(file):
                        continue
                    size = _remove(file)
                    if size >= 0:
                        report.uploads += 1
                        report.upload_bytes += size
                        report.removed.append(f"upload sha256:{folder.name}/{file.name}")
            with contextlib.suppress(OSError):  # only when empty; a file that just arrived keeps it
                folder.rmdir()
    pack_cutoff = now - pack_hours * 3600.0
    if packs.is_dir():
        for meta in packs.glob("*.json"):
            zip_file = meta.with_suffix(".zip")
            with contextlib.suppress(FileNotFoundError):
                built = (zip_file if zip_file.exists() else meta).stat().st_mtime
                if built >= pack_cutoff:
                    continue
                size = max(_remove(zip_file), 0)
                if _remove(meta) >= 0 or size:
                    report.packs += 1
                    report.pack_bytes += size
                    report.removed.append(f"evidence pack {meta.stem}")
        for orphan in packs.glob("*.zip"):  # a build that failed before its .json was written
            with contextlib.suppress(FileNotFoundError):
                if not orphan.with_suffix(".json").exists() and orphan.stat().st_mtime < pack_cutoff:
                    size = _remove(orphan)
                    if size >= 0:
                        report.packs += 1
                        report.pack_bytes += size
                        report.removed.append(f"evidence pack {orphan.stem}")
    return report


class Sweeper:
    """Runs ``sweep`` now and then again at most once every ``every`` seconds, when ``due()`` is called (by
    requests), in a daemon thread; ``record`` gets each report (the security/operations log)."""

    def __init__(
        self,
        home: Path,
        *,
        upload_days: float,
        pack_hours: float,
        record: Callable[[SweepReport], None],
        every: float = SWEEP_EVERY_SECONDS,
    ) -> None:
        self.home = home
        self.upload_days = upload_days
        self.pack_hours = pack_hours
        self.record = record
        self.every = every
        self._last = float("-inf")
        self._lock = threading.Lock()
        self._running = False

    def run_once(self) -> SweepReport:
        self._last = time.monotonic()
        report = sweep(self.home, upload_days=self.upload_days, pack_hours=self.pack_hours)
        self.record(report)
        return report

    def due(self) -> None:
        with self._lock:
            if self._running or time.monotonic() - self._last < self.every:
                return
            self._running = True
            self._last = time.monotonic()

        def work() -> None:
            try:
                self.run_once()
            except Exception:  # a failed sweep must never fail a request; the next one tries again
                pass
            finally:
                self._running = False

        threading.Thread(target=work, name="modelreg-retention-sweep", daemon=True).start()


def log(engine, report: SweepReport, *, subject: str | None = None) -> None:
    """One line in the service's security/operations log (``security_events``), not in the audit chain."""
    from modelreg.store import service_rows

    service_rows.record_security_event(
        engine,
        kind="operations",
        code="retention_sweep",
        client=None,
        subject=subject,
        method=None,
        path=None,
        detail=report.summary(),
    )
