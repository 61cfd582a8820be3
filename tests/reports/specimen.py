"""A specimen report built from a real ledger: its evidence, its HTML and its attachments.

Used by tests/reports and tests/audit/test_pdf.py (which checks the offline verifier's --report
mode on it). Building the evidence needs the database; rendering does not.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from governance.demo.credit import GERMAN_CREDIT_CSV as GERMAN_CREDIT
from reports.pdf import ReportAttachment, ReportMetadata, Relationship, evidence_bundle_attachment, report_context

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "reports"
TEMPLATES = Path(__file__).parent / "templates"
MODEL = "governance.modelversion:42"
ARTIFACT_SHA256 = "9f2c" * 16
ROWS = 80  # enough for the rows table to break across pages
AGE_GROUPS = [("under 25", 0, 25), ("25-34", 25, 35), ("35-49", 35, 50), ("50 and over", 50, 200)]
CHART_FILL = "#2b6cb0"


@dataclass
class Evidence:
    bundle: dict
    as_of: datetime
    entries: list[dict]


@dataclass
class Specimen:
    html: str
    metadata: ReportMetadata
    attachments: list[ReportAttachment]
    as_of: datetime
    evidence: Evidence
    rows: list[list[str]] = field(default_factory=list)
    chart: dict = field(default_factory=dict)

    def render_kwargs(self) -> dict:
        return {"metadata": self.metadata, "attachments": self.attachments, "as_of": self.as_of}


def ledger_evidence(n: int = 5) -> Evidence:
    """Append N entries about MODEL (and others), sign a checkpoint, export MODEL's bundle."""
    from audit.selectors import evidence_bundle
    from audit.services import checkpoint_create, ledger_append

    for i in range(n):
        ledger_append(
            kind="test.recorded",
            subject=MODEL if i % 2 == 0 else "governance.modelversion:7",
            payload={"i": i, "artifact_sha256": ARTIFACT_SHA256},
            actor="specimen",
            sealed=True,
        )
    checkpoint = checkpoint_create()
    bundle = evidence_bundle(checkpoint=checkpoint, subject=MODEL)
    entries = []
    for item in bundle["entries"]:
        content = json.loads(base64.b64decode(item["canonical"]))
        entries.append({**content, "entry_hash": item["entry_hash"]})
    return Evidence(bundle=bundle, as_of=checkpoint.created_at, entries=entries)


def german_credit_rows(n: int = ROWS) -> tuple[list[str], list[list[str]]]:
    with GERMAN_CREDIT.open(newline="") as f:
        reader = csv.reader(f)
        columns = next(reader)
        return columns, [row for _, row in zip(range(n), reader)]


def rates_chart(columns, rows) -> dict:
    """Bars of the share of good credit risk (risk == 1) per age group, laid out for the SVG."""
    age, risk = columns.index("age"), columns.index("risk")
    width, height, base, top, bar_width = 420, 200, 170, 20, 60
    bars = []
    for i, (label, low, high) in enumerate(AGE_GROUPS):
        group = [r for r in rows if low <= int(r[age]) < high]
        good = sum(1 for r in group if r[risk] == "1")
        rate = good / len(group) if group else 0.0
        bar_height = round(rate * (base - top), 2)
        x = 60 + i * 90
        bars.append({
            "label": label, "n": len(group), "good": good, "rate": rate, "value": f"{rate:.2f}",
            "x": x, "y": round(base - bar_height, 2), "height": bar_height,
            "label_x": x + bar_width / 2, "value_y": round(base - bar_height - 4, 2),
        })
    return {"width": width, "height": height, "base": base, "bar_width": bar_width, "label_y": base + 14,
            "fill": CHART_FILL, "bars": bars}


def ml_bom(as_of: datetime) -> bytes:
    """A small CycloneDX 1.6 ML-BOM naming the model and its training data."""
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'custos:' + MODEL)}",
        "version": 1,
        "metadata": {"timestamp": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "components": [
            {
                "type": "machine-learning-model",
                "bom-ref": MODEL,
                "name": "credit-scoring",
                "version": "1.4.0",
                "hashes": [{"alg": "SHA-256", "content": ARTIFACT_SHA256}],
            },
            {"type": "data", "bom-ref": "german-credit", "name": "german_credit.csv"},
        ],
    }
    return (json.dumps(bom, indent=2, sort_keys=True) + "\n").encode()


