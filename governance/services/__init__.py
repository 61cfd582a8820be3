"""Services: the only functions that change governed state. Each appends its ledger entry in
the same transaction as the change it records."""
