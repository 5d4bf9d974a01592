"""Jobs end to end over real HTTP: `manage.py serve` (web server + executor thread) and the CLI
in `--api` mode, as a job author uses them; content upload and the /ipfs gateway."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from executor.api_client import DashboardClient
from executor.embedded_store import EmbeddedStore
from executor.run import run_job
from executor.spec import parse_spec
from tests.base import ACCEPT_RISKS
from tests.dashboard.reexecution.common import report_of
from tests.executor import wat_modules as wat
from tests.helpers import ROOT, database_urls, free_port, manage, process_env, spawn


@dataclass
class Live:
    url: str
    submitter: str
    node: str
    moderators: list[str]
    tmp: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    # No Lotus here: the scanner loop is off; jobs and content need none.
    databases = database_urls(tmp)  # SQLite, or PostgreSQL when the suite runs on it
    env = process_env(tmp, EXECUTOR_LEASE_S="5", DATABASE_URL=next(databases))
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    keys = {}
    people = {"mona": "moderator", "ada": "admin"}
    for username, role in people.items():
        made = manage(dict(env, MODERATOR_PASSWORD="a long passphrase"), "create_moderator",
                      username, "--role", role)  # fmt: skip
        assert made.returncode == 0, made.stderr
    for scope, extra in (
        ("submitter", []),
        ("node", ["--provider", "f01234"]),
        ("moderator", ["--user", "mona"]),
        ("moderator", ["--user", "ada"]),
    ):
        made = manage(env, "create_api_key", "--scope", scope, "--name", f"{scope}-live", *extra)
        assert made.returncode == 0, made.stderr
        keys.setdefault(scope, []).append(made.stdout.strip().splitlines()[-1])
    proc = spawn(env, "serve", "--port", str(port), "--no-scanner")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/healthz").status_code in (200, 503):
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Live(
            url=url,
            submitter=keys["submitter"][0],
            node=keys["node"][0],
            moderators=keys["moderator"],
            tmp=tmp,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        databases.close()


def cli(live: Live, *args: str, api: bool = True, data_dir: Path | None = None):  # type: ignore[no-untyped-def]
    env = process_env(data_dir or live.tmp / "cli-local")
    env.pop("IPFS_API_URL", None)
    if api:
        env.update(FILPLUS_API_URL=live.url, FILPLUS_API_KEY=live.submitter)
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        cwd=live.tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_job_over_http_gives_the_local_result_cid(live: Live) -> None:
    module = live.tmp / "clocks.wasm"
    module.write_bytes(wat.clocks_and_random())
    data = live.tmp / "input.txt"
    data.write_bytes(b"some input\n")
    remote_input = cli(live, "add", str(data)).stdout.strip()
    local_input = cli(live, "add", str(data), api=False).stdout.strip()
    assert remote_input == local_input
    args = ["wasm", "run", str(module), "-v", f"{remote_input}:/in/input.txt", "--wait", "x"]
    remote = cli(live, *args)
    assert remote.returncode == 0, remote.stderr
    # the job id, then the job's own stdout as it finished, then the result CID
    lines = remote.stdout.splitlines()
    job_id, shown, result_cid = lines[0], lines[1:-1], lines[-1]
    assert shown[0] == "1640995200000000000"
    assert "completed" in remote.stderr
    local = cli(live, *[a for a in args if a != "--wait"], api=False)
    assert local.returncode == 0, local.stderr
    assert local.stdout.splitlines() == [*shown, result_cid]
    quiet = cli(live, *args, "--quiet")
    assert quiet.stdout.splitlines() == [quiet.stdout.split()[0], result_cid]
    described = cli(live, "describe", job_id)
    assert f'"result_cid": "{result_cid}"' in described.stdout
    assert '"blessed": false' in described.stdout  # no chain data: the input is not blessed
    # the result can be fetched back through the dashboard, verified block by block
    got = cli(live, "get", result_cid, "-o", str(live.tmp / "fetched"))
    assert got.returncode == 0, got.stderr
    stdout = (live.tmp / "fetched" / "stdout").read_text().splitlines()
    assert stdout[0] == "1640995200000000000"


def test_submit_without_wait_and_failures(live: Live) -> None:
    spin = live.tmp / "spin.wasm"
    spin.write_bytes(wat.spin())
    submitted = cli(live, "wasm", "run", str(spin), "--fuel", "1000")
    assert submitted.returncode == 0
    [job_id] = submitted.stdout.split()
    with DashboardClient(live.url, live.submitter) as client:
        job = client.wait(job_id, timeout_s=60, poll_s=0.2)
    assert job["state"] == "failed" and job["error"] == "fuel limit of 1000 exhausted"
    failed = cli(live, "wasm", "run", str(spin), "--fuel", "1000", "--wait")
    assert failed.returncode == 1
    assert "failed: fuel limit of 1000 exhausted" in failed.stderr
    no_key = cli(live, "describe", job_id, api=False)
    assert no_key.returncode == 2 and "needs --api" in no_key.stderr
    bad_key = subprocess.run(
        [sys.executable, "-m", "executor", "describe", job_id, "--api", live.url,
         "--api-key", "fpk_nope"],
        cwd=ROOT, env=process_env(live.tmp / "x"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_key.returncode == 1 and "HTTP 401" in bad_key.stderr


def test_content_upload_and_gateway(live: Live) -> None:
    folder = live.tmp / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a\n")
    (folder / "sub" / "b.txt").write_text("bb\n")
    root = cli(live, "add", str(folder)).stdout.strip()  # a CAR built locally and uploaded
    local = EmbeddedStore(live.tmp / "check")
    assert root == local.add_path(folder)[-1].cid
    headers = {"Authorization": f"Bearer {live.node}"}
    listing = httpx.get(f"{live.url}/ipfs/{root}", headers=headers)
    assert listing.status_code == 200 and "sub/" in listing.text
    file = httpx.get(f"{live.url}/ipfs/{root}/sub/b.txt", headers=headers)
    assert (file.status_code, file.content) == (200, b"bb\n")
    assert file.headers["content-type"] == "application/octet-stream"
    car = httpx.get(f"{live.url}/ipfs/{root}?format=car", headers=headers)
    assert car.headers["content-type"] == "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    assert EmbeddedStore(live.tmp / "from-car").import_car(io.BytesIO(car.content)) == [root]
    assert httpx.get(f"{live.url}/ipfs/{root}").status_code == 401
    missing = httpx.get(f"{live.url}/ipfs/{root}/nope", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    raw = httpx.post(
        f"{live.url}/api/v1/content",
        content=b"hello ipfs\n",
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert raw.status_code == 201
    assert raw.json() == {"cid": "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"}
    broken = httpx.post(
        f"{live.url}/api/v1/content",
        content=b"\x01not a car",
        headers={**headers, "Content-Type": "application/vnd.ipld.car"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_car"


def test_two_scripts_deciding_at_once_get_one_decision(live: Live) -> None:
    with DashboardClient(live.url, live.submitter) as client:
        module = client.upload(wat.exit_with(0))
        job_id = client.submit({"engine": "wasm", "wasm": {"module": module}})["id"]
        assert client.wait(job_id, timeout_s=60, poll_s=0.1)["state"] == "completed"
    bodies = [
        # the smallest piece: never over the suggestion
        {"decision": "verify", "datacap_bytes": 128, **ACCEPT_RISKS},
        {"decision": "reject", "reason": "no"},
    ]
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def decide(key: str, body: dict) -> None:
        start.wait()
        answers.append(
            httpx.post(
                f"{live.url}/api/v1/jobs/{job_id}/decision",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
        )

    threads = [
        threading.Thread(target=decide, args=(key, body))
        for key, body in zip(live.moderators, bodies, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409).json()["error"]
    assert loser["code"] == "already_decided" and "already" in loser["message"]
    with DashboardClient(live.url, live.submitter) as client:
        state = client.job(job_id)["moderation"]["state"]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert state == winner["moderation"]["state"] in ("verified", "rejected")


def test_cancel_stops_a_running_job(live: Live) -> None:
    with DashboardClient(live.url, live.submitter) as client:
        module = client.upload(wat.spin())
        body = {"engine": "wasm", "wasm": {"module": module}, "limits": {"timeout_s": 120}}
        job_id = client.submit(body)["id"]
        deadline = time.monotonic() + 60
        while client.job(job_id)["state"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        asked = time.monotonic()
        assert client.cancel(job_id)["state"] in ("running", "cancelled")
        job = client.wait(job_id, timeout_s=30, poll_s=0.1)
        stopped_in = time.monotonic() - asked
        assert job["state"] == "cancelled", job
        assert job["error"].startswith("cancelled")
        assert stopped_in < 10  # the worker looks for a cancel every second
        # the worker is free again: the next job runs
        quick = client.submit(
            {"engine": "wasm", "wasm": {"module": client.upload(wat.exit_with(0))}}
        )
        assert client.wait(quick["id"], timeout_s=60, poll_s=0.1)["state"] == "completed"
        other = client.submit({"engine": "wasm", "wasm": {"module": module}})
        other_cancel = httpx.post(
            f"{live.url}/api/v1/jobs/{other['id']}/cancel",
            headers={"Authorization": f"Bearer {live.node}"},
        )
        assert other_cancel.status_code == 404  # not the node's job
        client.cancel(other["id"])


def test_a_chunked_upload_to_serve_is_411_and_stores_nothing(live: Live) -> None:
    data = b"chunked body\n"
    answer = httpx.post(
        f"{live.url}/api/v1/content",
        content=iter([data]),  # a generator: httpx sends it chunked
        headers={"Authorization": f"Bearer {live.node}", "Content-Type": "text/plain"},
    )
    assert answer.status_code == 411
    assert answer.json()["error"]["code"] == "length_required"
    assert not EmbeddedStore(live.tmp / "data" / "ipfs").has(
        EmbeddedStore(live.tmp / "chunk-check").add_bytes(data)
    )


def test_an_external_nodes_wasm_job_is_reexecuted_by_serve(live: Live) -> None:
    """On the embedded defaults (REEXECUTE_POLICY=all), `serve`'s executor thread re-runs an
    external node's WASM job once it is reported, and finds an honest result honest and
    another job's result a mismatch."""
    node_store = EmbeddedStore(live.tmp / "node-store")
    module, data = wat.clock_random_and_input(), b"read by the job\n"
    spec = {
        "engine": "wasm",
        "wasm": {"module": node_store.add_bytes(module)},
        "inputs": [{"cid": node_store.add_bytes(data), "path": "/in/input.txt"}],
    }
    other = {**spec, "inputs": [{"cid": node_store.add_bytes(b"other\n"), "path": "/in/input.txt"}]}
    honest = run_job(parse_spec(spec), node_store)
    fake = run_job(parse_spec(other), node_store)
    headers = {"Authorization": f"Bearer {live.node}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=60) as http:
        for blob in (module, data):  # the author's upload: the dashboard can run the job too
            assert http.post("/api/v1/content", content=blob).status_code == 201
        for job_id, result in (("live-honest", honest), ("live-liar", fake)):
            assert (
                http.post("/api/v1/jobs", json={**spec, "external": True, "id": job_id}).status_code
                == 201
            )
            reported = http.post(f"/api/v1/jobs/{job_id}/results", json=report_of(result, spec))
            assert reported.status_code == 201, reported.text
        states = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(states) < 2:
            for job_id in ("live-honest", "live-liar"):
                state = http.get(f"/api/v1/jobs/{job_id}").json()["reexecution"]
                if state["state"] in ("match", "mismatch", "failed"):
                    states[job_id] = state
            time.sleep(0.1)
    assert states["live-honest"]["state"] == "match", states
    assert states["live-honest"]["rerun_cid"] == honest.result_cid
    assert states["live-liar"]["state"] == "mismatch", states
    assert states["live-liar"]["rerun_cid"] == honest.result_cid
    assert states["live-liar"]["diff"] == [
        {"path": ".", "reported": fake.result_cid, "rerun": honest.result_cid}
    ]
