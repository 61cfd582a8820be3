"""A real Celery worker against the machine's Redis runs a task end to end."""

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("CUSTOS_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def redis_up():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


def test_eager_tasks_in_test_settings(settings):
    from config.celery import ping

    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert ping.delay("x").get()["echo"] == "x"


@pytest.mark.integration
def test_worker_round_trip_through_redis(tmp_path):
    if not redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379; .ci/run should have started it.")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from celery import Celery

    env = {**os.environ, "CELERY_BROKER_URL": BROKER, "CELERY_RESULT_BACKEND": BROKER, "CUSTOS_TASKS_EAGER": "false"}
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", queue, "--without-heartbeat",
         "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT,
    )
    # A separate client app, so the suite's eager app (and its cached connections) stay untouched.
    client = Celery("custos-test-client", broker=BROKER, backend=BROKER)
    try:
        result = client.send_task("custos.ping", args=["round-trip"], queue=queue)
        value = result.get(timeout=60)
        assert value["echo"] == "round-trip"
        assert value["pid"] == worker.pid  # ran in the worker process, not here
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        client.close()
