"""Who may call what: keys, scopes, sessions, revocation, rate limits, error shapes."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from dashboard.keys.services import revoke_api_key
from dashboard.models import ApiKey, AuditEvent
from tests.base import PASSWORD, Personas
from tests.chain_data import synthetic_payload_cid
from tests.dashboard.chain_rows import scanned_at

pytestmark = pytest.mark.django_db
CID = synthetic_payload_cid(1)
ELIGIBILITY = ("/api/v1/eligibility", {"cids": [CID]})


def call(client: Client, method: str, path: str, key: str | None = None, body=None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if method == "post":
        return client.post(path, data=body, content_type="application/json", **headers)
    return client.get(path, **headers)


def error(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]["code"]


@pytest.mark.parametrize("path", [f"/api/v1/cids/{CID}", "/api/v1/scanner"])
def test_no_key_is_401_with_a_bearer_challenge(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert error(response) == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer fpk_nothing-like-a-real-key",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "fpk_abc",
        "Bearer x",
        "Bearer fpk_" + "\x00" * 30,  # PostgreSQL refuses NUL: must be a 401, not a 500
    ],
)
def test_bad_keys_are_401(client: Client, personas: Personas, header: str) -> None:
    response = client.get(f"/api/v1/cids/{CID}", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert error(response) == "invalid_api_key"


def test_a_key_with_a_right_prefix_and_wrong_secret_is_refused(
    client: Client, personas: Personas
) -> None:
    forged = personas.node_key[:12] + "x" * (len(personas.node_key) - 12)
    assert call(client, "get", "/api/v1/scanner", forged).status_code == 401


def test_a_revoked_key_stops_working_at_once(client: Client, personas: Personas) -> None:
    assert call(client, "get", "/api/v1/scanner", personas.node_key).status_code == 200
    revoke_api_key(prefix=personas.node.prefix, actor="test")
    response = call(client, "get", "/api/v1/scanner", personas.node_key)
    assert response.status_code == 401 and error(response) == "invalid_api_key"


@pytest.mark.parametrize("who", ["notary_key", "submitter_key", "moderator_key", "probe_key"])
def test_eligibility_is_for_compute_nodes(client: Client, personas: Personas, who: str) -> None:
    response = call(client, "post", *ELIGIBILITY[:1], getattr(personas, who), ELIGIBILITY[1])
    assert response.status_code == 403
    assert error(response) == "forbidden"


@pytest.mark.parametrize(
    "who",
    ["node_key", "other_node_key", "notary_key", "submitter_key", "moderator_key", "viewer_key"],
)
def test_every_key_may_read(client: Client, personas: Personas, who: str) -> None:
    scanned_at()
    for path in (f"/api/v1/cids/{CID}", "/api/v1/scanner"):
        assert call(client, "get", path, getattr(personas, who)).status_code == 200


def keyed_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation a key may be sent to, from the URL patterns, with
    sample values for their parameters; the probe (its key rides in its URL) aside."""
    from django.urls import URLPattern

    from dashboard import urls

    samples = {"job_id": "job-1", "cid": CID, "run_id": "1", "path": "a.txt"}
    routes = [("/api/v1/", p) for p in urls.api_v1] + [
        ("/", p) for p in urls.urlpatterns if getattr(p, "name", "") in ("ipfs", "ipfs-path")
    ]
    operations = []
    for prefix, pattern in routes:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "api-bacalhau-probe":
            continue
        path = prefix + re.sub(
            r"<(?:\w+:)?(\w+)>", lambda m: samples[m.group(1)], str(pattern.pattern)
        )
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        operations += [
            (m, path) for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)
        ]
    return operations


@pytest.mark.parametrize(("method", "path"), keyed_operations())
def test_a_probe_key_may_do_nothing_but_answer_probes(
    client: Client, personas: Personas, method: str, path: str
) -> None:
    """A Bacalhau node's probe URL holds its key: that key can do nothing else."""
    response = getattr(client, method)(
        path, HTTP_AUTHORIZATION=f"Bearer {personas.probe_key}", content_type="application/json"
    )
    assert response.status_code == 403, (method, path, response.content)
    assert error(response) == "forbidden"


def test_every_operation_is_in_the_matrix() -> None:
    operations = keyed_operations()
    assert ("post", "/api/v1/eligibility") in operations
    assert ("get", f"/api/v1/locations/{CID}") in operations
    assert ("get", f"/ipfs/{CID}/a.txt") in operations
    assert len(operations) >= 20


def test_moderator_sessions_read_but_outsiders_do_not(client: Client, personas: Personas) -> None:
    scanned_at()
    for user, status in (
        (personas.viewer, 200),
        (personas.moderator, 200),
        (personas.outsider, 403),
    ):
        assert client.login(username=user.get_username(), password=PASSWORD)
        assert client.get(f"/api/v1/cids/{CID}").status_code == status
        client.logout()
    # a session is for reading: the node-only POST stays closed to it
    client.login(username="mona", password=PASSWORD)
    response = client.post(
        "/api/v1/eligibility", data={"cids": [CID]}, content_type="application/json"
    )
    assert response.status_code == 403


def test_a_moderator_key_acts_as_its_account(personas: Personas) -> None:
    from dashboard.keys.services import authenticate_key

    key = authenticate_key(personas.viewer_key)
    assert key is not None and key.user == personas.viewer
    assert key.user.moderator.role == "viewer"
    assert key.last_used_at is not None


