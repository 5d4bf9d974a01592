"""A fake Lotus JSON-RPC node: a real HTTP server on 127.0.0.1 speaking Lotus' wire format
(docs/filecoin.md), for the chain scanner's tests and benchmarks instead of mocking httpx.

    chain = FakeChain.from_fixtures()          # 360 real claim events + real deals
    with FakeLotusServer(chain) as lotus:      # lotus.url == "http://127.0.0.1:<port>/rpc/v1"
        lotus.faults.http_status(503, times=2)
        ...

Standalone: `python -m tests.fake_lotus --port 1234 --fixtures` (prints its URL). For a
walkthrough of retrieval, `--provider-url f01234=http://127.0.0.1:7777` has StateMinerInfo
answer that URL as f01234's on-chain multiaddr, and `--piece PIECE_CID:PADDED_SIZE[:PAYLOAD]`
adds an active verified deal and claim of that piece held by f01234 (both repeatable).
While it runs, `POST /fake/claim` with `{"piece_cid", "piece_size", "provider"}` makes a
provider claim a piece *now* (a claim event on the next tipset, then the chain grown until
it is final): the walkthrough's way to have an awarded aggregate land. `/fake/` is this
fake's own control path, not Lotus': a real node answers 404 there.

Behaviours copied from Lotus/go-jsonrpc on purpose, because a real node does them too:
- envelopes are Go maps (sorted keys) written by json.Encoder (trailing "\\n"); a batch is
  "[" + elements joined by "," + "]" and always HTTP 200 (go-jsonrpc has already written "["
  when an element fails);
- state calls read the *parent* state of the given tipset: a claim whose event is at height
  H is in StateGetClaim(s) from tipset H+1 on;
- GetActorEventsRaw only sees events of executed tipsets (height < head), needs
  `fromHeight` (without it Lotus returns no historical events: `null`), drops reverted
  events from height-range queries (only a `tipsetKey` query shows them) and answers `null`
  rather than `[]` when nothing matches;
- GetActorEventsRaw and ChainGetFinalizedTipSet do not exist on /rpc/v0.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import contextlib
import hashlib
import ipaddress
import json
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from functools import lru_cache
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import cbor2

from executor.multiaddr import parse_text, to_binary
from tests.chain_data import (
    CLAIM_EVENT_KINDS,
    DEAL_EVENT_KINDS,
    EPOCH_SECONDS,
    GENESIS_TIMESTAMP,
    REAL_EVENTS_TO,
    actor_id,
    cid_from_str,
    decode_event_entries,
    encode_claim_event,
    encode_deal_event,
    load_real_chainhead,
    load_real_claim_events,
    load_real_deals,
    make_deal,
    synthetic_message_cid,
    synthetic_object_cid,
    synthetic_tipset_cid,
)
from tests.fake_server import FakeHandler, FakeHTTPServer, ServedFake

# go-jsonrpc protocol error codes; these go out with HTTP 500 (400 for -32600).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
_PROTOCOL_CODES = {PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS}

DEAL_NOT_FOUND = (
    "deal {} not found - deal may not have completed sealing before deal proposal start "
    "epoch, or deal may have been slashed"
)  # LOTUS:chain/stmgr/actors.go GetStorageDeal
TOO_MANY_EVENTS = (
    "get events for filter: failed to get events: filter matches too many events, try a more "
    "restricted filter"
)  # LOTUS:chain/index/events.go ErrMaxResultsReached, wrapped by filter.Fill

MARKET_ACTOR = "f05"
MARKET_ACTOR_CODE = synthetic_object_cid("market actor code", raw=True)
MARKET_ACTOR_BALANCE = "21736185293811374958170224"
WALKTHROUGH_PROVIDER = "f01234"  # who holds what `--piece` adds
WALKTHROUGH_CLIENT = 1880278


class RPCError(Exception):
    """A method failed: sent as a JSON-RPC error object (code 1 unless told otherwise)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- chain state ---------------------------------------------------------------------------


@dataclass
class _Event:
    entries: list[dict[str, Any]]
    emitter: str
    height: int
    msg_cid: dict[str, str]
    key: tuple[str, ...] | None  # None: whatever tipset the chain has at `height`
    reverted: bool
    claim: dict[str, Any] | None  # decoded entries of verifreg claim events


