"""Sign-in with a limit on failed attempts, per username and per client address, counted in
the shared cache (Redis when CACHE_URL is set, so every web worker sees the same counts)."""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST


def _counter_keys(request: HttpRequest, username: str) -> tuple[str, str]:
    # Hashed: usernames may hold characters a cache key may not (memcached, long names).
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    # REMOTE_ADDR only: a forwarded-for header is the client's to invent.
    address = request.META.get("REMOTE_ADDR", "unknown")
    return f"login-failures:user:{user}", f"login-failures:ip:{address}"


def _locked(keys: tuple[str, str]) -> bool:
    counts = cache.get_many(list(keys))
    return any(n >= settings.LOGIN_FAILURES_ALLOWED for n in counts.values())


def _count_failure(keys: tuple[str, str]) -> None:
    for key in keys:
        # The window starts at the first failure: add() sets the expiry, incr() keeps it.
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_S)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_LOCKOUT_S)


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
    keys = _counter_keys(request, username)
    form = AuthenticationForm(request, data=request.POST)
    # Locked out: do not even check the password, or guessing could go on behind the 429.
    if not _locked(keys):
        if form.is_valid():
            login(request, form.get_user())
            cache.delete(keys[0])  # the address keeps its count: one good account resets nothing
            return redirect(_next_url(request))
        _count_failure(keys)
        if not _locked(keys):
            return render(
                request,
                "dashboard/login.html",
                {"form": form, "next": _next_url(request)},
                status=400,
            )
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
