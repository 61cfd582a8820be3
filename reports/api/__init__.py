"""The reports API: request reports, read them, download their files, verify a hash."""
