"""One rendering of the specimen report on a real ledger, shared by the read-back tests."""

from dataclasses import dataclass

import pytest

from reports.pdf import render_pdf
from tests.reports.specimen import Specimen, rolled_back_evidence, specimen


@dataclass
class Rendered:
    specimen: Specimen
    pdf: bytes


@pytest.fixture(scope="module")
def evidence(django_db_setup, django_db_blocker, signing_key_dir, tmp_path_factory):
    return rolled_back_evidence(django_db_blocker, signing_key_dir, tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def rendered(evidence) -> Rendered:
    s = specimen(evidence)
    return Rendered(s, render_pdf(s.html, **s.render_kwargs()))
