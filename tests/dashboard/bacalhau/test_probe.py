"""The Bacalhau job-selection probe (docs/bacalhau.md): every body version, the answer from the
blessed cache, key-bearing URLs, and the reply as a Bacalhau node's Go code reads it."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from dashboard.keys.services import revoke_api_key
from dashboard.models import ApiKey, AuditEvent
from tests.base import make_personas
from tests.dashboard.bacalhau.shapes import MODULE, NODE_ID, docker_task, job, wasm_task
from tests.dashboard.chain_rows import deal, scanned_at

pytestmark = pytest.mark.django_db

CALLBACK = "http://10.0.0.7:1234/api/v1/compute/approve"


def probe_v15(task: dict[str, Any]) -> dict[str, Any]:
    return {"NodeID": NODE_ID, "Job": job("j-1d448480-0000-4000-8000-000000000001", task)}


def probe_v14(task: dict[str, Any]) -> dict[str, Any]:
    return {**probe_v15(task), "Callback": CALLBACK}


def probe_v10(inputs: list[str], module: str | None = None) -> dict[str, Any]:
    """Bacalhau v1.0's body: the legacy spec, snake_case envelope."""
    spec: dict[str, Any] = {
        "Engine": "Wasm" if module else "Docker",
        "Inputs": [
            {"StorageSource": "IPFS", "CID": c, "Path": f"/inputs/{i}"}
            for i, c in enumerate(inputs)
        ],
        "Outputs": [{"StorageSource": "IPFS", "Name": "outputs", "Path": "/outputs"}],
    }
    if module:
        spec["Wasm"] = {"EntryModule": {"StorageSource": "IPFS", "CID": module}}
    return {"node_id": "QmNode", "job_id": "6b197087-6502-498d", "spec": spec, "callback": CALLBACK}


