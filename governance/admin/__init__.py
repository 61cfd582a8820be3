"""Admin pages of the governance app, one module per area. Pages are read-mostly: any write
they offer goes through the same services as the API."""

from . import access, erasure, gates, registry, releases, users  # noqa: F401
