"""Migration 0022 keeps every award: each one made before it (one job's own piece) becomes
that job's whole share, and going back restores it, refusing while an award spans jobs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("dashboard", "0021_piece_in_aggregate")]
AFTER = [("dashboard", "0022_award_shares_and_chain_state")]


@pytest.mark.django_db(transaction=True)
def test_existing_awards_become_their_jobs_shares_and_come_back() -> None:
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        job = old.get_model("dashboard", "Job").objects.create(
            id="awarded", engine="wasm", spec={}, spec_digest="0" * 64,
            moderation_state="verified", datacap_bytes=4096,
        )  # fmt: skip
        piece = old.get_model("dashboard", "JobPiece").objects.create(
            job=job, piece_cid="baga-one", piece_size=2048, payload_cid="bafy-result"
        )
        old.get_model("dashboard", "Award").objects.create(
            job=job, piece_cid="baga-one", provider="f01234", piece_size=2048
        )
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        award = new.get_model("dashboard", "Award").objects.get()
        share = new.get_model("dashboard", "AwardShare").objects.get()
        assert (share.award_id, share.job_id, share.piece_id, share.bytes) == (
            award.id, "awarded", piece.id, 2048,
        )  # fmt: skip
        assert award.chain_state == "awaiting" and award.epoch > 0 and not award.aggregate
        # an award spanning two jobs cannot go back: refused, nothing changed
        other = new.get_model("dashboard", "Job").objects.create(
            id="other", engine="wasm", spec={}, spec_digest="1" * 64
        )
        other_piece = new.get_model("dashboard", "JobPiece").objects.create(
            job=other, piece_cid="baga-two", piece_size=2048, payload_cid="bafy-other"
        )
        spanning = new.get_model("dashboard", "Award").objects.create(
            piece_cid="baga-agg", provider="f01234", piece_size=8192, aggregate=True
        )
        shares = new.get_model("dashboard", "AwardShare").objects
        shares.create(award=spanning, job_id="awarded", piece_id=piece.id, bytes=1000)
        shares.create(award=spanning, job=other, piece=other_piece, bytes=1000)
        executor = MigrationExecutor(connection)
        with pytest.raises(RuntimeError, match="spends the DataCap of 2 jobs"):
            executor.migrate(BEFORE)
        assert shares.count() == 3
        spanning.delete()
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        back = executor.loader.project_state(BEFORE).apps
        restored = back.get_model("dashboard", "Award").objects.get()
        assert (restored.job_id, restored.piece_cid, restored.piece_size) == (
            "awarded", "baga-one", 2048,
        )  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
