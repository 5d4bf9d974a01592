"""Verified keys remembered per process, and forgotten when PostgreSQL says a key changed.

Every change here is committed by another connection, as another process would: the
listener hears only what commits.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dashboard.keys import verified as verified_keys
from dashboard.keys.services import authenticate_key, revoke_api_key
from tests.base import Personas
from tests.chain_data import synthetic_payload_cid
from tests.helpers import (
    ROOT,
    answers,
    database_urls,
    free_port,
    manage,
    process_env,
    wait_until,
)

CID = synthetic_payload_cid(1)

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="keys are remembered on PostgreSQL only (its NOTIFY says when to forget); "
    "the PostgreSQL pass of .ci/run runs these",
)


def test_only_postgresql_remembers_keys(settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_KEY_CACHE = True
    assert verified_keys.enabled() is (connection.vendor == "postgresql")
    settings.API_KEY_CACHE = False
    assert verified_keys.enabled() is False


def listening() -> bool:
    return verified_keys._current().fd is not None


@pytest.fixture
def remembering(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.API_KEY_CACHE = True
    verified_keys.generation()  # starts the listener
    wait_until(listening, "the listener")
    yield
    verified_keys.stop()


@pytest.fixture
def other_connection() -> Iterator[psycopg.Connection]:
    """Another session on the test database, autocommit: another process's changes."""
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=params["dbname"],
        user=params.get("user"),
        host=params.get("host"),
        port=params.get("port"),
        autocommit=True,
    ) as conn:
        yield conn


def queries_for(raw: str) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as captured:
        key = authenticate_key(raw)
    return key, len(captured)


def remembered_and_free(raw: str) -> None:
    """Look the key up once, then see it answered from memory."""
    key, _ = queries_for(raw)
    assert key is not None
    key, queries = queries_for(raw)
    assert key is not None and queries == 0


pytestmark = pytest.mark.django_db(transaction=True)


@on_postgresql
def test_a_verified_key_is_answered_without_a_query(remembering, personas: Personas) -> None:  # type: ignore[no-untyped-def]
    remembered_and_free(personas.node_key)
    key, queries = queries_for(personas.node_key)
    assert (key.prefix, key.scope, key.provider) == (personas.node.prefix, "node", "f01234")
    # A wrong secret behind the same prefix is never taken for the remembered key.
    wrong = personas.node_key[:-4] + ("aaaa" if not personas.node_key.endswith("aaaa") else "bbbb")
    assert authenticate_key(wrong) is None


@on_postgresql
def test_a_revocation_committed_elsewhere_is_heard(  # type: ignore[no-untyped-def]
    remembering, personas: Personas, other_connection
) -> None:
    remembered_and_free(personas.node_key)
    remembered_and_free(personas.other_node_key)
    other_connection.execute(
        "UPDATE dashboard_apikey SET revoked_at = now() WHERE prefix = %s",
        [personas.node.prefix],
    )
    wait_until(lambda: authenticate_key(personas.node_key) is None, "the revocation")
    # Everything was forgotten, not only the revoked key: the other one is looked up again.
    _, queries = queries_for(personas.other_node_key)
    assert queries >= 1


@on_postgresql
def test_the_revoke_service_forgets_at_once_in_its_own_process(  # type: ignore[no-untyped-def]
    remembering, personas: Personas
) -> None:
    remembered_and_free(personas.node_key)
    # Before the change commits (so before anyone is notified), this process has forgotten.
    with transaction.atomic():
        revoke_api_key(prefix=personas.node.prefix, actor="test")
        assert authenticate_key(personas.node_key) is None
    assert authenticate_key(personas.node_key) is None


@on_postgresql
def test_deleting_keys_is_heard(remembering, personas: Personas, other_connection) -> None:  # type: ignore[no-untyped-def]
    remembered_and_free(personas.node_key)
    other_connection.execute(
        "DELETE FROM dashboard_apikey WHERE prefix = %s", [personas.node.prefix]
    )
    wait_until(lambda: authenticate_key(personas.node_key) is None, "the deletion")


