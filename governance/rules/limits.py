"""Limits of what people write and submit, defined once for the services, the API and the admin."""

# A decision, revocation, legal hold or review carries a written justification of at least this
# many characters (after stripping white space): "ok" is not a reason an auditor can read.
JUSTIFICATION_MIN_LENGTH = 10
