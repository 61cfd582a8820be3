"""The panels of "Needs your attention" on the admin index, one per area that has something to say.

An area registers a panel in its ``AppConfig.ready()`` (monitoring's open findings, erasure's
deadlines), so the index shows every area's without governance importing any of them. A panel
is a template and a function ``(user) -> dict | None`` (None: nothing to show this user).
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Panel:
    template: str
    context: str  # dotted path of the context function (imported when the index is drawn)
    order: int


_PANELS: dict[str, Panel] = {}


def register_panel(name: str, *, template: str, context: str, order: int) -> None:
    """Show the panel NAME on the admin index: TEMPLATE drawn with the dict CONTEXT(user) returns."""
    _PANELS[name] = Panel(template, context, order)


def panels_for(user) -> list[tuple[str, dict]]:
    """(template, context) of every panel with something to show USER, in order."""
    out = []
    for panel in sorted(_PANELS.values(), key=lambda p: p.order):
        context = import_string(panel.context)(user)
        if context is not None:
            out.append((panel.template, context))
    return out
