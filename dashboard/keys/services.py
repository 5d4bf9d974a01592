"""API keys for machines (healthchecks' scheme): a prefixed random key shown once; we keep
its first characters to find it and an HMAC of the whole key to check it."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from dashboard.addresses import PROVIDER_ADDRESS
from dashboard.audit import record
from dashboard.errors import DomainError
from dashboard.models import ApiKey
from dashboard.sql import prepared_cursor

KEY_PREFIX = "fpk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8  # what we store and look keys up by
KEY_RE = re.compile(r"fpk_[A-Za-z0-9]{20,100}")
# last_used_at is informative: writing it on every request would double the API's cost.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(raw: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()


def create_api_key(
    *,
    scope: str,
    name: str,
    provider: str = "",
    username: str | None = None,
    verifier: bool = False,
    actor: str,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the raw key, which is never stored or shown again."""
    if scope not in ApiKey.Scope.values:
        raise DomainError(
            "invalid_scope",
            f"scope must be one of {', '.join(ApiKey.Scope.values)}",
            fields={"scope": scope},
        )
    name = name.strip()
    if not name or len(name) > 100:
        raise DomainError("invalid_name", "name must be 1 to 100 characters", fields={"name": name})
    if provider and (scope != ApiKey.Scope.NODE or not PROVIDER_ADDRESS.fullmatch(provider)):
        raise DomainError(
            "invalid_provider",
            "provider must be a storage provider id address like f01234, on node keys only",
            fields={"provider": provider},
        )
    if verifier and scope != ApiKey.Scope.NODE:
        raise DomainError(
            "invalid_verifier",
            "only compute node keys can offer to re-execute jobs",
            fields={"verifier": True},
        )
    user = None
    if scope == ApiKey.Scope.MODERATOR:
        if not username:
            raise DomainError(
                "user_required",
                "a moderator key acts as a moderator account",
                fields={"user": None},
            )
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not hasattr(user, "moderator"):
            raise DomainError(
                "unknown_moderator", f"no moderator account {username!r}", fields={"user": username}
            )
    elif username:
        raise DomainError(
            "user_not_allowed",
            "only moderator keys are bound to an account",
            fields={"user": username},
        )
    raw = KEY_PREFIX + secrets.token_urlsafe(30).replace("-", "a").replace("_", "b")
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            scope=scope,
            prefix=raw[:PREFIX_LENGTH],
            digest=_digest(raw),
            provider=provider,
            user=user,
            verifier=verifier,
        )
        record(
            actor=actor,
            action="api_key.create",
            target=f"api_key:{key.prefix}",
            after=_describe(key),
        )
    return key, raw


def revoke_api_key(*, prefix: str, actor: str) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            raise DomainError("unknown_key", f"no API key with prefix {prefix!r}", status=404)
        if key.revoked_at is None:
            before = _describe(key)
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            record(
                actor=actor,
                action="api_key.revoke",
                target=f"api_key:{key.prefix}",
                before=before,
                after=_describe(key),
            )
    return key


# What a request needs of its key; the other columns load on access (Django's deferred
# fields). `stale` says whether last_used_at is due for an update.
_COLUMNS = ["id", "name", "scope", "prefix", "digest", "provider", "user_id"]
_LOOKUP = (
    f"SELECT {', '.join(_COLUMNS)}, (last_used_at IS NULL OR last_used_at < %s) AS stale "
    f"FROM {ApiKey._meta.db_table} WHERE prefix = %s AND revoked_at IS NULL"
)


def authenticate_key(raw: str) -> ApiKey | None:
    """The active key `raw` names, or None. Constant-time comparison of the HMAC."""
    # Refuse anything that cannot be a key before it reaches the database (PostgreSQL
    # rejects NUL characters in a query outright).
    if not KEY_RE.fullmatch(raw):
        return None
    digest = _digest(raw)
    now = timezone.now()
    due = connection.ops.adapt_datetimefield_value(now - LAST_USED_RESOLUTION)
    # A plain cursor: this runs on every API request, and the ORM's query compiler and
    # RawQuerySet's column mapping cost more than the query itself (bench_api).
    with prepared_cursor() as cursor:
        cursor.execute(_LOOKUP, [due, raw[:PREFIX_LENGTH]])
        row = cursor.fetchone()
    if row is None:
        return None
    key = ApiKey.from_db(connection.alias, _COLUMNS, row[:-1])
    if not hmac.compare_digest(key.digest, digest):
        return None
    _note_use(key, due=bool(row[-1]))
    return key


def _note_use(key: ApiKey, *, due: bool) -> None:
    """Keep last_used_at to within LAST_USED_RESOLUTION; `due` is what the look-up said of
    the stored time."""
    if not due:
        return
    # When the stored time is due, every request in flight sees it due at once; one per
    # process writes it (cache.add succeeds once), so they do not queue on the row's lock.
    if cache.add(f"api-key-used:{key.pk}", 1, LAST_USED_RESOLUTION.total_seconds()):
        now = timezone.now()
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def _describe(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "provider": key.provider,
        "user": key.user.username if key.user else None,
        "verifier": key.verifier,
        "revoked": key.revoked_at is not None,
    }
