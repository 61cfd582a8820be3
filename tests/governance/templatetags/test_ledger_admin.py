"""The admin index shows the user's own recent ledger entries instead of an always-empty "Recent actions"."""

from governance.rules import roles
from governance.services.access import business_unit_grant


def test_the_index_lists_what_the_user_did(client, make_user, unit):
    admin_user = make_user(superuser=True)
    business_unit_grant(unit=unit, user=make_user(roles.DATA_SCIENTIST), actor=admin_user)
    client.force_login(admin_user)
    page = client.get("/admin/").content.decode()
    assert "Your recent ledger entries" in page and "access.unit_granted" in page
    assert "Recent actions" not in page
    client.force_login(make_user(roles.AUDITOR))
    assert "Nothing you did is in the ledger yet." in client.get("/admin/").content.decode()
