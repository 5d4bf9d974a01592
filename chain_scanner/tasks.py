"""Celery tasks: thin wrappers over the scanner services (beat runs scan_pass)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from chain_scanner.lotus import LotusError
from chain_scanner.services import scan_once

log = logging.getLogger(__name__)


@shared_task(name="chain_scanner.scan_pass", ignore_result=False)
def scan_pass() -> dict[str, Any]:
    """One scanner pass. An unreachable endpoint is logged and recorded on the checkpoint;
    the next beat tick simply tries again."""
    try:
        report = scan_once()
    except LotusError as exc:
        log.error("scan pass failed: %s", exc)
        return {"error": str(exc)}
    log.info("scan pass: %s", report.summary())
    return report.as_dict()
