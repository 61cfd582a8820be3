"""Start-up weight: what every ``manage.py`` command pays before it does anything.

    .venv/bin/python -m benchmarks bench_startup

1. ``manage.py check`` wall time (best and median of BENCH_STARTUP_RUNS fresh processes), next
   to a bare ``django.setup()`` with only Django's own contrib apps and the same database (the
   floor that no project code can go below), in the same run.
2. Which heavy modules a started Django has imported (shap, sklearn, numpy, pandas, xgboost,
   lightgbm, pyarrow, weasyprint, celery): none should be, they load where a gate runs.
3. The size of the running virtual environment (``du`` of ``sys.prefix``) and the largest
   packages in it.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("shap", "sklearn", "numpy", "pandas", "xgboost", "lightgbm", "pyarrow", "weasyprint", "celery")

_BARE = """
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth",
                                                   "django.contrib.messages.context_processors.messages",
                                                   "django.template.context_processors.request"]}}],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware"],
    ROOT_URLCONF=__name__, SECRET_KEY="bench", USE_TZ=True,
)
urlpatterns = []
django.setup()
from django.core.management import call_command
call_command("check", verbosity=0)
"""

_LOADED = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
import django
django.setup()
from django.core.management import call_command
call_command("check", verbosity=0)
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
""" % (HEAVY,)


def _timed(argv, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def _du_mb(path: Path) -> int:
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def main():
    runs = int(os.environ.get("BENCH_STARTUP_RUNS", "7"))
    env_python = sys.executable
    check_best, check_median = _timed([env_python, "manage.py", "check"], runs)
    bare_best, bare_median = _timed([env_python, "-c", _BARE], runs)
    print(f"manage.py check            best {check_best:5.2f} s   median {check_median:5.2f} s   ({runs} runs)")
    print(f"bare django.setup()+check  best {bare_best:5.2f} s   median {bare_median:5.2f} s")
    print(f"ratio (median)             {check_median / bare_median:5.2f}x the bare Django floor")

    loaded = json.loads(subprocess.run([env_python, "-c", _LOADED], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print(f"heavy modules after start  {', '.join(loaded) if loaded else 'none'}  (of {', '.join(HEAVY)})")

    prefix = Path(sys.prefix)
    site = next(prefix.glob("lib/python*/site-packages"), None)
    print(f"venv {prefix}: {_du_mb(prefix)} MB")
    if site is not None:
        sizes = sorted(((_du_mb(p), p.name) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")),
                       reverse=True)[:8]
        print("largest packages           " + ", ".join(f"{name} {mb} MB" for mb, name in sizes))


if __name__ == "__main__":
    main()
