"""Sign-in pages (the dashboard's and the admin's), with the limits of
dashboard/accounts/sign_in.py."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from dashboard.accounts import sign_in
from dashboard.proxies import client_address


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


@never_cache
@csrf_protect
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        if request.user.is_authenticated:
            return redirect(_next_url(request))
        form = AuthenticationForm(request)
        return render(request, "dashboard/login.html", {"form": form, "next": _next_url(request)})
    username = request.POST.get("username", "")
    # A forwarded-for header is the client's to invent, unless one of our proxies wrote it.
    attempt = sign_in.start(username, client_address(request.META) or "unknown")
    # Over the limit: the password is not even checked, or guessing could go on behind it.
    if attempt.admitted:
        form = AuthenticationForm(request, data=request.POST)
        if form.is_valid():
            login(request, form.get_user())
            sign_in.succeeded(attempt)
            return redirect(_next_url(request))
        sign_in.failed(attempt, checked=True)
        if not attempt.exhausted:
            # The form's error on the page, as 200: a wrong password is not a bad request.
            return render(
                request, "dashboard/login.html", {"form": form, "next": _next_url(request)}
            )
    else:
        sign_in.failed(attempt, checked=False)
    minutes = math.ceil(settings.LOGIN_LOCKOUT_S / 60)
    response = render(
        request,
        "dashboard/login.html",
        {
            "form": AuthenticationForm(request, initial={"username": username}),
            "next": _next_url(request),
            "locked": (
                f"Too many failed sign-ins for this account or from this address. "
                f"Sign-in is paused for up to {minutes} minute{'s' if minutes != 1 else ''}; "
                "try again later or ask an admin to reset your password."
            ),
        },
        status=429,
    )
    response["Retry-After"] = str(settings.LOGIN_LOCKOUT_S)
    return response


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)
