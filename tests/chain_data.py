"""Filecoin chain data for tests: the real fixtures reshaped as Lotus emits them, plus
deterministic builders for synthetic deals, CIDs and verified-registry claim events.

No server code here (see tests/fake_lotus.py). Wire shapes follow docs/filecoin.md; the
real data is in tests/fixtures/filecoin (its README says where each file comes from).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import cbor2

# Found from this file, not the working directory. FILPLUS_FIXTURES_DIR overrides it.
FIXTURES = Path(
    os.environ.get("FILPLUS_FIXTURES_DIR")
    or Path(__file__).resolve().parent / "fixtures" / "filecoin"
)

CLAIM_EVENTS_FILE = "getactoreventsraw_claim_events_mainnet_h4622129-4622139.json"
DECODED_CLAIMS_FILE = "claims_decoded_from_claim_events.json"
CHAINHEAD_FILE = "chainhead_mainnet_h4622139.json"
DEALS_FILE = "market_deal_entries_real.json"

# Heights covered by the real claim events, and the real chain head sample.
REAL_EVENTS_FROM = 4622129
REAL_EVENTS_TO = 4622139

# The pre-nv22 StateMarketDeals value in the fixtures comes without its deal id (the source
# quotes the map value only), so it is served under this made-up id.
SYNTHETIC_ID_FOR_PRE_NV22_DEAL = 4000001

GENESIS_TIMESTAMP = 1598306400  # mainnet genesis, 30 s per epoch
EPOCH_SECONDS = 30

# Multicodec / multihash codes used by Filecoin CIDs.
DAG_PB = 0x70
DAG_CBOR = 0x71
RAW = 0x55
FIL_COMMITMENT_UNSEALED = 0xF101
SHA2_256 = 0x12
SHA2_256_TRUNC254_PADDED = 0x1012
BLAKE2B_256 = 0xB220

CBOR_CODEC = 0x51  # "Codec": 81 in event entries
FLAG_INDEXED_KEY = 0x01
FLAG_INDEXED_ALL = 0x03  # key and value indexed

CLAIM_EVENT_KINDS = ("claim", "claim-updated", "claim-removed")
DEAL_EVENT_KINDS = ("deal-published", "deal-activated", "deal-terminated", "deal-completed")
VERIFREG_ACTOR = "f06"
MARKET_ACTOR = "f05"


def _read_json(name: str, directory: Path | None = None) -> Any:
    with (directory or FIXTURES).joinpath(name).open(encoding="utf-8") as fh:
        return json.load(fh)


# --- CIDs ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def cid_bytes(codec: int, hash_code: int, digest: bytes) -> bytes:
    """Binary CIDv1: <version><codec><multihash code><digest length><digest>."""
    return _varint(1) + _varint(codec) + _varint(hash_code) + _varint(len(digest)) + digest


def cid_to_str(raw: bytes) -> str:
    """Multibase base32 (lower case, unpadded, prefix "b"): the canonical CIDv1 string."""
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def cid_from_str(text: str) -> bytes:
    """Inverse of cid_to_str (base32 CIDv1 strings only)."""
    if not text.startswith("b"):
        raise ValueError(f"not a base32 CIDv1: {text!r}")
    body = text[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def synthetic_piece_cid(n: int) -> str:
    """A valid piece CID (`baga6ea4seaq…`): fil-commitment-unsealed, sha2-256-trunc254-padded,
    digest = sha256(b"piece:<n>") with the two top bits of the last byte cleared, as a real
    254-bit CommP has."""
    digest = bytearray(hashlib.sha256(f"piece:{n}".encode()).digest())
    digest[-1] &= 0x3F
    return cid_to_str(cid_bytes(FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED, bytes(digest)))


def synthetic_payload_cid(n: int) -> str:
    """A valid payload root CID (`bafybei…`): dag-pb, sha2-256 of b"payload:<n>"."""
    digest = hashlib.sha256(f"payload:{n}".encode()).digest()
    return cid_to_str(cid_bytes(DAG_PB, SHA2_256, digest))


def _blake_cid(codec: int, seed: str) -> str:
    return cid_to_str(
        cid_bytes(codec, BLAKE2B_256, hashlib.blake2b(seed.encode(), digest_size=32).digest())
    )


def synthetic_tipset_cid(height: int, variant: int = 0) -> str:
    """A valid block-header CID (`bafy2bzace…`, dag-cbor blake2b-256) for a block at `height`;
    `variant` tells apart the blocks of one tipset and the forks of one height."""
    return _blake_cid(DAG_CBOR, f"block:{height}:{variant}")


def synthetic_message_cid(n: int) -> str:
    """A valid message CID (`bafy2bzace…`), for events' msgCid."""
    return _blake_cid(DAG_CBOR, f"message:{n}")


