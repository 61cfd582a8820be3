"""The erasure demo step: one completed request with a model version under review, one waiting for approval."""

from governance.demo.erasure import COMPLETED, WAITING, erasure_requests
from governance.demo.steps import registry_data, users_and_units
from governance.models import ErasureRequest, ErasureReview
from governance.storage.subjects import subject_key


def test_the_demo_leaves_a_completed_and_a_waiting_request(db):
    lines = []
    users_and_units(lines.append)
    registry_data(lines.append)
    erasure_requests(lines.append)
    erasure_requests(lines.append)  # idempotent
    done, waiting = ErasureRequest.objects.order_by("reference")
    assert done.state == "completed_live" and waiting.state == "planned"
    assert ErasureReview.objects.get(request=done).model_version.model.name == "credit-prescreen"
    text = "\n".join(lines)
    assert "requests exist" in text
    for person in (COMPLETED, WAITING):
        assert person not in text and subject_key(person) not in text
