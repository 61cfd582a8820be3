"""Post-market monitoring of production models (EU AI Act Art. 72): the pure computational core.

Production predictions are folded into per-window aggregates on a reference profile's bins and
the rows are dropped (``aggregates``, ``ingest``); each closed window is judged from those
aggregates alone (``statistics``). No Django, no ORM: the app that stores plans, windows and
findings builds on these modules.
"""
