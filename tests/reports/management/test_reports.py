"""manage.py reports render / rerender / verify."""

import pytest
from django.core.management import CommandError, call_command

from reports.models import Report


def test_render_writes_the_file_rerender_compares_and_verify_checks_the_evidence(reported_version, tmp_path, capsys):
    out = tmp_path / "annex.pdf"
    call_command("reports", "render", "annex-iv", reported_version.ledger_subject, "--out", str(out))
    report = Report.objects.get()
    assert f"sha256 {report.sha256}" in capsys.readouterr().out
    call_command("reports", "rerender", str(report.pk))
    assert "re-renders byte for byte" in capsys.readouterr().out
    call_command("reports", "verify", str(out))
    printed = capsys.readouterr().out
    assert f"Custos issued this file as report {report.pk}" in printed and "OK: the report's evidence" in printed
    forged = tmp_path / "forged.pdf"
    forged.write_bytes(out.read_bytes().replace(b"Technical documentation", b"Technical documentatioN", 1))
    with pytest.raises(CommandError, match="issued no report"):
        call_command("reports", "verify", str(forged))


def test_render_refuses_a_subject_of_the_wrong_kind(db):
    with pytest.raises(CommandError, match="governance.modelversion:ID"):
        call_command("reports", "render", "dossier", "governance.businessunit:1")
