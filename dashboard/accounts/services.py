"""Moderator accounts: creating them and changing their role, audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from dashboard.audit import record
from dashboard.errors import DomainError
from dashboard.models import ModeratorProfile, Role

__all__ = ["create_moderator"]


def create_moderator(*, username: str, role: str, password: str, actor: str) -> Any:
    """Create an account with a dashboard role, or update the role and password of one."""
    if role not in Role.values:
        raise DomainError("invalid_role", f"role must be one of {', '.join(Role.values)}")
    if not username or len(username) > 150:
        raise DomainError("invalid_username", "a username is 1 to 150 characters")
    User = get_user_model()  # noqa: N806 - Django's convention for the user class
    if len(password) < 10:
        raise DomainError("weak_password", "a password needs at least 10 characters")
    try:
        validate_password(password, User(username=username))
    except ValidationError as exc:
        raise DomainError("weak_password", " ".join(exc.messages)) from None
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.save()
        profile, _ = ModeratorProfile.objects.get_or_create(user=user)
        before = None if created else {"role": profile.role}
        profile.role = role
        profile.save()
        record(
            actor=actor,
            action="moderator.create" if created else "moderator.update",
            target=f"user:{username}",
            before=before,
            after={"role": role},
        )
    return user
