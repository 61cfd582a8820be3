"""Technical documentation of a model version in the shape of Annex IV of the AI Act.

Every item of ``reports.rules.annex_iv.ITEMS`` appears, in order, with its status: filled from
evidence (a filler below wrote it), written by a person (the latest ``HumanSection`` the ledger
covered, with author, time, version and digest), or missing. A completeness table opens it.
"""

from __future__ import annotations

from ..rules import annex_iv as rules
from ..rules.documents import DocumentKind
from . import blocks as b
from .evidence import VersionEvidence, iso


def purpose_and_versions(ev: VersionEvidence):
    mv, model = ev.model_version, ev.model
    versions = sorted(mv.model.versions.filter(created_at__lte=mv.created_at).values_list("version", "artifact_sha256",
                                                                                     "created_at"),
                      key=lambda v: v[2])
    return [
        b.facts(("Intended purpose", model.intended_purpose),
                ("Risk tier", model.get_risk_tier_display()),
                ("Annex III category", model.get_annex_iii_category_display()),
                ("Provider (unit)", model.business_unit.name),
                ("Model owner", model.owner.username if model.owner else ""),
                ("This version", f"{model.name} {mv.version}"), ("Artifact SHA-256", mv.artifact_sha256)),
        b.table(["Version", "Registered", "Artifact SHA-256"],
                [[v, iso(t), sha] for v, sha, t in versions], title="Versions up to this one (relation to earlier versions)"),
    ]


def software_versions(ev):
    mv, run = ev.model_version, ev.training_run
    rows = [["framework", f"{mv.framework} {mv.framework_version}".strip()]]
    if run is not None:
        rows += [[k, str(v)] for k, v in sorted((run.library_versions or {}).items())]
    for g in ev.gate_runs[-1:]:
        rows += [[f"gate run {g['pk']}: {k}", str(v)] for k, v in g["libraries"]]
    return [b.table(["Software", "Version"], rows, title="Software the model was trained and evaluated with")] if rows else []


def development_method(ev):
    run = ev.training_run
    if run is None:
        return []
    code = run.code_version
    return [b.facts(("Training run", f"{run.name or run.external_run_id} ({run.ledger_subject})"),
                    ("Reported through", run.get_source_display()),
                    ("Code", f"{code.repository_url} @ {code.commit_sha}" if code else ""),
                    ("Container image", code.image_digest if code else ""),
                    ("Started", iso(run.started_at)), ("Ended", iso(run.ended_at)),
                    ("Seeds", ", ".join(f"{k}={v}" for k, v in sorted((run.seeds or {}).items()))))]


def design_parameters(ev):
    run, mv = ev.training_run, ev.model_version
    out = []
    if run is not None and run.parameters:
        out.append(b.table(["Parameter", "Value"], [[k, str(v)] for k, v in sorted(run.parameters.items())],
                           title="Training parameters"))
    if mv.feature_names:
        out.append(b.facts(("Input features", ", ".join(mv.feature_names))))
    for g in ev.gate_runs[-1:]:
        ex = g["explainability"]
        if ex.get("ranking"):
            out.append(b.table(["Input column", "Mean |SHAP|"],
                               [[c, b.num(ex["importance"][c])] for c in ex["ranking"]], numeric=[1],
                               title=f"Global attributions (gate run {g['pk']}, {ex.get('explainer')})"))
    return out


def architecture_lineage(ev):
    return [b.figure(ev.lineage_svg, "Lineage: the code, runs and dataset versions this model version came from.")]


def datasets(ev):
    rows = [[f"{d['name']}@{d['version']}", d["role"], b.num(d["row_count"]), d["storage"], d["sha256"] or "—"]
            for d in ev.datasets]
    out = [b.table(["Dataset version", "Role", "Rows", "Storage", "SHA-256"], rows, numeric=[2])] if rows else []
    for d in ev.datasets:
        out.append(b.facts(("Provenance", d["description"]),
                           ("Schema", ", ".join(f"{c.get('name')} ({c.get('type')})" for c in d["schema"])),
                           ("Personal columns", ", ".join(d["personal_columns"]) or "none declared"),
                           ("Sensitive columns", ", ".join(d["sensitive_columns"]) or "none declared"),
                           title=f"{d['name']}@{d['version']}"))
    return out


def oversight_policy(ev):
    rows = []
    for r in ev.releases:
        rule = r["policy_rule"] or {}
        rows.append([r["environment"], r["policy"], ", ".join(f"{k}: {v}" for k, v in sorted(rule.items())),
                     r["policy_digest"][:16]])
    if not rows:
        return []
    return [b.table(["Environment", "Approval policy", "Rule", "Digest"], rows,
                    title="Human oversight: the approvals a release of this version needs")]


