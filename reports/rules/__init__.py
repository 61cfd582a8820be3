"""Pure rules of the reports app: the ledger kinds, the report kinds, Annex IV's points. No ORM."""
