"""Load the demo data for a first run; idempotent, and quick when there is nothing to do.

A complete run ends with a signed checkpoint and notes it (with the steps it ran) in
``MEDIA_ROOT/demo-complete.json``. A later run whose note names a checkpoint this database holds
(same size, same root: the same ledger) and the same steps runs only the light accounts step,
without importing the demo's scientific stack: a second ``make run`` starts serving at once.
The demo accounts are printed last, as a table with their units.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.utils.module_loading import import_string

from audit.models import Checkpoint
from audit.services import checkpoint_create
from config.commands import CustosCommand

from ...demo import demo_step_paths
from ...rules import roles

ACCOUNTS_STEP = "governance.demo.users.users_and_units"


def _note_path() -> Path:
    return Path(settings.MEDIA_ROOT) / "demo-complete.json"


def _completed(paths) -> bool:
    """Whether a complete demo run on this very ledger, with these steps, was noted."""
    try:
        note = json.loads(_note_path().read_text())
        return note["steps"] == paths and Checkpoint.objects.filter(
            tree_size=note["tree_size"], root_hash=bytes.fromhex(note["root"])
        ).exists()
    except (OSError, ValueError, KeyError, TypeError):
        return False


class Command(CustosCommand):
    help = "Create demo users for each role, business units and the demo data (safe to run twice)."
    requires_system_checks = []  # `--keys` makes the keys the checks need; handle() checks after

    def add_arguments(self, parser):
        parser.add_argument("--keys", action="store_true",
                            help="First create the ledger and storage keys that are missing (one process, not three).")
        parser.add_argument("--reset-passwords", action="store_true", help="Give demo users new passwords.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the server will answer.")
        parser.add_argument("--full", action="store_true", help="Run every step even if a complete run was noted.")

    def handle(self, *args, reset_passwords=False, url="http://127.0.0.1:8000", full=False, keys=False, **opts):
        if keys:
            call_command("ledger", "keys", "generate", "--if-missing", stdout=self.stdout, stderr=self.stderr)
            call_command("registry", "keys", "generate", "--if-missing", stdout=self.stdout, stderr=self.stderr)
        self.check(display_num_errors=False)  # the system checks, now that the keys exist
        paths = demo_step_paths()
        quick = not full and _completed(paths)
        credentials = []
        for path in paths:
            if path == ACCOUNTS_STEP:
                import_string(path)(self.stdout.write, reset_passwords=reset_passwords, credentials=credentials)
            elif not quick:
                import_string(path)(self.stdout.write)
        checkpoint = checkpoint_create()  # every demo entry under a signed checkpoint before serving
        if not quick:
            note = {"steps": paths, "tree_size": checkpoint.tree_size, "root": bytes(checkpoint.root_hash).hex()}
            _note_path().parent.mkdir(parents=True, exist_ok=True)
            _note_path().write_text(json.dumps(note))
        self.stdout.write(self.style.SUCCESS(
            "Demo data ready" + (" (loaded before; nothing to do)." if quick else ".")
            + f" Ledger checkpoint at tree size {checkpoint.tree_size}."
        ))
        self._accounts_table(credentials, url)

    def _accounts_table(self, credentials, url):
        write = self.stdout.write
        write("")
        write(f"Demo accounts — sign in at {url}/admin/ (API: {url}/api/v1/, docs {url}/api/v1/docs/)")
        write(f"  {'USER':18} {'ROLE':22} {'UNITS':22} PASSWORD")
        for username, role, units, password in credentials:
            if role == roles.PIPELINE:
                secret = f"service account: manage.py tokens create {username} --name demo"
            else:
                secret = password or "unchanged"
            shown = ", ".join(units) or ("every unit" if role in ("superuser", *roles.GLOBAL_READ_ROLES)
                                         else "every unit (erasure)" if role == roles.DATA_PROTECTION_OFFICER
                                         else "none")
            write(f"  {username:18} {role:22} {shown:22} {secret}")
        if any(p is None for u, r, _, p in credentials if r != roles.PIPELINE):
            write("Passwords are shown once, when an account is created: "
                  "`manage.py demo --reset-passwords` gives them new ones.")
