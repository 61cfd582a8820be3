"""audit.merkle against published vectors, a reference written from the RFC text, and Hypothesis."""

import base64
import hashlib
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "transparency_dev_vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves_hex"]]


def b(text):
    return base64.b64decode(text)


# --- the reference: RFC 6962 §2.1 definitions, transcribed literally (recursive, memoised) ------

REF_DATA = [f"entry {i}".encode() for i in range(300)]


@lru_cache(maxsize=None)
def ref_mth(start, end):
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + REF_DATA[start]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(start, start + k) + ref_mth(start + k, end)).digest()


def ref_path(m, start, end):
    n = end - start
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, start, start + k) + [ref_mth(start + k, end)]
    return ref_path(m - k, start + k, end) + [ref_mth(start, start + k)]


def ref_subproof(m, start, end, b_):
    n = end - start
    if m == n:
        return [] if b_ else [ref_mth(start, end)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, start, start + k, b_) + [ref_mth(start + k, end)]
    return ref_subproof(m - k, start + k, end, False) + [ref_mth(start, start + k)]


REF_LEAVES = [merkle.leaf_hash(d) for d in REF_DATA]


# --- published vectors -----------------------------------------------------------------------------


def test_leaf_and_empty_hashes():
    assert merkle.leaf_hash(b"") == bytes.fromhex(VECTORS["roots_hex"]["1"])
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published_vectors(size):
    assert merkle.root(LEAVES[:size]).hex() == VECTORS["roots_hex"][str(size)]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leafIdx']}-of-{c['treeSize']}")
def test_inclusion_vectors(case):
    proof = [b(p) for p in case["proof"]]
    leaf, idx, size, root = b(case["leafHash"]), case["leafIdx"], case["treeSize"], b(case["root"])
    assert merkle.inclusion_proof(LEAVES[:size], idx) == proof
    assert merkle.verify_inclusion(leaf, idx, size, proof, root)
    # the mutations transparency-dev/merkle checks: each must be rejected
    bad = [
        (b"WrongLeaf".ljust(32, b"\0"), idx, size, proof, root),  # wrong leaf
        (leaf, idx + 1, size, proof, root),  # leafIdx + 1
        (leaf, idx ^ 2, size, proof, root),  # leafIdx ^ 2
        (leaf, idx, size * 2, proof, root),  # treeSize * 2
        (leaf, idx, size // 2, proof, root),  # treeSize / 2
        (leaf, idx, size, proof + [b"\0" * 32], root),  # trailing garbage
        (leaf, idx, size, [b"\0" * 32] + proof, root),  # preceding garbage
        (leaf, idx, size, proof[:-1], root),  # removed component
        (leaf, idx, size, proof[:1] + [root] + proof[1:], root),  # inserted component
        (leaf, idx, size, proof, hashlib.sha256(b"random").digest()),  # random root
        (leaf, idx, size, proof, hashlib.sha256(b"").digest()),  # empty root
        (leaf, idx, size, proof + [root], root),  # trailing root
        (leaf, idx, size, [root] + proof, root),  # preceding root
    ]
    for i in range(len(proof)):
        for bit in (0, 3, 7):
            mutated = list(proof)
            mutated[i] = bytes([mutated[i][0] ^ (1 << bit)]) + mutated[i][1:]
            bad.append((leaf, idx, size, mutated, root))
    for args in bad:
        assert merkle.verify_inclusion(*args) is False, args


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_vectors(case):
    proof = [b(p) for p in case["proof"]]
    s1, s2, r1, r2 = case["size1"], case["size2"], b(case["root1"]), b(case["root2"])
    assert merkle.consistency_proof(LEAVES[:s2], s1) == proof
    assert merkle.verify_consistency(s1, s2, r1, r2, proof)
    bad = [
        (s1, s2, r2, r1, proof),  # swapped roots
        (s1, s2, r1, r1, proof),  # wrong root2
        (s1, s2, r2, r2, proof),  # wrong root1
        (s1 + 1, s2, r1, r2, proof),
        (s1 - 1, s2, r1, r2, proof),
        (s1 ^ 2, s2, r1, r2, proof),
        (s1, s2 * 2, r1, r2, proof),
        (s1, s2 // 2, r1, r2, proof),
        (s1, s2, r1, r2, []),  # empty proof
        (s1, s2, r1, r2, proof[:-1]),  # truncated proof
        (s1, s2, r1, r2, proof + [b"\0" * 32]),  # trailing garbage
        (s1, s2, r1, r2, [b"\0" * 32] + proof),  # preceding garbage
        (s1, s2, r1, r2, proof + [r1]),  # trailing root1
        (s1, s2, r1, r2, proof + [r2]),  # trailing root2
        (s1, s2, r1, r2, [r1] + proof),  # preceding root1
        (s1, s2, r1, r2, [r2] + proof),  # preceding root2
    ]
    for i in range(len(proof)):
        mutated = list(proof)
        mutated[i] = bytes([mutated[i][0] ^ 16]) + mutated[i][1:]
        bad.append((s1, s2, r1, r2, mutated))
    for args in bad:
        assert merkle.verify_consistency(*args) is False, args


def test_edge_cases_of_consistency():
    r8 = merkle.root(LEAVES)
    assert merkle.verify_consistency(8, 8, r8, r8, [])
    assert not merkle.verify_consistency(8, 8, r8, r8, [r8])
    assert not merkle.verify_consistency(8, 8, r8, merkle.root(LEAVES[:7]), [])
    assert merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, r8, [])
    assert not merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, r8, [r8])
    assert not merkle.verify_consistency(9, 8, r8, r8, [])


