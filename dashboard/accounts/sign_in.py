"""Sign-in attempts, limited per account name and per client address, counted in the database.

Every attempt is counted before its password is checked, in one atomic statement, so no more
than LOGIN_FAILURES_ALLOWED passwords are ever checked per name or address in a window of
LOGIN_LOCKOUT_S, however many requests race and however many web processes serve them. A
successful sign-in gives its own attempt back, so signing in often costs nothing. Names are
counted as Django authenticates them (NFKC-normalised), and case-folded on top, so
look-alike spellings share one count.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from dashboard.audit import record
from dashboard.models import SignInThrottle

__all__ = ["Attempt", "failed", "start", "succeeded"]


class Attempt:
    """One sign-in attempt: the counters it was charged to and whether it may go on."""

    def __init__(self, username: str, address: str) -> None:
        self.name = unicodedata.normalize("NFKC", username).casefold()
        self.address = address
        # Hashed: a name can be any length and hold any character.
        digest = hashlib.sha256(self.name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        self.keys = (f"user:{digest}", f"ip:{address}"[:100])
        self.counts: tuple[int, ...] = ()

    @property
    def admitted(self) -> bool:
        return all(count <= settings.LOGIN_FAILURES_ALLOWED for count in self.counts)

    @property
    def exhausted(self) -> bool:
        """No attempt is left for this name or address in the window."""
        return any(count >= settings.LOGIN_FAILURES_ALLOWED for count in self.counts)


def _table() -> str:
    return connection.ops.quote_name(SignInThrottle._meta.db_table)


def _charge(key: str) -> int:
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    until = adapt(now + timedelta(seconds=settings.LOGIN_LOCKOUT_S))
    t = _table()
    # One statement, so that racing attempts each get their own count (PostgreSQL and
    # SQLite both run an upsert's update on the locked row).
    sql = (
        f"INSERT INTO {t} (key, count, until) VALUES (%s, 1, %s) "
        f"ON CONFLICT (key) DO UPDATE SET "
        f"count = CASE WHEN {t}.until <= %s THEN 1 ELSE {t}.count + 1 END, "
        f"until = CASE WHEN {t}.until <= %s THEN excluded.until ELSE {t}.until END "
        f"RETURNING count"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, until, adapt(now), adapt(now)])
        (count,) = cursor.fetchone()
    return int(count)


def start(username: str, address: str) -> Attempt:
    """Count an attempt against its name and its address; `admitted` says whether its
    password may be checked."""
    attempt = Attempt(username, address)
    attempt.counts = tuple(_charge(key) for key in attempt.keys)
    return attempt


def succeeded(attempt: Attempt) -> None:
    """The name and the address get this attempt back; failures stay counted until their
    window ends, so a right password never lets more wrong ones be checked."""
    SignInThrottle.objects.filter(key__in=attempt.keys, count__gt=0).update(count=F("count") - 1)


def failed(attempt: Attempt, *, checked: bool) -> None:
    """Audit a failed sign-in (never its password): the name as sent, the address, and
    whether the password was checked or the attempt was refused for the limit."""
    record(
        actor=f"address:{attempt.address}",
        action="sign_in.failed",
        target=f"user:{attempt.name.replace(chr(0), chr(0xFFFD))}"[:200],
        after={"address": attempt.address, "password_checked": checked},
    )
