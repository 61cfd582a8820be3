"""The evidence about one model version as the ledger stood at a checkpoint.

Rows enter only when the ledger recorded them before the checkpoint (their entry's sequence
number is below its tree size): a gate run once ``gates.run_finished`` is covered, a decision by
its ``ledger_seq``, a release's history from its entries, a human section by its entry. Later
rows and later states do not change what a report at that checkpoint shows, which is what makes
``reports rerender`` give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.selectors import entry_list, evidence_bundle
from governance.charts.gates import gate_run_charts
from governance.charts.lineage import graph_svg
from governance.rules.kinds import GovernanceKind
from governance.selectors.gates import gate_runs_for
from governance.selectors.lineage import upstream
from governance.selectors.registry import dataset_versions_for, training_runs_for
from governance.selectors.releases import model_version_get, release_list

from ..models import HumanSection
from .reader import reader

RELEASE_EVENTS = {
    GovernanceKind.RELEASE_REQUESTED: "requested",
    GovernanceKind.GATING_STARTED: "gating",
    GovernanceKind.GATES_RECORDED: "gates recorded",
    GovernanceKind.APPROVAL_GIVEN: "approval given",
    GovernanceKind.REJECTION_GIVEN: "rejection given",
    GovernanceKind.GATE_OVERRIDDEN: "gate overridden",
    GovernanceKind.APPROVED: "approved",
    GovernanceKind.REJECTED: "rejected",
    GovernanceKind.SUPERSEDED: "superseded",
    GovernanceKind.REVOKED: "revoked",
    GovernanceKind.ATTESTATION_ISSUED: "attestation issued",
}
RELEASE_STATES = {"requested", "gating", "approved", "rejected", "superseded", "revoked"}


def iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else ""


@dataclass
class VersionEvidence:
    checkpoint: object
    model_version: object
    model: object
    training_run: object | None
    datasets: list[dict]
    gate_runs: list[dict]
    releases: list[dict]
    sections: dict[str, HumanSection]
    lineage: dict
    lineage_svg: str
    entries: list  # ledger entries about the version's records, up to the checkpoint
    subjects: list[str] = field(default_factory=list)

    def bundle(self) -> dict:
        return evidence_bundle(checkpoint=self.checkpoint, subjects=self.subjects)


def _covered(user, checkpoint, subjects):
    return list(entry_list(user=user, seq_to=checkpoint.tree_size - 1).filter(subject__in=sorted(subjects)))


def version_evidence(*, user, model_version_id: int, checkpoint) -> VersionEvidence:
    """Everything about MODEL_VERSION_ID that USER may read, as of CHECKPOINT."""
    user = reader(user)
    size = checkpoint.tree_size
    mv = model_version_get(user=user, pk=model_version_id)
    model = mv.model
    run = training_runs_for(user).filter(model_version=mv).first()
    runs = list(gate_runs_for(user).filter(model_version=mv).order_by("pk"))
    releases = list(release_list(user=user).filter(model_version=mv).order_by("pk"))
    sections_qs = HumanSection.objects.for_user(user).filter(model=model, ledger_seq__lt=size).select_related("author")

    subjects = {mv.ledger_subject, model.ledger_subject}
    subjects |= {r.ledger_subject for r in runs} | {r.ledger_subject for r in releases}
    subjects |= {s.ledger_subject for s in sections_qs}
    dataset_ids = {r.dataset_version_id for r in runs}
    if run is not None:
        subjects.add(run.ledger_subject)
        dataset_ids |= {i.dataset_version_id for i in run.inputs.all()}
    dataset_rows = list(dataset_versions_for(user).filter(pk__in=dataset_ids).order_by("pk"))
    subjects |= {d.ledger_subject for d in dataset_rows} | {d.dataset.ledger_subject for d in dataset_rows}
    entries = _covered(user, checkpoint, subjects)
    by_subject: dict[str, list] = {}
    for e in entries:
        by_subject.setdefault(e.subject, []).append(e)

    if run is not None and run.ledger_subject not in by_subject:
        run = None
    finished = {
        s for s, es in by_subject.items() if any(e.kind == GovernanceKind.RUN_FINISHED for e in es)
    }
    gate_runs = [_gate_run(r, by_subject[r.ledger_subject]) for r in runs if r.ledger_subject in finished]
    release_rows = [_release(r, by_subject.get(r.ledger_subject, []), size) for r in releases
                    if r.ledger_subject in by_subject]
    latest: dict[str, HumanSection] = {}
    for section in sections_qs.order_by("key", "-version"):
        latest.setdefault(section.key, section)
    roles = {}
    if run is not None:
        roles = {i.dataset_version_id: i.role for i in run.inputs.all()}
    datasets = [_dataset(d, roles.get(d.pk), [g for g in gate_runs if g["dataset_version_id"] == d.pk])
                for d in dataset_rows if d.ledger_subject in by_subject]
    lineage = upstream(mv, user=user)
    return VersionEvidence(
        checkpoint=checkpoint, model_version=mv, model=model, training_run=run, datasets=datasets,
        gate_runs=gate_runs, releases=release_rows, sections=latest, lineage=lineage,
        lineage_svg=graph_svg(lineage), entries=entries, subjects=sorted(by_subject),
    )


def _gate_run(run, entries) -> dict:
    finished = next(e for e in entries if e.kind == GovernanceKind.RUN_FINISHED)
    result = run.result or {}
    checks = [
        {**c, "limit_text": _limit_text(c.get("limit")), "ci_text": _ci_text(c.get("ci"))}
        for c in result.get("checks", [])
    ]
    fairness = []
    for feature in (result.get("fairness") or {}).get("features", []):
        fairness.append({
            "name": feature["name"],
            "groups": feature["groups"],
            "metrics": [{"name": k, "value": v.get("value"), "ci": _ci_text(v.get("ci"))}
                        for k, v in sorted(feature.get("metrics", {}).items())],
        })
    return {
        "pk": run.pk,
        "subject": run.ledger_subject,
        "status": run.status,
        "reason": run.reason,
        "policy": f"{run.policy.name} v{run.policy.version}",
        "policy_digest": run.policy.digest,
        "dataset": str(run.dataset_version),
        "dataset_version_id": run.dataset_version_id,
        "dataset_sha256": result.get("dataset_sha256", ""),
        "seed": run.seed,
        "submitted_by": run.submitted_by.username if run.submitted_by else "the system",
        "finished_at": iso(run.finished_at),
        "finished_seq": finished.seq,
        "result_digest": run.result_digest,
        "performance": sorted((result.get("performance") or {}).items()),
        "checks": checks,
        "fairness": fairness,
        "bootstrap": (result.get("fairness") or {}).get("bootstrap"),
        "explainability": result.get("explainability") or {},
        "libraries": sorted((result.get("libraries") or {}).items()),
        "charts": gate_run_charts(result),
        "result": result,
    }


def _release(release, entries, size) -> dict:
    events = []
    for e in entries:
        label = RELEASE_EVENTS.get(e.kind)
        if label:
            events.append({"seq": e.seq, "time": iso(e.created_at), "event": label, "actor": e.actor,
                           "payload": e.payload})
    state = next((ev["event"] for ev in reversed(events) if ev["event"] in RELEASE_STATES), "requested")
    decisions = [
        {"approver": a.approver.username, "role": a.role, "decision": a.decision, "justification": a.justification,
         "time": iso(a.decided_at), "seq": a.ledger_seq}
        for a in release.approvals.select_related("approver").filter(ledger_seq__lt=size).order_by("ledger_seq")
    ]
    return {"pk": release.pk, "subject": release.ledger_subject, "environment": release.environment,
            "state": state, "events": events, "decisions": decisions,
            "gate_run": release.gate_run_id, "gate_ledger_seq": release.gate_ledger_seq,
            "policy": f"{release.approval_policy.risk_tier} → {release.approval_policy.environment} "
                      f"v{release.approval_policy.version}",
            "policy_rule": release.approval_policy.rule, "policy_digest": release.approval_policy.digest}


def _dataset(dv, role, gate_runs) -> dict:
    return {"pk": dv.pk, "subject": dv.ledger_subject, "name": dv.dataset.name, "version": dv.version,
            "description": dv.dataset.description, "storage": dv.get_storage_display(),
            "format": dv.file_format, "uri": dv.uri, "sha256": dv.sha256, "size_bytes": dv.size_bytes,
            "row_count": dv.row_count, "schema": dv.schema, "subject_column": dv.subject_column,
            "personal_columns": dv.personal_columns, "sensitive_columns": dv.sensitive_columns,
            "role": role or ("evaluation" if gate_runs else ""), "created_at": iso(dv.created_at)}


def _limit_text(limit) -> str:
    if not limit:
        return ""
    parts = []
    if "min" in limit:
        parts.append(f"≥ {limit['min']}")
    if "max" in limit:
        parts.append(f"≤ {limit['max']}")
    return ", ".join(parts) or str(limit)


def _ci_text(ci) -> str:
    if not ci:
        return ""
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"
