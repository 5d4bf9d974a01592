"""Where a job's inputs came from: the claims and deals that blessed each when the job ran
(`blessed_by`, from what mark_inputs_blessed recorded); the `inputs` a result reports (one
object per spec input: which provider and URL served it, how it was verified, its bytes and
time, and every attempt), read and bounded here for both the API's reports and the bundled
executor's runs; and the retrievability record per provider the recorded attempts add up to.

A hostile node may send anything, and a hostile provider's words (a URL, an error) reach us
through an honest node's attempts: lists are bounded (MAX_INPUTS, MAX_ATTEMPTS), URLs must be
HTTP(S) and at most MAX_URL characters, reasons are cut to MAX_REASON_TEXT, and the record
keeps at most MAX_REASONS distinct failure reasons per provider (the rest count as "other").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from dashboard.addresses import PROVIDER_ADDRESS
from dashboard.eligibility import selectors as eligibility
from dashboard.errors import DomainError
from dashboard.models import JobInput, ProviderRetrieval
from executor.cids import InvalidCID, normalize_cid
from executor.spec import MAX_INPUTS, MAX_PATH_LENGTH, storable_text

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_INPUTS",
    "MAX_REASONS",
    "VERIFIED",
    "check_against_spec",
    "read_inputs",
    "RetrievalRecord",
    "blessed_by",
    "record_retrievals",
    "reported_for",
    "retrieval_key",
    "retrieval_of",
    "retrieval_records",
]

MAX_ATTEMPTS = 64
MAX_URL = 2048
MAX_REASON_TEXT = 200
MAX_REASONS = 16
MAX_SECONDS = 1e9
MAX_BYTES = 2**63 - 1
RECORDS_SHOWN = 200  # providers on the Nodes page
# How an input's bytes were checked: taken from our own store, as a whole piece against its
# CommP, or block by block against the DAG's CIDs.
VERIFIED = ("store", "piece", "blocks")
OTHER = "other"
_ERROR_CODE = "invalid_result"


def _fail(field: str, message: str) -> DomainError:
    return DomainError(_ERROR_CODE, f"{field}: {message}", fields={field: message})


def _text(item: dict[str, Any], name: str, where: str, *, limit: int) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise _fail(f"{where}.{name}", "must be a string")
    if len(value) > limit or not storable_text(value):
        raise _fail(f"{where}.{name}", f"must be storable text of at most {limit} characters")
    return value


def _provider(item: dict[str, Any], where: str) -> str | None:
    value = item.get("provider")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not PROVIDER_ADDRESS.fullmatch(value):
        raise _fail(f"{where}.provider", "must be a storage provider id address like f01234")
    return value


def _url(item: dict[str, Any], where: str) -> str | None:
    value = item.get("url")
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_URL
        or not storable_text(value)
        or not value.startswith(("http://", "https://"))
    ):
        raise _fail(f"{where}.url", f"must be an HTTP(S) URL of at most {MAX_URL} characters")
    return value


def _count(item: dict[str, Any], name: str, where: str) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BYTES:
        raise _fail(f"{where}.{name}", "must be an integer from 0 to 2**63 - 1")
    return value


def _seconds(item: dict[str, Any], where: str) -> float:
    value = item.get("seconds")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_SECONDS
    ):
        raise _fail(f"{where}.seconds", f"must be a number of seconds from 0 to {MAX_SECONDS:g}")
    return float(value)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be an object")
    return value


def _attempt(value: Any, where: str) -> dict[str, Any]:
    item = _object(value, where)
    ok = item.get("ok")
    if not isinstance(ok, bool):
        raise _fail(f"{where}.ok", "must be true or false")
    reason = item.get("reason")
    if reason is not None:
        if not isinstance(reason, str) or not storable_text(reason):
            raise _fail(f"{where}.reason", "must be storable text or null")
        reason = reason[:MAX_REASON_TEXT]
    return {
        "provider": _provider(item, where),
        "url": _url(item, where),
        "ok": ok,
        "reason": reason,
        "bytes": _count(item, "bytes", where),
        "seconds": _seconds(item, where),
    }


def _input(value: Any, where: str) -> dict[str, Any]:
    item = _object(value, where)
    try:
        cid = normalize_cid(_text(item, "cid", where, limit=1000))
    except InvalidCID:
        raise _fail(f"{where}.cid", "must be a CID") from None
    verified = item.get("verified")
    if verified not in VERIFIED:
        raise _fail(f"{where}.verified", f"must be one of {', '.join(VERIFIED)}")
    attempts = item.get("attempts", [])
    if not isinstance(attempts, list) or len(attempts) > MAX_ATTEMPTS:
        raise _fail(f"{where}.attempts", f"must be a list of at most {MAX_ATTEMPTS} attempts")
    return {
        "cid": cid,
        "path": _text(item, "path", where, limit=MAX_PATH_LENGTH),
        "verified": verified,
        "provider": _provider(item, where),
        "url": _url(item, where),
        "bytes": _count(item, "bytes", where),
        "seconds": _seconds(item, where),
        "attempts": [_attempt(a, f"{where}.attempts.{i}") for i, a in enumerate(attempts)],
    }


def read_inputs(value: Any) -> list[dict[str, Any]] | None:
    """A result's `inputs`, checked and in our one form (canonical CIDs, unknown members
    dropped, reasons cut), or None when there are none; 400 invalid_result naming the
    field at fault (`inputs.2.attempts.0.url`) otherwise."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_INPUTS:
        raise _fail("inputs", f"must be a list of at most {MAX_INPUTS} inputs")
    return [_input(item, f"inputs.{i}") for i, item in enumerate(value)]


