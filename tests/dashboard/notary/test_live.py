"""The whole FIL+ loop over real HTTP: a job runs on the bundled executor, a
moderator verifies it by script, the node registers the piece of its result CAR, a small
notary client plays Evergreen until the allowance is used up, and the deal that follows
appears on the (fake) chain, where `serve`'s scanner finds it and the job shows it."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from executor.commp import Piece, commp
from tests.base import ACCEPT_RISKS
from tests.chain_data import make_deal
from tests.executor import wat_modules as wat
from tests.fake_lotus import FakeChain, FakeLotusServer
from tests.helpers import (
    answers,
    database_urls,
    free_port,
    manage,
    process_env,
    spawn,
    wait_until,
)

HOLDER = "f01234"


class Evergreen:
    """What the notary does: ask before awarding, then record what it awarded."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})

    def verification(self, cid: str, provider: str) -> dict:
        response = self.http.get(
            f"/api/v1/notary/verifications/{cid}", params={"provider": provider}
        )
        response.raise_for_status()
        return response.json()

    def award(self, cid: str, provider: str, piece: Piece) -> httpx.Response:
        return self.http.post(
            "/api/v1/notary/awards",
            json={
                "cid": cid,
                "provider": provider,
                "piece_cid": piece.cid,
                "piece_size": piece.size,
            },
        )


def _key(env: dict[str, str], scope: str, *extra: str) -> str:
    made = manage(env, "create_api_key", "--scope", scope, "--name", f"{scope}-e2e", *extra)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_evergreen_end_to_end(tmp_path: Path) -> None:
    chain = FakeChain.from_fixtures()
    with FakeLotusServer(chain) as lotus:
        databases = database_urls(tmp_path)  # SQLite, or PostgreSQL when the suite runs on it
        env = process_env(
            tmp_path,
            DATABASE_URL=next(databases),
            LOTUS_RPC_URL=lotus.url,
            SCANNER_START_EPOCH="4622000",
            SCANNER_INTERVAL_S="1",
            EXECUTOR_PROVIDER=HOLDER,
        )
        env.pop("IPFS_API_URL", None)
        assert manage(env, "migrate", "-v0").returncode == 0
        made = manage(dict(env, MODERATOR_PASSWORD="a long passphrase"), "create_moderator",
                      "mona", "--role", "moderator")  # fmt: skip
        assert made.returncode == 0, made.stderr
        submitter = _key(env, "submitter")
        node = _key(env, "node", "--provider", HOLDER)
        moderator = _key(env, "moderator", "--user", "mona")
        notary = Evergreen(f"http://127.0.0.1:{(port := free_port())}", _key(env, "notary"))
        url = f"http://127.0.0.1:{port}"
        proc = spawn(env, "serve", "--port", str(port))
        try:

            def api(key: str) -> httpx.Client:
                return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})

            wait_until(lambda: answers(f"{url}/healthz"), "serve")
            # 1. a job, run by the bundled executor (the holder of its results is HOLDER)
            alice = api(submitter)
            module = alice.post(
                "/api/v1/content",
                content=wat.exit_with(0),
                headers={"Content-Type": "application/octet-stream"},
            ).json()["cid"]
            job_id = alice.post(
                "/api/v1/jobs", json={"engine": "wasm", "wasm": {"module": module}}
            ).json()["id"]
            job = wait_until(
                lambda: (
                    (j := alice.get(f"/api/v1/jobs/{job_id}").json())["state"] == "completed" and j
                )
            )
            result_cid = job["result"]["result_cid"]
            assert job["result"]["provider"] == HOLDER
            # 2. the node builds the CAR of the result as it will store it, and its pieces
            car = api(node).get(f"/ipfs/{result_cid}", params={"format": "car"}).content
            small = commp(car)  # the smallest piece that holds the CAR
            medium = commp(car, piece_size=small.size * 2)
            registered = [
                api(node).post(
                    f"/api/v1/jobs/{job_id}/pieces",
                    json={
                        "piece_cid": piece.cid,
                        "piece_size": piece.size,
                        "payload_cid": result_cid,
                    },
                )
                for piece in (small, medium)
            ]
            assert registered[0].status_code == 201, registered[0].text
            # padding earns no DataCap
            assert registered[1].json()["error"]["code"] == "piece_too_large"
            # 3. not verified yet: the notary is told so
            assert notary.verification(result_cid, HOLDER)["verified"] is False
            assert notary.award(result_cid, HOLDER, small).json()["error"]["code"] == "not_verified"
            # 4. a moderator's script verifies it with room for the small and medium pieces
            decided = api(moderator).post(
                f"/api/v1/jobs/{job_id}/decision",
                json={"decision": "verify", "datacap_bytes": small.size, **ACCEPT_RISKS},
            )
            assert decided.status_code == 200, decided.text
            answer = notary.verification(result_cid, HOLDER)
            assert answer["verified"] is True and answer["remaining_bytes"] == small.size
            # 5. awards until the allowance is used up
            assert (
                notary.award(result_cid, "f09999", small).json()["error"]["code"]
                == "wrong_provider"
            )
            assert notary.award(result_cid, HOLDER, small).status_code == 201
            again = notary.award(small.cid, HOLDER, small)  # idempotent
            assert again.status_code == 200 and again.json()["remaining_bytes"] == 0
            assert notary.verification(small.cid, HOLDER)["awarded_bytes"] == small.size
            # 6. the provider makes the deal; it appears on chain and the scanner finds it
            wait_until(lambda: api(node).get("/api/v1/scanner").json().get("processing_height"))
            deal_id = chain.next_deal_id
            head = chain.head_height
            value = make_deal(
                deal_id,
                start_epoch=head,
                end_epoch=head + 10**6,
                sector_start_epoch=head,
                label=result_cid,
                piece_cid=small.cid,
                piece_size=small.size,
                provider=HOLDER,
            )
            chain.add_deal(deal_id, value)
            chain.advance(chain.finality + 10)
            shown = wait_until(
                lambda: (
                    (j := api(moderator).get(f"/api/v1/jobs/{job_id}").json())["storage"]["deals"]
                    and j
                ),
                timeout=90,
            )
            assert shown["storage"]["deals"][0]["id"] == deal_id
            assert shown["storage"]["deals"][0]["status"] == "active"
            assert shown["storage"]["on_chain_bytes"] == small.size
            assert shown["storage"]["flags"] == []
            assert notary.verification(result_cid, HOLDER)["on_chain"]["deals"][0]["id"] == deal_id
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            databases.close()
    assert proc.returncode == 0, err
