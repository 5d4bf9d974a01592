"""`GET /healthz`: the database answers, and whether the scanner keeps up, and if not, why."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from rest_framework import serializers

from chain_scanner.models import ScannerCheckpoint
from chain_scanner.status import freshness


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "stale", "error"])
    reasons = serializers.ListField(child=serializers.CharField(), help_text="why not ok")
    database = serializers.CharField()
    scanner_lag_epochs = serializers.IntegerField(allow_null=True)
    last_pass_finished_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_error_at = serializers.DateTimeField(allow_null=True)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        checkpoint = ScannerCheckpoint.objects.filter(name="default").first()
    except DatabaseError as exc:
        body: dict[str, Any] = {
            "status": "error",
            "reasons": [f"the database cannot be read: {type(exc).__name__}"],
            "database": f"error: {type(exc).__name__}",
            "scanner_lag_epochs": None,
            "last_pass_finished_at": None,
            "last_error": None,
            "last_error_at": None,
        }
        return JsonResponse(HealthSerializer(body).data, status=503)
    view = freshness(checkpoint)
    reasons = list(view.reasons)
    last_error = checkpoint.last_error if checkpoint is not None else ""
    if last_error and not view.complete:
        reasons.append(f"the scanner's last error: {last_error}")
    body = {
        "status": "ok" if view.complete else "stale",
        "reasons": reasons,
        "database": "ok",
        "scanner_lag_epochs": view.lag_epochs,
        "last_pass_finished_at": view.last_pass_at,
        "last_error": last_error or None,
        "last_error_at": checkpoint.last_error_at if checkpoint is not None else None,
    }
    return JsonResponse(HealthSerializer(body).data)
