"""The Celery application: eager in local and test settings, a broker (Redis) in production."""

import os
import socket

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("custos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="custos.ping")
def ping(value):
    """Echo VALUE with the worker's host name: proves a round trip through the broker."""
    return {"echo": value, "worker": socket.gethostname(), "pid": os.getpid()}

