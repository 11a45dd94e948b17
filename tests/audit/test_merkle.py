"""RFC 6962 Merkle tree: public test vectors, an independent recursive reference, properties, garbage.

Expected hashes are the published vectors of the Certificate Transparency reference tree as kept in
transparency-dev/merkle (``proof/verify_test.go``, ``rfc6962/rfc6962_test.go``): eight leaves, the roots of
every prefix, and inclusion/consistency proofs for the listed cases.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    first_divergence,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from modelreg.errors import BadInput


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- published vectors ---------------------------------------------------------------------------------

LEAVES = [
    h(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

ROOTS = [  # ROOTS[n - 1] is the root of the first n leaves
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (0-based leaf index, tree size, audit path)
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, consistency proof)
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    t = MerkleTree()
    for leaf in LEAVES:
        t.append(leaf_hash(leaf))
    return t


def test_hasher_vectors() -> None:
    assert h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    assert leaf_hashes([b"", b"L123456"]) == [leaf_hash(b""), leaf_hash(b"L123456")]


def test_domain_separation() -> None:
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert a != b
    assert node_hash(a, b) != leaf_hash(a + b)  # a node cannot be passed off as a leaf
    assert node_hash(a, b) != node_hash(b, a)


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_of_every_prefix(tree: MerkleTree, n: int) -> None:
    hashes = [leaf_hash(x) for x in LEAVES[:n]]
    assert tree.root_at(n) == ROOTS[n - 1]
    assert root_from_leaf_hashes(hashes) == ROOTS[n - 1]
    assert MerkleTree.from_leaf_hashes(hashes).root() == ROOTS[n - 1]
    assert MerkleTree(hashes).root() == ROOTS[n - 1]


def test_empty_tree() -> None:
    t = MerkleTree()
    assert t.size == 0 and len(t) == 0
    assert t.root() == EMPTY_ROOT == root_from_leaf_hashes([]) == t.root_at(0)
    assert MerkleTree.from_leaf_hashes([]).root() == EMPTY_ROOT
    assert t.consistency_proof(0) == []


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_vectors(tree: MerkleTree, index: int, size: int, proof: list[bytes]) -> None:
    assert tree.inclusion_proof(index, size) == proof
    leaf = leaf_hash(LEAVES[index])
    root = ROOTS[size - 1]
    assert root_from_inclusion_proof(leaf, index, size, proof) == root
    assert verify_inclusion(leaf, index, size, proof, root)


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> list[tuple]:
    # The probes of transparency-dev/merkle's verifierCheck: every one must be refused.
    probes = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, root, leaf, wrong))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS[1:])
def test_inclusion_vectors_refuse_corruption(index: int, size: int, proof: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    for probe in _corrupt_inclusion(index, size, proof, ROOTS[size - 1], leaf):
        i, n, root, lh, pr = probe
        assert not verify_inclusion(lh, i, n, pr, root), probe


def test_inclusion_single_entry() -> None:
    one = leaf_hash(b"data")
    assert verify_inclusion(one, 0, 1, [], one)
    assert not verify_inclusion(b"", 0, 1, [], one)
    assert not verify_inclusion(one, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_impossible_positions(index: int, size: int) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, [], b"")
    assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_consistency_vectors(tree: MerkleTree, old: int, new: int, proof: list[bytes]) -> None:
    assert tree.consistency_proof(old, new) == proof
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _corrupt_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]) -> list[tuple]:
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((old, new, r1, r2, wrong))
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS[1:])
def test_consistency_vectors_refuse_corruption(old: int, new: int, proof: list[bytes]) -> None:
    for probe in _corrupt_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof):
        assert not verify_consistency(*probe), probe


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOTS[0], [], True),
        (0, 8, EMPTY_ROOT, ROOTS[7], [], True),
        (1, 1, ROOTS[0], ROOTS[0], [], True),
        # Stricter than the Go library: an empty old tree must carry the empty-tree hash.
        (0, 1, SOME_HASH, ROOTS[0], [], False),
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, ROOTS[0], ROOTS[1], [], False),  # same size, different roots
        (1, 0, ROOTS[0], EMPTY_ROOT, [], False),  # time travel
        (2, 1, ROOTS[1], ROOTS[0], [], False),
        (1, 2, ROOTS[0], ROOTS[1], [], False),  # empty proof
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # roots match, proof not empty
        (0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT], False),
        (1, 1, ROOTS[0], ROOTS[0], [EMPTY_ROOT], False),
    ],
)
def test_consistency_edges(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], ok: bool) -> None:
    assert verify_consistency(old, new, r1, r2, proof) is ok


# -- an independent reference: RFC 6962 §2.1 written literally (recursive, slow, obviously right) -----------


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


REF_N = 40
REF_DATA = [f"entry {i}".encode() for i in range(REF_N)]


@pytest.fixture(scope="module")
def ref_tree() -> MerkleTree:
    return MerkleTree(leaf_hashes(REF_DATA))


def test_matches_reference_for_all_small_sizes(ref_tree: MerkleTree) -> None:
    for n in range(0, REF_N + 1):
        root = ref_mth(REF_DATA[:n])
        assert ref_tree.root_at(n) == root
        assert root_from_leaf_hashes(leaf_hashes(REF_DATA[:n])) == root
        for m in range(n):
            proof = ref_tree.inclusion_proof(m, n)
            assert proof == ref_path(m, REF_DATA[:n])
            assert verify_inclusion(leaf_hash(REF_DATA[m]), m, n, proof, root)
        for m in range(1, n):
            proof = ref_tree.consistency_proof(m, n)
            assert proof == ref_subproof(m, REF_DATA[:n], True)
            assert verify_consistency(m, n, ref_tree.root_at(m), root, proof)


def test_append_and_bulk_build_agree() -> None:
    hashes = leaf_hashes(f"e{i}".encode() for i in range(1000))
    bulk = MerkleTree.from_leaf_hashes(hashes)
    incremental = MerkleTree()
    for i, lh in enumerate(hashes):
        assert incremental.append(lh) == i
        if i % 97 == 0:
            assert incremental.root() == root_from_leaf_hashes(hashes[: i + 1])
    assert incremental.root() == bulk.root() == root_from_leaf_hashes(hashes)
    assert incremental.inclusion_proof(777) == bulk.inclusion_proof(777)
    assert incremental.consistency_proof(333, 999) == bulk.consistency_proof(333, 999)
    assert bulk.leaf_hash(5) == hashes[5]
    # appending to a bulk-built tree keeps it consistent
    bulk.append(leaf_hash(b"next"))
    assert bulk.root() == root_from_leaf_hashes([*hashes, leaf_hash(b"next")])


def test_large_tree_no_recursion_limit() -> None:
    # 2**17 + 3 leaves: a ragged right edge at several levels; iterative code handles any size.
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(2**17 + 3)]
    tree = MerkleTree.from_leaf_hashes(hashes)
    root = root_from_leaf_hashes(hashes)
    assert tree.root() == root
    for index, depth in ((0, 18), (2**16, 18), (2**17, 3), (2**17 + 2, 2)):
        proof = tree.inclusion_proof(index)
        assert len(proof) == depth
        assert verify_inclusion(hashes[index], index, tree.size, proof, root)
    proof = tree.consistency_proof(2**17 + 1)
    assert verify_consistency(2**17 + 1, tree.size, tree.root_at(2**17 + 1), root, proof)


# -- properties -------------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    size = draw(st.integers(min_value=1, max_value=300))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    bit = draw(st.integers(min_value=0, max_value=255))
    hashes = [hashlib.sha256(b"%d/%d" % (size, i)).digest() for i in range(size)]
    return hashes, index, bit


@PROPERTY_SETTINGS
@given(tree_and_index())
def test_property_inclusion(case: tuple[list[bytes], int, int]) -> None:
    hashes, index, bit = case
    tree = MerkleTree.from_leaf_hashes(hashes)
    root = tree.root()
    proof = tree.inclusion_proof(index)
    assert verify_inclusion(hashes[index], index, len(hashes), proof, root)
    assert not verify_inclusion(_flip(hashes[index], bit), index, len(hashes), proof, root)
    assert not verify_inclusion(hashes[index], index, len(hashes), proof, _flip(root, bit))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], bit)
        assert not verify_inclusion(hashes[index], index, len(hashes), bad, root)
    if len(hashes) > 1:
        other = (index + 1) % len(hashes)
        assert not verify_inclusion(hashes[other], index, len(hashes), proof, root)


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    new = draw(st.integers(min_value=2, max_value=300))
    old = draw(st.integers(min_value=1, max_value=new - 1))
    bit = draw(st.integers(min_value=0, max_value=255))
    hashes = [hashlib.sha256(b"c%d/%d" % (new, i)).digest() for i in range(new)]
    return hashes, old, bit


@PROPERTY_SETTINGS
@given(two_sizes())
def test_property_consistency(case: tuple[list[bytes], int, int]) -> None:
    hashes, old, bit = case
    new = len(hashes)
    tree = MerkleTree(hashes)
    r1, r2 = tree.root_at(old), tree.root()
    assert r1 == root_from_leaf_hashes(hashes[:old])
    proof = tree.consistency_proof(old, new)
    assert verify_consistency(old, new, r1, r2, proof)
    assert not verify_consistency(old, new, _flip(r1, bit), r2, proof)
    assert not verify_consistency(old, new, r1, _flip(r2, bit), proof)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], bit)
        assert not verify_consistency(old, new, r1, r2, bad)
    # A rewritten history (one old leaf changed) can never be proven consistent with the new root.
    forged = list(hashes)
    forged[bit % old] = _flip(forged[bit % old], bit)
    forged_tree = MerkleTree.from_leaf_hashes(forged)
    assert not verify_consistency(
        old, new, forged_tree.root_at(old), r2, forged_tree.consistency_proof(old, new)
    )


# -- garbage in, False out ---------------------------------------------------------------------------------

GARBAGE = [
    None,
    "",
    "00" * 32,
    1.5,
    -1,
    True,
    [],
    {},
    object(),
    b"\x00" * 31,
    b"\x00" * 33,
    [b"\x00" * 32, 7],
]


@pytest.mark.parametrize("junk", GARBAGE, ids=repr)
def test_verifiers_never_raise(junk: object) -> None:
    leaf, root = leaf_hash(LEAVES[0]), ROOTS[7]
    proof = INCLUSION_PROOFS[1][2]
    assert verify_inclusion(junk, 0, 8, proof, root) is False
    assert verify_inclusion(leaf, junk, 8, proof, root) is False
    assert verify_inclusion(leaf, 0, junk, proof, root) is False
    assert verify_inclusion(leaf, 0, 8, junk, root) is False
    assert verify_inclusion(leaf, 0, 8, proof, junk) is False
    cproof = CONSISTENCY_PROOFS[2][2]
    args = [6, 8, ROOTS[5], ROOTS[7], cproof]
    assert verify_consistency(*args)
    for pos in range(5):
        bad = list(args)
        bad[pos] = junk
        assert verify_consistency(*bad) is False, pos


def test_huge_sizes_are_refused_not_crashing() -> None:
    leaf = leaf_hash(LEAVES[0])
    assert not verify_inclusion(leaf, 0, 2**70, INCLUSION_PROOFS[1][2], ROOTS[7])
    assert not verify_consistency(6, 2**70, ROOTS[5], ROOTS[7], CONSISTENCY_PROOFS[2][2])


def test_tree_argument_errors(tree: MerkleTree) -> None:
    with pytest.raises(BadInput, match="leaf index"):
        tree.inclusion_proof(8)
    with pytest.raises(BadInput, match="leaf index"):
        tree.inclusion_proof(-1)
    with pytest.raises(BadInput, match="tree size"):
        tree.inclusion_proof(0, 9)
    with pytest.raises(BadInput, match="tree size"):
        tree.root_at(9)
    with pytest.raises(BadInput, match="old size"):
        tree.consistency_proof(5, 4)
    with pytest.raises(BadInput, match="new size"):
        tree.consistency_proof(1, 9)
    with pytest.raises(BadInput, match="32 bytes"):
        MerkleTree().append(b"short")
    with pytest.raises(BadInput, match="32 bytes"):
        MerkleTree().append("not bytes")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="leaf index"):
        tree.leaf_hash(8)
    with pytest.raises(BadInput, match=r"leaf hash #1 must be 32 bytes\. Got str instead"):
        MerkleTree.from_leaf_hashes([leaf_hash(b"a"), "x" * 32])  # type: ignore[list-item]
    with pytest.raises(BadInput, match=r"leaf hash #2 must be 32 bytes\. Got 31 bytes instead"):
        MerkleTree.from_leaf_hashes([leaf_hash(b"a"), leaf_hash(b"b"), b"x" * 31])
    assert MerkleTree.from_leaf_hashes([bytearray(leaf_hash(b"a"))]).root() == leaf_hash(b"a")


def test_first_divergence() -> None:
    a = leaf_hashes(LEAVES)
    assert first_divergence(a, list(a)) is None
    assert first_divergence([], []) is None
    edited = list(a)
    edited[3] = leaf_hash(b"edited")
    assert first_divergence(a, edited) == 3
    assert first_divergence(a, a[:5]) == 5  # deletion at the end
    assert first_divergence(a, a[:2] + a[3:]) == 2  # deletion in the middle
    assert first_divergence(a, [a[1], a[0], *a[2:]]) == 0  # reordering
    assert first_divergence(a[:4], a) == 4  # extra entries
