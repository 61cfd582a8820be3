"""The demo leaves one issued report of each kind; the inventory lists the demo's models; the erasure
certificate names its request, not the person."""

import csv
import io

import pypdf
from django.core.management import call_command

from audit import pdf as reader
from governance.demo.erasure import COMPLETED
from governance.models import ErasureRequest
from reports.models import Report
from reports.services.reports import report_content


def test_the_demo_issues_one_report_per_kind_once(db, capsys):
    call_command("demo")
    issued = {r.kind: r for r in Report.objects.unrestricted().filter(state=Report.State.ISSUED)}
    assert set(issued) == {"annex-iv", "dossier", "ml-bom", "inventory", "erasure-certificate"}
    inventory = report_content(issued["inventory"])
    rows = list(csv.reader(io.StringIO(reader.embedded_file(inventory, "model-inventory.csv").content.decode())))
    assert rows[0][:3] == ["Business unit", "Model", "Risk tier"]
    by_model = {r[1]: r for r in rows[1:]}
    assert set(by_model) == {"credit-scoring", "credit-scoring-gbm", "credit-prescreen"}  # the last: erasure's demo
    assert by_model["credit-scoring-gbm"][6] == "1.1"  # the version in production
    assert by_model["credit-scoring-gbm"][7].startswith("passed")
    # The demo's human sections (1(e), 5) show as written, by their authors.
    annex = pypdf.PdfReader(io.BytesIO(report_content(issued["annex-iv"])))
    text = " ".join(" ".join(p.extract_text() for p in annex.pages).split())
    assert "1(e) WRITTEN" in text and "5 WRITTEN" in text and "Written by colin.compliance" in text
    # The certificate of the completed erasure request names it, never the person.
    done = ErasureRequest.objects.get(completed_at__isnull=False)
    certificate = report_content(issued["erasure-certificate"])
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(certificate)).pages)
    assert done.reference in text and COMPLETED not in text and COMPLETED.encode() not in certificate
    call_command("demo", "--full")  # idempotent, even running every step again: nothing new is issued
    assert Report.objects.unrestricted().count() == 5
