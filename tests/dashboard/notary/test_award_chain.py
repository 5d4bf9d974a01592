"""Awards followed to the chain: the fake Lotus emits verified-registry claim events for
awarded aggregates (by the awarded provider, by another, none, one removed early), and after
one scanner pass and the task that follows it, each award is in its state: in the API, on
the Awards page and on the job page."""

from __future__ import annotations

import pytest
from django.test import Client

from chain_scanner.models import Claim
from chain_scanner.services import scan_once
from dashboard.eligibility.selectors import forget_epoch
from dashboard.models import AuditEvent, Award
from dashboard.moderation import services as moderation
from dashboard.notary.awards import follow_awards, landing
from dashboard.tasks import follow_chain
from tests.base import ACCEPT_RISKS, Personas
from tests.chain_data import encode_claim_event, synthetic_message_cid
from tests.dashboard.notary.test_aggregates import AGGREGATE_SIZE, aggregate_of
from tests.dashboard.notary.test_notary import HOLDER, completed_job, get, post, store, uncapped
from tests.fake_lotus import FakeChain

__all__ = ["store", "uncapped"]  # the fixtures

pytestmark = pytest.mark.django_db
WINDOW = 3000  # AWARD_LANDING_EPOCHS here: one pass (finality + 1,000 epochs) stays inside it


def claim_event(kind: str, claim_id: int, height: int, piece_cid: str, provider: int) -> dict:  # type: ignore[type-arg]
    return encode_claim_event(
        kind,
        claim_id=claim_id,
        height=height,
        msg_cid=synthetic_message_cid(claim_id * 10 + len(kind)),
        tipset_key=None,
        client=1000,
        provider=provider,
        piece_cid=piece_cid,
        piece_size=AGGREGATE_SIZE,
        term_min=518_400,
        term_max=1_555_200,
        term_start=height,
        sector=7,
    )


def one_pass(chain: FakeChain) -> None:
    """What the scanner's beat does: a pass to a new finalized tipset, then follow_chain."""
    chain.advance(chain.finality + 1000)
    scan_once()
    forget_epoch()
    follow_chain()


def awarded_aggregate(client: Client, personas: Personas, store, code: int) -> str:  # type: ignore[no-untyped-def]
    """A verified job's result inside an aggregate of its own, awarded to HOLDER."""
    job = completed_job(personas, store, code)
    cid, pieces = aggregate_of(client, personas, [job], store)
    moderation.decide(job_id=job.id, user=personas.moderator, decision="verify",
                      datacap=pieces[0].size, **ACCEPT_RISKS)  # fmt: skip
    body = {"provider": HOLDER, "piece_cid": cid, "piece_size": AGGREGATE_SIZE}
    taken = post(client, personas.notary_key, "/api/v1/notary/awards", body)
    assert taken.status_code == 201, taken.json()
    return cid


def states(client: Client, personas: Personas, **query: str) -> dict[str, tuple]:  # type: ignore[type-arg]
    listed = get(client, personas.notary_key, "/api/v1/notary/awards?" + "&".join(
        f"{k}={v}" for k, v in query.items()))  # fmt: skip
    assert listed.status_code == 200, listed.json()
    return {
        a["piece_cid"]: (a["chain"]["state"], a["chain"]["claim_id"], a["chain"]["provider"])
        for a in listed.json()["results"]
    }


def test_each_award_ends_in_its_state_after_one_scanner_pass(
    client: Client, personas: Personas, store, settings, scanner_settings, chain: FakeChain
) -> None:
    settings.AWARD_LANDING_EPOCHS = WINDOW
    scan_once()
    forget_epoch()
    landed, other, nothing, removed = (
        awarded_aggregate(client, personas, store, code) for code in range(4)
    )
    assert set(states(client, personas).values()) == {("awaiting", None, None)}
    base = chain.head_height + 1
    chain.add_event(claim_event("claim", 71, base, landed, provider=1234))
    chain.add_event(claim_event("claim", 72, base, other, provider=5555))
    chain.add_event(claim_event("claim", 74, base, removed, provider=1234))
    one_pass(chain)
    assert states(client, personas) == {
        landed: ("landed", 71, HOLDER),
        other: ("mismatched_provider", 72, "f05555"),
        nothing: ("awaiting", None, None),  # 1,900 epochs: inside the window
        removed: ("landed", 74, HOLDER),
    }
    # The claim on `removed` is dropped before its minimum term; the window passes.
    chain.add_event(claim_event("claim-removed", 74, chain.head_height + 1, removed, 1234))
    one_pass(chain)
    assert states(client, personas) == {
        landed: ("landed", 71, HOLDER),
        other: ("mismatched_provider", 72, "f05555"),
        nothing: ("not_landed", None, None),
        removed: ("removed", 74, HOLDER),
    }
    assert Claim.objects.get(claim_id=74).removed
    # filters, and the audit of every change
    assert set(states(client, personas, state="not_landed")) == {nothing}
    assert set(states(client, personas, provider="f05555")) == {other}  # the claiming one
    assert len(states(client, personas, notary="evergreen")) == 4
    assert states(client, personas, notary="someone-else") == {}
    changes = AuditEvent.objects.filter(action="award.chain", actor="scanner")
    assert changes.count() == 5  # 3 in the first pass, 2 in the second
    # nothing changes on a pass with nothing new
    one_pass(chain)
    assert AuditEvent.objects.filter(action="award.chain").count() == 5
    # a provider another provider's claim stands for is refused more, when so configured
    settings.NOTARY_REFUSE_MISMATCHED_PROVIDERS = True
    job = completed_job(personas, store, 9)
    cid, pieces = aggregate_of(client, personas, [job], store)
    moderation.decide(job_id=job.id, user=personas.moderator, decision="verify",
                      datacap=pieces[0].size, **ACCEPT_RISKS)  # fmt: skip
    body = {"provider": HOLDER, "piece_cid": cid, "piece_size": AGGREGATE_SIZE}
    refused = post(client, personas.notary_key, "/api/v1/notary/awards", body)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "provider_mismatched")
    settings.NOTARY_REFUSE_MISMATCHED_PROVIDERS = False
    assert post(client, personas.notary_key, "/api/v1/notary/awards", body).status_code == 201


