"""The novelty shape: the one definition the job API and the notary's answer share."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.models import Novelty
from dashboard.novelty.selectors import NOT_MEASURED

__all__ = ["NoveltySerializer", "NoveltySourceSerializer"]


class NoveltySourceSerializer(serializers.Serializer):
    cid = serializers.CharField(help_text="the content the bytes were found in")
    kind = serializers.ChoiceField(
        choices=["input", "blessed", "result"],
        help_text="the job's own input; content an earlier job read or whose CID is blessed; "
        "an earlier result of another job",
    )
    job_id = serializers.CharField(allow_null=True, help_text="the job whose result it is")
    bytes = serializers.IntegerField(help_text="bytes of this result found there")


class NoveltySerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[*Novelty.State.values, NOT_MEASURED],
        help_text="queued or running: still being measured; not_in_store: measured once the "
        "result is in this dashboard's store; not_measured: recorded before measuring began",
    )
    novel_bytes = serializers.IntegerField(
        allow_null=True, help_text="bytes of the result found in no source"
    )
    total_bytes = serializers.IntegerField(
        allow_null=True, help_text="bytes of the result's distinct files"
    )
    percent = serializers.FloatField(allow_null=True, help_text="novel_bytes / total_bytes")
    sources = NoveltySourceSerializer(many=True, help_text="where copied bytes were found")
    method = serializers.CharField(help_text="how it was measured")
    measured_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(help_text="why measuring failed, when it did")
