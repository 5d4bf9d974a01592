"""The embedded IPFS store: Kubo's CIDs, reading back, CAR round trips, damage and crashes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor.backend import open_storage
from executor.car import CarError, CarReader, write_car
from executor.embedded_store import EmbeddedStore
from executor.storage import (
    AddedEntry,
    ContentNotFound,
    DirEntry,
    Storage,
    StorageError,
)
from executor.unixfs import (
    CHUNK_SIZE,
    CODEC_DAG_PB,
    DataType,
    PBLink,
    PBNode,
    UnixFSData,
    cid_text,
    cid_to_bytes,
    encode_pbnode,
    encode_unixfs,
    hash_block,
    import_file,
)
from tests.executor.ipfs_vectors import FOLDER_CIDV1, GOLDEN, golden_bytes, make_folder

ROOT = Path(__file__).resolve().parents[2]
# Valid, but stored nowhere: the CID of b"not stored".
ABSENT = cid_text(hash_block(b"not stored", 0x55))


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


def _tree(path: Path) -> dict[str, bytes | None]:
    """Every entry under `path`: file bytes, or None for a directory."""
    return {
        str(entry.relative_to(path)): None if entry.is_dir() else entry.read_bytes()
        for entry in sorted(path.rglob("*"))
    }


def _block_files(store: EmbeddedStore) -> list[Path]:
    return [p for p in (store.root / "blocks").rglob("*") if p.is_file()]


# --- the CIDs Kubo gives ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GOLDEN))
def test_add_bytes_gives_kubo_cid_and_cat_returns_the_bytes(
    store: EmbeddedStore, name: str
) -> None:
    data = golden_bytes()[name]
    cid = store.add_bytes(data)
    assert cid == GOLDEN[name][2]
    assert store.cat(cid) == data
    assert not store.is_dir(cid)


def test_add_path_of_a_file_is_one_entry_named_after_it(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    path = tmp_path / "c3m.bin"
    path.write_bytes(golden_bytes()["c3m"])
    [entry] = store.add_path(path)
    assert entry.path == "c3m.bin"
    assert entry.cid == GOLDEN["c3m"][2]
    assert entry.size > len(golden_bytes()["c3m"])  # the DAG's cumulative size


def test_folder_gives_the_golden_cid_with_ipfs_add_r_output_order(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    entries = store.add_path(make_folder(tmp_path))
    assert [entry.path for entry in entries] == [
        "foldert/a.txt",
        "foldert/sub/b.txt",
        "foldert/sub/big.bin",
        "foldert/sub",
        "foldert",
    ]
    assert entries[-1].cid == FOLDER_CIDV1
    assert entries[2].cid == GOLDEN["c1m"][2]
    assert entries[0].cid == store.add_bytes(b"a\n")
    assert entries[0].size == 2


def test_ls_and_is_dir(store: EmbeddedStore, tmp_path: Path) -> None:
    entries = store.add_path(make_folder(tmp_path))
    by_path = {entry.path: entry.cid for entry in entries}
    assert store.is_dir(FOLDER_CIDV1)
    assert store.ls(FOLDER_CIDV1) == [
        DirEntry("a.txt", by_path["foldert/a.txt"], 2, False),
        DirEntry("sub", by_path["foldert/sub"], 0, True),
    ]
    assert store.ls(by_path["foldert/sub"]) == [
        DirEntry("b.txt", by_path["foldert/sub/b.txt"], 3, False),
        DirEntry("big.bin", GOLDEN["c1m"][2], 1 << 20, False),
    ]


def test_get_writes_the_same_tree_back(store: EmbeddedStore, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    store.add_path(folder)
    out = store.get(FOLDER_CIDV1, tmp_path / "out" / "copy")
    assert out == tmp_path / "out" / "copy"
    assert _tree(out) == _tree(folder)
    single = store.get(GOLDEN["c1m"][2], tmp_path / "big.bin")
    assert single.read_bytes() == golden_bytes()["c1m"]


def test_hidden_files_and_empty_folders_are_kept(store: EmbeddedStore, tmp_path: Path) -> None:
    folder = tmp_path / "res"
    (folder / "outputs" / "empty").mkdir(parents=True)
    (folder / ".hidden").write_bytes(b"dot\n")
    (folder / "outputs" / "Z").write_bytes(b"")
    entries = store.add_path(folder)
    assert [entry.path for entry in entries] == [
        "res/.hidden",
        "res/outputs/Z",
        "res/outputs/empty",
        "res/outputs",
        "res",
    ]
    store.get(entries[-1].cid, tmp_path / "back")
    assert _tree(tmp_path / "back") == _tree(folder)


def test_cidv0_content_imported_from_a_car_reads_by_its_qm_cid(
    store: EmbeddedStore,
) -> None:
    """Kubo's default DAG (dag-pb leaves, CIDv0 links) reads like the raw-leaf one."""
    data = golden_bytes()["c3m"]
    blocks: dict[bytes, bytes] = {}
    root = import_file(io.BytesIO(data), blocks.__setitem__, cid_version=0)
    car = io.BytesIO()
    write_car(car, [root.cid], blocks.items())
    car.seek(0)
    [canonical] = store.import_car(car)
    assert cid_text(root.cid) == GOLDEN["c3m"][1]
    assert store.cat(GOLDEN["c3m"][1]) == data
    assert store.cat(canonical) == data


