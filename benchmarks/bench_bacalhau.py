"""What a refused request costs the Bacalhau bridges (issue 28): legacy submits that may not
be made, and probes over the CID cap, next to the accepted ones.

Each request runs N times in-process through Django's test Client on a fresh, migrated
database with DEBUG off and no rate limit; server time is the Client call (middleware, view,
SQL), and CPU is this process's CPU time over the same call. RSA keys are made by openssl.
The 8192-bit key with e = n - 2 is refused now before any arithmetic; the last line prints
what its one verification cost when it was not (a single modular exponentiation).

    .venv/bin/python -m benchmarks.bench_bacalhau [--requests 50] [--backends sqlite,postgres]

Goal: a refused submit under 5 ms. Prints the figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import (
    BACKENDS,
    code_version,
    fresh_database,
    load_average,
    machine_summary,
    parse_list,
    table,
)

GOAL_MS = 5
BLESSED = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def setup_django(database_url: str, data_dir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        SECRET_KEY="benchmark-only-not-a-secret-at-least-32-characters",
        ALLOWED_HOSTS="testserver",
        DEBUG="0",
        API_RATE_LIMIT="0",
    )
    for name in ("IPFS_API_URL", "CACHE_URL", "CELERY_BROKER_URL", "API_ADDRESS_RATE_LIMIT"):
        os.environ.pop(name, None)
    import django

    django.setup()


class Identity:
    """A legacy client's RSA key (openssl), its PKCS #1 public key and client id."""

    def __init__(self, folder: Path, name: str, bits: int) -> None:
        self.pem = folder / f"{name}.pem"
        subprocess.run(["openssl", "genrsa", "-out", self.pem, str(bits)], check=True,
                       capture_output=True)  # fmt: skip
        der = subprocess.run(
            ["openssl", "rsa", "-in", self.pem, "-RSAPublicKey_out", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.public_key = base64.b64encode(der).decode()
        from dashboard.bacalhau.rsa import client_id, parse_public_key

        self.client_id = client_id(parse_public_key(self.public_key))

    def body(self, spec: dict[str, Any], *, bad_signature: bool = False) -> bytes:
        payload = json.dumps({"apiversion": "V1beta1", "clientid": self.client_id, "spec": spec})
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.pem],
            input=payload.encode() + (b" " if bad_signature else b""),
            check=True,
            capture_output=True,
        ).stdout
        return (
            json.dumps(
                {
                    "client_public_key": self.public_key,
                    "payload": "@",
                    "signature": base64.b64encode(signature).decode(),
                }
            )
            .replace('"@"', payload)
            .encode()
        )


