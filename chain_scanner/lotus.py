"""The one Lotus JSON-RPC client (Lotus, Glif, Venus, Forest speak the same wire format).

JSON-RPC 2.0 over HTTP POST with httpx: optional bearer token, timeouts, retries with
exponential backoff on transport errors and HTTP 5xx, batches, and a typed error for
JSON-RPC error objects. See docs/filecoin.md for the wire format.

A client made with `max_response_bytes` reads at most that many bytes of an answer, and its
body must have arrived within the timeout of the request's start (checked as each chunk
arrives; connecting and the first byte each wait at most the timeout too), so one try ends
within about three timeouts however a node drips its bytes: for answers a request waits on
(a storage provider's addresses), where a slow or hostile node must cost a bounded time and
memory.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

# go-jsonrpc codes (docs/filecoin.md).
METHOD_NOT_FOUND = -32601

# StateMinerInfo: what is kept of a miner's own words (it sets its PeerId and Multiaddrs).
MAX_MINER_MULTIADDRS = 16
MAX_MULTIADDR_BASE64 = 1368  # base64 of executor.multiaddr's 1024-byte limit
MAX_PEER_ID = 128


class LotusError(Exception):
    """Anything that went wrong talking to the endpoint."""


class LotusUnavailable(LotusError):
    """The endpoint could not be reached, or kept failing, after every retry."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Lotus endpoint {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class LotusProtocolError(LotusError):
    """The endpoint answered something that is not a JSON-RPC response."""


