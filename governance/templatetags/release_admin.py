"""Template tags of the release admin: the "needs your attention" panel on the admin index."""

from django import template

from ..selectors.releases import releases_needing_attention

register = template.Library()


@register.inclusion_tag("admin/governance/releaserequest/attention_panel.html", takes_context=True)
def release_attention_panel(context):
    user = context["request"].user
    if not user.has_perm("governance.view_releaserequest"):
        return {"show": False}
    found = releases_needing_attention(user=user)
    return {
        "show": True,
        "awaiting": found["awaiting_decision"].count(),
        "inconclusive": found["inconclusive"].count(),
        "revoked": len(found["revoked"]),
    }
