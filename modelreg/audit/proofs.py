"""Inclusion proofs for single events against the log's current (or an earlier) root, for evidence packs."""

from __future__ import annotations

from modelreg.errors import BadInput


def inclusion_proofs(registry, seqs: list[int], size: int | None = None) -> dict:
    from modelreg.audit import log as audit_log
    from modelreg.audit import merkle

    # through the registry: an uninitialised database says "run modelreg init", not "no such table"
    leaves = registry.audit_leaf_hashes()
    size = len(leaves) if size is None else size
    if size > len(leaves) or size < 1:
        raise BadInput(f"tree size must be between 1 and {len(leaves)}. Got {size} instead.")
    tree_hash, _ = audit_log.crypto_settings(registry.engine)
    tree = merkle.MerkleTree.from_leaf_hashes(leaves[:size], tree_hash=tree_hash)
    root = tree.root()
    out = {}
    for seq in seqs:
        if not 0 <= seq < size:
            raise BadInput(f"event number must be between 0 and {size - 1}. Got {seq} instead.")
        out[seq] = {
            "seq": seq,
            "leaf_hash": leaves[seq].hex(),
            "tree_size": size,
            "root_hash": root.hex(),
            "proof": [h.hex() for h in tree.inclusion_proof(seq, size)],
        }
    return {"tree_size": size, "root_hash": root.hex(), "proofs": out}


def inclusion_proof(registry, seq: int, size: int | None = None) -> dict:
    return inclusion_proofs(registry, [seq], size)["proofs"][seq]