class LotusRPCError(LotusError):
    """A JSON-RPC error object: `code` and `message` as the node sent them."""

    def __init__(self, code: int, message: str, data: Any = None, method: str = "") -> None:
        super().__init__(f"{method or 'call'} failed: JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data
        self.method = method


@dataclass(frozen=True)
class TipSet:
    height: int
    key: list[dict[str, str]]  # [{"/": cid}, …] exactly as the node sent it
    parents: list[dict[str, str]] | None = None  # the parent tipset's key, from a block header

    @property
    def key_str(self) -> str:
        return _key_str(self.key)

    @property
    def parents_str(self) -> str | None:
        return None if self.parents is None else _key_str(self.parents)

    @classmethod
    def from_json(cls, value: Any) -> TipSet:
        if not isinstance(value, dict) or not isinstance(value.get("Cids"), list):
            raise LotusProtocolError(f"not a tipset: {str(value)[:200]}")
        height = value.get("Height")
        if not isinstance(height, int):
            raise LotusProtocolError(f"tipset without an integer Height: {str(value)[:200]}")
        blocks = value.get("Blocks")
        first = blocks[0] if isinstance(blocks, list) and blocks else None
        parents = first.get("Parents") if isinstance(first, dict) else None
        return cls(height=height, key=value["Cids"], parents=parents if _is_key(parents) else None)


@dataclass(frozen=True)
class MinerInfo:
    """What `StateMinerInfo` says of a storage provider's addresses: its libp2p PeerId and
    its Multiaddrs as Lotus sends them (base64 of binary multiaddrs), bounded: at most
    MAX_MINER_MULTIADDRS entries, each a string of at most MAX_MULTIADDR_BASE64 characters
    (longer or non-string entries are dropped, not fatal)."""

    peer_id: str | None
    multiaddrs: list[str]

    @classmethod
    def from_json(cls, value: Any) -> MinerInfo:
        if not isinstance(value, dict):
            raise LotusProtocolError(f"StateMinerInfo: not an object: {str(value)[:200]}")
        peer_id = value.get("PeerId")
        if peer_id is not None and (not isinstance(peer_id, str) or len(peer_id) > MAX_PEER_ID):
            peer_id = None  # not a peer id we could use: as if none were set
        raw = value.get("Multiaddrs")
        if raw is not None and not isinstance(raw, list):
            raise LotusProtocolError("StateMinerInfo: Multiaddrs is not a list")
        multiaddrs = [
            item
            for item in (raw or [])[: MAX_MINER_MULTIADDRS * 4]
            if isinstance(item, str) and 0 < len(item) <= MAX_MULTIADDR_BASE64
        ][:MAX_MINER_MULTIADDRS]
        return cls(peer_id=peer_id, multiaddrs=multiaddrs)


def _is_key(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(c, dict) and isinstance(c.get("/"), str) for c in value
    )


def _key_str(key: list[dict[str, str]]) -> str:
    return ",".join(c.get("/", "") for c in key)


class LotusClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
        max_response_bytes: int | None = None,
    ) -> None:
        self.url = url
        self.retries = retries
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.backoff = backoff
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._ids = itertools.count(1)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        self.http_requests = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LotusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ------------------------------------------------------------------------

    def _post(self, payload: Any) -> Any:
        """POST one JSON-RPC payload and return the decoded JSON body, retrying what is
        worth retrying: transport errors and HTTP 5xx that carry no JSON-RPC error."""
        attempt = 0
        while True:
            reason: str
            try:
                self.http_requests += 1
                response = self._send(payload)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code in (401, 403):
                    raise LotusError(
                        f"Lotus endpoint {self.url} refused the request "
                        f"(HTTP {response.status_code}): check LOTUS_RPC_TOKEN"
                    )
                body = _json_or_none(response)
                # go-jsonrpc answers protocol errors (method not found, bad params) with
                # HTTP 500 and a JSON-RPC error object: those are final, not transient.
                if _is_rpc_envelope(body):
                    return body
                if response.status_code >= 500 or response.status_code == 429:
                    reason = f"HTTP {response.status_code}"
                else:
                    raise LotusProtocolError(
                        f"Lotus endpoint {self.url} answered HTTP {response.status_code} "
                        f"without a JSON-RPC body: {response.text[:200]!r}"
                    )
            if attempt >= self.retries:
                raise LotusUnavailable(self.url, f"{reason} (after {attempt + 1} attempts)")
            delay = min(self.backoff_max, self.backoff * (2**attempt))
            delay *= 0.5 + random.random() / 2  # jitter, so many scanners do not align
            # One line a failed pass is the caller's to write: a retry is detail.
            log.debug("Lotus %s: %s; retrying in %.1fs", self.url, reason, delay)
            if self._sleep(delay) is True:  # an Event's wait: stopping, not retrying
                raise LotusUnavailable(self.url, f"{reason} (stopped while retrying)")
            attempt += 1

    def _send(self, payload: Any) -> httpx.Response:
        """One POST; with max_response_bytes, streamed and cut off at that size, or once the
        timeout from the start has passed (a node that drips bytes is cut off)."""
        if self.max_response_bytes is None:
            return self._http.post(self.url, json=payload)
        deadline = time.monotonic() + self.timeout
        with self._http.stream("POST", self.url, json=payload) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_response_bytes:
                    raise LotusProtocolError(
                        f"Lotus endpoint {self.url} answered more than "
                        f"{self.max_response_bytes} bytes"
                    )
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the answer took more than {self.timeout:g}s")
        # The body is decoded already: of the headers only its type is carried over.
        kind = {"Content-Type": response.headers.get("Content-Type", "")}
        return httpx.Response(response.status_code, headers=kind, content=bytes(body))

    # --- calls ----------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        """Call `Filecoin.<method>` and return its result, or raise LotusRPCError."""
        request_id = next(self._ids)
        body = self._post(_request(method, params, request_id))
        if not isinstance(body, dict):
            raise LotusProtocolError(f"{method}: expected one response object, got {type(body)}")
        return _result(body, method)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send calls as one JSON-RPC batch; answers come back in call order, each either
        a result or a LotusRPCError instance (a failed call does not fail the others)."""
        if not calls:
            return []
        first = next(self._ids)
        for _ in range(len(calls) - 1):
            next(self._ids)
        payload = [_request(m, p, first + i) for i, (m, p) in enumerate(calls)]
        body = self._post(payload)
        if isinstance(body, dict):
            # A whole-batch error (e.g. a parse error) comes back as a single object.
            error = _result_or_error(body, "batch")
            if isinstance(error, LotusRPCError):
                raise error
            raise LotusProtocolError("batch answered with a single result")
        if not isinstance(body, list):
            raise LotusProtocolError(f"batch answered with {type(body).__name__}")
        by_id: dict[Any, Any] = {}
        for item in body:
            if isinstance(item, dict) and "id" in item:
                by_id[item["id"]] = item
        answers: list[Any] = []
        for i, (method, _params) in enumerate(calls):
            item = by_id.get(first + i)
            if item is None:
                answers.append(LotusProtocolError(f"{method}: no answer in the batch"))
            else:
                answers.append(_result_or_error(item, method))
        return answers

    # --- typed helpers --------------------------------------------------------------------

    def chain_head(self) -> TipSet:
        return TipSet.from_json(self.call("ChainHead"))

    def tipset_by_height(self, height: int, anchor: TipSet | None = None) -> TipSet:
        return TipSet.from_json(
            self.call("ChainGetTipSetByHeight", height, anchor.key if anchor else None)
        )

    def state_miner_info(self, address: str) -> MinerInfo:
        """`StateMinerInfo([address, null])`: a storage provider's PeerId and Multiaddrs at
        the head (addresses are not history: the latest is the one to use)."""
        return MinerInfo.from_json(self.call("StateMinerInfo", address, None))

    def state_miner_infos(self, addresses: Sequence[str]) -> list[MinerInfo | LotusError]:
        """`state_miner_info` of several providers in one JSON-RPC batch (one round trip,
        one timeout): per address in order, its MinerInfo or the error that answered it."""
        answers = self.batch([("StateMinerInfo", [address, None]) for address in addresses])
        infos: list[MinerInfo | LotusError] = []
        for answer in answers:
            if isinstance(answer, LotusError):
                infos.append(answer)
                continue
            try:
                infos.append(MinerInfo.from_json(answer))
            except LotusProtocolError as exc:
                infos.append(exc)
        return infos

    def finalized_tipset(self, finality: int = 900) -> tuple[TipSet, TipSet | None]:
        """The finalized tipset, and the head when it had to be read for the fallback.

        ChainGetFinalizedTipSet is v1-only and missing on older nodes: then head − finality.
        """
        try:
            return TipSet.from_json(self.call("ChainGetFinalizedTipSet")), None
        except LotusRPCError as exc:
            if exc.code != METHOD_NOT_FOUND:
                raise
        head = self.chain_head()
        return self.tipset_by_height(max(0, head.height - finality), head), head


def _request(method: str, params: Sequence[Any], request_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": f"Filecoin.{method}",
        "params": list(params),
        "id": request_id,
    }


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: a hostile node's [[[…]]]
        return None


def _is_rpc_envelope(body: Any) -> bool:
    if isinstance(body, list):
        return True
    return isinstance(body, dict) and ("result" in body or "error" in body)


def _result_or_error(body: dict[str, Any], method: str) -> Any:
    error = body.get("error")
    if error is not None:
        if not isinstance(error, dict):
            return LotusProtocolError(f"{method}: malformed error member {error!r}")
        code = error.get("code")
        return LotusRPCError(
            code if isinstance(code, int) else 0,
            str(error.get("message", "")),
            error.get("data"),
            method,
        )
    if "result" not in body:
        return LotusProtocolError(f"{method}: response has neither result nor error")
    return body["result"]


def _result(body: dict[str, Any], method: str) -> Any:
    value = _result_or_error(body, method)
    if isinstance(value, LotusError):
        raise value
    return value
