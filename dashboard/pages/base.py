"""Who may open a page: signed in, with a dashboard role (dashboard.access is the one role
helper, shared with the API's permission classes). Writes are checked again by the services."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.access import can_decide, is_admin, role_of

View = Callable[..., HttpResponse]


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """render() with what every page's header needs: the role and what it allows."""
    role = role_of(request.user)
    page = {
        "role": role,
        "can_decide": can_decide(role),
        "is_admin": is_admin(role),
        **(context or {}),
    }
    return render(request, template, page, status=status)


def error_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render_page(
        request, "dashboard/error.html", {"title": title, "message": message}, status=status
    )


def role_required(*roles: str) -> Callable[[View], View]:
    """Signed in with one of `roles` (any dashboard role when none are named), else 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            role = role_of(request.user)
            if role is None:
                return error_page(
                    request,
                    403,
                    "No access",
                    f"The account {request.user.get_username()} has no dashboard role. "
                    "An admin can give it one with manage.py create_moderator.",
                )
            if roles and role not in roles:
                return error_page(
                    request,
                    403,
                    "Not allowed",
                    f"This page needs the {' or '.join(roles)} role; you are a {role}.",
                )
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
