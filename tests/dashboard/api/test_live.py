"""The API over a real socket: a compute node asks, a key is revoked, the next call fails."""

from __future__ import annotations

import httpx
import pytest

from dashboard.keys.services import revoke_api_key
from tests.base import make_personas
from tests.dashboard.chain_rows import deal, scanned_at

pytestmark = pytest.mark.django_db(transaction=True)


def test_node_asks_over_http_and_revocation_is_immediate(live_server) -> None:  # type: ignore[no-untyped-def]
    personas = make_personas()
    scanned_at()
    payload, piece = deal(1)
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {personas.node_key}"}
    ) as http:
        response = http.post("/api/v1/eligibility", json={"cids": [payload, piece]})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["eligible"] is True
        revoke_api_key(prefix=personas.node.prefix, actor="test")
        response = http.post("/api/v1/eligibility", json={"cids": [payload]})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{live_server.url}/healthz").json()["database"] == "ok"
