"""Report rendering: the demo's dossier and a large one (10 gate runs, 5,000 ledger entries about
the version), rendered by Custos (evidence gathered through the selectors, PDF/A-3b with four
attachments, XMP, the read-back check) next to bare WeasyPrint writing a plain PDF of the same
HTML; and the ML-BOM's time.

Runs on a copy of the local demo database (``make demo`` first; ``var/custos.sqlite3``), each
measurement in a fresh process so its peak RSS (``ru_maxrss``) is its own.

Run: ``python -m benchmarks bench_reports`` (about two minutes on 2 cores).
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DB = ROOT / "var" / "custos.sqlite3"
LARGE_RUNS = 10
LARGE_ENTRIES = 5_000


def _setup(db):
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["CUSTOS_CHECKPOINT_DIR"] = str(Path(db).parent / "checkpoints")
    import django

    django.setup()


def _subject():
    from governance.models import GateRun

    run = GateRun.objects.unrestricted().filter(status="passed", model_version__model__name="credit-scoring-gbm").first()
    return run.model_version


def prepare_large(db):
    """Add gate runs (to LARGE_RUNS) and LARGE_ENTRIES ledger entries about the demo's passing version."""
    _setup(db)
    from enum import StrEnum

    from django.db import transaction

    from audit.kinds import register_kinds
    from audit.services import checkpoint_create, ledger_append
    from governance.models import GateRun
    from governance.services.gates import gate_run_submit
    from governance.services.gating import gate_run_execute

    class BenchKind(StrEnum):
        NOTE = "bench.note"

    register_kinds(BenchKind)
    mv = _subject()
    first = GateRun.objects.unrestricted().filter(model_version=mv).first()
    for seed in range(1, LARGE_RUNS - GateRun.objects.unrestricted().filter(model_version=mv).count() + 1):
        run = gate_run_submit(model_version=mv, dataset_version=first.dataset_version, label_column=first.label_column,
                              positive_label=first.positive_label, policy=first.policy, seed=seed)
        run.refresh_from_db()
        if run.status == GateRun.Status.QUEUED:
            gate_run_execute(run_id=run.pk)
    for start in range(0, LARGE_ENTRIES, 500):
        with transaction.atomic(durable=True):
            for i in range(start, start + 500):
                ledger_append(kind=BenchKind.NOTE, subject=mv.ledger_subject, payload={"i": i}, actor=None)
    with transaction.atomic(durable=True):
        checkpoint_create()


def measure_custos(db, html_out):
    _setup(db)
    from django.db import transaction

    from audit.services import checkpoint_create
    from reports.documents.render import document_html, render_document

    mv = _subject()
    with transaction.atomic(durable=True):
        checkpoint = checkpoint_create()
    import weasyprint  # noqa: F401  (loaded before the clock starts, as in the bare run)

    from reports.pdf import render_pdf

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    rendered = render_document("dossier", mv.ledger_subject, user=None, checkpoint=checkpoint)
    seconds = time.perf_counter() - t
    # The same, in its two halves: the evidence and HTML, then the PDF/A-3b of that HTML.
    t = time.perf_counter()
    html, metadata, attachments = document_html("dossier", mv.ledger_subject, user=None, checkpoint=checkpoint)
    gather_seconds = time.perf_counter() - t
    Path(html_out).write_text(html)
    t = time.perf_counter()
    render_pdf(html, metadata=metadata, attachments=attachments, as_of=checkpoint.created_at)
    pdf_seconds = time.perf_counter() - t
    t = time.perf_counter()
    bom = render_document("ml-bom", mv.ledger_subject, user=None, checkpoint=checkpoint).content
    bom_seconds = time.perf_counter() - t
    from audit.models import LedgerEntry

    print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_before_mb": rss_before / 1024, "bytes": len(rendered.content),
                      "entries": LedgerEntry.objects.filter(subject=mv.ledger_subject).count(),
                      "gate_runs": mv.gate_runs.count(), "gather_seconds": gather_seconds,
                      "pdf_seconds": pdf_seconds, "ml_bom_seconds": bom_seconds, "ml_bom_bytes": len(bom)}))


def measure_bare(html_file):
    import weasyprint

    html = Path(html_file).read_text()
    t = time.perf_counter()
    pdf = weasyprint.HTML(string=html).write_pdf()
    print(json.dumps({"seconds": time.perf_counter() - t,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bytes": len(pdf)}))


def _child(*args):
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_reports", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1]) if out.strip() else None


def main():
    if not DEMO_DB.exists():
        print("No demo database: run `make demo` first.")
        return
    with tempfile.TemporaryDirectory(prefix="custos-bench-reports-") as tmp:
        for label, large in (("demo dossier", False), (f"large dossier ({LARGE_RUNS} gate runs, "
                                                       f"{LARGE_ENTRIES:,} extra ledger entries)", True)):
            db = Path(tmp) / f"{'large' if large else 'demo'}.sqlite3"
            shutil.copy(DEMO_DB, db)
            if large:
                t = time.perf_counter()
                _child("prepare", str(db))
                print(f"  (prepared the large case in {time.perf_counter() - t:.0f} s)")
            html = Path(tmp) / f"{db.stem}.html"
            custos = _child("custos", str(db), str(html))
            bare = _child("bare", str(html))
            print(f"{label}: {custos['gate_runs']} gate runs, {custos['entries']} entries about the version")
            print(f"  Custos render_document: {custos['seconds']:.2f} s, peak RSS {custos['rss_mb']:.0f} MB "
                  f"({custos['rss_before_mb']:.0f} MB before: Django, the ORM, WeasyPrint loaded), "
                  f"{custos['bytes']:,} bytes (PDF/A-3b, attachments)")
            print(f"    of which evidence + HTML {custos['gather_seconds']:.2f} s, PDF/A-3b of that HTML "
                  f"{custos['pdf_seconds']:.2f} s")
            print(f"  bare WeasyPrint:        {bare['seconds']:.2f} s, peak RSS {bare['rss_mb']:.0f} MB, "
                  f"{bare['bytes']:,} bytes")
            print(f"  ratio: whole {custos['seconds'] / bare['seconds']:.2f}x, PDF step "
                  f"{custos['pdf_seconds'] / bare['seconds']:.2f}x, RSS {custos['rss_mb'] / bare['rss_mb']:.2f}x")
            print(f"  ML-BOM: {custos['ml_bom_seconds'] * 1000:.0f} ms, {custos['ml_bom_bytes']:,} bytes")


if __name__ == "__main__":
    action, *args = sys.argv[1:]
    {"prepare": prepare_large, "custos": measure_custos, "bare": measure_bare}[action](*args)
