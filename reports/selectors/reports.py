"""Reports and human sections as the asking user may see them (another unit's look absent)."""

from django.http import Http404

from ..models import HumanSection, Report


def reports_for(user):
    return Report.objects.select_related("business_unit", "issuer").for_user(user)


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
