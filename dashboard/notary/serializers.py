"""Shapes of the notary API and piece registration (docs/api.md)."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.api.fields import (
    Body,
    CidField,
    Integer,
    PieceCidField,
    PieceSizeField,
    ProviderField,
    Text,
)
from dashboard.novelty.serializers import NoveltySerializer
from dashboard.reexecution.serializers import ReexecutionSerializer


class AggregateInSerializer(Body):
    piece_cid = PieceCidField(help_text="the aggregate's piece CID")
    piece_size = PieceSizeField(help_text="the aggregate's padded size")
    proof = serializers.JSONField(
        help_text="the FRC-0058 inclusion proof of the piece in the aggregate, as `executor "
        'aggregate` writes it: {"tree": {"offset", "path"}, "index": {"offset", "path"}}, '
        "nodes as hex (docs/aggregates.md)"
    )


class PieceInSerializer(Body):
    piece_cid = PieceCidField()
    piece_size = PieceSizeField()
    payload_cid = CidField(help_text="the job's result CID: the root of the CAR")
    aggregate = AggregateInSerializer(
        required=False, help_text="the FRC-0058 aggregate the piece is stored inside"
    )


class AggregateRefSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()


class PieceSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    payload_cid = serializers.CharField()
    aggregate = AggregateRefSerializer(
        allow_null=True, help_text="the aggregate this registration proved the piece inside"
    )


class PieceRefSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()


class ChainRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["active", "pending", "expired"])


class ChainStorageSerializer(serializers.Serializer):
    deals = ChainRowSerializer(many=True)
    claims = ChainRowSerializer(many=True)
    on_chain_bytes = serializers.IntegerField()
    awarded_bytes = serializers.IntegerField()
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=["other_provider", "more_on_chain_than_awarded"])
    )


class NotVerifiedReasonSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "not_moderated",
            "rejected",
            "revoked",
            "awaiting_second_approval",
            "rerun_mismatch",
            "no_holder",
            "other_provider",
        ]
    )
    message = serializers.CharField()


CHAIN_STATES = ["awaiting", "landed", "mismatched_provider", "not_landed", "removed"]


class JobAwardSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    provider = serializers.CharField()
    aggregate = serializers.BooleanField()
    bytes = serializers.IntegerField(help_text="this job's DataCap the award spent")
    chain_state = serializers.ChoiceField(choices=CHAIN_STATES)


class VerificationSerializer(serializers.Serializer):
    cid = serializers.CharField()
    verified = serializers.BooleanField(
        help_text="verified by a moderator, and held by the asked provider when one is given"
    )
    reason = NotVerifiedReasonSerializer(
        allow_null=True, help_text="why `verified` is false; null when it is true"
    )
    job_id = serializers.CharField()
    provider = serializers.CharField(allow_null=True, help_text="who holds the results")
    provider_matches = serializers.BooleanField(allow_null=True)
    moderation_state = serializers.ChoiceField(
        choices=["pending", "verified", "rejected", "revoked"]
    )
    datacap_bytes = serializers.IntegerField(allow_null=True)
    awarded_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    verified_at = serializers.DateTimeField(allow_null=True)
    pieces = PieceRefSerializer(many=True)
    on_chain = ChainStorageSerializer()
    awards = JobAwardSerializer(many=True, help_text="the awards that spent this job's DataCap")
    reexecution = ReexecutionSerializer(
        help_text="whether re-running the job gave the result CID its node reported"
    )
    novelty = NoveltySerializer(
        allow_null=True, help_text="how much of the result is new data rather than a copy"
    )


class AwardInSerializer(Body):
    cid = CidField(
        default=None,
        help_text="the job's result CID or a registered piece CID (default: piece_cid); for an "
        "aggregate, absent or the aggregate's piece CID",
    )
    provider = ProviderField()
    piece_cid = PieceCidField(
        help_text="the deal's piece: a job's registered result piece, or an aggregate that "
        "registered pieces were proven inside"
    )
    piece_size = PieceSizeField()
    datacap_bytes = Integer(
        default=None,
        min_value=1,
        help_text="for an aggregate: the DataCap the award spends (default: all that may go, "
        "the awardable_bytes of GET /notary/aggregates/{cid}); for a job's own piece, "
        "piece_size",
    )


class VerificationQuerySerializer(Body):
    ignores_unknown = True  # a query string: the path's CID and `provider`
    cid = CidField()
    provider = ProviderField(default=None)


class AwardShareSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField(help_text="the job's result piece")
    bytes = serializers.IntegerField(help_text="the job's DataCap this award spent")
    awarded_bytes = serializers.IntegerField(help_text="all awards of the job, this one included")
    remaining_bytes = serializers.IntegerField()


class AwardChainSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=CHAIN_STATES,
        help_text="awaiting: nothing on chain yet; landed: claimed (or a verified deal "
        "activated) by the awarded provider; mismatched_provider: claimed by another provider "
        "only; not_landed: nothing by landing_deadline_epoch; removed: the claim removed, or "
        "the deal slashed, before its term",
    )
    claim_id = serializers.IntegerField(allow_null=True)
    deal_id = serializers.IntegerField(allow_null=True)
    provider = serializers.CharField(allow_null=True, help_text="who claimed the piece")
    awarded_at_epoch = serializers.IntegerField(help_text="the scanner's epoch at the award")
    landing_deadline_epoch = serializers.IntegerField(
        help_text="awarded_at_epoch + AWARD_LANDING_EPOCHS (60 days by default)"
    )
    checked_epoch = serializers.IntegerField(
        allow_null=True, help_text="the epoch the state was last worked out at"
    )


class AwardSerializer(serializers.Serializer):
    piece_cid = serializers.CharField()
    piece_size = serializers.IntegerField()
    provider = serializers.CharField()
    aggregate = serializers.BooleanField(help_text="the piece is an FRC-0058 aggregate")
    datacap_bytes = serializers.IntegerField(help_text="the DataCap this award spent")
    job_id = serializers.CharField(allow_null=True, help_text="for a job's own piece")
    awarded_bytes = serializers.IntegerField(allow_null=True, help_text="for a job's own piece")
    remaining_bytes = serializers.IntegerField(allow_null=True, help_text="for a job's own piece")
    shares = AwardShareSerializer(many=True, help_text="the jobs whose DataCap it spent")
    notary = serializers.CharField(allow_null=True, help_text="the notary key's name")
    created_at = serializers.DateTimeField()
    chain = AwardChainSerializer()


class AwardPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = AwardSerializer(many=True)


class AwardListQuerySerializer(Body):
    ignores_unknown = True
    state = serializers.ChoiceField(choices=CHAIN_STATES, default="", allow_blank=True)
    provider = ProviderField(default="", allow_blank=True, help_text="awarded or claiming")
    notary = Text(default="", allow_blank=True, max_length=100, help_text="the key's name")
    limit = serializers.IntegerField(default=50, min_value=1, max_value=200)
    before = serializers.IntegerField(
        default=None, min_value=1, help_text="opaque: from the previous page's next link"
    )


class AggregateJobSerializer(serializers.Serializer):
    job_id = serializers.CharField()
    piece_cid = serializers.CharField(help_text="the job's result piece, inside the aggregate")
    piece_size = serializers.IntegerField()
    verified = serializers.BooleanField(help_text="as the notary's question answers it")
    reason = NotVerifiedReasonSerializer(allow_null=True)
    moderation_state = serializers.ChoiceField(
        choices=["pending", "verified", "rejected", "revoked", "awaiting_second_approval"]
    )
    datacap_bytes = serializers.IntegerField(allow_null=True)
    awarded_bytes = serializers.IntegerField()
    remaining_bytes = serializers.IntegerField()
    reexecution = ReexecutionSerializer()
    novelty = NoveltySerializer(allow_null=True)


class AggregateVerificationSerializer(serializers.Serializer):
    piece_cid = serializers.CharField(help_text="the aggregate's piece CID")
    piece_size = serializers.IntegerField(help_text="the aggregate's padded size")
    jobs = AggregateJobSerializer(many=True, help_text="the sub-pieces proven inside it")
    truncated = serializers.BooleanField(help_text="more than 1,000 sub-pieces: the first listed")
    awardable_bytes = serializers.IntegerField(
        help_text="the verified sub-pieces' remaining DataCap, at most the aggregate's size"
    )