def synthetic_object_cid(seed: str, *, raw: bool = False) -> str:
    """Any other chain object: state roots (dag-cbor) or actor code CIDs (raw, `bafk2bzace…`)."""
    return _blake_cid(RAW if raw else DAG_CBOR, f"object:{seed}")


def actor_id(address: str) -> int:
    """f0/t0 ID address → actor id (claims carry actor ids as numbers, not addresses)."""
    if len(address) < 3 or address[0] not in "ft" or address[1] != "0" or not address[2:].isdigit():
        raise ValueError(f"not an ID address: {address!r}")
    return int(address[2:])


# --- actor events --------------------------------------------------------------------------


def _entry(key: str, value: Any, flags: int) -> dict[str, Any]:
    # EventEntry has no JSON tags, so Lotus emits the Go field names in struct order.
    return {
        "Flags": flags,
        "Key": key,
        "Codec": CBOR_CODEC,
        "Value": base64.b64encode(cbor2.dumps(value)).decode("ascii"),
    }


def _tipset_key_json(tipset_key: list[Any] | None) -> list[dict[str, str]] | None:
    if tipset_key is None:
        return None
    return [c if isinstance(c, dict) else {"/": c} for c in tipset_key]


def encode_claim_event(
    kind: str,
    *,
    claim_id: int,
    client: int | str,
    provider: int | str,
    piece_cid: str,
    piece_size: int,
    term_min: int,
    term_max: int,
    term_start: int,
    sector: int,
    height: int,
    msg_cid: str,
    tipset_key: list[Any] | None,
    reverted: bool = False,
) -> dict[str, Any]:
    """One GetActorEventsRaw element, byte-identical to what the verified registry (f06)
    emits (builtin-actors verifreg/src/emit.rs): ints as CBOR uints, the piece CID as CBOR
    tag 42 over 0x00 + binary CID, indexed fields flagged 3, the rest 1.

    `client`/`provider` take actor ids or f0 addresses. `tipset_key` takes CID strings or
    {"/": cid} objects; None lets FakeChain fill in its key for `height`."""
    if kind not in CLAIM_EVENT_KINDS:
        raise ValueError(f"unknown claim event kind {kind!r}")
    client_id = client if isinstance(client, int) else actor_id(client)
    provider_id = provider if isinstance(provider, int) else actor_id(provider)
    piece = cbor2.CBORTag(42, b"\x00" + cid_from_str(piece_cid))
    entries = [
        _entry("$type", kind, FLAG_INDEXED_ALL),
        _entry("id", claim_id, FLAG_INDEXED_ALL),
        _entry("client", client_id, FLAG_INDEXED_ALL),
        _entry("provider", provider_id, FLAG_INDEXED_ALL),
        _entry("piece-cid", piece, FLAG_INDEXED_ALL),
        _entry("piece-size", piece_size, FLAG_INDEXED_KEY),
        _entry("term-min", term_min, FLAG_INDEXED_KEY),
        _entry("term-max", term_max, FLAG_INDEXED_KEY),
        _entry("term-start", term_start, FLAG_INDEXED_KEY),
        _entry("sector", sector, FLAG_INDEXED_ALL),
    ]
    return {
        "entries": entries,
        "emitter": VERIFREG_ACTOR,
        "reverted": reverted,
        "height": height,
        "tipsetKey": _tipset_key_json(tipset_key),
        "msgCid": {"/": msg_cid},
    }


