"""Render a document (``reports.rules.documents.DocumentKind``) about a subject as of a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.template.loader import render_to_string

from ..pdf import ReportAttachment, evidence_bundle_attachment, render_pdf, report_context
from ..rules.documents import DocumentKind, parse_subject


BUILDERS = {DocumentKind.ANNEX_IV: "annex_iv", DocumentKind.DOSSIER: "dossier"}


@dataclass
class Rendered:
    content: bytes
    attachments: list[dict]  # [{name, media_type, sha256}] the PDF carries
    html: str = ""


def _noop(percent, step):
    return None


def document_html(kind, subject, *, user, checkpoint, progress=_noop):
    """(html, metadata, attachments) of the document, or (None, None, bytes) for the ML-BOM."""
    # The builders import the selectors and charts: loaded with the first document, on a worker.
    from .evidence import version_evidence

    kind, ident = parse_subject(kind, subject)
    progress(15, "reading the evidence")
    if kind == DocumentKind.INVENTORY:
        context, metadata, attachments = import_module(f"{__package__}.inventory").build(ident, subject, user=user, checkpoint=checkpoint)
        template = "reports/inventory.html"
    elif kind == DocumentKind.ERASURE_CERTIFICATE:
        context, metadata, attachments = import_module(f"{__package__}.erasure_certificate").build(
            ident, subject, user=user, checkpoint=checkpoint)
        template = "reports/erasure-certificate.html"
    else:
        ev = version_evidence(user=user, model_version_id=int(ident), checkpoint=checkpoint)
        if kind == DocumentKind.ML_BOM:
            return None, None, import_module(f"{__package__}.mlbom").ml_bom_bytes(ev)
        builder = import_module(f"{__package__}.{BUILDERS[kind]}")
        context, metadata, attachments = builder.build(ev)
        attachments = [evidence_bundle_attachment(ev.bundle()), *attachments]
        template = f"reports/{kind.value}.html"
    progress(40, "writing the document")
    html = render_to_string(template, report_context(metadata=metadata, attachments=attachments,
                                                     as_of=checkpoint.created_at, **context))
    return html, metadata, attachments


def render_document(kind, subject, *, user, checkpoint, progress=_noop) -> Rendered:
    html, metadata, attachments = document_html(kind, subject, user=user, checkpoint=checkpoint, progress=progress)
    if html is None:
        return Rendered(content=attachments, attachments=[])
    progress(60, "rendering the PDF")
    pdf = render_pdf(html, metadata=metadata, attachments=attachments, as_of=checkpoint.created_at)
    progress(95, "issuing")
    return Rendered(content=pdf, html=html, attachments=[
        {"name": a.name, "media_type": a.media_type, "sha256": a.sha256} for a in attachments])


__all__ = ["ReportAttachment", "Rendered", "document_html", "render_document"]
