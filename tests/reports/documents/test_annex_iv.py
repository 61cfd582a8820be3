"""The Annex IV documentation: every item of the Official Journal's nine points, its status, and
human sections as versioned, ledgered records that change the completeness table."""

import io
import re

import pypdf
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import LedgerEntry
from audit.selectors import checkpoint_latest
from audit.services import checkpoint_create
from governance.rules import roles
from reports.documents.render import document_html, render_document
from reports.rules.annex_iv import ITEMS, POINT_TITLES
from reports.services.sections import human_section_record
from tests.reports.specimen import rasterise


def test_the_items_are_the_official_journals_nine_points():
    assert sorted(POINT_TITLES) == list(range(1, 10))
    labels = [i.label for i in ITEMS]
    # Point 1 has (a) to (h) in Regulation (EU) 2024/1689 (the 2021 proposal had (a) to (g)); point 2 (a) to (h).
    assert labels[:8] == [f"1({c})" for c in "abcdefgh"]
    assert labels[8:16] == [f"2({c})" for c in "abcdefgh"]
    assert labels[16:] == ["3", "4", "5", "6", "7", "8", "9"]
    assert "test logs and all test reports dated and signed by the responsible persons" in \
        next(i for i in ITEMS if i.key == "2g").text


def completeness_row(text: str, point: str) -> list[str]:
    """(filled, written, missing) of a one-item POINT in the completeness table's text."""
    match = re.search(rf"^{point} (?:FILLED|WRITTEN|MISSING) (\d+) (\d+) (\d+)$", text, re.M)
    assert match, f"no completeness row for point {point}"
    return list(match.groups())


def test_a_human_section_turns_a_missing_item_written_and_the_document_names_its_author(
    reported_version, make_user, unit
):
    checkpoint = checkpoint_create()
    before, _, _ = document_html("annex-iv", reported_version.ledger_subject, user=None, checkpoint=checkpoint)
    assert before.count('class="status status-missing">missing') >= 10
    assert "nobody has written 4 for this model" in before

    scientist = make_user(roles.DATA_SCIENTIST, [unit], username="writer")
    section = human_section_record(model=reported_version.model, key="4",
                                   text="Accuracy and ROC AUC fit a balanced credit decision; recall guards applicants.",
                                   actor=scientist)
    entry = LedgerEntry.objects.get(kind="report.human_section_recorded", subject=section.ledger_subject)
    assert entry.payload["text_sha256"] == section.digest and entry.seq == section.ledger_seq
    assert "Accuracy and ROC" not in str(entry.payload)  # the digest is ledgered, the text is the record's

    # A checkpoint before the section does not show it; the next one does.
    again, _, _ = document_html("annex-iv", reported_version.ledger_subject, user=None, checkpoint=checkpoint)
    assert again == before
    later = checkpoint_create()
    rendered = render_document("annex-iv", reported_version.ledger_subject, user=None, checkpoint=later)
    rasterise(rendered.content, "annex-iv", pages=(1, 3, 4))
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(rendered.content)).pages)
    flat = " ".join(text.split())
    assert "Written by writer at" in flat and section.digest in text.replace("\n", "")
    before_pdf = render_document("annex-iv", reported_version.ledger_subject, user=None, checkpoint=checkpoint)
    old_text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(before_pdf.content)).pages)
    # The completeness table: point 4 goes from 0 written / 1 missing to 1 written / 0 missing.
    assert completeness_row(old_text, "4") == ["0", "0", "1"]
    assert completeness_row(text, "4") == ["0", "1", "0"]
    # Filled from evidence: the purpose, versions, datasets, gate runs, lineage, lifecycle.
    for label in ("1(a) FILLED", "1(c) FILLED", "2(c) FILLED", "2(d) FILLED", "2(g) FILLED", "6 FILLED"):
        assert label in text, label


def test_sections_are_versioned_and_only_the_models_people_write_them(reported_version, make_user, unit, other_unit):
    scientist = make_user(roles.DATA_SCIENTIST, [unit], username="writer")
    first = human_section_record(model=reported_version.model, key="5", text="Risk management v1.", actor=scientist)
    second = human_section_record(model=reported_version.model, key="5", text="Risk management v2.", actor=scientist)
    assert (first.version, second.version) == (1, 2)
    with pytest.raises(ValidationError):
        human_section_record(model=reported_version.model, key="5", text="Risk management v2.", actor=scientist)
    with pytest.raises(ValidationError):
        human_section_record(model=reported_version.model, key="2g", text="Filled from evidence only.", actor=scientist)
    with pytest.raises(PermissionDenied):
        human_section_record(model=reported_version.model, key="5", text="x",
                             actor=make_user(roles.DATA_SCIENTIST, [other_unit], username="elsewhere"))
    with pytest.raises(PermissionDenied):
        human_section_record(model=reported_version.model, key="5", text="x",
                             actor=make_user(roles.AUDITOR, username="reader"))