# --- errors ------------------------------------------------------------------------------------


def test_unknown_content_names_the_cid(store: EmbeddedStore, tmp_path: Path) -> None:
    for call in (store.cat, store.ls, store.is_dir, store.pin):
        with pytest.raises(ContentNotFound, match=ABSENT):
            call(ABSENT)
    with pytest.raises(ContentNotFound, match=ABSENT):
        store.get(ABSENT, tmp_path / "x")
    with pytest.raises(ContentNotFound, match=ABSENT):
        store.export_car(ABSENT, io.BytesIO())
    assert not store.has(ABSENT)
    assert not (tmp_path / "x").exists()


def test_bad_requests_give_one_line_errors(store: EmbeddedStore, tmp_path: Path) -> None:
    store.add_path(make_folder(tmp_path))
    with pytest.raises(StorageError, match="not a CID"):
        store.cat("not-a-cid")
    with pytest.raises(StorageError, match="is a directory"):
        store.cat(FOLDER_CIDV1)
    with pytest.raises(StorageError, match="not a directory"):
        store.ls(GOLDEN["c1m"][2])
    with pytest.raises(StorageError, match="already exists"):
        store.get(FOLDER_CIDV1, tmp_path / "foldert")
    with pytest.raises(StorageError, match="no such file or directory"):
        store.add_path(tmp_path / "missing")


