"""The documents: what each report shows, gathered through governance's and audit's selectors as
the ledger stood at the report's checkpoint, and rendered from reports/templates."""