def _key_json(cids: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    return [{"/": c} for c in cids]


def _key_tuple(tsk: list[dict[str, str]] | None) -> tuple[str, ...]:
    return tuple(c["/"] for c in tsk or ())


def _shake_b64(seed: str, size: int) -> str:
    return base64.b64encode(hashlib.shake_256(seed.encode()).digest(size)).decode("ascii")


@lru_cache(maxsize=16384)
def _synthetic_cids(height: int, gen: int, count: int, first: int = 0) -> tuple[str, ...]:
    # Block i of fork generation g at a height; cached because hashing dominates scans.
    return tuple(synthetic_tipset_cid(height, gen * 1000 + first + i) for i in range(count))


def _default_block_count(height: int) -> int:
    # Mainnet tipsets carry 1-8 blocks; vary it so key handling is exercised.
    return 1 + hashlib.sha256(f"blocks:{height}".encode()).digest()[0] % 5


class FakeChain:
    """The chain the server serves. Tipsets are derived on demand from the height (so a
    head at 4.6 M costs nothing); everything is guarded by one lock.

    Mutate it between (or during) requests: add_deal / remove_deal / update_deal_state
    (unversioned: every height sees the change, and no event says so), activate_deal /
    terminate_deal / complete_deal (what the market actor does: a change from the next
    tipset on and the event that announces it), add_event, set_head / advance / grow_head,
    reorg; `null_rounds`, `finality` and `finalized_override` (an F3-finalized height) are
    plain attributes."""

    def __init__(
        self,
        head_height: int = 10_000,
        *,
        finality: int = 900,
        network_version: int = 28,
        next_deal_id: int = 1,
    ) -> None:
        self._lock = threading.RLock()
        self.head_height = head_height
        self.finality = finality
        self.finalized_override: int | None = None
        self.network_version = network_version
        self.null_rounds: set[int] = set()
        self.max_event_range = 2880  # Lotus [Events] MaxFilterHeightRange
        self.max_event_results = 10_000  # Lotus [Events] MaxFilterResults
        # Lotus drops reverted events from height-range queries; set True to emulate a node
        # (or a subscription) that reports them with "reverted": true instead.
        self.range_queries_include_reverted = False
        self.deals: dict[int, dict[str, Any]] = {}
        self.next_deal_id = next_deal_id
        self._first_next_id = next_deal_id
        self._deal_added_at: dict[int, int] = {}  # kept after removal: NextID never goes back
        # Versioned changes: (height of the message, State fields to set, or None: removed).
        self._deal_changes: dict[int, list[tuple[int, dict[str, Any] | None]]] = {}
        self._market_log: list[tuple[int, int]] = []  # (height, version) of each deal change
        self._market_at: dict[int, tuple[int, int]] = {}
        self._events: list[_Event] = []  # sorted by height, insertion order within a height
        self._fork_points: list[int] = []
        self._extra_blocks: dict[tuple[int, int], int] = {}  # (height, fork generation) → n
        self._real_cids: dict[int, tuple[str, ...]] = {}
        self._real_blocks: dict[str, dict[str, Any]] = {}
        self._known_keys: dict[tuple[str, ...], int] = {}  # every key ever served → height
        # StateMinerInfo per actor id: (PeerId, Multiaddrs as base64 strings, or None)
        self._miners: dict[int, tuple[str | None, list[Any] | None]] = {}
        self._next_claim_id = 900_000_000

    @classmethod
    def from_fixtures(cls) -> FakeChain:
        """The 360 real claim events (4622129-4622139, on their real tipset keys), the real
        deals (visible from genesis) and head = 4622140 + 900: the finalized tipset is
        4622140, whose parent state has executed every one of the events.

        The tipset at 4622139 has the 4 blocks the events' tipsetKey names: the 3 real
        ChainHead blocks (real headers) plus the block that arrived after that snapshot; the
        3-block key of the snapshot still resolves, as it does on a Lotus node."""
        chain = cls(head_height=REAL_EVENTS_TO + 901)
        events = load_real_claim_events()
        for event in events:
            chain._real_cids.setdefault(event["height"], _key_tuple(event["tipsetKey"]))
        head = load_real_chainhead()
        for cid, block in zip(head["Cids"], head["Blocks"], strict=True):
            chain._real_blocks[cid["/"]] = block
        chain._known_keys[_key_tuple(head["Cids"])] = head["Height"]
        for event in events:
            chain.add_event(event)
        for deal_id, value in load_real_deals().items():
            chain.add_deal(deal_id, value, height=0)
        return chain

    # --- tipsets ---------------------------------------------------------------------------

    def _generation(self, height: int) -> int:
        return sum(1 for p in self._fork_points if p <= height)

    def _block_cids(self, height: int) -> tuple[str, ...]:
        gen = self._generation(height)
        real = self._real_cids.get(height) if gen == 0 else None
        key = real or _synthetic_cids(height, gen, _default_block_count(height))
        extra = self._extra_blocks.get((height, gen), 0)
        if extra:
            key += _synthetic_cids(height, gen, extra, first=500)
        self._known_keys.setdefault(key, height)
        return key

    def _non_null_at_or_below(self, height: int) -> int:
        while height > 0 and height in self.null_rounds:
            height -= 1
        return height

    def _head(self) -> int:
        return self._non_null_at_or_below(self.head_height)

    def _tipset_json(self, height: int, cids: tuple[str, ...] | None = None) -> dict[str, Any]:
        cids = cids or self._block_cids(height)
        if height > 0:
            parents = _key_json(self._block_cids(self._non_null_at_or_below(height - 1)))
        else:
            parents = [{"/": synthetic_object_cid("genesis parent")}]
        blocks = [
            self._real_blocks.get(c) or self._synthetic_block(height, c, parents) for c in cids
        ]
        return {"Cids": _key_json(cids), "Blocks": blocks, "Height": height}

    @staticmethod
    def _synthetic_block(height: int, cid: str, parents: list[dict[str, str]]) -> dict[str, Any]:
        # Field order of Lotus' BlockHeader JSON; values are plausible, not verifiable.
        miner = 1000 + int.from_bytes(hashlib.sha256(cid.encode()).digest()[:4], "big") % 3_500_000
        parent = parents[0]["/"]
        return {
            "Miner": f"f0{miner}",
            "Ticket": {"VRFProof": _shake_b64(f"ticket:{cid}", 96)},
            "ElectionProof": {"WinCount": 1, "VRFProof": _shake_b64(f"election:{cid}", 96)},
            "BeaconEntries": [
                {
                    "Round": max(1, 14722392 + 10 * (height - 4622139)),
                    "Data": _shake_b64(f"beacon:{height}", 48),
                }
            ],
            "WinPoStProof": [{"PoStProof": 4, "ProofBytes": _shake_b64(f"post:{cid}", 192)}],
            "Parents": parents,
            "ParentWeight": str(max(0, 23830 * height - 1662840)),  # 110143909530 at 4622139
            "Height": height,
            "ParentStateRoot": {"/": synthetic_object_cid(f"state root:{parent}")},
            "ParentMessageReceipts": {"/": synthetic_object_cid(f"receipts:{parent}")},
            "Messages": {"/": synthetic_object_cid(f"messages:{cid}")},
            "BLSAggregate": {"Type": 2, "Data": _shake_b64(f"bls:{cid}", 96)},
            "Timestamp": GENESIS_TIMESTAMP + EPOCH_SECONDS * height,
            "BlockSig": {"Type": 2, "Data": _shake_b64(f"sig:{cid}", 96)},
            "ForkSignaling": 0,
            "ParentBaseFee": "100",
        }

    def tipset_key(self, height: int) -> list[dict[str, str]]:
        """The current key of the tipset at `height` (or below it, for a null round)."""
        with self._lock:
            return _key_json(self._block_cids(self._non_null_at_or_below(height)))

    def tipset(self, height: int) -> dict[str, Any]:
        """The ChainGetTipSetByHeight result for `height` anchored at the head."""
        return self.get_tipset_by_height(height, None)

    def _resolve(self, tsk: list[dict[str, str]] | None) -> tuple[int, tuple[str, ...]]:
        """(height, cids) of a tipset key param; null / [] mean the head."""
        if not tsk:
            height = self._head()
            return height, self._block_cids(height)
        key = _key_tuple(tsk)
        height = self._known_keys.get(key)
        if height is None:
            # Keys of orphaned tipsets (reorg, grow_head) stay known, like blocks stay in a
            # Lotus blockstore; only keys this chain never had are unknown.
            raise RPCError(
                f"loading tipset {{{','.join(key)}}}: get block {key[0]}: "
                f"ipld: could not find {key[0]}"
            )
        return height, key

    def set_head(self, height: int) -> None:
        with self._lock:
            if height < 0:
                raise ValueError("head height must be >= 0")
            self.head_height = height

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.head_height += n

    def grow_head(self) -> None:
        """A late block joins the head tipset: same height, new key."""
        with self._lock:
            head = self._head()
            slot = (head, self._generation(head))
            self._extra_blocks[slot] = self._extra_blocks.get(slot, 0) + 1

    def reorg(self, from_height: int) -> None:
        """Tipsets at >= from_height get new CIDs. Events there are marked reverted (keeping
        the orphaned tipset key) and the versioned deal changes of those heights are undone;
        add the replacement events yourself."""
        with self._lock:
            for deal_id, changes in self._deal_changes.items():
                self._deal_changes[deal_id] = [c for c in changes if c[0] < from_height]
            self._market_changed(from_height)
            for event in self._events[self._event_index(from_height) :]:
                if not event.reverted:
                    event.key = event.key or self._block_cids(event.height)
                    event.reverted = True
            self._fork_points.append(from_height)

    # --- market deals ----------------------------------------------------------------------

    def add_deal(
        self,
        deal_id: int,
        value: dict[str, Any],
        *,
        height: int | None = None,
        event: bool = True,
    ) -> None:
        """Publish a `{Proposal, State}` value (see chain_data.make_deal), visible to state
        calls at tipsets >= `height` (default: the current head). With `event`, the
        deal-published event goes at height - 1: the publishing message was in the tipset
        before the first one whose (parent) state holds the deal."""
        with self._lock:
            at = self.head_height if height is None else height
            # Copy the two levels we may replace, so update_deal_state never edits caller data.
            self.deals[deal_id] = {
                "Proposal": dict(value["Proposal"]),
                "State": dict(value["State"]),
            }
            self._deal_added_at[deal_id] = at
            self.next_deal_id = max(self.next_deal_id, deal_id + 1)
            self._market_changed(at)
            if event and at > 0:
                self._deal_event("deal-published", deal_id, at - 1)

    def activate_deal(self, deal_id: int, *, height: int, sector_number: int = 1) -> None:
        """A sector holding the deal is proven at `height`: SectorStartEpoch = height from
        tipset height + 1 on, and a deal-activated event at `height`."""
        self._change_deal(
            deal_id,
            height,
            {"SectorStartEpoch": height, "LastUpdatedEpoch": height, "SectorNumber": sector_number},
            "deal-activated",
        )

    def terminate_deal(self, deal_id: int, *, height: int) -> None:
        """The deal's sector is terminated early at `height`: the market actor slashes the
        deal and takes it out of state at once (builtin-actors on_miner_sectors_terminate),
        so from tipset height + 1 on it is not found; a deal-terminated event at `height`."""
        self._change_deal(deal_id, height, None, "deal-terminated")

    def complete_deal(self, deal_id: int, *, height: int) -> None:
        """The deal ran its term and is settled at `height`: gone from tipset height + 1 on,
        with a deal-completed event."""
        self._change_deal(deal_id, height, None, "deal-completed")

    def _change_deal(
        self, deal_id: int, height: int, fields: dict[str, Any] | None, kind: str
    ) -> None:
        with self._lock:
            if deal_id not in self.deals:
                raise KeyError(f"no deal {deal_id}")
            self._deal_changes.setdefault(deal_id, []).append((height, fields))
            self._market_changed(height + 1)
            self._deal_event(kind, deal_id, height)

    def _deal_event(self, kind: str, deal_id: int, height: int) -> None:
        proposal = self.deals[deal_id]["Proposal"]
        self.add_event(
            encode_deal_event(
                kind,
                deal_id=deal_id,
                client=proposal["Client"],
                provider=proposal["Provider"],
                height=height,
                msg_cid=synthetic_message_cid(
                    8 * deal_id + DEAL_EVENT_KINDS.index(kind) + 4_000_000_000
                ),
                tipset_key=None,
            )
        )

    def remove_deal(self, deal_id: int) -> None:
        """The deal leaves market state (expired and settled, or slashed), at every height:
        like update_deal_state, removal is not versioned."""
        with self._lock:
            del self.deals[deal_id]
            self._market_changed(self.head_height)

    def update_deal_state(self, deal_id: int, **fields: Any) -> None:
        """Change State fields, e.g. update_deal_state(7, SectorStartEpoch=100). Deal contents
        are not versioned: older tipsets see the new values too."""
        with self._lock:
            deal = self.deals[deal_id]
            # Replace rather than mutate: a response being encoded keeps the old dict.
            self.deals[deal_id] = {
                "Proposal": deal["Proposal"],
                "State": {**deal["State"], **fields},
            }
            self._market_changed(self.head_height)

    def _market_changed(self, height: int) -> None:
        self._market_log.append((height, len(self._market_log) + 1))
        self._market_at.clear()

    def _market_at_height(self, height: int) -> tuple[int, int]:
        """(NextID, change counter) of market state at `height`. Scanners poll the same
        finalized height over and over: remember the answer until the market changes."""
        if height >= self.head_height:
            return self.next_deal_id, len(self._market_log)
        if height not in self._market_at:
            visible = [i + 1 for i, at in self._deal_added_at.items() if at <= height]
            version = max((v for at, v in self._market_log if at <= height), default=0)
            self._market_at[height] = (max([self._first_next_id, *visible]), version)
        return self._market_at[height]

    def read_state(self, address: str, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        with self._lock:
            height, _ = self._resolve(tsk)
            if address not in (MARKET_ACTOR, "t05"):
                raise RPCError("getting actor: actor not found")
            next_id, version = self._market_at_height(height)

            def root(name: str) -> dict[str, str]:
                return {"/": synthetic_object_cid(f"market {name}:{next_id}:{version}")}

            # Go field order of the v16 market State struct (GST builtin/v16/market).
            state = {
                "Proposals": root("proposals"),
                "States": root("states"),
                "PendingProposals": root("pending"),
                "EscrowTable": root("escrow"),
                "LockedTable": root("locked"),
                "NextID": next_id,
                "DealOpsByEpoch": root("ops"),
                "LastCron": max(0, height - 1),
                "TotalClientLockedCollateral": "0",
                "TotalProviderLockedCollateral": "0",
                "TotalClientStorageFee": "0",
                "PendingDealAllocationIds": root("pending allocations"),
                "ProviderSectors": root("provider sectors"),
            }
            return {
                "Balance": MARKET_ACTOR_BALANCE,
                "Code": {"/": MARKET_ACTOR_CODE},
                "State": state,
            }

    def market_storage_deal(self, deal_id: int, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        with self._lock:
            height, _ = self._resolve(tsk)
            deal = self.deals.get(deal_id)
            if deal is None or self._deal_added_at[deal_id] > height:
                raise RPCError(DEAL_NOT_FOUND.format(deal_id))
            changes = [c for at, c in self._deal_changes.get(deal_id, ()) if at < height]
            if not changes:
                return deal
            if any(c is None for c in changes):
                raise RPCError(DEAL_NOT_FOUND.format(deal_id))
            state = dict(deal["State"])
            for fields in changes:
                state.update(fields or {})
            return {"Proposal": deal["Proposal"], "State": state}

    # --- verified registry claims and actor events -----------------------------------------

    def add_event(self, event: dict[str, Any]) -> None:
        """Add a GetActorEventsRaw element (chain_data.encode_claim_event or a real one). A
        null tipsetKey means "the tipset this chain has at that height"."""
        with self._lock:
            key = _key_tuple(event.get("tipsetKey")) or None
            if key:
                self._known_keys.setdefault(key, event["height"])
            claim = _decode_claim(event)
            record = _Event(
                entries=event["entries"],
                emitter=event["emitter"],
                height=event["height"],
                msg_cid=event["msgCid"],
                key=key,
                reverted=bool(event.get("reverted")),
                claim=claim,
            )
            bisect.insort(self._events, record, key=lambda e: e.height)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event as GetActorEventsRaw would show it (reverted ones included)."""
        with self._lock:
            return [self._event_json(e) for e in self._events]

    def _event_index(self, height: int) -> int:
        return bisect.bisect_left(self._events, height, key=lambda e: e.height)

    def _event_json(self, event: _Event) -> dict[str, Any]:
        key = event.key or self._block_cids(self._non_null_at_or_below(event.height))
        return {
            "entries": event.entries,
            "emitter": event.emitter,
            "reverted": event.reverted,
            "height": event.height,
            "tipsetKey": _key_json(key),
            "msgCid": event.msg_cid,
        }

    def _claims_at(self, height: int) -> dict[tuple[int, int], dict[str, Any]]:
        """(provider, claim id) → Claim JSON in the parent state of the tipset at `height`."""
        claims: dict[tuple[int, int], dict[str, Any]] = {}
        for event in self._events[: self._event_index(height)]:
            c = event.claim
            if c is None or event.reverted:
                continue
            slot = (c["provider"], c["id"])
            if c["$type"] == "claim-removed":
                claims.pop(slot, None)
                continue
            claims[slot] = {
                "Provider": c["provider"],
                "Client": c["client"],
                "Data": {"/": c["piece-cid"]},
                "Size": c["piece-size"],
                "TermMin": c["term-min"],
                "TermMax": c["term-max"],
                "TermStart": c["term-start"],
                "Sector": c["sector"],
            }
        return claims

    @staticmethod
    def _lookup_id(address: str) -> int:
        try:
            return actor_id(address)
        except ValueError:
            raise RPCError(f"resolution lookup failed ({address}): actor not found") from None

    def get_claim(
        self, provider: str, claim_id: int, tsk: list[dict[str, str]] | None
    ) -> dict[str, Any] | None:
        with self._lock:
            provider_id = self._lookup_id(provider)
            height, _ = self._resolve(tsk)
            return self._claims_at(height).get((provider_id, claim_id))

    def get_claims(self, provider: str | None, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        """StateGetClaims (one provider) or, with provider None, StateGetAllClaims."""
        with self._lock:
            provider_id = None if provider is None else self._lookup_id(provider)
            height, _ = self._resolve(tsk)
            claims = {
                str(claim_id): claim
                for (prov, claim_id), claim in self._claims_at(height).items()
                if provider_id is None or prov == provider_id
            }
            return dict(sorted(claims.items()))  # Go map: keys sorted as strings

    def actor_events(self, flt: dict[str, Any] | None) -> list[dict[str, Any]] | None:
        """GetActorEventsRaw, following LOTUS:node/impl/full/actor_events.go and
        chain/index/events.go."""
        flt = {k.lower(): v for k, v in (flt or {}).items()}  # Go matches keys case-insensitively
        from_h, to_h = flt.get("fromheight"), flt.get("toheight")
        tsk = flt.get("tipsetkey")
        with self._lock:
            if tsk:
                if from_h is not None or to_h is not None:
                    raise RPCError("cannot specify both TipSetKey and FromHeight/ToHeight")
                height, key = self._resolve(tsk)
                start, stop = self._event_index(height), self._event_index(height + 1)
                candidates = [
                    e
                    for e in self._events[start:stop]
                    if (e.key or self._block_cids(e.height)) == key
                ]
            else:
                self._check_height_range(from_h, to_h)
                head = self.head_height
                # No fromHeight, or one at the head: Lotus does not read its event index.
                if from_h is None or from_h >= head:
                    return None
                # Events of a tipset exist once a child tipset executed it: height < head.
                last = head - 1 if to_h is None else min(to_h, head - 1)
                candidates = [
                    e
                    for e in self._events[self._event_index(from_h) : self._event_index(last + 1)]
                    if self.range_queries_include_reverted or not e.reverted
                ]
            matches = [e for e in candidates if _event_matches(e, flt)]
            limit = self.max_event_results
            if not tsk and limit and len(matches) > limit and len({e.height for e in matches}) > 1:
                # Lotus lets one tipset exceed the cap, not a multi-tipset range.
                raise RPCError(TOO_MANY_EVENTS)
            return [self._event_json(e) for e in matches] or None

    def _check_height_range(self, from_h: int | None, to_h: int | None) -> None:
        # parseHeightRange in LOTUS:node/impl/full/actor_events.go, messages verbatim.
        heaviest, max_range = self.head_height, self.max_event_range
        if from_h is not None and from_h < 0:
            raise RPCError("range 'from' must be greater than or equal to 0")
        lo = -1 if from_h is None else from_h
        hi = -1 if to_h is None else to_h
        if lo == -1 and hi > 0 and hi - heaviest > max_range:
            raise RPCError(
                f"invalid epoch range: 'to' height is too far in the future (maximum: {max_range})"
            )
        if lo >= 0 and hi == -1 and heaviest - lo > max_range:
            raise RPCError(
                f"invalid epoch range: 'from' height is too far in the past (maximum: {max_range})"
            )
        if lo >= 0 and hi >= 0:
            if lo > hi:
                raise RPCError(
                    f"invalid epoch range: 'to' height ({lo}) must be after 'from' height ({hi})"
                )
            if hi - lo > max_range:
                raise RPCError(
                    "invalid epoch range: range between to and 'from' heights is too large "
                    f"(maximum: {max_range})"
                )

    # --- storage providers -----------------------------------------------------------------

    def set_miner_addrs(
        self, provider: str, multiaddrs: list[str], *, peer_id: str | None = None
    ) -> None:
        """What StateMinerInfo answers for `provider`: these text multiaddrs, sent as Lotus
        sends them (base64 of the binary form), e.g. ["/ip4/127.0.0.1/tcp/7777/http"]."""
        encoded = [base64.b64encode(to_binary(parse_text(m))).decode() for m in multiaddrs]
        self.set_miner_info(provider, peer_id=peer_id, multiaddrs=encoded)

    def set_miner_info(
        self, provider: str, *, peer_id: str | None = None, multiaddrs: list[Any] | None = None
    ) -> None:
        """StateMinerInfo's PeerId and Multiaddrs for `provider` verbatim (anything a hostile
        miner might have put on chain, or a hostile node might send)."""
        with self._lock:
            self._miners[actor_id(provider)] = (peer_id, multiaddrs)

    def miner_info(self, address: str, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        """StateMinerInfo in Lotus' field order; a miner nobody set has no PeerId and null
        Multiaddrs (what most miners that never set them answer)."""
        with self._lock:
            miner = self._lookup_id(address)
            self._resolve(tsk)
            peer_id, multiaddrs = self._miners.get(miner, (None, None))
            owner = f"f0{miner + 1}"
            return {
                "Owner": owner,
                "Worker": f"f0{miner + 2}",
                "NewWorker": "<empty>",
                "ControlAddresses": None,
                "WorkerChangeEpoch": -1,
                "PeerId": peer_id,
                "Multiaddrs": multiaddrs,
                "WindowPoStProofType": 13,
                "SectorSize": 34359738368,
                "WindowPoStPartitionSectors": 2349,
                "ConsensusFaultElapsed": -1,
                "PendingOwnerAddress": None,
                "Beneficiary": owner,
                "BeneficiaryTerm": {"Quota": "0", "UsedQuota": "0", "Expiration": 0},
                "PendingBeneficiaryTerm": None,
            }

    def add_verified_piece(
        self,
        piece_cid: str,
        piece_size: int,
        *,
        payload_cid: str | None = None,
        provider: str = WALKTHROUGH_PROVIDER,
        term: int = 1_555_200,
    ) -> tuple[int, int]:
        """An active verified deal and an active claim of the piece held by `provider`,
        both announced by events just below the finalized tipset so a scanner with no
        checkpoint reads them in its first pass; the deal's label is `payload_cid` (or
        empty). Returns (deal id, claim id)."""
        with self._lock:
            height = self._head() - self.finality - 3
            deal_id = self.next_deal_id
            self.add_deal(
                deal_id,
                make_deal(
                    deal_id,
                    start_epoch=height + 10,
                    end_epoch=height + term,
                    label=payload_cid or "",
                    piece_cid=piece_cid,
                    piece_size=piece_size,
                    client=f"f0{WALKTHROUGH_CLIENT}",
                    provider=provider,
                ),
                height=height,
            )
            self.activate_deal(deal_id, height=height + 1)
            claim_id = self._claim(
                piece_cid, piece_size, provider, height=height + 1, term=term, sector=deal_id
            )
            return deal_id, claim_id

    def _claim(
        self,
        piece_cid: str,
        piece_size: int,
        provider: str,
        *,
        height: int,
        term: int,
        sector: int | None = None,
    ) -> int:
        """A `claim` event of the piece by `provider` at `height`; returns the claim id."""
        with self._lock:
            claim_id = self._next_claim_id
            self._next_claim_id += 1
            self.add_event(
                encode_claim_event(
                    "claim",
                    claim_id=claim_id,
                    client=WALKTHROUGH_CLIENT,
                    provider=provider,
                    piece_cid=piece_cid,
                    piece_size=piece_size,
                    term_min=term // 2,
                    term_max=term,
                    term_start=height,
                    sector=claim_id if sector is None else sector,
                    height=height,
                    msg_cid=synthetic_message_cid(5_000_000_000 + claim_id),
                    tipset_key=None,
                )
            )
            return claim_id

    def land_claim(self, piece_cid: str, piece_size: int, provider: str) -> int:
        """`provider` claims the piece in the next tipset, and the chain grows until that
        tipset is final, so a following scanner reads the claim on its next pass. Returns
        the claim id."""
        with self._lock:
            claim_id = self._claim(
                piece_cid, piece_size, provider, height=self._head() + 1, term=1_555_200
            )
        self.advance(self.finality + 2)
        return claim_id

    # --- chain methods ---------------------------------------------------------------------

    def state_network_version(self, tsk: list[dict[str, str]] | None) -> int:
        with self._lock:
            self._resolve(tsk)  # an unknown key fails, as on Lotus
            return self.network_version

    def chain_head(self) -> dict[str, Any]:
        with self._lock:
            return self._tipset_json(self._head())

    def get_tipset(self, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        with self._lock:
            height, key = self._resolve(tsk)
            return self._tipset_json(height, key)

    def get_tipset_by_height(self, height: int, tsk: list[dict[str, str]] | None) -> dict[str, Any]:
        with self._lock:
            anchor, key = self._resolve(tsk)
            return self._tipset_by_height(height, anchor, key)

    def _tipset_by_height(self, height: int, anchor: int, key: tuple[str, ...]) -> dict[str, Any]:
        # LOTUS:chain/store/store.go GetTipsetByHeight (prev=true: null round → the tipset
        # before it), messages verbatim.
        if height < 0:
            raise RPCError(f"height {height} is negative")
        if height > anchor:
            raise RPCError(
                "looking for tipset with height greater than start point, "
                f"req: {height}, head: {anchor}"
            )
        if height == anchor:
            return self._tipset_json(anchor, key)
        return self._tipset_json(self._non_null_at_or_below(height))

    def finalized_tipset(self) -> dict[str, Any]:
        with self._lock:
            head = self._head()
            if self.finalized_override is not None:  # F3 certificate
                target = min(self.finalized_override, head)
            else:  # EC fallback: head - 900
                target = head - self.finality
            return self._tipset_by_height(target, head, self._block_cids(head))


_CLAIM_FIELDS = {
    "$type",
    "id",
    "client",
    "provider",
    "piece-cid",
    "piece-size",
    "term-min",
    "term-max",
    "term-start",
    "sector",
}


def _decode_claim(event: dict[str, Any]) -> dict[str, Any] | None:
    """The decoded entries of a verified registry claim event, else None."""
    if event["emitter"] not in ("f06", "t06"):
        return None
    try:
        decoded = decode_event_entries(event)
    except (ValueError, TypeError, cbor2.CBORError):  # bad base64 / CBOR: served as is
        return None
    if decoded.get("$type") not in CLAIM_EVENT_KINDS or not decoded.keys() >= _CLAIM_FIELDS:
        return None
    return decoded


def _event_matches(event: _Event, flt: dict[str, Any]) -> bool:
    addresses = flt.get("addresses")
    if addresses and not any(_same_address(a, event.emitter) for a in addresses):
        return False
    for key, wanted in (flt.get("fields") or {}).items():
        if not wanted:  # Lotus skips keys with no values
            continue
        # Compare bytes, as Lotus does: the base64 text may differ (e.g. padding).
        blocks = {(_ci(b, "codec"), base64.b64decode(_ci(b, "value") or "")) for b in wanted}
        if not any(
            e["Key"] == key
            and e["Flags"] & 0x03  # only indexed entries can be filtered on
            and (e["Codec"], base64.b64decode(e["Value"])) in blocks
            for e in event.entries
        ):
            return False
    return True


def _ci(obj: dict[str, Any], name: str) -> Any:
    """Go's encoding/json: field names match case-insensitively ("codec" or "Codec")."""
    for key, value in obj.items():
        if key.lower() == name:
            return value
    return None


def _same_address(a: str, b: str) -> bool:
    return isinstance(a, str) and a[1:] == b[1:] and a[:1] in "ft"


# --- faults --------------------------------------------------------------------------------


@dataclass
class _Fault:
    kind: str  # "status" | "drop" | "delay" | "rpc_error" | "body"
    remaining: int
    status: int = 0
    body: bytes = b""
    seconds: float = 0.0
    method: str = ""
    code: int = 1
    message: str = ""


def _bare(method: str) -> str:
    return method.removeprefix("Filecoin.")


class Faults:
    """Failures for the next matching requests, consumed in the order they were added.
    HTTP faults (status, drop, delay) hit whole HTTP requests; rpc_error hits calls to one
    method (each call in a batch counts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: deque[_Fault] = deque()
        self._rpc: list[_Fault] = []

    def http_status(self, status: int, times: int = 1) -> None:
        """Answer HTTP `status` with a plain-text body, as a proxy in front of Lotus would."""
        self._add_http(_Fault("status", times, status=status))

    def drop_connection(self, times: int = 1) -> None:
        """Read the request, then close the socket without writing anything."""
        self._add_http(_Fault("drop", times))

    def raw_body(self, body: bytes, times: int = 1) -> None:
        """Answer 200 with these bytes as JSON, whatever was asked (a hostile node)."""
        self._add_http(_Fault("body", times, body=body))

    def delay(self, seconds: float, times: int = 1) -> None:
        """Sleep before answering normally (for client timeouts)."""
        self._add_http(_Fault("delay", times, seconds=seconds))

    def rpc_error(
        self, method: str, code: int = 1, message: str = "injected error", times: int = 1
    ) -> None:
        """Answer calls to `method` ("X" or "Filecoin.X") with this JSON-RPC error."""
        with self._lock:
            self._rpc.append(
                _Fault("rpc_error", times, method=_bare(method), code=code, message=message)
            )

    def clear(self) -> None:
        with self._lock:
            self._http.clear()
            self._rpc.clear()

    def pending(self) -> int:
        """How many fault occurrences are still waiting."""
        with self._lock:
            return sum(f.remaining for f in self._http) + sum(f.remaining for f in self._rpc)

    def _add_http(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._http.append(fault)

    def _take_http(self) -> _Fault | None:
        with self._lock:
            if not self._http:
                return None
            fault = self._http[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._http.popleft()
            return fault

    def _take_rpc(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._rpc:
                if fault.method == _bare(method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._rpc.remove(fault)
                    return fault
            return None


# --- JSON-RPC ------------------------------------------------------------------------------


class _ProtocolError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Positional parameter kinds per method, and the Go type names go-jsonrpc reports.
_METHODS: dict[str, tuple[str, ...]] = {
    "ChainHead": (),
    "ChainGetFinalizedTipSet": (),
    "ChainGetTipSet": ("tsk",),
    "ChainGetTipSetByHeight": ("epoch", "tsk"),
    "StateNetworkVersion": ("tsk",),
    "StateReadState": ("address", "tsk"),
    "StateMarketStorageDeal": ("deal_id", "tsk"),
    "StateGetClaim": ("address", "claim_id", "tsk"),
    "StateGetClaims": ("address", "tsk"),
    "StateGetAllClaims": ("tsk",),
    "StateMinerInfo": ("address", "tsk"),
    "GetActorEventsRaw": ("filter",),
}
_V1_ONLY = {"ChainGetFinalizedTipSet", "GetActorEventsRaw"}  # absent from V0DOC
_GO_TYPES = {
    "epoch": "abi.ChainEpoch",
    "tsk": "types.TipSetKey",
    "address": "address.Address",
    "deal_id": "abi.DealID",
    "claim_id": "verifreg.ClaimId",
    "filter": "*types.ActorEventFilter",  # a pointer param: reported as **types.…
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {json.dumps(value)}"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _cannot(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {_json_kind(value)} into Go value of type {go_type}"


def _check_param(kind: str, value: Any) -> str | None:
    """Why Go would fail to decode `value` as this parameter, or None if it decodes."""
    go_type = _GO_TYPES[kind].removeprefix("*")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "epoch":
        return None if is_int else _cannot(value, go_type)
    if kind in ("deal_id", "claim_id"):
        return None if is_int and value >= 0 else _cannot(value, go_type)
    if kind == "address":
        if not isinstance(value, str):
            return _cannot(value, go_type)
        if value[:1] not in ("f", "t"):
            return "unknown address network"
        if value[1:2] not in ("0", "1", "2", "3", "4") or len(value) < 3:
            return "unknown address protocol"
        return None
    if kind == "tsk":
        if value is None:
            return None
        if not isinstance(value, list):
            return _cannot(value, "[]cid.Cid")
        for item in value:
            if not (isinstance(item, dict) and isinstance(item.get("/"), str)):
                return _cannot(item, "cid.Cid")
            if not _parses_as_cid(item["/"]):
                return f"invalid cid: {item['/']!r} is not a base32 CIDv1"
        return None
    return _check_filter(value)


def _parses_as_cid(text: str) -> bool:
    try:
        return len(cid_from_str(text)) > 4
    except (ValueError, binascii.Error):
        return False


def _check_filter(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _cannot(value, "types.ActorEventFilter")
    fields = {k.lower(): v for k, v in value.items()}
    if fields.get("fields") is not None and not isinstance(fields["fields"], dict):
        return (
            f"json: cannot unmarshal {_json_kind(fields['fields'])} into Go struct field "
            "ActorEventFilter.fields of type map[string][]types.ActorEventBlock"
        )
    if fields.get("addresses") is not None and not isinstance(fields["addresses"], list):
        return (
            f"json: cannot unmarshal {_json_kind(fields['addresses'])} into Go struct field "
            "ActorEventFilter.addresses of type []address.Address"
        )
    if _check_param("tsk", fields.get("tipsetkey")):
        return "json: cannot unmarshal tipsetKey into Go value of type types.TipSetKey"
    for name in ("fromHeight", "toHeight"):
        height = fields.get(name.lower())
        if height is not None and (isinstance(height, bool) or not isinstance(height, int)):
            return (
                f"json: cannot unmarshal {_json_kind(height)} into Go struct field "
                f"ActorEventFilter.{name} of type abi.ChainEpoch"
            )
    for blocks in (fields.get("fields") or {}).values():
        if blocks is not None and not isinstance(blocks, list):
            return _cannot(blocks, "[]types.ActorEventBlock")
        for block in blocks or ():
            if not isinstance(block, dict):
                return _cannot(block, "types.ActorEventBlock")
            try:
                base64.b64decode(_ci(block, "value") or "", validate=True)
            except (binascii.Error, TypeError):
                return "illegal base64 data at input byte 0"
    return None


def _go_json(obj: Any) -> bytes:
    """encoding/json.Encoder output: compact, HTML-escaped, UTF-8, trailing newline."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8") + b"\n"


