"""Bearer token authentication for pipelines (``Authorization: Bearer <token>``)."""

import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from ..models import ServiceToken
from ..services.access import parse_token, token_digest

LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        prefix = parse_token(plain)
        token = ServiceToken.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
        # Compare digests in constant time; an unknown prefix and a wrong secret look alike.
        if token is None or not hmac.compare_digest(token.digest, token_digest(plain)):
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("Account disabled.")
        if token.user.is_superuser:  # tokens are for service accounts; never carry all rights
            raise exceptions.AuthenticationFailed("Tokens do not authenticate superusers.")
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="custos"'
