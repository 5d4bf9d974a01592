"""Shapes of the eligibility API (docs/api.md): a CID's status, a batch's eligibility, where a
CID may be fetched from and where the scanner is. Lists of rows the selectors build pass
through as built (`Prebuilt`): `tests/dashboard/eligibility/test_api.py` and
`test_locations.py` hold each row's keys to its serializer's fields."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.api.fields import CID_SCHEMA, Body
from dashboard.api.serializers import Prebuilt
from dashboard.eligibility.selectors import MAX_BATCH, cid_batch
from dashboard.errors import DomainError


class SourceSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = Prebuilt

    kind = serializers.ChoiceField(choices=["claim", "deal"])
    id = serializers.IntegerField()
    provider = serializers.CharField()
    client = serializers.CharField()
    piece_cid = serializers.CharField()
    payload_cid = serializers.CharField(allow_null=True)
    start_epoch = serializers.IntegerField()
    end_epoch = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["active", "expired", "pending"])
    slash_epoch = serializers.IntegerField(
        allow_null=True,
        help_text="a deal's: the epoch it was slashed (terminated early) at; null otherwise",
    )


STATUSES = ["active", "expired", "pending", "unknown"]


class FreshnessSerializer(serializers.Serializer):
    complete = serializers.BooleanField(
        help_text="a scanner pass has finished recently and lags at most SCANNER_STALE_EPOCHS "
        "behind the head; when false, not blessed means not known to be blessed"
    )
    lag_epochs = serializers.IntegerField(
        allow_null=True, help_text="behind the head at the last pass, plus epochs since"
    )
    last_pass_at = serializers.DateTimeField(allow_null=True)


class CidStatusSerializer(serializers.Serializer):
    cid = serializers.CharField(help_text="canonical CIDv1, base32")
    blessed = serializers.BooleanField()
    status = serializers.ChoiceField(choices=STATUSES)
    sources = SourceSerializer(many=True)
    as_of_epoch = serializers.IntegerField()
    scanner = FreshnessSerializer()


@extend_schema_field(
    {
        "type": "array",
        "items": {**CID_SCHEMA, "minLength": 1},
        "description": f"1 to {MAX_BATCH} CIDs in any valid form",
        "maxItems": MAX_BATCH,
        "minItems": 1,
    }
)
class CidBatchField(serializers.Field):
    """1 to MAX_BATCH CIDs in any form, read in one pass by the selectors' cid_batch (a DRF
    child field per CID would cost more than the look-up)."""

    def to_internal_value(self, data: Any) -> list[tuple[str, str]]:
        return cid_batch(data)


class EligibilityRequestSerializer(Body):
    ignores_unknown = True  # compute nodes may send more than they need to

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise DomainError(
                "invalid_request",
                "the body must be an object with a 'cids' list",
                fields={"cids": "required"},
            )
        return super().to_internal_value(data)

    cids = CidBatchField()


class EligibilityResultSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = Prebuilt

    cid = serializers.CharField(help_text="as sent")
    canonical = serializers.CharField()
    blessed = serializers.BooleanField()
    status = serializers.ChoiceField(choices=STATUSES)


class EligibilitySerializer(serializers.Serializer):
    eligible = serializers.BooleanField(help_text="true when every CID is blessed")
    as_of_epoch = serializers.IntegerField()
    scanner = FreshnessSerializer()
    results = EligibilityResultSerializer(many=True)


# executor.locations.Location, field for field (the test holds the two to the same keys).
class LocationSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = Prebuilt

    url = serializers.CharField(
        help_text="the provider's HTTP(S) base URL: {url}/piece/{piece_cid}, {url}/ipfs/{cid}"
    )
    provider = serializers.CharField(allow_null=True, help_text="f0…, the storage provider")
    piece_cid = serializers.CharField(allow_null=True, help_text="the piece that holds the CID")
    piece_size = serializers.IntegerField(allow_null=True, help_text="its padded size")
    payload_cid = serializers.CharField(
        allow_null=True, help_text="the deal label's root CID, when the label is a CID"
    )
    source = serializers.CharField(help_text='why it is there: "claim <id>" or "deal <id>"')  # type: ignore[assignment]


class LocationsSerializer(serializers.Serializer):
    cid = serializers.CharField(help_text="canonical CIDv1, base32")
    kind = serializers.ChoiceField(
        choices=["piece", "payload"], help_text="piece: a piece CID (baga6ea4seaq…)"
    )
    piece_size = serializers.IntegerField(
        allow_null=True, help_text="a piece's padded size as the chain states it; null otherwise"
    )
    blessed = serializers.BooleanField()
    locations = LocationSerializer(
        many=True,
        help_text="providers holding it under an active FIL+ claim or deal, at the HTTP "
        "addresses they publish on chain; hints: verify what they serve",
    )


class ScannerCountsSerializer(serializers.Serializer):
    deals = serializers.IntegerField()
    claims = serializers.IntegerField()
    blessed_cids = serializers.IntegerField()
    deals_fetched = serializers.IntegerField()
    unverified_skipped = serializers.IntegerField()
    deals_missing = serializers.IntegerField()
    claim_events = serializers.IntegerField()
    deal_events = serializers.IntegerField()
    deals_to_reread = serializers.IntegerField(
        help_text="deals waiting for their one re-read from state (rows from a dump)"
    )
    bad_items = serializers.IntegerField()


class ScannerSerializer(serializers.Serializer):
    processing_height = serializers.IntegerField(allow_null=True)
    head_height = serializers.IntegerField(allow_null=True)
    lag_epochs = serializers.IntegerField(allow_null=True)
    events_height = serializers.IntegerField(
        allow_null=True,
        help_text="claim and deal events are read up to this height (the processing "
        "tipset's parent)",
    )
    claims_height = serializers.IntegerField(
        allow_null=True, help_text="the same as events_height (its former name)"
    )
    next_deal_id = serializers.IntegerField(allow_null=True)
    dump_last_deal_id = serializers.IntegerField(allow_null=True)
    last_pass_started_at = serializers.DateTimeField(allow_null=True)
    last_pass_finished_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    counts = ScannerCountsSerializer()
    events = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="actor events read, by $type: the verified registry's claim, claim-updated, "
        "claim-removed and the market's deal-published, deal-activated, deal-terminated, "
        "deal-completed",
    )
