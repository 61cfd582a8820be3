"""The reports admin: the links on a model version, issuing after confirmation, the issued
report with its hashes and download, the inventory on the index, human sections added."""

import hashlib

from django.test import TestCase
from django.urls import reverse

from governance.rules import roles
from reports.models import HumanSection, Report


def test_a_model_version_links_its_documents_and_issuing_asks_first(reported_version, make_user, unit, client):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit], username="adm-officer")
    client.force_login(officer)
    page = client.get(reverse("admin:governance_modelversion_change", args=[reported_version.pk])).content.decode()
    issue = reverse("admin:reports_report_issue", args=["ml-bom", reported_version.pk])
    for label, kind in (("Documentation", "annex-iv"), ("Dossier", "dossier"), ("ML-BOM", "ml-bom")):
        assert f'href="{reverse("admin:reports_report_issue", args=[kind, reported_version.pk])}">{label}</a>' in page
    confirm = client.get(issue)
    assert confirm.status_code == 200 and b"Yes, issue it" in confirm.content
    assert not Report.objects.exists()  # a GET issues nothing
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(issue)
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{report.pk}/change/")
    assert report.state == Report.State.ISSUED
    detail = client.get(reverse("admin:reports_report_change", args=[report.pk])).content.decode()
    assert report.sha256 in detail
    listing = client.get(reverse("admin:reports_report_changelist")).content.decode()
    assert report.sha256[:16] in listing
    download = client.get(reverse("admin:reports_report_download", args=[report.pk]))
    assert hashlib.sha256(download.content).hexdigest() == report.sha256
    index = client.get(reverse("admin:index")).content.decode()
    assert 'href="/admin/reports/report/inventory/">Inventory</a>' in index
    preview = client.get(reverse("admin:reports_report_preview", args=["annex-iv", reported_version.pk]))
    assert preview.status_code == 200 and b"Completeness" in preview.content


def test_another_units_officer_gets_404_and_sections_are_added_as_new_versions(reported_version, make_user, unit,
                                                                                other_unit, client):
    client.force_login(make_user(roles.COMPLIANCE_OFFICER, [other_unit], username="adm-stranger"))
    assert client.get(reverse("admin:reports_report_issue", args=["dossier", reported_version.pk])).status_code == 404
    client.force_login(make_user(roles.DATA_SCIENTIST, [unit], username="adm-writer"))
    add = reverse("admin:reports_humansection_add")
    for text in ("Runs on two vCPUs.", "Runs on four vCPUs."):
        response = client.post(add, {"model": reported_version.model.pk, "key": "1e", "text": text})
        assert response.status_code == 302, response.content.decode()[:2000]
    assert list(HumanSection.objects.values_list("version", "author__username")) == [(2, "adm-writer"),
                                                                                      (1, "adm-writer")]
