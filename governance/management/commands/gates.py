"""Release gates from the command line: ``gates reverify RUN_ID`` and ``gates install-defaults``."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...models import GateRun
from ...services.gates import gate_policy_install_defaults, gate_run_reverify


class Command(BaseCommand):
    help = "Re-verify a gate run (recompute it and compare), or install the shipped default policy."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reverify = sub.add_parser("reverify", help="Recompute a run; exit non-zero on any difference.")
        reverify.add_argument("run_id", type=int)
        sub.add_parser("install-defaults", help="Publish the high-risk default and assign it to the high tier.")

    def handle(self, *args, action, **opts):
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**opts)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    def _reverify(self, run_id, **_):
        run = GateRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No gate run {run_id}.")
        found = gate_run_reverify(run=run)
        if found:
            for line in found:
                self.stderr.write(f"  {line}")
            raise CommandError(f"Gate run {run_id} does not reproduce: {len(found)} difference(s).")
        self.stdout.write(f"Gate run {run_id} reproduces ({run.status}; result {run.result_digest[:16]}).")

    def _install_defaults(self, **_):
        gate_policy_install_defaults(out=self.stdout.write)