def specimen(evidence: Evidence, *, rows: int = ROWS, bundle_attachment: ReportAttachment | None = None) -> Specimen:
    """The specimen report on EVIDENCE: its HTML (from tests/reports/templates) and attachments."""
    from django.template import Context, Engine

    columns, data = german_credit_rows(rows)
    csv_text = io.StringIO()
    csv.writer(csv_text, lineterminator="\n").writerows([columns, *data])
    attachments = [
        bundle_attachment or evidence_bundle_attachment(evidence.bundle),
        ReportAttachment("ml-bom.cdx.json", ml_bom(evidence.as_of), "application/vnd.cyclonedx+json",
                         Relationship.SUPPLEMENT, "CycloneDX 1.6 ML-BOM of the model version"),
        ReportAttachment("evaluation-rows.csv", csv_text.getvalue().encode(), "text/csv", Relationship.DATA,
                         "The evaluation rows behind sections 2 and 3"),
    ]
    metadata = ReportMetadata(
        title="Audit dossier: credit-scoring 1.4.0",
        author="Custos specimen",
        subject="Specimen of the Custos print layout on a real ledger",
        custos_ids=(MODEL, f"audit.checkpoint:{evidence.bundle['tree_size']}"),
        keywords=("audit dossier",),
    )
    chart = rates_chart(columns, data)
    context = report_context(
        metadata=metadata,
        attachments=attachments,
        as_of=evidence.as_of,
        contents=[
            {"anchor": "model-version", "title": "1. Model version"},
            {"anchor": "evaluation", "title": "2. Evaluation"},
            {"anchor": "rates-by-age", "title": "2.1 Good credit risk by age group", "level": 2},
            {"anchor": "evaluation-rows", "title": "3. Evaluation rows"},
            {"anchor": "ledger-entries", "title": "4. Ledger entries"},
        ],
        model={"name": "credit-scoring", "version": "1.4.0", "custos_id": MODEL, "artifact_sha256": ARTIFACT_SHA256},
        checkpoint={"origin": evidence.bundle["origin"], "tree_size": evidence.bundle["tree_size"],
                    "root": evidence.bundle["root_hash"]},
        entries=evidence.entries,
        columns=columns,
        rows=data,
        rows_file="evaluation-rows.csv",
        chart=chart,
    )
    engine = Engine(dirs=[str(TEMPLATES)], app_dirs=True)
    html = engine.get_template("specimen.html").render(Context(context))
    return Specimen(html=html, metadata=metadata, attachments=attachments, as_of=evidence.as_of,
                    evidence=evidence, rows=data, chart=chart)


def rolled_back_evidence(django_db_blocker, signing_key_file, checkpoint_dir, **kwargs) -> Evidence:
    """``ledger_evidence`` in a transaction that then rolls back: for module-scoped fixtures.

    Rendering a report takes seconds, so the read-back tests share one rendering; the ledger
    rows behind it (append-only: no test could delete them) roll back, leaving the database
    as every other test expects it.
    """
    from django.db import transaction
    from django.test import override_settings

    with django_db_blocker.unblock(), override_settings(
        CUSTOS_SIGNING_KEY_FILE=str(signing_key_file), CUSTOS_CHECKPOINT_DIR=str(checkpoint_dir)
    ):
        with transaction.atomic():
            evidence = ledger_evidence(**kwargs)
            transaction.set_rollback(True)
    return evidence


def rasterise(data: bytes, name: str, pages=(1, 3, 5)) -> None:
    """Write the PDF DATA and PNGs of PAGES into test-artifacts/reports, so a person can look at them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / f"{name}.pdf"
    pdf.write_bytes(data)
    for page in pages:
        subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                        str(ARTIFACTS / f"{name}-page{page}")], check=True)
