"""The moderator pages: who may see and do what, every state a decision moves through, the
queue's filters, and a constant number of SQL queries whatever the number of jobs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.eligibility.selectors import forget_epoch
from dashboard.models import ApiKey, AuditEvent, Decision, Job, JobResult, Reexecution
from tests.awards import award
from tests.base import PASSWORD, Personas
from tests.e2e.page_data import BLESSED_CID, OTHER_CID, make_job, stored_result

PAGES = ["/", "/jobs/job-1/", "/audit/", "/overview/", "/scanner/"]


@pytest.fixture
def store(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return settings


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def uncapped(settings) -> None:  # type: ignore[no-untyped-def]
    """Most of these tests are about the pages, not DATACAP_MAX_OVER_SUGGESTION (tested in
    tests/dashboard/moderation/test_risks.py): any amount goes."""
    settings.DATACAP_MAX_OVER_SUGGESTION = 1 << 40


@pytest.fixture
def mona(personas: Personas) -> Client:
    return client_for(personas.moderator)


@pytest.fixture
def victor(personas: Personas) -> Client:
    return client_for(personas.viewer)


@pytest.fixture
def ada(personas: Personas) -> Client:
    return client_for(personas.admin)


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.content.decode())


# --- signing in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*PAGES, "/keys/"])
def test_pages_need_a_sign_in(personas: Personas, url: str) -> None:
    make_job("job-1")
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next={url}")


@pytest.mark.parametrize("url", [*PAGES, "/keys/"])
def test_an_account_without_a_role_sees_no_page(personas: Personas, url: str) -> None:
    make_job("job-1")
    response = client_for(personas.outsider).get(url)
    assert response.status_code == 403
    assert "has no dashboard role" in text(response)


@pytest.mark.parametrize("url", PAGES)
def test_viewers_read_every_page(victor: Client, url: str) -> None:
    make_job("job-1")
    response = victor.get(url)
    assert response.status_code == 200
    body = text(response)
    assert 'href="#main"' in body and 'id="main"' in body  # the skip link and its target


def test_only_admins_manage_keys(victor: Client, mona: Client, ada: Client) -> None:
    assert victor.get("/keys/").status_code == 403
    assert mona.get("/keys/").status_code == 403
    assert ada.get("/keys/").status_code == 200
    assert 'href="/keys/"' in text(ada.get("/")) and 'href="/keys/"' not in text(mona.get("/"))


def test_sign_in_and_out(personas: Personas) -> None:
    client = Client()
    page = client.get("/login/?next=/audit/")
    assert page.status_code == 200 and 'for="id_username"' in text(page)
    response = client.post("/login/", {"username": "mona", "password": PASSWORD, "next": "/audit/"})
    assert response.status_code == 302 and response["Location"] == "/audit/"
    assert client.get("/").status_code == 200
    assert client.get("/logout/").status_code == 405  # signing out is a POST
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_sign_in_never_redirects_off_site(personas: Personas) -> None:
    response = Client().post(
        "/login/", {"username": "mona", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_failed_sign_ins_lock_the_account_for_a_while(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 3
    client = Client()
    for _ in range(2):
        response = client.post("/login/", {"username": "mona", "password": "wrong"})
        # A wrong password is the form's error, shown on an ordinary page: not a bad request.
        assert response.status_code == 200
        assert "enter a correct username and password" in text(response)
    locked = client.post("/login/", {"username": "mona", "password": "wrong"})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in text(locked)
    assert locked["Retry-After"] == str(settings.LOGIN_LOCKOUT_S)
    # The right password does not help while the pause lasts, from any address.
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/login/", {"username": "mona", "password": PASSWORD}).status_code == 429
    # Someone else is not locked out by mona's failures elsewhere.
    assert other.post("/login/", {"username": "ada", "password": PASSWORD}).status_code == 302


def test_failed_sign_ins_from_one_address_lock_it(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 3
    client = Client(REMOTE_ADDR="10.0.0.7")
    for name in ("mona", "ada", "victor"):
        client.post("/login/", {"username": name, "password": "wrong"})
    assert client.post("/login/", {"username": "oscar", "password": PASSWORD}).status_code == 429
    assert Client().post("/login/", {"username": "oscar", "password": PASSWORD}).status_code == 302


def test_good_sign_ins_cost_nothing_and_failures_stay_counted(personas: Personas, settings) -> None:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(5):  # signing in often never locks an account
        assert (
            Client().post("/login/", {"username": "mona", "password": PASSWORD}).status_code == 302
        )
    for _ in range(2):
        Client(REMOTE_ADDR="10.0.0.1").post("/login/", {"username": "mona", "password": "x"})
    assert Client().post("/login/", {"username": "mona", "password": PASSWORD}).status_code == 302
    # a right password does not wipe the failures: one more wrong one, then the pause
    wrong = Client(REMOTE_ADDR="10.0.0.2")
    assert wrong.post("/login/", {"username": "mona", "password": "x"}).status_code == 429


# --- the queue ----------------------------------------------------------------------------------


def queue_ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [job.id for job in response.context["page"].object_list]


def test_the_queue_puts_blessed_inputs_first(mona: Client) -> None:
    make_job("old-blessed", finished_ago=timedelta(days=2))
    make_job("new-unblessed", blessed=False, finished_ago=timedelta(minutes=1))
    make_job("no-inputs", blessed=None, finished_ago=timedelta(minutes=2))
    make_job("new-blessed", finished_ago=timedelta(hours=1))
    make_job("decided", moderation=Job.Moderation.VERIFIED)
    make_job("failed", state=Job.State.FAILED)
    make_job("queued", state=Job.State.QUEUED)
    response = mona.get("/")
    assert response.status_code == 200
    assert queue_ids(response) == ["new-blessed", "old-blessed", "new-unblessed", "no-inputs"]
    body = text(response)
    assert "4 jobs awaiting a decision" in body
    assert 'href="/jobs/new-blessed/"' in body


def test_the_queue_filters(mona: Client, personas: Personas) -> None:
    make_job("a", engine="docker", annotations=("filplus", "genomics"))
    make_job("b", blessed=False, node=personas.node, finished_ago=timedelta(days=3))
    make_job("c", annotations=("filplus-extra",), finished_ago=timedelta(days=10))
    today = timezone.localdate()

    def ids(**params: str) -> set[str]:
        response = mona.get("/", params)
        assert response.status_code == 200
        return set(queue_ids(response))

    assert ids(blessed="yes") == {"a", "c"}
    assert ids(blessed="no") == {"b"}
    assert ids(engine="docker") == {"a"}
    assert ids(node=personas.node.prefix) == {"b"}
    assert ids(node="bundled") == {"a", "c"}
    assert ids(annotation="filplus") == {"a", "b"}  # whole annotations only
    assert ids(annotation="genomics") == {"a"}
    assert ids(since=str(today - timedelta(days=5))) == {"a", "b"}
    assert ids(until=str(today - timedelta(days=2))) == {"b", "c"}
    assert ids(since=str(today - timedelta(days=5)), until=str(today - timedelta(days=2))) == {"b"}
    assert ids(blessed="yes", engine="wasm") == {"c"}


def test_a_bad_filter_value_is_shown_not_a_crash(mona: Client) -> None:
    make_job("a")
    response = mona.get("/", {"since": "yesterday", "engine": "wasm"})
    assert response.status_code == 200
    assert "Enter a valid date" in text(response)
    assert queue_ids(response) == ["a"]


def test_search_by_job_id_input_cid_or_result_cid(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    cids = stored_result()
    make_job("blessed-job", cids=cids)
    make_job("other-job", blessed=False)

    def ids(q: str) -> list[str]:
        return queue_ids(mona.get("/", {"q": q}))

    assert ids("other-job") == ["other-job"]
    assert ids(BLESSED_CID) == ["blessed-job"]
    assert ids(OTHER_CID.upper()) == ["other-job"]  # any multibase form of the same CID
    assert ids(cids["result_cid"]) == ["blessed-job"]
    assert ids("nothing-like-this") == []


def test_empty_states(mona: Client) -> None:
    body = text(mona.get("/"))
    assert "Nothing to review" in body
    make_job("done", moderation=Job.Moderation.REJECTED)
    assert queue_ids(mona.get("/", {"q": "done"})) == ["done"]  # a search finds decided jobs
    body = text(mona.get("/", {"q": "done", "state": "awaiting"}))
    assert "No job awaiting a decision matches these filters" in body
    assert 'href="/jobs/done/"' in body and "already decided" in body
    assert "Show the whole queue" in body


def test_the_queue_is_paginated(mona: Client) -> None:
    for n in range(30):
        make_job(f"job-{n:02}", finished_ago=timedelta(minutes=n))
    first = mona.get("/", {"engine": "wasm"})
    assert queue_ids(first)[0] == "job-00" and len(queue_ids(first)) == 25
    assert 'href="?engine=wasm&amp;page=2"' in text(first)
    second = mona.get("/", {"engine": "wasm", "page": "2"})
    assert queue_ids(second) == [f"job-{n}" for n in range(25, 30)]
    assert queue_ids(mona.get("/", {"page": "99"})) == queue_ids(second)  # the last page


def test_pages_run_on_across_the_blessed_segments(mona: Client) -> None:
    for n in range(20):
        make_job(f"blessed-{n:02}", finished_ago=timedelta(minutes=n))
    for n in range(8):
        make_job(f"unblessed-{n}", blessed=False, finished_ago=timedelta(seconds=n))
    for n in range(2):
        make_job(f"no-inputs-{n}", blessed=None, finished_ago=timedelta(seconds=n))
    first = queue_ids(mona.get("/"))
    second = queue_ids(mona.get("/", {"page": 2}))
    assert first == [f"blessed-{n:02}" for n in range(20)] + [f"unblessed-{n}" for n in range(5)]
    assert second == ["unblessed-5", "unblessed-6", "unblessed-7", "no-inputs-0", "no-inputs-1"]
    assert queue_ids(mona.get("/", {"blessed": "no", "page": 1})) == [
        *(f"unblessed-{n}" for n in range(8)),
        "no-inputs-0",
        "no-inputs-1",
    ]


def many_jobs(first: int, last: int, node: ApiKey) -> None:
    for n in range(first, last):
        make_job(
            f"bulk-{n}",
            blessed=(True, False, None)[n % 3],
            node=node if n % 2 else None,
            size=1000 + n,
            finished_ago=timedelta(minutes=n),
        )


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


# Session, user, role, the node filter's choices, the jobs flagged on chain, the nodes caught
# by a re-execution, the verifications awaiting a second approval, the segment counts, then
# one query per blessed segment (all, some, no inputs) the page overlaps: at most three; then
# the page's inputs and re-executions, for the risk badges.
QUEUE_QUERIES = 8 + 3 + 2


def test_the_queue_and_job_pages_run_a_constant_number_of_queries(
    mona: Client,
    personas: Personas,
    store,  # type: ignore[no-untyped-def]
) -> None:
    def measure() -> tuple[int, int, int, int]:
        # The scanner's epoch is kept for a second per process: read it afresh each time, so
        # both measurements count the same queries.
        forget_epoch()
        pages = mona.get("/").context["page"].paginator.num_pages
        queue = max(queries(mona, f"/?page={n}") for n in range(1, pages + 1))
        filtered = queries(mona, "/?blessed=no&engine=wasm&annotation=filplus")
        forget_epoch()
        job_page = queries(mona, "/jobs/bulk-1/")
        return queue, filtered, job_page, queries(mona, f"/?q={BLESSED_CID}")

    many_jobs(0, 10, personas.node)
    small = measure()
    many_jobs(10, 200, personas.node)
    large = measure()
    # Ten jobs put all three segments on one page: the most a queue page ever runs.
    assert small[0] == QUEUE_QUERIES
    assert large[0] <= QUEUE_QUERIES and large[1] <= QUEUE_QUERIES
    assert small[2:] == large[2:]  # the job page and a CID search: the same, whatever the size


# --- a job ------------------------------------------------------------------------------------


def test_the_job_page_shows_what_a_moderator_needs(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    cids = stored_result(stdout=b"line one\nline two\n", stderr=b"a warning\n")
    make_job("job-1", engine="docker", cids=cids, size=1000)
    response = mona.get("/jobs/job-1/")
    assert response.status_code == 200
    body = text(response)
    assert BLESSED_CID in body and "/data/in.txt" in body
    assert "claim 12345: provider f01234, client f05678" in body  # the claim behind the input
    assert "line one line two" in body and "a warning" in body
    assert f'href="/ipfs/{cids["outputs_cid"]}/report.txt"' in body
    assert f'href="/ipfs/{cids["result_cid"]}"' in body
    assert "1000 bytes" in body
    # 1000 bytes pad to a 1 KiB piece, times one replica.
    assert 'id="suggested-datacap">1 KiB (1024 bytes)' in body
    # no default decision: nothing checked, the amount empty, the suggestion beside it
    assert 'value="1 KiB"' not in body and "checked" not in body
    assert 'href="?datacap=suggested#decide-form"' in body
    # "use suggestion" fills it in, with units, and no script
    assert 'value="1 KiB"' in text(mona.get("/jobs/job-1/?datacap=suggested"))
    assert "&quot;engine&quot;: &quot;docker&quot;" in body  # the spec
    assert "No decision yet" in body


def test_the_suggestion_follows_the_replica_count(mona: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATACAP_REPLICAS = 11
    make_job("job-1", size=100)  # a 128-byte piece: 1408 bytes, not a round KiB figure
    assert 'value="1408"' in text(mona.get("/jobs/job-1/?datacap=suggested"))


def test_missing_content_is_said_plainly(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    missing = "bafkreiaqm3h2tqilzbgtglsabqeqoyh3rbwlpwlgwtwmevvpgyxfdhhfeq"
    make_job(
        "job-1",
        cids={
            "result_cid": missing,
            "stdout_cid": missing,
            "stderr_cid": "",
            "outputs_cid": missing,
        },
    )
    body = text(mona.get("/jobs/job-1/"))
    for part in ("stdout", "stderr", "outputs"):
        assert (
            f"The result {missing} is not in this dashboard&#x27;s store, so its {part} "
            "cannot be read from it"
        ) in body


def test_a_long_stdout_is_cut_at_64_kib(mona: Client, store) -> None:  # type: ignore[no-untyped-def]
    make_job("job-1", cids=stored_result(stdout=b"x" * 200_000))
    response = mona.get("/jobs/job-1/")
    assert len(response.context["stdout"].text) == 64 * 1024
    assert "Only the first 64 KiB are shown" in text(response)


def test_no_such_job(mona: Client) -> None:
    assert mona.get("/jobs/nope/").status_code == 404
    assert mona.post("/jobs/nope/decide", {"decision": "reject", "reason": "x"}).status_code == 404


def test_viewers_see_no_decision_form(victor: Client) -> None:
    make_job("job-1")
    body = text(victor.get("/jobs/job-1/"))
    assert 'id="decide-form"' not in body
    assert "deciding needs the moderator or admin role" in body


def test_a_moderator_verifies_with_an_amount_typed_with_units(mona: Client) -> None:
    make_job("job-1")
    response = mona.post(
        "/jobs/job-1/decide", {"decision": "verify", "datacap": "1.5 GiB", "reason": "looks good"}
    )
    assert response.status_code == 302 and response["Location"] == "/jobs/job-1/"
    job = Job.objects.get(id="job-1")
    assert job.moderation_state == "verified" and job.datacap_bytes == 3 << 29
    event = AuditEvent.objects.get(action="job.verify")
    assert (event.actor, event.target, event.reason) == ("user:mona", "job:job-1", "looks good")
    page = text(mona.get("/jobs/job-1/"))
    assert "Job job-1 verified with 1.50 GiB" in page  # the flash message
    assert "verify</strong> by mona" in page and "1610612736 bytes" in page
    assert 'id="decide-form"' not in page
    assert mona.get("/").context["page"].paginator.count == 0  # out of the queue


def test_a_moderator_rejects_with_a_reason(mona: Client) -> None:
    make_job("job-1")
    response = mona.post("/jobs/job-1/decide", {"decision": "reject", "reason": "no data"})
    assert response.status_code == 302
    job = Job.objects.get(id="job-1")
    assert job.moderation_state == "rejected" and job.datacap_bytes is None
    assert AuditEvent.objects.filter(action="job.reject", reason="no data").count() == 1


@pytest.mark.parametrize(
    ("form", "message", "field"),
    [
        ({"decision": "verify", "datacap": "3 furlongs"}, "unknown unit", "datacap"),
        ({"decision": "verify", "datacap": ""}, "needs a DataCap amount", "datacap"),
        ({"decision": "verify", "datacap": "0"}, "more than 0 bytes", "datacap"),
        ({"decision": "reject", "reason": "  "}, "a rejection needs a reason", "reason"),
        ({"decision": "maybe"}, "decision must be", "decision"),
    ],
)
def test_bad_decisions_are_explained_next_to_the_field(
    mona: Client, form: dict[str, str], message: str, field: str
) -> None:
    make_job("job-1")
    response = mona.post("/jobs/job-1/decide", form)
    assert response.status_code == 400
    body = text(response)
    assert 'role="alert"' in body and message in body
    assert f'id="id_{field}_error"' in body or f'id="id_{field}_0_error"' in body
    assert Job.objects.get(id="job-1").moderation_state == "pending"
    assert (
        not Decision.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="job.").exists()
    )


def test_the_decision_form_is_validated_before_the_service_is_asked(mona: Client) -> None:
    """The page hands the service what its form read: an amount the service could read but
    longer than the form's field takes is refused by the form, and nothing is decided."""
    make_job("job-1")
    amount = "1 GiB".rjust(41, "0")  # 41 characters: 0000…01 GiB
    response = mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": amount})
    assert response.status_code == 400
    body = text(response)
    assert re.search(r'id="decision-error">[^<]*at most 40 characters', body)
    assert 'id="id_datacap_error"' in body
    assert Job.objects.get(id="job-1").moderation_state == "pending"
    assert not Decision.objects.exists()


