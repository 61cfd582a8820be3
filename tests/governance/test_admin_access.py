"""Business-unit access managed in the admin goes through the ledgered services."""

from audit.models import LedgerEntry
from governance import roles
from governance.selectors.access import can_access_unit


def test_superuser_grants_and_revokes_access_in_the_admin(client, make_user, unit):
    admin_user = make_user(superuser=True)
    scientist = make_user(roles.DATA_SCIENTIST)
    client.force_login(admin_user)
    url = f"/admin/governance/businessunit/{unit.pk}/access/"
    assert scientist.username in client.get(url).content.decode()  # offered in the grant form
    response = client.post(url, {"user": scientist.pk}, follow=True)
    assert response.status_code == 200
    assert can_access_unit(scientist, unit, write=True)
    assert LedgerEntry.objects.filter(kind="access.unit_granted", actor=admin_user.username).exists()
    client.post(url, {"revoke": scientist.pk})
    assert not can_access_unit(scientist, unit)
    assert LedgerEntry.objects.filter(kind="access.unit_revoked", actor=admin_user.username).exists()


def test_officer_sees_only_own_units_and_cannot_grant(client, make_user, unit, other_unit):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    stranger = make_user(roles.DATA_SCIENTIST)
    client.force_login(officer)
    listing = client.get("/admin/governance/businessunit/").content.decode()
    assert unit.name in listing and other_unit.name not in listing
    assert client.get(f"/admin/governance/businessunit/{other_unit.pk}/access/").status_code == 404
    assert client.post(f"/admin/governance/businessunit/{unit.pk}/access/", {"user": stranger.pk}).status_code == 403
    assert not can_access_unit(stranger, unit)


def test_role_changes_in_the_user_admin_are_ledgered(client, make_user):
    from django.contrib.auth.models import Group

    admin_user = make_user(superuser=True)
    person = make_user(roles.DATA_SCIENTIST)
    client.force_login(admin_user)
    validator = Group.objects.get(name=roles.MODEL_RISK_VALIDATOR)
    response = client.post(
        f"/admin/auth/user/{person.pk}/change/",
        {
            "username": person.username,
            "is_active": "on",
            "is_staff": "on",
            "groups": [validator.pk],
            "last_login_0": "", "last_login_1": "",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(person.groups.values_list("name", flat=True)) == [roles.MODEL_RISK_VALIDATOR]
    entry = LedgerEntry.objects.get(kind="access.roles_changed")
    assert entry.payload["before"] == [roles.DATA_SCIENTIST]
    assert entry.payload["after"] == [roles.MODEL_RISK_VALIDATOR]
    assert entry.actor == admin_user.username
