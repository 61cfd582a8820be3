"""The ledger: signed, hash-chained, append-only entries.

An entry names its subject by a string (``"governance.modelversion:42"``), never by a foreign
key, so that nothing elsewhere can cascade into it.
"""

from django.db import models

from .chain import entry_content


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete a ledger entry through the ORM."""


class LedgerEntryQuerySet(models.QuerySet):
    """Refuses every bulk write: entries are written only by ``ledger_append``."""

    def update(self, **kwargs):
        raise AppendOnlyError("Ledger entries cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Ledger entries cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Ledger entries cannot be updated.")

    def bulk_create(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are written only by audit.services.ledger_append.")

    _raw_delete = delete


class AppendOnlyQuerySet(LedgerEntryQuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        return models.QuerySet.bulk_create(self, objs, *args, **kwargs)


class AppendOnlyModel(models.Model):
    """Rows that are inserted once and never changed: the ORM refuses updates and deletes."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows cannot be deleted.")


class LedgerEntry(models.Model):
    seq = models.BigIntegerField(primary_key=True, help_text="Sequence number, gapless from 0.")
    created_at = models.DateTimeField(help_text="UTC time of the append.")
    kind = models.CharField(max_length=100, help_text="Dotted event name.")
    subject = models.CharField(max_length=200, help_text="'app.model:pk' of the subject.")
    actor = models.CharField(max_length=150, help_text="User name of the person or service account.")
    payload = models.JSONField(default=dict)
    prev_hash = models.BinaryField(max_length=32, help_text="Hash of the previous entry (32 zero bytes for seq 0).")
    entry_hash = models.BinaryField(max_length=32, help_text="RFC 6962 leaf hash of the canonical bytes.")
    signature = models.BinaryField(max_length=64, help_text="Ed25519 signature of the canonical bytes.")
    key_id = models.CharField(max_length=8, help_text="Signed-note key id of the signing key.")

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"
        # Plain b-tree indexes (no LIKE-pattern twins on PostgreSQL): every append maintains them.
        indexes = [
            models.Index(fields=["kind", "seq"], name="audit_entry_kind_seq"),
            models.Index(fields=["subject", "seq"], name="audit_entry_subject_seq"),
        ]
        permissions = [("export_ledgerentry", "Can export evidence bundles")]

    def __str__(self):
        return f"#{self.seq} {self.kind} {self.subject}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Ledger entries cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries cannot be deleted.")

    def canonical_content(self) -> dict:
        """Return the dict whose RFC 8785 bytes are hashed and signed."""
        return entry_content(
            seq=self.seq,
            created_at=self.created_at,
            kind=self.kind,
            subject=self.subject,
            actor=self.actor,
            payload=self.payload,
            prev_hash=bytes(self.prev_hash),
            key_id=self.key_id,
        )


class QueuedEntry(models.Model):
    """An entry appended while another transaction held the ledger, waiting to be sealed.

    It commits or rolls back with the caller's change, like a sealed entry; right after the
    commit it is given its sequence number, chained, signed and deleted from here in a batch
    with any others (``audit.services.seal_queued_now``). Nothing here is evidence yet: the
    ledger proper is ``LedgerEntry``.
    """

    id = models.BigAutoField(primary_key=True)
    queued_at = models.DateTimeField()
    kind = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    actor = models.CharField(max_length=150)
    payload = models.TextField(help_text="RFC 8785 canonical JSON of the payload.")

    class Meta:
        verbose_name = "queued ledger entry"
        verbose_name_plural = "queued ledger entries"

    def __str__(self):
        return f"queued {self.kind} {self.subject}"


class LedgerHead(models.Model):
    """One row holding the ledger's size, last hash, tree border and active key.

    Locking it serialises writers. ``frontier`` is the concatenated hashes of the complete
    subtrees that make up the tree (largest first), so the current root needs no query.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(max_length=32, default=bytes(32))
    frontier = models.BinaryField(default=b"")
    key_id = models.CharField(max_length=8, blank=True, default="", help_text="Key id of the active signing key.")

    class Meta:
        verbose_name = "ledger head"

    def frontier_hashes(self) -> list[bytes]:
        data = bytes(self.frontier)
        return [data[i : i + 32] for i in range(0, len(data), 32)]


TREE_LEVEL_SHIFT = 48  # node id = level << 48 | index: 2**48 leaves is far beyond any ledger


class TreeNode(AppendOnlyModel):
    """The hash of a complete subtree of 2**level entries (level >= 1), stored when completed.

    Leaf hashes (level 0) are the entries' own hashes. Proofs read O(log² n) of these rows
    instead of rehashing the log (the idea of Tessera's tiles, one row per node).
    """

    id = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField(max_length=32)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = "Merkle tree node"

    @staticmethod
    def node_id(level: int, index: int) -> int:
        return level << TREE_LEVEL_SHIFT | index

    @property
    def level(self) -> int:
        return self.id >> TREE_LEVEL_SHIFT

    @property
    def index(self) -> int:
        return self.id & ((1 << TREE_LEVEL_SHIFT) - 1)


class Checkpoint(AppendOnlyModel):
    """A signed C2SP checkpoint: the tree size and root Custos committed to, as a signed note."""

    tree_size = models.BigIntegerField(primary_key=True)
    root_hash = models.BinaryField(max_length=32)
    note = models.TextField(help_text="The signed note (checkpoint body, blank line, signature).")
    key_id = models.CharField(max_length=8)
    created_at = models.DateTimeField()

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["tree_size"]
        get_latest_by = "tree_size"

    def __str__(self):
        return f"checkpoint at size {self.tree_size}"
