"""Input and output shapes of the API (docs/api.md), for validation and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from dashboard.models import Reexecution


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


class Prebuilt(serializers.ListSerializer):
    """A list of rows a selector built with exactly the child serializer's fields, passed
    through as they are: field by field, a 1000-CID batch took twice the CPU
    (benchmarks/README.md, bench_api run 4). A test per use holds the rows' keys to the
    child's fields."""

    def to_representation(self, data: Any) -> list[Any]:
        return list(data)


_bound: dict[type[serializers.BaseSerializer], serializers.BaseSerializer] = {}


def rendered(serializer_class: type[serializers.BaseSerializer], data: Any) -> Any:
    """What `serializer_class(data).data` answers, from one instance per process whose fields
    are bound once: a new serializer deep-copies its declared fields, which cost 330 us of a
    single-CID GET against 13 us (benchmarks/README.md). For output serializers that use no
    context."""
    serializer = _bound.get(serializer_class)
    if serializer is None:
        serializer = _bound[serializer_class] = serializer_class()
    return serializer.to_representation(data)


class DiffEntrySerializer(serializers.Serializer):
    path = serializers.CharField(help_text='"stdout", "outputs/a.txt"…; "." for the roots')
    reported = serializers.CharField(allow_null=True, help_text="null: absent in the reported")
    rerun = serializers.CharField(allow_null=True, help_text="null: absent in the re-run")


# A job's re-execution (dashboard/jobs/reexecution.py): the latest run's state and outcome.
class ReexecutionSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["not_verified_by_rerun", *Reexecution.State.values])
    deterministic = serializers.BooleanField(
        help_text="false for Docker: a mismatch is information, not evidence"
    )
    runs = serializers.IntegerField(help_text="re-executions of this job so far")
    reason = serializers.ChoiceField(
        choices=["policy", "sampled", "node_mismatched", "requested"], allow_null=True
    )
    requested_by = serializers.CharField(allow_null=True)
    reported_cid = serializers.CharField(allow_null=True, help_text="the result CID reported")
    rerun_cid = serializers.CharField(allow_null=True, help_text="the result CID re-computed")
    exit_code = serializers.IntegerField(allow_null=True)
    runtime_ms = serializers.IntegerField(allow_null=True)
    ran_by = serializers.CharField(allow_null=True, help_text="the worker that re-ran it")
    attempts = serializers.IntegerField(help_text="workers that took this run (one was lost)")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    diff = DiffEntrySerializer(many=True, allow_null=True, help_text="a mismatch's differences")
    error = serializers.CharField(allow_null=True, help_text="why a failed run gave no result")
