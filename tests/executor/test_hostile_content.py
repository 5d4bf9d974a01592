"""Content built to cost more than it weighs, as a job's input and as an embedded-store import.

Repeated blocks are legitimate UnixFS, so the defences are limits on what lands on disk:
a job's inputs are checked against their limit from the sizes their DAGs declare before
anything is written, and counted again while writing; a file whose blocks hold more than it
declares is refused; fetching stops at the job's wall time and on cancel; a CAR import
counts its blocks at what they take on disk and is all or nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from executor.car import CarError
from executor.embedded_store import EmbeddedStore
from executor.run import JobCancelled, JobFailed, run_job
from executor.spec import parse_spec
from executor.storage import ENTRY_COST, FetchLimit, LimitExceeded, StorageError, declared_size
from executor.unixfs import cid_text
from executor.wasm import ModuleCache
from tests.executor import hostile_dags as dags
from tests.executor import wat_modules as wat

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


class CountingStore(EmbeddedStore):
    """The embedded store, counting the bytes its `get` writes."""

    written = 0

    def get(self, cid, dest, limit=None):  # type: ignore[no-untyped-def]
        try:
            return super().get(cid, dest, limit)
        finally:
            self.written += sum(
                p.stat().st_size for p in Path(dest).parent.rglob("*") if p.is_file()
            )


def job(store: EmbeddedStore, root: bytes, path: str = "/inputs/data", **limits: object) -> object:
    module = store.add_bytes(wat.exit_with(0))
    return parse_spec(
        {
            "engine": "wasm",
            "wasm": {"module": module},
            "inputs": [{"cid": cid_text(root), "path": path}],
            "limits": limits,
        }
    )


def test_an_expanding_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "ipfs")
    # 2 GiB of file from a 1 MiB leaf linked 2048 times: about 1 MB of blocks
    root = dags.repeated_leaf_file(store.put_block, MiB, 2048)
    assert store.size(cid_text(root)) == 2048 * MiB
    with pytest.raises(JobFailed, match="inputs.0: the inputs declare more than their limit"):
        run_job(job(store, root), store, cache=ModuleCache(None), input_limit=64 * MiB)
    assert store.written == 0


def test_the_job_limit_and_the_node_limit_both_apply(store: EmbeddedStore) -> None:
    root = dags.repeated_leaf_file(store.put_block, MiB, 8)  # 8 MiB, honest
    cache = ModuleCache(None)
    assert run_job(job(store, root), store, cache=cache, input_limit=16 * MiB).exit_code == 0
    with pytest.raises(JobFailed, match="limit of 4194304 bytes"):
        run_job(job(store, root, input_bytes=4 * MiB), store, cache=cache, input_limit=16 * MiB)
    with pytest.raises(JobFailed, match="limit of 4194304 bytes"):
        run_job(job(store, root), store, cache=cache, input_limit=4 * MiB)


def test_a_folder_linked_many_times_is_counted_as_written_and_walked_once(
    store: EmbeddedStore,
) -> None:
    # 2**40 one-byte files from 42 blocks: the walk must not visit them one by one
    root = dags.doubling_dirs(store.put_block, 40)
    with pytest.raises(LimitExceeded):
        declared_size(store, cid_text(root), FetchLimit(1 << 50))
    small = dags.doubling_dirs(store.put_block, 3)  # 8 files of 1 byte, 15 folders
    assert (
        declared_size(store, cid_text(small), FetchLimit(1 << 30))
        == 8 * (ENTRY_COST + 1) + (1 + 2 + 4 + 8) * ENTRY_COST
    )


def test_many_empty_entries_count_against_the_limit(store: EmbeddedStore) -> None:
    root = dags.doubling_dirs(store.put_block, 12)  # 4096 files, 8191 folders, 4 KiB of bytes
    with pytest.raises(JobFailed, match="declare more than their limit"):
        run_job(job(store, root), store, cache=ModuleCache(None), input_limit=16 * MiB)


def test_a_file_whose_blocks_hold_more_than_it_declares_is_refused(store: EmbeddedStore) -> None:
    root = dags.lying_file(store.put_block, declared=10, actual=MiB)
    with pytest.raises(StorageError, match="declares 10 bytes but its blocks hold more"):
        store.cat(cid_text(root))
    with pytest.raises(JobFailed, match="declares 10 bytes but its blocks hold more"):
        run_job(job(store, root), store, cache=ModuleCache(None))
    short = dags.lying_file(store.put_block, declared=MiB, actual=10)
    with pytest.raises(StorageError, match=f"declares {MiB} bytes but its blocks hold 10"):
        store.cat(cid_text(short))


def test_fetching_stops_at_the_jobs_wall_time(store: EmbeddedStore) -> None:
    root = dags.repeated_leaf_file(store.put_block, MiB, 2048)  # 2 GiB, honest
    spec = job(store, root, timeout_s=0.05)
    with pytest.raises(JobFailed, match="wall-time limit exceeded while fetching inputs.0"):
        run_job(spec, store, cache=ModuleCache(None), input_limit=4 << 30)


def test_fetching_stops_when_the_job_is_cancelled(store: EmbeddedStore) -> None:
    root = dags.repeated_leaf_file(store.put_block, MiB, 2048)
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    try:
        with pytest.raises(JobCancelled, match="cancelled while fetching inputs"):
            run_job(
                job(store, root), store, cache=ModuleCache(None), cancel=cancel, input_limit=4 << 30
            )
    finally:
        timer.cancel()


def test_declared_sizes_are_also_spent_while_writing(store: EmbeddedStore, tmp_path: Path) -> None:
    root = cid_text(dags.repeated_leaf_file(store.put_block, MiB, 8))
    limit = FetchLimit(4 * MiB)
    with pytest.raises(LimitExceeded):
        store.get(root, tmp_path / "out", limit)
    assert not (tmp_path / "out").exists()


# --- CAR imports --------------------------------------------------------------------------


def test_tiny_blocks_count_at_what_they_take_on_disk(store: EmbeddedStore) -> None:
    car, root = dags.many_tiny_blocks_car(5000)  # about 440 KB of CAR, 5000 files (20 MB) on disk
    assert len(car) < 500_000
    with pytest.raises(LimitExceeded, match="on disk"):
        store.import_car(_io(car), max_bytes=1_000_000)
    assert not store.has(cid_text(root))
    assert store.import_car(_io(car), max_bytes=5000 * (ENTRY_COST + 4) + 1_000_000) == [
        cid_text(root)
    ]


def test_a_truncated_car_leaves_nothing(store: EmbeddedStore) -> None:
    car, root = dags.many_tiny_blocks_car(500)
    with pytest.raises(CarError):
        store.import_car(_io(car[: len(car) // 2]))
    assert _block_files(store) == 0
    assert not store.has(cid_text(root))


def test_a_car_whose_root_is_missing_is_refused_naming_it(store: EmbeddedStore) -> None:
    blocks: list[tuple[bytes, bytes]] = []
    leaf = dags.raw_leaf(lambda c, b: blocks.append((c, b)), b"hello")
    absent = dags.raw_leaf(lambda c, b: None, b"not in the CAR")
    car = dags.car_of(absent, blocks)
    with pytest.raises(CarError, match=f"root {cid_text(absent)} is neither in the CAR"):
        store.import_car(_io(car))
    assert not store.has_block(leaf)
    # once the root is stored whole, a CAR naming it is fine
    store.put_block(absent, b"not in the CAR")
    assert store.import_car(_io(car)) == [cid_text(absent)]


def test_a_car_missing_a_block_under_its_root_is_refused(store: EmbeddedStore) -> None:
    blocks: list[tuple[bytes, bytes]] = []
    root = dags.repeated_leaf_file(lambda c, b: blocks.append((c, b)), 1000, 3)
    leaf, node = blocks[0], blocks[-1]
    with pytest.raises(CarError, match=f"needs {cid_text(leaf[0])}"):
        store.import_car(_io(dags.car_of(root, [node])))
    assert _block_files(store) == 0


def test_a_killed_import_leaves_a_staging_directory_that_the_next_open_sweeps(
    tmp_path: Path,
) -> None:
    staging = tmp_path / "ipfs" / "staging"
    staging.mkdir(parents=True)
    dead = staging / "car-999999999-1-0"  # no such process
    (dead / "blocks").mkdir(parents=True)
    (dead / "blocks" / "x").write_bytes(b"left behind")
    EmbeddedStore(tmp_path / "ipfs")
    assert not dead.exists()


def _io(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def _block_files(store: EmbeddedStore) -> int:
    return sum(1 for p in (store.root / "blocks").rglob("*") if p.is_file())
