"""Request, render and issue reports; re-render an issued one and compare its bytes.

``report_request`` checks that the asker may read the subject, records the request
(``report.requested``) and queues the rendering on a worker after commit. The worker
(``report_render``) signs a checkpoint of the ledger as it stands, which becomes the report's
as-of, renders the document as the ledger stood at it, then ``report_issue`` stores the bytes
under their SHA-256 and ledgers ``report.issued`` (kind, subject, checkpoint, SHA-256,
attachments). An issued report never changes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from audit.selectors import checkpoint_get
from audit.services import checkpoint_create, ledger_append
from config.errors import Conflict
from config.tasks import enqueue_on_commit
from governance.selectors.access import business_units_for, sees_all_units
from governance.selectors.erasure import erasure_certificate_facts
from governance.selectors.releases import model_version_get
from governance.services.guards import recorded_user, require

from ..documents.reader import reader
from ..documents.render import render_document
from ..models import Report
from ..rules.documents import MEDIA_TYPES, TEMPLATE_VERSION, DocumentKind, parse_subject
from ..rules.kinds import ReportKind

REPORT_DIR = "reports"
RENDER_TASK = "reports.report_render"


def _storage_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _subject_unit(kind: DocumentKind, ident: str, actor):
    """The business unit the report belongs to (None: every unit), checking ACTOR may read it."""
    user = reader(actor)
    if kind == DocumentKind.INVENTORY:
        if ident == "all":
            if not (user.is_superuser or sees_all_units(user)):
                raise Http404("An inventory of every unit is for those who read every unit; name your unit.")
            return None
        unit = business_units_for(user).filter(pk=ident).first()
        if unit is None:
            raise Http404("No such business unit.")
        return unit
    if kind == DocumentKind.ERASURE_CERTIFICATE:
        request = erasure_certificate_facts(user=user, pk=int(ident))["request"]
        if request.completed_at is None:
            raise Conflict(f"{request.reference} is {request.get_state_display()}: a certificate is issued for a "
                           "completed request.")
        return None  # institution-wide, like the request: its readers are the erasure readers
    return model_version_get(user=user, pk=int(ident)).model.business_unit


@transaction.atomic(durable=True)
def report_request(*, kind: str, subject: str, actor=None, dispatch: bool = True) -> Report:
    """Ask for a KIND report on SUBJECT; it renders on a worker after commit. Http404 when ACTOR
    may not read the subject (another unit's model version looks absent)."""
    try:
        kind, ident = parse_subject(kind, subject)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    unit = _subject_unit(kind, ident, actor)
    require(actor, "reports.add_report", unit, what="issue reports", reading=True)
    report = Report.objects.create(
        kind=kind.value, about=subject, business_unit=unit, issuer=recorded_user(actor),
        template_version=TEMPLATE_VERSION, media_type=MEDIA_TYPES[kind],
    )
    ledger_append(kind=ReportKind.REQUESTED, subject=report.ledger_subject,
                  payload={"kind": kind.value, "about": subject, "business_unit_id": unit.pk if unit else None},
                  actor=actor)
    if dispatch:
        enqueue_on_commit(RENDER_TASK, report.pk)
    return report


def _progress(report: Report, percent: int, step: str) -> None:
    """Say how far the worker is (not ledgered: progress is no evidence)."""
    Report.objects.unrestricted().filter(pk=report.pk).update(progress=percent, step=step)


def report_render(*, report_id: int) -> Report:
    """The worker's part: sign the as-of checkpoint, render, issue (or record the failure)."""
    report = Report.objects.unrestricted().select_related("issuer").get(pk=report_id)
    if report.state != Report.State.QUEUED:
        return report  # a redelivered task: the first delivery rendered it
    Report.objects.unrestricted().filter(pk=report.pk).update(state=Report.State.RENDERING, progress=5,
                                                              step="signing the as-of checkpoint")
    try:
        with transaction.atomic(durable=True):
            checkpoint = checkpoint_create()
        Report.objects.unrestricted().filter(pk=report.pk).update(
            checkpoint_size=checkpoint.tree_size, as_of=checkpoint.created_at)
        rendered = render_document(report.kind, report.about, user=report.issuer, checkpoint=checkpoint,
                                   progress=lambda p, s: _progress(report, p, s))
    except Exception as exc:  # recorded as the report's failure, then re-raised for the worker's log
        report_fail(report_id=report.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    return report_issue(report_id=report.pk, content=rendered.content, attachments=rendered.attachments,
                        checkpoint=checkpoint)


@transaction.atomic(durable=True)
def report_fail(*, report_id: int, error: str) -> Report:
    report = Report.objects.unrestricted().select_for_update().get(pk=report_id)
    report.state, report.error, report.step = Report.State.FAILED, error[:2000], ""
    report.save()
    ledger_append(kind=ReportKind.FAILED, subject=report.ledger_subject,
                  payload={"kind": report.kind, "about": report.about, "error": error[:300]}, actor=None)
    return report


@transaction.atomic(durable=True)
def report_issue(*, report_id: int, content: bytes, attachments: list[dict], checkpoint) -> Report:
    """Store CONTENT under its SHA-256, mark the report issued and ledger ``report.issued``."""
    report = Report.objects.unrestricted().select_for_update().get(pk=report_id)
    if report.state == Report.State.ISSUED:
        raise Conflict(f"Report {report.pk} is already issued.")
    sha256 = hashlib.sha256(content).hexdigest()
    extension = "pdf" if report.media_type == "application/pdf" else "json"
    rel = f"{REPORT_DIR}/{sha256[:2]}/{sha256}.{extension}"
    path = _storage_root() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    entry = ledger_append(
        kind=ReportKind.ISSUED,
        subject=report.ledger_subject,
        payload={
            "kind": report.kind, "about": report.about, "sha256": sha256, "size_bytes": len(content),
            "media_type": report.media_type, "template_version": report.template_version,
            "checkpoint": {"tree_size": checkpoint.tree_size, "root_hash": bytes(checkpoint.root_hash).hex()},
            "attachments": attachments,
        },
        actor=report.issuer,
    )
    report.state, report.progress, report.step = Report.State.ISSUED, 100, ""
    report.sha256, report.size_bytes, report.stored_path = sha256, len(content), rel
    report.attachments, report.issued_at, report.ledger_seq = attachments, timezone.now(), entry.seq
    report.checkpoint_size, report.as_of = checkpoint.tree_size, checkpoint.created_at
    report.save()
    return report


def report_content(report: Report) -> bytes:
    """The stored bytes of an issued report, checked against its SHA-256."""
    if report.state != Report.State.ISSUED:
        raise Conflict(f"Report {report.pk} is {report.state}, not issued.")
    data = (_storage_root() / report.stored_path).read_bytes()
    if hashlib.sha256(data).hexdigest() != report.sha256:
        raise Conflict(f"The stored file of report {report.pk} no longer has the SHA-256 it was issued with.")
    return data


def report_rerender(*, report_id: int) -> dict:
    """Render an issued report again from the ledger as it stood at its checkpoint; compare bytes.

    Nothing is stored or ledgered: it answers whether the issued bytes are re-derivable.
    """
    report = Report.objects.unrestricted().select_related("issuer").get(pk=report_id)
    if report.state != Report.State.ISSUED:
        raise Conflict(f"Report {report.pk} is {report.state}, not issued.")
    if report.template_version != TEMPLATE_VERSION:
        raise Conflict(f"Report {report.pk} was rendered by template version {report.template_version}; "
                       f"this is {TEMPLATE_VERSION}: its bytes cannot be compared.")
    checkpoint = checkpoint_get(report.checkpoint_size)
    if checkpoint is None:
        raise Conflict(f"The checkpoint of tree size {report.checkpoint_size} is gone.")
    # Read as the system: what the issuer was shown is the subject's unit (or, for an inventory of
    # every unit, every unit), the same rows the system reads, and a later change of the issuer's
    # grants must not make an issued report underivable.
    rendered = render_document(report.kind, report.about, user=None, checkpoint=checkpoint)
    sha256 = hashlib.sha256(rendered.content).hexdigest()
    return {"report": report.pk, "issued_sha256": report.sha256, "rerendered_sha256": sha256,
            "identical": sha256 == report.sha256, "checkpoint": report.checkpoint_size}
