"""`POST /api/v1/content` and `GET /ipfs/…` against content built to cost more than it weighs,
bodies that are not what they say, and uploads cut off by a kill."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.test import Client

from executor.embedded_store import EmbeddedStore
from executor.unixfs import cid_text
from tests.base import Personas
from tests.executor import hostile_dags as dags
from tests.helpers import ROOT, answers, database_urls, free_port, manage, process_env, wait_until

CAR = "application/vnd.ipld.car"


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def upload(client: Client, key: str, body: bytes, content_type: str = CAR):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/content", data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def blocks_on_disk(store: EmbeddedStore) -> int:
    return sum(1 for p in (store.root / "blocks").rglob("*") if p.is_file())


def test_a_car_of_tiny_blocks_counts_at_its_disk_cost(
    client: Client, personas: Personas, store: EmbeddedStore, settings
) -> None:
    car, root = dags.many_tiny_blocks_car(2000)  # ~175 KB of CAR, ~8 MB as files
    settings.CONTENT_MAX_BYTES = 1_000_000
    refused = upload(client, personas.submitter_key, car)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "body_too_large"
    assert "on disk" in refused.json()["error"]["message"]
    assert blocks_on_disk(store) == 0
    settings.CONTENT_MAX_BYTES = 20_000_000
    stored = upload(client, personas.submitter_key, car)
    assert (stored.status_code, stored.json()) == (201, {"cid": cid_text(root)})


def test_a_car_without_its_root_is_400_naming_the_root(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    blocks: list[tuple[bytes, bytes]] = []
    dags.raw_leaf(lambda c, b: blocks.append((c, b)), b"some block")
    absent = dags.raw_leaf(lambda c, b: None, b"the root, not sent")
    refused = upload(client, personas.submitter_key, dags.car_of(absent, blocks))
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_car" and cid_text(absent) in error["message"]
    assert blocks_on_disk(store) == 0


def test_a_truncated_car_stores_nothing_and_the_gateway_never_says_200(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    blocks: list[tuple[bytes, bytes]] = []
    root = dags.repeated_leaf_file(lambda c, b: blocks.append((c, b)), 1000, 3)
    car = dags.car_of(root, list(reversed(blocks)))
    refused = upload(client, personas.submitter_key, car[:-200])
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_car"
    assert blocks_on_disk(store) == 0
    # A partial DAG (as a crash could leave, or a node's cache): the root without its leaf.
    store.put_block(*blocks[-1])
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    partial = client.get(f"/ipfs/{cid_text(root)}", **headers)
    assert partial.status_code == 404
    assert "not wholly" in partial.json()["error"]["message"]
    assert client.get(f"/ipfs/{cid_text(root)}?format=car", **headers).status_code == 404
    # Whole, it streams with its length.
    assert upload(client, personas.submitter_key, car).status_code == 201
    whole = client.get(f"/ipfs/{cid_text(root)}", **headers)
    assert whole.status_code == 200 and whole["Content-Length"] == "3000"
    assert b"".join(whole.streaming_content) == b"\xab" * 3000


def test_upload_bodies_left_by_a_killed_process_are_swept(settings, tmp_path: Path) -> None:
    from dashboard.content.services import sweep_uploads

    settings.DATA_DIR = tmp_path / "data"
    uploads = settings.DATA_DIR / "uploads"
    dead = uploads / "upload-999999999-1-0"
    mine = uploads / f"upload-{os.getpid()}-1-0"
    for path in (dead, mine):
        path.mkdir(parents=True)
        (path / "upload").write_bytes(b"partial body")
    assert sweep_uploads() == 1
    assert not dead.exists() and mine.exists()
    # and a process's start sweeps them too
    dead.mkdir()
    checked = manage(process_env(tmp_path), "check")
    assert checked.returncode == 0, checked.stderr
    assert not dead.exists()


def _raw_request(url: str, head: bytes, body: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(head + body)
        conn.shutdown(socket.SHUT_WR)  # the client stops sending: a cut-off body
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_chunked_and_cut_off_bodies_on_gunicorn(tmp_path: Path) -> None:
    databases = database_urls(tmp_path)
    env = process_env(tmp_path, DATABASE_URL=next(databases), API_RATE_LIMIT="0")
    assert manage(env, "migrate", "-v0").returncode == 0
    made = manage(env, "create_api_key", "--scope", "submitter", "--name", "uploader")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-c", "gunicorn.conf.py"]
        + ["-w", "1", "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"}
    try:
        wait_until(lambda: answers(f"{url}/healthz"), "gunicorn")
        data = os.urandom(3 << 20)
        chunked = httpx.post(
            f"{url}/api/v1/content",
            content=(data[i : i + 65536] for i in range(0, len(data), 65536)),
            headers=headers,
            timeout=60,
        )
        assert chunked.status_code == 201, chunked.text
        assert chunked.json()["cid"] == EmbeddedStore(tmp_path / "check").add_bytes(data)
        head = (
            f"POST /api/v1/content HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        answer = _raw_request(url, head, b"x" * 400)
        assert b" 400 " in answer.split(b"\r\n")[0] and b"truncated_body" in answer
        store = EmbeddedStore(tmp_path / "data" / "ipfs")
        assert not store.has(EmbeddedStore(tmp_path / "check2").add_bytes(b"x" * 400))
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()


def test_a_folder_page_lists_its_entries_with_escaped_names(
    client: Client, personas: Personas, store: EmbeddedStore, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / '<b>&"x.txt').write_text("four")
    (tmp_path / "empty").mkdir()
    root = store.add_path(folder)[-1].cid
    empty = store.add_path(tmp_path / "empty")[-1].cid
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}

    page = client.get(f"/ipfs/{root}", **auth)
    assert page.status_code == 200 and page["Content-Type"] == "text/html; charset=utf-8"
    text = page.content.decode()
    assert f"<h1>{root}</h1>" in text
    assert (
        f'<a href="/ipfs/{root}/&lt;b&gt;&amp;&quot;x.txt">&lt;b&gt;&amp;&quot;x.txt</a> 4 bytes'
        in text
    )
    assert f'<a href="/ipfs/{root}/sub">sub/</a></li>' in text
    assert "<b>" not in text
    assert "(empty folder)" in client.get(f"/ipfs/{empty}", **auth).content.decode()


def _repeated_file(client: Client, personas: Personas, leaf: int, count: int) -> str:
    """Upload a file of `count` times one `leaf`-byte block: a few KB of CAR for
    leaf x count bytes of file (UnixFS dedup, used as an amplifier)."""
    blocks: list[tuple[bytes, bytes]] = []
    root = dags.repeated_leaf_file(lambda c, b: blocks.append((c, b)), leaf, count)
    car = dags.car_of(root, list(reversed(dict(blocks).items())))
    assert upload(client, personas.submitter_key, car).status_code == 201
    return cid_text(root)


def test_the_gateway_sends_no_more_than_one_response_may(
    client: Client, personas: Personas, store: EmbeddedStore, settings
) -> None:
    """A small upload whose links repeat one block is a large file: the gateway refuses to
    stream more than GATEWAY_MAX_RESPONSE_BYTES in one answer, before it sends a byte."""
    root = _repeated_file(client, personas, 1 << 16, 174 * 20)  # 228 MB of file
    settings.GATEWAY_MAX_RESPONSE_BYTES = 100 << 20
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    refused = client.get(f"/ipfs/{root}", **auth)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "response_too_large"
    assert str(174 * 20 << 16) in error["message"] and str(100 << 20) in error["message"]
    # Its CAR holds each block once: small, so it is sent.
    car = client.get(f"/ipfs/{root}?format=car", **auth)
    assert car.status_code == 200 and len(b"".join(car.streaming_content)) < 100_000
    settings.GATEWAY_MAX_RESPONSE_BYTES = 1000
    assert client.get(f"/ipfs/{root}?format=car", **auth).status_code == 413


def test_a_caller_is_served_a_bounded_number_of_bytes_an_hour(
    client: Client, personas: Personas, store: EmbeddedStore, settings
) -> None:
    root = _repeated_file(client, personas, 1000, 4)  # a 4000-byte file
    settings.GATEWAY_BYTES_PER_HOUR = 10_000
    node = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    for _ in range(2):
        served = client.get(f"/ipfs/{root}", **node)
        assert served.status_code == 200 and len(b"".join(served.streaming_content)) == 4000
    refused = client.get(f"/ipfs/{root}", **node)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "egress_limit" and "2000 bytes left" in error["message"]
    assert refused["Retry-After"].isdigit() and 0 < int(refused["Retry-After"]) <= 3600
    # The refused answer cost nothing, and another caller has a budget of its own.
    other = {"HTTP_AUTHORIZATION": f"Bearer {personas.notary_key}"}
    assert client.get(f"/ipfs/{root}", **other).status_code == 200
    settings.GATEWAY_BYTES_PER_HOUR = 0  # no limit
    assert client.get(f"/ipfs/{root}", **node).status_code == 200
