"""What the scanner keeps: verified market deals (and the market events that changed them),
verified-registry claims (and the events they were folded from), the blessed-CID cache and
the scanner's checkpoint.

Epochs, deal ids, claim ids and sizes are 64-bit integers on chain: BigIntegerField throughout.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from chain_scanner.active import claim_window, deal_window, status_at


class Deal(models.Model):
    """A FIL+ verified market deal (unverified deals are counted, not stored)."""

    deal_id = models.BigIntegerField(primary_key=True)
    piece_cid = models.CharField(max_length=128)
    piece_size = models.BigIntegerField()
    client = models.CharField(max_length=100)
    provider = models.CharField(max_length=100)
    label = models.TextField(blank=True, default="")
    # Canonical CIDv1 when the label is a CID; NULL (not "") when it is free text, so the
    # blessed-CID rebuild can skip such deals with IS NOT NULL.
    payload_cid = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    start_epoch = models.BigIntegerField()
    end_epoch = models.BigIntegerField()
    sector_start_epoch = models.BigIntegerField(default=-1)
    last_updated_epoch = models.BigIntegerField(default=-1)
    slash_epoch = models.BigIntegerField(default=-1)
    sector_number = models.BigIntegerField(null=True, blank=True)
    verified_claim = models.BigIntegerField(null=True, blank=True)
    # Set when the deal is no longer in market state (cleaned up, slashed or settled).
    removed_epoch = models.BigIntegerField(null=True, blank=True)
    # Height of the tipset whose state this row was last read from. 0: to be re-read once
    # (a row from a dump, whose epoch is unknown, or one a reorg undid events of).
    checked_epoch = models.BigIntegerField(default=0)

    class Meta:
        # Declared here rather than with db_index=True: on PostgreSQL that would add a second,
        # LIKE-only index per CID column, which we never query and which halves import speed.
        indexes = [
            models.Index(fields=["piece_cid"], name="deal_piece_cid"),
            models.Index(fields=["payload_cid"], name="deal_payload_cid"),
            models.Index(fields=["provider"], name="deal_provider"),
            models.Index(fields=["sector_start_epoch", "removed_epoch"], name="deal_tracking"),
            # Only rows waiting for a re-read: empty once the recheck is done.
            models.Index(fields=["deal_id"], condition=Q(checked_epoch=0), name="deal_to_reread"),
        ]

    def __str__(self) -> str:
        return f"deal {self.deal_id}"

    def status_at(self, epoch: int) -> str:
        window = deal_window(
            start_epoch=self.start_epoch,
            end_epoch=self.end_epoch,
            sector_start_epoch=self.sector_start_epoch,
            slash_epoch=self.slash_epoch,
            removed_epoch=self.removed_epoch,
        )
        return status_at(*window, epoch)


class Claim(models.Model):
    """A verified-registry claim, folded from its non-reverted events."""

    claim_id = models.BigIntegerField(primary_key=True)
    provider = models.BigIntegerField()
    client = models.BigIntegerField()
    piece_cid = models.CharField(max_length=128)
    piece_size = models.BigIntegerField()
    term_min = models.BigIntegerField()
    term_max = models.BigIntegerField()
    term_start = models.BigIntegerField()
    sector = models.BigIntegerField()
    removed = models.BooleanField(default=False)
    height = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["piece_cid"], name="claim_piece_cid"),
            models.Index(fields=["provider"], name="claim_provider"),
        ]

    def __str__(self) -> str:
        return f"claim {self.claim_id}"

    @property
    def end_epoch(self) -> int:
        return self.term_start + self.term_max

    def status_at(self, epoch: int) -> str:
        window = claim_window(
            term_start=self.term_start, term_max=self.term_max, removed=self.removed
        )
        return status_at(*window, epoch)


class ClaimEvent(models.Model):
    """One verified-registry claim event as seen on chain, kept so reverts can be undone."""

    class Kind(models.TextChoices):
        CLAIM = "claim"
        UPDATED = "claim-updated"
        REMOVED = "claim-removed"

    claim_id = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    height = models.BigIntegerField(db_index=True)
    msg_cid = models.CharField(max_length=128)
    provider = models.BigIntegerField()
    client = models.BigIntegerField()
    piece_cid = models.CharField(max_length=128)
    piece_size = models.BigIntegerField()
    term_min = models.BigIntegerField()
    term_max = models.BigIntegerField()
    term_start = models.BigIntegerField()
    sector = models.BigIntegerField()
    # A short hash of the tipset key the event came in: after a reorg, the highest height
    # whose key still matches the chain is where our view and the chain agree again.
    tipset_hash = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["height", "msg_cid", "kind", "claim_id"], name="claim_event_identity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.claim_id} @{self.height}"


class DealEvent(models.Model):
    """One market actor event as seen on chain. Deal rows come from state, not from these:
    they are kept to undo a reorg and to tell which deals changed after a dump was taken."""

    class Kind(models.TextChoices):
        PUBLISHED = "deal-published"
        ACTIVATED = "deal-activated"
        TERMINATED = "deal-terminated"
        COMPLETED = "deal-completed"

    deal_id = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    height = models.BigIntegerField(db_index=True)
    msg_cid = models.CharField(max_length=128)
    tipset_hash = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["height", "msg_cid", "kind", "deal_id"], name="deal_event_identity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.deal_id} @{self.height}"


class BlessedCid(models.Model):
    """Per canonical CID, what the chain says about FIL+ verified data with that CID.

    A pure function of Deal and Claim rows, so it is independent of the current epoch; its
    status at an epoch is chain_scanner.active's rule.
    """

    cid = models.CharField(max_length=128, primary_key=True)
    # Latest end epoch among activated, unslashed deals and unremoved claims with this CID.
    active_until = models.BigIntegerField(null=True, blank=True)
    # Latest start epoch among published deals not activated yet (they never will after it).
    pending_until = models.BigIntegerField(null=True, blank=True)
    deal_count = models.IntegerField(default=0)
    claim_count = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.cid

    def status_at(self, epoch: int) -> str:
        return status_at(self.active_until, self.pending_until, epoch)


class LeasedPasses(models.Model):
    """A checkpoint row that passes are run under (chain_scanner/leases.py): which process is
    running one, until when it is presumed alive, and how the last went."""

    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    last_pass_started_at = models.DateTimeField(null=True, blank=True)
    last_pass_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ScannerCheckpoint(LeasedPasses):
    """Where the scanner is. One row (name="default"), updated in the same transaction as
    the data each step writes, so a killed pass resumes exactly where it committed."""

    name = models.CharField(max_length=32, unique=True, default="default")
    next_deal_id = models.BigIntegerField(null=True, blank=True)
    # Verified-registry and market events are read up to here (the processing tipset's
    # parent height: the state at that tipset is the result of exactly these events).
    events_height = models.BigIntegerField(null=True, blank=True)
    events_tipset_key = models.TextField(blank=True, default="")
    processing_height = models.BigIntegerField(null=True, blank=True)
    head_height = models.BigIntegerField(null=True, blank=True)
    dump_last_deal_id = models.BigIntegerField(null=True, blank=True)
    # Cumulative counters.
    deals_fetched = models.BigIntegerField(default=0)
    unverified_skipped = models.BigIntegerField(default=0)
    deals_missing = models.BigIntegerField(default=0)
    claim_events = models.BigIntegerField(default=0)
    event_counts = models.JSONField(default=dict, blank=True)  # {"$type": events read}
    bad_items = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"checkpoint {self.name}"


class DumpImport(models.Model):
    """Progress of one StateMarketDeals dump import, so a killed import skips committed work."""

    path = models.TextField()
    size = models.BigIntegerField()
    mtime_ns = models.BigIntegerField()
    entries_done = models.BigIntegerField(default=0)
    verified = models.BigIntegerField(default=0)
    unverified = models.BigIntegerField(default=0)
    bad = models.BigIntegerField(default=0)
    max_deal_id = models.BigIntegerField(null=True, blank=True)
    # True while the deal table's secondary indexes are dropped for a bulk load.
    bulk_indexes_dropped = models.BooleanField(default=False)
    finished = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["path", "size", "mtime_ns"], name="dump_identity")
        ]

    def __str__(self) -> str:
        return f"dump {self.path}"


class ProviderAddress(models.Model):
    """What `StateMinerInfo` last said of a storage provider's addresses, kept so that a
    locations answer does not ask Lotus each time (chain_scanner/providers.py): the PeerId
    and the Multiaddrs as Lotus sent them (base64 binary multiaddrs, bounded by the client).
    `fetched_at` is the last answer, `checked_at` the last try; `error` why the last try
    failed ("" when it did not; the addresses of the last answer are kept)."""

    provider = models.CharField(max_length=32, primary_key=True)  # f0…
    peer_id = models.CharField(max_length=128, blank=True, default="")
    multiaddrs = models.JSONField(default=list, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField()
    error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"addresses of {self.provider}"
