"""Links an app above governance adds to a governance record's admin page (reports' "Documentation",
"Dossier", "ML-BOM" on a model version), registered in its ``AppConfig.ready()``, so the page
shows them without governance importing that app."""

from django.utils.module_loading import import_string

_LINKS: dict[str, list[str]] = {}


def register_object_links(model_label: str, links: str) -> None:
    """On the admin page of a MODEL_LABEL record ("governance.modelversion"), show the links the
    function at dotted path LINKS returns: ``(obj, user) -> [(label, url)]``."""
    _LINKS.setdefault(model_label, [])
    if links not in _LINKS[model_label]:
        _LINKS[model_label].append(links)


def object_links(obj, user) -> list[tuple[str, str]]:
    out = []
    for links in _LINKS.get(obj._meta.label_lower, []):
        out.extend(import_string(links)(obj, user))
    return out
