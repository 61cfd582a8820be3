"""Merkle proofs served from the stored complete-subtree hashes (one or two queries per proof)."""

from . import merkle
from .models import TREE_LEVEL_SHIFT, LedgerEntry, LedgerHead, TreeNode

INDEX_MASK = (1 << TREE_LEVEL_SHIFT) - 1


class ProofError(ValueError):
    """The sizes or index asked for are outside the ledger."""


def ledger_size() -> int:
    head = LedgerHead.objects.filter(id=1).only("size").first()
    return head.size if head else 0


def node_position(node_id: int) -> tuple[int, int]:
    """Return the (level, index) a stored node id names (the inverse of ``TreeNode.node_id``)."""
    return node_id >> TREE_LEVEL_SHIFT, node_id & INDEX_MASK


def fetch_nodes(wanted) -> dict[tuple[int, int], bytes]:
    """Return the hashes of the (level, index) complete subtrees in WANTED, in at most two queries."""
    wanted = set(wanted)
    leaves = [index for level, index in wanted if level == 0]
    inner = [TreeNode.node_id(level, index) for level, index in wanted if level > 0]
    found = {}
    if leaves:
        for seq, h in LedgerEntry.objects.filter(seq__in=leaves).values_list("seq", "entry_hash"):
            found[(0, seq)] = bytes(h)
    if inner:
        for node_id, h in TreeNode.objects.filter(id__in=inner).values_list("id", "hash"):
            found[node_position(node_id)] = bytes(h)
    missing = wanted - found.keys()
    if missing:
        level, index = min(missing)
        raise ProofError(f"The stored tree lacks node (level {level}, index {index}); run `manage.py ledger verify`.")
    return found


def _check_size(size: int) -> None:
    current = ledger_size()
    if not 0 <= size <= current:
        raise ProofError(f"Tree size {size} is outside the ledger (it has {current} entries).")


def inclusion_proof(*, seq: int, tree_size: int) -> list[bytes]:
    """Return the inclusion proof of entry SEQ in the tree of TREE_SIZE entries."""
    _check_size(tree_size)
    if not 0 <= seq < tree_size:
        raise ProofError(f"Entry {seq} is not in a tree of {tree_size} entries.")
    nodes = fetch_nodes(merkle.required_nodes_inclusion(tree_size, seq))
    return merkle.inclusion_proof_from(lambda lv, ix: nodes[(lv, ix)], tree_size, seq)


def inclusion_proofs(*, seqs, tree_size: int, chunk: int = 2000) -> dict[int, list[bytes]]:
    """The inclusion proofs of every entry in SEQS in the tree of TREE_SIZE entries, {seq: proof}.

    The same proofs as ``inclusion_proof``, with the stored nodes of CHUNK proofs fetched together
    (an evidence bundle of thousands of entries took three queries per entry).
    """
    _check_size(tree_size)
    seqs = sorted(set(seqs))
    for seq in seqs:
        if not 0 <= seq < tree_size:
            raise ProofError(f"Entry {seq} is not in a tree of {tree_size} entries.")
    proofs = {}
    for start in range(0, len(seqs), chunk):
        part = seqs[start:start + chunk]
        required = {seq: merkle.required_nodes_inclusion(tree_size, seq) for seq in part}
        wanted = set().union(*required.values()) if required else set()
        nodes = {}
        wanted_list = sorted(wanted)
        for i in range(0, len(wanted_list), 900):  # stay under SQLite's bound-parameter limit
            nodes.update(fetch_nodes(wanted_list[i:i + 900]))
        for seq in part:
            proofs[seq] = merkle.inclusion_proof_from(lambda lv, ix: nodes[(lv, ix)], tree_size, seq)
    return proofs


def consistency_proof(*, old_size: int, new_size: int) -> list[bytes]:
    """Return the consistency proof between the trees of OLD_SIZE and NEW_SIZE entries."""
    _check_size(new_size)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"Cannot prove consistency from size {old_size} to size {new_size}.")
    nodes = fetch_nodes(merkle.required_nodes_consistency(new_size, old_size))
    return merkle.consistency_proof_from(lambda lv, ix: nodes[(lv, ix)], new_size, old_size)


def root_at(size: int) -> bytes:
    """Return the tree root after the first SIZE entries."""
    _check_size(size)
    wanted = merkle.frontier_nodes(size)
    nodes = fetch_nodes(wanted)
    return merkle.frontier_root([nodes[w] for w in wanted])
