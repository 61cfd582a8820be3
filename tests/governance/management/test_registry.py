from django.core.checks import run_checks
from django.core.management import call_command

from governance import storage


def test_check_fails_without_storage_keys(settings):
    settings.CUSTOS_REQUIRE_STORAGE_KEYS = True
    assert not [e for e in run_checks() if e.id in ("custos.E101", "custos.E102")]
    settings.CUSTOS_MASTER_KEY_FILE = ""
    settings.CUSTOS_INDEX_KEY_FILE = "/nonexistent/index.key"
    ids = {e.id for e in run_checks()}
    assert {"custos.E101", "custos.E102"} <= ids


def test_keys_generate_creates_both_once(settings, tmp_path, capsys):
    settings.CUSTOS_MASTER_KEY_FILE = str(tmp_path / "k" / "master.key")
    settings.CUSTOS_INDEX_KEY_FILE = str(tmp_path / "k" / "index.key")
    call_command("registry", "keys", "generate")
    first = storage.master_key()
    call_command("registry", "keys", "generate", "--if-missing")
    assert storage.master_key() == first
    assert (tmp_path / "k" / "master.key").stat().st_mode & 0o777 == 0o600
