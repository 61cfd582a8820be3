"""Dispatch Celery tasks by name from services, after their transaction commits.

Services dispatch by name, so they never import the ``tasks`` modules that import them (``tasks.py``
is an entry point above the services), and Celery itself is imported only when a task is first
dispatched (0.3 s at every Django start otherwise).
"""

from django.db import transaction


def enqueue_on_commit(task_name: str, *args) -> None:
    """Queue the task registered as TASK_NAME with ARGS once the current transaction commits.

    Eager locally and in tests: the task then runs right after the commit, in the same process.
    """
    transaction.on_commit(lambda: registered_task(task_name).delay(*args))


def registered_task(task_name: str):
    """The task registered as TASK_NAME, importing the apps' ``tasks`` modules on first use.

    A worker imports them when it starts; a web process (or an eager one) only when a task is
    first dispatched here.
    """
    from .celery import app  # the Celery app, on first dispatch (see the module docstring)

    if task_name not in app.tasks:
        app.loader.import_default_modules()  # runs autodiscover_tasks(): every installed app's tasks.py
    return app.tasks[task_name]
