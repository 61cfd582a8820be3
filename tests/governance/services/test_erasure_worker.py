"""A real worker process killed mid-erasure (SIGKILL), then resumed: no key destroyed without a
verified successor, nothing lost. The processes share a database of their own (a temporary
SQLite file), as in tests/audit/test_concurrency.py, so nothing leaks into the rest of the suite."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from governance.demo import credit

ROOT = Path(__file__).resolve().parents[3]

SETUP = """
from governance.demo import credit
from governance.models import BusinessUnit
from governance.rules import roles
from governance.services import erasure as e
from governance.services.access import user_create, user_roles_set
from governance.services.registry import dataset_create, dataset_version_upload
unit = BusinessUnit.objects.create(name="U", slug="u")
first, second = (user_create(username=n, password="correct-horse-battery") for n in ("dpo1", "dpo2"))
for u in (first, second):
    user_roles_set(user=u, roles=[roles.DATA_PROTECTION_OFFICER])
ds = dataset_create(business_unit=unit, name="big")
dataset_version_upload(dataset=ds, version="v1", file="{csv}", file_format="csv",
                       subject_column=credit.SUBJECT_COLUMN)
r = e.erasure_request_record(subject_id="applicant-0006", ground="b", actor=first)
r = e.erasure_identity_verify(request=r, evidence_reference="ticket", actor=first)
r = e.erasure_plan(request=r, actor=first)
e.erasure_plan_approve(request=r, actor=second)
print(r.reference)
"""


def _env(tmp_path, signing_key_dir, storage_key_files):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CUSTOS_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        CUSTOS_SIGNING_KEY_FILE=str(signing_key_dir),
        CUSTOS_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        CUSTOS_STORAGE_DIR=str(tmp_path / "storage"),
        CUSTOS_MASTER_KEY_FILE=str(storage_key_files[0]),
        CUSTOS_INDEX_KEY_FILE=str(storage_key_files[1]),
        CUSTOS_TASKS_EAGER="true",
    )
    return env


def _manage(env, *args, check=True):
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def _row(db, sql):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()


@pytest.mark.parametrize("kill_when", ["writing", "verifying"])
def test_a_killed_worker_resumes_and_finishes(kill_when, tmp_path, signing_key_dir, storage_key_files,
                                              german_credit_csv):
    big = tmp_path / "big.csv"
    frame = pd.read_csv(german_credit_csv, dtype={credit.SUBJECT_COLUMN: str})
    copies = [frame] + [frame.assign(**{credit.SUBJECT_COLUMN: frame[credit.SUBJECT_COLUMN] + f"-{i}"})
                        for i in range(1, 300)]
    pd.concat(copies).to_csv(big, index=False)  # 300,000 rows: each step takes long enough to be killed in
    env = _env(tmp_path, signing_key_dir, storage_key_files)
    db = tmp_path / "worker.sqlite3"
    _manage(env, "migrate", "--no-input")
    reference = _manage(env, "shell", "-c", SETUP.replace("{csv}", str(big))).stdout.strip().splitlines()[-1]
    worker = subprocess.Popen([sys.executable, "manage.py", "erasure", "execute", reference, "--actor", "dpo2"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    killed = False
    while time.monotonic() < deadline and worker.poll() is None:
        row = _row(db, "SELECT successor_written FROM governance_erasuresnapshot") if db.exists() else None
        started = _row(db, "SELECT state FROM governance_erasurerequest")
        if started and started[0] == "executing" and row is not None and (
            (kill_when == "writing" and row[0] == 0) or (kill_when == "verifying" and row[0] == 1)
        ):
            time.sleep(0.3)
            os.kill(worker.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    worker.wait(timeout=60)
    assert killed, "the worker finished before it could be killed"
    state, = _row(db, "SELECT state FROM governance_erasurerequest")
    assert state == "executing"  # killed: nobody recorded an end
    destroyed, = _row(db, "SELECT destroyed_at IS NOT NULL FROM governance_snapshotkey WHERE dataset_version_id = 1")
    committed, = _row(db, "SELECT successor_committed FROM governance_erasuresnapshot")
    assert not destroyed or committed  # never a destroyed key without a committed successor

    resumed = _manage(env, "erasure", "execute", reference, "--actor", "dpo2")
    assert "completed_live" in resumed.stdout, resumed.stdout + resumed.stderr
    verified = _manage(env, "erasure", "verify", reference, "--actor", "dpo2")
    assert verified.stdout.strip().endswith("absent.")
    successor_path, rows = _row(db, "SELECT stored_path, row_count FROM governance_datasetversion WHERE id = "
                                    "(SELECT successor_id FROM governance_erasuresnapshot)")
    assert rows == 299_999
    _manage(env, "ledger", "verify")  # the chain is whole
    # The files left: the predecessor's and the successor's, plus (killed mid-write) at most one
    # unnamed file, which `registry sweep` removes once older than a minute.
    with sqlite3.connect(db) as conn:
        named = {p for (p,) in conn.execute("SELECT stored_path FROM governance_datasetversion")}
    files = {p.relative_to(tmp_path / "storage").as_posix() for p in (tmp_path / "storage").rglob("*.enc")}
    assert successor_path in files and named <= files
    assert len(files - named) <= (1 if kill_when == "writing" else 0)
