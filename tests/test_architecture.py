"""The shape of the code, as tests: what import-linter cannot see (imports of Django's ORM by
the pure packages, function-local imports without a reason).

The arrows between apps and layers are import-linter's contracts (pyproject.toml), which
``make test`` runs before the suite.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = ["governance/rules", "governance/gates", "governance/storage", "governance/charts"]
MONITORING_PURE = [f"governance/monitoring/{m}.py" for m in ("aggregates", "ingest", "statistics", "errors", "policy", "kinds")]
PRODUCT = ["config", "audit", "governance", "reports"]
ORM = ("django.db", "django.contrib.auth.models", "django.contrib.contenttypes.models", "guardian.models")


def _sources(folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node, node.module


@pytest.mark.parametrize("path", list(_sources(PURE)) + [ROOT / p for p in MONITORING_PURE], ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_packages_import_no_orm(path):
    tree = ast.parse(path.read_text())
    found = [f"line {node.lineno}: {name}" for node, name in _imports(tree) if name.startswith(ORM)]
    assert not found, f"{path.relative_to(ROOT)} imports the ORM: {found}"


def _function_local_imports(tree):
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def _explained(lines, node) -> bool:
    """A comment on the import, or above the run of imports it belongs to (a comment for the group)."""
    if any("#" in lines[n - 1] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)):
        return True
    n = node.lineno - 1
    while n > 0:
        text = lines[n - 1].strip()
        code = text.split("#", 1)[0].strip()
        if "#" in text and (not code or code.endswith(":") or code.startswith(("import ", "from "))):
            return True  # a comment line, on the group's first import, or on the block the imports open
        if code.startswith(("import ", "from ")) or code.endswith(("(", ",", ":")) or code in (")", ""):
            n -= 1
            continue
        return False
    return False


def test_function_local_imports_say_why():
    """An import inside a function hides a dependency; each one carries a comment saying why."""
    unexplained = []
    for path in _sources(PRODUCT):
        lines = path.read_text().split("\n")
        tree = ast.parse("\n".join(lines))
        for node in _function_local_imports(tree):
            if not _explained(lines, node):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not unexplained, "function-local imports without a comment saying why:\n" + "\n".join(unexplained)


HEAVY = ("shap", "sklearn", "numpy", "pandas", "pyarrow", "xgboost", "lightgbm", "weasyprint", "celery")


def test_a_started_django_has_not_imported_the_scientific_stack():
    """Every manage.py command pays for what Django's start imports (benchmarks/bench_startup.py):
    the engine, the storage and the PDFs import their heavy libraries where they work."""
    import subprocess
    import sys

    code = (
        "import os, sys, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'\n"
        "django.setup()\n"
        "from django.urls import resolve; resolve('/admin/')\n"  # the admin and every URL conf
        "from django.core.management import call_command; call_command('check', verbosity=0)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
