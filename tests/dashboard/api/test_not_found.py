"""Any path under /api/ that no endpoint has is the API's JSON 404, with DEBUG on or off:
never Django's HTML page, and never a redirect to a slashed (or unslashed) variant."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.base import Personas

PATHS = [
    "/api/v1/nothing",
    "/api/v1/jobs/",  # the trailing-slash variant of a real route
    "/api/v1/notary/awards/",
    "/api/v1/jobs/job-1/decision/",
    "/api/v1",
    "/api/v2/jobs",
    "/api/schema",  # the unslashed variant of /api/schema/
    "/api/docs",
]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths_are_a_json_404(
    client: Client,
    personas: Personas,
    settings,
    debug: bool,
    method: str,  # type: ignore[no-untyped-def]
) -> None:
    settings.DEBUG = debug
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.moderator_key}"}
    for path in PATHS:
        answer = getattr(client, method)(path, **headers)
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer["Content-Type"].startswith("application/json"), path
        assert answer.json()["error"]["code"] == "not_found", path
        assert answer.json()["error"]["message"]


@pytest.mark.parametrize("debug", [False, True])
def test_known_routes_still_answer(client: Client, settings, debug: bool) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = debug
    assert client.get("/api/schema/").status_code == 200
    # unauthenticated, but routed: the API's 401, not the 404
    assert client.get("/api/v1/jobs").status_code == 401
