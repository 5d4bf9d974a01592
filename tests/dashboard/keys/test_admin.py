"""Admins manage API keys in the Django admin: the raw key is shown once, then only a prefix."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.keys.services import authenticate_key
from dashboard.models import ApiKey, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def test_create_shows_the_key_once_and_revoke_stops_it(admin_client: Client) -> None:
    response = admin_client.post(
        "/admin/dashboard/apikey/add/",
        {"name": "sp-9", "scope": "node", "provider": "f09", "username": ""},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    raw = next(m for m in messages if "shown once" in m).rsplit(" ", 1)[-1]
    key = ApiKey.objects.get(name="sp-9")
    assert authenticate_key(raw) == key
    page = admin_client.get(f"/admin/dashboard/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and key.prefix in page
    admin_client.post(
        "/admin/dashboard/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert authenticate_key(raw) is None
    actions = list(AuditEvent.objects.values_list("action", "actor"))
    assert ("api_key.create", "user:root") in actions
    assert ("api_key.revoke", "user:root") in actions
