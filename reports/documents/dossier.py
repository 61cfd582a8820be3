"""The audit dossier of a model version: what an examiner asks for (SR 26-2, PRA SS1/23, EBA GL/2020/06).

Identity and hashes, the lineage picture, datasheets of its datasets (Gebru et al.'s headings
where evidence exists), every gate run with its figures and charts, every decision, the release
history, and the ledger extract with each entry's inclusion in the named checkpoint. Row-level
figures travel as attachments (the gate results as JSON, the ledger extract as CSV), with the
evidence bundle and the ML-BOM.
"""

from __future__ import annotations

import csv
import io
import json

from ..pdf import ReportAttachment, Relationship
from ..rules.documents import DocumentKind
from . import blocks as b
from .evidence import VersionEvidence, iso
from .mlbom import ml_bom_bytes

LEDGER_ROWS_SHOWN = 200  # more go to the attached CSV only


def _datasheet(d) -> list:
    """A dataset version under the headings of 'Datasheets for Datasets' that the evidence answers."""
    return [
        b.facts(("Provenance", d["description"]), ("Role", d["role"]),
                title=f"{d['name']}@{d['version']} — motivation"),
        b.facts(("Instances (rows)", b.num(d["row_count"])), ("Size", f"{b.num(d['size_bytes'])} bytes"),
                ("Format", d["format"]), ("Schema", ", ".join(f"{c.get('name')} ({c.get('type')})" for c in d["schema"])),
                ("Data-subject column", d["subject_column"] or "none"),
                ("Personal columns", ", ".join(d["personal_columns"]) or "none declared"),
                ("Sensitive columns", ", ".join(d["sensitive_columns"]) or "none declared"),
                title="Composition"),
        b.facts(("Storage", d["storage"]), ("URI", d["uri"]), ("SHA-256", d["sha256"] or "none (reported without content)"),
                ("Registered", d["created_at"]), ("Ledger subject", d["subject"]), title="Collection and distribution"),
    ]