@on_postgresql
def test_last_used_bookkeeping_does_not_make_processes_forget(  # type: ignore[no-untyped-def]
    remembering, personas: Personas, other_connection
) -> None:
    remembered_and_free(personas.node_key)
    before = verified_keys._current().generation
    other_connection.execute(
        "UPDATE dashboard_apikey SET last_used_at = now() WHERE prefix = %s",
        [personas.node.prefix],
    )
    # Notifications arrive in commit order: once this rename is heard, the last_used_at
    # update before it would have been heard too, had it sent one.
    other_connection.execute(
        "UPDATE dashboard_apikey SET provider = 'f05678' WHERE name = 'node-2'"
    )
    wait_until(lambda: verified_keys._current().generation > before, "the rename")
    assert verified_keys._current().generation == before + 1


@on_postgresql
def test_a_lost_listener_stops_the_remembering_until_it_is_back(  # type: ignore[no-untyped-def]
    remembering, personas: Personas, other_connection
) -> None:
    remembered_and_free(personas.node_key)
    first = verified_keys._current().backend_pid
    other_connection.execute("SELECT pg_terminate_backend(%s)", [first])
    wait_until(lambda: verified_keys._current().backend_pid != first, "the listener to notice")
    key, queries = queries_for(personas.node_key)
    assert key is not None and queries >= 1
    # It reconnects (a new backend) and remembering resumes.
    wait_until(listening, "the listener to reconnect")
    assert verified_keys._current().backend_pid not in (None, first)
    remembered_and_free(personas.node_key)


@on_postgresql
def test_keys_acting_as_a_moderator_are_looked_up_every_time(  # type: ignore[no-untyped-def]
    remembering, personas: Personas
) -> None:
    for _ in range(3):
        key, queries = queries_for(personas.moderator_key)
        assert key is not None and key.user_id is not None
        assert queries >= 1


@pytest.mark.slow
@on_postgresql
def test_gunicorn_workers_hear_a_revocation_from_the_command_line(tmp_path: Path) -> None:
    """The production server (gunicorn.conf.py, two workers) remembers keys, and a key
    revoked by `manage.py revoke_api_key`, another process, is refused by every worker on
    the next request."""
    databases = database_urls(tmp_path)
    env = process_env(
        tmp_path,
        DATABASE_URL=next(databases),
        API_KEY_CACHE="1",
        API_RATE_LIMIT="0",
        DEBUG="0",
        SECRET_KEY="verified-keys-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
    )
    assert manage(env, "migrate", "-v0").returncode == 0
    keys = {}
    for name in ("bypassed", "revoked"):
        made = manage(env, "create_api_key", "--scope", "node", "--name", name)
        assert made.returncode == 0, made.stderr
        keys[name] = made.stdout.split()[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"]
        + ["--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/v1/cids/{CID}"

    def statuses(key: str) -> list[int]:
        # A new connection each time, so that both workers answer some of them.
        return [
            httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code
            for _ in range(30)
        ]

    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), "gunicorn")
        assert set(statuses(keys["bypassed"])) == {200}
        assert set(statuses(keys["revoked"])) == {200}
        # A revocation that bypasses the triggers is never heard: the workers go on
        # answering from memory. (It shows that they remember; nothing in the service
        # changes keys this way.)
        prefix = keys["bypassed"][:12]
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("ALTER TABLE dashboard_apikey DISABLE TRIGGER USER")
            conn.execute(
                "UPDATE dashboard_apikey SET revoked_at = now() WHERE prefix = %s", [prefix]
            )
            conn.execute("ALTER TABLE dashboard_apikey ENABLE TRIGGER USER")
        assert 200 in statuses(keys["bypassed"])
        revoked = manage(env, "revoke_api_key", keys["revoked"][:12])
        assert revoked.returncode == 0, revoked.stderr
        assert set(statuses(keys["revoked"])) == {401}
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()


@on_postgresql
def test_a_remembered_key_still_records_its_use(  # type: ignore[no-untyped-def]
    remembering, personas: Personas, other_connection
) -> None:
    from django.core.cache import cache

    from dashboard.keys import services as api_keys

    remembered_and_free(personas.node_key)
    other_connection.execute(
        "UPDATE dashboard_apikey SET last_used_at = NULL WHERE prefix = %s", [personas.node.prefix]
    )
    # A minute later (this process's note and the shared marker have both expired) the
    # next request writes the time again, without looking the key up.
    api_keys._noted.clear()
    cache.clear()
    key, queries = queries_for(personas.node_key)
    assert key is not None and queries == 1  # the UPDATE of last_used_at, no SELECT
    row = other_connection.execute(
        "SELECT last_used_at FROM dashboard_apikey WHERE prefix = %s", [personas.node.prefix]
    ).fetchone()
    assert row[0] is not None