def test_a_viewers_post_is_refused_whatever_the_page_showed(
    victor: Client, personas: Personas
) -> None:
    make_job("job-1")
    form = {"decision": "verify", "datacap": "1 GiB"}
    response = victor.post("/jobs/job-1/decide", form)
    assert response.status_code == 403
    assert "needs the moderator or admin role; you are viewer" in text(response)
    outsider = client_for(personas.outsider).post("/jobs/job-1/decide", form)
    assert outsider.status_code == 403
    anonymous = Client().post("/jobs/job-1/decide", form)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert Job.objects.get(id="job-1").moderation_state == "pending"
    assert not Decision.objects.exists()


def test_a_job_is_decided_once(mona: Client, ada: Client) -> None:
    make_job("job-1")
    first = mona.post("/jobs/job-1/decide", {"decision": "reject", "reason": "no"})
    assert first.status_code == 302
    late = ada.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 GiB"})
    assert late.status_code == 409
    body = text(late)
    assert re.search(
        r"Your decision was not recorded: job job-1 was already rejected by mona at \d{4}-", body
    )
    assert 'id="moderation-state">rejected' in body  # the page shows the decision that won
    assert Decision.objects.count() == 1


def test_only_completed_jobs_are_decided(mona: Client) -> None:
    make_job("job-1", state=Job.State.FAILED)
    response = mona.post("/jobs/job-1/decide", {"decision": "reject", "reason": "x"})
    assert response.status_code == 409 and "only completed jobs can be decided" in text(response)


