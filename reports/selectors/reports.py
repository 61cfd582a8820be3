"""Reports and human sections as the asking user may see them (another unit's look absent)."""

from django.http import Http404

from ..models import HumanSection, Report
from ..rules.documents import DocumentKind

CERTIFICATE = DocumentKind.ERASURE_CERTIFICATE.value


def reports_for(user):
    """The reports USER may read: their units' (every unit's for global readers), and erasure
    certificates only for those who read erasure requests (the Data Protection Officer, Auditors)."""
    qs = Report.objects.select_related("business_unit", "issuer")
    visible = qs.for_user(user)
    if user.is_authenticated and user.has_perm("governance.view_erasurerequest"):
        return visible | qs.filter(kind=CERTIFICATE)
    return visible.exclude(kind=CERTIFICATE)


def report_get(*, user, pk) -> Report:
    report = reports_for(user).filter(pk=pk).first()
    if report is None:
        raise Http404("No such report.")
    return report


def report_by_sha256(*, user, sha256: str) -> Report | None:
    """The issued report USER may see whose file has SHA256, or None."""
    return reports_for(user).filter(state=Report.State.ISSUED, sha256=sha256.lower()).order_by("pk").first()


def human_sections_for(user, *, model=None):
    qs = HumanSection.objects.select_related("model", "author").for_user(user)
    return qs.filter(model=model) if model is not None else qs