def encode_deal_event(
    kind: str,
    *,
    deal_id: int,
    client: int | str,
    provider: int | str,
    height: int,
    msg_cid: str,
    tipset_key: list[Any] | None,
    reverted: bool = False,
    emitter: str = MARKET_ACTOR,
) -> dict[str, Any]:
    """One GetActorEventsRaw element as the market actor (f05) emits it (builtin-actors
    market/src/emit.rs, EventBuilder): `$type`, then `id`, `client`, `provider`, every
    entry flagged 3 (key and value indexed), values CBOR (ints as uints)."""
    if kind not in DEAL_EVENT_KINDS:
        raise ValueError(f"unknown deal event kind {kind!r}")
    entries = [
        _entry("$type", kind, FLAG_INDEXED_ALL),
        _entry("id", deal_id, FLAG_INDEXED_ALL),
        _entry("client", client if isinstance(client, int) else actor_id(client), FLAG_INDEXED_ALL),
        _entry(
            "provider",
            provider if isinstance(provider, int) else actor_id(provider),
            FLAG_INDEXED_ALL,
        ),
    ]
    return {
        "entries": entries,
        "emitter": emitter,
        "reverted": reverted,
        "height": height,
        "tipsetKey": _tipset_key_json(tipset_key),
        "msgCid": {"/": msg_cid},
    }


def decode_event_entries(event: dict[str, Any]) -> dict[str, Any]:
    """{key: decoded value} of an event's entries; CBOR tag 42 becomes a CID string."""
    out: dict[str, Any] = {}
    for entry in event["entries"]:
        value = cbor2.loads(base64.b64decode(entry["Value"]))
        if isinstance(value, cbor2.CBORTag) and value.tag == 42:
            value = cid_to_str(value.value[1:])  # drop the 0x00 multibase-identity prefix
        out[entry["Key"]] = value
    return out


def cbor_text_b64(text: str) -> str:
    """base64(CBOR text), as GetActorEventsRaw `fields` filters want (e.g. "claim" →
    "ZWNsYWlt")."""
    return base64.b64encode(cbor2.dumps(text)).decode("ascii")


def lotus_event_order(event: dict[str, Any]) -> dict[str, Any]:
    """Re-key an ActorEvent (and its entries) into the order Lotus emits them."""
    entries = [
        {"Flags": e["Flags"], "Key": e["Key"], "Codec": e["Codec"], "Value": e["Value"]}
        for e in event["entries"]
    ]
    return {
        "entries": entries,
        "emitter": event["emitter"],
        "reverted": event["reverted"],
        "height": event["height"],
        "tipsetKey": event["tipsetKey"],
        "msgCid": event["msgCid"],
    }


@cache
def _real_claim_events_json() -> str:
    # Cached as text so every caller gets fresh, independently mutable dicts.
    return json.dumps(_read_json(CLAIM_EVENTS_FILE))


def load_real_claim_events() -> list[dict[str, Any]]:
    """The 360 real mainnet `claim` events (heights 4622129-4622139) in Lotus key order."""
    return [lotus_event_order(e) for e in json.loads(_real_claim_events_json())]


def load_decoded_claims() -> list[dict[str, Any]]:
    """The same 360 claims, decoded (fixture derived by the research team)."""
    return _read_json(DECODED_CLAIMS_FILE)


# --- tipsets -------------------------------------------------------------------------------

# Block header fields in Lotus struct order (V1DOC `### ChainHead`); nested objects too.
BLOCK_FIELDS = (
    "Miner",
    "Ticket",
    "ElectionProof",
    "BeaconEntries",
    "WinPoStProof",
    "Parents",
    "ParentWeight",
    "Height",
    "ParentStateRoot",
    "ParentMessageReceipts",
    "Messages",
    "BLSAggregate",
    "Timestamp",
    "BlockSig",
    "ForkSignaling",
    "ParentBaseFee",
)
_NESTED_ORDER = {
    "Ticket": ("VRFProof",),
    "ElectionProof": ("WinCount", "VRFProof"),
    "BeaconEntries": ("Round", "Data"),
    "WinPoStProof": ("PoStProof", "ProofBytes"),
    "BLSAggregate": ("Type", "Data"),
    "BlockSig": ("Type", "Data"),
}


