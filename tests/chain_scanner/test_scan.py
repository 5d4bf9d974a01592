"""Scanner passes against the fake Lotus server: claims, deals, rechecks, reorgs, faults."""

from __future__ import annotations

import pytest
from django.test import Client

from chain_scanner.leases import get_checkpoint, take_scanner
from chain_scanner.lotus import LotusError, LotusUnavailable
from chain_scanner.models import BlessedCid, Claim, Deal, ScannerCheckpoint
from chain_scanner.services import scan_once
from dashboard.keys.services import create_api_key
from tests.chain_data import (
    encode_claim_event,
    load_decoded_claims,
    make_deal,
    synthetic_message_cid,
    synthetic_payload_cid,
    synthetic_piece_cid,
)
from tests.chain_scanner.tables import snapshot
from tests.fake_lotus import FakeChain, FakeLotusServer

pytestmark = pytest.mark.django_db

REAL_LAST_HEIGHT = 4_622_139  # the last real claim events; the fixture chain finalizes +1


def _status(cid: str, height: int) -> str:
    row = BlessedCid.objects.filter(cid=cid).first()
    return "unknown" if row is None else row.status_at(height)


def _publish(chain: FakeChain, deal_id: int, **kwargs) -> dict:  # type: ignore[no-untyped-def]
    value = make_deal(deal_id, **kwargs)
    chain.add_deal(deal_id, value)
    return value


def _finalize(chain: FakeChain) -> int:
    """Move the head so that everything published up to 1,000 epochs past the current head
    is final; returns the new finalized height."""
    chain.advance(chain.finality + 1000)
    return chain.head_height - chain.finality