def test_decisions_need_post_and_a_csrf_token(personas: Personas) -> None:
    make_job("job-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.moderator)
    assert client.get("/jobs/job-1/decide").status_code == 405
    refused = client.post("/jobs/job-1/decide", {"decision": "reject", "reason": "x"})
    assert refused.status_code == 403
    assert Job.objects.get(id="job-1").moderation_state == "pending"


def test_an_admin_revokes_a_verification_without_awards(ada: Client, mona: Client) -> None:
    make_job("job-1")
    mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 GiB"})
    assert 'id="revoke-form"' not in text(mona.get("/jobs/job-1/"))
    assert 'id="revoke-form"' in text(ada.get("/jobs/job-1/"))
    refused = mona.post("/jobs/job-1/revoke", {"reason": "mistake"})
    assert refused.status_code == 403
    missing_reason = ada.post("/jobs/job-1/revoke", {"reason": ""})
    assert missing_reason.status_code == 400 and "needs a reason" in text(missing_reason)
    response = ada.post("/jobs/job-1/revoke", {"reason": "mistake"})
    assert response.status_code == 302
    assert Job.objects.get(id="job-1").moderation_state == "revoked"
    assert AuditEvent.objects.filter(action="job.revoke", actor="user:ada").count() == 1
    again = ada.post("/jobs/job-1/revoke", {"reason": "again"})
    assert again.status_code == 409 and "not verified" in text(again)


def test_no_revocation_once_datacap_was_awarded(ada: Client, mona: Client) -> None:
    job = make_job("job-1")
    mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 GiB"})
    award(job, piece_cid="baga-x", provider="f01234", piece_size=2048)
    page = text(ada.get("/jobs/job-1/"))
    assert 'id="revoke-form"' not in page and "2 KiB in 1 award" in page
    response = ada.post("/jobs/job-1/revoke", {"reason": "mistake"})
    assert response.status_code == 409 and "cannot be revoked" in text(response)


# --- audit, overview, scanner ----------------------------------------------------------------


def test_the_audit_log_filters_by_actor_action_and_date(mona: Client, ada: Client) -> None:
    make_job("job-1")
    make_job("job-2")
    mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 GiB"})
    ada.post("/jobs/job-2/decide", {"decision": "reject", "reason": "nope"})

    def targets(**params: str) -> list[str]:
        response = mona.get("/audit/", params)
        assert response.status_code == 200
        return [e.target for e in response.context["page"].object_list]

    assert targets(actor="mona") == ["job:job-1"]
    assert targets(actor="user:ada") == ["job:job-2"]
    assert targets(action="job.reject") == ["job:job-2"]
    today = str(timezone.localdate())
    assert set(targets(action="job.verify", since=today, until=today)) == {"job:job-1"}
    tomorrow = str(timezone.localdate() + timedelta(days=1))
    assert targets(since=tomorrow) == []
    body = text(mona.get("/audit/", {"since": tomorrow}))
    assert "No audit event matches these filters" in body
    assert 'href="/jobs/job-1/"' in text(mona.get("/audit/"))


def test_the_audit_log_filters_by_job(mona: Client, ada: Client) -> None:
    make_job("job-1")
    make_job("job-10")
    mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 GiB"})
    ada.post("/jobs/job-10/decide", {"decision": "reject", "reason": "nope"})
    AuditEvent.objects.create(actor="script", action="api_key.create", target="api_key:fpk_1")

    def targets(**params: str) -> list[str]:
        response = mona.get("/audit/", params)
        assert response.status_code == 200
        return [e.target for e in response.context["page"].object_list]

    assert targets(job="job-1") == ["job:job-1"]  # that job only, not job-10
    assert targets(job=" job-10 ") == ["job:job-10"]
    assert targets(job="job:job-1") == ["job:job-1"]  # as the Target column shows it
    assert targets(job="job-1", actor="ada") == []
    assert targets(job="job-10", action="job.reject", actor="ada") == ["job:job-10"]
    page = text(mona.get("/audit/", {"job": "job-1"}))
    assert 'name="job" value="job-1"' in page  # the form on the page keeps the filter


def test_the_audit_log_shows_changes_field_by_field(mona: Client) -> None:
    AuditEvent.objects.create(
        actor="user:ada",
        action="api_key.create",
        target="api_key:fpk_1",
        after={"name": "node-9", "scope": "node", "limits": {"a": 1}},
    )
    AuditEvent.objects.create(
        actor="user:ada",
        action="job.verify",
        target="job:job-1",
        before={"moderation_state": "pending", "datacap_bytes": None},
        after={"moderation_state": "verified", "datacap_bytes": 1024},
    )
    body = re.sub(r"<[^>]+>", "", text(mona.get("/audit/")))  # what a person reads
    assert "moderation_state: pending → verified" in body
    assert "datacap_bytes: — → 1024" in body
    # a new object: each field with its value, not one line of JSON
    assert "name: node-9" in body and "scope: node" in body and "limits: a: 1" in body
    assert "{" not in body.split("Reason")[-1]  # the table's rows, after its headings


def test_the_audit_log_is_paginated(mona: Client) -> None:
    for n in range(60):
        AuditEvent.objects.create(actor="script", action="api_key.create", target=f"k{n}")
    first = mona.get("/audit/", {"actor": "script"})
    assert len(first.context["page"].object_list) == 50
    assert 'href="?actor=script&amp;page=2"' in text(first)
    second = mona.get("/audit/", {"actor": "script", "page": 2})
    assert len(second.context["page"].object_list) == 10


def test_the_overview_draws_charts_with_the_numbers_in_tables(mona: Client) -> None:
    empty = text(mona.get("/overview/"))
    assert "No jobs in the last 30 days" in empty and "No DataCap has been verified yet" in empty
    make_job("job-1")
    make_job("job-2", state=Job.State.FAILED)
    mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "32 GiB"})
    assert "No jobs in the last 30 days" in text(mona.get("/overview/"))  # cached for 30 s
    cache.clear()
    response = mona.get("/overview/")
    body = text(response)
    assert body.count('<svg class="chart"') == 2
    assert 'role="img"' in body and "<title" in body
    assert "32 GiB" in body  # the running total in the table and the headline
    today = timezone.localdate()
    rows = dict(response.context["jobs_rows"])
    states = response.context["states"]
    assert rows[today][states.index("completed")] == 1
    assert rows[today][states.index("failed")] == 1
    assert response.context["datacap_rows"][-1] == (today, "32 GiB", "32 GiB")


