"""The moderator pages in real headless Chromium against a live `manage.py serve`: sign in,
filter the queue, open a job, verify it with an amount, find the audit entry; a viewer cannot
decide; two moderators deciding at the same moment get one decision and one conflict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LiveDashboard


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_verify_a_job_from_the_queue_and_find_it_in_the_audit_log(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    page = sign_in("mona")
    # Keyboard first: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.locator("tbody tr").count() == 5  # the seeded pending jobs
    shot(page, screenshots, "queue")

    page.get_by_label("Inputs").select_option("yes")
    page.get_by_label("Engine").select_option("docker")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*blessed=yes.*engine=docker.*"))
    rows = page.locator("tbody tr")
    assert rows.count() == 1
    assert "job-blessed" in rows.first.inner_text()
    assert "1 job matches these filters" in page.locator(".summary").inner_text()
    shot(page, screenshots, "queue-filtered")

    page.get_by_role("link", name="job-blessed").click()
    page.wait_for_url(re.compile(r".*/jobs/job-blessed/$"))
    assert "hello from the job" in page.locator("pre.output").first.inner_text()
    assert page.get_by_role("link", name="report.txt").count() == 1
    # No default decision: nothing chosen, the amount empty, the suggestion beside it.
    assert not page.get_by_label("Verify").is_checked()
    assert not page.get_by_label("Reject").is_checked()
    assert page.get_by_label("DataCap").input_value() == ""
    fetched = page.locator("td.retrieval").first.inner_text()
    assert "f01234" in fetched and "piece" in fetched, fetched  # where the node got its input
    shot(page, screenshots, "job")
    page.get_by_role("link", name="Use suggestion").click()
    assert page.get_by_label("DataCap").input_value() == "8 KiB"  # 5000 bytes → 8 KiB piece

    page.get_by_label("Verify").check()
    page.get_by_label("Reason").fill("inputs are blessed, output checked")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(re.compile(r".*/jobs/job-blessed/$"))
    assert "Job job-blessed verified with 8 KiB." in page.locator(".messages").inner_text()
    assert page.locator("#moderation-state").inner_text() == "verified"
    history = page.locator("#decision-history").inner_text()
    assert "verify by mona with 8 KiB (8192 bytes)" in history
    assert page.locator("#decide-form").count() == 0
    shot(page, screenshots, "job-verified")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option("job.verify")
    page.get_by_label("Actor").fill("mona")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*/audit/\?.*action=job.verify.*"))
    row = page.locator("#audit-table tbody tr")
    assert row.count() == 1
    text = row.first.inner_text()
    assert "user:mona" in text and "job:job-blessed" in text
    assert "inputs are blessed, output checked" in text
    # before → after as a person reads it, not a Python dict
    assert "moderation_state: pending → verified" in text and "{" not in text
    shot(page, screenshots, "audit")

    page.get_by_role("link", name="Overview").click()
    page.wait_for_url(re.compile(r".*/overview/$"))  # count() does not wait for the page
    assert page.locator("svg.chart").count() == 2
    shot(page, screenshots, "overview")
    page.get_by_role("link", name="Scanner", exact=True).click()
    page.wait_for_url(re.compile(r".*/scanner/$"))
    main = page.locator("main").inner_text()
    assert "The scanner has not run yet" in main
    for label in ("Blessed CIDs", "Deals fetched", "Unverified deals skipped", "Claim events"):
        assert page.get_by_role("rowheader", name=label, exact=True).count() == 1, label
    assert "Blessedcids" not in main and "Dealsfetched" not in main
    shot(page, screenshots, "scanner")


def test_the_spec_box_shows_whole_lines(sign_in: Any, screenshots: Path) -> None:
    """A spec longer than its box scrolls, and the box ends between two lines: a box cut
    mid-line hid the underscores (`entry_point`, `_start`) of the last line it showed."""
    page = sign_in("mona")
    page.goto("/jobs/job-long-spec/")  # the context has the base URL
    spec = page.get_by_label("Job spec as JSON")
    assert '"entry_point": "_start"' in spec.inner_text()
    box = spec.evaluate(
        """e => { const s = getComputedStyle(e);
                  return {client: e.clientHeight, scroll: e.scrollHeight,
                          top: parseFloat(s.paddingTop), line: parseFloat(s.lineHeight)}; }"""
    )
    assert box["scroll"] > box["client"]  # it does scroll
    lines = (box["client"] - box["top"]) / box["line"]
    assert abs(lines - round(lines)) < 0.1, box  # whole lines at the top of the scroll
    spec.screenshot(path=str(screenshots / "spec-box.png"))


def test_a_viewer_cannot_decide(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("victor")
    page.goto("/jobs/job-viewer/")
    assert page.locator("#decide-form").count() == 0
    assert "deciding needs the moderator or admin role" in page.locator("main").inner_text()
    # Whatever the page shows, the server decides: a hand-made POST from the viewer's session.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = "/jobs/job-viewer/decide";
                const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
                for (const [name, value] of [["csrfmiddlewaretoken", token],
                        ["decision", "verify"], ["datacap", "1 GiB"]]) {
                    const input = document.createElement("input");
                    input.name = name; input.value = value; form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }"""
        )
    assert navigation.value.status == 403
    alert = page.get_by_role("alert").inner_text()
    assert "needs the moderator or admin role; you are viewer" in alert
    assert page.locator("#moderation-state").inner_text() == "pending"
    shot(page, screenshots, "viewer-refused")


