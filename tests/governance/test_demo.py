from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance.demo import DEMO_USERS


def test_demo_is_idempotent_and_prints_passwords_once(db, capsys):
    call_command("demo")
    first = capsys.readouterr().out
    assert first.count("password:") == sum(1 for _, role, _, _ in DEMO_USERS if role != "Pipeline")
    call_command("demo")
    second = capsys.readouterr().out
    assert "password:" not in second
    User = get_user_model()
    assert User.objects.filter(username__in=[u[0] for u in DEMO_USERS]).count() == len(DEMO_USERS)
