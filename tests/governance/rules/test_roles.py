from django.contrib.auth.models import Group

from governance.rules import roles


def test_role_groups_exist_after_migrate(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)


def test_role_permissions_are_applied(db):
    auditor = Group.objects.get(name=roles.AUDITOR)
    codenames = set(auditor.permissions.values_list("codename", flat=True))
    assert {"view_ledgerentry", "export_ledgerentry"} <= codenames
    scientist = Group.objects.get(name=roles.DATA_SCIENTIST)
    assert "export_ledgerentry" not in set(scientist.permissions.values_list("codename", flat=True))
