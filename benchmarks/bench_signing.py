"""Signatures per second of both suites, as ratios against Ed25519 measured in the same run.

Signs and verifies the same ~400-byte canonical payload (an approval's size) N times with each suite through
``modelreg.signing`` (what the registry calls), and builds the audit tree of M events with SHA-256 and with
SM3. Every ratio is SM2 (or SM3) throughput divided by Ed25519 (or SHA-256) throughput from this run: below
1 means slower.

    .venv/bin/python benchmarks/bench_signing.py             # N = 3,000 signatures, M = 200,000 events
    .venv/bin/python benchmarks/bench_signing.py --smoke --json

SM2 needs the gm extra (tongsuopy).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from modelreg import signing
from modelreg.audit.canonical import canonical_json
from modelreg.audit.merkle import leaf_hashes, root_from_leaf_hashes


def _best(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def payload(i: int = 0) -> bytes:
    return canonical_json(
        {
            "type": "modelreg.signed-record/v1",
            "kind": "approval",
            "model": "credit_scoring",
            "version": "2",
            "role": "approver",
            "artifact_digest": "ab" * 32,
            "evaluation_digest": "cd" * 32,
            "policy": {"id": "cn-fin-algo-risk", "version": "1.0.0", "digest": "sha256:" + "ef" * 32},
            "decision": "approve",
            "comment": "模型风险委员会批准投产 / approved by the model risk committee",
            "at": f"2026-12-02T10:00:{i % 60:02d}.000000Z",
        }
    )


def suite_rates(suite: str, n: int, repeat: int) -> dict[str, float]:
    key = signing.generate_private_key(suite)
    public = key.public_key()
    data = payload()
    sigs = [signing.sign(key, data) for _ in range(min(n, 50))]
    assert all(signing.verify(public, data, s) for s in sigs)
    t_sign = _best(lambda: [signing.sign(key, data) for _ in range(n)], repeat)
    sig = sigs[0]
    t_verify = _best(lambda: [signing.verify(public, data, sig) for _ in range(n)], repeat)
    return {"sign_per_s": n / t_sign, "verify_per_s": n / t_verify}


def tree_rate(tree_hash: str, payloads: list[bytes], repeat: int) -> float:
    t = _best(lambda: root_from_leaf_hashes(leaf_hashes(payloads, tree_hash), tree_hash), repeat)
    return len(payloads) / t


def run(n: int, events: int, repeat: int) -> dict[str, Any]:
    ed = suite_rates("ed25519", n, repeat)
    sm2 = suite_rates("sm2", n, repeat)
    payloads = [payload(i) for i in range(events)]
    sha = tree_rate("sha256", payloads, repeat)
    sm3 = tree_rate("sm3", payloads, repeat)
    return {
        "signatures": n,
        "events": events,
        "payload_bytes": len(payload()),
        "python": platform.python_version(),
        "ed25519": {k: round(v) for k, v in ed.items()},
        "sm2_sm3": {k: round(v) for k, v in sm2.items()},
        "tree_events_per_s": {"sha256": round(sha), "sm3": round(sm3)},
        "ratios": {
            "sm2 sign/s vs ed25519 sign/s": round(sm2["sign_per_s"] / ed["sign_per_s"], 3),
            "sm2 verify/s vs ed25519 verify/s": round(sm2["verify_per_s"] / ed["verify_per_s"], 3),
            "sm3 audit tree events/s vs sha256": round(sm3 / sha, 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--signatures", type=int, default=3000)
    parser.add_argument("-m", "--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs")
    parser.add_argument("--smoke", action="store_true", help="small sizes (300 signatures, 20,000 events)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.smoke:
        args.signatures, args.events, args.repeat = 300, 20_000, 1
    if args.signatures < 1 or args.events < 1:
        parser.error("--signatures and --events must be at least 1")
    result = run(args.signatures, args.events, max(args.repeat, 1))
    print(
        f"{args.signatures:,} signatures of a {result['payload_bytes']}-byte payload; {args.events:,}-event tree"
    )
    print(f"{'':<10}{'sign/s':>12}{'verify/s':>12}")
    for label, key in (("ed25519", "ed25519"), ("sm2-sm3", "sm2_sm3")):
        print(f"{label:<10}{result[key]['sign_per_s']:>12,}{result[key]['verify_per_s']:>12,}")
    t = result["tree_events_per_s"]
    print(f"audit tree: sha256 {t['sha256']:,} events/s, sm3 {t['sm3']:,} events/s")
    for label, value in result["ratios"].items():
        print(f"{label}: {value}x")
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
