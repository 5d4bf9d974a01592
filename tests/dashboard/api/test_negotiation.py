"""The API answers JSON to machines' usual Accept headers and refuses what it cannot render."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.base import Personas
from tests.dashboard.chain_rows import scanned_at

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*", "*/*;q=0.8"])
def test_json_for_what_clients_send(client: Client, personas: Personas, accept: str | None) -> None:
    scanned_at()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    if accept is not None:
        headers["HTTP_ACCEPT"] = accept
    response = client.get("/api/v1/scanner", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "processing_height" in response.json()


def test_json_parameters_still_reach_the_renderer(client: Client, personas: Personas) -> None:
    scanned_at()
    response = client.get(
        "/api/v1/scanner",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
        HTTP_ACCEPT="application/json; indent=2",
    )
    assert response.status_code == 200
    assert response.content.decode().startswith('{\n  "')
    assert json.loads(response.content)


def test_what_cannot_be_rendered_is_406_in_the_error_shape(
    client: Client, personas: Personas
) -> None:
    response = client.get(
        "/api/v1/scanner",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
        HTTP_ACCEPT="application/xml",
    )
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"


def test_a_format_override_is_still_honoured(client: Client, personas: Personas) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    scanned_at()
    assert client.get("/api/v1/scanner?format=json", **headers).status_code == 200
    assert client.get("/api/v1/scanner?format=xml", **headers).status_code == 404