def test_the_scanner_page_before_any_pass(victor: Client) -> None:
    body = text(victor.get("/scanner/"))
    assert "The scanner has not run yet" in body


# --- API keys -------------------------------------------------------------------------------


def test_an_admin_creates_a_key_shown_once(ada: Client, personas: Personas) -> None:
    response = ada.post("/keys/", {"name": "node-9", "scope": "node", "provider": "f09999"})
    assert response.status_code == 201
    raw = response.context["raw_key"]
    assert raw.startswith("fpk_") and raw in text(response)
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(name="node-9")
    assert key.provider == "f09999" and raw not in text(ada.get("/keys/"))
    assert AuditEvent.objects.filter(action="api_key.create", actor="user:ada").exists()
    moderator_key = ada.post("/keys/", {"name": "script", "scope": "moderator", "username": "mona"})
    assert moderator_key.status_code == 201
    assert ApiKey.objects.get(name="script").user == personas.moderator
    verifier = ada.post("/keys/", {"name": "checker", "scope": "node", "verifier": "on"})
    assert verifier.status_code == 201 and ApiKey.objects.get(name="checker").verifier is True
    assert "verifier" in text(ada.get("/keys/"))
    assert ApiKey.objects.get(name="node-9").verifier is False
    probe = ada.post("/keys/", {"name": "node-9-probe", "scope": "probe"})
    assert probe.status_code == 201 and ApiKey.objects.get(name="node-9-probe").scope == "probe"


