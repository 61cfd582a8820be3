from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.demo.steps import DEMO_USERS


def test_demo_is_idempotent_and_prints_passwords_once(db, capsys):
    call_command("demo")
    first = capsys.readouterr().out
    assert first.count("password:") == sum(1 for _, role, _, _ in DEMO_USERS if role != "Pipeline")
    call_command("demo")
    second = capsys.readouterr().out
    assert "password:" not in second
    User = get_user_model()
    assert User.objects.filter(username__in=[u[0] for u in DEMO_USERS]).count() == len(DEMO_USERS)


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
    assert [v.version for v in versions] == ["1.0", "1.1"]
    run = versions[0].training_run
    roles_ = {link.role: link.dataset_version for link in run.inputs.all()}
    assert roles_["train"].row_count == 800 and roles_["test"].row_count == 200
    holdout = snapshot_frame(roles_["test"])
    assert holdout["applicant_id"].iloc[0] == "applicant-0801"
    assert load_model(versions[1]).predict_proba(holdout[feature_columns(german_credit_frame())]).shape == (200, 2)
