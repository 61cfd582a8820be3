"""The project's configuration. The Celery app is ``config.celery`` (``celery -A config`` finds it);
it is imported where a task is dispatched or a worker starts, not at every Django start."""