def test_symlinks_and_special_files_are_refused(store: EmbeddedStore, tmp_path: Path) -> None:
    """A job could otherwise publish any host file by linking to it from its outputs."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(StorageError, match="symbolic links"):
        store.add_path(folder)
    (folder / "passwd").unlink()
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(StorageError, match="symbolic link"):
        store.add_path(tmp_path / "link")
    os.mkfifo(folder / "pipe")
    with pytest.raises(StorageError, match="not a regular file"):
        store.add_path(folder)


def test_unsafe_names_in_a_foreign_dag_are_not_written(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    leaf = store.add_bytes(b"owned")
    for name in (b"..", b"a/../../b", b""):
        directory = encode_pbnode(
            PBNode(
                (PBLink(cid_to_bytes(leaf), name, 5),),
                encode_unixfs(UnixFSData(DataType.DIRECTORY)),
            )
        )
        cid = hash_block(directory, CODEC_DAG_PB)
        store.put_block(cid, directory)
        with pytest.raises(StorageError, match="unsafe entry name"):
            store.get(cid_text(cid), tmp_path / "dest")
        assert not (tmp_path / "dest").exists()
        assert not (tmp_path / "owned").exists()


# --- pins, presence, damage ----------------------------------------------------------------


def test_added_roots_are_pinned(store: EmbeddedStore, tmp_path: Path) -> None:
    hello = store.add_bytes(b"hello ipfs\n")
    store.add_path(make_folder(tmp_path))
    assert store.pins() == sorted([hello, FOLDER_CIDV1])
    store.pin(GOLDEN["c1m"][2])  # a subtree of the folder, given as stored
    assert GOLDEN["c1m"][2] in store.pins()
    # Any CID form names the same content; pins are kept canonical.
    store.pin(GOLDEN["hello"][2].upper())
    assert store.pins().count(hello) == 1


def test_has_is_false_when_any_block_is_missing(store: EmbeddedStore, tmp_path: Path) -> None:
    store.add_path(make_folder(tmp_path))
    assert store.has(FOLDER_CIDV1)
    blocks: dict[bytes, bytes] = {}
    import_file(io.BytesIO(golden_bytes()["c1m"][-CHUNK_SIZE:]), blocks.__setitem__)
    [(last_leaf, _)] = blocks.items()
    store._block_path(last_leaf[2:]).unlink()
    assert not store.has(FOLDER_CIDV1)
    with pytest.raises(ContentNotFound):
        store.pin(FOLDER_CIDV1)
    assert store.has(store.add_bytes(b"a\n"))


def test_a_damaged_block_is_detected_removed_and_repaired_by_adding_again(
    store: EmbeddedStore,
) -> None:
    data = golden_bytes()["c1m"]
    cid = store.add_bytes(data)
    victim = max(_block_files(store), key=lambda path: path.stat().st_size)
    victim.write_bytes(b"\x00" * victim.stat().st_size)
    with pytest.raises(StorageError, match="damaged on disk"):
        store.cat(cid)
    assert not victim.exists()
    assert store.add_bytes(data) == cid
    assert store.cat(cid) == data


def test_a_killed_add_never_leaves_a_partial_block(tmp_path: Path) -> None:
    """SIGKILL an add of endless data mid-way: every block file present is whole."""
    root = tmp_path / "ipfs"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\n"
            "from pathlib import Path\n"
            "from executor.embedded_store import EmbeddedStore\n"
            "from executor.unixfs import import_file\n"
            "class Endless:\n"
            "    def read(self, n): return os.urandom(n)\n"
            "import_file(Endless(), EmbeddedStore(Path(sys.argv[1])).put_block)\n",
            str(root),
        ],
        cwd=ROOT,
    )
    blocks = root / "blocks"

    def whole_blocks() -> int:  # not the shard folders, nor a block still being written
        return sum(1 for p in blocks.rglob("*") if p.is_file() and not p.name.startswith("."))

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if blocks.is_dir() and whole_blocks() > 200:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child stored no blocks in 30 s")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    store = EmbeddedStore(root)
    whole = [path for path in _block_files(store) if not path.name.startswith(".")]
    assert len(whole) > 100
    for path in whole:
        multihash = base64.b32decode(path.name.upper() + "=" * (-len(path.name) % 8))
        assert hashlib.sha256(path.read_bytes()).digest() == multihash[2:], path


def test_adding_streams_in_constant_memory(store: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "big"
    with path.open("wb") as handle:
        for _ in range(48):
            handle.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        [entry] = store.add_path(path)
        _, add_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        for piece in store.iter_cat(entry.cid):
            digest.update(piece)
        _, cat_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert add_peak < 4 << 20, add_peak
    assert cat_peak < 4 << 20, cat_peak
    assert digest.digest() == hashlib.sha256(path.read_bytes()).digest()


def test_iter_cat_pieces_respect_chunk_size(store: EmbeddedStore) -> None:
    cid = store.add_bytes(golden_bytes()["c256k1"])
    pieces = list(store.iter_cat(cid, chunk_size=100_000))
    assert max(len(piece) for piece in pieces) <= 100_000
    assert b"".join(pieces) == golden_bytes()["c256k1"]


# --- CAR ---------------------------------------------------------------------------------------


def test_car_export_import_into_a_fresh_store(store: EmbeddedStore, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    store.add_path(folder)
    car = io.BytesIO()
    store.export_car(FOLDER_CIDV1, car)
    car.seek(0)
    reader = CarReader(car)
    order = [cid_text(cid) for cid, _, _ in reader]
    assert order[0] == FOLDER_CIDV1  # depth first from the root, as `ipfs dag export`
    assert len(order) == len(set(order)) == 9  # 2 dirs, 2 small files, c1m: 4 leaves + node
    car.seek(0)
    fresh = EmbeddedStore(tmp_path / "fresh")
    assert fresh.import_car(car) == [FOLDER_CIDV1]
    assert fresh.pins() == [FOLDER_CIDV1]
    fresh.get(FOLDER_CIDV1, tmp_path / "copy")
    assert _tree(tmp_path / "copy") == _tree(folder)


def test_a_tampered_car_stores_nothing_bad(store: EmbeddedStore, tmp_path: Path) -> None:
    store.add_bytes(golden_bytes()["c1m"])
    car = io.BytesIO()
    store.export_car(GOLDEN["c1m"][2], car)
    raw = bytearray(car.getvalue())
    raw[-10] ^= 0xFF  # inside the last leaf
    fresh = EmbeddedStore(tmp_path / "fresh")
    with pytest.raises(CarError, match="does not match its hash"):
        fresh.import_car(io.BytesIO(bytes(raw)))
    for path in _block_files(fresh):
        multihash = base64.b32decode(path.name.upper() + "=" * (-len(path.name) % 8))
        assert hashlib.sha256(path.read_bytes()).digest() == multihash[2:]
    assert not fresh.has(GOLDEN["c1m"][2])
    assert fresh.pins() == []


def test_import_of_garbage_is_a_clear_storage_error(store: EmbeddedStore) -> None:
    with pytest.raises(StorageError, match="CAR"):
        store.import_car(io.BytesIO(b"\x05hello world"))


def test_hamt_sharded_directories_are_read(store: EmbeddedStore, tmp_path: Path) -> None:
    """A hand-built shard with a nested shard and an odd bit field lists and gets."""
    a, b, c = (cid_to_bytes(store.add_bytes(data)) for data in (b"A", b"B", b"C"))
    hamt = UnixFSData(DataType.HAMT_SHARD, data=b"\x00", hash_type=0x22, fanout=256)
    inner = encode_pbnode(PBNode((PBLink(c, b"7Fc.txt", 1),), encode_unixfs(hamt)))
    inner_cid = hash_block(inner, CODEC_DAG_PB)
    store.put_block(inner_cid, inner)
    top = encode_pbnode(
        PBNode(
            (
                PBLink(b, b"0Ab.txt", 1),
                PBLink(inner_cid, b"3F", len(inner) + 1),
                PBLink(a, b"F1a.txt", 1),
            ),
            encode_unixfs(hamt),
        )
    )
    top_cid = hash_block(top, CODEC_DAG_PB)
    store.put_block(top_cid, top)
    text = cid_text(top_cid)
    assert store.is_dir(text)
    assert [(entry.name, entry.size) for entry in store.ls(text)] == [
        ("a.txt", 1),
        ("b.txt", 1),
        ("c.txt", 1),
    ]
    store.get(text, tmp_path / "h")
    assert _tree(tmp_path / "h") == {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"}


def test_open_storage_without_an_api_url_is_the_embedded_store(tmp_path: Path) -> None:
    backend = open_storage(ipfs_api_url="", data_dir=tmp_path)
    assert isinstance(backend, EmbeddedStore)
    assert isinstance(backend, Storage)
    assert backend.root == tmp_path / "ipfs"
    assert backend.add_bytes(b"hello ipfs\n") == GOLDEN["hello"][2]


# --- properties --------------------------------------------------------------------------------

_sizes = st.one_of(
    st.integers(0, 3 * CHUNK_SIZE + 5),
    st.sampled_from([CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE]),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(size=_sizes, seed=st.integers(0, 2**32))
def test_add_then_cat_and_car_round_trip(tmp_path_factory, size: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    data = random.Random(seed).randbytes(size)
    base = tmp_path_factory.mktemp("prop")
    first = EmbeddedStore(base / "a")
    cid = first.add_bytes(data)
    assert first.cat(cid) == data
    car = io.BytesIO()
    first.export_car(cid, car)
    car.seek(0)
    second = EmbeddedStore(base / "b")
    assert second.import_car(car) == [cid]
    assert second.cat(cid) == data


_names = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in (".", ".."))
_trees = st.recursive(
    st.binary(max_size=300),
    lambda children: st.dictionaries(_names, children, max_size=4),
    max_leaves=12,
)


def _write(path: Path, node: bytes | dict) -> None:  # type: ignore[type-arg]
    if isinstance(node, bytes):
        path.write_bytes(node)
        return
    path.mkdir()
    for name, child in node.items():
        _write(path / name, child)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tree=st.dictionaries(_names, _trees, max_size=5))
def test_folders_round_trip_through_add_car_and_get(tmp_path_factory, tree: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    base = tmp_path_factory.mktemp("tree")
    _write(base / "in", tree)
    first = EmbeddedStore(base / "a")
    entries = first.add_path(base / "in")
    assert entries[-1].path == "in"
    assert all(isinstance(entry, AddedEntry) for entry in entries)
    car = io.BytesIO()
    first.export_car(entries[-1].cid, car)
    car.seek(0)
    second = EmbeddedStore(base / "b")
    assert second.import_car(car) == [entries[-1].cid]
    second.get(entries[-1].cid, base / "out")
    assert _tree(base / "out") == _tree(base / "in")
    # Adding the copy gives the same entries: CIDs depend on content only.
    assert [(e.path[3:], e.cid) for e in second.add_path(base / "out")] == [
        (e.path[2:], e.cid) for e in entries
    ]


_cid_bytes = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda data: hash_block(data, 0x55), st.binary(max_size=8)),
    st.builds(lambda data: hash_block(data, CODEC_DAG_PB), st.binary(max_size=8)),
    st.builds(lambda data: b"\x01\x71\x12\x20" + hashlib.sha256(data).digest(), st.binary()),
)
_unixfs = st.one_of(
    st.binary(max_size=30),
    st.builds(
        lambda kind, data, size, fanout: encode_unixfs(
            UnixFSData(kind, data=data, filesize=size, fanout=fanout)
        ),
        st.sampled_from(list(DataType)),
        st.none() | st.binary(max_size=10),
        st.none() | st.integers(0, 100),
        st.none() | st.sampled_from([0, 1, 16, 256]),
    ),
)
_foreign_blocks = st.one_of(
    st.binary(max_size=60),
    st.builds(
        lambda links, data: encode_pbnode(PBNode(tuple(links), data)),
        st.lists(
            st.builds(
                PBLink,
                hash=_cid_bytes,
                name=st.none() | st.sampled_from([b"a", b"", b"..", b"0Ax", b"FF", b"\xff"]),
                tsize=st.none() | st.integers(0, 10),
            ),
            max_size=4,
        ),
        st.none() | _unixfs,
    ),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(blocks=st.lists(_foreign_blocks, min_size=1, max_size=3))
def test_any_foreign_dag_gives_content_or_a_storage_error(tmp_path_factory, blocks) -> None:  # type: ignore[no-untyped-def]
    """Whatever a CAR brings in (blocks hash-valid, content arbitrary), every read either
    works or raises StorageError: never another exception, never a file outside dest."""
    base = tmp_path_factory.mktemp("foreign")
    store = EmbeddedStore(base / "ipfs")
    store.add_bytes(b"")  # something for links to find
    cids = [hash_block(block, CODEC_DAG_PB) for block in blocks]
    # Parents that lead into the foreign blocks: a directory and a file over all of them.
    for kind in (DataType.DIRECTORY, DataType.FILE):
        links = tuple(PBLink(cid, b"n%d" % i, 1) for i, cid in enumerate(cids))
        blocks.append(encode_pbnode(PBNode(links, encode_unixfs(UnixFSData(kind)))))
        cids.append(hash_block(blocks[-1], CODEC_DAG_PB))
    for cid, block in zip(cids, blocks, strict=True):
        store.put_block(cid, block)
    for cid in cids:
        text = cid_text(cid)
        calls = [
            lambda: store.cat(text),  # noqa: B023
            lambda: store.ls(text),  # noqa: B023
            lambda: store.is_dir(text),  # noqa: B023
            lambda: store.has(text),  # noqa: B023
            lambda: store.export_car(text, io.BytesIO()),  # noqa: B023
            lambda: store.get(text, base / "out" / "dest"),  # noqa: B023
        ]
        for call in calls:
            with contextlib.suppress(StorageError):
                call()
        if (base / "out").exists():
            assert {p.name for p in (base / "out").iterdir()} <= {"dest"}
            shutil.rmtree(base / "out")
