"""How new a result is, measured on synthetic jobs whose answer is known: copies of an input
(as it is, a byte appended or prepended, gzip, zstd), a blessed file re-packed, another
node's result copied, and genuine transforms. Each band is asserted, with the source named.
Runs on SQLite and, in CI, on PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from pathlib import Path

import pytest
import zstandard

from chain_scanner.models import BlessedCid
from dashboard.content import index
from dashboard.jobs import services as jobs
from dashboard.models import IndexedContent, Job, JobInput, Novelty
from dashboard.novelty import services as novelty
from dashboard.worker import measure_novelty
from executor.embedded_store import EmbeddedStore
from tests.dashboard.chain_rows import EPOCH, scanned_at

pytestmark = pytest.mark.django_db

MIB = 1 << 20


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def data(seed: int, size: int = MIB) -> bytes:
    return random.Random(seed).randbytes(size)


def text(seed: int, size: int = MIB) -> bytes:
    """Words from a small vocabulary: compressible, yet not repeating itself."""
    rng = random.Random(seed)
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(500)
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def add_file(store: EmbeddedStore, body: bytes) -> str:
    return store.add_bytes(body)


def add_result(store: EmbeddedStore, tmp_path: Path, outputs: dict[str, bytes]) -> str:
    """A result directory as the executor writes it: outputs/, stdout, stderr, exitCode."""
    root = tmp_path / f"result-{len(list(tmp_path.glob('result-*')))}"
    (root / "outputs").mkdir(parents=True)
    for name, body in outputs.items():
        (root / "outputs" / name).write_bytes(body)
    (root / "stdout").write_bytes(b"done\n")
    (root / "stderr").write_bytes(b"")
    (root / "exitCode").write_text("0")
    return store.add_path(root)[-1].cid


def submitted(job_id: str, inputs: list[str], module: str = "bafkqaaa") -> Job:
    job = Job.objects.create(
        id=job_id,
        engine="wasm",
        spec={
            "engine": "wasm",
            "wasm": {"module": module},
            "inputs": [{"cid": c, "path": f"/in/{i}"} for i, c in enumerate(inputs)],
        },
        spec_digest="0" * 64,
        state=Job.State.RUNNING,
    )
    for position, cid in enumerate(inputs):
        JobInput.objects.create(job=job, position=position, cid=cid, path=f"/in/{position}")
    return job


def record(job: Job, result_cid: str) -> None:
    jobs.record_result(
        job_id=job.id,
        result=jobs.ResultIn(
            result_cid=result_cid,
            exit_code=0,
            stdout_cid="",
            stderr_cid="",
            outputs_cid="",
            size_bytes=None,
            runtime_ms=1,
            provider="",
        ),
    )


def measure_all() -> None:
    """What the worker does between jobs: measure every queued result."""
    while (row := novelty.claim_next(worker="test")) is not None:
        measure_novelty(row, worker="test")


def run(
    job_id: str, store: EmbeddedStore, tmp_path: Path, inputs: list[str], out: bytes
) -> Novelty:
    job = submitted(job_id, inputs)
    record(job, add_result(store, tmp_path, {"out.bin": out}))
    measure_all()
    return Novelty.objects.get(job=job)


def percent(row: Novelty) -> float:
    assert row.state == Novelty.State.MEASURED, row.error
    assert row.total_bytes
    return 100 * (row.novel_bytes or 0) / row.total_bytes


def top(row: Novelty) -> dict[str, object]:
    assert row.sources
    return row.sources[0]


def test_an_identity_copy_of_an_input_is_at_most_1_percent_new(store, tmp_path) -> None:
    body = data(1)
    source = add_file(store, body)
    row = run("identity", store, tmp_path, [source], body)
    assert percent(row) <= 1
    assert top(row) == {"cid": source, "kind": "input", "job_id": None, "bytes": len(body)}
    assert row.total_bytes == len(body) + len(b"done\n") + len(b"0")  # stdout and exitCode


def test_one_byte_appended_is_at_most_1_percent_new(store, tmp_path) -> None:
    body = data(2)
    source = add_file(store, body)
    row = run("append", store, tmp_path, [source], body + b"!")
    assert percent(row) <= 1
    assert top(row)["cid"] == source and top(row)["kind"] == "input"


def test_one_byte_prepended_is_at_most_5_percent_new(store, tmp_path) -> None:
    """Content-defined chunks realign after the first one: fixed blocks alone would find
    nothing here."""
    body = data(3)
    source = add_file(store, body)
    row = run("prepend", store, tmp_path, [source], b"!" + body)
    assert percent(row) <= 5
    assert top(row)["cid"] == source


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, lambda body: zstandard.ZstdCompressor(level=3).compress(body)],
    ids=["gzip", "zstd"],
)
def test_a_compressed_copy_of_an_input_is_at_most_5_percent_new(store, tmp_path, compress) -> None:
    body = text(4)
    source = add_file(store, body)
    packed = compress(body)
    assert len(packed) < len(body) // 2
    row = run("compressed", store, tmp_path, [source], packed)
    assert percent(row) <= 5
    assert top(row)["cid"] == source and top(row)["kind"] == "input"


def test_a_repacked_blessed_file_is_found_through_the_index(store, tmp_path) -> None:
    """The blessed file is not among the job's inputs: it was uploaded, and its CID is
    blessed on chain. The result is a tar that holds its bytes under another name."""
    body = data(5)
    blessed = add_file(store, body)
    index.note([blessed], IndexedContent.Origin.UPLOAD)
    BlessedCid.objects.create(cid=blessed, active_until=EPOCH + 10**6)
    scanned_at()
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        info = tarfile.TarInfo("renamed.bin")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    unrelated = add_file(store, data(6, 4096))
    row = run("repack", store, tmp_path, [unrelated], packed.getvalue())
    assert percent(row) <= 5
    assert top(row)["cid"] == blessed and top(row)["kind"] == "blessed"


def test_an_unblessed_upload_is_no_source(store, tmp_path) -> None:
    """Bytes nobody was given DataCap for, and no job read, are not a copy of anything
    subsidised."""
    body = data(7)
    upload = add_file(store, body)
    index.note([upload], IndexedContent.Origin.UPLOAD)
    unrelated = add_file(store, data(8, 4096))
    row = run("unblessed", store, tmp_path, [unrelated], body)
    assert percent(row) >= 99
    assert row.sources == []


def test_a_second_node_reporting_a_copy_of_another_nodes_result(store, tmp_path) -> None:
    body = data(9, 8 * MIB)
    source = add_file(store, body)
    digests = b"".join(
        hashlib.sha256(body[i : i + 4096]).digest() for i in range(0, len(body), 4096)
    )
    first = run("first", store, tmp_path, [source], digests)
    assert percent(first) >= 95
    # Re-packed: the same bytes under another name, so another result CID.
    job = submitted("second", [source])
    record(job, add_result(store, tmp_path, {"copied.bin": digests}))
    measure_all()
    second = Novelty.objects.get(job=job)
    assert percent(second) <= 5
    assert top(second)["kind"] == "result" and top(second)["job_id"] == "first"
    # The very same result CID reported for a third job: the first job is still the source,
    # and the first job is not a copy of the later ones.
    third = submitted("third", [source])
    record(third, first.result_cid)
    measure_all()
    assert top(Novelty.objects.get(job=third))["job_id"] == "first"
    assert Novelty.objects.get(job_id="first").novel_bytes == first.novel_bytes


def test_a_hash_of_every_4_kib_block_is_at_least_95_percent_new(store, tmp_path) -> None:
    body = data(10, 8 * MIB)
    source = add_file(store, body)
    out = b"".join(hashlib.sha256(body[i : i + 4096]).digest() for i in range(0, len(body), 4096))
    row = run("hashes", store, tmp_path, [source], out)
    assert percent(row) >= 95


def test_an_image_transform_is_at_least_95_percent_new(store, tmp_path) -> None:
    """A seam-carving-like job: every row of a grey image loses its lowest-energy pixel, so
    every output byte sits at another offset with other neighbours."""
    width, height = 1024, 1024
    image = data(11, width * height)
    source = add_file(store, image)
    rows = []
    for y in range(height):
        row = image[y * width : (y + 1) * width]
        energy = [
            abs(row[x] - row[x - 1]) + abs(row[(x + 1) % width] - row[x]) for x in range(width)
        ]
        seam = energy.index(min(energy))
        carved = row[:seam] + row[seam + 1 :]
        rows.append(
            bytes((a + b) // 2 for a, b in zip(carved, carved[1:] + carved[:1], strict=True))
        )
    row = run("carve", store, tmp_path, [source], b"".join(rows))
    assert percent(row) >= 95


def test_a_job_writing_out_its_own_module_copies_an_input(store, tmp_path) -> None:
    module = data(12, 300_000)
    cid = add_file(store, module)
    job = submitted("quine", [], module=cid)
    record(job, add_result(store, tmp_path, {"me.wasm": module}))
    measure_all()
    row = Novelty.objects.get(job=job)
    assert percent(row) <= 1
    assert top(row) == {"cid": cid, "kind": "input", "job_id": None, "bytes": len(module)}


def test_a_blessed_file_repacked_as_a_car_is_at_most_5_percent_new(store, tmp_path) -> None:
    """The same bytes as another piece: the blessed file's own CAR, written out as a result
    (its blocks with CID headers between them), found through an earlier job's input."""
    body = data(13, 3 * MIB)
    blessed = add_file(store, body)
    submitted("reader", [blessed])  # an earlier job read it
    index.note([blessed], IndexedContent.Origin.INPUT)
    car = io.BytesIO()
    store.export_car(blessed, car)
    row = run("car-repack", store, tmp_path, [add_file(store, data(14, 4096))], car.getvalue())
    assert percent(row) <= 5
    assert top(row)["cid"] == blessed and top(row)["kind"] == "blessed"
