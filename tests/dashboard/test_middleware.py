"""Browsers get sessions and CSRF checks; machines calling the API with a key get neither."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.base import PASSWORD, Personas

pytestmark = pytest.mark.django_db


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


def test_a_machine_post_with_a_key_needs_no_csrf_token(personas: Personas) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/eligibility",
        {"cids": ["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
    )
    assert response.status_code == 200, response.content
    assert "sessionid" not in response.cookies


def test_a_key_header_wins_over_a_moderator_session(client: Client, personas: Personas) -> None:
    """With an Authorization header the key alone decides, even beside a valid session."""
    assert client.login(username=personas.moderator.get_username(), password=PASSWORD)
    response = client.get("/api/v1/scanner", HTTP_AUTHORIZATION="Bearer fpk_" + "x" * 40)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "sessionid" not in response.cookies
