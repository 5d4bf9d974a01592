"""Who is calling: a machine with an API key (Bearer), or a moderator's browser session."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from dashboard.keys.services import authenticate_key
from dashboard.models import ApiKey


class KeyPrincipal:
    """request.user for machine keys that are not bound to a moderator account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.username = key.name
        self.pk = None

    def __str__(self) -> str:
        return f"{self.key.scope}:{self.key.name}"


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`; the one authentication class for machines."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise AuthenticationFailed("the Authorization header must be 'Bearer <api key>'")
        key = authenticate_key(raw.strip())
        if key is None:
            raise AuthenticationFailed("unknown or revoked API key")
        if key.scope == ApiKey.Scope.MODERATOR:
            # The key acts as its account, so it works only while the account does; moderator
            # keys are never remembered, so this reads the account on every request.
            if key.user is None or not key.user.is_active:
                raise AuthenticationFailed("the account this key acts as is deactivated")
            return key.user, key
        return KeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ModeratorSessionAuthentication(SessionAuthentication):
    """Browser sessions, with Django's CSRF check on unsafe methods."""
