import json

from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.demo.steps import DEMO_USERS


def _accounts(out: str) -> dict[str, str]:
    """The accounts table, which is the last thing the demo prints: {username: its row}."""
    table = out.rsplit("Demo accounts", 1)[1].splitlines()[2:]
    return {line.split()[0]: line for line in table if line.startswith("  ")}


def test_demo_is_idempotent_prints_the_accounts_last_and_passwords_once(db, capsys, settings):
    call_command("demo")
    first = capsys.readouterr().out
    rows = _accounts(first)
    assert list(rows) == [u[0] for u in DEMO_USERS]
    assert first.rstrip().splitlines()[-1].startswith("  pipeline.credit")  # nothing after the table
    for username, role, units, _ in DEMO_USERS:
        assert ", ".join(units) in rows[username], username
        assert ("unchanged" in rows[username]) is False
    assert "every unit" in rows["aude.auditor"] and "tokens create pipeline.credit" in rows["pipeline.credit"]
    call_command("demo")
    second = capsys.readouterr().out
    assert "nothing to do" in second  # the quick path: the noted checkpoint is this ledger's
    assert "registry:" not in second and "gate run" not in second
    rows = _accounts(second)
    assert all("unchanged" in rows[u] for u, role, _, _ in DEMO_USERS if role != "Pipeline")
    assert "demo --reset-passwords" in second
    call_command("demo", "--reset-passwords")
    rows = _accounts(capsys.readouterr().out)
    assert not any("unchanged" in row for row in rows.values())
    User = get_user_model()
    assert User.objects.filter(username__in=[u[0] for u in DEMO_USERS]).count() == len(DEMO_USERS)


def test_a_note_of_another_ledger_does_not_skip_the_demo(db, capsys, settings):
    from pathlib import Path

    note = Path(settings.MEDIA_ROOT) / "demo-complete.json"
    note.parent.mkdir(parents=True, exist_ok=True)
    from governance.demo import demo_step_paths

    note.write_text(json.dumps({"steps": demo_step_paths(), "tree_size": 5, "root": "00" * 32}))
    call_command("demo")
    out = capsys.readouterr().out
    assert "nothing to do" not in out and "registry: credit-scoring 1.0" in out


def test_demo_registers_the_credit_scoring_model(db, capsys):
    from governance.storage.artifacts import load_model
    from governance.demo.credit import feature_columns, german_credit_frame
    from governance.models import MLModel, ModelVersion
    from governance.selectors.snapshots import snapshot_frame

    call_command("demo")
    call_command("demo")
    model = MLModel.objects.get(name="credit-scoring", business_unit__slug="retail-credit")
    assert model.risk_tier == "high" and model.annex_iii_category == "creditworthiness"
    versions = ModelVersion.objects.filter(model=model).order_by("version")
    assert [v.version for v in versions] == ["1.0", "1.1", "1.2", "1.3"]  # 1.2 and 1.3: the walkthrough's
    run = versions[0].training_run
    roles_ = {link.role: link.dataset_version for link in run.inputs.all()}
    assert roles_["train"].row_count == 800 and roles_["test"].row_count == 200
    holdout = snapshot_frame(roles_["test"])
    assert holdout["applicant_id"].iloc[0] == "applicant-0801"
    assert load_model(versions[1]).predict_proba(holdout[feature_columns(german_credit_frame())]).shape == (200, 2)
