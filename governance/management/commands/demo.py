"""Load the demo data for a first run; idempotent."""

from config.commands import CustosCommand

from ...demo.steps import STEPS


class Command(CustosCommand):
    help = "Create demo users for each role, business units and the demo data (safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--reset-passwords", action="store_true", help="Give demo users new passwords.")

    def handle(self, *args, reset_passwords=False, **opts):
        self.stdout.write("Demo users (passwords are shown once, when created):")
        for step in STEPS:
            kwargs = {"reset_passwords": reset_passwords} if step.__name__ == "users_and_units" else {}
            step(self.stdout.write, **kwargs)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
