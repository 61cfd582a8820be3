"""Issuing reports: the rendered PDFs read back with pypdf, their evidence verified offline,
their bytes re-derived from the ledger, and what the ledger records about them."""

import hashlib
import io
import json

import pypdf
import pytest

from audit import pdf as reader
from audit.models import LedgerEntry
from audit.selectors import key_list
from audit.verifier import load_verifier_keys, verify_bundle
from config.errors import Conflict
from governance.models import GateRun
from reports.models import Report
from reports.models.reports import ReportImmutable
from reports.services.reports import report_content, report_rerender
from tests.reports.specimen import rasterise


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data), strict=True).pages)


def test_the_dossier_shows_the_stored_gate_figures_carries_verifiable_evidence_and_re_renders_byte_for_byte(
    reported_version, issue
):
    report = issue("dossier", reported_version.ledger_subject)
    assert report.state == Report.State.ISSUED and report.progress == 100
    data = report_content(report)
    assert hashlib.sha256(data).hexdigest() == report.sha256
    rasterise(data, "dossier", pages=(1, 3, 5, 6))

    # Every figure of the gate run's checks appears in the text as stored.
    run = GateRun.objects.get(model_version=reported_version)
    text = text_of(data)
    for check in run.result["checks"]:
        if isinstance(check.get("value"), float):
            value = check["value"]
            shown = f"{value:.4f}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3g}"
            assert f"{check['name']} {shown}" in text.replace("\n", " "), check["name"]
    for name, value in run.result["performance"].items():
        assert f"{name} {value:.4f}" in text, name
    assert run.result_digest in text.replace("\n", "")
    # The decisions, with who, role and justification.
    flat = " ".join(text.split())
    assert "val Model Risk Validator approve" in flat and "off Compliance Officer approve" in flat

    # PDF/A-3b, and the attachments are those the ledger's report.issued names.
    assert reader.pdfa3b_problems(data) == []
    carried = {f.name: f for f in reader.embedded_files(data)}
    assert set(carried) == {"evidence-bundle.json", "ml-bom.cdx.json", "ledger-extract.csv", "gate-results.json"}
    issued = LedgerEntry.objects.get(kind="report.issued", subject=report.ledger_subject)
    assert issued.payload["sha256"] == report.sha256
    assert issued.payload["checkpoint"]["tree_size"] == report.checkpoint_size
    assert {a["name"]: a["sha256"] for a in issued.payload["attachments"]} == {n: f.sha256 for n, f in carried.items()}
    assert json.loads(carried["gate-results.json"].content)[str(run.pk)] == run.result

    # The bundle verifies against the ledger's key and names the report's checkpoint.
    bundle = json.loads(carried["evidence-bundle.json"].content)
    result = verify_bundle(bundle, load_verifier_keys([k["verifier_key"] for k in key_list()]))
    assert bundle["tree_size"] == report.checkpoint_size
    assert result.tree_size == report.checkpoint_size
    seqs = {item["seq"] for item in bundle["entries"]}
    finished = LedgerEntry.objects.get(kind="gates.run_finished", subject=run.ledger_subject)
    assert finished.seq in seqs and f"seq {finished.seq}" in text

    # Re-rendered later, after more was ledgered, from the checkpoint: the same bytes.
    issue("ml-bom", reported_version.ledger_subject)
    assert report_rerender(report_id=report.pk)["identical"] is True


def test_an_issued_report_is_immutable_and_a_second_issue_is_refused(reported_version, issue):
    report = issue("ml-bom", reported_version.ledger_subject)
    report.error = "changed"
    with pytest.raises(ReportImmutable):
        report.save()
    from reports.services.reports import report_issue  # the service a worker calls; refused here

    with pytest.raises(Conflict):
        report_issue(report_id=report.pk, content=b"x", attachments=[], checkpoint=None)
    kinds = list(LedgerEntry.objects.filter(subject=report.ledger_subject).values_list("kind", flat=True))
    assert kinds == ["report.requested", "report.issued"]
