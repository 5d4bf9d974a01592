"""Fetching a job's input from the storage providers that hold it, and proving every byte.

An input missing from our store is asked of, in order: the `locate` callback (the dashboard's
locations of the CID: claims and deals on chain), delegated routing (`IPNI_URL`), then the
trustless gateways of `IPFS_GATEWAYS`. Each candidate gets one request, bounded in bytes and
in time (start to last byte, not per read); a candidate that fails is skipped with a one-line
reason and the next one tried.

Nothing fetched is trusted (docs/jobs.md, "Inputs from storage providers"):
- a piece (`GET /piece/{pieceCid}`) is streamed to a staging file while its CommP is
  computed, and kept only when the CommP, zero-filled to the piece size, is the piece CID;
- a payload (`GET /ipfs/{cid}?format=car`) must be a CAR whose root is the CID asked for,
  and goes through `Storage.import_car`, which checks every block against its CID and that
  the root's DAG is whole.
Verified content is stored and pinned; pieces are also entered in the piece index, so the
next job mounts them with no network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import httpx

from executor import environment
from executor.car import CarError, CarReader
from executor.cids import InvalidCID, cid_from_bytes, is_piece_cid, normalize_cid
from executor.commp import CommP, minimal_piece_size, root_of_piece_cid, unpadded_size
from executor.locations import Location
from executor.multiaddr import MultiaddrError, http_url, parse_text
from executor.pieces import PieceEntry, PieceIndex
from executor.spec import InputMount
from executor.storage import (
    FetchCancelled,
    FetchLimit,
    FetchTimedOut,
    Storage,
    StorageError,
    staging_dir,
)

__all__ = [
    "Attempt",
    "InputRecord",
    "Locate",
    "NotRetrieved",
    "RetrievalSettings",
    "Retriever",
]

Locate = Callable[[str], Sequence[Location]]
Verified = Literal["store", "piece", "blocks"]

CAR_TYPE = "application/vnd.ipld.car"
GATEWAY_PROTOCOL = "transport-ipfs-gateway-http"
PIECE_PROTOCOL = "transport-filecoin-piece-http"
# A routing answer is a few hundred bytes a provider; a hostile router is cut off here.
MAX_ROUTING_BYTES = 1 << 20
MAX_ROUTED_PROVIDERS = 10
ROUTING_TIMEOUT_S = 30.0


class Unusable(Exception):
    """One candidate could not give the input; the message is its one-line reason."""


class NotRetrieved(Exception):
    """No candidate could give the input; `attempts` says what each one did."""

    def __init__(self, cid: str, attempts: list[Attempt]) -> None:
        super().__init__(cid)
        self.cid = cid
        self.attempts = attempts


@dataclass(frozen=True)
class RetrievalSettings:
    ipni_url: str | None = None  # delegated routing; None: none
    gateways: tuple[str, ...] = ()
    timeout_s: float = environment.DEFAULT_RETRIEVAL_TIMEOUT_S  # one request, start to end
    piece_dir: Path | None = None  # the piece index; None: pieces are not remembered

    @classmethod
    def from_environment(cls, data_dir: Path | None = None) -> RetrievalSettings:
        """IPNI_URL, IPFS_GATEWAYS and EXECUTOR_RETRIEVAL_TIMEOUT_S; the piece index under
        `data_dir` (default DATA_DIR). BadSetting names a bad variable."""
        return cls(
            ipni_url=environment.ipni_url(),
            gateways=environment.ipfs_gateways(),
            timeout_s=environment.retrieval_timeout_s(),
            piece_dir=(data_dir or environment.data_dir()) / "pieces",
        )


@dataclass
class Attempt:
    provider: str | None
    url: str | None
    ok: bool = False
    reason: str | None = None
    bytes: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "url": self.url,
            "ok": self.ok,
            "reason": self.reason,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        who = " ".join(part for part in (self.provider, self.url) if part)
        return f"{who}: {self.reason}" if who else str(self.reason)


@dataclass
class InputRecord:
    """Where one input came from and how it was proven: `RunResult.inputs`."""

    cid: str
    path: str
    verified: Verified = "store"
    provider: str | None = None
    url: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "path": self.path,
            "verified": self.verified,
            "provider": self.provider,
            "url": self.url,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(frozen=True)
class _Candidate:
    kind: Literal["piece", "payload"]  # GET /piece/{piece_cid} or /ipfs/{cid}?format=car
    url: str  # the base URL
    provider: str | None
    piece_cid: str | None = None
    piece_size: int | None = None
    payload_cid: str | None = None  # a deal label's root: must be a root of the CAR

    def request_url(self, cid: str) -> str:
        if self.kind == "piece":
            return f"{self.url}/piece/{self.piece_cid}"
        return f"{self.url}/ipfs/{cid}?format=car&dag-scope=all"


class Retriever:
    """Gives each input a CID to mount, fetching and verifying it when the store lacks it.

    One per job: `records` holds an InputRecord per input asked for, in order."""

    def __init__(
        self,
        storage: Storage,
        staging: Path,
        *,
        locate: Locate | None = None,
        settings: RetrievalSettings | None = None,
    ) -> None:
        self.storage = storage
        self.staging = staging
        self.locate = locate
        self.settings = settings or RetrievalSettings()
        self.index = PieceIndex(self.settings.piece_dir) if self.settings.piece_dir else None
        self.records: list[InputRecord] = []
        self._http: httpx.Client | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            # No redirects: a provider could otherwise point us at any host (our own LAN).
            self._http = httpx.Client(
                follow_redirects=False, headers={"User-Agent": "filplus-executor"}
            )
        return self._http

    # --- the one entry point -------------------------------------------------------------------

    def resolve(self, mount: InputMount, limit: FetchLimit) -> str:
        """The CID to mount for `mount` (a piece's DAG root or file; a payload itself), now in
        the store. NotRetrieved when no candidate could give it; FetchCancelled and
        FetchTimedOut when the job stops meanwhile."""
        started = time.monotonic()
        record = InputRecord(cid=mount.cid, path=mount.path)
        self.records.append(record)
        piece = is_piece_cid(mount.cid)
        local = self._local(mount, piece)
        if local is not None:
            record.seconds = time.monotonic() - started
            return local
        for candidate in self._candidates(mount.cid, piece, record):
            limit.check()
            attempt = Attempt(provider=candidate.provider, url=candidate.request_url(mount.cid))
            record.attempts.append(attempt)
            began = time.monotonic()
            try:
                if candidate.kind == "piece":
                    mounted = self._fetch_piece(mount, candidate, limit, attempt)
                else:
                    mounted = self._fetch_payload(mount.cid, candidate, limit, attempt)
            except Unusable as exc:
                attempt.reason = str(exc)
                continue
            finally:
                attempt.seconds = time.monotonic() - began
            attempt.ok = True
            record.verified = "piece" if candidate.kind == "piece" else "blocks"
            record.provider, record.url = candidate.provider, attempt.url
            record.bytes = attempt.bytes
            record.seconds = time.monotonic() - started
            return mounted
        record.seconds = time.monotonic() - started
        raise NotRetrieved(mount.cid, record.attempts)

    def _local(self, mount: InputMount, piece: bool) -> str | None:
        if not piece:
            return mount.cid if self.storage.has(mount.cid) else None
        entry = self.index.get(mount.cid, raw=mount.raw) if self.index else None
        if entry is not None and self.storage.has(entry.cid):
            return entry.cid
        return None

    # --- where to ask --------------------------------------------------------------------------

    def _candidates(self, cid: str, piece: bool, record: InputRecord) -> Iterator[_Candidate]:
        if self.locate is not None:
            try:
                locations = list(self.locate(cid))
            except Exception as exc:  # a callback's failure (the dashboard down) is one attempt
                record.attempts.append(Attempt(None, None, reason=f"locations: {exc}"))
                locations = []
            for location in locations:
                yield from self._from_location(cid, piece, location)
        if self.settings.ipni_url:
            yield from self._routed(cid, piece, record)
        if not piece:
            for url in self.settings.gateways:
                yield _Candidate("payload", url, provider=None)

    @staticmethod
    def _from_location(cid: str, piece: bool, location: Location) -> Iterator[_Candidate]:
        if piece:
            if location.piece_cid is None or _same_cid(location.piece_cid, cid):
                yield _Candidate(
                    "piece",
                    location.url,
                    location.provider,
                    piece_cid=cid,
                    piece_size=location.piece_size,
                    payload_cid=location.payload_cid,
                )
            return
        yield _Candidate("payload", location.url, location.provider)
        if location.piece_cid is not None and is_piece_cid(location.piece_cid):
            # booster-http and Curio serve the whole piece even when /ipfs/ is off.
            yield _Candidate(
                "piece",
                location.url,
                location.provider,
                piece_cid=normalize_cid(location.piece_cid),
                piece_size=location.piece_size,
                payload_cid=cid,
            )

    def _routed(self, cid: str, piece: bool, record: InputRecord) -> Iterator[_Candidate]:
        assert self.settings.ipni_url is not None
        url = f"{self.settings.ipni_url}/routing/v1/providers/{cid}"
        try:
            providers = self._routing_answer(url)
        except Unusable as exc:
            record.attempts.append(Attempt("routing", url, reason=str(exc)))
            return
        if not providers:
            record.attempts.append(Attempt("routing", url, reason="no provider"))
            return
        wanted = {GATEWAY_PROTOCOL, PIECE_PROTOCOL} if piece else {GATEWAY_PROTOCOL}
        seen: set[str] = set()
        for item in providers:
            if len(seen) >= MAX_ROUTED_PROVIDERS:
                break
            if not isinstance(item, dict):
                continue
            protocols = item.get("Protocols")
            names = set(protocols) if isinstance(protocols, list) else set()
            names.add(str(item.get("Schema")))
            if not names & wanted:
                continue
            base = _first_http_url(item.get("Addrs"))
            if base is None or base in seen:
                continue
            seen.add(base)
            peer = item.get("ID")
            provider = peer[:80] if isinstance(peer, str) else None
            if piece:
                yield _Candidate("piece", base, provider, piece_cid=cid)
            else:
                yield _Candidate("payload", base, provider)

    def _routing_answer(self, url: str) -> list[Any]:
        body = bytearray()
        deadline = time.monotonic() + min(ROUTING_TIMEOUT_S, self.settings.timeout_s)
        try:
            with self.http.stream(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=min(ROUTING_TIMEOUT_S, self.settings.timeout_s),
            ) as response:
                if response.status_code == 404:  # cid.contact's "none", though the spec says 200
                    return []
                if response.status_code != 200:
                    raise Unusable(f"HTTP {response.status_code}")
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ROUTING_BYTES:
                        raise Unusable(f"answer larger than {MAX_ROUTING_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise Unusable("answer took too long")
        except httpx.HTTPError as exc:
            raise Unusable(_http_reason(exc)) from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise Unusable("answer is not JSON") from None
        except RecursionError:  # a hostile router's [[[…]]]: its failure, not the job's crash
            raise Unusable("answer is JSON nested too deep") from None
        providers = answer.get("Providers") if isinstance(answer, dict) else None
        if providers is None:
            return []
        if not isinstance(providers, list):
            raise Unusable("answer's Providers is not a list")
        return providers

    # --- one request ---------------------------------------------------------------------------

    def _download(
        self,
        url: str,
        headers: dict[str, str],
        out: BinaryIO,
        max_bytes: int,
        limit: FetchLimit,
        attempt: Attempt,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> None:
        """Stream `url`'s body into `out`: Unusable for anything but a whole, unencoded 200
        of at most `max_bytes`, done within the request's time."""
        now = time.monotonic()
        deadline = now + self.settings.timeout_s
        if limit.deadline is not None:
            deadline = min(deadline, limit.deadline)
        try:
            with self.http.stream(
                "GET", url, headers=headers, timeout=max(deadline - now, 0.001)
            ) as response:
                if response.status_code != 200:
                    raise Unusable(f"HTTP {response.status_code}")
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise Unusable(f"sent Content-Encoding {encoding[:40]} we did not ask for")
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise Unusable(f"would send {declared} bytes, more than {max_bytes}")
                # iter_raw: the bytes as sent (httpx would decode what it knows), as they come
                # (with a chunk size it would wait for a whole one, and a drip never ends).
                for chunk in response.iter_raw():
                    attempt.bytes += len(chunk)
                    if attempt.bytes > max_bytes:
                        raise Unusable(f"sent more than {max_bytes} bytes")
                    limit.check()  # the job's cancel and wall time stop the job, not a provider
                    if time.monotonic() > deadline:
                        raise Unusable(
                            f"not done after {self.settings.timeout_s:g} s ({attempt.bytes} bytes)"
                        )
                    out.write(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
        except httpx.TimeoutException:
            limit.check()
            raise Unusable(f"timed out after {attempt.bytes} bytes") from None
        except httpx.HTTPError as exc:
            raise Unusable(f"{_http_reason(exc)} after {attempt.bytes} bytes") from None

    def _room(self, limit: FetchLimit) -> int:
        return max(limit.max_bytes - limit.used, 0)

    @contextlib.contextmanager
    def _staged(self) -> Iterator[Path]:
        directory = staging_dir(self.staging, "fetch")
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    # --- payloads ------------------------------------------------------------------------------

    def _fetch_payload(
        self, cid: str, candidate: _Candidate, limit: FetchLimit, attempt: Attempt
    ) -> str:
        room = self._room(limit)
        with self._staged() as directory:
            car_path = directory / "payload.car"
            with car_path.open("wb") as out:
                self._download(
                    candidate.request_url(cid),
                    {"Accept": CAR_TYPE, "Accept-Encoding": "identity"},
                    out,
                    room,
                    limit,
                    attempt,
                )
            with car_path.open("rb") as car:
                roots = _car_roots(car)
                if not any(_same_cid(root, cid) for root in roots):
                    shown = ", ".join(roots[:3]) or "none"
                    raise Unusable(f"the CAR's root is {shown}, not {cid}")
                car.seek(0)
                self._import(car, room)
        if not self.storage.has(cid):
            raise Unusable(f"the CAR does not hold all of {cid}")
        return cid

    def _import(self, car: BinaryIO, room: int) -> None:
        try:
            self.storage.import_car(car, max_bytes=room)
        except (FetchCancelled, FetchTimedOut):
            raise
        except StorageError as exc:
            raise Unusable(str(exc)) from None

    # --- pieces --------------------------------------------------------------------------------

    def _fetch_piece(
        self, mount: InputMount, candidate: _Candidate, limit: FetchLimit, attempt: Attempt
    ) -> str:
        """Fetch the piece, prove it by its CommP, store it as its CAR's DAG or as one file.
        For a payload input (`mount.cid` not the piece), the payload must be a root of the
        piece's CAR."""
        assert candidate.piece_cid is not None
        want_payload = None if _same_cid(mount.cid, candidate.piece_cid) else mount.cid
        root = root_of_piece_cid(candidate.piece_cid)
        room = self._room(limit)
        largest = room
        if candidate.piece_size is not None:
            largest = min(largest, unpadded_size(candidate.piece_size))
        hasher = CommP()
        with self._staged() as directory:
            data_path = directory / "piece"
            with data_path.open("wb") as out:
                self._download(
                    candidate.request_url(mount.cid),
                    {"Accept-Encoding": "identity"},
                    out,
                    largest,
                    limit,
                    attempt,
                    hasher.update,
                )
            size = _piece_size(hasher, root, candidate.piece_size)
            if want_payload is None and mount.raw:
                return self._keep_raw(mount, data_path, size, room)
            with data_path.open("rb") as data:
                car = _read_piece_car(data)
                if car is None or (want_payload is None and _several_roots(car, candidate)):
                    if want_payload is not None:
                        raise Unusable(f"the piece is not a CAR that holds {want_payload}")
                    return self._keep_raw(mount, data_path, size, room)
                roots, length = car
                mounted = self._car_root(roots, candidate, want_payload)
                data.seek(0)
                self._import(cast(BinaryIO, _Bounded(data, length)), room)
        if not self.storage.has(mounted):
            raise Unusable(f"the piece's CAR does not hold all of {mounted}")
        if want_payload is None and self.index is not None:
            self.index.put(mount.cid, PieceEntry("car", mounted, size), raw=False)
        return mounted

    @staticmethod
    def _car_root(roots: list[str], candidate: _Candidate, want_payload: str | None) -> str:
        hint = want_payload or candidate.payload_cid
        if hint is not None:
            for root in roots:
                if _same_cid(root, hint):
                    return root
            what = "the input" if want_payload else "the deal label's payload"
            raise Unusable(f"{what} {hint} is not a root of the piece's CAR")
        return roots[0]

    def _keep_raw(self, mount: InputMount, data_path: Path, size: int, room: int) -> str:
        # The whole unpadded piece, whatever length this provider sent (booster-http sends
        # it all, Curio may stop at the data): the same piece must give every job, on every
        # node, the same file.
        if unpadded_size(size) > room:
            raise Unusable(
                f"the piece is {unpadded_size(size)} bytes as a file, more than the {room}"
                " bytes left for the inputs"
            )
        os.truncate(data_path, unpadded_size(size))
        try:
            entries = self.storage.add_path(data_path)
            cid = entries[-1].cid
            self.storage.pin(cid)
        except (FetchCancelled, FetchTimedOut):
            raise
        except StorageError as exc:
            raise Unusable(f"storing the piece failed: {exc}") from None
        if self.index is not None:
            self.index.put(mount.cid, PieceEntry("raw", cid, size), raw=mount.raw)
        return cid


# --- helpers -------------------------------------------------------------------------------------


class _Bounded:
    """The first `size` bytes of a file: a piece's CAR without its zero fill."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        out = self._stream.read(size)
        self._left -= len(out)
        return out


def _piece_size(hasher: CommP, root: bytes, known: int | None) -> int:
    """The piece size the bytes prove, or Unusable: the CommP of the bytes zero-filled to the
    size (the one the location names, else the smallest that matches) must be the root."""
    if hasher.payload_size == 0:
        raise Unusable("sent no bytes")
    if known is not None:
        if minimal_piece_size(hasher.payload_size) > known:
            raise Unusable(f"sent {hasher.payload_size} bytes, more than a {known}-byte piece")
        if hasher.root_at(known) != root:
            raise Unusable(f"the bytes' CommP is {hasher.cid_at(known)}, not the piece CID")
        return known
    size = hasher.size_of(root)
    if size is None:
        raise Unusable(
            f"the bytes' CommP is {hasher.cid_at(hasher.minimal_size)} (or a larger"
            " piece of it), not the piece CID"
        )
    return size


def _read_piece_car(data: BinaryIO) -> tuple[list[str], int] | None:
    """(roots, CAR length) when the piece's bytes are a CARv1 whose blocks all match their
    CIDs, followed by nothing or zeros; None when they are anything else."""
    try:
        reader = CarReader(data, zero_padded=True)
        roots = [cid_from_bytes(root) for root in reader.roots]
        for _ in reader:
            pass
    except (CarError, InvalidCID):
        return None
    if not roots or reader.length <= 0:
        return None
    return roots, reader.length


def _several_roots(car: tuple[list[str], int], candidate: _Candidate) -> bool:
    # Which of several roots to mount is known only from a deal label.
    return len(car[0]) > 1 and candidate.payload_cid is None


def _car_roots(car: BinaryIO) -> list[str]:
    try:
        return [cid_from_bytes(root) for root in CarReader(car).roots]
    except (CarError, InvalidCID) as exc:
        raise Unusable(f"not a CAR: {exc}") from None


def _same_cid(a: str, b: str) -> bool:
    try:
        return normalize_cid(a) == normalize_cid(b)
    except InvalidCID:
        return False


def _first_http_url(addrs: Any) -> str | None:
    if not isinstance(addrs, list):
        return None
    for addr in addrs[:16]:
        if not isinstance(addr, str):
            continue
        try:
            url = http_url(parse_text(addr))
        except MultiaddrError:
            continue
        if url is not None:
            return url
    return None


def _http_reason(exc: httpx.HTTPError) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
