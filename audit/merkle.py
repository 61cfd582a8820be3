"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification: pure functions.

Importable without Django (standard library only), so that the offline verifier and other tools
can rely on it. Hashing is byte for byte RFC 6962 §2.1; verification follows RFC 9162 §2.1.3.2
(inclusion) and §2.1.4.2 (consistency) with all their failure checks, and returns False (never
raises) on malformed input.

Proofs are built over a *node source*: a function ``node(level, index)`` returning the hash of
the complete subtree of 2**level leaves starting at leaf ``index * 2**level``. Any range the
RFC 6962 recursion visits is a run of such complete subtrees, so a proof needs O(log² n) node
hashes and never the whole log. ``inclusion_proof(leaf_hashes, …)`` and
``consistency_proof(leaf_hashes, …)`` build that source from a list in memory; the ledger
builds it from the complete-subtree hashes it stores as it appends (see ``audit.tree``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeSource = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || DATA)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || LEFT || RIGHT)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than N (N > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- compact ranges: the right border of a tree ---------------------------------------------


def frontier_append(frontier: list[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Add LEAF as leaf number SIZE to FRONTIER (the complete-subtree hashes of a tree of SIZE).

    FRONTIER lists the hashes of the complete subtrees that make up a tree of SIZE leaves, the
    largest first (one per set bit of SIZE). Return the new frontier and the complete subtrees
    the append completed, as (level, index, hash), level 0 (the leaf) first.
    """
    frontier = list(frontier)
    completed = [(0, size, leaf)]
    h, level, index = leaf, 0, size
    while index & 1:  # the new node is a right child: merge with the left sibling on the border
        h = node_hash(frontier.pop(), h)
        level, index = level + 1, index >> 1
        completed.append((level, index, h))
    frontier.append(h)
    return frontier, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 root of the tree whose border is FRONTIER."""
    if not frontier:
        return EMPTY_ROOT
    h = frontier[-1]
    for left in reversed(frontier[:-1]):
        h = node_hash(left, h)
    return h


def frontier_nodes(size: int) -> list[tuple[int, int]]:
    """Return (level, index) of the complete subtrees that make up a tree of SIZE, largest first."""
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


# --- proofs over a node source -----------------------------------------------------------------


def _range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """(level, index) of the complete subtrees making up leaves [START, END), largest first.

    Valid for the ranges RFC 6962's recursion visits: START is aligned to the largest power of
    two below END - START (or END - START is a power of two and START aligned to it).
    """
    out = []
    while start < end:
        n = end - start
        level = n.bit_length() - 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def _range_hash(start: int, end: int, node: NodeSource) -> bytes:
    parts = [node(level, index) for level, index in _range_nodes(start, end)]
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def _path(index: int, start: int, end: int, node: NodeSource) -> list[bytes]:
    # RFC 6962 §2.1.1 PATH(m, D[start:end]), iteratively from the root down.
    proof = []
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(_range_hash(start + k, end, node))
            end = start + k
        else:
            proof.append(_range_hash(start, start + k, node))
            start += k
    proof.reverse()
    return proof


def _subproof(m: int, start: int, end: int, complete: bool, node: NodeSource) -> list[bytes]:
    # RFC 6962 §2.1.2 SUBPROOF(m, D[start:end], b).
    proof = []
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(_range_hash(start, end, node))
            break
        k = _split(n)
        if m <= k:
            proof.append(_range_hash(start + k, end, node))
            end = start + k
        else:
            proof.append(_range_hash(start, start + k, node))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def inclusion_proof_from(node: NodeSource, tree_size: int, index: int) -> list[bytes]:
    """Return the inclusion proof of leaf INDEX in the tree of TREE_SIZE leaves served by NODE."""
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of {tree_size} leaves")
    return _path(index, 0, tree_size, node)


def consistency_proof_from(node: NodeSource, new_size: int, old_size: int) -> list[bytes]:
    """Return the consistency proof from OLD_SIZE to NEW_SIZE for the tree served by NODE."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove consistency from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(old_size, 0, new_size, True, node)


def required_nodes_inclusion(tree_size: int, index: int) -> set[tuple[int, int]]:
    """The (level, index) nodes an inclusion proof reads, so a store can fetch them at once."""
    seen = set()
    inclusion_proof_from(lambda lv, ix: seen.add((lv, ix)) or bytes(HASH_SIZE), tree_size, index)
    return seen


def required_nodes_consistency(new_size: int, old_size: int) -> set[tuple[int, int]]:
    """The (level, index) nodes a consistency proof reads."""
    seen = set()
    consistency_proof_from(lambda lv, ix: seen.add((lv, ix)) or bytes(HASH_SIZE), new_size, old_size)
    return seen


# --- the in-memory API ---------------------------------------------------------------------------


class _MemoryNodes:
    """Complete-subtree hashes of a list of leaf hashes, computed once per level on demand."""

    def __init__(self, leaf_hashes):
        self.levels = [list(leaf_hashes)]

    def __call__(self, level: int, index: int) -> bytes:
        while len(self.levels) <= level:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        return self.levels[level][index]


def root(leaf_hashes) -> bytes:
    """Return the RFC 6962 Merkle tree hash of LEAF_HASHES (SHA-256 of the empty string for none)."""
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaf_hashes):
        frontier, _ = frontier_append(frontier, size, leaf)
    return frontier_root(frontier)


def inclusion_proof(leaf_hashes, index) -> list[bytes]:
    """Return the RFC 6962 audit path of leaf INDEX in the tree of LEAF_HASHES."""
    leaf_hashes = list(leaf_hashes)
    return inclusion_proof_from(_MemoryNodes(leaf_hashes), len(leaf_hashes), index)


def consistency_proof(leaf_hashes, old_size) -> list[bytes]:
    """Return the RFC 6962 consistency proof between the first OLD_SIZE leaves and all of them."""
    leaf_hashes = list(leaf_hashes)
    return consistency_proof_from(_MemoryNodes(leaf_hashes), len(leaf_hashes), old_size)


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ---------------------------------------------


def _is_hash(value) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == HASH_SIZE


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(leaf_hash, index, tree_size, proof, root) -> bool:
    """Return True when PROOF shows LEAF_HASH is leaf INDEX of the tree of TREE_SIZE with ROOT."""
    try:
        if not (_is_hash(leaf_hash) and _is_hash(root) and _is_size(index) and _is_size(tree_size)):
            return False
        proof = list(proof)
        if not all(_is_hash(p) for p in proof):
            return False
        if index >= tree_size:
            return False
        fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
        for p in proof:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                if not fn & 1:
                    while not fn & 1 and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and r == bytes(root)
    except (TypeError, ValueError):
        return False


def verify_consistency(old_size, new_size, old_root, new_root, proof) -> bool:
    """Return True when PROOF shows the tree of OLD_SIZE with OLD_ROOT is a prefix of NEW_SIZE/NEW_ROOT."""
    try:
        if not (_is_size(old_size) and _is_size(new_size) and _is_hash(old_root) and _is_hash(new_root)):
            return False
        proof = list(proof)
        if not all(_is_hash(p) for p in proof):
            return False
        if old_size > new_size:
            return False
        if old_size == new_size:
            return not proof and bytes(old_root) == bytes(new_root)
        if old_size == 0:
            return not proof  # the empty tree is a prefix of every tree
        if not proof:
            return False
        if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
            proof = [bytes(old_root)] + proof
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = bytes(proof[0])
        for c in proof[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                if not fn & 1:
                    while not fn & 1 and fn != 0:
                        fn >>= 1
                        sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        return fr == bytes(old_root) and sr == bytes(new_root) and sn == 0
    except (TypeError, ValueError):
        return False
