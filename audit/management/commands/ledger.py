"""Operate the ledger: ``ledger keys generate``."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...keys import generate_key_file, signing_key


class Command(BaseCommand):
    help = "Operate the signed ledger."
    requires_system_checks = []  # `keys generate` must run before a key exists

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keys = sub.add_parser("keys", help="Manage signing keys.")
        keys_sub = keys.add_subparsers(dest="keys_action", required=True)
        gen = keys_sub.add_parser("generate", help="Create the signing key file named by CUSTOS_SIGNING_KEY_FILE.")
        gen.add_argument("--if-missing", action="store_true", help="Do nothing when the key file exists.")

    def handle(self, *args, action, **opts):
        if action == "keys" and opts["keys_action"] == "generate":
            self._keys_generate(**opts)

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
