"""Release gates from the command line: ``gates reverify RUN_ID``, ``gates install-defaults``,
``gates abandon-stuck [--older-than MINUTES]``."""

from datetime import timedelta

from django.core.management.base import CommandError

from config.commands import CustosCommand

from ...models import GateRun, GateRunReverification
from ...services.gates import gate_policy_install_defaults, gate_run_reverify, gate_run_reverify_request
from ...services.gating import gate_runs_abandon_stuck


class Command(CustosCommand):
    help = "Re-verify a gate run, install the shipped default policy, or end stuck runs in error."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reverify = sub.add_parser("reverify", help="Recompute a run; exit non-zero on any difference.")
        reverify.add_argument("run_id", type=int)
        sub.add_parser("install-defaults", help="Publish the high-risk default and assign it to the high tier.")
        stuck = sub.add_parser("abandon-stuck", help="End in error the runs queued or running for too long.")
        stuck.add_argument(
            "--older-than", type=int, metavar="MINUTES", help="Default: CUSTOS_GATE_RUN_TIMEOUT (an hour)."
        )

    def handle(self, *args, action, **opts):
        getattr(self, f"_{action.replace('-', '_')}")(**opts)

    def _reverify(self, run_id, **_):
        run = GateRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"No gate run {run_id}.")
        # An operator's command may wait for the computation: it runs here, not on a worker.
        check = gate_run_reverify(reverification_id=gate_run_reverify_request(run=run, dispatch=False).pk)
        found = check.differences
        if check.status == GateRunReverification.Status.REDACTED:
            # Its own exit status (3): not a mismatch, the original data was erased on purpose.
            raise CommandError(f"Gate run {run_id}: {found[0]}", returncode=3)
        if found:
            for line in found:
                self.stderr.write(f"  {line}")
            raise CommandError(f"Gate run {run_id} does not reproduce: {len(found)} difference(s).")
        self.stdout.write(f"Gate run {run_id} reproduces ({run.status}; result {run.result_digest[:16]}).")

    def _abandon_stuck(self, older_than=None, **_):
        if older_than is not None and older_than < 1:
            raise CommandError("--older-than must be at least 1 minute.")
        runs = gate_runs_abandon_stuck(older_than=timedelta(minutes=older_than) if older_than else None)
        for run in runs:
            self.stdout.write(f"Gate run {run.pk} ({run.model_version}) ended in error: {run.reason}")
        self.stdout.write(f"{len(runs)} stuck gate run(s) abandoned.")

    def _install_defaults(self, **_):
        gate_policy_install_defaults(out=self.stdout.write)

