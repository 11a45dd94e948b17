"""Throughput of the audit log's full verification: leaf hashes + Merkle root over N canonical events.

The baseline is a bare ``hashlib.sha256`` over the same payload bytes in the same run, so the ratio says
how much the Merkle structure costs on top of reading every byte once (a full verify can never beat
hashing each event once). Goal: full verify >= 200,000 events/s at N = 1,000,000.

    .venv/bin/python benchmarks/bench_merkle.py                 # 1,000,000 events
    .venv/bin/python benchmarks/bench_merkle.py -n 100000 --json

Payload generation (canonical_json of realistic ~300-byte events) is timed separately and is not part
of "verify": the store keeps the canonical bytes; re-canonicalising rows is reported on its own line.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from modelreg.audit.canonical import canonical_json
from modelreg.audit.merkle import (
    MerkleTree,
    leaf_hashes,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

GOAL_EVENTS_PER_SECOND = 200_000


def make_event(seq: int) -> dict[str, Any]:
    """An audit event shaped like the registry's (ids, actor, stage change, a float), ~300 bytes."""
    return {
        "seq": seq,
        "event_id": f"evt_{seq:016x}",
        "type": "version.stage_changed",
        "at": f"2026-11-25T09:{(seq // 60) % 60:02d}:{seq % 60:02d}.{seq % 1_000_000:06d}Z",
        "actor": "validator.zhang@bank.example",
        "model": "credit_scoring",
        "version": seq % 97 + 1,
        "payload": {
            "from": "validate",
            "to": "deploy",
            "reason": "approved by the model risk committee",
            "approvals": [f"appr_{seq % 1000:04d}", f"appr_{(seq + 7) % 1000:04d}"],
            "auc": 0.75 + (seq % 1000) / 10_000,
        },
    }


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs (GC paused, as it would only add noise from unrelated garbage)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        best = min(best, elapsed)
    return best, result


def run(n: int, repeat: int) -> dict[str, Any]:
    t_canon, payloads = timed(lambda: [canonical_json(make_event(i)) for i in range(n)])
    sizes = [len(p) for p in payloads]
    mean_size = sum(sizes) / n

    def baseline() -> list[bytes]:
        sha256 = hashlib.sha256
        return [sha256(p).digest() for p in payloads]

    t_base, _ = timed(baseline, repeat)
    t_leaves, hashes = timed(lambda: leaf_hashes(payloads), repeat)
    t_root, root = timed(lambda: root_from_leaf_hashes(hashes), repeat)

    def full_verify() -> bytes:
        return root_from_leaf_hashes(leaf_hashes(payloads))

    t_verify, verify_root = timed(full_verify, repeat)
    assert verify_root == root

    t_bulk, tree = timed(lambda: MerkleTree.from_leaf_hashes(hashes))
    assert tree.root() == root
    inc_n = min(n, 200_000)

    def incremental() -> MerkleTree:
        t = MerkleTree()
        for h in hashes[:inc_n]:
            t.append(h)
        return t

    t_inc, inc_tree = timed(incremental)
    assert inc_tree.root() == root_from_leaf_hashes(hashes[:inc_n])

    # Proof latency on the full tree (what `modelreg audit` does per event or per checkpoint pair).
    probes = 2000
    step = max(n // probes, 1)
    indices = list(range(0, n, step))[:probes]

    def proofs() -> None:
        for i in indices:
            assert verify_inclusion(hashes[i], i, n, tree.inclusion_proof(i), root)

    t_incl, _ = timed(proofs)
    old = n // 3 + 1
    t_cons, _ = timed(
        lambda: verify_consistency(old, n, tree.root_at(old), root, tree.consistency_proof(old, n))
    )

    sample = [make_event(i) for i in range(min(n, 100_000))]
    t_canon_only, _ = timed(lambda: [canonical_json(e) for e in sample])

    verify_rate = n / t_verify
    return {
        "events": n,
        "mean_payload_bytes": round(mean_size, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "baseline_sha256_s": round(t_base, 4),
        "baseline_events_per_s": round(n / t_base),
        "leaf_hashes_s": round(t_leaves, 4),
        "root_from_leaf_hashes_s": round(t_root, 4),
        "full_verify_s": round(t_verify, 4),
        "full_verify_events_per_s": round(verify_rate),
        "full_verify_vs_baseline": round(t_verify / t_base, 2),
        "goal_events_per_s": GOAL_EVENTS_PER_SECOND,
        "goal_met": verify_rate >= GOAL_EVENTS_PER_SECOND,
        "tree_bulk_build_s": round(t_bulk, 4),
        "tree_append_events_per_s": round(inc_n / t_inc),
        "inclusion_proof_and_verify_us": round(t_incl / len(indices) * 1e6, 1),
        "consistency_proof_and_verify_us": round(t_cons * 1e6, 1),
        "canonical_json_events_per_s": round(len(sample) / t_canon_only),
        "payload_generation_s": round(t_canon, 2),
        "root": root.hex(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs for the timed hashing steps")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    result = run(args.events, max(args.repeat, 1))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(
                f"{key:<{width}}  {value:,}"
                if isinstance(value, int | float) and not isinstance(value, bool)
                else f"{key:<{width}}  {value}"
            )
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