def test_the_awards_page_and_the_job_page_show_the_state(
    client: Client, personas: Personas, store, settings, scanner_settings, chain: FakeChain
) -> None:
    scan_once()
    forget_epoch()
    landed = awarded_aggregate(client, personas, store, 0)
    other = awarded_aggregate(client, personas, store, 1)
    chain.add_event(claim_event("claim", 81, chain.head_height + 1, landed, provider=1234))
    chain.add_event(claim_event("claim", 82, chain.head_height + 1, other, provider=5555))
    one_pass(chain)
    mona = Client()
    mona.force_login(personas.viewer)  # any dashboard role
    page = mona.get("/awards/").content.decode()
    assert page.count('data-state="landed"') == 1
    assert page.count('data-state="mismatched_provider"') == 1 and "f05555" in page
    only = mona.get("/awards/?state=mismatched_provider").content.decode()
    assert other in only and landed not in only
    assert landed in mona.get(f"/awards/?provider={HOLDER}&state=landed").content.decode()
    bad = mona.get("/awards/?provider=nobody")
    assert bad.status_code == 200 and "ID address like f01234" in bad.content.decode()
    award = Award.objects.get(piece_cid=other)
    job_id = award.shares.get().job_id
    job_page = mona.get(f"/jobs/{job_id}/").content.decode()
    assert 'data-state="mismatched_provider"' in job_page and "claim <span" in job_page
    outsider = Client()
    outsider.force_login(personas.outsider)
    assert outsider.get("/awards/").status_code == 403


def test_a_verified_deal_lands_an_award_and_slashing_removes_it(personas: Personas) -> None:
    """The rule alone, on deals: an activated verified deal by the awarded provider lands it,
    one slashed before its end removes it, and an unactivated one is nothing yet."""
    from chain_scanner.models import Deal

    award = Award(piece_cid="baga-x", provider=HOLDER, piece_size=2048, epoch=100)

    def deal(**fields: object) -> Deal:
        row = {"deal_id": 5, "piece_cid": "baga-x", "piece_size": 2048, "client": "f01",
               "provider": HOLDER, "start_epoch": 200, "end_epoch": 10_000,
               "sector_start_epoch": 150, **fields}  # fmt: skip
        return Deal(**row)

    assert landing(award, [], [deal()], {}, 300).state == "landed"
    assert landing(award, [], [deal(slash_epoch=400)], {}, 500).state == "removed"
    assert landing(award, [], [deal(removed_epoch=10_000)], {}, 10_500).state == "landed"
    assert landing(award, [], [deal(sector_start_epoch=-1)], {}, 300).state == "awaiting"
    assert landing(award, [], [deal(provider="f09")], {}, 300).state == "mismatched_provider"
    assert landing(award, [], [], {}, 100 + 172_800).state == "not_landed"
    assert follow_awards([]) == 0


def test_a_page_of_awards_costs_the_same_queries_whatever_its_length(
    client: Client, personas: Personas, store
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.awards import award

    job = completed_job(personas, store)

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            listed = get(client, personas.notary_key, "/api/v1/notary/awards?limit=200")
        assert listed.status_code == 200
        return len(seen.captured_queries)

    for n in range(3):
        award(job, piece_cid=f"baga-piece-{n}", provider="f01234", piece_size=128)
    queries()  # the key's first use is remembered: count from the second
    few = queries()
    for n in range(3, 30):
        award(job, piece_cid=f"baga-piece-{n}", provider="f01234", piece_size=128)
    assert queries() == few
