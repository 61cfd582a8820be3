"""The base of Custos's management commands: refusals print as one line, ``--actor`` and ``--json``.

A service's refusal (``config.errors.DomainError``, Django's ``ValidationError``,
``PermissionDenied`` or ``Http404``) ends the command with its message and exit status 1, never
a traceback. Commands that act for a person take ``--actor USERNAME`` (default: the system);
commands that report take ``--json``.
"""

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404

from .errors import DomainError, refusal_text


class CustosCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (DomainError, ValidationError, PermissionDenied, Http404) as exc:
            raise CommandError(refusal_text(exc)) from None

    @staticmethod
    def add_actor_argument(parser):
        parser.add_argument(
            "--actor", metavar="USERNAME", help="Act as this person (their permissions apply); default: the system."
        )

    @staticmethod
    def add_json_argument(parser):
        parser.add_argument("--json", action="store_true", help="Print the answer as JSON.")

    def actor(self, options):
        """The user named by --actor, or None (the system itself)."""
        username = options.get("actor")
        if not username:
            return None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        return user

    def print_json(self, value) -> None:
        self.stdout.write(json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder))
