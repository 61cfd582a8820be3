"""Post-market monitoring of production models (EU AI Act Art. 72): its own Django app (label
``monitoring``, docs/monitoring.md).

The pure core — ``aggregates``, ``ingest``, ``statistics``, ``errors`` (and ``policy``, ``kinds``) —
has no Django and no ORM: production predictions are folded into per-window aggregates on a
reference profile's bins and the rows are dropped; each closed window is judged from those
aggregates alone. The app's layers build on it: ``models`` (plans, windows, findings,
incidents), ``services`` (the ledgered write path), ``selectors``, and the entry points ``api``,
``admin``, ``tasks``, ``demo`` and ``manage.py monitoring``. Governance never imports this
package; ``apps.MonitoringConfig.ready()`` registers monitoring in governance's hooks.
"""