@pytest.mark.parametrize(
    "args",
    [
        (None, 0, 1, [], bytes(32)),
        (bytes(31), 0, 1, [], bytes(31)),
        ("x" * 32, 0, 1, [], bytes(32)),
        (bytes(32), -1, 1, [], bytes(32)),
        (bytes(32), 0, 0, [], bytes(32)),
        (bytes(32), 0, 2, [b"short"], bytes(32)),
        (bytes(32), 0, 2, None, bytes(32)),
        (bytes(32), True, 2, [bytes(32)], bytes(32)),
        (bytes(32), 0.0, 1, [], bytes(32)),
    ],
)
def test_verify_inclusion_returns_false_on_malformed_input(args):
    assert merkle.verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, None, bytes(32), [bytes(32)]),
        (1, 2, bytes(32), bytes(32), None),
        (1, 2, bytes(32), bytes(32), [b"x"]),
        (-1, 2, bytes(32), bytes(32), [bytes(32)]),
        ("1", 2, bytes(32), bytes(32), [bytes(32)]),
        (1, 2, bytes(32), bytes(32), 5),
    ],
)
def test_verify_consistency_returns_false_on_malformed_input(args):
    assert merkle.verify_consistency(*args) is False


# --- against the reference, every size 1..300 ------------------------------------------------------


def test_roots_and_proofs_match_reference_for_every_size_up_to_300():
    nodes = merkle._MemoryNodes(REF_LEAVES)  # complete subtrees are the same in every prefix
    frontier = []
    for n in range(1, 301):
        frontier, _ = merkle.frontier_append(frontier, n - 1, REF_LEAVES[n - 1])
        root = ref_mth(0, n)
        assert merkle.frontier_root(frontier) == root
        for m in range(n):
            proof = merkle.inclusion_proof_from(nodes, n, m)
            assert proof == ref_path(m, 0, n), (m, n)
            assert merkle.verify_inclusion(REF_LEAVES[m], m, n, proof, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof_from(nodes, n, m)
            assert proof == (ref_subproof(m, 0, n, True) if m < n else []), (m, n)
            assert merkle.verify_consistency(m, n, ref_mth(0, m), root, proof)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 100, 255, 256, 257, 300])
def test_list_api_matches_reference(n):
    leaves = REF_LEAVES[:n]
    assert merkle.root(leaves) == ref_mth(0, n)
    for m in {0, n // 2, n - 1}:
        assert merkle.inclusion_proof(leaves, m) == ref_path(m, 0, n)
    for m in {1, n // 2 or 1, n}:
        assert merkle.consistency_proof(leaves, m) == (ref_subproof(m, 0, n, True) if m < n else [])


# --- Hypothesis --------------------------------------------------------------------------------------


@st.composite
def tree_and_index(draw):
    n = draw(st.integers(min_value=1, max_value=300))
    return n, draw(st.integers(min_value=0, max_value=n - 1))


@settings(max_examples=300, deadline=None)
@given(tree_and_index(), st.integers(min_value=0, max_value=31), st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_breaks_an_inclusion_proof(case, byte, bit):
    n, m = case
    leaves, root = REF_LEAVES[:n], ref_mth(0, n)
    proof = merkle.inclusion_proof(leaves, m)
    assert merkle.verify_inclusion(leaves[m], m, n, proof, root)
    flipped_leaf = bytearray(leaves[m])
    flipped_leaf[byte] ^= 1 << bit
    assert not merkle.verify_inclusion(bytes(flipped_leaf), m, n, proof, root)
    if proof:
        i = (byte + bit) % len(proof)
        mutated = list(proof)
        mutated[i] = bytes(a ^ (1 << bit if j == byte else 0) for j, a in enumerate(mutated[i]))
        assert not merkle.verify_inclusion(leaves[m], m, n, mutated, root)
    for other in {m + 1, m - 1}:
        if 0 <= other < n and leaves[other] != leaves[m]:
            assert not merkle.verify_inclusion(leaves[m], other, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_holds_for_prefixes_and_fails_for_forks(n, data):
    m = data.draw(st.integers(min_value=1, max_value=n))
    proof = merkle.consistency_proof(REF_LEAVES[:n], m)
    assert merkle.verify_consistency(m, n, ref_mth(0, m), ref_mth(0, n), proof)
    # a forked history: leaf j < m replaced; its old root is no prefix of the new tree
    j = data.draw(st.integers(min_value=0, max_value=m - 1))
    forked = list(REF_LEAVES[:m])
    forked[j] = merkle.leaf_hash(b"forged")
    assert not merkle.verify_consistency(m, n, merkle.root(forked), ref_mth(0, n), proof)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.binary(max_size=40), st.integers()),
    st.integers(min_value=-5, max_value=600),
    st.integers(min_value=-5, max_value=600),
    st.lists(st.one_of(st.binary(max_size=40), st.none(), st.integers()), max_size=12),
    st.binary(max_size=40),
)
def test_verify_never_raises(leaf, index, size, proof, root):
    assert merkle.verify_inclusion(leaf, index, size, proof, root) in (True, False)
    assert merkle.verify_consistency(index, size, leaf, root, proof) in (True, False)


def test_merkle_imports_without_django():
    code = "import sys; sys.modules['django'] = None; import audit.merkle, audit.note, audit.chain; print('ok')"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
