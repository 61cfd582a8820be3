"""The documents Custos issues, and the ledger subjects each one is about."""

import re
from enum import StrEnum


class DocumentKind(StrEnum):
    ANNEX_IV = "annex-iv"
    DOSSIER = "dossier"
    INVENTORY = "inventory"
    ML_BOM = "ml-bom"
    ERASURE_CERTIFICATE = "erasure-certificate"


TITLES = {
    DocumentKind.ANNEX_IV: "Technical documentation (EU AI Act Annex IV)",
    DocumentKind.DOSSIER: "Audit dossier",
    DocumentKind.INVENTORY: "Model inventory",
    DocumentKind.ML_BOM: "Machine-readable model card (CycloneDX 1.6 ML-BOM)",
    DocumentKind.ERASURE_CERTIFICATE: "Erasure certificate (GDPR Art. 17)",
}

# What each document is about: a model version, or (the inventory) a business unit or every unit.
MODEL_VERSION_SUBJECT = re.compile(r"^governance\.modelversion:(\d+)$")
UNIT_SUBJECT = re.compile(r"^governance\.businessunit:(\d+|all)$")
ERASURE_REQUEST_SUBJECT = re.compile(r"^governance\.erasurerequest:(\d+)$")
SUBJECT_PATTERN = {
    DocumentKind.ANNEX_IV: MODEL_VERSION_SUBJECT,
    DocumentKind.DOSSIER: MODEL_VERSION_SUBJECT,
    DocumentKind.ML_BOM: MODEL_VERSION_SUBJECT,
    DocumentKind.INVENTORY: UNIT_SUBJECT,
    DocumentKind.ERASURE_CERTIFICATE: ERASURE_REQUEST_SUBJECT,
}
ALL_UNITS = "governance.businessunit:all"

MEDIA_TYPES = {
    DocumentKind.ANNEX_IV: "application/pdf",
    DocumentKind.DOSSIER: "application/pdf",
    DocumentKind.INVENTORY: "application/pdf",
    DocumentKind.ML_BOM: "application/vnd.cyclonedx+json",
    DocumentKind.ERASURE_CERTIFICATE: "application/pdf",
}

# Bumped whenever a template or a document builder changes what a report shows: a rerender
# compares bytes only with the same template version.
TEMPLATE_VERSION = "1"


EXPECTED_SUBJECT = {
    DocumentKind.INVENTORY: "governance.businessunit:ID or governance.businessunit:all",
    DocumentKind.ERASURE_CERTIFICATE: "governance.erasurerequest:ID",
}


def parse_subject(kind: str, subject: str) -> tuple[DocumentKind, str]:
    """(kind, id) of SUBJECT for a KIND document; ValueError saying what is expected."""
    try:
        kind = DocumentKind(kind)
    except ValueError:
        raise ValueError(f"Unknown report kind {kind!r}; one of {', '.join(k.value for k in DocumentKind)}.") from None
    match = SUBJECT_PATTERN[kind].match(subject or "")
    if match is None:
        expected = EXPECTED_SUBJECT.get(kind, "governance.modelversion:ID")
        raise ValueError(f"A {kind.value} report is about {expected}, not {subject!r}.")
    return kind, match.group(1)
