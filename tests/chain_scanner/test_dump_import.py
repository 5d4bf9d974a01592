"""Bootstrapping from a StateMarketDeals dump."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chain_scanner.dump_import import DumpError, import_dump
from chain_scanner.leases import get_checkpoint
from chain_scanner.models import BlessedCid, Deal, DumpImport
from chain_scanner.services import scan_once
from tests.chain_data import load_real_deals, make_deal, synthetic_payload_cid
from tests.chain_scanner.dumps import write_dump
from tests.chain_scanner.tables import snapshot
from tests.fake_lotus import FakeChain, FakeLotusServer

# The writer thread has its own connection on PostgreSQL: data must really be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _deals(count: int, *, first: int = 1000) -> list[tuple[int, dict]]:
    rng = random.Random(count)
    deals = []
    for deal_id in range(first, first + count):
        value = make_deal(
            deal_id,
            start_epoch=100,
            end_epoch=10**8,
            sector_start_epoch=rng.choice([-1, 90]),
            verified=rng.random() >= 0.3,
            shape=rng.choice(["legacy", "nv17", "nv22", "forest"]),
        )
        deals.append((deal_id, value))
    return deals


@pytest.mark.parametrize(
    ("name", "envelope"),
    [("dump.json", False), ("dump.json", True), ("dump.json.zst", False), ("dump.json.zst", True)],
)
def test_every_dump_format(tmp_path: Path, name: str, envelope: bool) -> None:
    deals = _deals(300)
    random.Random(7).shuffle(deals)  # filexp writes entries in arbitrary order
    real = load_real_deals()
    deals += list(real.items())
    path = write_dump(tmp_path / name, deals, envelope=envelope)
    report = import_dump(path, batch_size=64)
    verified = [d for d, v in deals if v["Proposal"]["VerifiedDeal"]]
    assert report.entries == len(deals)
    assert report.verified == len(verified) == Deal.objects.count()
    assert report.unverified == len(deals) - len(verified)
    assert report.max_deal_id == max(d for d, _ in deals)
    assert Deal.objects.get(deal_id=5083158).payload_cid == (
        "bafybeiehumusc3x3hmz3urvbjqo37ccbg3ljfzoewriactfjeyqluvywvm"
    )
    active = Deal.objects.filter(sector_start_epoch__gt=0).first()
    assert active is not None
    assert BlessedCid.objects.get(cid=active.payload_cid).status_at(1000) == "active"
    assert get_checkpoint().dump_last_deal_id == report.max_deal_id
    assert DumpImport.objects.get().finished


def test_bad_entries_are_counted_and_skipped(tmp_path: Path) -> None:
    deals: list[tuple[int | str, object]] = list(_deals(10))
    broken = make_deal(5, start_epoch=1, end_epoch=2)
    broken["Proposal"]["PieceSize"] = "big"
    deals += [("not-an-id", deals[0][1]), (5, broken), (6, "nonsense")]
    report = import_dump(write_dump(tmp_path / "d.json", deals), batch_size=4)
    assert report.bad == 3
    assert report.verified == Deal.objects.count()


def test_malformed_files_give_clear_errors(tmp_path: Path) -> None:
    error = tmp_path / "error.json"
    error.write_text('{"error":{"code":1,"message":"too big"},"id":1,"jsonrpc":"2.0"}')
    with pytest.raises(DumpError, match="JSON-RPC error"):
        import_dump(error)
    with pytest.raises(DumpError, match="cannot read"):
        import_dump(tmp_path / "missing.json")
    text = tmp_path / "list.json"
    text.write_text("[1, 2, 3]")
    with pytest.raises(DumpError, match="does not start with a JSON object"):
        import_dump(text)
    truncated = write_dump(tmp_path / "t.json", _deals(50))
    truncated.write_bytes(truncated.read_bytes()[:-700])
    with pytest.raises(DumpError, match="malformed JSON"):
        import_dump(truncated, batch_size=10)
    # what was read before the damage is kept
    assert Deal.objects.count() > 0


def test_an_interrupted_import_resumes_and_ends_identical(tmp_path: Path) -> None:
    path = write_dump(tmp_path / "d.json", _deals(500))
    import_dump(path, batch_size=50)
    reference = snapshot()
    Deal.objects.all().delete()
    BlessedCid.objects.all().delete()
    DumpImport.objects.all().delete()

    class Interrupt(Exception):
        pass

    calls = 0

    def stop_after_three_batches(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        import_dump(path, batch_size=50, progress=stop_after_three_batches)
    assert DumpImport.objects.get().entries_done == 150
    report = import_dump(path, batch_size=50)
    assert report.skipped_done == 150
    assert snapshot() == reference


def test_scanning_continues_after_the_dump(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    # The dump holds deals up to 1009; the chain has published up to 1019 since.
    dumped = _deals(10)
    import_dump(write_dump(tmp_path / "d.json", dumped))
    chain = FakeChain(head_height=20_000)
    for deal_id, value in [*dumped, *_deals(10, first=1010)]:
        chain.add_deal(deal_id, value, height=1000)
    with FakeLotusServer(chain) as lotus:
        settings.LOTUS_RPC_URL = lotus.url
        settings.SCANNER_START_EPOCH = 19_000
        report = scan_once()
        assert lotus.requests["StateMarketStorageDeal"] >= 10
    new_verified = [d for d, v in _deals(10, first=1010) if v["Proposal"]["VerifiedDeal"]]
    assert report.deals_stored == len(new_verified)
    assert get_checkpoint().next_deal_id == 1020
    assert Deal.objects.filter(payload_cid=synthetic_payload_cid(new_verified[0])).exists()


def test_bulk_load_leaves_every_deal_index_in_place(tmp_path: Path) -> None:
    from django.db import connection

    import_dump(write_dump(tmp_path / "d.json", _deals(100)), batch_size=30)
    with connection.cursor() as cursor:
        present = connection.introspection.get_constraints(cursor, Deal._meta.db_table)
    assert {i.name for i in Deal._meta.indexes} <= set(present)
    assert not DumpImport.objects.filter(bulk_indexes_dropped=True).exists()


def test_import_waits_for_a_running_pass(tmp_path: Path) -> None:
    from django.utils import timezone

    from chain_scanner.models import ScannerCheckpoint

    get_checkpoint()
    ScannerCheckpoint.objects.update(
        lease_owner="other-host:1", lease_until=timezone.now() + timezone.timedelta(minutes=1)
    )
    with pytest.raises(DumpError, match="scan pass or another import is running"):
        import_dump(write_dump(tmp_path / "d.json", _deals(3)))
    assert Deal.objects.count() == 0


def test_a_deal_repeated_across_batches_keeps_its_last_entry(tmp_path: Path) -> None:
    deals = _deals(40)
    first_id, first_value = deals[0]
    later = make_deal(first_id, start_epoch=100, end_epoch=777, sector_start_epoch=90)
    report = import_dump(write_dump(tmp_path / "d.json", [*deals, (first_id, later)]), batch_size=8)
    assert report.entries == 41
    assert Deal.objects.get(deal_id=first_id).end_epoch == 777
    assert Deal.objects.count() == len(
        {d for d, v in deals if v["Proposal"]["VerifiedDeal"]} | {first_id}
    )
