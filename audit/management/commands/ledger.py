"""Operate the ledger: keys (generate, rotate, revoke, list), checkpoint, verify, export."""

import json
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ...keys import generate_key_file, load_key_file, signing_key
from ...selectors import evidence_bundle, key_list, queued_count, subjects_about
from ...services import CheckpointConflict, checkpoint_create, ledger_key_revoke, ledger_key_rotate
from ...verification import ledger_verify


class Command(BaseCommand):
    help = "Operate the signed ledger: keys, checkpoints, verification and evidence export."
    requires_system_checks = []  # `keys generate` must run before a key exists

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keys = sub.add_parser("keys", help="Manage signing keys.")
        keys_sub = keys.add_subparsers(dest="keys_action", required=True)
        gen = keys_sub.add_parser("generate", help="Create the signing key file named by CUSTOS_SIGNING_KEY_FILE.")
        gen.add_argument("--if-missing", action="store_true", help="Do nothing when the key file exists.")
        keys_sub.add_parser("rotate", help="Replace the signing key; the change is a ledger entry signed by the old key.")
        revoke = keys_sub.add_parser("revoke", help="Withdraw trust in a retired key (a ledger entry).")
        revoke.add_argument("key_id", help="The 8-hex-digit id of the retired key.")
        revoke.add_argument("--reason", required=True, help="Why the key is revoked (recorded in the ledger).")
        keys_sub.add_parser("list", help="Print the ledger's keys as note verifier keys with their status.")

        sub.add_parser("checkpoint", help="Sign a checkpoint of the ledger and export it to CUSTOS_CHECKPOINT_DIR.")

        verify = sub.add_parser("verify", help="Recompute and check every entry, signature, tree root and checkpoint.")
        verify.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            metavar="FILE",
            help="A signed checkpoint kept outside the database to check the ledger against. Repeatable.",
        )
        verify.add_argument("--no-progress", action="store_true", help="Do not print progress.")

        export = sub.add_parser("export", help="Write an evidence bundle that `python -m audit.verifier` checks.")
        export.add_argument("--out", required=True, help="Path of the bundle (JSON) to write.")
        export.add_argument("--subject", help="Only this subject's entries, with inclusion proofs.")
        export.add_argument(
            "--related", action="store_true",
            help="With --subject: everything about it (for a model version: its model, training run, code, "
                 "datasets, gate runs and releases).",
        )

    def handle(self, *args, action, **opts):
        try:
            if action == "keys":
                getattr(self, f"_keys_{opts['keys_action']}")(**opts)
            else:
                getattr(self, f"_{action}")(**opts)
        except (ImproperlyConfigured, CheckpointConflict, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    def _keys_generate(self, if_missing=False, **_):
        path = settings.CUSTOS_SIGNING_KEY_FILE
        if not path:
            raise CommandError("Set CUSTOS_SIGNING_KEY_FILE to the path where the key should live.")
        if Path(path).exists():
            if if_missing:
                self.stdout.write(f"Signing key exists (key id {signing_key().key_id}).")
                return
            raise CommandError(f"{path} exists; refusing to overwrite a signing key (use `ledger keys rotate`).")
        generate_key_file(path)
        self.stdout.write(f"Created signing key {signing_key().verifier_key}")

    def _keys_rotate(self, **_):
        old = signing_key()
        path = Path(settings.CUSTOS_SIGNING_KEY_FILE)
        staged = path.with_name(path.name + ".next")
        if staged.exists():
            staged.unlink()  # left by a rotation that did not commit: never used to sign
        generate_key_file(staged)
        new = load_key_file(staged, old.name)
        try:
            entry = ledger_key_rotate(new_key=new, actor=None)
        except Exception:
            staged.unlink()
            raise
        # The ledger now names the new key as active: install it and destroy the old private key.
        os.replace(staged, path)
        self.stdout.write(
            f"Rotated from key {old.key_id} to {new.key_id} (ledger entry {entry.seq}).\n"
            f"New verifier key: {new.verifier_key}"
        )

    def _keys_revoke(self, key_id, reason, **_):
        entry = ledger_key_revoke(key_id=key_id, reason=reason, actor=None)
        self.stdout.write(f"Revoked key {key_id} (ledger entry {entry.seq}).")

    def _keys_list(self, **_):
        for key in key_list():
            self.stdout.write(f"{key['verifier_key']}  {key['status']} since entry {key['introduced_at']}")

    def _checkpoint(self, **_):
        checkpoint = checkpoint_create()
        self.stdout.write(checkpoint.note, ending="")
        self.stderr.write(f"Exported to {settings.CUSTOS_CHECKPOINT_DIR}")

    def _verify(self, checkpoint=(), no_progress=False, **_):
        external = []
        for name in checkpoint:
            try:
                external.append((name, Path(name).read_text()))
            except OSError as exc:
                raise CommandError(f"Cannot read checkpoint {name}: {exc}") from exc

        def progress(done, total):
            sys.stderr.write(f"\rverified {done}/{total} entries")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        result = ledger_verify(external_checkpoints=external, progress=None if no_progress else progress)
        if not result.ok:
            raise CommandError(f"Ledger verification FAILED: {result.error}", returncode=1)
        self.stdout.write(
            f"OK: {result.size} entries, root {result.root.hex()}, {result.checkpoints} stored and "
            f"{result.external} external checkpoint(s) consistent; keys {', '.join(result.keys) or 'none'}."
        )
        queued, oldest = queued_count()
        if queued:
            self.stdout.write(
                f"Not yet sealed: {queued} committed entr{'y' if queued == 1 else 'ies'} in the queue (oldest "
                f"queued {oldest:%Y-%m-%d %H:%M:%S} UTC); `manage.py ledger checkpoint` seals them."
            )

    def _export(self, out, subject=None, related=False, **_):
        if related and not subject:
            raise CommandError("--related needs --subject.")
        checkpoint = checkpoint_create()
        subjects = subjects_about(subject) if related else None
        bundle = evidence_bundle(checkpoint=checkpoint, subject=None if related else subject, subjects=subjects)
        Path(out).write_text(json.dumps(bundle, indent=1, sort_keys=True))
        self.stdout.write(
            f"Wrote {len(bundle['entries'])} entries at tree size {checkpoint.tree_size} to {out}.\n"
            f"Verify offline: python -m audit.verifier {out} --key {signing_key().verifier_key}"
        )
