"""The Celery application: eager in local and test settings, a broker (Redis) in production."""

import os
import socket

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("custos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="custos.ping")
def ping(value):
    """Echo VALUE with the worker's host name: proves a round trip through the broker."""
    return {"echo": value, "worker": socket.gethostname(), "pid": os.getpid()}


def enqueue_on_commit(task_name: str, *args) -> None:
    """Queue the task registered as TASK_NAME with ARGS once the current transaction commits.

    Services dispatch tasks by name, so they never import the tasks modules that import them
    (``tasks.py`` is an entry point above the services). Eager locally and in tests: the task
    then runs right after the commit, in the same process.
    """
    transaction.on_commit(lambda: registered_task(task_name).delay(*args))


def registered_task(task_name: str):
    """The task registered as TASK_NAME, importing the apps' ``tasks`` modules on first use.

    A worker imports them when it starts; a web process (or an eager one) only when a task is
    first dispatched here, so Django starts without importing them.
    """
    if task_name not in app.tasks:
        app.loader.import_default_modules()  # runs autodiscover_tasks(): every installed app's tasks.py
    return app.tasks[task_name]
