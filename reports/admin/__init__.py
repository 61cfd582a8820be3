"""The reports admin: issued reports, the human sections, the links on a model version."""

from . import reports, sections  # noqa: F401  (registers the admin pages)
