"""The ledger: signed, hash-chained, append-only entries.

An entry names its subject by a string (``"governance.modelversion:42"``), never by a foreign
key, so that nothing elsewhere can cascade into it.
"""

from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete a ledger entry through the ORM."""


class LedgerEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Ledger entries cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Ledger entries cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Ledger entries cannot be updated.")

    def bulk_create(self, *args, **kwargs):
        raise AppendOnlyError("Ledger entries are written only by audit.services.ledger_append.")

    _raw_delete = delete


class LedgerEntry(models.Model):
    seq = models.BigIntegerField(primary_key=True, help_text="Sequence number, gapless from 0.")
    created_at = models.DateTimeField(help_text="UTC time of the append.")
    kind = models.CharField(max_length=100, db_index=True, help_text="Dotted event name.")
    subject = models.CharField(max_length=200, db_index=True, help_text="'app.model:pk' of the subject.")
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


def entry_content(*, seq, created_at, kind, subject, actor, payload, prev_hash, key_id) -> dict:
    """The signed content of an entry: every field but its own hash and signature."""
    return {
        "seq": seq,
        "time": created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "kind": kind,
        "subject": subject,
        "actor": actor,
        "payload": payload,
        "prev": prev_hash.hex(),
        "key_id": key_id,
    }


class LedgerHead(models.Model):
    """One row holding the ledger's size and last hash; locking it serialises writers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(max_length=32, default=bytes(32))

    class Meta:
        verbose_name = "ledger head"
