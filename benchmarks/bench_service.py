"""The registry service's overhead: the same read and writes over HTTP (a real ``modelreg serve`` on loopback)
and in-process, as ratios measured in the same run.

* read: show a version (``GET /api/v1/models/m/versions/1``: the version, its history and data) against
  ``Registry.show`` + ``history`` + ``datasets``;
* write: an attestation (over HTTP: read the ETag, fetch the draft, sign it on the client, POST it: three
  signed requests) against ``governance.service.attest`` in-process (signs and records in one call);
* write: a model card update (over HTTP: read the ETag, POST with If-Match) against ``Registry.update_card``.

Every request is RFC 9421-signed by the client (``RemoteRegistry``) and verified, nonce-checked and
authorised by the server, which runs in its own process (uvicorn, one worker) on a SQLite registry. The
contenders alternate call by call (in-process, HTTP, in-process, ...) so machine load hits both alike; one
client, sequential requests, so requests/s is 1 / mean latency. Ratios are HTTP / in-process latency (p50):
above 1 means the service is slower by that factor.

    .venv/bin/python benchmarks/bench_service.py              # N = 300 of each
    .venv/bin/python benchmarks/bench_service.py --smoke --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CAST = {"admin": ["admin"], "dev": ["developer"], "app1": ["approver"], "aud": ["auditor"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    home = work / "home"
    env.update(
        {
            "MODELREG_HOME": str(home),
            "MODELREG_DATABASE_URL": f"sqlite:///{work / 'registry.db'}",
            "MODELREG_AUDIT_KEY": str(home / "keys" / "audit.key"),
            "MODELREG_EVIDENCE_KEY": str(home / "keys" / "evidence.key"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "MLFLOW_REGISTRY_URI": f"sqlite:///{work / 'mlflow.db'}",
            "MLFLOW_ARTIFACT_ROOT": str(work / "mlartifacts"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def _setup(env: dict[str, str]):
    from modelreg import settings as settings_mod
    from modelreg.client import Client, open_registry
    from modelreg.governance.service import load_policy

    settings = settings_mod.load(environ=env)
    reg = open_registry(settings, actor="admin")
    reg.init()
    client = Client(reg)
    for name, roles in CAST.items():
        reg.add_user(name, roles)
        client.generate_key(name)
    reg.as_user("dev").register("m", "1", owner="dev", risk_tier="low", purpose="benchmark")
    pack = load_policy(reg)
    control = next(
        c for c in pack.controls_for("retire", "low") if c.attestation and c.attestation.role == "approver"
    )
    return settings, reg, control.id


@contextlib.contextmanager
def _server(env: dict[str, str], port: int):
    from benchmarks._timing import wait_until_serving

    proc = subprocess.Popen(
        [sys.executable, "-m", "modelreg", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_serving(proc, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _pair(
    local: Callable[[int], Any], remote: Callable[[int], Any], n: int
) -> tuple[list[float], list[float]]:
    """Latencies of each contender, alternating call by call (after one warm-up call each)."""
    local(-1), remote(-1)
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        for fn, out in ((local, a), (remote, b)):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
    return a, b


def _summary(lat: list[float]) -> dict[str, float]:
    q = statistics.quantiles(lat, n=20, method="inclusive")  # q[9] = p50, q[18] = p95
    return {
        "p50_ms": round(q[9] * 1000, 3),
        "p95_ms": round(q[18] * 1000, 3),
        "requests_per_s": round(len(lat) / sum(lat), 1),
    }


def run(n: int) -> dict[str, Any]:
    from modelreg.governance.service import attest
    from modelreg.service.client import RemoteRegistry

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        work = Path(tmp)
        env = _env(work)
        settings, reg, control = _setup(env)
        with _server(env, _free_port()) as url:
            remote_settings = settings.with_overrides(url=url)
            aud, app1, dev = (RemoteRegistry(remote_settings, actor=u) for u in ("aud", "app1", "dev"))
            local_aud, local_app1, local_dev = (reg.as_user(u) for u in ("aud", "app1", "dev"))

            def show_local(_i: int):
                return (
                    local_aud.show("m", "1"),
                    local_aud.history("m", "1"),
                    local_aud.datasets("m", "1"),
                )

            def show_remote(_i: int):
                return aud.show("m", "1"), aud.history("m", "1"), aud.datasets("m", "1")

            def attest_local(i: int):
                return attest(local_app1, "m", "1", control_id=control, comment=f"local {i}")

            def attest_remote(i: int):
                return app1.attest("m", "1", control_id=control, comment=f"http {i}")

            def card_local(i: int):
                return local_dev.update_card("m", "1", {"intended_use": f"local {i}"})

            def card_remote(i: int):
                return dev.update_card("m", "1", {"intended_use": f"http {i}"})

            measured = {
                "read: show a version": _pair(show_local, show_remote, n),
                "write: attestation (signed record)": _pair(attest_local, attest_remote, max(n // 3, 5)),
                "write: model card update": _pair(card_local, card_remote, max(n // 2, 5)),
            }
            verified = reg.audit_verify()
            for client in (aud, app1, dev):
                client.close()
        reg.engine.dispose()
    out: dict[str, Any] = {"n": n, "audit_events": verified.size, "audit_ok": verified.ok, "operations": {}}
    ratios: dict[str, float] = {}
    for label, (local, over_http) in measured.items():
        lo, hi = _summary(local), _summary(over_http)
        out["operations"][label] = {"in_process": lo, "http": hi, "calls": len(local)}
        ratios[f"{label}: http p50 vs in-process p50"] = round(hi["p50_ms"] / lo["p50_ms"], 2)
        ratios[f"{label}: http p95 vs in-process p95"] = round(hi["p95_ms"] / lo["p95_ms"], 2)
    out["ratios"] = ratios
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="reads (writes: a third / a half of it)")
    parser.add_argument("--smoke", action="store_true", help="small size (N = 20)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n = 20
    if args.n < 5:
        parser.error("-n must be at least 5")
    result = run(args.n)
    if not result["audit_ok"]:
        print("the audit log did not verify after the run", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    print("one client, sequential; server: modelreg serve (uvicorn, 1 worker) on loopback, SQLite registry")
    print(f"{'operation':<38}{'where':<12}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}")
    for label, op in result["operations"].items():
        for where in ("in_process", "http"):
            s = op[where]
            print(f"{label:<38}{where:<12}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['requests_per_s']:>9.1f}")
    for label, value in result["ratios"].items():
        print(f"{label}: {value:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