def test_rate_limit_is_429_with_retry_after(client: Client, personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_RATE_LIMIT = "3/min"
    statuses = [
        call(client, "get", "/api/v1/scanner", personas.node_key).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    response = call(client, "get", "/api/v1/scanner", personas.node_key)
    assert error(response) == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # per key: another key is not affected
    assert call(client, "get", "/api/v1/scanner", personas.notary_key).status_code == 200


def test_unknown_endpoint_and_method_have_the_error_shape(
    client: Client, personas: Personas
) -> None:
    response = call(client, "get", "/api/v1/nothing-here", personas.node_key)
    assert response.status_code == 404 and error(response) == "not_found"
    response = call(client, "get", "/api/v1/eligibility", personas.node_key)
    assert response.status_code == 405 and error(response) == "method_not_allowed"


def test_create_and_revoke_keys_from_the_command_line(personas: Personas) -> None:
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--scope",
        "node",
        "--name",
        "sp-7",
        "--provider",
        "f07",
        stdout=out,
        stderr=io.StringIO(),
    )
    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(name="sp-7")
    assert raw.startswith(key.prefix) and key.provider == "f07"
    assert raw not in key.digest and len(key.prefix) == 12  # only a prefix and an HMAC are kept
    out = io.StringIO()
    call_command("revoke_api_key", key.prefix, stdout=out)
    assert "revoked node key 'sp-7'" in out.getvalue()
    assert [e.action for e in AuditEvent.objects.filter(target=f"api_key:{key.prefix}")] == [
        "api_key.revoke",
        "api_key.create",
    ]


def test_a_probe_key_from_the_command_line(personas: Personas) -> None:
    out = io.StringIO()
    call_command(
        "create_api_key",
        "--scope",
        "probe",
        "--name",
        "sp-7-probe",
        stdout=out,
        stderr=io.StringIO(),
    )
    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(name="sp-7-probe")
    assert key.scope == "probe" and raw.startswith(key.prefix)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "probe", "--name", "x", "--provider", "f01"], "on node keys only"),
        (["--scope", "probe", "--name", "x", "--verifier"], "only compute node keys"),
        (["--scope", "node", "--name", "x", "--provider", "t0123"], "provider must be"),
        (["--scope", "notary", "--name", "x", "--provider", "f01"], "on node keys only"),
        (["--scope", "moderator", "--name", "x"], "acts as a moderator account"),
        (["--scope", "moderator", "--name", "x", "--user", "oscar"], "no moderator account"),
        (["--scope", "node", "--name", "x", "--user", "mona"], "only moderator keys"),
        (["--scope", "node", "--name", " "], "name must be"),
    ],
)
def test_create_api_key_refuses_bad_input(
    personas: Personas, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=io.StringIO())


def test_revoking_an_unknown_prefix(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="no API key with prefix"):
        call_command("revoke_api_key", "fpk_nothing")


def test_scanner_endpoint(client: Client, personas: Personas) -> None:
    scanned_at(4_000_000)
    body = call(client, "get", "/api/v1/scanner", personas.notary_key).json()
    assert body["processing_height"] == 4_000_000 and body["lag_epochs"] == 900
    assert set(body["counts"]) >= {"deals", "claims", "blessed_cids", "bad_items"}


def test_healthz(client: Client, db) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["status"] == "stale"  # no pass has run yet


# --- who is counted: keys and addresses (issue 28) ------------------------------------------------


def probe(client: Client, key: str, **headers: str):  # type: ignore[no-untyped-def]
    body = {"Job": {"Tasks": []}}
    return client.post(
        f"/api/v1/bacalhau/probe/{key}", data=body, content_type="application/json", **headers
    )


def test_a_forwarded_for_header_is_no_new_address(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    """DRF's own throttles believed X-Forwarded-For: each request claimed a new address, and
    230 of 230 probes with wrong keys passed a limit of 30."""
    settings.API_ADDRESS_RATE_LIMIT = "3/min"
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [
        probe(client, "fpk_" + "x" * 30, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    # another address is another count
    assert probe(Client(REMOTE_ADDR="203.0.113.10"), "fpk_" + "x" * 30).status_code == 401


def test_behind_a_trusted_proxy_each_client_counts_on_its_own(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    from ipaddress import ip_network

    settings.API_ADDRESS_RATE_LIMIT = "3/min"
    settings.TRUSTED_PROXIES = (ip_network("10.0.0.0/8"),)
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for i in range(5):  # five clients, one request each
        ip = f"198.51.100.{i}"
        assert probe(proxy, "fpk_" + "x" * 30, HTTP_X_FORWARDED_FOR=ip).status_code == 401
    # one client, whatever it writes before the proxy's entry
    statuses = [
        probe(proxy, "fpk_" + "x" * 30, HTTP_X_FORWARDED_FOR=f"1.1.1.{i}, 203.0.113.5").status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_keyed_requests_count_on_their_address_too(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_ADDRESS_RATE_LIMIT = "3/min"
    client = Client(REMOTE_ADDR="203.0.113.9")
    keys = [personas.node_key, personas.notary_key, personas.submitter_key, personas.viewer_key]
    statuses = [call(client, "get", "/api/v1/scanner", key).status_code for key in keys]
    assert statuses == [200, 200, 200, 429]


def test_a_probe_counts_on_its_key_whatever_its_address(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    """The probe's key rides in its URL: it is counted as a Bearer key is, on one budget."""
    scanned_at()
    settings.API_RATE_LIMIT = "4/min"
    clients = [Client(REMOTE_ADDR=f"203.0.113.{i}") for i in range(6)]
    assert call(clients[0], "get", "/api/v1/scanner", personas.node_key).status_code == 200
    statuses = [probe(c, personas.node_key).status_code for c in clients[1:]]
    assert statuses == [200, 200, 200, 429, 429]
    assert error(probe(clients[5], personas.node_key)) == "rate_limited"
    # a key of its own is a budget of its own
    assert probe(clients[5], personas.probe_key).status_code == 200
