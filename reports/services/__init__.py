"""Services of the reports app: every change to its rows, each ledgered in the same transaction."""
