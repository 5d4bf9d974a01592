"""Schemathesis generates requests from our OpenAPI schema, valid and malformed alike: none
may produce a 500, and every answer must match the schema (status, shape, content type)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC

import base58
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.models import Job
from dashboard.wsgi import application
from tests.base import Personas
from tests.dashboard.chain_rows import deal, scanned_at
from tests.dashboard.moderation.test_moderation import finished_job
from tests.helpers import free_port


def _encode(prefix: bytes, digest: bytes, form: str) -> str:
    if form == "v0":
        return base58.b58encode(b"\x12\x20" + digest).decode()
    binary = prefix + digest
    if form == "base64":
        return "m" + base64.b64encode(binary).decode().rstrip("=")
    text = base64.b32encode(binary).decode().rstrip("=")
    return "B" + text if form == "upper" else "b" + text.lower()


# Valid CIDs for `format: cid` (dag-pb, raw and piece CIDs in several encodings): a schema
# cannot say what a valid CID is, so positive cases come from here; negative cases are
# still generated from the schema and must be refused with a 4xx.
schemathesis.openapi.format(
    "cid",
    st.builds(
        _encode,
        st.sampled_from(
            [b"\x01\x70\x12\x20", b"\x01\x55\x12\x20", b"\x01\x81\xe2\x03\x92\x20\x20"]
        ),
        st.binary(min_size=32, max_size=32),
        st.sampled_from(["v1", "upper", "base64", "v0"]),
    ),
)
# Piece CIDs: CIDv1, fil-commitment-unsealed, sha2-256-trunc254-padded, 32-byte roots.
schemathesis.openapi.format(
    "piece-cid",
    st.builds(
        lambda root: (
            "b"
            + base64.b32encode(bytes([0x01, 0x81, 0xE2, 0x03, 0x92, 0x20, 0x20]) + root)
            .decode()
            .lower()
            .rstrip("=")
        ),
        st.binary(min_size=32, max_size=32),
    ),
)
# Job list cursors are opaque tokens the API gives out (created_at|id, base64url).
schemathesis.openapi.format(
    "job-cursor",
    st.builds(
        lambda when, job_id: (
            base64.urlsafe_b64encode(f"{when.isoformat()}|{job_id}".encode()).decode().rstrip("=")
        ),
        st.datetimes(timezones=st.just(UTC)),
        st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    ),
)
# The default statuses plus 413: a batch over 1000 CIDs is "too large", as the issue asks.
# A job spec's rules span fields (the engine names which object is required, mount paths
# must not repeat or nest under /outputs, env names, NUL bytes…) and live in executor.spec,
# beyond what the schema says; for job submission only, a schema-valid body may still be a
# 400. Every other check (no 500s, responses match the schema, malformed input refused)
# still runs on it.
config = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        },
        "operations": [
            {
                "include-operation-id": "jobs_submit",
                "checks": {"positive_data_acceptance": {"enabled": False}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=config)


@pytest.fixture
def keep_connection() -> Iterator[None]:
    """Schemathesis calls the WSGI app directly: keep Django from closing the test's database
    connection at the end of each request, as its test client does."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def node_headers(
    keep_connection: None, personas: Personas, no_rate_limit, settings
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    scanned_at()
    deal(1)
    # A locations answer may ask Lotus for a provider's addresses: never the real network.
    settings.LOTUS_RPC_URL = f"http://127.0.0.1:{free_port()}/rpc/v1"
    return {"Authorization": f"Bearer {personas.node_key}"}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, node_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers=node_headers)


