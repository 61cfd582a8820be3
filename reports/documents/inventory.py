"""The model inventory (PRA SS1/23 principle 1): every model the reader may see, as of a checkpoint.

Per model: business unit, risk tier, Annex III category, owner, its versions, the version in
production, the last gate verdict, the approvals given and the reviews still open — each taken
from the ledger entries the checkpoint covers. The same rows are attached as CSV (and offered
as a CSV download).
"""

from __future__ import annotations

import csv
import io

from audit.selectors import entry_list
from governance.rules.kinds import GovernanceKind
from governance.selectors.access import business_units_for
from governance.selectors.gates import gate_runs_for
from governance.selectors.registry import model_versions_for, models_for
from governance.selectors.releases import release_list

from ..pdf import ReportAttachment, Relationship
from ..rules.documents import DocumentKind
from . import blocks as b
from .evidence import RELEASE_EVENTS, RELEASE_STATES
from .reader import reader

COLUMNS = ["Business unit", "Model", "Risk tier", "Annex III category", "Owner", "Versions", "In production",
           "Last gate verdict", "Approvals given", "Open reviews"]


def inventory_rows(*, user, unit_id: str, checkpoint) -> list[list]:
    user = reader(user)
    size = checkpoint.tree_size
    models = models_for(user).order_by("business_unit__name", "name")
    if unit_id != "all":
        models = models.filter(business_unit_id=int(unit_id))
    covered = entry_list(user=user, seq_to=size - 1)
    created = set(covered.filter(kind=GovernanceKind.MODEL_CREATED).values_list("subject", flat=True))
    rows = []
    for model in models:
        if model.ledger_subject not in created:
            continue
        versions = [v for v in model_versions_for(user).filter(model=model).order_by("created_at", "pk")]
        version_subjects = set(covered.filter(subject__in=[v.ledger_subject for v in versions])
                               .values_list("subject", flat=True))
        versions = [v for v in versions if v.ledger_subject in version_subjects]
        runs = list(gate_runs_for(user).filter(model_version__model=model).order_by("pk"))
        finished = {e.subject: e for e in covered.filter(kind=GovernanceKind.RUN_FINISHED,
                                                         subject__in=[r.ledger_subject for r in runs])}
        last = max((r for r in runs if r.ledger_subject in finished), key=lambda r: finished[r.ledger_subject].seq,
                   default=None)
        releases = list(release_list(user=user).filter(model=model).order_by("pk"))
        in_production, approvals, open_reviews = "—", 0, 0
        for release in releases:
            events = [e.kind for e in covered.filter(subject=release.ledger_subject).order_by("seq")]
            if not events:
                continue
            approvals += sum(1 for k in events if k == GovernanceKind.APPROVAL_GIVEN)
            states = [RELEASE_EVENTS[k] for k in events if RELEASE_EVENTS.get(k) in RELEASE_STATES]
            state = states[-1] if states else "requested"
            if state == "approved" and release.environment == "production":
                in_production = release.model_version.version
            if state in ("requested", "gating"):
                open_reviews += 1
        rows.append([model.business_unit.name, model.name, model.get_risk_tier_display(),
                     model.get_annex_iii_category_display(), model.owner.username if model.owner else "",
                     ", ".join(v.version for v in versions) or "—", in_production,
                     f"{last.status} (run {last.pk}, {last.model_version.version})" if last else "none", approvals,
                     open_reviews])
    return rows


def inventory_csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode()


def build(unit_id: str, subject: str, *, user, checkpoint):
    rows = inventory_rows(user=user, unit_id=unit_id, checkpoint=checkpoint)
    scope = "every business unit" if unit_id == "all" else business_units_for(reader(user)).get(pk=int(unit_id)).name
    attachments = [ReportAttachment("model-inventory.csv", inventory_csv(rows), "text/csv", Relationship.ALTERNATIVE,
                                    "The inventory's rows as CSV")]
    metadata = b.metadata_for(DocumentKind.INVENTORY, title=f"Model inventory: {scope}", subject=scope,
                              custos_ids=(subject, f"audit.checkpoint:{checkpoint.tree_size}"),
                              author="Custos")
    context = {"contents": [{"anchor": "inventory", "title": "Models"}], "scope": scope, "checkpoint": checkpoint,
               "blocks": [b.table(COLUMNS, rows, numeric=[8, 9], dense=True)] if rows
               else [b.text("No model the reader may see was registered by the checkpoint.")],
               "count": len(rows)}
    return context, metadata, attachments
