"""A data upload to the registry service (``POST /api/v1/uploads``): the server process's peak memory growth
and the upload's throughput, each against a baseline measured in the same run.

* memory: the peak resident set (``VmHWM`` of ``/proc/<pid>/status``) of the ``modelreg serve`` process
  before and after uploading one generated CSV (default about 200 MB), after a warm-up upload of a tiny
  file (so imports and first-request allocations are not counted); reported in MB and as a ratio against
  the file's size (about 1 or more: the body was held in memory; near 0: it was streamed to disk);
* throughput: the upload (``RemoteRegistry.upload``: the client hashes the file for the signed
  Content-Digest, streams it, the server hashes and writes it while it arrives) against a plain local
  ``shutil.copyfile`` of the same file, the contenders interleaved (``benchmarks._timing``); the ratio is
  upload time / copy time (above 1: the upload is slower by that factor).

The server runs in its own process (uvicorn, one worker) on a SQLite registry; the client is this process.

    .venv/bin/python benchmarks/bench_service_upload.py              # 200 MB, 3 rounds
    .venv/bin/python benchmarks/bench_service_upload.py --smoke --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._timing import interleaved, wait_until_serving  # noqa: E402
from benchmarks.bench_service import _env, _free_port, _setup  # noqa: E402


@contextlib.contextmanager
def _server(env: dict[str, str], port: int, extra: list[str]):
    """``modelreg serve`` in its own process: (its URL, its pid)."""

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_serving(proc, port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set so far (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/<pid>/status (Linux only)")


def _write_csv(path: Path, size: int) -> int:
    """A CSV of about ``size`` bytes (numeric credit-like columns), written in 4 MB blocks."""
    header = b"id,age,income,score,label\n"
    rows = b"".join(
        b"%d,%d,%d.%02d,0.%04d,%d\n" % (i, 18 + i % 60, 1000 + i * 7 % 90000, i % 100, i * 37 % 10000, i % 2)
        for i in range(100_000)
    )
    with path.open("wb") as fh:
        fh.write(header)
        written = len(header)
        while written < size:
            block = rows[: size - written]
            fh.write(block)
            written += len(block)
    return written


def run(mb: int, repeat: int) -> dict[str, Any]:
    from modelreg.service.client import RemoteRegistry

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        work = Path(tmp)
        env = _env(work)
        env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
        settings, reg, _control = _setup(env)
        big = work / "scoring.csv"
        size = _write_csv(big, mb * 1_000_000)
        tiny = work / "tiny.csv"
        tiny.write_bytes(b"a,b\n1,2\n")
        port = _free_port()
        with _server(env, port, extra=["--max-upload", str(size + 1_048_576)]) as (url, pid):
            dev = RemoteRegistry(settings.with_overrides(url=url), actor="dev")
            dev.upload(tiny)  # warm-up: the upload route's imports and first allocations
            before = _peak_rss_bytes(pid)
            upload_id = dev.upload(big)
            after = _peak_rss_bytes(pid)
            stored = Path(env["MODELREG_HOME"]) / "service" / "uploads" / upload_id[7:71] / big.name
            intact = stored.stat().st_size == size

            def upload() -> str:
                return dev.upload(big)

            def copy() -> None:
                shutil.copyfile(big, work / "copy.csv")

            (t_up, _), (t_copy, _) = interleaved([upload, copy], repeat)
            dev.close()
        reg.engine.dispose()
    growth = max(after - before, 0)
    return {
        "file_mb": round(size / 1e6, 1),
        "stored_intact": intact,
        "server_peak_rss_before_mb": round(before / 1e6, 1),
        "server_peak_rss_after_mb": round(after / 1e6, 1),
        "server_peak_growth_mb": round(growth / 1e6, 1),
        "upload_s": round(t_up, 3),
        "copy_s": round(t_copy, 3),
        "upload_mb_per_s": round(size / 1e6 / t_up, 1),
        "copy_mb_per_s": round(size / 1e6 / t_copy, 1),
        "repeat": repeat,
        "ratios": {  # sorted, the throughput ratio comes first: the suite's table leads with it (never 0)
            "upload time vs plain local file copy": round(t_up / t_copy, 2),
            "upload's server peak memory growth vs file size": round(growth / size, 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated CSV (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of upload and copy")
    parser.add_argument("--smoke", action="store_true", help="small size (20 MB, 1 round)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.smoke:
        args.mb, args.repeat = 20, 1
    result = run(args.mb, args.repeat)
    if not result["stored_intact"]:
        print("the stored upload does not have the file's size", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print(f"one {result['file_mb']} MB CSV; server: modelreg serve (uvicorn, 1 worker) on loopback")
    print(
        f"server peak RSS {result['server_peak_rss_before_mb']} MB -> {result['server_peak_rss_after_mb']} MB "
        f"(growth {result['server_peak_growth_mb']} MB)"
    )
    print(
        f"upload {result['upload_s']} s ({result['upload_mb_per_s']} MB/s); "
        f"local copy {result['copy_s']} s ({result['copy_mb_per_s']} MB/s)"
    )
    for label, value in result["ratios"].items():
        print(f"{label}: {value:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
