"""The service as a whole: settings per environment, deploy checks, health, errors, admin."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(args, settings_module, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CUSTOS_"))}
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def production_env(tmp_path, signing_key_dir, storage_key_files):
    return {
        "DJANGO_SECRET_KEY": "x" * 20 + "a-production-secret-with-plenty-of-entropy-0123456789",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/custos",
        "DJANGO_ALLOWED_HOSTS": "custos.example.org",
        "CUSTOS_SIGNING_KEY_FILE": str(signing_key_dir),
        "CUSTOS_MASTER_KEY_FILE": str(storage_key_files[0]),
        "CUSTOS_INDEX_KEY_FILE": str(storage_key_files[1]),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }


@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.test"])
def test_settings_load(module):
    result = run_manage(["diffsettings", "--output", "unified"], module)
    assert result.returncode == 0, result.stderr


def test_production_settings_pass_deploy_checks(production_env):
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], "config.settings.production", production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key(production_env):
    env = {k: v for k, v in production_env.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage(["check"], "config.settings.production", env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_reads_secret_from_file(production_env, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(production_env.pop("DJANGO_SECRET_KEY"))
    production_env["DJANGO_SECRET_KEY_FILE"] = str(secret_file)
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], "config.settings.production", production_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_clearly_without_signing_key(production_env, tmp_path):
    production_env["CUSTOS_SIGNING_KEY_FILE"] = str(tmp_path / "missing.key")
    result = run_manage(["check"], "config.settings.production", production_env)
    assert result.returncode != 0
    assert "custos.E001" in result.stderr and "missing.key" in result.stderr


def test_healthz_reports_database_without_leaking_configuration(client, db, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "ok", "checks": body["checks"]}
    assert body["checks"]["database"] == "ok"
    text = json.dumps(body).lower()
    for secret in ("sqlite", "postgres", settings.SECRET_KEY.lower(), "/"):
        assert secret not in text


def test_unknown_api_path_is_a_problem_document(client, db):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_admin_is_branded_and_login_works(client, make_user):
    make_user(username="officer", password="correct-horse-battery", superuser=True)
    page = client.get("/admin/login/")
    assert "Custos" in page.content.decode()
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "officer", "password": "correct-horse-battery"}, follow=True
    )
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "officer"
    assert "Governance and audit" in response.content.decode()