def test_two_moderators_deciding_at_once_make_one_decision(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    mona = sign_in("mona")
    ada = sign_in("ada")
    for page in (mona, ada):
        page.goto("/jobs/job-race/")
    mona.get_by_label("Verify").check()
    mona.get_by_label("DataCap").fill("1 KiB")
    ada.get_by_label("Reject").check()
    ada.get_by_label("Reason").fill("not what the annotations say")
    # Both forms go out before either answer comes back.
    submit = "document.getElementById('decide-form').requestSubmit()"
    with mona.expect_navigation() as mona_nav, ada.expect_navigation() as ada_nav:
        mona.evaluate(f"setTimeout(() => {submit}, 0)")
        ada.evaluate(f"setTimeout(() => {submit}, 0)")
    statuses = sorted(
        [mona_nav.value.status, ada_nav.value.status]
    )  # the winner's 302 was followed
    assert statuses == [200, 409]
    loser = mona if mona_nav.value.status == 409 else ada
    winner = ada if loser is mona else mona
    conflict = loser.get_by_role("alert").inner_text()
    assert re.search(
        r"Your decision was not recorded: job job-race was already (verified|rejected) by "
        r"(mona|ada) at ",
        conflict,
    )
    assert "Job job-race" in winner.locator(".messages").inner_text()
    shot(loser, screenshots, "conflict")
    count = live_dashboard.shell(
        "from dashboard.models import Decision; "
        "print(Decision.objects.filter(job_id='job-race').count())"
    )
    assert count.splitlines()[-1] == "1"


def test_an_admin_creates_a_key_shown_once(sign_in: Any, screenshots: Path) -> None:
    page = sign_in("ada")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("e2e-node")
    page.get_by_label("Scope").select_option("node")
    page.get_by_label("Storage provider").fill("f07777")
    page.get_by_role("button", name="Create key").click()
    raw = page.get_by_label("The new key").input_value()
    assert raw.startswith("fpk_")
    shot(page, screenshots, "keys")
    page.goto("/keys/")  # a new GET: the raw key is gone
    assert raw not in page.content()
    # Revoking asks first, on a page of its own, with a box to tick (the browser and the
    # server both refuse the form without it).
    page.get_by_role("link", name=re.compile(r"Revoke key e2e-node")).click()
    page.wait_for_url(re.compile(r".*/keys/fpk_[^/]+/revoke$"))
    revoke = page.get_by_role("button", name="Revoke key e2e-node")
    revoke.click()
    assert page.url.endswith("/revoke") and not page.locator(".messages").count()
    page.get_by_label(re.compile("Revoke this key now")).check()
    shot(page, screenshots, "revoke-key")
    revoke.click()
    assert "revoked" in page.locator(".messages").inner_text()
    row = page.locator("tbody tr", has_text="e2e-node")
    assert "revoked" in row.inner_text()


def test_a_mismatched_reexecution_is_flagged_shown_and_asked_for_again(
    sign_in: Any, screenshots: Path
) -> None:
    page = sign_in("mona")
    row = page.locator("tbody tr", has_text="job-mismatch")
    assert "re-run mismatch" in row.inner_text() and "node caught" in row.inner_text()
    row.get_by_role("link", name="job-mismatch").click()
    page.wait_for_url(re.compile(r".*/jobs/job-mismatch/$"))
    assert page.locator("#reexecution-state").inner_text() == "mismatch"
    diff = page.locator("#reexecution-diff")
    assert "another result than its node reported" in diff.inner_text()
    assert diff.locator("tbody tr").count() == 1
    assert diff.locator("tbody td").first.inner_text() == "stdout"
    shot(page, screenshots, "job-mismatch")

    page.get_by_role("button", name="Re-execute again").click()
    page.wait_for_url(re.compile(r".*/jobs/job-mismatch/$"))
    assert "A re-execution of job job-mismatch is queued." in page.locator(".messages").inner_text()
    assert page.locator("#reexecution-state").inner_text() == "queued"
    assert "mismatch (policy, asked by policy)" in page.locator("#reexecution-history").inner_text()
    with page.expect_navigation():  # the page before had a message too: wait for the new one
        page.get_by_role("button", name="Re-execute again").click()  # a second ask queues nothing
    assert "already queued or running" in page.locator(".messages").inner_text()

    page.get_by_role("link", name="Nodes").click()
    page.wait_for_url(re.compile(r".*/nodes/$"))
    liar = page.locator("#node-records tbody tr", has_text="node-liar")
    cells = [c.strip() for c in liar.locator("td").all_inner_texts()]
    # asked again: the node stays caught until the new run has an outcome (no re-run of it
    # failed or was refused over quota)
    assert cells[3:9] == ["1", "1", "0", "1", "0", "0"] and cells[9] == "caught", cells
    retrievals = page.locator("#provider-retrievals tbody tr")
    rows = {r.locator("td").first.inner_text(): r.inner_text() for r in retrievals.all()}
    assert set(rows) == {"f01234", "f05555"}, rows
    assert "not done after 600 s" in rows["f05555"]
    shot(page, screenshots, "nodes")
