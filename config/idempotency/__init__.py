"""``Idempotency-Key`` for the API's POSTs, below every app that takes them (governance, reports)."""
