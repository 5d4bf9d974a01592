"""Output plumbing shared by every API view: the one error shape, and rendering with fields
bound once."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


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
