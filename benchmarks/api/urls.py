"""Our URLs plus `/api/bare/…`: the same selectors as the API (same queries), called from
plain Django views with no DRF, so the difference is what DRF costs. Under /api/ so that
they take the same middleware path as the API (dashboard/middleware.py)."""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from dashboard.eligibility.selectors import cid_batch, cid_report, eligibility
from dashboard.errors import DomainError
from dashboard.keys.services import authenticate_key


def _key(request: HttpRequest) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return authenticate_key(header.removeprefix("Bearer ").strip()) is not None


def bare_cid(request: HttpRequest, cid: str) -> JsonResponse:
    if not _key(request):
        return JsonResponse({"error": "no key"}, status=401)
    try:
        return JsonResponse(cid_report(cid))
    except DomainError as exc:
        return JsonResponse(exc.body(), status=exc.status)


@csrf_exempt
def bare_eligibility(request: HttpRequest) -> JsonResponse:
    if not _key(request):
        return JsonResponse({"error": "no key"}, status=401)
    try:
        body = json.loads(request.body)
        return JsonResponse(eligibility(cids=cid_batch(body.get("cids"))))
    except DomainError as exc:
        return JsonResponse(exc.body(), status=exc.status)


urlpatterns = [
    path("api/bare/cids/<path:cid>", bare_cid),
    path("api/bare/eligibility", bare_eligibility),
    path("", include("dashboard.urls")),
]
