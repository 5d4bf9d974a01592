"""The Storage contract, run on both backends: a real IPFS node (js-ipfs through KuboClient)
and the embedded store. Then the two side by side: the same CIDs, and CARs that move
between them."""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from executor.car import CarReader
from executor.cids import cid_from_bytes
from executor.embedded_store import EmbeddedStore
from executor.kubo import KuboClient
from executor.storage import ContentNotFound, Storage, StorageError
from tests.executor.ipfs_vectors import FOLDER_CIDV1, GOLDEN, golden_bytes, make_folder

ABSENT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"


@pytest.fixture(params=["jsipfs", "embedded"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "jsipfs":
        return request.getfixturevalue("kubo")
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.fixture
def embedded(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def unique_folder(parent: Path) -> Path:
    """A folder no store has seen: nested, with odd names, a dotfile, an empty directory
    and a file of several chunks, its bytes new on every run."""
    rng = random.Random(time.time_ns())
    root = parent / f"unique-{rng.getrandbits(64):x}"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_bytes(b"a\n")
    (root / ".env").write_bytes(b"K=V\n")
    (root / "späce name.txt").write_bytes(rng.randbytes(100))
    (root / "nested" / "chunks.bin").write_bytes(rng.randbytes(3 * 262144 + 5))
    (root / "nested" / "deeper" / "z").write_bytes(os.urandom(32))
    return root


# --- one backend at a time ------------------------------------------------------------------


def test_is_a_storage(storage: Storage) -> None:
    assert isinstance(storage, Storage)


@pytest.mark.parametrize("name", ["empty", "hello", "c256k", "c256k1", "c1m", "c3m"])
def test_golden_files(storage: Storage, name: str) -> None:
    data = golden_bytes()[name]
    cid = storage.add_bytes(data)
    assert cid == GOLDEN[name][2]
    assert storage.cat(cid) == data
    assert storage.is_dir(cid) is False
    assert storage.has(cid)


def test_golden_folder(storage: Storage, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "in")
    entries = storage.add_path(folder)
    assert entries[-1].path == "foldert"
    assert entries[-1].cid == FOLDER_CIDV1
    assert sorted(e.path for e in entries) == [
        "foldert",
        "foldert/a.txt",
        "foldert/sub",
        "foldert/sub/b.txt",
        "foldert/sub/big.bin",
    ]
    assert storage.is_dir(FOLDER_CIDV1)
    assert [(e.name, e.size, e.is_dir) for e in storage.ls(FOLDER_CIDV1)] == [
        ("a.txt", 2, False),
        ("sub", 0, True),
    ]
    assert tree(storage.get(FOLDER_CIDV1, tmp_path / "out")) == tree(folder)
    storage.pin(FOLDER_CIDV1)
    assert storage.has(FOLDER_CIDV1)


def test_iter_cat_pieces(storage: Storage) -> None:
    data = golden_bytes()["c1m"] + b"tail"
    cid = storage.add_bytes(data)
    pieces = list(storage.iter_cat(cid, chunk_size=100_000))
    assert max(len(p) for p in pieces) <= 100_000
    assert b"".join(pieces) == data


def test_wrong_kinds_and_bad_input(storage: Storage, tmp_path: Path) -> None:
    folder = storage.add_path(make_folder(tmp_path))[-1].cid
    with pytest.raises(StorageError, match="directory"):
        storage.cat(folder)
    (tmp_path / "taken").mkdir()
    with pytest.raises(StorageError, match="already exists"):
        storage.get(folder, tmp_path / "taken")
    with pytest.raises(StorageError, match="no such file"):
        storage.add_path(tmp_path / "missing")
    (tmp_path / "folder-with-link").mkdir()
    (tmp_path / "folder-with-link" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(StorageError, match="symbolic link"):
        storage.add_path(tmp_path / "folder-with-link")
    with pytest.raises(StorageError):
        storage.import_car(io.BytesIO(b"not a CAR"))


def test_ls_of_a_file_is_refused(storage: Storage) -> None:
    cid = storage.add_bytes(b"hello ipfs\n")
    with pytest.raises(StorageError, match="not a directory"):
        storage.ls(cid)


def test_unknown_cid(storage: Storage, tmp_path: Path) -> None:
    if isinstance(storage, KuboClient):
        storage.find_timeout = 0.5  # each miss costs this long on js-ipfs
    calls: list[Callable[[str], object]] = [
        storage.cat,
        storage.ls,
        storage.is_dir,
        storage.pin,
        lambda cid: storage.get(cid, tmp_path / "x"),
        lambda cid: storage.export_car(cid, io.BytesIO()),
    ]
    for call in calls:
        with pytest.raises(ContentNotFound, match=ABSENT):
            call(ABSENT)
    assert storage.has(ABSENT) is False
    assert not (tmp_path / "x").exists()


def test_car_round_trip(storage: Storage, tmp_path: Path) -> None:
    root = storage.add_path(unique_folder(tmp_path))[-1].cid
    car = io.BytesIO()
    storage.export_car(root, car)
    reader = CarReader(io.BytesIO(car.getvalue()))
    assert [cid_from_bytes(r) for r in reader.roots] == [root]
    blocks = [cid_from_bytes(cid) for cid, _parts, _block in reader]
    assert blocks[0] == root  # depth first from the root, as `ipfs dag export` writes
    assert len(blocks) == len(set(blocks))
    car.seek(0)
    assert storage.import_car(car) == [root]


# --- both backends side by side -------------------------------------------------------------


def test_same_cids_from_either_backend(
    kubo: KuboClient, embedded: EmbeddedStore, tmp_path: Path
) -> None:
    folder = unique_folder(tmp_path)
    from_node = kubo.add_path(folder)
    from_disk = embedded.add_path(folder)
    # Same lines in the same order (js-ipfs omits empty directories; the client adds them).
    assert from_node == from_disk
    assert len(from_node) == 9  # the dotfile and the empty directory included

    root = from_node[-1].cid
    directories = [e.cid for e in from_node if kubo.is_dir(e.cid)]
    assert len(directories) == 4
    for cid in directories:
        assert kubo.ls(cid) == embedded.ls(cid)
    for data in (b"", b"x", golden_bytes()["c256k1"], os.urandom(700_000)):
        assert kubo.add_bytes(data) == embedded.add_bytes(data)
    assert tree(kubo.get(root, tmp_path / "n")) == tree(embedded.get(root, tmp_path / "e"))


def test_car_from_the_embedded_store_into_the_node(
    kubo: KuboClient, embedded: EmbeddedStore, tmp_path: Path
) -> None:
    folder = unique_folder(tmp_path)
    root = embedded.add_path(folder)[-1].cid
    car = io.BytesIO()
    embedded.export_car(root, car)
    kubo.find_timeout = 0.5  # the miss below costs this long on js-ipfs
    assert kubo.has(root) is False
    car.seek(0)
    assert kubo.import_car(car) == [root]
    assert kubo.has(root)
    assert tree(kubo.get(root, tmp_path / "out")) == tree(folder)


def test_car_from_the_node_into_the_embedded_store(
    kubo: KuboClient, embedded: EmbeddedStore, tmp_path: Path
) -> None:
    folder = unique_folder(tmp_path)
    root = kubo.add_path(folder)[-1].cid
    car = io.BytesIO()
    kubo.export_car(root, car)
    assert embedded.has(root) is False
    car.seek(0)
    assert embedded.import_car(car) == [root]
    assert embedded.has(root)
    assert tree(embedded.get(root, tmp_path / "out")) == tree(folder)


def test_both_export_the_same_car(
    kubo: KuboClient, embedded: EmbeddedStore, tmp_path: Path
) -> None:
    folder = unique_folder(tmp_path)
    root = kubo.add_path(folder)[-1].cid
    assert embedded.add_path(folder)[-1].cid == root
    from_node, from_disk = io.BytesIO(), io.BytesIO()
    kubo.export_car(root, from_node)
    embedded.export_car(root, from_disk)
    assert from_node.getvalue() == from_disk.getvalue()