def lotus_block_order(block: dict[str, Any]) -> dict[str, Any]:
    """Re-key a block header (the fixture's keys are alphabetical) into Lotus' order."""
    out: dict[str, Any] = {}
    for field in BLOCK_FIELDS:
        value = block[field]
        order = _NESTED_ORDER.get(field)
        if order and isinstance(value, list):
            value = [{k: item[k] for k in order} for item in value]
        elif order and isinstance(value, dict):
            value = {k: value[k] for k in order}
        out[field] = value
    return out


def load_real_chainhead() -> dict[str, Any]:
    """The real ChainHead result at 4622139 (3 blocks) as `{Cids, Blocks, Height}` in Lotus
    order."""
    head = _read_json(CHAINHEAD_FILE)
    return {
        "Cids": head["Cids"],
        "Blocks": [lotus_block_order(b) for b in head["Blocks"]],
        "Height": head["Height"],
    }


# --- market deals --------------------------------------------------------------------------


def load_real_deals() -> dict[int, dict[str, Any]]:
    """Real `{Proposal, State}` values by deal id: deal 5083158 (StateMarketStorageDeal, no
    SectorNumber: pre-nv22) and the pre-nv22 StateMarketDeals value (with VerifiedClaim) under
    SYNTHETIC_ID_FOR_PRE_NV22_DEAL. The proposal-only record is skipped (no PieceSize, no
    State)."""
    deals: dict[int, dict[str, Any]] = {}
    for record in _read_json(DEALS_FILE)["entries"]:
        value = record.get("value")
        if value is None and "result" in record.get("response", {}):
            deals[record["deal_id"]] = record["response"]["result"]
        elif isinstance(value, dict) and "Proposal" in value and "State" in value:
            deals[record["deal_id"] or SYNTHETIC_ID_FOR_PRE_NV22_DEAL] = value
    return deals


DEAL_STATE_SHAPES = ("legacy", "nv17", "nv22", "forest")


def make_deal(
    deal_id: int,
    *,
    start_epoch: int,
    end_epoch: int,
    verified: bool = True,
    label: str | None = None,
    piece_cid: str | None = None,
    piece_size: int = 34359738368,
    client: str = "f01880278",
    provider: str = "f02118066",
    sector_start_epoch: int = -1,
    last_updated_epoch: int = -1,
    slash_epoch: int = -1,
    sector_number: int | None = None,
    verified_claim: int | None = None,
    shape: str = "nv22",
    price_per_epoch: str = "0",
    provider_collateral: str = "11361143711469027",
    client_collateral: str = "0",
) -> dict[str, Any]:
    """One `{Proposal, State}` value in Lotus struct order (big ints as strings).

    Defaults: label = synthetic_payload_cid(deal_id), piece_cid = synthetic_piece_cid(deal_id).
    `shape` picks the State era (docs/filecoin.md): "legacy" (≤ nv16), "nv17" (nv17-21, +
    VerifiedClaim), "nv22" (SectorNumber first) or "forest" (SectorNumber last)."""
    if shape not in DEAL_STATE_SHAPES:
        raise ValueError(f"unknown deal state shape {shape!r}")
    proposal = {
        "PieceCID": {"/": piece_cid or synthetic_piece_cid(deal_id)},
        "PieceSize": piece_size,
        "VerifiedDeal": verified,
        "Client": client,
        "Provider": provider,
        "Label": synthetic_payload_cid(deal_id) if label is None else label,
        "StartEpoch": start_epoch,
        "EndEpoch": end_epoch,
        "StoragePricePerEpoch": price_per_epoch,
        "ProviderCollateral": provider_collateral,
        "ClientCollateral": client_collateral,
    }
    epochs = {
        "SectorStartEpoch": sector_start_epoch,
        "LastUpdatedEpoch": last_updated_epoch,
        "SlashEpoch": slash_epoch,
    }
    sector = {"SectorNumber": sector_number or 0}  # EmptyDealState has SectorNumber 0
    if shape == "legacy":
        state = epochs
    elif shape == "nv17":
        state = {**epochs, "VerifiedClaim": verified_claim or 0}
    elif shape == "nv22":
        state = {**sector, **epochs}
    else:
        state = {**epochs, **sector}
    return {"Proposal": proposal, "State": state}
