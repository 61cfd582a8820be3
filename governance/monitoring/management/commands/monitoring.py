"""Operate post-market monitoring.

``monitoring ingest PLAN FILE [--format csv|parquet|jsonl]`` streams a batch into the plan's windows
(no row kept); ``monitoring labels PLAN FILE`` applies a CSV of ``prediction_id,label``;
``monitoring evaluate [--window ID]`` closes and evaluates the windows that have ended (what
Celery beat does hourly); ``monitoring show [PLAN] [--json]`` prints every plan the caller may see,
or one with its windows.
"""

import csv
from pathlib import Path

from django.core.management.base import CommandError

from config.commands import CustosCommand

from ...vocabulary import FORMATS, iso_utc
from ...models import MonitoringPlan, MonitoringWindow
from ...selectors import plan_health, plans_for
from ...services import batch_ingest, labels_record, window_close, windows_close

LABELS_MAX = 1_000_000


class Command(CustosCommand):
    help = "Operate post-market monitoring (ingest, labels, evaluate, show)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        ingest = sub.add_parser("ingest", help="Stream a batch of production predictions into a plan's windows.")
        ingest.add_argument("plan", type=int)
        ingest.add_argument("file")
        ingest.add_argument("--format", choices=FORMATS)
        labels = sub.add_parser("labels", help="Apply labels (CSV with prediction_id,label) to a plan's windows.")
        labels.add_argument("plan", type=int)
        labels.add_argument("file")
        evaluate = sub.add_parser("evaluate", help="Close and evaluate the windows that have ended.")
        evaluate.add_argument("--window", type=int, help="Only this window (closed or due).")
        show = sub.add_parser("show", help="Plans and their health, or one plan's windows.")
        show.add_argument("plan", type=int, nargs="?")
        for p in (ingest, labels, evaluate, show):
            self.add_actor_argument(p)
            self.add_json_argument(p)

    def _plan(self, options, pk) -> MonitoringPlan:
        actor = self.actor(options)
        qs = plans_for(actor) if actor is not None else MonitoringPlan.objects.unrestricted()
        plan = qs.filter(pk=pk).first()
        if plan is None:
            raise CommandError(f"No monitoring plan {pk} that you may see.")
        return plan

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(options)

    def _out(self, options, value, text):
        if options.get("json"):
            self.print_json(value)
        else:
            self.stdout.write(text)

    def do_ingest(self, options):
        plan = self._plan(options, options["plan"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        fmt = options.get("format") or {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                                        ".ndjson": "jsonl"}.get(path.suffix.lower(), "csv")
        batch, created = batch_ingest(plan=plan, source=str(path), file_format=fmt, actor=self.actor(options))
        value = {"batch_id": batch.pk, "created": created, "digest": batch.digest, "rows_read": batch.rows_read,
                 "rows_accepted": batch.rows_accepted, "rejected": batch.rejected, "windows": batch.windows,
                 "ignored_columns": batch.ignored_columns}
        text = (f"Batch {batch.pk} {'ingested' if created else 'was already ingested'}: {batch.rows_accepted} of "
                f"{batch.rows_read} rows into {len(batch.windows)} window(s); rejected {batch.rejected}.")
        self._out(options, value, text)

    def do_labels(self, options):
        plan = self._plan(options, options["plan"])
        labels = {}
        try:
            with open(options["file"], newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or not {"prediction_id", "label"} <= set(reader.fieldnames):
                    raise CommandError("The labels file is a CSV with the columns prediction_id and label.")
                for row in reader:
                    if len(labels) >= LABELS_MAX:
                        raise CommandError(f"At most {LABELS_MAX} labels per file.")
                    labels[row["prediction_id"]] = row["label"]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read the labels file: {type(exc).__name__}.") from None
        counts = labels_record(plan=plan, labels=labels, actor=self.actor(options))
        self._out(options, counts, f"Labels: {counts['applied']} applied, {counts['unmatched']} unmatched, "
                                   f"{counts['already_labelled']} already labelled.")

    def do_evaluate(self, options):
        if options.get("window"):
            window = MonitoringWindow.objects.filter(pk=options["window"]).first()
            if window is None:
                raise CommandError(f"No window {options['window']}.")
            done = [window_close(window=window, actor=self.actor(options))]
        else:
            if self.actor(options) is not None and not self.actor(options).is_superuser:
                raise CommandError("Windows are closed by Custos itself: run without --actor.")
            done = windows_close()
        value = [{"window_id": w.pk, "plan_id": w.plan_id, "start": iso_utc(w.start), "verdict": w.verdict,
                  "ledger_seq": w.ledger_seq} for w in done]
        text = "\n".join(f"window {w['window_id']} (plan {w['plan_id']}, {w['start']}): {w['verdict']}, ledger seq "
                         f"{w['ledger_seq']}" for w in value) or "No window was due."
        self._out(options, value, text)

    def do_show(self, options):
        actor = self.actor(options)
        if options.get("plan"):
            plan = self._plan(options, options["plan"])
            windows = [{"id": w.pk, "start": iso_utc(w.start), "end": iso_utc(w.end), "state": w.state, "rows": w.rows,
                        "labelled": w.labelled, "verdict": w.verdict or None, "ledger_seq": w.ledger_seq}
                       for w in plan.windows.order_by("start")]
            value = {"plan_id": plan.pk, "model_version": str(plan.model_version), "health": plan_health(plan),
                     "windows": windows}
            text = "\n".join([f"Plan {plan.pk} of {plan.model_version}: {value['health']['status']}"] + [
                f"  {w['start']}  {w['state']:6}  rows {w['rows']:>7}  labelled {w['labelled']:>7}  {w['verdict'] or '-'}"
                for w in windows])
            return self._out(options, value, text)
        plans = plans_for(actor) if actor is not None else MonitoringPlan.objects.unrestricted()
        value = [{"plan_id": p.pk, "model_version": str(p.model_version), "status": p.status,
                  "health": plan_health(p)["status"]} for p in plans.order_by("pk")]
        text = "\n".join(f"plan {v['plan_id']}: {v['model_version']} — {v['health']}" for v in value) or "No plans."
        self._out(options, value, text)