def validation_tests(ev):
    out = []
    for g in ev.gate_runs:
        out.append(b.facts(("Gate run", f"{g['pk']} ({g['subject']}), verdict {g['status']}"),
                           ("Policy", f"{g['policy']} ({g['policy_digest'][:16]})"),
                           ("Test data", f"{g['dataset']} SHA-256 {g['dataset_sha256']}"),
                           ("Seed", g["seed"]), ("Submitted by", g["submitted_by"]),
                           ("Finished (dated)", g["finished_at"]),
                           ("Signed ledger entry", f"seq {g['finished_seq']}")))
        out.append(b.table(["Area", "Check", "Value", "95% CI", "Limit", "Verdict"],
                           [[c["area"], c["name"], b.num(c.get("value")), c["ci_text"], c["limit_text"], c["verdict"]]
                            for c in g["checks"]], numeric=[2], title=f"Checks of gate run {g['pk']}"))
    for r in ev.releases:
        if r["decisions"]:
            out.append(b.table(["Release", "Person", "Role", "Decision", "Time", "Ledger seq"],
                               [[r["pk"], d["approver"], d["role"], d["decision"], d["time"], d["seq"]]
                                for d in r["decisions"]], numeric=[5], title="Signed decisions on the test results"))
    return out


def performance_by_group(ev):
    out = []
    for g in ev.gate_runs[-1:]:
        for f in g["fairness"]:
            out.append(b.table(["Group", "Rows", "Selection rate", "TPR", "FPR", "Accuracy"],
                               [[grp["group"], grp["count"], b.num(grp.get("selection_rate")),
                                 b.num(grp.get("true_positive_rate")), b.num(grp.get("false_positive_rate")),
                                 b.num(grp.get("accuracy"))] for grp in f["groups"]],
                               numeric=[1, 2, 3, 4, 5], title=f"Accuracy by {f['name']} (gate run {g['pk']})"))
        if g["performance"]:
            out.append(b.table(["Metric", "Value"], [[k, b.num(v)] for k, v in g["performance"]], numeric=[1],
                               title=f"Overall (gate run {g['pk']})"))
    return out


def lifecycle(ev):
    rows = []
    for r in ev.releases:
        for e in r["events"]:
            rows.append([e["seq"], e["time"], f"release {r['pk']} ({r['environment']})", e["event"], e["actor"]])
    rows.sort()
    return [b.table(["Seq", "Time", "Release", "Event", "By"], rows, numeric=[0],
                    title="Releases, revocations and supersessions")] if rows else []


FILLERS = {name: globals()[name] for name in {i.evidence for i in rules.ITEMS if i.evidence}}


def build(ev: VersionEvidence):
    items, statuses = [], {}
    for item in rules.ITEMS:
        evidence = FILLERS[item.evidence](ev) if item.evidence else []
        section = ev.sections.get(item.key)
        status = rules.item_status(item, has_evidence=bool(evidence), has_text=section is not None)
        statuses[item.key] = status
        items.append({
            "item": item, "status": status.value, "blocks": evidence, "anchor": f"item-{item.key}",
            "section": section and {"text": section.text, "author": section.author.username if section.author else
                                    "the system", "time": iso(section.created_at), "version": section.version,
                                    "digest": section.digest, "seq": section.ledger_seq},
        })
    points = [{"number": n, "title": t, "anchor": f"point-{n}", "items": [i for i in items if i["item"].point == n]}
              for n, t in rules.POINT_TITLES.items()]
    mv = ev.model_version
    contents = [{"anchor": "completeness", "title": "Completeness"}]
    contents += [{"anchor": p["anchor"], "title": f"{p['number']}. {p['title']}"} for p in points]
    metadata = b.metadata_for(DocumentKind.ANNEX_IV, title=f"Technical documentation: {ev.model.name} {mv.version}",
                            subject=f"{ev.model.name} {mv.version}",
                            custos_ids=(mv.ledger_subject, f"audit.checkpoint:{ev.checkpoint.tree_size}"),
                            author=f"Custos for {ev.model.business_unit.name}")
    context = {"contents": contents, "points": points, "completeness": rules.completeness(statuses),
               "mv": mv, "model": ev.model, "checkpoint": ev.checkpoint,
               "totals": {s.value: sum(1 for v in statuses.values() if v == s) for s in rules.Status}}
    return context, metadata, []
