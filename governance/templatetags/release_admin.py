"""Template tags of the admin index: the "needs your attention" panels of every area."""

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from .attention import panels_for
from ..selectors.releases import releases_needing_attention

register = template.Library()


@register.simple_tag(takes_context=True)
def attention_panels(context):
    """Every registered panel with something to show the user (see governance.admin.attention)."""
    request = context["request"]
    # Each panel is rendered from its own template (autoescaped there): the joined HTML is safe.
    return mark_safe(  # noqa: S308
        "".join(render_to_string(name, panel, request=request) for name, panel in panels_for(request.user))
    )


def release_attention(user) -> dict | None:
    """The release panel: decisions awaiting USER, inconclusive gates, revocations."""
    if not user.has_perm("governance.view_releaserequest"):
        return None
    found = releases_needing_attention(user=user)
    return {
        "show": True,
        "awaiting": found["awaiting_decision"].count(),
        "inconclusive": found["inconclusive"].count(),
        "revoked": len(found["revoked"]),
    }
