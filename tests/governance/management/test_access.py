"""`manage.py access grant|revoke|list` and `tokens create --unit`: ledgered grants from the shell."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import LedgerEntry
from governance.rules import roles
from governance.selectors.access import can_access_unit


def test_grant_and_revoke_are_ledgered_and_refuse_repeats(make_user, unit, capsys):
    scientist = make_user(roles.DATA_SCIENTIST)
    call_command("access", "grant", scientist.username, unit.slug)
    assert can_access_unit(scientist, unit, write=True)
    assert LedgerEntry.objects.filter(kind="access.unit_granted", subject=unit.ledger_subject).count() == 1
    with pytest.raises(CommandError, match="already has access"):
        call_command("access", "grant", scientist.username, unit.slug)
    call_command("access", "list", unit.slug)
    assert f"{unit.slug}: {scientist.username}" in capsys.readouterr().out
    call_command("access", "revoke", scientist.username, unit.slug)
    assert not can_access_unit(scientist, unit)
    assert LedgerEntry.objects.filter(kind="access.unit_revoked", subject=unit.ledger_subject).count() == 1
    with pytest.raises(CommandError, match="has no access"):
        call_command("access", "revoke", scientist.username, unit.slug)


def test_unknown_unit_or_user_is_one_line(make_user, unit):
    with pytest.raises(CommandError, match="No business unit 'nope'"):
        call_command("access", "grant", make_user().username, "nope")
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("access", "grant", "nobody", unit.slug)


def test_an_actor_without_the_right_is_refused(make_user, unit):
    officer = make_user(roles.COMPLIANCE_OFFICER, [unit])
    with pytest.raises(CommandError):
        call_command("access", "grant", make_user().username, unit.slug, "--actor", officer.username)


def test_a_token_created_with_a_unit_reaches_that_units_models(unit, credit_model_version, capsys):
    from rest_framework.test import APIClient

    call_command("tokens", "create", "deploy-bot", "--create-account", "--unit", unit.slug)
    captured = capsys.readouterr()
    plain = captured.out.strip().splitlines()[-1]
    assert f"works in: {unit.slug}" in captured.err
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = client.get(f"/api/v1/model-versions/{credit_model_version.pk}")
    assert response.status_code == 200, response.content


def test_a_token_without_a_unit_says_it_reaches_nothing(db, capsys):
    call_command("tokens", "create", "lonely-bot", "--create-account")
    assert "access to no business unit" in capsys.readouterr().err
