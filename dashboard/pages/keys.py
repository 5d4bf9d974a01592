"""API keys for machines, for admins: list, create (the raw key is shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.errors import DomainError
from dashboard.keys.services import create_api_key, revoke_api_key
from dashboard.models import Role
from dashboard.pages import selectors
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import ApiKeyForm, add_service_errors


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _page(
    request: HttpRequest, form: ApiKeyForm, *, status: int = 200, **extra: object
) -> HttpResponse:
    return render_page(
        request,
        "dashboard/keys.html",
        {"keys": selectors.api_keys(), "form": form, **extra},
        status=status,
    )


@role_required(Role.ADMIN)
def keys(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    data = form.cleaned_data
    try:
        key, raw = create_api_key(
            scope=data["scope"],
            name=data["name"],
            provider=data["provider"].strip(),
            username=data["username"].strip() or None,
            verifier=data["verifier"],
            actor=_actor(request),
        )
    except DomainError as err:
        add_service_errors(form, err.fields, err.message)
        return _page(request, form, status=err.status, error=err.message)
    # Rendered, not redirected: the raw key must not travel through the session or a URL.
    response = _page(request, ApiKeyForm(), status=201, created=key, raw_key=raw)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@role_required(Role.ADMIN)
def revoke_key(request: HttpRequest, prefix: str) -> HttpResponse:
    try:
        key = revoke_api_key(prefix=prefix, actor=_actor(request))
    except DomainError as err:
        return _page(request, ApiKeyForm(), status=err.status, error=err.message)
    messages.success(request, f"API key {key.name} ({key.prefix}…) revoked.")
    return redirect("dashboard:keys")