def _error_envelope(request_id: Any, code: int, message: str) -> bytes:
    # Sorted keys, as go-jsonrpc marshals the envelope from a map; error fields in struct order.
    return _go_json(
        {"error": {"code": code, "message": message}, "id": request_id, "jsonrpc": "2.0"}
    )


def _http_status_for(code: int) -> int:
    if code == INVALID_REQUEST:
        return 400
    return 500 if code in _PROTOCOL_CODES else 200


def _normalize_id(value: Any) -> Any:
    """go-jsonrpc decodes ids into interface{}: numbers become float64 (and come back
    rendered like Go floats), strings and null stay; anything else is refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        go_type = {list: "[]interface {}", dict: "map[string]interface {}", bool: "bool"}[
            type(value)
        ]
        raise _ProtocolError(PARSE_ERROR, f"failed to parse ID: invalid id type: {go_type}")
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 1e21 else number


# --- HTTP server ---------------------------------------------------------------------------


class MethodCounter(Counter):
    """Calls served, by method name without the "Filecoin." prefix; lookups accept either."""

    def __getitem__(self, key: str) -> int:
        return super().__getitem__(_bare(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(_bare(key) if isinstance(key, str) else key)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(_bare(key), default)


class FakeLotusServer(ServedFake):
    """`with FakeLotusServer(chain, token=None) as lotus:` serves `chain` at `lotus.url`
    (/rpc/v1; `lotus.url_v0` for /rpc/v0) on a random port, in daemon threads.

    `requests` counts calls by method (each call of a batch; keys without the "Filecoin."
    prefix, lookups take either), `http_requests` counts POSTs (faulted ones included),
    `faults` injects failures, `reset_stats()` zeroes both counters."""

    def __init__(
        self,
        chain: FakeChain | None = None,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.chain = chain if chain is not None else FakeChain()
        self.token = token
        self.faults = Faults()
        self.requests = MethodCounter()
        self.http_requests = 0
        super().__init__(host=host, port=port)
        self._stats_lock = threading.Lock()

    def _server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _HTTPServer(address, _Handler)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/rpc/v1"

    @property
    def url_v0(self) -> str:
        return f"http://{self._host}:{self.port}/rpc/v0"

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.requests.clear()
            self.http_requests = 0

    # --- request handling (called from handler threads) ------------------------------------

    def _count(self, method: str | None = None) -> None:
        with self._stats_lock:
            if method is None:
                self.http_requests += 1
            else:
                self.requests[_bare(method)] += 1

    def handle_body(self, raw: bytes, version: str = "v1") -> tuple[int, bytes]:
        """(HTTP status, body) for one POST body, like go-jsonrpc's handleReader."""
        text = raw.strip()
        if not text:
            return 400, _error_envelope(None, INVALID_REQUEST, "Invalid request")
        try:
            decoded = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return 500, _error_envelope(None, PARSE_ERROR, "Parse error")
        if text[:1] == b"[" and text[-1:] == b"]":
            if not isinstance(decoded, list) or any(
                not isinstance(r, dict | None) for r in decoded
            ):
                return 500, _error_envelope(None, PARSE_ERROR, "Parse error")
            if not decoded:
                return 400, _error_envelope(None, INVALID_REQUEST, "Invalid request")
            parts = [
                body for _, body in (self._handle_one(r or {}, version) for r in decoded) if body
            ]
            # go-jsonrpc has written "[" before the first element: always HTTP 200.
            return 200, b"[" + b",".join(parts) + b"]"
        if not isinstance(decoded, dict | None):
            return 500, _error_envelope(None, PARSE_ERROR, "Parse error")
        status, body = self._handle_one(decoded or {}, version)
        return status, body or b""

    def _handle_one(self, request: dict[str, Any], version: str) -> tuple[int, bytes | None]:
        """One call; body None for a notification (no id), which gets no answer."""
        try:
            request_id = _normalize_id(request.get("id"))
        except _ProtocolError as exc:
            return 500, _error_envelope(None, exc.code, exc.message)
        method = request.get("method")
        method = method if isinstance(method, str) else ""
        self._count(method)
        try:
            result = self._call(method, request.get("params"), version)
        except _ProtocolError as exc:
            return _http_status_for(exc.code), _error_envelope(request_id, exc.code, exc.message)
        except RPCError as exc:
            if request_id is None:
                return 200, None
            return _http_status_for(exc.code), _error_envelope(request_id, exc.code, exc.message)
        except Exception as exc:  # a bug in this fake: answer like go-jsonrpc answers a panic
            message = f"fatal error calling '{method}': panic in rpc method '{method}': {exc!r}"
            return 500, _error_envelope(request_id, 0, message)
        if request_id is None:
            return 200, None
        return 200, _go_json({"id": request_id, "jsonrpc": "2.0", "result": result})

    def _call(self, method: str, params: Any, version: str) -> Any:
        name = method.removeprefix("Filecoin.") if method.startswith("Filecoin.") else None
        kinds = _METHODS.get(name or "")
        if kinds is None or (version == "v0" and name in _V1_ONLY):
            raise _ProtocolError(METHOD_NOT_FOUND, f"method '{method}' not found")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise _ProtocolError(
                PARSE_ERROR,
                "unmarshaling param array: json: cannot unmarshal "
                f"{_json_kind(params)} into Go value of type []jsonrpc.param",
            )
        if len(params) != len(kinds):
            raise _ProtocolError(
                INVALID_PARAMS,
                f"wrong param count (method '{method}'): {len(params)} != {len(kinds)}",
            )
        for kind, value in zip(kinds, params, strict=True):
            problem = _check_param(kind, value)
            if problem:
                raise _ProtocolError(
                    PARSE_ERROR,
                    f"unmarshaling params for '{method}' (param: *{_GO_TYPES[kind]}): {problem}",
                )
        fault = self.faults._take_rpc(name)
        if fault is not None:
            raise RPCError(fault.message, fault.code)
        return self._dispatch(name, params)

    def _dispatch(self, name: str, p: list[Any]) -> Any:
        chain = self.chain
        if name == "ChainHead":
            return chain.chain_head()
        if name == "ChainGetFinalizedTipSet":
            return chain.finalized_tipset()
        if name == "ChainGetTipSet":
            return chain.get_tipset(p[0])
        if name == "ChainGetTipSetByHeight":
            return chain.get_tipset_by_height(p[0], p[1])
        if name == "StateNetworkVersion":
            return chain.state_network_version(p[0])
        if name == "StateReadState":
            return chain.read_state(p[0], p[1])
        if name == "StateMarketStorageDeal":
            return chain.market_storage_deal(p[0], p[1])
        if name == "StateGetClaim":
            return chain.get_claim(p[0], p[1], p[2])
        if name == "StateGetClaims":
            return chain.get_claims(p[0], p[1])
        if name == "StateGetAllClaims":
            return chain.get_claims(None, p[0])
        if name == "StateMinerInfo":
            return chain.miner_info(p[0], p[1])
        if name == "GetActorEventsRaw":
            return chain.actor_events(p[0])
        raise AssertionError(name)