def test_bad_keys_are_explained(ada: Client) -> None:
    response = ada.post("/keys/", {"name": "n", "scope": "node", "provider": "nope"})
    assert response.status_code == 400
    assert "provider must be a storage provider id address" in text(response)
    missing = ada.post("/keys/", {"name": "", "scope": "node"})
    assert missing.status_code == 400 and "This field is required" in text(missing)
    unknown = ada.post("/keys/", {"name": "s", "scope": "moderator", "username": "nobody"})
    assert unknown.status_code == 400 and "no moderator account" in text(unknown)
    not_node = ada.post("/keys/", {"name": "v", "scope": "notary", "verifier": "on"})
    assert not_node.status_code == 400 and "only compute node keys" in text(not_node)


def test_an_admin_revokes_a_key(ada: Client, mona: Client, personas: Personas) -> None:
    prefix = personas.node.prefix
    assert mona.post(f"/keys/{prefix}/revoke", {"confirm": "on"}).status_code == 403
    assert mona.get(f"/keys/{prefix}/revoke").status_code == 403
    assert ApiKey.objects.get(prefix=prefix).revoked_at is None
    response = ada.post(f"/keys/{prefix}/revoke", {"confirm": "on"})
    assert response.status_code == 302
    assert ApiKey.objects.get(prefix=prefix).revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoke", actor="user:ada").exists()
    assert "revoked" in text(ada.get("/keys/"))
    assert ada.post("/keys/fpk_nothing/revoke", {"confirm": "on"}).status_code == 404
    assert ada.get("/keys/fpk_nothing/revoke").status_code == 404


