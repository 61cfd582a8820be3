"""Business-unit access managed in the admin goes through the ledgered services."""

from django.contrib.auth.models import Group

from audit.models import LedgerEntry
from governance.rules import roles
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
    confirm = f"/admin/governance/businessunit/{unit.pk}/access/{scientist.pk}/revoke/"
    assert confirm in client.get(url).content.decode()
    page = client.get(confirm).content.decode()  # says what follows, changes nothing
    assert "no longer sees or acts on" in page and 'id="confirm-form"' in page
    assert can_access_unit(scientist, unit)
    client.post(confirm)
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


def test_status_changes_in_the_user_admin_are_ledgered(client, make_user):
    """Making someone a superuser (or locking them out) is a grant like a role change."""
    admin_user = make_user(superuser=True)
    person = make_user(roles.DATA_SCIENTIST)
    client.force_login(admin_user)
    form = {
        "username": person.username,
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "groups": [person.groups.get().pk],
        "last_login_0": "", "last_login_1": "",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/auth/user/{person.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    person.refresh_from_db()
    assert person.is_superuser and person.is_staff
    entry = LedgerEntry.objects.get(kind="access.user_status_changed")
    assert entry.subject == f"auth.user:{person.pk}" and entry.actor == admin_user.username
    assert entry.payload["before"] == {"is_active": True, "is_staff": True, "is_superuser": False}
    assert entry.payload["after"] == {"is_active": True, "is_staff": True, "is_superuser": True}
    # Saving again without a change writes nothing more.
    assert client.post(f"/admin/auth/user/{person.pk}/change/", form).status_code == 302
    assert LedgerEntry.objects.filter(kind="access.user_status_changed").count() == 1


def test_roles_are_read_only_in_the_admin(client, make_user):
    from django.contrib.auth.models import Group

    client.force_login(make_user(superuser=True))
    group = Group.objects.get(name=roles.AUDITOR)
    assert client.get(f"/admin/auth/group/{group.pk}/change/").status_code == 200
    assert client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Renamed", "permissions": []}).status_code == 403
    assert client.get("/admin/auth/group/add/").status_code == 403
    group.refresh_from_db()
    assert group.name == roles.AUDITOR and group.permissions.exists()


def test_adding_a_user_in_the_admin_still_works(client, make_user):
    from django.contrib.auth import get_user_model

    client.force_login(make_user(superuser=True))
    response = client.post(
        "/admin/auth/user/add/",
        {"username": "new-person", "usable_password": "true", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    person = get_user_model().objects.get(username="new-person")
    assert person.is_active and not person.is_staff and not person.is_superuser
    assert person.check_password("a-long-pass-phrase-9")
    from audit.models import LedgerEntry

    (entry,) = LedgerEntry.objects.filter(kind="access.user_created", subject=f"auth.user:{person.pk}")
    assert entry.payload["username"] == "new-person" and entry.payload["password_set"] is True
    assert "a-long-pass-phrase-9" not in str(entry.payload)
    # and a change of their profile, status and roles on the change page is ledgered too
    response = client.post(f"/admin/auth/user/{person.pk}/change/", {
        "username": "new-person", "first_name": "New", "last_name": "Person", "email": "new@example.com",
        "is_active": "on", "is_staff": "on", "groups": [Group.objects.get(name=roles.AUDITOR).pk],
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2026-12-01", "date_joined_1": "10:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    kinds = list(LedgerEntry.objects.filter(subject=f"auth.user:{person.pk}").values_list("kind", flat=True))
    assert kinds == ["access.user_created", "access.user_profile_changed", "access.user_status_changed",
                     "access.roles_changed"]
    assert "new@example.com" not in str(LedgerEntry.objects.get(kind="access.user_profile_changed").payload)


def test_a_units_change_page_opens_for_the_superuser(client, make_user, unit):
    """The only path to "manage access" was a 500 (prepopulated slug on a read-only field)."""
    client.force_login(make_user(superuser=True))
    response = client.get(f"/admin/governance/businessunit/{unit.pk}/change/")
    assert response.status_code == 200
    assert f"/admin/governance/businessunit/{unit.pk}/access/" in response.content.decode()
    assert client.get("/admin/governance/businessunit/add/").status_code == 200
