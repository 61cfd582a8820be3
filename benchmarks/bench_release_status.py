"""Release-status endpoint under concurrent load, next to a trivial authenticated DRF endpoint.

Starts gunicorn (two sync workers, production settings) on loopback against a fresh database
(PostgreSQL when reachable, else SQLite), seeds one approved release, and drives both
endpoints with 100 concurrent clients, alternating in three rounds so both see the same
background load. Each request is a new connection
with a bearer token, as a deployment job's curl would be. Prints requests/s and p50/p99
latency per endpoint and the ratio release-status / `GET /api/v1/me`.

    .venv/bin/python -m benchmarks bench_release_status
    BENCH_SECONDS=20 BENCH_CLIENTS=100 BENCH_DATABASE_URL=sqlite:////tmp/x.sqlite3 ...

The load generator is asyncio in one process on the same two cores as the server, so the
figures are a floor for what the server does alone.
"""

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432/custos_bench_releases"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "100"))
WORKERS = 2


def _database_url(tmp: Path) -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    try:
        _drop_database()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as c:
            c.execute("CREATE DATABASE custos_bench_releases")
        return PG_URL
    except Exception:  # no PostgreSQL here: the embedded default
        return f"sqlite:///{tmp / 'bench.sqlite3'}"


def _drop_database():
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as c:
        c.execute("DROP DATABASE IF EXISTS custos_bench_releases")