def test_revoking_a_key_asks_for_confirmation_first(ada: Client, personas: Personas) -> None:
    prefix = personas.node.prefix
    keys = ada.get("/keys/").content.decode()
    # The key's action sits in an Actions column, and leads to a confirmation, not a revocation.
    assert '<th scope="col">Actions</th>' in keys and '<th scope="col">Status</th>' not in keys
    assert f'href="/keys/{prefix}/revoke"' in keys
    confirm = ada.get(f"/keys/{prefix}/revoke")
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert personas.node.name in page and f"{prefix}…" in page
    assert 'name="confirm"' in page and "required" in page  # a checkbox the form needs
    assert ApiKey.objects.get(prefix=prefix).revoked_at is None
    # Posted without the box ticked (no browser check, e.g. a script): nothing is revoked.
    unconfirmed = ada.post(f"/keys/{prefix}/revoke")
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in text(unconfirmed)
    assert ApiKey.objects.get(prefix=prefix).revoked_at is None
    assert not AuditEvent.objects.filter(action="api_key.revoke").exists()
    # Confirmed: revoked, and the list says so, with no action left on that key.
    assert ada.post(f"/keys/{prefix}/revoke", {"confirm": "on"}).status_code == 302
    assert ApiKey.objects.get(prefix=prefix).revoked_at is not None
    assert f'href="/keys/{prefix}/revoke"' not in ada.get("/keys/").content.decode()


