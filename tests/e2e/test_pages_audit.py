"""The audit log in Chromium, at a laptop's width (1366 px) and a phone's (375 px): the
filters (actor, action, job) work from the form, and nothing is wider than the window, long
targets and values included. Screenshots: audit-1366.png, audit-1366-filtered.png,
audit-375.png, audit-375-filtered.png.

Named to run after test_moderation_ui.py (whose audit step expects one job.verify by mona)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LiveDashboard

LONG_JOB = "job-audit-" + "a" * 40
PIECE = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
NODE = "bacalhau_node:QmYgxZiySj3MRkwLSL4X2MF5F9f2PMhAE3LV49XkfNL1o3" + "x" * 60

SEED = f"""
from dashboard.models import AuditEvent
e = AuditEvent.objects.create
e(actor="submitter:e2e-audit", action="job.submit", target="job:{LONG_JOB}",
  after={{"engine": "wasm", "external": False, "inputs": 2}})
e(actor="executor", action="job.result", target="job:{LONG_JOB}",
  before={{"state": "running"}},
  after={{"state": "completed", "result_cid": "{PIECE}", "exit_code": 0, "size_bytes": 13}})
e(actor="node:e2e-audit-node", action="piece.register", target="job:{LONG_JOB}",
  after={{"piece_cid": "{PIECE}", "piece_size": 2048, "payload_cid": "{PIECE}"}})
e(actor="node:e2e-audit-node", action="job.result", target="job:job-audit-other",
  before={{"state": "running"}}, after={{"state": "completed", "result_cid": "{PIECE}"}})
e(actor="bacalhau", action="bacalhau_node.map", target="{NODE}",
  after={{"provider": "f01234", "labels": ["a" * 50, "b" * 50]}},
  reason="a long reason " * 12)
"""


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0: it fits)."""
    return page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def test_the_audit_log_filters_and_fits_a_laptop_and_a_phone(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    live_dashboard.shell(SEED)
    page = sign_in("mona")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_url(re.compile(r".*/audit/$"))
    assert page.locator("#audit-table tbody tr").count() >= 5
    assert overflow(page) == 0
    # The Target column is wide enough to read: no cell wraps a character a line.
    widths = page.locator("#audit-table tbody td.target").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().width)"
    )
    assert widths and min(widths) >= 200, widths
    submit = page.locator("#audit-table tbody tr", has_text="job.submit").first.inner_text()
    assert "engine: wasm" in submit and "inputs: 2" in submit and "{" not in submit
    shot(page, screenshots, "audit-1366")

    # Filter by job, as the Target column shows it, then narrow by action and actor.
    page.get_by_label("Job").fill(f"job:{LONG_JOB}")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*/audit/\?.*job=.*"))
    rows = page.locator("#audit-table tbody tr")
    assert rows.count() == 3
    assert all(LONG_JOB in row for row in rows.all_inner_texts())
    page.get_by_label("Action").select_option("job.result")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*action=job.result.*"))
    assert rows.count() == 1
    assert "state: running → completed" in rows.first.inner_text()
    assert page.get_by_label("Job").input_value() == f"job:{LONG_JOB}"  # the form keeps it
    page.get_by_label("Job").fill("")
    page.get_by_label("Actor").fill("node:e2e-audit-node")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*actor=node%3Ae2e-audit-node.*"))
    assert rows.count() == 1 and "job:job-audit-other" in rows.first.inner_text()
    assert overflow(page) == 0
    shot(page, screenshots, "audit-1366-filtered")

    page.set_viewport_size({"width": 375, "height": 812})
    assert overflow(page) == 0
    shot(page, screenshots, "audit-375-filtered")
    page.goto("/audit/")
    assert page.locator("#audit-table tbody tr").count() >= 5
    assert overflow(page) == 0
    shot(page, screenshots, "audit-375")
