"""Who a person is to the dashboard: the one role helper, used by the pages, the API's
permission classes and the services that check writes again."""

from __future__ import annotations

from typing import Any

from dashboard.errors import DomainError
from dashboard.models import Role

__all__ = ["DECIDERS", "can_decide", "is_admin", "require_role", "role_of"]

DECIDERS = (Role.MODERATOR, Role.ADMIN)  # the roles that may verify or reject a job


def role_of(user: Any) -> str | None:
    """The dashboard role of a signed-in person, or None for anyone else."""
    profile = getattr(user, "moderator", None) if getattr(user, "pk", None) else None
    return profile.role if profile is not None else None


def can_decide(role: str | None) -> bool:
    return role in DECIDERS


def is_admin(role: str | None) -> bool:
    return role == Role.ADMIN


def require_role(user: Any, *roles: str) -> None:
    """DomainError 403 unless the person has one of `roles`."""
    role = role_of(user)
    if role not in roles:
        raise DomainError(
            "forbidden",
            f"this needs the {' or '.join(roles)} role; you are {role or 'not a moderator'}",
            status=403,
        )
