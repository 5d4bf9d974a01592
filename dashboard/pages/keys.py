"""API keys for machines, for admins: list, create (the raw key is shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods

from dashboard.errors import DomainError
from dashboard.keys.services import create_api_key, revoke_api_key
from dashboard.models import ApiKey, Role
from dashboard.pages import selectors
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import ApiKeyForm, RevokeKeyForm, add_service_errors


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


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def revoke_key(request: HttpRequest, prefix: str) -> HttpResponse:
    """GET asks for confirmation; POST revokes only with the box ticked."""
    key = get_object_or_404(ApiKey.objects.select_related("user"), prefix=prefix)
    form = RevokeKeyForm(request.POST if request.method == "POST" else None)
    if key.revoked_at is not None or not form.is_valid():
        status = 400 if form.is_bound else 200
        return render_page(
            request, "dashboard/revoke_key.html", {"key": key, "form": form}, status=status
        )
    try:
        key = revoke_api_key(prefix=prefix, actor=_actor(request))
    except DomainError as err:
        return _page(request, ApiKeyForm(), status=err.status, error=err.message)
    messages.success(request, f"API key {key.name} ({key.prefix}…) revoked.")
    return redirect("dashboard:keys")
