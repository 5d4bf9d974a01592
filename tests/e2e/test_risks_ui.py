"""The moderator's decision in Chromium: the risks shown first, a risky verification refused
until each risk is ticked and a reason given, an amount over the cap refused, and a large
verification held until a second moderator (not the first, not the submitter) approves it,
the notary told `awaiting_second_approval` meanwhile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import PASSWORD, LiveDashboard
from tests.helpers import manage

SEED = """
from dashboard.models import JobResult, Job, ApiKey
from dashboard.keys.services import create_api_key
from django.contrib.auth import get_user_model
from tests.e2e.page_data import make_job, stored_result
make_job("job-exit", cids=stored_result(stdout=b"exit three\\n"))
JobResult.objects.filter(job_id="job-exit").update(exit_code=3)
make_job("job-cap", cids=stored_result(stdout=b"fourteen bytes\\n"), size=14)
big = stored_result(stdout=b"a big result\\n")
make_job("job-big", cids=big)
JobResult.objects.filter(job_id="job-big").update(car_bytes=(2 << 40) * 127 // 128)
owner, _ = create_api_key(scope="submitter", name="ada-submits", actor="e2e")
ApiKey.objects.filter(pk=owner.pk).update(user=get_user_model().objects.get(username="ada"))
Job.objects.filter(id="job-big").update(owner=owner)
_, notary = create_api_key(scope="notary", name="e2e-notary", actor="e2e")
from dashboard.models import Novelty
from tests.e2e.page_data import BLESSED_CID
make_job("job-copy", cids=stored_result(stdout=b"copied\\n"), size=1000)
Novelty.objects.filter(job_id="job-copy").update(novel_bytes=120, sources=[
    {"cid": BLESSED_CID, "kind": "input", "job_id": None, "bytes": 700},
    {"cid": big["result_cid"], "kind": "result", "job_id": "job-big", "bytes": 180}])
print(big["result_cid"], notary)
"""


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def seeded(live: LiveDashboard) -> tuple[str, str]:
    """The jobs of these tests (once per server), and a second moderator, sam."""
    if not hasattr(seeded, "done"):
        made = manage(dict(live.env, MODERATOR_PASSWORD=PASSWORD), "create_moderator", "sam",
                      "--role", "moderator")  # fmt: skip
        assert made.returncode == 0, made.stderr
        cid, key = live.shell(SEED).splitlines()[-1].split()
        seeded.done = (cid, key)  # type: ignore[attr-defined]
    return seeded.done  # type: ignore[attr-defined]


def test_a_risky_verification_needs_each_risk_ticked_and_a_reason(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    seeded(live_dashboard)
    page = sign_in("mona")
    # the queue's badges: a failed program, and a count of risks
    row = page.locator("tr", has=page.get_by_role("link", name="job-exit"))
    assert "program failed (exit 3)" in row.inner_text()
    unblessed = page.locator("tr", has=page.get_by_role("link", name="job-unblessed"))
    assert "1 risk" in unblessed.inner_text()
    shot(page, screenshots, "queue-risk-badges")

    page.goto("/jobs/job-exit/")
    risks = page.locator("#risk-list").inner_text()
    assert "nonzero_exit" in risks and "inputs_not_blessed" not in risks
    assert page.locator("#risk-exit").inner_text() == "3"
    shot(page, screenshots, "job-risks")
    page.get_by_label("Verify").check()
    page.get_by_role("link", name="Use suggestion").click()
    page.get_by_label("Verify").check()
    page.get_by_role("button", name="Record decision").click()
    alert = page.locator("#decision-error").inner_text()
    assert "accepting these risks: nonzero_exit" in alert
    shot(page, screenshots, "risk-refused")
    page.get_by_label("I accept: the program exited with a non-zero code").check()
    page.get_by_role("button", name="Record decision").click()
    assert "needs a reason" in page.locator("#decision-error").inner_text()
    page.get_by_label("I accept: the program exited with a non-zero code").check()
    page.get_by_label("Reason").fill("exit 3 is this tool's 'no matches', the output is whole")
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url(re.compile(r".*/jobs/job-exit/$"))
    assert page.locator("#moderation-state").inner_text() == "verified"
    shot(page, screenshots, "risk-accepted")
    audit = live_dashboard.shell(
        "from dashboard.models import AuditEvent; "
        "print(AuditEvent.objects.get(action='job.verify', target='job:job-exit')"
        ".after['accepted_risks'])"
    )
    assert audit.splitlines()[-1] == "['nonzero_exit']"


def test_an_amount_over_the_cap_is_refused(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    seeded(live_dashboard)
    page = sign_in("mona")
    page.goto("/jobs/job-cap/")
    assert "128 B" in page.locator("#suggestion").inner_text()
    page.get_by_label("Verify").check()
    page.get_by_label("DataCap").fill("1 PiB")
    page.get_by_role("button", name="Record decision").click()
    alert = page.locator("#decision-error").inner_text()
    assert "1 PiB is more than 1 × the suggested 128 B" in alert
    assert page.locator("#moderation-state").inner_text() == "pending"
    shot(page, screenshots, "datacap-over-cap")


def test_a_large_verification_waits_for_a_second_moderator(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    cid, notary_key = seeded(live_dashboard)
    mona = sign_in("mona")
    mona.goto("/jobs/job-big/")
    mona.get_by_label("Verify").check()
    mona.get_by_role("link", name="Use suggestion").click()
    assert mona.get_by_label("DataCap").input_value() == "2 TiB"
    mona.get_by_label("Verify").check()
    mona.get_by_role("button", name="Record decision").click()
    mona.wait_for_url(re.compile(r".*/jobs/job-big/$"))
    assert mona.locator("#moderation-state").inner_text() == "awaiting_second_approval"
    assert "awaits a second moderator" in mona.locator(".messages").inner_text()

    def notary_says() -> dict[str, Any]:
        answer = httpx.get(
            f"{live_dashboard.url}/api/v1/notary/verifications/{cid}",
            headers={"Authorization": f"Bearer {notary_key}"},
        )
        assert answer.status_code == 200
        return answer.json()

    waiting = notary_says()
    assert waiting["verified"] is False
    assert waiting["reason"]["code"] == "awaiting_second_approval"

    # the moderator who verified it cannot approve it
    mona.get_by_role("button", name="Approve").click()
    assert "you verified this job" in mona.locator("#decision-error").inner_text()
    shot(mona, screenshots, "approve-refused-verifier")
    # nor can its submitter
    ada = sign_in("ada")
    ada.goto("/jobs/job-big/")
    ada.get_by_role("button", name="Approve").click()
    assert "you submitted this job" in ada.locator("#decision-error").inner_text()
    shot(ada, screenshots, "approve-refused-submitter")
    # a second moderator can
    sam = sign_in("sam")  # the queue lists what awaits a second approval
    assert "job-big with 2 TiB" in sam.locator("#awaiting-jobs").inner_text()
    sam.locator("#awaiting-jobs").get_by_role("link", name="job-big").click()
    sam.wait_for_url(re.compile(r".*/jobs/job-big/$"))
    shot(sam, screenshots, "awaiting-second-approval")
    sam.get_by_role("button", name="Approve").click()
    sam.wait_for_url(re.compile(r".*/jobs/job-big/$"))
    assert sam.locator("#moderation-state").inner_text() == "verified"
    assert "approve by sam" in sam.locator("#decision-history").inner_text()
    shot(sam, screenshots, "approved")
    assert notary_says()["verified"] is True


def test_a_copied_result_shows_its_sources_and_must_be_accepted(
    sign_in: Any, screenshots: Path, live_dashboard: LiveDashboard
) -> None:
    seeded(live_dashboard)
    page = sign_in("mona")
    row = page.locator("tr", has=page.get_by_role("link", name="job-copy"))
    assert "12.0 % new" in row.locator("td.novelty").inner_text()
    page.goto("/jobs/job-copy/")
    summary = page.locator("#novelty-summary").inner_text()
    assert "12.0 % new" in summary and "NOVELTY_MIN_PERCENT" in summary
    sources = page.locator("#novelty-sources tbody tr")
    assert sources.count() == 2
    assert "this job's input" in sources.nth(0).inner_text()
    assert "70.0 %" in sources.nth(0).inner_text()
    assert page.locator("#risk-list").inner_text().startswith("novelty_low")
    assert "New data in the result: 120 B of 1000 B" in page.locator("#suggestion").inner_text()
    shot(page, screenshots, "job-novelty")
    page.get_by_label("Verify").check()
    page.get_by_role("link", name="Use suggestion").click()
    page.get_by_label("Verify").check()
    page.get_by_role("button", name="Record decision").click()
    assert "novelty_low" in page.locator("#decision-error").inner_text()
    # The source result's link leads to the job that produced it.
    page.get_by_role("link", name="job-big").first.click()
    page.wait_for_url("**/jobs/job-big/")
