"""The demo leaves the README's walk ready: on the model with lineage, a request awaiting the
officer, an inconclusive gate awaiting the validator, and a version for the pipeline recipe."""

from django.core.management import call_command

from governance.models import ModelVersion, ReleaseRequest
from governance.rules import roles
from governance.services.releases import release_still_needs


def test_the_demo_leaves_a_request_for_each_role_and_a_version_for_the_recipe(db, capsys):
    call_command("demo")
    waiting = {r.model_version.version: r for r in ReleaseRequest.objects.filter(
        model__name="credit-scoring", state="awaiting_approval")}
    assert release_still_needs(waiting["1.1"]) == (roles.COMPLIANCE_OFFICER,)
    assert waiting["1.2"].gate_verdict == "inconclusive"
    assert release_still_needs(waiting["1.2"])[0].startswith("an override of the inconclusive gate")
    recipe = ModelVersion.objects.get(model__name="credit-scoring", version="1.3")
    assert recipe.training_run is not None and not ReleaseRequest.objects.filter(model_version=recipe).exists()