def build(ev: VersionEvidence):
    mv, model, cp = ev.model_version, ev.model, ev.checkpoint
    identity = [b.facts(("Model", f"{model.name} ({model.ledger_subject})"), ("Version", f"{mv.version} ({mv.ledger_subject})"),
                        ("Business unit", model.business_unit.name), ("Risk tier", model.get_risk_tier_display()),
                        ("Annex III category", model.get_annex_iii_category_display()),
                        ("Owner", model.owner.username if model.owner else ""),
                        ("Artifact SHA-256", mv.artifact_sha256),
                        ("Format", f"{mv.get_artifact_format_display()}, {b.num(mv.artifact_size)} bytes"),
                        ("Framework", f"{mv.framework} {mv.framework_version}".strip()),
                        ("Registered", f"{iso(mv.created_at)} by {mv.created_by.username if mv.created_by else 'the system'}"),
                        ("Checkpoint", f"{cp.tree_size} entries, root {bytes(cp.root_hash).hex()}"))]
    lineage = [b.figure(ev.lineage_svg, "Lineage: code, training run and dataset versions of this model version."),
               b.table(["Node", "Type", "Digest"],
                       [[n["label"], n["type"].replace("_", " "),
                         n.get("sha256") or n.get("artifact_sha256") or n.get("commit_sha") or ""]
                        for n in ev.lineage["nodes"]])]
    runs = []
    for g in ev.gate_runs:
        section = [b.facts(("Verdict", g["status"]), ("Reason", g["reason"]), ("Policy", f"{g['policy']} ({g['policy_digest']})"),
                           ("Evaluation data", f"{g['dataset']}, SHA-256 {g['dataset_sha256']}"), ("Seed", g["seed"]),
                           ("Submitted by", g["submitted_by"]), ("Finished", g["finished_at"]),
                           ("Result SHA-256", g["result_digest"]), ("Ledger entry", f"seq {g['finished_seq']}"))]
        section.append(b.table(["Metric", "Value"], [[k, b.num(v)] for k, v in g["performance"]], numeric=[1],
                               title="Performance"))
        section.append(b.table(["Area", "Check", "Value", "95% CI", "Limit", "Verdict"],
                               [[c["area"], c["name"], b.num(c.get("value")), c["ci_text"], c["limit_text"], c["verdict"]]
                                for c in g["checks"]], numeric=[2], title="Checks"))
        for f in g["fairness"]:
            section.append(b.table(["Group", "Rows", "Selection rate", "TPR", "FPR", "Accuracy"],
                                   [[grp["group"], grp["count"], b.num(grp.get("selection_rate")),
                                     b.num(grp.get("true_positive_rate")), b.num(grp.get("false_positive_rate")),
                                     b.num(grp.get("accuracy"))] for grp in f["groups"]],
                                   numeric=[1, 2, 3, 4, 5], title=f"By {f['name']}"))
        for title, svg in g["charts"]:
            section.append(b.figure(svg, f"Gate run {g['pk']}: {title}."))
        runs.append({"title": f"Gate run {g['pk']} ({g['status']})", "anchor": f"gate-run-{g['pk']}", "blocks": section})
    decisions = [[r["pk"], r["environment"], d["approver"], d["role"], d["decision"], d["time"], d["seq"], d["justification"]]
                 for r in ev.releases for d in r["decisions"]]
    history = sorted([[e["seq"], e["time"], f"release {r['pk']} → {r['environment']}", e["event"], e["actor"]]
                      for r in ev.releases for e in r["events"]])
    ledger_rows = [[e.seq, iso(e.created_at), e.kind, e.subject, e.actor, bytes(e.entry_hash).hex()] for e in ev.entries]

    csv_text = io.StringIO()
    writer = csv.writer(csv_text, lineterminator="\n")
    writer.writerow(["seq", "time", "kind", "subject", "actor", "entry_hash"])
    writer.writerows(ledger_rows)
    gate_results = {str(g["pk"]): g["result"] for g in ev.gate_runs}
    attachments = [
        ReportAttachment("ml-bom.cdx.json", ml_bom_bytes(ev), "application/vnd.cyclonedx+json", Relationship.SUPPLEMENT,
                         "CycloneDX 1.6 ML-BOM of the model version"),
        ReportAttachment("ledger-extract.csv", csv_text.getvalue().encode(), "text/csv", Relationship.DATA,
                         "Every ledger entry in the extract (the bundle carries them signed, with proofs)"),
        ReportAttachment("gate-results.json", (json.dumps(gate_results, sort_keys=True, indent=1) + "\n").encode(),
                         "application/json", Relationship.DATA, "The stored result of every gate run, row-level figures included"),
    ]
    sections = [
        {"anchor": "identity", "title": "1. Identity and hashes", "blocks": identity},
        {"anchor": "lineage", "title": "2. Lineage", "blocks": lineage},
        {"anchor": "datasets", "title": "3. Datasets", "blocks": [blk for d in ev.datasets for blk in _datasheet(d)]
         or [b.text("No dataset version of this model was recorded by the checkpoint.")]},
        {"anchor": "gate-runs", "title": "4. Gate runs", "runs": runs,
         "blocks": [] if runs else [b.text("No gate run of this version had finished by the checkpoint.")]},
        {"anchor": "decisions", "title": "5. Decisions", "blocks": [
            b.table(["Release", "Env.", "Person", "Role", "Decision", "Time", "Seq", "Justification"], decisions, numeric=[6])
            if decisions else b.text("No decision on a release of this version was recorded by the checkpoint.")]},
        {"anchor": "releases", "title": "6. Release history", "blocks": [
            b.table(["Seq", "Time", "Release", "Event", "By"], history, numeric=[0])
            if history else b.text("This version was never submitted for release by the checkpoint.")]},
        {"anchor": "ledger", "title": "7. Ledger extract", "ledger": True, "blocks": [
            b.text(f"{len(ledger_rows)} entries about this version, its model, training run, datasets, gate runs, "
                   f"releases and documentation sections, each with an inclusion proof against the checkpoint of "
                   f"tree size {cp.tree_size} (root {bytes(cp.root_hash).hex()}) in the attached evidence bundle."
                   + (f" The first {LEDGER_ROWS_SHOWN} are listed; all are in ledger-extract.csv."
                      if len(ledger_rows) > LEDGER_ROWS_SHOWN else "")),
            b.table(["Seq", "Time", "Kind", "Subject", "Actor", "Entry hash"], ledger_rows[:LEDGER_ROWS_SHOWN],
                    numeric=[0], dense=True)]},
    ]
    contents = []
    for s in sections:
        contents.append({"anchor": s["anchor"], "title": s["title"]})
        contents += [{"anchor": r["anchor"], "title": r["title"], "level": 2} for r in s.get("runs", [])]
    metadata = b.metadata_for(DocumentKind.DOSSIER, title=f"Audit dossier: {model.name} {mv.version}",
                              subject=f"{model.name} {mv.version}",
                              custos_ids=(mv.ledger_subject, f"audit.checkpoint:{cp.tree_size}"),
                              author=f"Custos for {model.business_unit.name}")
    context = {"contents": contents, "sections": sections, "mv": mv, "model": model, "checkpoint": cp,
               "checkpoint_root": bytes(cp.root_hash).hex(), "checkpoint_note": cp.note}
    return context, metadata, attachments
