"""Template filters that word and colour states and verdicts for a person:
``{{ release.state|state_label }}``, ``{{ check.verdict|verdict_badge }}``."""

from django import template
from django.utils.safestring import mark_safe

from ..charts.badges import verdict_badge as _verdict_badge
from ..rules.releases import state_label as _state_label

register = template.Library()


@register.filter
def state_label(state):
    return _state_label(state)


@register.filter
def verdict_badge(verdict):
    return mark_safe(_verdict_badge(verdict))  # noqa: S308  every text is escaped by charts.badges
