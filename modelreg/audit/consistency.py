"""Is today's log an extension of what a signed checkpoint saw? The checkpoint side of ``audit verify``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from modelreg.audit import log as audit_log
from modelreg.audit import merkle
from modelreg.audit.checkpoint import Checkpoint, verify_checkpoint_signature
from modelreg.domain.entities import VerifyReport

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify_against_checkpoint(
    engine: Engine,
    report: VerifyReport,
    checkpoint: Checkpoint,
    public: Ed25519PublicKey,
    tree_hash: str = "sha256",
) -> VerifyReport:
    """``report`` is the log's own verification (``audit_log.verify_snapshot``, ok); check the checkpoint's
    signature with ``public`` and that the verified log is consistent with the checkpoint's (size, root)."""

    def extension(old_size: int) -> tuple[int, bytes, list[bytes]]:
        leaves = audit_log.leaf_hashes(engine)[: report.size]  # the verified prefix, not later appends
        tree = merkle.MerkleTree.from_leaf_hashes(leaves, tree_hash=tree_hash)
        return len(leaves), tree.root(), tree.consistency_proof(old_size, len(leaves)) if old_size else []

    return judge_checkpoint(report, checkpoint, public, tree_hash, extension)


def judge_checkpoint(
    report: VerifyReport,
    checkpoint: Checkpoint,
    public: Ed25519PublicKey,
    tree_hash: str,
    extension: Callable[[int], tuple[int, bytes, list[bytes]]],
) -> VerifyReport:
    """The checkpoint's verdict on the verified log ``report``: its signature with ``public``, its size, and the
    consistency proof ``extension(checkpoint.size)`` gives (the size and root of the log's verified prefix and
    the proof from the checkpoint's size to it). The one judgement of ``audit verify --checkpoint``, locally
    (the proof computed from the leaves) and over MODELREG_URL (the proof the service sent, checked here)."""
    cp_dict = json.loads(checkpoint.to_json())
    if not verify_checkpoint_signature(checkpoint, public):
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            problem="the checkpoint's signature does not verify with the registry's audit key",
            checkpoint=cp_dict,
        )
    if checkpoint.size > report.size:
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            first_bad_seq=report.size,
            problem=(
                f"the log holds {report.size} events but the checkpoint saw {checkpoint.size}: events after #{report.size - 1} were removed"
                if report.size
                else f"the log is empty but the checkpoint saw {checkpoint.size} events: every event was removed"
            ),
            checkpoint=cp_dict,
        )
    new_size, new_root, proof = extension(checkpoint.size)
    old_root = bytes.fromhex(checkpoint.root_hash)
    ok = (
        merkle.verify_consistency(checkpoint.size, new_size, old_root, new_root, proof, tree_hash)
        if checkpoint.size
        else old_root == merkle.empty_root(tree_hash)
    )
    if not ok:
        return VerifyReport(
            False,
            report.size,
            report.root_hash,
            first_bad_seq=None,
            problem=f"the log is not an extension of the checkpoint (size {checkpoint.size}): an event before #{checkpoint.size} was changed and the log rewritten",
            checkpoint=cp_dict,
        )
    return VerifyReport(
        True, report.size, report.root_hash, checkpoint=cp_dict, events_per_second=report.events_per_second
    )
