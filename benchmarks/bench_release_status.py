"""Release-status endpoint under load, next to a trivial authenticated DRF endpoint (`/api/v1/me`).

Starts gunicorn (two sync workers, production settings) on loopback against a fresh database
(PostgreSQL when reachable, else SQLite) and seeds one approved release (with its ~2.8 KB
attestation). Every request is a new connection with a bearer token, as a deploy job's curl.
The closed loop is driven by wrk, a load generator in C (Debian's `wrk`, installed with
apt-get when missing), so that at full speed the client takes little of the two cores the
server runs on. The open loop is a small asyncio client in this process: wrk connects before
it waits for a request's due time, and an idle open connection holds a sync worker until the
request arrives, which no deploy job's curl does. Both report the CPU time they used.

1. One client: the service time of one request with no queue in front of it.
2. Closed loop, 100 connections, each sending its next request as soon as it has an answer:
   requests/s, p50 and p99 for both endpoints and the ratio. With 100 requests always
   waiting, the latency is queueing: Little's law, 100 / throughput.
3. Open loop, 100 clients, each a deploy job polling at a fixed interval (offered rate =
   100 / interval, random phases), latency timed from when each request was DUE, so a request
   held up behind a slow one counts its wait (no coordinated omission). The offered rate is swept to find the
   highest at which p99 stays under 50 ms, for both endpoints.

    .venv/bin/python -m benchmarks bench_release_status
    BENCH_SECONDS=10 BENCH_OPEN_SECONDS=10 BENCH_CLIENTS=100 BENCH_WORKERS=2 BENCH_DB_NAME=custos_bench_releases
    BENCH_DATABASE_URL=sqlite:////tmp/x.sqlite3 (instead of a scratch PostgreSQL database)
    CUSTOS_CACHE_URL=redis://127.0.0.1:6379/1 (throttle counters shared by the workers, as production may)
"""

import asyncio
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
DB_NAME = os.environ.get("BENCH_DB_NAME", "custos_bench_releases")
PG_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "100"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
TARGET_P99_MS = 50.0
# Offered rates of the open-loop sweep, as fractions of the closed-loop throughput.
SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3)


def _database_url(tmp: Path) -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    try:
        import psycopg

        _drop_database()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as c:
            c.execute(f"CREATE DATABASE {DB_NAME}")
        return PG_URL
    except Exception:  # no PostgreSQL here: the embedded default
        return f"sqlite:///{tmp / 'bench.sqlite3'}"


def _drop_database():
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")


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
        "CUSTOS_THROTTLE_USER": "100000000/min",  # one token for all clients: never 429, still counted
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

    from governance.rules import roles
    from governance.demo.credit import german_credit_frame, train_credit_model
    from governance.services.access import business_unit_grant
    from governance.services.registry import model_create, model_version_register
    from governance.services.releases import release_decide, release_request
    from tests.gate_verdicts import record_gate_verdict  # a verdict as a run's end records it

    pipe, _, _ = train_credit_model(german_credit_frame(), seed=0)
    model = model_create(
        business_unit=unit, name="credit-scoring", intended_purpose="Score consumer credit applications.",
        risk_tier="high", annex_iii_category="creditworthiness",
    )
    mv = model_version_register(model=model, version="1.0", artifact=sio.dumps(pipe), artifact_format="skops")
    release = release_request(model_version=mv, environment="production", actor=pipeline)
    release = record_gate_verdict(release, "passed")
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


def _wait_for(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _wrk_path() -> str:
    """Debian's wrk; installed with apt-get when missing (the machine's package manager, as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("This benchmark needs wrk: `apt-get install wrk` (Debian/Ubuntu) or your system's package.")
    print("  installing wrk (apt-get)", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, **quiet)
    return shutil.which("wrk")


class Wrk:
    """Runs wrk (closed loop) against one server and returns its figures; counts wrk's own CPU time."""

    def __init__(self, port, token):
        self.exe = _wrk_path()
        self.base = f"http://127.0.0.1:{port}"
        self.headers = ["-H", f"Authorization: Bearer {token}", "-H", "Accept: application/json"]
        self.cpu = self.wall = 0.0

    def _run(self, args, seconds):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        out = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.wall += time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def closed(self, path, *, connections, seconds):
        """As fast as possible: each connection sends again as soon as it has its answer."""
        threads = min(2, connections)
        r = self._run(["-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
                       *self.headers, "-s", str(WRK_SCRIPTS / "closed_loop.lua"), self.base + path], seconds)
        return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50_ms": r["p50_us"] / 1000,
                "p99_ms": r["p99_us"] / 1000, "errors": sum(r["errors"].values()), "requests": r["requests"]}