def _env(tmp: Path, database_url: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-bench-only-secret-key",
        "DATABASE_URL": database_url,
        "CUSTOS_ALLOW_SQLITE": "true",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CUSTOS_SIGNING_KEY_FILE": str(tmp / "keys" / "ledger-signing.key"),
        "CUSTOS_CHECKPOINT_DIR": str(tmp / "checkpoints"),
        "CUSTOS_MASTER_KEY_FILE": str(tmp / "keys" / "snapshot-master.key"),
        "CUSTOS_INDEX_KEY_FILE": str(tmp / "keys" / "subject-index.key"),
        "CUSTOS_STORAGE_DIR": str(tmp / "storage"),
        "CUSTOS_THROTTLE_USER": "100000000/min",
        "CUSTOS_TASKS_EAGER": "true",
        "CUSTOS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def seed() -> dict:
    """Inside Django: a unit, a pipeline token and (when releases exist) an approved release."""
    import django

    django.setup()
    from governance.services.access import business_unit_create, business_unit_grant, service_account_create, token_create

    unit = business_unit_create(name="Bench unit", slug="bench-unit")
    bot = service_account_create(username="bench-bot")
    business_unit_grant(unit=unit, user=bot)
    _, token = token_create(user=bot, name="bench")
    mv = _approved_release(unit=unit, pipeline=bot)
    status = f"/api/v1/releases/status?model={mv.model.name}&version={mv.version}&environment=production"
    return {"token": token, "paths": {"me": "/api/v1/me", "release_status": status}}


def _approved_release(*, unit, pipeline):
    """Register the German-credit model and take one release of it to 'approved' (with its attestation)."""
    import skops.io as sio
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance import roles
    from governance.credit import german_credit_frame, train_credit_model
    from governance.services.access import business_unit_grant
    from governance.services.registry import model_create, model_version_register
    from governance.services.releases import release_decide, release_gate_result_record, release_request

    pipe, _, _ = train_credit_model(german_credit_frame(), seed=0)
    model = model_create(
        business_unit=unit, name="credit-scoring", intended_purpose="Score consumer credit applications.",
        risk_tier="high", annex_iii_category="creditworthiness",
    )
    mv = model_version_register(model=model, version="1.0", artifact=sio.dumps(pipe), artifact_format="skops")
    release = release_request(model_version=mv, environment="production", actor=pipeline)
    release = release_gate_result_record(release=release, verdict="passed", gate_run_subject="", gate_ledger_seq=None)
    for role in (roles.MODEL_RISK_VALIDATOR, roles.COMPLIANCE_OFFICER):
        person = get_user_model().objects.create_user(username=role.lower().replace(" ", "-"))
        person.groups.add(Group.objects.get(name=role))
        business_unit_grant(unit=unit, user=person)
        release = release_decide(release=release, actor=person, role=role, decision="approve", justification="benchmark approval")
    release.refresh_from_db()  # the attestation is signed once the approval has committed
    if not release.attestation:
        raise RuntimeError("the seeded release has no attestation")
    return mv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one(port, request: bytes):
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    elapsed = time.perf_counter() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, elapsed


async def _load(port, path, token, seconds, clients):
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode()
    latencies, statuses = [], {}
    deadline = time.perf_counter() + seconds

    async def client():
        while time.perf_counter() < deadline:
            try:
                status, elapsed = await _one(port, request)
            except OSError:
                status, elapsed = -1, 0.0
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                latencies.append(elapsed)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    return latencies, statuses, wall


def _figures(latencies, wall):
    if not latencies:
        return {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"rps": len(latencies) / wall, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def _wait_for(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def main():
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as t:
        tmp = Path(t)
        database_url = _database_url(tmp)
        env = _env(tmp, database_url)
        run = lambda *args: subprocess.run([python, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: E731
        run("ledger", "keys", "generate")  # before migrate: production checks need the keys
        run("registry", "keys", "generate")
        run("migrate", "--noinput")
        seeded = subprocess.run(
            [python, "-c", "import json, benchmarks.bench_release_status as b; print(json.dumps(b.seed()))"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{seeded.stderr}")
        info = json.loads(seeded.stdout.strip().splitlines()[-1])
        port = _free_port()
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "config.wsgi:application", "--workers", str(WORKERS), "--bind",
             f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning"],
            cwd=ROOT, env=env,
        )
        try:
            _wait_for(port)
            engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
            print(f"gunicorn {WORKERS} sync workers on 127.0.0.1, {engine}, {CLIENTS} clients, {SECONDS:.0f} s per endpoint")
            # Interleave short rounds so that both endpoints see the same background load.
            rounds = 3
            samples = {name: ([], {}, 0.0) for name in info["paths"]}
            for name, path in info["paths"].items():
                asyncio.run(_load(port, path, info["token"], min(2.0, SECONDS), CLIENTS))  # warm up
            for _ in range(rounds):
                for name, path in info["paths"].items():
                    lat, st, wall = asyncio.run(_load(port, path, info["token"], SECONDS / rounds, CLIENTS))
                    all_lat, all_st, all_wall = samples[name]
                    for code, n in st.items():
                        all_st[code] = all_st.get(code, 0) + n
                    samples[name] = (all_lat + lat, all_st, all_wall + wall)
            results = {}
            for name, path in info["paths"].items():
                latencies, statuses, wall = samples[name]
                results[name] = fig = _figures(latencies, wall)
                print(
                    f"  {name:15} {path}\n  {'':15} {fig['rps']:8.1f} req/s  p50 {fig['p50_ms']:7.1f} ms  "
                    f"p99 {fig['p99_ms']:7.1f} ms  statuses {dict(sorted(statuses.items()))}"
                )
            me, rs = results["me"], results["release_status"]
            print(
                f"  ratio release_status / me: throughput {rs['rps'] / me['rps']:.2f}x, "
                f"p50 {rs['p50_ms'] / me['p50_ms']:.2f}x, p99 {rs['p99_ms'] / me['p99_ms']:.2f}x"
            )
            # One client: the service time of a request without the queue in front of it.
            for name, path in info["paths"].items():
                lat, _, wall = asyncio.run(_load(port, path, info["token"], max(2.0, SECONDS / 3), 1))
                fig = _figures(lat, wall)
                print(f"  1 client  {name:15} p50 {fig['p50_ms']:6.1f} ms  p99 {fig['p99_ms']:6.1f} ms")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            if database_url == PG_URL:
                _drop_database()


if __name__ == "__main__":
    main()
