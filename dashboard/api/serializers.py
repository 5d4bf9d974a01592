"""Input and output shapes of the API (docs/api.md), for validation and the OpenAPI schema."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from dashboard.api.inputs import CidField


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # A field named "fields" cannot be declared: it would hide Serializer.fields.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(required=False)
        return fields


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The schema's error answers: every one has the one error shape."""
    return {code: OpenApiResponse(ErrorSerializer) for code in statuses}


class SourceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["claim", "deal"])
    id = serializers.IntegerField()
    provider = serializers.CharField()
    client = serializers.CharField()
    piece_cid = serializers.CharField()
    payload_cid = serializers.CharField(allow_null=True)
    start_epoch = serializers.IntegerField()
    end_epoch = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["active", "expired", "pending"])


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


class EligibilityRequestSerializer(serializers.Serializer):
    cids = serializers.ListField(
        child=CidField(),
        min_length=1,
        max_length=1000,
        help_text="1 to 1000 CIDs in any valid form",
    )


class EligibilityResultSerializer(serializers.Serializer):
    cid = serializers.CharField(help_text="as sent")
    canonical = serializers.CharField()
    blessed = serializers.BooleanField()
    status = serializers.ChoiceField(choices=STATUSES)


class EligibilitySerializer(serializers.Serializer):
    eligible = serializers.BooleanField(help_text="true when every CID is blessed")
    as_of_epoch = serializers.IntegerField()
    scanner = FreshnessSerializer()
    results = EligibilityResultSerializer(many=True)


class ScannerCountsSerializer(serializers.Serializer):
    deals = serializers.IntegerField()
    claims = serializers.IntegerField()
    blessed_cids = serializers.IntegerField()
    deals_fetched = serializers.IntegerField()
    unverified_skipped = serializers.IntegerField()
    deals_missing = serializers.IntegerField()
    claim_events = serializers.IntegerField()
    bad_items = serializers.IntegerField()


class ScannerSerializer(serializers.Serializer):
    processing_height = serializers.IntegerField(allow_null=True)
    head_height = serializers.IntegerField(allow_null=True)
    lag_epochs = serializers.IntegerField(allow_null=True)
    claims_height = serializers.IntegerField(allow_null=True)
    next_deal_id = serializers.IntegerField(allow_null=True)
    dump_last_deal_id = serializers.IntegerField(allow_null=True)
    last_pass_started_at = serializers.DateTimeField(allow_null=True)
    last_pass_finished_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    counts = ScannerCountsSerializer()


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "stale", "error"])
    reasons = serializers.ListField(child=serializers.CharField(), help_text="why not ok")
    database = serializers.CharField()
    scanner_lag_epochs = serializers.IntegerField(allow_null=True)
    last_pass_finished_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
