"""The release status that deploy jobs poll: its query budget, and access decided afresh on every call.

The status lookup is one SQL statement of its own (see ``release_status``); these tests hold
its access rule equal to ``for_user`` (the ORM and guardian rule) and its answers exact after every change.
"""

import pytest
from django.contrib.auth.models import Group
from django.http import Http404
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from governance.rules import roles
from governance.models import ServiceToken
from governance.selectors.access import UNIT_ACCESS_PERM
from governance.selectors.releases import model_version_find
from governance.services.access import business_unit_grant, business_unit_revoke, token_revoke
from governance.services.releases import release_request
from tests.gate_verdicts import record_gate_verdict


def status_of(client, mv, **extra):
    return client.get(
        "/api/v1/releases/status",
        {"model": mv.model.name, "version": mv.version, "environment": "production", **extra},
    )


def test_status_costs_three_queries(make_user, unit, token_client, credit_model_version, django_assert_num_queries):
    mv = credit_model_version
    release = release_request(model_version=mv, environment="production", actor=make_user(roles.DATA_SCIENTIST, [unit]))
    release = record_gate_verdict(release, "passed")
    assert status_of(token_client, mv).status_code == 200  # the first call may stamp the token's last use
    # The token (with its user), then the version, its unit, the caller's access and the latest request;
    # then the registered facts' own: the erasure reviews of the version, and monitoring's plan.
    with django_assert_num_queries(4):
        response = status_of(token_client, mv)
    assert response.status_code == 200
    assert response.json() == {
        "approved": False, "state": "awaiting_approval", "release_id": release.pk, "model": mv.model.name,
        "version": mv.version, "business_unit": unit.slug, "environment": "production",
        "artifact_sha256": mv.artifact_sha256, "attestation": None,
        "facts": {"erasure_review": {"blocked": False, "reason": None}, "monitoring": {"status": "no plan"}},
    }


def test_a_removed_grant_or_a_revoked_token_is_refused_on_the_very_next_call(
    unit, pipeline_token, token_client, credit_model_version
):
    user, _ = pipeline_token
    mv = credit_model_version
    assert status_of(token_client, mv).status_code == 200
    business_unit_revoke(unit=unit, user=user)
    assert status_of(token_client, mv).status_code == 404
    business_unit_grant(unit=unit, user=user)
    assert status_of(token_client, mv).status_code == 200
    token_revoke(token=ServiceToken.objects.get(user=user))
    assert status_of(token_client, mv).status_code == 401


def _user_who_reads(how, make_user, unit, other_unit):
    if how == "own grant":
        return make_user(roles.DATA_SCIENTIST, [unit])
    if how == "other unit's grant":
        return make_user(roles.DATA_SCIENTIST, [other_unit])
    if how == "no grant":
        return make_user(roles.DATA_SCIENTIST)
    if how == "grant to one of their groups":
        user = make_user(roles.DATA_SCIENTIST)
        team = Group.objects.create(name=f"team of {user.username}")
        assign_perm(UNIT_ACCESS_PERM, team, unit)
        user.groups.add(team)
        return user
    if how == "other unit's group grant":
        user = make_user(roles.DATA_SCIENTIST)
        team = Group.objects.create(name=f"team of {user.username}")
        assign_perm(UNIT_ACCESS_PERM, team, other_unit)
        user.groups.add(team)
        return user
    if how == "global read role":
        return make_user(roles.AUDITOR)
    if how == "superuser":
        return make_user(superuser=True)
    if how == "inactive":
        user = make_user(roles.DATA_SCIENTIST, [unit])
        user.is_active = False
        return user
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how,sees",
    [
        ("own grant", True),
        ("other unit's grant", False),
        ("no grant", False),
        ("grant to one of their groups", True),
        ("other unit's group grant", False),
        ("global read role", True),
        ("superuser", True),
    ],
)
def test_status_reads_exactly_the_units_that_for_user_allows(
    make_user, unit, other_unit, credit_model_version, how, sees
):
    mv = credit_model_version
    user = _user_who_reads(how, make_user, unit, other_unit)
    try:
        model_version_find(user=user, model=mv.model.name, version=mv.version)  # the ORM + guardian rule
        orm_sees = True
    except Http404:
        orm_sees = False
    client = APIClient()
    client.force_login(user)
    response = status_of(client, mv)
    assert orm_sees is sees
    assert response.status_code == (200 if sees else 404), response.content


def test_an_inactive_user_reads_nothing(make_user, unit, other_unit, credit_model_version):
    from governance.selectors.releases import release_status

    user = _user_who_reads("inactive", make_user, unit, other_unit)
    mv = credit_model_version
    with pytest.raises(Http404):
        release_status(user=user, model=mv.model.name, version=mv.version, environment="production")


def test_a_model_name_in_two_units_needs_the_unit(make_user, unit, other_unit, make_credit_model_version):
    mine = make_credit_model_version(unit, version="1.0")
    make_credit_model_version(other_unit, version="1.0")
    both = APIClient()
    both.force_login(make_user(roles.DATA_SCIENTIST, [unit, other_unit]))
    ambiguous = status_of(both, mine)
    assert ambiguous.status_code == 404
    assert ambiguous.json()["detail"] == "Several units have this model; name the business_unit."  # the pipeline learns why
    named = status_of(both, mine, business_unit=unit.slug)
    assert named.status_code == 200 and named.json()["artifact_sha256"] == mine.artifact_sha256
    one = APIClient()
    one.force_login(make_user(roles.DATA_SCIENTIST, [unit]))
    assert status_of(one, mine).json()["business_unit"] == unit.slug


def test_unit_grants_live_in_guardian_generic_tables_that_the_status_query_reads():
    """The status statement reads guardian's generic object-permission tables; if BusinessUnit
    ever gets direct-FK permission models, `release_status` must be rewritten with it."""
    from guardian.models import GroupObjectPermission, UserObjectPermission
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    from governance.models import BusinessUnit

    assert get_user_obj_perms_model(BusinessUnit) is UserObjectPermission
    assert get_group_obj_perms_model(BusinessUnit) is GroupObjectPermission