def check_against_spec(inputs: list[dict[str, Any]], spec: list[tuple[str, str]]) -> None:
    """That a report's inputs are the job's: one per spec input, in order, with its CID and
    path; 400 invalid_result naming the first that is not."""
    if len(inputs) != len(spec):
        raise _fail("inputs", f"must hold one object per spec input ({len(spec)})")
    for i, (item, (cid, path)) in enumerate(zip(inputs, spec, strict=True)):
        if item["cid"] != cid:
            raise _fail(f"inputs.{i}.cid", f"must be the spec's input {i}: {cid}")
        if item["path"] != path:
            raise _fail(f"inputs.{i}.path", f"must be the spec's input {i}: {path}")


def blessed_by(item: JobInput) -> list[str]:
    """The active claims and deals behind an input when the job ran: "claim 7", "deal 12"."""
    return eligibility.blessed_by(item.sources)


def reported_for(reported: Any, item: JobInput) -> dict[str, Any] | None:
    """What a result's `inputs` (`reported`) say of this input: the entry at its position,
    if that entry is this input (its CID and path); else None."""
    if not isinstance(reported, list) or not 0 <= item.position < len(reported):
        return None
    entry = reported[item.position]
    if not isinstance(entry, dict) or (entry.get("cid"), entry.get("path")) != (
        item.cid,
        item.path,
    ):
        return None
    return entry


def retrieval_of(item: JobInput) -> dict[str, Any] | None:
    """reported_for the job's result, read through `item.job.result`, which a job's
    prefetched inputs have at hand."""
    return reported_for(getattr(getattr(item.job, "result", None), "inputs", None), item)


@dataclass(frozen=True)
class RetrievalRecord:
    """A provider's record as the Nodes page shows it."""

    row: ProviderRetrieval
    reasons: list[tuple[str, int]]  # most frequent first

    @property
    def bytes_per_second(self) -> float | None:
        return self.row.bytes / self.row.seconds if self.row.seconds > 0 else None


def retrieval_records(limit: int = RECORDS_SHOWN) -> list[RetrievalRecord]:
    """The providers most tried first, at most `limit`."""
    rows = ProviderRetrieval.objects.order_by("-tries", "key")[:limit]
    return [
        RetrievalRecord(
            row=row,
            reasons=sorted(
                ((str(k), int(v)) for k, v in (row.failure_reasons or {}).items()),
                key=lambda kv: (-kv[1], kv[0]),
            ),
        )
        for row in rows
    ]


def retrieval_key(provider: str | None, url: str | None) -> str | None:
    """What an attempt counts under: its provider, else its URL's origin, else nothing."""
    if provider:
        return provider
    if url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"[:300]
    return None


def _add_reason(reasons: dict[str, int], reason: str) -> None:
    """Count a failure under its reason; once MAX_REASONS - 1 reasons are kept, new ones
    count under "other" (so at most MAX_REASONS keys)."""
    if reason not in reasons and len(reasons.keys() - {OTHER}) >= MAX_REASONS - 1:
        reason = OTHER
    reasons[reason] = reasons.get(reason, 0) + 1


def record_retrievals(inputs: list[dict[str, Any]] | None) -> None:
    """Add one recorded result's attempts to the providers' records (call it once per
    result, in the transaction that records it)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for item in inputs or []:
        for attempt in item["attempts"]:
            key = retrieval_key(attempt["provider"], attempt["url"])
            if key is not None:
                by_key.setdefault(key, []).append(attempt)
    with transaction.atomic():
        for key in sorted(by_key):  # one order for every writer: no deadlock
            attempts = by_key[key]
            row, _ = ProviderRetrieval.objects.select_for_update().get_or_create(key=key)
            reasons = dict(row.failure_reasons or {})
            for attempt in attempts:
                row.tries += 1
                if attempt["provider"]:
                    row.provider = attempt["provider"]
                if attempt["url"]:
                    row.url = attempt["url"]
                if attempt["ok"]:
                    row.successes += 1
                    # a column of 64 bits: sums of hostile reports stop at its largest value
                    row.bytes = min(row.bytes + attempt["bytes"], MAX_BYTES)
                    row.seconds += attempt["seconds"]
                else:
                    row.failures += 1
                    _add_reason(reasons, attempt["reason"] or "unknown")
            row.failure_reasons = reasons
            row.save()
