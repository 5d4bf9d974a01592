"""`GET /healthz`: the database answers, and how far behind the chain the scanner is."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from chain_scanner.models import ScannerCheckpoint


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        checkpoint = ScannerCheckpoint.objects.filter(name="default").first()
    except DatabaseError as exc:
        body = {
            "status": "error",
            "database": f"error: {type(exc).__name__}",
            "scanner_lag_epochs": None,
            "last_pass_finished_at": None,
        }
        return JsonResponse(body, status=503)
    lag = None
    finished = None
    if checkpoint is not None:
        finished = checkpoint.last_pass_finished_at
        if checkpoint.head_height is not None and checkpoint.processing_height is not None:
            lag = checkpoint.head_height - checkpoint.processing_height
    # Passes run every SCANNER_INTERVAL_S: ten missed ones mean the scanner is stuck.
    stale_after = timedelta(seconds=10 * settings.SCANNER_INTERVAL_S + 600)
    stale = finished is None or timezone.now() - finished > stale_after
    return JsonResponse(
        {
            "status": "stale" if stale else "ok",
            "database": "ok",
            "scanner_lag_epochs": lag,
            "last_pass_finished_at": finished.isoformat() if finished else None,
        }
    )