def lower_keys(value: Any) -> Any:
    """Every key lower-cased, as some clients send them (Go accepts any case)."""
    if isinstance(value, dict):
        return {k.lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def ask(client: Client, key: str, body: Any) -> Any:
    return client.post(
        f"/api/v1/bacalhau/probe/{key}", data=json.dumps(body), content_type="application/json"
    )


@pytest.fixture
def chain() -> dict[str, str]:
    scanned_at()
    payload, piece = deal(1)
    module, _ = deal(2)
    return {"payload": payload, "piece": piece, "module": module}


@pytest.mark.parametrize(
    "version",
    ["v1.0", "v1.4", "v1.5", "v1.4 lower-case", "v1.5 camelCase"],
)
def test_every_body_version_bids_when_all_cids_are_blessed(chain, version: str) -> None:
    personas = make_personas()
    task = wasm_task(chain["module"], [(chain["payload"], "/inputs/a"), (chain["piece"], "/b")])
    body = {
        "v1.0": probe_v10([chain["payload"], chain["piece"]], module=chain["module"]),
        "v1.4": probe_v14(task),
        "v1.5": probe_v15(task),
        "v1.4 lower-case": lower_keys(probe_v14(task)),
        "v1.5 camelCase": {"nodeId": NODE_ID, "job": probe_v15(task)["Job"]},
    }[version]
    response = ask(Client(), personas.node_key, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["shouldBid"] is True
    assert answer["shouldWait"] is False
    assert "all 3 IPFS CIDs of the job are FIL+ blessed" in answer["reason"]


def test_an_unblessed_input_or_module_means_no_bid_and_says_which(chain) -> None:
    personas = make_personas()
    # the entry module is not blessed
    task = wasm_task(MODULE, [(chain["payload"], "/inputs/a")])
    answer = ask(Client(), personas.node_key, probe_v15(task)).json()
    assert answer["shouldBid"] is False
    assert MODULE in answer["reason"] and "(unknown)" in answer["reason"]
    assert chain["payload"] not in answer["reason"]
    # an expired deal's payload is not blessed either
    expired, _ = deal(3, state="expired")
    answer = ask(Client(), personas.node_key, probe_v15(docker_task("ubuntu", [(expired, "/in")])))
    assert answer.json()["shouldBid"] is False
    assert f"{expired} (expired)" in answer.json()["reason"]


def test_inputs_not_on_ipfs_and_jobs_without_ipfs_content_get_no_bid(chain) -> None:
    personas = make_personas()
    task = docker_task("ubuntu", [(chain["payload"], "/inputs/a")])
    task["InputSources"].append(
        {
            "Alias": "web",
            "Source": {"Type": "urlDownload", "Params": {"URL": "https://x.org/a"}},
            "Target": "/inputs/web",
        }
    )
    answer = ask(Client(), personas.node_key, probe_v15(task)).json()
    assert answer["shouldBid"] is False
    assert "not on IPFS: Job.Tasks.0.InputSources.1.Source (urlDownload)" in answer["reason"]
    answer = ask(Client(), personas.node_key, probe_v15(docker_task("ubuntu", []))).json()
    assert answer == {
        "shouldBid": False,
        "shouldWait": False,
        "reason": "the job reads no IPFS content, so none of it is FIL+ blessed",
    }


def test_policy_always_bids_and_reports_what_is_blessed(chain, settings) -> None:
    settings.BACALHAU_PROBE_POLICY = "always"
    personas = make_personas()
    answer = ask(Client(), personas.node_key, probe_v15(wasm_task(MODULE, []))).json()
    assert answer["shouldBid"] is True
    assert f"not FIL+ blessed: {MODULE} (unknown)" in answer["reason"]


def test_a_probe_key_answers_probes_and_a_node_key_still_does(chain) -> None:
    """A probe key can do nothing else (tests/dashboard/api/test_auth.py); node keys already
    in deployed nodes' URLs keep working."""
    personas = make_personas()
    body = probe_v15(wasm_task(chain["module"], []))
    for key in (personas.probe_key, personas.node_key):
        response = ask(Client(), key, body)
        assert response.status_code == 200 and response.json()["shouldBid"] is True
    assert ApiKey.objects.get(name="node-1-probe").probe_count == 1
    for key in (personas.notary_key, personas.submitter_key, personas.moderator_key):
        assert ask(Client(), key, body).status_code == 403


def test_the_key_in_the_url_is_checked_like_any_other(chain) -> None:
    personas = make_personas()
    body = probe_v15(wasm_task(chain["module"], []))
    client = Client()
    for bad in ["fpk_notakeyatallnotakeyatall", "nonsense", "%00"]:
        response = ask(client, bad, body)
        assert response.status_code == 401, bad
        assert response.json()["error"]["code"] == "invalid_api_key"
    response = ask(client, personas.notary_key, body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    revoke_api_key(prefix=personas.node.prefix, actor="test")
    assert ask(client, personas.node_key, body).status_code == 401
    # a Bearer header does not stand in for the URL's key
    response = client.post(
        "/api/v1/bacalhau/probe/x",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {personas.other_node_key}",
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], None),
        ({"NodeID": NODE_ID}, "Job"),
        ({"NodeID": NODE_ID, "Job": "x"}, "Job"),
        ({"Job": {"Tasks": {"a": 1}}}, "Job.Tasks"),
        (
            {"Job": {"Tasks": [{"InputSources": [{"Source": {"Type": "ipfs", "Params": {}}}]}]}},
            "Job.Tasks.0.InputSources.0.Source.Params.CID",
        ),
        (
            {
                "Job": {
                    "Tasks": [
                        {
                            "InputSources": [
                                {"Source": {"Type": "IPFS", "Params": {"CID": "bafy-no"}}}
                            ]
                        }
                    ]
                }
            },
            "Job.Tasks.0.InputSources.0.Source.Params.CID",
        ),
        ({"spec": {"Inputs": [{"StorageSource": "ipfs", "CID": 7}]}}, "spec.Inputs.0.CID"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(chain, body: Any, field: str | None) -> None:
    personas = make_personas()
    response = ask(Client(), personas.node_key, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_probe"
    if field is not None:
        assert field in error["fields"], error


def test_each_probe_is_recorded_on_the_nodes_key(chain) -> None:
    personas = make_personas()
    assert ApiKey.objects.get(pk=personas.node.pk).probe_count == 0
    body = probe_v15(wasm_task(chain["module"], []))
    for _ in range(3):
        assert ask(Client(), personas.node_key, body).status_code == 200
    ask(Client(), personas.node_key, {"bad": 1})  # a refused body is not counted
    key = ApiKey.objects.get(pk=personas.node.pk)
    assert key.probe_count == 3
    assert key.probe_last_at is not None
    other = ApiKey.objects.get(name="node-2")
    assert other.probe_count == 0 and other.probe_last_at is None


# --- the reply as the node reads it -------------------------------------------------------------


class GoProbeClient:
    """pkg/bidstrategy/semantic/external_http.go's reading of the reply, over a raw socket:
    http.DefaultClient asks for gzip by itself; a status >= 400 rejects; a Content-Type other
    than exactly application/json accepts; otherwise it makes a buffer of Content-Length bytes
    (a chunked or transparently-gunzipped body has length -1, and make() panics), reads it
    and decodes {shouldBid, shouldWait, reason} matching keys in any case."""

    def __init__(self, url: str) -> None:
        self.url = urlsplit(url)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = (
            f"POST {self.url.path} HTTP/1.1\r\nHost: {self.url.netloc}\r\n"
            "User-Agent: Go-http-client/1.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nAccept-Encoding: gzip\r\n\r\n"
        ).encode() + data
        with socket.create_connection((self.url.hostname, self.url.port or 80), timeout=10) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection before its headers"
                reply += chunk
            head, _, rest = reply.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            if status >= 400:
                return {"bid": False, "status": status}
            if headers.get("content-type") != "application/json":
                return {
                    "bid": True,
                    "failed_open": True,
                    "content_type": headers.get("content-type"),
                }
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raise AssertionError("chunked reply: the node's make([]byte, -1) panics")
            if headers.get("content-encoding", "").lower() == "gzip":
                raise AssertionError("gzip reply: Go unzips it and sets ContentLength -1: panic")
            if "content-length" not in headers:
                raise AssertionError("no Content-Length: ContentLength is -1 and make() panics")
            length = int(headers["content-length"])
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        assert len(rest) >= length, "short read: the node's single Read errors"
        decoded = {k.lower(): v for k, v in json.loads(rest[:length]).items()}
        return {
            "bid": decoded.get("shouldbid") is True,
            "reason": decoded.get("reason"),
            "wait": decoded.get("shouldwait"),
        }


@pytest.mark.django_db(transaction=True)
def test_the_reply_is_read_by_the_nodes_rules_over_a_socket(live_server) -> None:
    personas = make_personas()
    scanned_at()
    payload, _ = deal(1)
    module, _ = deal(2)
    node = GoProbeClient(f"{live_server.url}/api/v1/bacalhau/probe/{personas.node_key}")
    blessed = node.post(probe_v14(wasm_task(module, [(payload, "/inputs/a")])))
    assert blessed["bid"] is True and blessed.get("failed_open") is None
    assert blessed["wait"] is False
    unblessed = node.post(probe_v15(wasm_task(MODULE, [(payload, "/inputs/a")])))
    # not a fail-open "bid": the node read our answer and it said no
    assert unblessed == {"bid": False, "reason": unblessed["reason"], "wait": False}
    assert MODULE in unblessed["reason"]
    wrong_key = GoProbeClient(f"{live_server.url}/api/v1/bacalhau/probe/{personas.notary_key}")
    assert wrong_key.post(probe_v15(wasm_task(module, []))) == {"bid": False, "status": 403}


# --- hardening (issue 28) ----------------------------------------------------------------------


@pytest.fixture
def normalised(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CID the probe reads, counted as it goes through the one normaliser."""
    from dashboard.bacalhau import bodies

    seen: list[str] = []
    real = bodies.normalize_cid

    def counted(cid: str) -> str:
        seen.append(cid)
        return real(cid)

    monkeypatch.setattr(bodies, "normalize_cid", counted)
    return seen


@pytest.mark.parametrize("version", ["v1.5", "v1.0"])
def test_a_probe_names_at_most_as_many_cids_as_an_eligibility_request(
    chain, normalised: list[str], version: str
) -> None:
    """30,000 CIDs were read, 1.3 to 1.9 s of CPU a probe: the /eligibility cap and error,
    before any CID is read."""
    from dashboard.eligibility.selectors import MAX_BATCH

    personas = make_personas()
    ask_node = Client()

    def body(count: int) -> dict[str, Any]:
        inputs = [chain["payload"]] * count
        if version == "v1.0":
            return probe_v10(inputs[1:], module=chain["module"])
        paths = [(cid, f"/inputs/{i}") for i, cid in enumerate(inputs[1:])]
        return probe_v15(wasm_task(chain["module"], paths))

    response = ask(ask_node, personas.node_key, body(MAX_BATCH + 1))
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    eligibility = ask_node.post(
        "/api/v1/eligibility",
        data={"cids": [chain["payload"]] * (MAX_BATCH + 1)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
    ).json()["error"]
    assert error["code"] == eligibility["code"] == "too_many_cids"
    assert error["message"] == eligibility["message"]
    assert normalised == []
    # the cap itself is a probe like any other
    response = ask(ask_node, personas.node_key, body(MAX_BATCH))
    assert response.status_code == 200 and response.json()["shouldBid"] is True
    assert len(normalised) == MAX_BATCH


@pytest.mark.parametrize("where", ["Job", "spec", "NodeID"])
def test_bodies_nested_deep_are_a_400_not_a_500(chain, where: str) -> None:
    personas = make_personas()
    deep: Any = []
    for _ in range(500):
        deep = [deep]
    body = {"Job": {"Tasks": []}, where: deep} if where == "NodeID" else {where: deep}
    response = ask(Client(), personas.node_key, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_probe" and where in error["fields"], error


class Lines(logging.Handler):
    """The lines a logger writes, formatted as its own handlers format them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter("%(message)s").format(record))


@pytest.fixture
def request_lines() -> Iterator[list[str]]:
    """What Django's request loggers write: errors (`django.request`) and the access lines of
    `manage.py serve` (`django.server`)."""
    lines = Lines()
    loggers = [logging.getLogger(name) for name in ("django.request", "django.server")]
    for logger in loggers:
        logger.addHandler(lines)
    yield lines.lines
    for logger in loggers:
        logger.removeHandler(lines)


def test_no_line_logged_shows_the_key_from_the_url(
    chain, request_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 500 on the probe logged `Internal Server Error: /api/v1/bacalhau/probe/<the key>`."""
    from dashboard.bacalhau import probe

    personas = make_personas()

    def broken(job: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(probe, "answer", broken)
    client = Client(raise_request_exception=False)
    assert ask(client, personas.node_key, probe_v15(wasm_task(MODULE, []))).status_code == 500
    # an access line as `manage.py serve` writes it (django.core.servers.basehttp)
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"POST /api/v1/bacalhau/probe/{personas.node_key} HTTP/1.1", "200", "77"
    )
    logged = "\n".join(request_lines)
    assert "Internal Server Error: /api/v1/bacalhau/probe/" in logged
    assert "RuntimeError: a bug" in logged  # the traceback is still there
    assert personas.node_key not in logged and personas.node_key[12:] not in logged
    assert f"/api/v1/bacalhau/probe/{personas.node.prefix}***" in logged
    # nor does the audit log
    for event in AuditEvent.objects.all():
        assert personas.node_key[12:] not in json.dumps([event.target, event.before, event.after])


def test_whoever_may_not_probe_is_refused_before_the_body_is_read(chain) -> None:
    personas = make_personas()
    client = Client()
    for key, status in [
        ("fpk_" + "x" * 30, 401),
        (personas.notary_key, 403),
        (personas.submitter_key, 403),
    ]:
        for body, kind in [("{nope", "application/json"), ("a=1", "text/plain")]:
            response = client.post(f"/api/v1/bacalhau/probe/{key}", data=body, content_type=kind)
            assert response.status_code == status, (key, body, response.content)
    # with a key that may probe, the body is read: and refused
    url = f"/api/v1/bacalhau/probe/{personas.probe_key}"
    assert client.post(url, data="{nope", content_type="application/json").status_code == 400
    assert client.post(url, data="a=1", content_type="text/plain").status_code == 415