def _scanned_active_deal(chain: FakeChain) -> tuple[int, int]:
    """After a first pass, an active verified deal published and scanned: (deal id, the
    processing height it was read at)."""
    scan_once()
    deal_id = chain.next_deal_id
    _publish(chain, deal_id, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    height = _finalize(chain)
    scan_once()
    return deal_id, height


def _api(scope: str) -> Client:
    """A Django test client carrying a new key of `scope`."""
    _key, raw = create_api_key(scope=scope, name=scope, actor="test")
    return Client(headers={"authorization": f"Bearer {raw}"})


def test_first_pass_caches_every_real_claim(scanner_settings, lotus: FakeLotusServer) -> None:
    report = scan_once()
    claims = load_decoded_claims()
    assert report.processing_height == REAL_LAST_HEIGHT + 1
    assert report.events_height == REAL_LAST_HEIGHT  # the processing tipset's parent
    assert report.claim_events == 360 and report.bad_items == 0
    assert Claim.objects.count() == 360
    pieces = {c["pieceCid"] for c in claims}
    for claim in claims[:20]:
        row = Claim.objects.get(claim_id=claim["id"])
        assert (row.provider, row.client, row.piece_cid) == (
            claim["provider"],
            claim["client"],
            claim["pieceCid"],
        )
        assert row.end_epoch == claim["termStart"] + claim["termMax"]
    assert set(BlessedCid.objects.values_list("cid", flat=True)) == pieces
    assert all(_status(p, REAL_LAST_HEIGHT) == "active" for p in pieces)
    # With no dump and no checkpoint, deals start at the tip: history comes from a dump.
    assert get_checkpoint().next_deal_id == lotus.chain.next_deal_id


def test_claim_ranges_are_bounded_to_2880_epochs(scanner_settings, lotus) -> None:  # type: ignore[no-untyped-def]
    scanner_settings.SCANNER_START_EPOCH = REAL_LAST_HEIGHT - 3 * 2880 + 1  # 3 windows
    scan_once()
    assert lotus.requests["GetActorEventsRaw"] == 3
    assert Claim.objects.count() == 360


def test_claims_expire_at_term_start_plus_term_max(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    claim = load_decoded_claims()[0]
    end = claim["termStart"] + claim["termMax"]
    assert _status(claim["pieceCid"], end - 1) == "active"
    assert _status(claim["pieceCid"], end) == "expired"


def _claim_event(kind: str, claim_id: int, height: int, **overrides):  # type: ignore[no-untyped-def]
    fields = {
        "client": 1000,
        "provider": 2000,
        "piece_cid": synthetic_piece_cid(claim_id),
        "piece_size": 2**35,
        "term_min": 518400,
        "term_max": 1_000_000,
        "term_start": height,
        "sector": 7,
    }
    fields.update(overrides)
    return encode_claim_event(
        kind,
        claim_id=claim_id,
        height=height,
        msg_cid=synthetic_message_cid(claim_id * 10 + len(kind)),
        tipset_key=None,
        **fields,
    )


def test_claim_updated_and_removed(scanner_settings, chain: FakeChain) -> None:  # type: ignore[no-untyped-def]
    base = chain.head_height
    chain.add_event(_claim_event("claim", 1, base + 1))
    chain.add_event(_claim_event("claim", 2, base + 1))
    height = _finalize(chain)
    scan_once()
    piece1, piece2 = synthetic_piece_cid(1), synthetic_piece_cid(2)
    assert _status(piece1, height) == "active"
    later = chain.head_height + 1
    chain.add_event(
        _claim_event("claim-updated", 1, later, term_start=base + 1, term_max=5_000_000)
    )
    chain.add_event(_claim_event("claim-removed", 2, later))
    height = _finalize(chain)
    scan_once()
    assert Claim.objects.get(claim_id=1).term_max == 5_000_000
    assert BlessedCid.objects.get(cid=piece1).active_until == base + 1 + 5_000_000
    assert Claim.objects.get(claim_id=2).removed
    assert _status(piece2, height) == "expired"


def test_new_deals_incrementally(scanner_settings, chain: FakeChain, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()  # no dump: the cursor starts at the tip
    first = chain.next_deal_id
    head = chain.head_height
    _publish(chain, first, start_epoch=head + 2000, end_epoch=head + 600_000)
    _publish(chain, first + 1, start_epoch=head + 2000, end_epoch=head + 600_000, verified=False)
    _publish(
        chain, first + 2, start_epoch=head + 2000, end_epoch=head + 600_000, label="my dataset"
    )
    _publish(
        chain,
        first + 3,
        start_epoch=head - 10,
        end_epoch=head + 600_000,
        sector_start_epoch=head - 20,
        shape="forest",
    )
    height = _finalize(chain)
    lotus.reset_stats()
    report = scan_once()
    assert report.deals_stored == 3 and report.unverified_skipped == 1
    assert set(Deal.objects.values_list("deal_id", flat=True)) == {first, first + 2, first + 3}
    assert Deal.objects.get(deal_id=first + 2).payload_cid is None
    assert _status(synthetic_payload_cid(first), height) == "pending"
    assert _status(synthetic_piece_cid(first), height) == "pending"
    assert _status(synthetic_payload_cid(first + 3), height) == "active"
    assert _status("bafkqaaa", height) == "unknown"
    checkpoint = get_checkpoint()
    assert checkpoint.next_deal_id == first + 4
    assert checkpoint.unverified_skipped == 1
    # Each deal read once, when its deal-published event was; NextID found nothing else.
    assert lotus.requests["StateMarketStorageDeal"] == 4
    assert report.events["deal-published"] == 4 and report.not_in_events == 0
    lotus.reset_stats()
    _finalize(chain)
    report = scan_once()
    # The pending deals are not re-read: an activation would come as an event.
    assert lotus.requests["StateMarketStorageDeal"] == 0 and report.deals_rechecked == 0


def test_deal_ids_no_event_announced_are_read_from_next_id(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    first = chain.next_deal_id
    chain.add_deal(first, make_deal(first, start_epoch=1, end_epoch=10**8, sector_start_epoch=1))
    chain.add_deal(
        first + 1,
        make_deal(first + 1, start_epoch=1, end_epoch=10**8, sector_start_epoch=1),
        event=False,  # e.g. published before market events existed
    )
    _finalize(chain)
    lotus.reset_stats()
    report = scan_once()
    assert set(Deal.objects.filter(deal_id__gte=first).values_list("deal_id", flat=True)) == {
        first,
        first + 1,
    }
    assert report.not_in_events == 1 and report.events["deal-published"] == 1
    assert lotus.requests["StateMarketStorageDeal"] == 2


def test_deal_batches_are_batched_json_rpc(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scanner_settings.SCANNER_DEAL_BATCH = 10
    scan_once()
    first = chain.next_deal_id
    for deal_id in range(first, first + 35):
        _publish(chain, deal_id, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    _finalize(chain)
    lotus.reset_stats()
    scan_once()
    assert Deal.objects.filter(deal_id__gte=first).count() == 35
    assert lotus.requests["StateMarketStorageDeal"] == 35
    # 4 batches of deals + finalized, head, events, the reorg check's key, NextID
    assert lotus.http_requests == 4 + 5


def test_pending_deal_activates_then_gets_slashed(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    deal_id = chain.next_deal_id
    head = chain.head_height
    _publish(chain, deal_id, start_epoch=head + 5000, end_epoch=head + 900_000)
    height = _finalize(chain)
    scan_once()
    payload = synthetic_payload_cid(deal_id)
    assert _status(payload, height) == "pending"
    proven_at = height + 10
    chain.activate_deal(deal_id, height=proven_at, sector_number=99)
    height = _finalize(chain)
    lotus.reset_stats()
    report = scan_once()
    assert report.events["deal-activated"] == 1
    assert lotus.requests["StateMarketStorageDeal"] == 1  # the deal the event named
    deal = Deal.objects.get(deal_id=deal_id)
    assert (deal.sector_number, deal.sector_start_epoch) == (99, proven_at)
    assert _status(payload, height) == "active"


def test_a_slashed_deal_is_not_blessed_after_one_pass(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    deal_id = chain.next_deal_id
    head = chain.head_height
    _publish(chain, deal_id, start_epoch=head - 10, end_epoch=head + 900_000, sector_start_epoch=1)
    _finalize(chain)
    scan_once()
    payload = synthetic_payload_cid(deal_id)
    api = _api("node")
    assert api.get(f"/api/v1/cids/{payload}").json()["blessed"] is True
    # Slashed 100 epochs below the next processing tipset; one pass later it is not blessed.
    next_processing = chain.head_height + 200 - chain.finality
    slashed_at = next_processing - 100
    chain.terminate_deal(deal_id, height=slashed_at)
    chain.advance(200)
    lotus.reset_stats()
    report = scan_once()
    assert report.processing_height == next_processing
    assert report.events["deal-terminated"] == 1 and report.deals_rechecked == 0
    assert lotus.requests["StateMarketStorageDeal"] == 1
    answer = api.get(f"/api/v1/cids/{payload}").json()
    assert answer["blessed"] is False and answer["status"] == "expired"
    (source,) = answer["sources"]
    assert (source["id"], source["status"], source["slash_epoch"]) == (
        deal_id,
        "expired",
        slashed_at,
    )
    deal = Deal.objects.get(deal_id=deal_id)
    assert (deal.slash_epoch, deal.removed_epoch) == (slashed_at, slashed_at)


def test_a_slash_at_the_processing_tipset_waits_for_the_next_pass(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    deal_id, _height = _scanned_active_deal(chain)
    # A message in the processing tipset itself shows in the state of its child only: the
    # event is read next pass, with the state that shows it.
    processing = chain.head_height + 50 - chain.finality
    chain.terminate_deal(deal_id, height=processing)
    chain.advance(50)
    report = scan_once()
    assert report.events_height == processing - 1 and report.events["deal-terminated"] == 0
    assert _status(synthetic_payload_cid(deal_id), processing) == "active"
    chain.advance(1)
    report = scan_once()
    assert report.events["deal-terminated"] == 1
    assert Deal.objects.get(deal_id=deal_id).slash_epoch == processing


def test_a_completed_deal_ends_and_expiry_needs_no_chain_data(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    head = chain.head_height
    done, expiring = chain.next_deal_id, chain.next_deal_id + 1
    _publish(chain, done, start_epoch=1, end_epoch=head + 10**6, sector_start_epoch=1)
    _publish(chain, expiring, start_epoch=1, end_epoch=head + 2000, sector_start_epoch=1)
    height = _finalize(chain)
    scan_once()
    assert _status(synthetic_payload_cid(done), height) == "active"
    completed_at = height + 10
    chain.complete_deal(done, height=completed_at)
    height = _finalize(chain)
    report = scan_once()
    assert report.events["deal-completed"] == 1
    deal = Deal.objects.get(deal_id=done)
    assert (deal.removed_epoch, deal.slash_epoch) == (completed_at, -1)
    assert _status(synthetic_payload_cid(done), height) == "expired"
    assert _status(synthetic_payload_cid(expiring), head + 1999) == "active"
    assert _status(synthetic_payload_cid(expiring), head + 2000) == "expired"


def test_a_contracts_deal_terminated_event_slashes_nothing(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    from tests.chain_data import encode_deal_event

    deal_id, height = _scanned_active_deal(chain)
    chain.add_event(
        encode_deal_event(
            "deal-terminated",
            deal_id=deal_id,
            client=1,
            provider=2,
            height=height + 5,
            msg_cid=synthetic_message_cid(999),
            tipset_key=None,
            emitter="f01234",  # any actor can emit events; only the market's count
        )
    )
    height = _finalize(chain)
    report = scan_once()
    assert report.events["deal-terminated"] == 0
    assert _status(synthetic_payload_cid(deal_id), height) == "active"


# The import writes from a thread with its own connection: on PostgreSQL it would wait for
# the test's transaction forever, so these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_dump_deals_are_read_once_from_state(scanner_settings, chain, lotus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chain_scanner.dump_import import import_dump
    from tests.chain_scanner.dumps import write_dump

    scanner_settings.SCANNER_RECHECK_PER_PASS = 3
    head = chain.head_height
    first = chain.next_deal_id  # the dump ends where the chain's ids do
    deals = {
        i: make_deal(i, start_epoch=1, end_epoch=head + 10**6, sector_start_epoch=1)
        for i in range(first, first + 5)
    }
    for deal_id, value in deals.items():
        chain.add_deal(deal_id, value, height=0)
    # One deal was slashed after the dump was taken and before the scanner's first window.
    slashed = first + 1
    chain.terminate_deal(slashed, height=10)
    import_dump(write_dump(tmp_path / "d.json", list(deals.items())))
    assert set(Deal.objects.values_list("checked_epoch", flat=True)) == {0}
    lotus.reset_stats()
    report = scan_once()
    assert report.deals_rechecked == 3 and lotus.requests["StateMarketStorageDeal"] == 3
    assert get_checkpoint().next_deal_id == first + 5
    report = scan_once()
    assert report.deals_rechecked == 2
    assert not Deal.objects.filter(checked_epoch=0).exists()
    # No event we read says how it ended (its termination is below the first window).
    assert Deal.objects.get(deal_id=slashed).removed_epoch == get_checkpoint().processing_height
    assert _status(synthetic_payload_cid(slashed), report.processing_height) == "expired"
    assert _status(synthetic_payload_cid(first + 2), report.processing_height) == "active"
    lotus.reset_stats()
    chain.advance(10)
    report = scan_once()
    assert report.deals_rechecked == 0 and lotus.requests["StateMarketStorageDeal"] == 0


# The import writes from a thread with its own connection: on PostgreSQL it would wait for
# the test's transaction forever, so these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_a_termination_read_before_its_dump_row_arrives(scanner_settings, chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chain_scanner.dump_import import import_dump
    from tests.chain_scanner.dumps import write_dump

    deal_id = chain.next_deal_id
    value = make_deal(deal_id, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    chain.add_deal(deal_id, value, height=0)
    slashed_at = chain.head_height + 5
    chain.terminate_deal(deal_id, height=slashed_at)
    _finalize(chain)
    scan_once()  # the event is read; the deal is gone and not in our table: nothing to end
    assert not Deal.objects.exists()
    import_dump(write_dump(tmp_path / "d.json", [(deal_id, value)]))  # taken before the slash
    report = scan_once()
    deal = Deal.objects.get(deal_id=deal_id)
    assert (deal.slash_epoch, deal.removed_epoch) == (slashed_at, slashed_at)
    assert _status(synthetic_payload_cid(deal_id), report.processing_height) == "expired"


@pytest.mark.parametrize("node_reports_reverted", [False, True], ids=["rewind", "reverted"])
def test_a_slash_on_an_orphaned_branch_is_undone(
    scanner_settings, chain, node_reports_reverted
) -> None:  # type: ignore[no-untyped-def]
    chain.range_queries_include_reverted = node_reports_reverted
    deal_id, height = _scanned_active_deal(chain)
    slashed_at = height + 10
    chain.terminate_deal(deal_id, height=slashed_at)
    height = _finalize(chain)
    scan_once()
    assert _status(synthetic_payload_cid(deal_id), height) == "expired"
    chain.reorg(slashed_at - 5)  # the branch holding the termination is replaced
    height = _finalize(chain)
    report = scan_once()
    if node_reports_reverted:
        assert report.reverted_events >= 1
    else:
        assert report.rewound_to is not None
    deal = Deal.objects.get(deal_id=deal_id)
    assert (deal.slash_epoch, deal.removed_epoch) == (-1, None)
    assert deal.checked_epoch == report.processing_height
    assert _status(synthetic_payload_cid(deal_id), height) == "active"


def test_bad_chain_data_is_counted_and_the_pass_goes_on(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    head = chain.head_height
    first = chain.next_deal_id
    broken = make_deal(first, start_epoch=1, end_epoch=10**8)
    broken["Proposal"]["PieceCID"] = {"/": "garbage"}
    chain.add_deal(first, broken)
    _publish(chain, first + 1, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    event = _claim_event("claim", 77, head + 1)
    event["entries"][1]["Value"] = "////"  # undecodable CBOR
    chain.add_event(event)
    chain.add_event(_claim_event("claim", 78, head + 1))
    _finalize(chain)
    report = scan_once()
    assert report.bad_items == 2
    assert any(f"deal {first}" in error for error in report.errors)
    assert Deal.objects.filter(deal_id=first + 1).exists()
    assert Claim.objects.filter(claim_id=78).exists()
    assert get_checkpoint().bad_items == 2


def test_unreachable_endpoint_leaves_the_checkpoint_unchanged(scanner_settings, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    before = snapshot()
    lotus.faults.http_status(503, times=50)
    scanner_settings.LOTUS_RPC_RETRIES = 1
    with pytest.raises(LotusUnavailable, match="127.0.0.1"):
        scan_once()
    assert snapshot() == before
    checkpoint = get_checkpoint()
    assert "unavailable" in checkpoint.last_error and lotus.url in checkpoint.last_error
    assert checkpoint.lease_owner == ""  # released for the next pass


def test_rpc_error_mid_deals_keeps_committed_batches(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scanner_settings.SCANNER_DEAL_BATCH = 5
    scan_once()
    first = chain.next_deal_id
    for deal_id in range(first, first + 12):
        _publish(chain, deal_id, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    _finalize(chain)
    lotus.faults.rpc_error("StateMarketStorageDeal", code=2, message="out of gas", times=1)
    with pytest.raises(LotusError, match="out of gas"):
        scan_once()
    assert get_checkpoint().next_deal_id == first  # the failed batch is not skipped
    scan_once()
    assert Deal.objects.filter(deal_id__gte=first).count() == 12


def test_a_second_pass_changes_nothing(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    first = chain.next_deal_id
    _publish(chain, first, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    _finalize(chain)
    scan_once()
    before = snapshot()
    report = scan_once()
    assert report.deals_stored == 0 and report.claim_events == 0
    after = snapshot()
    # same processing height: nothing new on chain, and no deal waits for a re-read
    assert after == before


def test_reorg_below_the_checkpoint_is_undone(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    head = chain.head_height
    chain.add_event(_claim_event("claim", 501, head + 10))
    chain.add_event(_claim_event("claim", 502, head + 20))
    _finalize(chain)
    scan_once()
    assert set(
        Claim.objects.filter(claim_id__range=(500, 999)).values_list("claim_id", flat=True)
    ) == {
        501,
        502,
    }
    # The branch from head+15 is replaced: claim 502 never happened, 503 did instead.
    chain.reorg(head + 15)
    chain.add_event(_claim_event("claim", 503, head + 16))
    height = _finalize(chain)
    report = scan_once()
    assert report.rewound_to is not None and report.rewound_to < head + 15
    ids = set(Claim.objects.filter(claim_id__range=(500, 999)).values_list("claim_id", flat=True))
    assert ids == {501, 503}
    assert _status(synthetic_piece_cid(502), height) == "unknown"


def test_reverted_events_reported_by_the_node_are_undone(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    chain.range_queries_include_reverted = True
    head = chain.head_height
    chain.add_event(_claim_event("claim", 601, head + 10))
    _finalize(chain)
    scan_once()
    assert Claim.objects.filter(claim_id=601).exists()
    chain.reorg(head + 5)
    _finalize(chain)
    report = scan_once()
    assert report.reverted_events >= 1
    assert not Claim.objects.filter(claim_id=601).exists()


def test_head_gaining_a_block_at_the_same_height(scanner_settings, chain, lotus) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    chain.grow_head()
    report = scan_once()
    assert report.rewound_to is None  # a finalized checkpoint is not affected
    assert Claim.objects.count() == 360


def test_passes_do_not_overlap(scanner_settings) -> None:  # type: ignore[no-untyped-def]
    get_checkpoint()
    ScannerCheckpoint.objects.update(lease_owner="elsewhere:1")
    from django.utils import timezone

    ScannerCheckpoint.objects.update(lease_until=timezone.now() + timezone.timedelta(minutes=1))
    assert scan_once().skipped
    assert not take_scanner()
    ScannerCheckpoint.objects.update(lease_until=timezone.now() - timezone.timedelta(seconds=1))
    assert not scan_once().skipped


def test_scanner_status_counts_events_by_type(scanner_settings, chain) -> None:  # type: ignore[no-untyped-def]
    scan_once()
    first = chain.next_deal_id
    for deal_id in (first, first + 1):
        _publish(chain, deal_id, start_epoch=1, end_epoch=10**8, sector_start_epoch=1)
    height = _finalize(chain)
    chain.terminate_deal(first, height=height + 1)
    _finalize(chain)
    report = scan_once()
    assert "deal-published:2,deal-activated:0,deal-terminated:1," in report.summary()
    body = _api("notary").get("/api/v1/scanner").json()
    assert body["events"] == {
        "claim": 360,
        "claim-updated": 0,
        "claim-removed": 0,
        "deal-published": 2,
        "deal-activated": 0,
        "deal-terminated": 1,
        "deal-completed": 0,
    }
    assert body["counts"]["deal_events"] == 3 and body["counts"]["deals_to_reread"] == 0
    assert body["events_height"] == body["claims_height"] == report.events_height
