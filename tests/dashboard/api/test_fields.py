"""The API's input serializers read JSON as the client wrote it, and fail in the contract's
shape: a DomainError with the operation's code, naming each bad field by its dotted path."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from dashboard.api.fields import Body, CidField, Integer, PieceSizeField, ProviderField, Text
from dashboard.errors import DomainError

CID_V0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
CID_V1 = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


class Mount(Body):
    cid = CidField()
    path = Text()


class Example(Body):
    error_code = "invalid_example"
    name = Text()
    count = Integer(required=False)
    size = PieceSizeField(required=False)
    provider = ProviderField(required=False)
    mounts = Mount(many=True, required=False)


def refusal(data: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        Example(data=data).is_valid(raise_exception=True)
    return caught.value


def test_a_valid_body_is_read_as_sent() -> None:
    body = Example(data={"name": " a ", "count": 3, "mounts": [{"cid": CID_V0, "path": "/x"}]})
    assert body.is_valid(raise_exception=True)
    assert body.validated_data["name"] == " a "  # not trimmed
    assert body.validated_data["mounts"][0]["cid"] == CID_V1  # the one normaliser's form


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "a", "count": "3"}, "count"),  # DRF would take the string
        ({"name": "a", "count": True}, "count"),
        ({"name": "a", "count": 3.0}, "count"),
        ({"name": 5}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "\ud800"}, "name"),
        ({}, "name"),
        ({"name": "a", "size": 1000}, "size"),
        ({"name": "a", "provider": "t01234"}, "provider"),
        (
            {"name": "a", "mounts": [{"cid": CID_V0, "path": "/x"}, {"cid": CID_V0}]},
            "mounts.1.path",
        ),
        ({"name": "a", "extra": 1}, "extra"),
        ({"name": "a", "mounts": [{"cid": CID_V0, "path": "/x", "mode": "rw"}]}, "mode"),
    ],
)
def test_a_bad_field_is_named_with_the_operations_code(data: dict[str, Any], field: str) -> None:
    error = refusal(data)
    assert error.code == "invalid_example" and error.status == 400
    assert error.fields is not None and field in error.fields, error.fields


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert refusal(["name"]).code == "invalid_example"


def test_a_cid_that_cannot_be_read_is_invalid_cid_naming_it() -> None:
    error = refusal({"name": "a", "mounts": [{"cid": "not-a-cid", "path": "/x"}]})
    assert (error.code, error.fields) == ("invalid_cid", {"cid": "not-a-cid"})


def test_query_strings_may_carry_other_parameters() -> None:
    class Query(Body):
        ignores_unknown = True
        provider = ProviderField(default=None)

    class Strict(Body):
        provider = ProviderField(default=None)

    query = Query(data={"utm_source": "x"})
    assert query.is_valid(raise_exception=True) and query.validated_data == {"provider": None}
    with pytest.raises(DomainError):
        Strict(data={"utm_source": "x"}).is_valid(raise_exception=True)


def test_without_raise_exception_errors_stay_drf_errors() -> None:
    body = Example(data={"name": 5})
    assert not body.is_valid()
    assert isinstance(body.errors["name"][0], serializers.ErrorDetail)
