"""A revoked key stops working at once, in every web process: each request looks its key up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.chain_data import synthetic_payload_cid
from tests.helpers import ROOT, answers, database_urls, free_port, manage, process_env, wait_until

CID = synthetic_payload_cid(1)


@pytest.mark.slow
def test_gunicorn_workers_refuse_a_key_revoked_from_the_command_line(tmp_path: Path) -> None:
    """The production server (gunicorn.conf.py, two workers) and `manage.py revoke_api_key`
    in another process: the next request to either worker is refused."""
    databases = database_urls(tmp_path)
    env = process_env(
        tmp_path,
        DATABASE_URL=next(databases),
        API_RATE_LIMIT="0",
        DEBUG="0",
        SECRET_KEY="key-revocation-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
    )
    assert manage(env, "migrate", "-v0").returncode == 0
    made = manage(env, "create_api_key", "--scope", "node", "--name", "soon-revoked")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"]
        + ["--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/v1/cids/{CID}"

    def statuses() -> set[int]:
        # A new connection each time, so that both workers answer some of them.
        return {
            httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code
            for _ in range(30)
        }

    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), "gunicorn")
        assert statuses() == {200}
        revoked = manage(env, "revoke_api_key", key[:12])
        assert revoked.returncode == 0, revoked.stderr
        assert statuses() == {401}
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()
