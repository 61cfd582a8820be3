"""Fixtures shared by every test: a signing key per session, temporary storage per test,
users with roles and business-unit access, and API clients."""

import itertools

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from audit.keys import generate_key_file
from governance import roles
from governance.models import BusinessUnit
from governance.services.access import business_unit_grant, token_create

_counter = itertools.count()


@pytest.fixture(scope="session")
def signing_key_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "ledger-signing.key"
    generate_key_file(path)
    return path


@pytest.fixture(autouse=True)
def _custos_settings(settings, signing_key_dir, tmp_path):
    """Give every test the session's signing key and its own storage and checkpoint folders."""
    settings.CUSTOS_SIGNING_KEY_FILE = str(signing_key_dir)
    settings.MEDIA_ROOT = str(tmp_path / "storage")
    settings.CUSTOS_CHECKPOINT_DIR = str(tmp_path / "checkpoints")


@pytest.fixture
def unit(db):
    n = next(_counter)
    return BusinessUnit.objects.create(name=f"Unit {n}", slug=f"unit-{n}")


@pytest.fixture
def other_unit(db):
    n = next(_counter)
    return BusinessUnit.objects.create(name=f"Other unit {n}", slug=f"other-unit-{n}")


@pytest.fixture
def make_user(db, django_user_model):
    """Make a user with ROLE (a group name) and access to UNITS."""

    def make(role=None, units=(), *, username=None, superuser=False, password="correct-horse-battery"):
        username = username or f"{(role or 'user').lower().replace(' ', '-')}-{next(_counter)}"
        user = django_user_model.objects.create_user(
            username=username, password=password, is_staff=True, is_superuser=superuser
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        for u in units:
            business_unit_grant(unit=u, user=user)
        return user

    return make


@pytest.fixture
def pipeline_token(make_user, unit):
    """(user, plain token) of a pipeline service account with access to `unit`."""
    user = make_user(roles.PIPELINE, [unit])
    _, plain = token_create(user=user, name="test")
    return user, plain


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def token_client(pipeline_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pipeline_token[1]}")
    return client