def test_mona_signs_in_with_her_password(personas: Personas) -> None:
    # The personas' password works with the real sign-in form (not only force_login).
    client = Client()
    assert client.post("/login/", {"username": "mona", "password": PASSWORD}).status_code == 302
    make_job("job-1")
    decided = client.post("/jobs/job-1/decide", {"decision": "reject", "reason": "x"})
    assert decided.status_code == 302


def test_charts_escape_labels_and_scale_to_round_tops() -> None:
    from datetime import date

    from dashboard.pages.charts import line_chart, stacked_bars

    days = [date(2026, 1, 1), date(2026, 1, 2)]
    svg = stacked_bars("c", "Jobs <per> day", days, {"a&b": [3, 0], "c": [2, 1]})
    assert "Jobs &lt;per&gt; day" in svg and "a&amp;b" in svg and "<per>" not in svg
    assert svg.count("<rect") == 3  # no bar for a zero
    assert ">8</text>" in svg  # 5 at most: gridlines at 0, 2, 4, 6, 8
    line = line_chart("d", "DataCap", days, [0, 12 << 10], lambda v: f"{int(v)} B", binary=True)
    assert line.count("<circle") == 2 and ">20480 B</text>" in line  # 12 KiB → 20 KiB top


def test_a_missing_job_has_a_page_of_its_own(mona: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = False
    response = mona.get("/jobs/nope/")
    assert response.status_code == 404
    body = text(response)
    assert "no job nope" in body and 'href="#main"' in body


def test_jobs_stored_wrongly_on_chain_are_flagged_in_the_queue_and_on_the_page(
    mona: Client,
    store,  # type: ignore[no-untyped-def]
) -> None:
    from chain_scanner.models import Deal
    from dashboard.models import JobPiece
    from dashboard.notary.services import refresh_chain_flags

    cids = stored_result()
    job = make_job("job-flagged", cids=cids, size=1000)
    piece = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    JobPiece.objects.create(
        job=job, piece_cid=piece, piece_size=2048, payload_cid=cids["result_cid"]
    )
    assert refresh_chain_flags() == 0
    assert "flagged-jobs" not in mona.get("/").content.decode()
    Deal.objects.create(
        deal_id=77, piece_cid=piece, piece_size=2048, client="f01", provider="f09999",
        label=cids["result_cid"], payload_cid=cids["result_cid"], start_epoch=1,
        end_epoch=10**8, sector_start_epoch=1,
    )  # fmt: skip
    assert refresh_chain_flags() == 1
    queue = mona.get("/").content.decode()
    assert 'id="flagged-jobs"' in queue and "job-flagged" in queue
    assert "a deal or claim with a provider that does not hold the results" in queue
    page = mona.get("/jobs/job-flagged/").content.decode()
    assert 'id="chain-flags"' in page and 'id="chain-storage"' in page and "f09999" in page
    Deal.objects.filter(deal_id=77).delete()
    assert refresh_chain_flags() == 1  # cleared
    assert 'id="flagged-jobs"' not in mona.get("/").content.decode()


def test_a_risky_verification_on_the_page_marks_each_unticked_risk(mona: Client) -> None:
    make_job("job-1", blessed=False)
    page = text(mona.get("/jobs/job-1/"))
    assert 'name="accept_inputs_not_blessed"' in page and "checked" not in page
    refused = mona.post("/jobs/job-1/decide", {"decision": "verify", "datacap": "1 KiB"})
    assert refused.status_code == 409
    body = text(refused)
    assert "accepting these risks: inputs_not_blessed" in body
    assert 'id="id_accept_inputs_not_blessed_error"' in body
    form = {"decision": "verify", "datacap": "1 KiB", "accept_inputs_not_blessed": "on"}
    assert mona.post("/jobs/job-1/decide", form).status_code == 400  # and a reason
    ok = mona.post("/jobs/job-1/decide", dict(form, reason="the input is ours"))
    assert ok.status_code == 302
    event = AuditEvent.objects.get(action="job.verify")
    assert event.after["accepted_risks"] == ["inputs_not_blessed"]


def test_the_queue_badges_name_failed_programs_and_failed_reruns(
    mona: Client, personas: Personas
) -> None:
    make_job("clean")
    make_job("exit-2")
    JobResult.objects.filter(job_id="exit-2").update(exit_code=2)
    rerun_failed = make_job("rerun-failed", node=personas.node)
    Reexecution.objects.create(
        job=rerun_failed,
        state=Reexecution.State.FAILED,
        reason="policy",
        requested_by="policy",
        error="module not found",
    )
    rows = {
        row.split('href="/jobs/')[1].split("/")[0]: row
        for row in text(mona.get("/")).split("<tr>")[2:]
    }
    assert "badge-" not in rows["clean"]
    assert "program failed (exit 2)" in rows["exit-2"] and "1 risk<" in rows["exit-2"]
    assert "re-run failed" in rows["rerun-failed"] and "1 risk<" in rows["rerun-failed"]
