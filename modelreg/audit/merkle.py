"""Merkle tree of the audit log (RFC 6962 §2.1; proofs verified as in RFC 9162 §2.1.3.2 / §2.1.4.2).

The leaves are the canonical bytes of the audit events in log order. ``leaf_hash`` and ``node_hash`` use
distinct one-byte prefixes, so a leaf can never be passed off as an inner node (second pre-image).

Layout of ``MerkleTree``: one ``bytearray`` per level holding the hashes of the *complete* subtrees of that
level (level 0 = leaf hashes, level k = hashes of aligned runs of 2**k leaves), 32 bytes each. That is
about 64 bytes per leaf in total (64 MB for a million events) with no per-hash Python object, an append
costs amortised O(1) hashes, and any root, inclusion proof or consistency proof for any past size needs
only O(log n) lookups plus O(log n) hashes for the incomplete right edge.

Verification functions never raise: any malformed input (wrong types, sizes, hash lengths) is simply
"not verified" and returns ``False``.

The hash is SHA-256 unless ``tree_hash="sm3"`` is given (a registry initialised with ``--hash sm3``): the
structure is RFC 6962's either way, SM3 digests are 32 bytes too, and one tree never mixes the two.

One of the sources of the standalone pack verifier: standard library only, names (never modules) imported
from modelreg.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from modelreg.errors import BadInput
from modelreg.suites import hash_constructor

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "empty_root",
    "first_divergence",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def empty_root(tree_hash: str = "sha256") -> bytes:
    """MTH of the empty tree: the hash of the empty string."""
    return hash_constructor(tree_hash)(b"").digest()


def leaf_hash(data: bytes, tree_hash: str = "sha256") -> bytes:
    """H(0x00 ‖ data): the hash of one log entry."""
    return hash_constructor(tree_hash)(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes, tree_hash: str = "sha256") -> bytes:
    """H(0x01 ‖ left ‖ right): the hash of an inner node."""
    return hash_constructor(tree_hash)(_NODE + left + right).digest()


def leaf_hashes(payloads: Iterable[bytes], tree_hash: str = "sha256") -> list[bytes]:
    """Leaf hashes of many entries (the hot loop of a full verification, kept free of call overhead)."""
    h = hash_constructor(tree_hash)
    return [h(_LEAF + data).digest() for data in payloads]


def _next_level(level: Sequence[bytes], h=sha256) -> list[bytes]:
    # Pairs (0,1), (2,3), ...; a trailing odd node is handled by the caller.
    return [h(_NODE + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]


def root_from_leaf_hashes(hashes: Sequence[bytes], tree_hash: str = "sha256") -> bytes:
    """MTH of the given leaf hashes, computed level by level in O(n) without recursion.

    Carrying a lone right-most node up unchanged gives exactly RFC 6962's split at the largest power of
    two smaller than n: the left part is always complete, and only the right edge is ever ragged.
    """
    h = hash_constructor(tree_hash)
    level = list(hashes)
    if not level:
        return h(b"").digest()
    while len(level) > 1:
        carry = level[-1] if len(level) % 2 else None
        level = _next_level(level, h)
        if carry is not None:
            level.append(carry)
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962: the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise BadInput(f"{what} must be {HASH_SIZE} bytes. Got {type(value).__name__} instead.")
    value = bytes(value)
    if len(value) != HASH_SIZE:
        raise BadInput(f"{what} must be {HASH_SIZE} bytes. Got {len(value)} bytes instead.")
    return value


def _is_count(value: object) -> bool:
    # Any int (an IntEnum or a database driver's int subclass too), but never a bool.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class MerkleTree:
    """An append-only RFC 6962 tree of leaf hashes with roots and proofs for every past size."""

    __slots__ = ("_h", "_levels", "_size", "tree_hash")

    def __init__(self, leaf_hashes: Iterable[bytes] = (), *, tree_hash: str = "sha256") -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.tree_hash = tree_hash
        self._h = hash_constructor(tree_hash)
        self.extend(leaf_hashes)

    @classmethod
    def from_leaf_hashes(cls, hashes: Sequence[bytes], *, tree_hash: str = "sha256") -> MerkleTree:
        """Build in bulk (level by level, list comprehensions): several times faster than appending."""
        tree = cls(tree_hash=tree_hash)
        level = list(hashes)
        # C-speed validation of the common case; the slow per-item pass only runs to name the culprit.
        if level and (set(map(type, level)) - {bytes} or set(map(len, level)) != {HASH_SIZE}):
            level = [_check_hash(h, f"leaf hash #{i}") for i, h in enumerate(level)]
        tree._size = len(level)
        tree._levels = [bytearray(b"".join(level))]
        while len(level) > 1:
            level = _next_level(level, tree._h)  # drops a lone last node: it is not a complete subtree
            tree._levels.append(bytearray(b"".join(level)))
        return tree

    # -- building -------------------------------------------------------------------------------------

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; returns its index."""
        h = _check_hash(leaf_hash, "leaf hash")
        index = self._size
        levels = self._levels
        levels[0] += h
        self._size = index + 1
        # Each time the new node is a right child, its parent subtree is now complete: hash it upward.
        level, i = 0, index
        while i & 1:
            row = levels[level]
            start = (i - 1) * HASH_SIZE
            h = self._h(_NODE + row[start : start + 2 * HASH_SIZE]).digest()
            level += 1
            i >>= 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += h
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    # -- reading --------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def leaf_hash(self, index: int) -> bytes:
        if not _is_count(index) or index >= self._size:
            raise BadInput(f"leaf index must be in [0, {self._size}). Got {index!r} instead.")
        return self._node(0, index)

    def _node(self, level: int, index: int) -> bytes:
        start = index * HASH_SIZE
        return bytes(self._levels[level][start : start + HASH_SIZE])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range RFC 6962's recursion can produce (start aligned to the split).

        Complete aligned subtrees are stored; the ragged right edge is folded from at most log2(n) of
        them, right to left.
        """
        n = end - start
        if n == 0:
            return self._h(b"").digest()
        parts: list[bytes] = []
        while True:
            if n & (n - 1) == 0:  # complete subtree of 2**level leaves, aligned at ``start``
                level = n.bit_length() - 1
                parts.append(self._node(level, start >> level))
                break
            k = _largest_power_of_two_below(n)
            level = k.bit_length() - 1
            parts.append(self._node(level, start >> level))
            start += k
            n -= k
        root = parts[-1]
        for left in reversed(parts[:-1]):
            root = self._h(_NODE + left + root).digest()
        return root

    def _check_size(self, size: int | None, what: str = "tree size") -> int:
        if size is None:
            return self._size
        if not _is_count(size) or size > self._size:
            raise BadInput(f"{what} must be an int in [0, {self._size}]. Got {size!r} instead.")
        return size

    def root(self) -> bytes:
        return self._subtree(0, self._size)

    def root_at(self, size: int) -> bytes:
        """The root the tree had when it held ``size`` leaves."""
        return self._subtree(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 §2.1.1 PATH)."""
        size = self._check_size(size)
        if not _is_count(index) or index >= size:
            raise BadInput(f"leaf index must be an int in [0, {size}). Got {index!r} instead.")
        # Walk RFC 6962's recursion top-down; the sibling met first is the last element of the path.
        path: list[bytes] = []
        lo, hi, m = 0, size, index
        while hi - lo > 1:
            k = _largest_power_of_two_below(hi - lo)
            if m < k:
                path.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._subtree(lo, lo + k))
                lo += k
                m -= k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size`` (§2.1.2).

        Empty when ``old_size`` is 0 or equals ``new_size`` (those are consistent by definition).
        """
        new_size = self._check_size(new_size, "new size")
        if not _is_count(old_size) or old_size > new_size:
            raise BadInput(f"old size must be an int in [0, {new_size}]. Got {old_size!r} instead.")
        if old_size == 0 or old_size == new_size:
            return []
        # SUBPROOF(m, D[lo:hi], b) walked top-down; elements are collected outermost first.
        proof: list[bytes] = []
        lo, hi, m, whole = 0, new_size, old_size, True
        while m != hi - lo:
            n = hi - lo
            k = _largest_power_of_two_below(n)
            if m <= k:
                proof.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._subtree(lo, lo + k))
                lo += k
                m -= k
                whole = False
        if not whole:
            proof.append(self._subtree(lo, hi))
        proof.reverse()
        return proof


# -- verification (RFC 9162) ---------------------------------------------------------------------------


def _as_hash(value: object) -> bytes | None:
    if isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE:
        return bytes(value)
    return None


def _as_proof(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list | tuple):
        return None
    out = []
    for item in proof:
        h = _as_hash(item)
        if h is None:
            return None
        out.append(h)
    return out


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], tree_hash: str = "sha256"
) -> bytes | None:
    """The root implied by an audit path (RFC 9162 §2.1.3.2), or ``None`` if the path cannot fit."""
    H = hash_constructor(tree_hash)
    h = _as_hash(leaf_hash)
    path = _as_proof(proof)
    if h is None or path is None or not _is_count(index) or not _is_count(tree_size) or index >= tree_size:
        return None
    fn, sn, r = index, tree_size - 1, h
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = H(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root: bytes,
    tree_hash: str = "sha256",
) -> bool:
    """True iff ``proof`` shows leaf ``index`` with hash ``leaf_hash`` in the tree of ``tree_size`` → ``root``."""
    expected = _as_hash(root)
    got = root_from_inclusion_proof(leaf_hash, index, tree_size, proof, tree_hash)
    return expected is not None and got is not None and got == expected


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    tree_hash: str = "sha256",
) -> bool:
    """True iff ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``).

    Stricter than RFC 9162 at the edges: an old size of 0 is consistent only when ``old_root`` is the
    empty-tree hash and the proof is empty; equal sizes only with equal roots and an empty proof.
    """
    H = hash_constructor(tree_hash)
    empty = H(b"").digest()
    r1, r2, path = _as_hash(old_root), _as_hash(new_root), _as_proof(proof)
    if r1 is None or r2 is None or path is None or not _is_count(old_size) or not _is_count(new_size):
        return False
    if old_size > new_size:
        return False
    if old_size == 0:
        return not path and r1 == empty and (new_size > 0 or r2 == empty)
    if old_size == new_size:
        return not path and r1 == r2
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # a complete old tree is itself a node of the new one
        path = [r1, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = H(_NODE + c + fr).digest()
            sr = H(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = H(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == r1 and sr == r2


def first_divergence(
    expected_leaf_hashes: Sequence[bytes], actual_leaf_hashes: Sequence[bytes]
) -> int | None:
    """Index of the first leaf where two logs differ (an edit, insertion or deletion starts there).

    If one is a strict prefix of the other, that is the length of the shorter one; ``None`` if they are
    identical.
    """
    common = min(len(expected_leaf_hashes), len(actual_leaf_hashes))
    for i in range(common):
        if expected_leaf_hashes[i] != actual_leaf_hashes[i]:
            return i
    if len(expected_leaf_hashes) != len(actual_leaf_hashes):
        return common
    return None
