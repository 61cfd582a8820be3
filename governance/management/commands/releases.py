"""Operate releases: ``releases attest RELEASE_ID`` issues an approved release's attestation."""

from django.core.management.base import CommandError

from config.commands import CustosCommand

from ...models import ReleaseRequest
from ...services.releases import release_attestation_issue


class Command(CustosCommand):
    help = "Operate release requests."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        attest = sub.add_parser(
            "attest", help="Sign the attestation of an approved release whose signing did not complete."
        )
        attest.add_argument("release_id", type=int)

    def handle(self, *args, action, release_id, **opts):
        release = ReleaseRequest.objects.filter(pk=release_id).first()
        if release is None:
            raise CommandError(f"No release request {release_id}.")
        release = release_attestation_issue(release=release)
        self.stdout.write(f"Release {release.pk} is attested (key {release.attestation['signatures'][0]['keyid']}).")
