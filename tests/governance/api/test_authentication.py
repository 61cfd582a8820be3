"""Bearer tokens: hashed at rest, shown once, expire, revocable; failures are 401 problems."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from governance.rules import roles
from governance.models import ServiceToken
from governance.services.access import token_create, token_revoke

ME = "/api/v1/me"


def assert_401_problem(response, detail):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["detail"] == detail
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_valid_token_authenticates(token_client, pipeline_token):
    response = token_client.get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == pipeline_token[0].username
    assert response.json()["roles"] == ["Pipeline"]


def test_token_is_stored_only_as_a_digest(pipeline_token):
    _, plain = pipeline_token
    token = ServiceToken.objects.get()
    assert token.digest != plain and len(token.digest) == 64
    secret = plain.split("_", 2)[2]
    with connection.cursor() as cursor:  # no column of any token row holds the secret
        cursor.execute(f"SELECT * FROM {ServiceToken._meta.db_table}")
        rows = cursor.fetchall()
    assert not any(secret in str(value) for row in rows for value in row)


def test_wrong_token_is_401_in_problem_format(api_client, pipeline_token):
    _, plain = pipeline_token
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain[:-2]}xx")
    assert_401_problem(api_client.get(ME), "Invalid token.")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    assert_401_problem(api_client.get(ME), "Invalid token.")


def test_missing_credentials_is_401(api_client, db):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_expired_token_is_refused(token_client, pipeline_token):
    ServiceToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_401_problem(token_client.get(ME), "Token expired.")


def test_revoked_token_is_refused_and_ledgered(token_client):
    token = ServiceToken.objects.get()
    token_revoke(token=token)
    assert_401_problem(token_client.get(ME), "Token revoked.")
    from audit.models import LedgerEntry

    entry = LedgerEntry.objects.get(kind="access.token_revoked")
    assert entry.payload == {"prefix": token.prefix}


def test_ledger_never_holds_the_token(pipeline_token):
    from audit.models import LedgerEntry

    secret = pipeline_token[1].split("_", 2)[2]
    assert LedgerEntry.objects.filter(kind="access.token_created").exists()
    assert not any(secret in str(e.payload) for e in LedgerEntry.objects.all())


def test_inactive_account_is_refused(token_client, pipeline_token):
    user = pipeline_token[0]
    user.is_active = False
    user.save()
    assert_401_problem(token_client.get(ME), "Account disabled.")


def test_tokens_command_creates_lists_and_revokes(db, capsys):
    call_command("tokens", "create", "deploy-bot", "--create-account", "--days", "7")
    out = capsys.readouterr().out
    plain = out.strip().splitlines()[-1]
    token = ServiceToken.objects.get(user__username="deploy-bot")
    assert plain.startswith(f"custos_{token.prefix}_")
    call_command("tokens", "list")
    listing = capsys.readouterr().out
    assert token.prefix in listing and "active" in listing and plain not in listing
    call_command("tokens", "revoke", token.prefix)
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_token_lifetime_is_bounded(make_user):
    user = make_user()
    with pytest.raises(Exception, match="between 1 and 3650"):
        token_create(user=user, name="x", days=0)


@pytest.mark.parametrize("role,superuser", [(roles.COMPLIANCE_OFFICER, False), (None, True), (roles.PIPELINE, True)])
def test_tokens_are_issued_only_to_service_accounts(make_user, role, superuser):
    """Issue 2: tokens belong to service accounts. A person's token would be a 90-day credential
    with all their rights that skips the session and its CSRF check."""
    person = make_user(role, superuser=superuser)
    with pytest.raises(ValidationError, match="only to service accounts"):
        token_create(user=person, name="x")
    assert not ServiceToken.objects.filter(user=person).exists()
    with pytest.raises(CommandError, match="only to service accounts"):
        call_command("tokens", "create", person.username)


def test_a_token_whose_account_became_superuser_no_longer_authenticates(token_client, pipeline_token):
    user, _ = pipeline_token
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    assert_401_problem(token_client.get(ME), "Tokens do not authenticate superusers.")
