"""The erasure panel of "Needs your attention": requests whose deadline is within a week or past."""

from django.utils import timezone

from ..rules import erasure as rules
from ..selectors.erasure import erasure_requests_near_deadline


def erasure_attention(user) -> dict | None:
    """Open erasure requests due within a week (overdue first) for a reader of erasure requests."""
    if not user.has_perm("governance.view_erasurerequest"):
        return None
    now = timezone.now()
    near = list(erasure_requests_near_deadline(user=user, now=now)[:20])
    if not near:
        return None
    return {"requests": [(r, rules.is_overdue(r.state, r.deadline, now)) for r in near]}
