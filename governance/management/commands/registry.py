"""Operate the registry: ``registry keys generate`` creates the snapshot master key and the
subject-index key at the files their settings name; ``registry sweep`` removes stored files that
no record names (left by uploads whose process died before its rollback cleaned up)."""

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from config.commands import CustosCommand

from ...services.registry import master_key_rotate, storage_sweep
from ...storage import generate_key_file, key_id, load_secret_key


class Command(CustosCommand):
    help = "Operate the registry's keys, or sweep stored files that no record names."
    requires_system_checks = []  # `keys generate` must run before the keys exist

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keys = sub.add_parser("keys", help="Manage the snapshot master key and the subject-index key.")
        keys_sub = keys.add_subparsers(dest="keys_action", required=True)
        gen = keys_sub.add_parser("generate", help="Create CUSTOS_MASTER_KEY_FILE and CUSTOS_INDEX_KEY_FILE.")
        gen.add_argument("--if-missing", action="store_true", help="Keep key files that exist.")
        keys_sub.add_parser(
            "rotate-master",
            help="Rewrap every live snapshot data key under a new master key and replace CUSTOS_MASTER_KEY_FILE.",
        )
        sweep = sub.add_parser("sweep", help="Remove snapshot and artifact files that no record names.")
        sweep.add_argument("--older-than", type=int, default=60, metavar="MINUTES", help="Only files older (default 60).")
        sweep.add_argument("--dry-run", action="store_true", help="List them; remove nothing.")

    def handle(self, *args, action, keys_action=None, if_missing=False, **opts):
        if action == "sweep":
            return self._sweep(**opts)
        if keys_action == "rotate-master":
            
            result = master_key_rotate()
            self.stdout.write(
                f"Master key {result['old_key_id']} -> {result['new_key_id']}: "
                f"{result['rewrapped_data_keys']} data key(s) rewrapped. Destroy any copy of the old key file."
            )
            return
        for name in ("CUSTOS_MASTER_KEY", "CUSTOS_INDEX_KEY"):
            path = getattr(settings, f"{name}_FILE")
            if not path:
                raise CommandError(f"Set {name}_FILE to the path where the key should live.")
            if Path(path).exists():
                if not if_missing:
                    raise CommandError(f"{path} exists; refusing to overwrite a key (data would become unreadable).")
            else:
                generate_key_file(path)
            self.stdout.write(f"{name}: {path} (key id {key_id(load_secret_key(name))})")

    def _sweep(self, older_than, dry_run, **_):
        
        result = storage_sweep(older_than=timedelta(minutes=older_than), dry_run=dry_run)
        for rel in result["files"]:
            self.stdout.write(f"{'would remove' if dry_run else 'removed'} {rel}")
        self.stdout.write(
            f"{len(result['files'])} unnamed file(s), {result['bytes']:,} bytes{' (dry run: nothing removed)' if dry_run else ''}."
        )
