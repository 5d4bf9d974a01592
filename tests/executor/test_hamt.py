"""HAMT-sharded directories, built as `ipfs add --cid-version=1` builds them, checked against
an independent implementation with Kubo's defaults (npm ipfs-unixfs-importer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.embedded_store import EmbeddedStore
from executor.unixfs import DataType, decode_pbnode, decode_unixfs, murmur3_x64_64
from tests.executor.node_oracles import require_oracle, run_oracle

IMPORT = """
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, basename } from 'node:path'
function* walk (dir, rel) {
  const names = readdirSync(dir)
  if (names.length === 0) yield { path: rel }
  for (const name of names) {
    const full = join(dir, name)
    if (statSync(full).isDirectory()) yield* walk(full, `${rel}/${name}`)
    else yield { path: `${rel}/${name}`, content: readFileSync(full) }
  }
}
for (const top of process.argv.slice(2)) {
  let root
  const options = { cidVersion: 1, rawLeaves: true }
  for await (const entry of importer(walk(top, basename(top)), new MemoryBlockstore(), options)) {
    root = entry
  }
  console.log(root.cid.toString())
}
"""


def test_murmur3_x64_64_vectors() -> None:
    # h1 of MurmurHash3_x64_128, seed 0 (the first 8 bytes js multiformats gives, reversed)
    assert murmur3_x64_64(b"") == 0
    assert murmur3_x64_64(b"hello") == 0xCBD8A7B341BD9B02
    assert murmur3_x64_64(b"0123456789abcdef") == 0x4BE06D94CF4AD1A7
    assert murmur3_x64_64(b"a much longer name over sixteen") == 0x23D88670384BE6EE


def _folder(root: Path, name: str, count: int, width: int = 0) -> Path:
    folder = root / name
    folder.mkdir()
    for i in range(count):
        (folder / (f"{i:0{width}d}" if width else f"file-{i:05d}.txt")).write_text(f"entry {i}\n")
    return folder


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


def test_directories_get_kubos_cids_below_and_above_the_sharding_size(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    require_oracle("ipfs-unixfs-importer")
    cases = tmp_path / "cases"
    cases.mkdir()
    big = _folder(cases, "ten-thousand", 10_000)
    # 200-byte names and 36-byte CIDs: 1110 entries are 261,960 bytes of links, 1111 reach
    # 262,196, past the 262,144 at which Kubo shards
    below = _folder(cases, "below", 1110, width=200)
    above = _folder(cases, "above", 1111, width=200)
    nested = cases / "nested"
    nested.mkdir()
    _folder(nested, "wide", 6000)
    (nested / "small.txt").write_text("a plain directory holding a sharded one\n")
    folders = [big, below, above, nested]
    expected = run_oracle(IMPORT, *map(str, folders)).split()
    ours = [store.add_path(folder)[-1].cid for folder in folders]
    assert ours == expected
    kinds = [_kind(store, cid) for cid in ours]
    assert kinds == [
        DataType.HAMT_SHARD,
        DataType.DIRECTORY,
        DataType.HAMT_SHARD,
        DataType.DIRECTORY,
    ]


def _kind(store: EmbeddedStore, cid: str) -> DataType:
    from executor.unixfs import cid_to_bytes

    block = store._block(cid_to_bytes(cid))
    return decode_unixfs(decode_pbnode(block).data or b"").type


def test_a_sharded_directory_reads_back_whole(store: EmbeddedStore, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "wide", 10_000)
    root = store.add_path(folder)[-1].cid
    entries = store.ls(root)
    assert [e.name for e in entries] == sorted(p.name for p in folder.iterdir())
    store.get(root, tmp_path / "out")
    assert (tmp_path / "out" / "file-09999.txt").read_text() == "entry 9999\n"
    assert len(list((tmp_path / "out").iterdir())) == 10_000
