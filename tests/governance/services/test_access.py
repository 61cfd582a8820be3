import pytest
from django.core.exceptions import PermissionDenied

from audit.models import LedgerEntry
from governance.rules import roles
from governance.models import BusinessUnit
from governance.selectors.access import business_units_for, can_access_unit
from governance.services.access import business_unit_grant, business_unit_revoke


def test_grant_gives_access_to_that_unit_only(make_user, unit, other_unit):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    assert list(business_units_for(officer)) == [unit]
    assert can_access_unit(officer, unit, write=True)
    assert not can_access_unit(officer, other_unit)
    assert list(BusinessUnit.objects.for_user(officer)) == [unit]


def test_grant_and_revoke_are_ledgered(make_user, unit):
    officer = make_user(roles.COMPLIANCE_OFFICER)
    business_unit_grant(unit=unit, user=officer)
    entry = LedgerEntry.objects.filter(kind="access.unit_granted").last()
    assert entry.subject == f"governance.businessunit:{unit.pk}"
    assert entry.payload["user_id"] == officer.pk
    business_unit_revoke(unit=unit, user=officer)
    assert not can_access_unit(officer, unit)
    assert LedgerEntry.objects.filter(kind="access.unit_revoked", subject=unit.ledger_subject).exists()


def test_auditor_reads_every_unit_but_writes_none(make_user, unit, other_unit):
    auditor = make_user(roles.AUDITOR)
    assert set(business_units_for(auditor)) == {unit, other_unit}
    assert not business_units_for(auditor, write=True).exists()


def test_only_administrators_grant_access(make_user, unit):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    other = make_user(roles.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied):
        business_unit_grant(unit=unit, user=other, actor=officer)
    assert not can_access_unit(other, unit)
