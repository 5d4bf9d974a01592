"""Answers about blessed CIDs say whether the scanner's view is complete, and /healthz says
why it is not: a compute node must be able to tell "not blessed" from "not known yet"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chain_scanner.models import ScannerCheckpoint
from dashboard.eligibility.selectors import forget_epoch
from tests.base import Personas
from tests.dashboard.chain_rows import deal, scanned_at

pytestmark = pytest.mark.django_db


def ask(client: Client, personas: Personas, cid: str) -> tuple[dict, dict]:
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}
    one = client.get(f"/api/v1/cids/{cid}", **auth).json()
    many = client.post(
        "/api/v1/eligibility", {"cids": [cid]}, content_type="application/json", **auth
    ).json()
    assert one["scanner"] == many["scanner"]
    return one["scanner"], client.get("/healthz").json()


def test_before_any_pass_answers_say_the_view_is_incomplete(
    client: Client, personas: Personas
) -> None:
    payload, _ = deal(1)  # imported from a dump, say: rows, but no pass
    forget_epoch()
    scanner, health = ask(client, personas, payload)
    assert scanner == {"complete": False, "lag_epochs": None, "last_pass_at": None}
    assert health["status"] == "stale"
    assert health["reasons"] == ["no scanner pass has finished yet"]


def test_a_fresh_pass_at_finality_is_complete(client: Client, personas: Personas) -> None:
    scanned_at(lag=900)
    payload, _ = deal(1)
    scanner, health = ask(client, personas, payload)
    assert scanner["complete"] is True and scanner["lag_epochs"] == 900
    assert scanner["last_pass_at"] is not None
    assert health["status"] == "ok" and health["reasons"] == []


def test_a_lagging_scanner_is_incomplete_and_healthz_says_why(
    client: Client, personas: Personas, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.SCANNER_STALE_EPOCHS = 960
    scanned_at(lag=2000)
    ScannerCheckpoint.objects.update(last_error="Lotus: connection refused")
    payload, _ = deal(1)
    scanner, health = ask(client, personas, payload)
    assert scanner["complete"] is False and scanner["lag_epochs"] == 2000
    assert health["status"] == "stale"
    assert any("2000 epochs behind" in r and "SCANNER_STALE_EPOCHS" in r for r in health["reasons"])
    assert "the scanner's last error: Lotus: connection refused" in health["reasons"]
    assert health["last_error"] == "Lotus: connection refused"


def test_a_scanner_that_stopped_hours_ago_is_incomplete(client: Client, personas: Personas) -> None:
    scanned_at(lag=10, finished=timezone.now() - timedelta(hours=5))
    payload, _ = deal(1)
    scanner, health = ask(client, personas, payload)
    # the recorded lag plus the epochs that have passed since: 10 + 5 h of 30 s epochs
    assert scanner["complete"] is False and scanner["lag_epochs"] == 10 + 600
    assert any("finished 5 h ago" in r for r in health["reasons"]), health["reasons"]