class _HTTPServer(FakeHTTPServer):
    fake: FakeLotusServer


class _Handler(FakeHandler):
    server: _HTTPServer

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go's net/http sends Date but no Server header.
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def do_POST(self) -> None:
        fake = self.server.fake
        fake._count()
        body = self._read_body()
        if body is None:
            return
        fault = fake.faults._take_http()
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "status":
            text = f"{fault.status} {self.responses.get(fault.status, ('',))[0]}\n".encode()
            self._send(fault.status, text, "text/plain; charset=utf-8")
            return
        if fault is not None and fault.kind == "body":
            self._send(200, fault.body, "application/json")
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        url = urlsplit(self.path)
        if url.path == "/fake/claim":
            self._land_claim(fake.chain, body)
            return
        version = {"/rpc/v1": "v1", "/rpc/v0": "v0"}.get(url.path)
        if version is None:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        if fake.token is not None and not self._authorized(fake.token, url.query):
            self._send(401, b"", None)  # go-jsonrpc auth handler: bare 401
            return
        status, payload = fake.handle_body(body, version)
        self._send(status, payload, "application/json")

    def _land_claim(self, chain: FakeChain, body: bytes) -> None:
        try:
            asked = json.loads(body)
            claim_id = chain.land_claim(
                str(asked["piece_cid"]), int(asked["piece_size"]), str(asked["provider"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, f"{exc!r}\n".encode(), "text/plain; charset=utf-8")
            return
        self._send(200, json.dumps({"claim_id": claim_id}).encode(), "application/json")

    def _authorized(self, token: str, query: str) -> bool:
        # go-jsonrpc auth.Handler: the header, or ?token= when the header is absent. (A real
        # node lets token-less requests read; with a token set this fake insists on it.)
        header = self.headers.get("Authorization")
        if header is None:
            tokens = parse_qs(query).get("token")
            header = f"Bearer {tokens[0]}" if tokens else ""
        return header == f"Bearer {token}"

    def _read_body(self) -> bytes | None:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        except (OSError, ValueError):
            self.close_connection = True
            return None

    def _send(self, status: int, body: bytes, content_type: str | None) -> None:
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 405:
                self.send_header("Allow", "POST")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the client gave up (e.g. timed out during a delay fault)
            self.close_connection = True

    def _not_allowed(self) -> None:
        self._read_body()
        self._send(405, b"405 method not allowed\n", "text/plain; charset=utf-8")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed


def url_multiaddr(url: str) -> str:
    """The text multiaddr a storage provider would publish for an HTTP(S) base URL:
    http://127.0.0.1:7777 → /ip4/127.0.0.1/tcp/7777/http."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an HTTP(S) URL: {url!r}")
    host = parts.hostname
    try:
        kind = "ip4" if ipaddress.ip_address(host).version == 4 else "ip6"
    except ValueError:
        kind = "dns"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    text = f"/{kind}/{host}/tcp/{port}/{parts.scheme}"
    path = parts.path.strip("/")
    return text + (f"/http-path/{quote(path, safe='')}" if path else "")


def _provider_url(text: str) -> tuple[str, str]:
    provider, sep, url = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected PROVIDER=URL, e.g. f01234=http://127.0.0.1:7777")
    try:
        actor_id(provider)
        return provider, url_multiaddr(url)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _piece(text: str) -> tuple[str, int, str | None]:
    piece, _, rest = text.partition(":")
    size, _, payload = rest.partition(":")
    if not piece.startswith("baga6ea4seaq") or not size.isdigit():
        raise argparse.ArgumentTypeError("expected PIECE_CID:PADDED_SIZE[:PAYLOAD_CID]")
    return piece, int(size), payload or None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Lotus JSON-RPC node.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1234)
    parser.add_argument("--fixtures", action="store_true", help="load the real mainnet fixtures")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    parser.add_argument("--head", type=int, default=None, help="head height")
    parser.add_argument(
        "--advance-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="grow the chain by one epoch every SECONDS (0: never)",
    )
    parser.add_argument(
        "--provider-url",
        type=_provider_url,
        action="append",
        default=[],
        metavar="PROVIDER=URL",
        help="StateMinerInfo answers URL as PROVIDER's multiaddr (repeatable)",
    )
    parser.add_argument(
        "--piece",
        type=_piece,
        action="append",
        default=[],
        metavar="PIECE_CID:PADDED_SIZE[:PAYLOAD_CID]",
        help=f"an active verified deal and claim of the piece, held by {WALKTHROUGH_PROVIDER}",
    )
    args = parser.parse_args(argv)
    chain = FakeChain.from_fixtures() if args.fixtures else FakeChain()
    if args.head is not None:
        chain.set_head(args.head)
    by_provider: dict[str, list[str]] = {}
    for provider, multiaddr in args.provider_url:
        by_provider.setdefault(provider, []).append(multiaddr)
    for provider, multiaddrs in by_provider.items():
        chain.set_miner_addrs(provider, multiaddrs)
    for piece, size, payload in args.piece:
        chain.add_verified_piece(piece, size, payload_cid=payload)
    server = FakeLotusServer(chain, args.token, host=args.host, port=args.port).start()
    sys.stdout.write(f"{server.url}\n")
    sys.stdout.flush()
    try:
        while True:
            if args.advance_every > 0:
                time.sleep(args.advance_every)
                chain.advance(1)
            else:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
