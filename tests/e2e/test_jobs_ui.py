"""The jobs list and the job page in headless Chromium (issue 30): the state filter and the
search find decided jobs, a decided job's page shows its history, pieces and awards, the re-run
diff shows both versions, and the list fits a 375 px phone screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.e2e.page_data import AWARDED_PIECE
from tests.e2e.test_moderation_ui import shot


def test_the_state_filter_and_the_search_find_decided_jobs(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("mona")
    assert page.locator("#jobs-list tbody tr", has_text="job-awarded").count() == 0
    page.get_by_label("State").select_option("verified")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*state=verified.*"))
    row = page.locator("#jobs-list tbody tr", has_text="job-awarded")
    assert row.count() == 1 and "verified" in row.locator(".job-state").inner_text()
    assert "UTC" in row.inner_text()
    shot(page, screenshots, "jobs-verified")

    page.goto("/")
    page.get_by_label("Job id or CID").fill("job-diff")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*q=job-diff.*"))
    rows = page.locator("#jobs-list tbody tr")
    assert rows.count() == 1 and "rejected" in rows.first.inner_text()
    shot(page, screenshots, "jobs-search-decided")

    page.get_by_label("State").select_option("all")
    page.get_by_label("Job id or CID").fill("")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*state=all.*"))
    ids = page.locator("#jobs-list tbody tr td:first-child a").all_inner_texts()
    assert "job-awarded" in ids and "job-diff" in ids and "job-blessed" in ids


def test_a_decided_job_shows_its_history_pieces_and_awards(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.goto("/jobs/job-awarded/")
    history = page.locator("#decision-history").inner_text()
    assert "verify by mona with 2 KiB (2048 bytes)" in history and "UTC" in history
    pieces = page.locator("#pieces").inner_text()
    assert AWARDED_PIECE in pieces and "sp-holder" in pieces and "UTC" in pieces
    awards = page.locator("#awards").inner_text()
    assert "evergreen" in awards and "f01234" in awards and "2048 bytes" in awards
    assert "landed" in awards and "claim 4242" in awards
    page.locator("#result-receipt summary").click()  # what ran, as its node says
    receipt = page.locator("#result-receipt").inner_text()
    assert (
        "wasmtime 50.0.1 (cranelift), completed, 1734 fuel" in receipt and "Determinism" in receipt
    )
    main = page.locator("main").inner_text()
    assert "in 1 award" in main and "1 deal" not in main
    chain = page.locator("#chain-storage").inner_text()
    assert "4242" in chain and "active" in chain
    assert "4000000" in chain and "2024-06-13 19:20 UTC" in chain  # epoch and its date
    assert "http://127.0.0.1:7777" in chain  # where the provider says it serves
    shot(page, screenshots, "job-awarded")


def test_a_failed_job_says_how_its_run_ended(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.goto("/jobs/job-slow/")
    facts = page.locator("#job-facts").inner_text()
    assert "failed" in facts and "wall-time limit of 0.3 s exceeded" in facts
    outcome = page.locator("#job-outcome")
    assert outcome.inner_text() == "timed_out"
    assert "another machine may not end the same way" in (outcome.get_attribute("title") or "")
    shot(page, screenshots, "job-timed-out")


def test_invented_parts_of_a_true_result_show_as_a_mismatch(
    sign_in: Any, screenshots: Path
) -> None:
    page = sign_in("victor")
    page.goto("/jobs/job-parts/")
    diff = page.locator("#reexecution-diff")
    assert "gave the result CID its node reported, but the report named parts" in (
        diff.inner_text()
    )
    rows = diff.locator("tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td").first.inner_text() == "stdout"
    assert "what the job really prints" in rows.nth(0).inner_text()  # what the node named
    exit_row = [cell.strip() for cell in rows.nth(1).locator("td").all_inner_texts()]
    assert exit_row == ["exit_code", "7", "0"]
    shot(page, screenshots, "job-invented-parts")


def test_the_awards_page_filters_by_state(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.get_by_role("link", name="Awards").click()
    page.wait_for_url(re.compile(r".*/awards/$"))
    row = page.locator("#awards-table tbody tr", has_text=AWARDED_PIECE)
    assert row.count() == 1 and "landed" in row.inner_text() and "evergreen" in row.inner_text()
    shot(page, screenshots, "awards")
    page.get_by_label("On chain").select_option("not_landed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*state=not_landed.*"))
    assert page.locator("#awards-table").count() == 0
    assert "No award matches these filters" in page.locator("main").inner_text()


def test_the_rerun_diff_shows_both_versions(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.goto("/jobs/job-diff/")
    diff = page.locator("#reexecution-diff")
    sides = diff.locator("pre.diff-text").all_inner_texts()
    assert sides == ["reported <b>not markup</b>\n", "re-computed line\n"]
    assert diff.locator("b").count() == 0  # escaped, not rendered
    shot(page, screenshots, "job-diff")


def test_the_jobs_list_fits_a_phone(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.set_viewport_size({"width": 375, "height": 800})
    for url, name in (("/", "jobs-375"), ("/?state=all", "jobs-all-375")):
        page.goto(url)
        assert page.locator("#jobs-list tbody tr").count() > 0
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        shot(page, screenshots, name)
