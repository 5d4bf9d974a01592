"""Turn chain JSON into rows: market deals (every `State` era), verified-registry claim
events and market deal events (CBOR entries). Bad data raises BadChainData; callers log it,
count it and go on."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, TypedDict

import cbor2

from executor.cids import InvalidCID, cid_from_bytes, label_to_cid, normalize_cid

CLAIM_KINDS = ("claim", "claim-updated", "claim-removed")
# builtin-actors market/src/emit.rs: each carries indexed `id`, `client` and `provider`.
DEAL_KINDS = ("deal-published", "deal-activated", "deal-terminated", "deal-completed")
VERIFIED_REGISTRY_ID = 6
MARKET_ID = 5
_CBOR_CODEC = 0x51
_CID_TAG = 42


class BadChainData(ValueError):
    """A deal or event the node sent that we cannot make sense of."""


@dataclass(frozen=True, slots=True)
class DealRow:
    deal_id: int
    piece_cid: str
    piece_size: int
    client: str
    provider: str
    label: str
    payload_cid: str | None
    start_epoch: int
    end_epoch: int
    sector_start_epoch: int
    last_updated_epoch: int
    slash_epoch: int
    sector_number: int | None
    verified_claim: int | None


def _int(mapping: dict[str, Any], key: str) -> int:
    value = mapping.get(key)
    # bool is an int in Python, and never a valid epoch or size.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadChainData(f"{key} is not an integer: {value!r}")
    return value


def _optional_int(mapping: dict[str, Any], key: str) -> int | None:
    return None if mapping.get(key) is None else _int(mapping, key)


def _int_or(mapping: dict[str, Any], key: str, default: int) -> int:
    value = _optional_int(mapping, key)
    return default if value is None else value


def _cid_obj(value: Any, key: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("/"), str):
        raise BadChainData(f"{key} is not a CID object: {value!r}")
    try:
        return normalize_cid(value["/"])
    except InvalidCID as exc:
        raise BadChainData(f"{key}: {exc}") from None


def parse_deal_id(key: Any) -> int:
    try:
        deal_id = int(key)
    except (TypeError, ValueError):
        raise BadChainData(f"deal id is not an integer: {key!r}") from None
    if deal_id < 0 or str(deal_id) != str(key).strip():
        raise BadChainData(f"deal id is not a canonical integer: {key!r}")
    return deal_id


def parse_deal(deal_id: int, value: Any) -> DealRow | None:
    """A `{Proposal, State}` market deal as a row, or None when it is not FIL+ verified."""
    if not isinstance(value, dict):
        raise BadChainData(f"deal {deal_id}: not an object")
    proposal = value.get("Proposal")
    state = value.get("State")
    if not isinstance(proposal, dict):
        raise BadChainData(f"deal {deal_id}: no Proposal object")
    verified = proposal.get("VerifiedDeal")
    if not isinstance(verified, bool):
        raise BadChainData(f"deal {deal_id}: VerifiedDeal is not a boolean")
    if not verified:
        return None
    if state is None:
        state = {}  # published, not activated: Lotus' EmptyDealState
    if not isinstance(state, dict):
        raise BadChainData(f"deal {deal_id}: State is not an object")
    label = proposal.get("Label", "")
    if not isinstance(label, str):
        raise BadChainData(f"deal {deal_id}: Label is not a string")
    client = proposal.get("Client")
    provider = proposal.get("Provider")
    if not isinstance(client, str) or not isinstance(provider, str):
        raise BadChainData(f"deal {deal_id}: Client/Provider are not addresses")
    try:
        return DealRow(
            deal_id=deal_id,
            piece_cid=_cid_obj(proposal.get("PieceCID"), "PieceCID"),
            piece_size=_int(proposal, "PieceSize"),
            client=client,
            provider=provider,
            label=label,
            payload_cid=label_to_cid(label),
            start_epoch=_int(proposal, "StartEpoch"),
            end_epoch=_int(proposal, "EndEpoch"),
            sector_start_epoch=_int_or(state, "SectorStartEpoch", -1),
            last_updated_epoch=_int_or(state, "LastUpdatedEpoch", -1),
            slash_epoch=_int_or(state, "SlashEpoch", -1),
            sector_number=_optional_int(state, "SectorNumber"),
            # 0 is NoAllocationID: the deal has no claim.
            verified_claim=_optional_int(state, "VerifiedClaim") or None,
        )
    except BadChainData as exc:
        raise BadChainData(f"deal {deal_id}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ClaimEventRow:
    kind: str
    claim_id: int
    client: int
    provider: int
    piece_cid: str
    piece_size: int
    term_min: int
    term_max: int
    term_start: int
    sector: int
    height: int
    msg_cid: str
    reverted: bool
    tipset_key: str  # the key of the tipset at `height` the event was seen in, joined by ","


@dataclass(frozen=True, slots=True)
class DealEventRow:
    kind: str
    deal_id: int
    client: int
    provider: int
    height: int
    msg_cid: str
    reverted: bool
    tipset_key: str


def kinds_filter(kinds: tuple[str, ...]) -> dict[str, Any]:
    """The GetActorEventsRaw `fields` filter for events of the given `$type`s."""
    return {
        "$type": [
            {"codec": _CBOR_CODEC, "value": base64.b64encode(cbor2.dumps(k)).decode("ascii")}
            for k in kinds
        ]
    }


def _entry_value(entry: dict[str, Any]) -> Any:
    if entry.get("Codec") != _CBOR_CODEC:
        raise BadChainData(f"entry {entry.get('Key')!r} has codec {entry.get('Codec')!r}")
    try:
        return cbor2.loads(base64.b64decode(entry["Value"], validate=True))
    except (KeyError, TypeError, ValueError, binascii.Error, cbor2.CBORDecodeError) as exc:
        raise BadChainData(f"entry {entry.get('Key')!r}: undecodable CBOR ({exc})") from None


def _emitter_id(event: dict[str, Any]) -> int | None:
    """The emitting actor's id from an `f0…`/`t0…` address; None for any other address."""
    emitter = event.get("emitter")
    if not isinstance(emitter, str) or emitter[:2] not in ("f0", "t0"):
        return None
    digits = emitter[2:]
    return int(digits) if digits.isdigit() and digits == str(int(digits)) else None