async def _open_loop(port, request: bytes, *, rate, clients, seconds):
    """CLIENTS deploy jobs, each sending REQUEST every CLIENTS / RATE seconds on a new connection.

    A client whose previous request is still waiting sends late, and that request's latency
    counts from when it was due. Requests due before the end are all waited for.
    """
    loop = asyncio.get_running_loop()
    interval = clients / rate
    start = time.perf_counter() + 0.5
    end = start + seconds
    latencies, errors = [], []
    phases = random.Random(0)

    async def client(due):
        while due < end:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            ok = False
            with socket.socket() as sock:
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, ("127.0.0.1", port))
                    await loop.sock_sendall(sock, request)
                    head = await loop.sock_recv(sock, 65536)
                    ok = head.startswith(b"HTTP/1.1 200 ")
                    while await loop.sock_recv(sock, 65536):  # the server closes after the answer
                        pass
                except OSError:
                    ok = False
            (latencies if ok else errors).append(time.perf_counter() - due)
            due += interval

    await asyncio.gather(*(client(start + phases.random() * interval) for _ in range(clients)))
    return latencies, len(errors), time.perf_counter() - start


def open_loop(port, path, token, *, rate, clients, seconds):
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n"
    ).encode()
    cpu, started = time.process_time(), time.perf_counter()
    latencies, errors, wall = asyncio.run(_open_loop(port, request, rate=rate, clients=clients, seconds=seconds))
    used, elapsed = time.process_time() - cpu, time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [float("nan")] * 99
    return {"offered": rate, "rps": len(latencies) / wall, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "errors": errors, "requests": len(latencies), "cpu": used, "wall": elapsed}


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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
            wrk = Wrk(port, info["token"])
            paths = info["paths"]
            engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
            print(f"gunicorn {WORKERS} sync workers on 127.0.0.1, {engine}; wrk {CLIENTS} connections; "
                  f"load average {_load_average()}", flush=True)
            for path in paths.values():  # warm up both workers (imports, connections, caches)
                wrk.closed(path, connections=4, seconds=2)

            print("one client (service time, no queue):")
            single = {}
            for name, path in paths.items():
                single[name] = fig = wrk.closed(path, connections=1, seconds=max(3.0, SECONDS / 2))
                print(f"  {name:15} {fig['rps']:7.1f} req/s  p50 {fig['p50_ms']:6.2f} ms  p99 {fig['p99_ms']:6.2f} ms")

            print(f"closed loop, {CLIENTS} connections, {SECONDS:g} s per endpoint:")
            closed = {}
            for name, path in paths.items():
                closed[name] = fig = wrk.closed(path, connections=CLIENTS, seconds=SECONDS)
                print(f"  {name:15} {fig['rps']:7.1f} req/s  p50 {fig['p50_ms']:7.1f} ms  p99 {fig['p99_ms']:7.1f} ms  "
                      f"errors {fig['errors']}  (Little: {CLIENTS} / {fig['rps']:.0f} req/s = "
                      f"{CLIENTS / fig['rps'] * 1000:.0f} ms)")
            me, rs = closed["me"], closed["release_status"]
            print(f"  ratio release_status / me: throughput {rs['rps'] / me['rps']:.2f}x, "
                  f"p50 {rs['p50_ms'] / me['p50_ms']:.2f}x, p99 {rs['p99_ms'] / me['p99_ms']:.2f}x")

            print(f"open loop, {CLIENTS} clients polling at a fixed interval, {OPEN_SECONDS:g} s per rate, "
                  f"latency from the due time; target p99 < {TARGET_P99_MS:g} ms:")
            best, open_cpu, open_wall = {}, 0.0, 0.0
            for name, path in paths.items():
                best[name] = None
                for fraction in SWEEP:
                    rate = max(1, round(closed[name]["rps"] * fraction))
                    fig = open_loop(port, path, info["token"], rate=rate, clients=CLIENTS, seconds=OPEN_SECONDS)
                    open_cpu += fig["cpu"]
                    open_wall += fig["wall"]
                    ok = fig["p99_ms"] < TARGET_P99_MS and fig["errors"] == 0
                    print(f"  {name:15} offered {rate:5d}/s (every {CLIENTS / rate * 1000:5.0f} ms per client)  "
                          f"served {fig['rps']:7.1f}/s  p50 {fig['p50_ms']:7.1f} ms  p99 {fig['p99_ms']:7.1f} ms  "
                          f"errors {fig['errors']}  {'ok' if ok else 'over'}", flush=True)
                    if not ok:
                        break
                    best[name] = fig
            for name in paths:
                b = best[name]
                print(f"  highest offered rate with p99 < {TARGET_P99_MS:g} ms: {name:15} "
                      + (f"{b['offered']}/s (p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms)" if b else
                   f"none (not even {SWEEP[0]:.0%} of the closed-loop throughput)"))
            if best["me"] and best["release_status"]:
                print(f"  ratio release_status / me: {best['release_status']['offered'] / best['me']['offered']:.2f}x")
            print(f"load generators' own CPU: wrk {wrk.cpu:.1f} s in {wrk.wall:.0f} s ({wrk.cpu / wrk.wall:.0%} of one core), "
                  f"open-loop clients {open_cpu:.1f} s in {open_wall:.0f} s ({open_cpu / open_wall:.0%} of one core); "
                  f"load average {_load_average()}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            if database_url == PG_URL:
                _drop_database()


if __name__ == "__main__":
    main()
