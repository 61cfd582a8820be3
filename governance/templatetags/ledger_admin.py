"""The admin index's sidebar: the user's own recent ledger entries (Django's "Recent actions"
log stays empty, as nothing here is edited through the admin's own forms)."""

from django import template

from audit.models import LedgerEntry
from audit.selectors import entries_visible_to

register = template.Library()


@register.simple_tag(takes_context=True)
def my_recent_entries(context, limit=10):
    user = context["request"].user
    qs = entries_visible_to(user, LedgerEntry.objects.filter(actor=user.get_username()))
    return list(qs.order_by("-seq")[:limit])