def _uint(values: dict[str, Any], key: str, kind: str) -> int:
    value = values.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadChainData(f"{kind} event: {key} is not an unsigned integer: {value!r}")
    return value


class _Envelope(TypedDict):
    height: int
    msg_cid: str
    reverted: bool
    tipset_key: str


def _envelope(event: dict[str, Any], kind: str) -> _Envelope:
    """The fields every actor event carries: height, message, reverted, tipset key."""
    height = event.get("height")
    if isinstance(height, bool) or not isinstance(height, int):
        raise BadChainData(f"{kind} event: height is not an integer")
    msg = event.get("msgCid")
    msg_cid = msg.get("/") if isinstance(msg, dict) else None
    if not isinstance(msg_cid, str):
        raise BadChainData(f"{kind} event: msgCid is not a CID object")
    reverted = event.get("reverted", False)
    if not isinstance(reverted, bool):
        raise BadChainData(f"{kind} event: reverted is not a boolean")
    return {
        "height": height,
        "msg_cid": msg_cid,
        "reverted": reverted,
        "tipset_key": tipset_key_str(event.get("tipsetKey")),
    }


def decode_event(event: Any) -> ClaimEventRow | DealEventRow | None:
    """A raw actor event as a claim or deal event row; None for any other event, including
    one whose `$type` is ours but whose emitter is not the built-in actor (any contract can
    emit a "deal-terminated")."""
    if not isinstance(event, dict) or not isinstance(event.get("entries"), list):
        raise BadChainData("actor event without entries")
    values: dict[str, Any] = {}
    for entry in event["entries"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("Key"), str):
            raise BadChainData("malformed event entry")
        values[entry["Key"]] = _entry_value(entry)
    kind = values.get("$type")
    emitter = _emitter_id(event)
    if kind in CLAIM_KINDS and emitter == VERIFIED_REGISTRY_ID:
        return _claim_row(kind, values, event)
    if kind in DEAL_KINDS and emitter == MARKET_ID:
        return DealEventRow(
            kind=kind,
            deal_id=_uint(values, "id", kind),
            client=_uint(values, "client", kind),
            provider=_uint(values, "provider", kind),
            **_envelope(event, kind),
        )
    return None


def _claim_row(kind: str, values: dict[str, Any], event: dict[str, Any]) -> ClaimEventRow:
    piece = values.get("piece-cid")
    if not isinstance(piece, cbor2.CBORTag) or piece.tag != _CID_TAG:
        raise BadChainData(f"{kind} event: piece-cid is not CBOR tag 42")
    raw = piece.value
    if not isinstance(raw, bytes) or not raw.startswith(b"\x00"):
        raise BadChainData(f"{kind} event: piece-cid tag 42 must hold 0x00 + CID bytes")
    try:
        piece_cid = cid_from_bytes(raw[1:])
    except InvalidCID as exc:
        raise BadChainData(f"{kind} event: piece-cid: {exc}") from None
    return ClaimEventRow(
        kind=kind,
        claim_id=_uint(values, "id", kind),
        client=_uint(values, "client", kind),
        provider=_uint(values, "provider", kind),
        piece_cid=piece_cid,
        piece_size=_uint(values, "piece-size", kind),
        term_min=_uint(values, "term-min", kind),
        term_max=_uint(values, "term-max", kind),
        term_start=_uint(values, "term-start", kind),
        sector=_uint(values, "sector", kind),
        **_envelope(event, kind),
    )


def tipset_key_str(key: Any) -> str:
    """A tipset key (`[{"/": cid}, …]`) as one comparable string."""
    if not isinstance(key, list):
        return ""
    return ",".join(c.get("/", "") if isinstance(c, dict) else str(c) for c in key)
