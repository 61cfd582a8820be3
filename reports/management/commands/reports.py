"""Reports from the command line: ``reports render KIND SUBJECT [--out FILE]``, ``reports rerender ID``,
``reports verify FILE``."""

import hashlib
from pathlib import Path

from django.core.management.base import CommandError

from audit.selectors import key_list
from audit.verifier import load_verifier_keys, verify_report_file
from config.commands import CustosCommand

from ...documents.reader import SYSTEM
from ...rules.documents import DocumentKind
from ...selectors.reports import report_by_sha256
from ...services.reports import report_content, report_render, report_request, report_rerender


class Command(CustosCommand):
    help = "Issue a report, re-render an issued one and compare its bytes, or check a file Custos issued."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        render = sub.add_parser("render", help="Issue a report now (rendered here, not on a worker).")
        render.add_argument("kind", choices=[k.value for k in DocumentKind])
        render.add_argument("subject", help="The ledger subject, e.g. governance.modelversion:4 or "
                                            "governance.businessunit:all (inventory).")
        render.add_argument("--out", metavar="FILE", help="Also write the issued file here.")
        self.add_actor_argument(render)
        self.add_json_argument(render)
        rerender = sub.add_parser("rerender", help="Render an issued report again from its checkpoint; "
                                                   "exit 1 unless the bytes are identical.")
        rerender.add_argument("report_id", type=int)
        self.add_json_argument(rerender)
        verify = sub.add_parser("verify", help="Did Custos issue this file? Does its evidence verify?")
        verify.add_argument("file")

    def handle(self, *args, action, **opts):
        getattr(self, f"_{action}")(**opts)

    def _render(self, kind, subject, out=None, **opts):
        # An operator's command may wait for the rendering: it runs here, not on a worker.
        report = report_request(kind=kind, subject=subject, actor=self.actor(opts), dispatch=False)
        report = report_render(report_id=report.pk)
        if out:
            Path(out).write_bytes(report_content(report))
        if opts.get("json"):
            self.print_json({"id": report.pk, "kind": report.kind, "subject": report.about, "sha256": report.sha256,
                             "checkpoint": report.checkpoint_size, "ledger_seq": report.ledger_seq})
            return
        self.stdout.write(f"Report {report.pk} issued: {report.kind} of {report.about} as of checkpoint "
                          f"{report.checkpoint_size}, sha256 {report.sha256}" + (f", written to {out}" if out else ""))

    def _rerender(self, report_id, **opts):
        answer = report_rerender(report_id=report_id)
        if opts.get("json"):
            self.print_json(answer)
        if not answer["identical"]:
            raise CommandError(f"Report {report_id} re-renders to different bytes: {answer['rerendered_sha256']} "
                               f"!= issued {answer['issued_sha256']}.")
        if not opts.get("json"):
            self.stdout.write(f"Report {report_id} re-renders byte for byte (sha256 {answer['issued_sha256']}).")

    def _verify(self, file, **_):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file}.")
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        report = report_by_sha256(user=SYSTEM, sha256=sha256)
        if report is None:
            raise CommandError(f"Custos issued no report with sha256 {sha256}.")
        self.stdout.write(f"Custos issued this file as report {report.pk} ({report.kind} of {report.about}), "
                          f"ledger entry {report.ledger_seq}, checkpoint {report.checkpoint_size}.")
        if report.media_type != "application/pdf":
            return
        trusted = load_verifier_keys([k["verifier_key"] for k in key_list() if k["status"] != "revoked"])
        if verify_report_file(path, trusted) != 0:
            raise CommandError("The report's attached evidence does not verify.")