def der_public_key(n: int, e: int) -> str:
    def length(size: int) -> bytes:
        if size < 0x80:
            return bytes([size])
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(raw)]) + raw

    def integer(value: int) -> bytes:
        body = value.to_bytes(value.bit_length() // 8 + 1, "big")
        return b"\x02" + length(len(body)) + body

    numbers = integer(n) + integer(e)
    return base64.b64encode(b"\x30" + length(len(numbers)) + numbers).decode()


def huge_key_body() -> tuple[bytes, str, int]:
    """A submit signed (in form) by an 8192-bit key with e = n - 2; its client id and n."""
    n = (1 << 8191) | int.from_bytes(hashlib.sha256(b"bench").digest() * 32) | 1
    client = hashlib.sha256(n.to_bytes(1024, "big")).hexdigest()
    payload = json.dumps({"apiversion": "V1beta1", "clientid": client, "spec": spec(0)})
    signature = base64.b64encode(b"\x01" * 1024).decode()
    body = (
        f'{{"client_public_key": "{der_public_key(n, n - 2)}", "payload": {payload}, '
        f'"signature": "{signature}"}}'
    )
    return body.encode(), client, n


def spec(n: int) -> dict[str, Any]:
    return {
        "engine": "Wasm",
        "wasm": {"EntryModule": {"StorageSource": "ipfs", "CID": BLESSED}},
        "annotations": [f"bench-{n}"],
        "inputs": [{"StorageSource": "ipfs", "CID": BLESSED, "Path": "/inputs/a"}],
    }


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def cid_v0(n: int) -> str:
    """The n-th of distinct CIDv0s (base58btc of a sha2-256 multihash): the CID normaliser
    keeps what it has read, so a probe of one CID many times would cost nothing."""
    number = int.from_bytes(b"\x12\x20" + hashlib.sha256(n.to_bytes(8, "big")).digest(), "big")
    text = ""
    while number:
        number, digit = divmod(number, 58)
        text = _BASE58[digit] + text
    return text


def probe(cids: int, first: int) -> bytes:
    """Bacalhau v1.0's probe body, compact, with distinct CIDv0 inputs: 30,000 of them fit
    under Django's 2.5 MB body limit (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    inputs = [{"StorageSource": "ipfs", "CID": cid_v0(first + i)} for i in range(cids)]
    body = {"node_id": "n", "job_id": "j", "spec": {"Engine": "Docker", "Inputs": inputs}}
    return json.dumps(body, separators=(",", ":")).encode()


def timed(call: Callable[[], Any], requests: int, status: int) -> tuple[float, float, float]:
    """Median and p90 server ms, and median CPU ms, of `call`, checking its status."""
    walls, cpus = [], []
    for _ in range(requests):
        wall, cpu = time.perf_counter(), time.process_time()
        response = call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        if response.status_code != status:
            raise SystemExit(f"expected {status}, got {response.status_code}: {response.content!r}")
    walls.sort()
    return statistics.median(walls), walls[int(len(walls) * 0.9)], statistics.median(cpus)


def measure(backend: str, requests: int, keys: Path) -> list[list[object]]:
    from django.test import Client

    from dashboard.bacalhau.clients import bind_client
    from dashboard.keys.services import create_api_key

    submitter, _ = create_api_key(scope="submitter", name="bench", actor="bench")
    _, node_key = create_api_key(scope="node", name="bench-node", actor="bench")
    small, big = Identity(keys, "small", 2048), Identity(keys, "big", 4096)
    unbound = Identity(keys, "unbound", 2048)
    for identity in (small, big):
        bind_client(identity=identity.client_id, key_prefix=submitter.prefix, actor="bench")
    huge, huge_client, _ = huge_key_body()
    bind_client(identity=huge_client, key_prefix=submitter.prefix, actor="bench")
    client = Client()
    counter = iter(range(1, 1 << 30))
    bodies = [small.body(spec(next(counter))) for _ in range(requests)]

    def submit(body: bytes) -> Callable[[], Any]:
        return lambda: client.post("/requester/submit", body, content_type="application/json")

    def fresh() -> Any:
        return client.post("/requester/submit", bodies.pop(), content_type="application/json")

    url = f"/api/v1/bacalhau/probe/{node_key}"

    def ask(cids: int, runs: int = requests) -> Callable[[], Any]:
        """Each probe of new CIDs, as a node asks about new jobs."""
        bodies = iter([probe(cids, first=n * cids) for n in range(runs)])
        return lambda: client.post(url, next(bodies), content_type="application/json")

    few = max(5, requests // 10)
    cases: list[tuple[str, Callable[[], Any], int, bool]] = [
        ("submit: 8192-bit key, e = n - 2 (401)", submit(huge), 401, True),
        ("submit: unbound 2048-bit client (403)", submit(unbound.body(spec(0))), 403, True),
        (
            "submit: bound 4096-bit, bad signature (401)",
            submit(big.body(spec(0), bad_signature=True)),
            401,
            True,
        ),  # noqa: E501
        ("submit: bound 2048-bit, accepted (200)", fresh, 200, False),
        ("submit: the same again, replayed (200)", submit(small.body(spec(0))), 200, False),
        ("probe: 30,000 CIDs (413)", ask(30_000, few), 413, False),
        ("probe: 1,001 CIDs (413)", ask(1_001), 413, False),
        ("probe: 1,000 CIDs, the cap (200)", ask(1_000), 200, False),
        ("probe: 1 CID (200)", ask(1), 200, False),
    ]
    rows: list[list[object]] = []
    for name, call, status, refused in cases:
        runs = requests if "30,000" not in name else few
        median, p90, cpu = timed(call, runs, status)
        goal = ("yes" if p90 < GOAL_MS else "NO") if refused else ""
        rows.append([backend, name, runs, median, p90, cpu, goal])
    return rows


def before(rounds: int = 3) -> float:
    """What the one verification of the 8192-bit, e = n - 2 key cost when it ran: ms."""
    _, _, n = huge_key_body()
    s = int.from_bytes(b"\x01" * 1024, "big")
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        pow(s, n - 2, n)
        best = min(best, (time.process_time() - started) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgres")
    args = parser.parse_args()
    backends = parse_list(args.backends, BACKENDS)
    if len(backends) != 1:
        # Django is set up once per process: run one backend per process.
        for backend in backends:
            subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_bacalhau", "--requests",
                 str(args.requests), "--backends", backend],
                check=True,
            )  # fmt: skip
        return
    backend = backends[0]
    print(machine_summary())
    print(f"code {code_version()}; load average before: {load_average()}")
    with (
        fresh_database(backend) as url,
        tempfile.TemporaryDirectory() as data,
        tempfile.TemporaryDirectory() as keys,
    ):
        setup_django(url, Path(data))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rows = measure(backend, args.requests, Path(keys))
    print(
        table(
            ["database", "request", "n", "median ms", "p90 ms", "CPU ms", f"p90 < {GOAL_MS} ms"],
            rows,
        )
    )
    print(f"one verification of the 8192-bit, e = n - 2 key, as it ran before: {before():,.0f} ms")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
