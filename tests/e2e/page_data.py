"""Jobs in every state the moderator pages show, for the view tests and the browser tests
(which run it in a `manage.py shell` of the live server's database)."""

from __future__ import annotations

import base64
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from chain_scanner.models import Claim, ProviderAddress
from dashboard.content.services import storage
from dashboard.jobs.provenance import record_retrievals
from dashboard.keys.services import create_api_key
from dashboard.models import (
    ApiKey,
    Decision,
    Job,
    JobInput,
    JobPiece,
    JobResult,
    Novelty,
    Reexecution,
)
from executor.multiaddr import parse_text, to_binary
from tests.awards import award

BLESSED_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
OTHER_CID = "bafkreiaqm3h2tqilzbgtglsabqeqoyh3rbwlpwlgwtwmevvpgyxfdhhfeq"
SOURCE = {
    "kind": "claim",
    "id": 12345,
    "provider": "f01234",
    "client": "f05678",
    "piece_cid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
    "payload_cid": None,
    "start_epoch": 4_000_000,
    "end_epoch": 5_500_000,
}


def stored_result(stdout: bytes = b"hello from the job\n", stderr: bytes = b"") -> dict[str, str]:
    """A result directory {stdout, stderr, exitCode, outputs/} added to the dashboard's store."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "result"
        (root / "outputs").mkdir(parents=True)
        (root / "stdout").write_bytes(stdout)
        (root / "stderr").write_bytes(stderr)
        (root / "exitCode").write_text("0")
        (root / "outputs" / "report.txt").write_text("a report\n")
        added = {e.path: e.cid for e in storage().add_path(root)}
    return {
        "result_cid": added["result"],
        "stdout_cid": added["result/stdout"],
        "stderr_cid": added["result/stderr"],
        "outputs_cid": added["result/outputs"],
    }


def make_job(
    job_id: str,
    *,
    blessed: bool | None = True,
    engine: str = "wasm",
    node: ApiKey | None = None,
    annotations: tuple[str, ...] = ("filplus",),
    state: str = Job.State.COMPLETED,
    moderation: str = Job.Moderation.PENDING,
    finished_ago: timedelta = timedelta(hours=1),
    size: int = 1000,
    cids: dict[str, str] | None = None,
) -> Job:
    now = timezone.now()
    job = Job.objects.create(
        id=job_id,
        engine=engine,
        spec={"engine": engine, "inputs": [{"cid": BLESSED_CID, "path": "/data/in.txt"}]},
        spec_digest="0" * 64,
        node=node,
        external=node is not None,
        annotations=list(annotations),
        annotation_index="|" + "|".join(annotations) + "|" if annotations else "",
        state=state,
        finished_at=now - finished_ago if state != Job.State.QUEUED else None,
        inputs_blessed=blessed,
        moderation_state=moderation,
    )
    if blessed is not None:
        JobInput.objects.create(
            job=job,
            position=0,
            cid=BLESSED_CID if blessed else OTHER_CID,
            path="/data/in.txt",
            blessed=blessed,
            status="active" if blessed else "unknown",
            sources=[SOURCE] if blessed else [],
            as_of_epoch=4_900_000,
        )
    if state == Job.State.COMPLETED:
        refs: dict[str, Any] = cids or {
            "result_cid": f"bafyresult{job_id}",
            "stdout_cid": "",
            "stderr_cid": "",
            "outputs_cid": "",
        }
        JobResult.objects.create(
            job=job,
            exit_code=0,
            size_bytes=size,
            runtime_ms=12,
            provider="f01234",
            **refs,
            car_bytes=size,  # as if measured here: the suggestion follows it
        )
        # As if the worker had measured it: all of it new, copied from nowhere.
        Novelty.objects.create(
            job=job,
            result_cid=refs["result_cid"],
            state=Novelty.State.MEASURED,
            novel_bytes=size,
            total_bytes=size,
            sources=[],
            method="test",
            measured_at=timezone.now(),
        )
    return job


def fetched_from_providers(job: Job) -> None:
    """The job's node reports where its input came from: a provider that stalled, then one
    that served the piece; the Nodes page adds it up as every recorded result is."""
    url = f"http://sp.example:7777/piece/{SOURCE['piece_cid']}"
    slow = f"http://slow.example/piece/{SOURCE['piece_cid']}"
    inputs = [
        {
            "cid": BLESSED_CID,
            "path": "/data/in.txt",
            "verified": "piece",
            "provider": "f01234",
            "url": url,
            "bytes": 5000,
            "seconds": 0.4,
            "attempts": [
                {"provider": "f05555", "url": slow, "ok": False,
                 "reason": "not done after 600 s (1048576 bytes)", "bytes": 1048576,
                 "seconds": 600.0},
                {"provider": "f01234", "url": url, "ok": True, "reason": None, "bytes": 5000,
                 "seconds": 0.4},
            ],
        }
    ]  # fmt: skip
    JobResult.objects.filter(job=job).update(inputs=inputs)
    record_retrievals(inputs)


def seed_e2e() -> None:
    """What the browser tests open: a blessed docker job with real content, an unblessed
    wasm job, two jobs for the concurrent decision, and an already decided one."""
    cids = stored_result()
    blessed = make_job("job-blessed", engine="docker", annotations=("filplus", "genomics"),
                       cids=cids, size=5000)  # fmt: skip
    fetched_from_providers(blessed)
    make_job("job-unblessed", blessed=False, annotations=("other",), cids=cids)
    make_job("job-race", cids=cids, finished_ago=timedelta(hours=3))
    make_job("job-viewer", cids=cids, finished_ago=timedelta(hours=4))
    make_job("job-done", moderation=Job.Moderation.REJECTED, cids=cids)
    # a spec longer than its box, whose lines carry underscores
    long_spec = make_job("job-long-spec", moderation=Job.Moderation.REJECTED, cids=cids)
    long_spec.spec = {
        "engine": "wasm",
        "wasm": {"module": BLESSED_CID, "entry_point": "_start",
                 "args": [f"arg_{n}" for n in range(30)], "env": {"MY_VAR": "a_b"}},
    }  # fmt: skip
    long_spec.save(update_fields=["spec"])
    # a node caught reporting a result its job does not give
    liar, _ = create_api_key(scope="node", name="node-liar", provider="f01234", actor="seed")
    caught = make_job("job-mismatch", node=liar, cids=cids, finished_ago=timedelta(hours=5))
    rerun = stored_result(stdout=b"what the job really prints\n")
    Reexecution.objects.create(
        job=caught,
        state=Reexecution.State.MISMATCH,
        reason="policy",
        requested_by="policy",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        ran_by="dashboard-host:4242:1",
        result_cid=rerun["result_cid"],
        exit_code=0,
        runtime_ms=3,
        diff=[{"path": "stdout", "reported": cids["stdout_cid"], "rerun": rerun["stdout_cid"]}],
    )
    Job.objects.filter(id=caught.id).update(reexecution_verdict=Reexecution.State.MISMATCH)
    # a node that reported its job's true result CID with an invented stdout and exit code
    # (already rejected, so that the queue and node-liar's record stay as other tests expect)
    inventor, _ = create_api_key(
        scope="node", name="node-inventor", provider="f01234", actor="seed"
    )
    parts = make_job(
        "job-parts", node=inventor, cids=cids, finished_ago=timedelta(hours=5),
        moderation=Job.Moderation.REJECTED,
    )  # fmt: skip
    Reexecution.objects.create(
        job=parts,
        state=Reexecution.State.MISMATCH,
        reason="policy",
        requested_by="policy",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        ran_by="dashboard-host:4242:1",
        result_cid=cids["result_cid"],
        exit_code=0,
        runtime_ms=3,
        diff=[
            {"path": "stdout", "reported": rerun["stdout_cid"], "rerun": cids["stdout_cid"]},
            {"path": "exit_code", "reported": "7", "rerun": "0"},
        ],
    )
    Job.objects.filter(id=parts.id).update(reexecution_verdict=Reexecution.State.MISMATCH)
    # a bundled job that ran out of wall time: no result, and an ending no machine repeats
    make_job("job-slow", state=Job.State.FAILED, finished_ago=timedelta(hours=6))
    Job.objects.filter(id="job-slow").update(
        outcome="timed_out", error="wall-time limit of 0.3 s exceeded"
    )
    seed_decided()


AWARDED_PIECE = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"


def seed_decided() -> None:
    """Decided jobs the jobs list finds: one verified, its piece registered and awarded (no
    deal on chain yet); one rejected after a re-execution gave another stdout (the diff shows
    both versions, one with markup that must stay text). Neither is awaiting a decision."""
    cids = stored_result()
    node, _ = create_api_key(scope="node", name="sp-holder", provider="f01234", actor="seed")
    notary, _ = create_api_key(scope="notary", name="evergreen", actor="seed")
    awarded = make_job("job-awarded", cids=cids, moderation=Job.Moderation.VERIFIED,
                       finished_ago=timedelta(days=2))  # fmt: skip
    Job.objects.filter(id=awarded.id).update(datacap_bytes=2048, decided_at=timezone.now())
    JobResult.objects.filter(job=awarded).update(
        receipt={
            "engine": "wasm", "runtime": "wasmtime 50.0.1", "target": "cranelift",
            "determinism": ["fuel", "nan_canonicalization", "virtual_clocks"],
            "fuel_used": 1734, "outcome": "completed", "module_cid": None, "image": None,
            "input_cids": [],
        }
    )  # fmt: skip
    Decision.objects.create(
        job=awarded, action=Decision.Action.VERIFY, datacap_bytes=2048,
        reason="inputs blessed, output read", actor="user:mona",
    )  # fmt: skip
    JobPiece.objects.create(
        job=awarded, piece_cid=AWARDED_PIECE, piece_size=2048, payload_cid=cids["result_cid"],
        node=node,
    )  # fmt: skip
    award(
        awarded, piece_cid=AWARDED_PIECE, provider="f01234", piece_size=2048, notary=notary,
        chain_state="landed", claim_id=4242, chain_provider="f01234", epoch=3_999_000,
    )  # fmt: skip
    # its claim on chain, by the holder, and the holder's published address
    Claim.objects.create(
        claim_id=4242, provider=1234, client=5678, piece_cid=AWARDED_PIECE, piece_size=2048,
        term_min=518400, term_max=5_000_000, term_start=4_000_000, sector=7, height=4_000_000,
    )  # fmt: skip
    address = to_binary(parse_text("/ip4/127.0.0.1/tcp/7777/http"))
    ProviderAddress.objects.create(
        provider="f01234", multiaddrs=[base64.b64encode(address).decode()],
        checked_at=timezone.now(),
    )  # fmt: skip
    reported = stored_result(stdout=b"reported <b>not markup</b>\n")
    rerun = stored_result(stdout=b"re-computed line\n")
    differs = make_job("job-diff", cids=reported, moderation=Job.Moderation.REJECTED,
                       finished_ago=timedelta(days=3))  # fmt: skip
    Decision.objects.create(
        job=differs, action=Decision.Action.REJECT, reason="re-run differs", actor="user:mona"
    )
    Reexecution.objects.create(
        job=differs, state=Reexecution.State.MISMATCH, reason="policy", requested_by="policy",
        finished_at=timezone.now(), ran_by="dashboard-host:1", result_cid=rerun["result_cid"],
        diff=[{"path": "stdout", "reported": reported["stdout_cid"], "rerun": rerun["stdout_cid"]}],
    )  # fmt: skip
