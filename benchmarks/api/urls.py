"""Our URLs plus `/bare/…`: the same lookups as the API in plain Django views, no DRF."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from chain_scanner.models import BlessedCid
from dashboard.api_keys import authenticate_key
from dashboard.eligibility import as_of_epoch
from executor.cids import InvalidCID, normalize_cid


def _key(request: HttpRequest) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return authenticate_key(header.removeprefix("Bearer ").strip()) is not None


def _status(row: BlessedCid | None, epoch: int) -> str:
    return "unknown" if row is None else row.status_at(epoch)


def bare_cid(request: HttpRequest, cid: str) -> JsonResponse:
    if not _key(request):
        return JsonResponse({"error": "no key"}, status=401)
    try:
        canon = normalize_cid(cid)
    except InvalidCID:
        return JsonResponse({"error": "invalid"}, status=400)
    epoch = as_of_epoch()
    row = BlessedCid.objects.filter(cid=canon).first()
    status = _status(row, epoch)
    return JsonResponse(
        {"cid": canon, "blessed": status == "active", "status": status, "as_of_epoch": epoch}
    )


@csrf_exempt
def bare_eligibility(request: HttpRequest) -> JsonResponse:
    if not _key(request):
        return JsonResponse({"error": "no key"}, status=401)
    cids = json.loads(request.body)["cids"]
    canon = [normalize_cid(c) for c in cids]
    epoch = as_of_epoch()
    rows = {r.cid: r for r in BlessedCid.objects.filter(cid__in=set(canon))}
    results = []
    for sent, c in zip(cids, canon, strict=True):
        status = _status(rows.get(c), epoch)
        results.append(
            {"cid": sent, "canonical": c, "blessed": status == "active", "status": status}
        )
    return JsonResponse(
        {"eligible": all(r["blessed"] for r in results), "as_of_epoch": epoch, "results": results}
    )


urlpatterns = [
    path("bare/cids/<path:cid>", bare_cid),
    path("bare/eligibility", bare_eligibility),
    path("", include("dashboard.urls")),
]
