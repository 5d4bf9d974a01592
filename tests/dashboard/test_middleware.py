"""Machine API calls skip the browser middleware; browsers keep sessions, CSRF and messages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from dashboard.middleware import (
    BrowserAuthenticationMiddleware,
    BrowserMessageMiddleware,
    BrowserSessionMiddleware,
)
from tests.base import PASSWORD, Personas

pytestmark = pytest.mark.django_db


def _attributes(request: HttpRequest) -> HttpResponse:
    seen = [name for name in ("session", "user", "_messages") if hasattr(request, name)]
    return HttpResponse(",".join(seen))


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/api/v1/scanner", {"HTTP_AUTHORIZATION": "Bearer fpk_x"}, ""),
        ("/api/v1/scanner", {}, "session,user,_messages"),  # a browser session may read
        ("/admin/", {"HTTP_AUTHORIZATION": "Bearer fpk_x"}, "session,user,_messages"),
    ],
)
def test_only_machine_api_calls_skip_sessions_users_and_messages(
    path: str, headers: dict[str, str], expected: str
) -> None:
    chain = BrowserSessionMiddleware(
        BrowserAuthenticationMiddleware(BrowserMessageMiddleware(_attributes))
    )
    assert chain(RequestFactory().get(path, **headers)).content.decode() == expected


def test_browser_forms_still_need_a_csrf_token() -> None:
    get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/admin/login/", {"username": "root", "password": "pw"})
    assert refused.status_code == 403
    page = client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    accepted = client.post(
        "/admin/login/",
        {"username": "root", "password": "pw", "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302


def test_a_key_header_wins_over_a_moderator_session(client: Client, personas: Personas) -> None:
    """With an Authorization header the key alone decides, even beside a valid session."""
    assert client.login(username=personas.moderator.get_username(), password=PASSWORD)
    response = client.get("/api/v1/scanner", HTTP_AUTHORIZATION="Bearer fpk_" + "x" * 40)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "sessionid" not in response.cookies
