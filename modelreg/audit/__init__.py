"""The tamper-evident audit trail: canonical event bytes, the RFC 6962 Merkle log, signed checkpoints.

Pure computation (stdlib + ``cryptography``, the latter only when signing); the database side lives in
``modelreg.store``.
"""

from __future__ import annotations

from modelreg.audit.canonical import canonical_json
from modelreg.audit.checkpoint import (
    Checkpoint,
    checkpoints_consistent,
    sign_checkpoint,
    verify_checkpoint_signature,
)
from modelreg.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    first_divergence,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "MerkleTree",
    "canonical_json",
    "checkpoints_consistent",
    "first_divergence",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "verify_checkpoint_signature",
    "verify_consistency",
    "verify_inclusion",
]