# The hostile pass: a schema-valid request with one value replaced by one PostgreSQL, Python's
# parsers or our columns cannot take as is. Schemathesis does not make these by itself (its
# strings are UTF-8-encodable and short, its integers small, its JSON shallow), so each case
# is a generated positive one with a single leaf (a value, or a key of an object) swapped.
HOSTILE_STRINGS = {
    "nul": "a\x00b",
    "surrogate": "\ud800",  # sent as the JSON escape "\ud800": valid JSON, not valid UTF-8
    "long": "x" * 100_000,
}
HOSTILE_INTEGERS = [2**63, -(2**63) - 1, 2**64, 10**40]
DEEP = {"array": b"[" * 100_000, "object": b'{"a":' * 100_000}
# Who may call what: a request only reaches the code under test with the right key.
CALLER = {
    "job_decision": "moderator_key",
    "notary_award": "notary_key",
    "notary_verification": "notary_key",
    "jobs_submit": "submitter_key",
}
hostile_schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    application,
    config=SchemathesisConfig.from_dict(
        {
            "generation": {"mode": "positive"},
            "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
        }
    ),
)
HOSTILE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _leaves(value: object, keys: bool, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """(path, value) for every scalar in a JSON value, and with `keys` ((…, KEY, name), name)
    for the keys of its objects."""
    if isinstance(value, dict):
        for key, item in value.items():
            if keys:
                yield (*path, KEY, key), key
            yield from _leaves(item, keys, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, keys, (*path, index))
    else:
        yield path, value


KEY = object()  # marks a path that names an object's key rather than its value


def _replace(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    if len(path) == 2 and path[0] is KEY:
        assert isinstance(value, dict)
        return {(new if key == path[1] else key): item for key, item in value.items()}
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    assert isinstance(value, list)
    return [_replace(item, rest, new) if i == head else item for i, item in enumerate(value)]


def _stored() -> dict[str, int]:
    from django.apps import apps

    return {m.__name__: m.objects.count() for m in apps.get_app_config("dashboard").get_models()}


@pytest.fixture
def hostile_world(keep_connection: None, personas: Personas, no_rate_limit) -> Personas:  # type: ignore[no-untyped-def]
    """A finished job and a running one of our node, so job routes reach their validation."""
    scanned_at()
    deal(1)
    finished_job("job-1")
    Job.objects.filter(id="job-1").update(node=personas.node)
    Job.objects.create(
        id="job-2", engine="wasm", spec={}, spec_digest="0" * 64, state="running",
        node=personas.node,
    )  # fmt: skip
    return personas


@pytest.mark.django_db
@hostile_schema.parametrize()
@hostile_schema.given(data=st.data())
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_values_are_refused_cleanly(case, data, hostile_world: Personas) -> None:  # type: ignore[no-untyped-def]
    """NUL, lone surrogates, 100,000-character strings, integers beyond 64 bits and JSON
    nested 100,000 deep, in every place a request can carry them: never a 500, always an
    answer the schema documents, and nothing stored by a refused request."""
    key = getattr(
        hostile_world, CALLER.get(case.operation.definition.raw["operationId"], "node_key")
    )
    headers = {"Authorization": f"Bearer {key}"}
    if "job_id" in (case.path_parameters or {}):
        case.path_parameters["job_id"] = data.draw(st.sampled_from(["job-1", "job-2"]))
    places: list[tuple[str, tuple, object]] = []
    for where in ("path_parameters", "query", "body"):
        value = getattr(case, where, None)
        if isinstance(value, dict | list):
            # a path parameter's name is the route's; a query's or a body's keys are the caller's
            keyed = where != "path_parameters"
            places += [(where, path, leaf) for path, leaf in _leaves(value, keyed)]
    kinds = ["value"] if places else []
    if isinstance(case.body, dict | list) and case.media_type == "application/json":
        kinds.append("deep")
    if not kinds:
        return  # nothing to replace (an operation with no parameters): the first test covers it
    before = _stored()
    if data.draw(st.sampled_from(kinds), label="kind") == "deep":
        nesting = data.draw(st.sampled_from(sorted(DEEP)), label="nesting")
        headers["Content-Type"] = "application/json"
        response = case.call(headers=headers, data=DEEP[nesting])
    else:
        where, path, leaf = data.draw(st.sampled_from(places), label="place")
        in_url = where != "body"
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            new: object = data.draw(st.sampled_from(HOSTILE_INTEGERS), label="integer")
        else:
            # a URL carries bytes: a lone surrogate cannot be put in one, so only NUL and length
            names = ["nul", "long"] if in_url else sorted(HOSTILE_STRINGS)
            new = HOSTILE_STRINGS[data.draw(st.sampled_from(names), label="string")]
        changed = _replace(getattr(case, where), path, new)
        if where == "body":
            # sent as JSON text: a lone surrogate becomes its escape, as a hostile client sends it
            headers["Content-Type"] = case.media_type
            response = case.call(headers=headers, data=json.dumps(changed).encode())
        else:
            setattr(case, where, changed)
            response = case.call(headers=headers)
    case.validate_response(response, checks=HOSTILE_CHECKS, headers=headers)
    if response.status_code >= 400:
        assert _stored() == before, response.text
