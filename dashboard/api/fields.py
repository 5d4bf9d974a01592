"""The base of every API input serializer, and fields that take JSON as the client wrote it.

DRF's own fields coerce ("12" becomes 12, " a " becomes "a", 12.0 passes for an int); a
request here is read as sent. A body that fails validation is a DomainError with the
operation's code from the contract (`invalid_request`, `invalid_decision`, …) and `fields`
naming every bad field by its dotted path (`inputs.0.path`). A CID that cannot be read is
`invalid_cid` naming the field and the value, as everywhere else in the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dashboard.addresses import PIECE_PREFIX, PROVIDER_ADDRESS
from dashboard.errors import DomainError
from executor.cids import InvalidCID, normalize_cid
from executor.spec import storable_text

__all__ = [
    "Body",
    "CidField",
    "Integer",
    "PieceCidField",
    "PieceSizeField",
    "ProviderField",
    "DataCapField",
    "provider_address",
    "Text",
    "CID_SCHEMA",
    "PIECE_CID_SCHEMA",
    "PIECE_SIZE_SCHEMA",
]

CID_SCHEMA = {
    "type": "string",
    "format": "cid",
    "description": "a CID in any valid form: CIDv0 (Qm…) or CIDv1 in any multibase",
    "example": "bafybeiehumusc3x3hmz3urvbjqo37ccbg3ljfzoewriactfjeyqluvywvm",
}
PIECE_CID_SCHEMA = {
    "type": "string",
    "format": "piece-cid",
    "description": "a piece CID: CIDv1 fil-commitment-unsealed (0xf101), sha2-256-trunc254-padded",
    "example": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
}
# Padded piece sizes are powers of two: 128 bytes up to 2^50 (a PiB; sectors are 64 GiB).
PIECE_SIZE_SCHEMA = {
    "type": "integer",
    "enum": [1 << n for n in range(7, 51)],
    "description": "padded piece size in bytes, a power of two",
}


def _flatten(errors: Any, path: str = "") -> dict[str, str]:
    """DRF's nested error detail as {dotted path: first message}."""
    if isinstance(errors, Mapping):
        flat: dict[str, str] = {}
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else str(key)
            flat.update(_flatten(value, f"{path}.{name}" if path and name else path or name))
        return flat
    if isinstance(errors, list) and errors and not all(isinstance(e, str) for e in errors):
        flat = {}
        for index, value in enumerate(errors):
            if value:
                flat.update(_flatten(value, f"{path}.{index}" if path else str(index)))
        return flat
    message = errors[0] if isinstance(errors, list) and errors else errors
    if getattr(message, "code", None) == "required":
        return {path or "body": "required"}  # the contract's word for a missing field
    return {path or "body": str(message)}


# An API request body: a JSON object with the declared fields and no others. (A comment, not a
# docstring: drf-spectacular would describe every subclass's schema with it.)
class Body(serializers.Serializer):
    error_code: ClassVar[str] = "invalid_request"
    cid_error_code: ClassVar[str] = "invalid_cid"  # for a CID that cannot be read
    # True: fields not declared are ignored (query strings carry whatever a client or proxy
    # adds; the eligibility request is documented to ignore them).
    ignores_unknown: ClassVar[bool] = False

    def to_internal_value(self, data: Any) -> Any:
        code = getattr(self.root, "error_code", self.error_code)  # a nested body: the request's
        if not isinstance(data, Mapping):
            raise DomainError(code, f"{self.field_name or 'the body'} must be a JSON object")
        unknown = [] if self.ignores_unknown else sorted(set(data) - set(self.fields))
        if unknown:
            raise DomainError(code, f"unknown field {unknown[0]}", fields={unknown[0]: "unknown"})
        return super().to_internal_value(data)

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        valid = super().is_valid(raise_exception=False)
        if not valid and raise_exception:
            fields = _flatten(self.errors)
            path, message = next(iter(fields.items()))
            raise DomainError(self.error_code, f"{path}: {message}", fields=fields)
        return valid


class Text(serializers.CharField):
    """A JSON string, untrimmed, that a database can store."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("must be a string")
        if not storable_text(data):
            raise serializers.ValidationError("must not contain NUL or a lone UTF-16 surrogate")
        return str(super().to_internal_value(data))


class Integer(serializers.IntegerField):
    """A JSON integer that fits the database's 64 bits: not a string, a float or a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("must be an integer")
        if not -(2**63) <= data < 2**63:
            raise serializers.ValidationError("must fit in 64 bits")
        return int(super().to_internal_value(data))


@extend_schema_field(CID_SCHEMA)
class CidField(serializers.CharField):
    """A CID in any form, as its canonical CIDv1 text (executor.cids, the one normaliser)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("must be a CID")
        try:
            return normalize_cid(data)
        except InvalidCID:
            raise DomainError(
                getattr(self.root, "cid_error_code", "invalid_cid"),
                f"{self.field_name} is not a CID: {data!r}",
                fields={self.field_name or "cid": data},
            ) from None


@extend_schema_field(PIECE_CID_SCHEMA)
class PieceCidField(CidField):
    def to_internal_value(self, data: Any) -> str:
        cid = super().to_internal_value(data)
        if not cid.startswith(PIECE_PREFIX):
            raise DomainError(
                "invalid_cid",
                f"{self.field_name} must be a piece CID (fil-commitment-unsealed, baga6ea4seaq…)",
                fields={self.field_name or "cid": data},
            )
        return cid


@extend_schema_field(PIECE_SIZE_SCHEMA)
class PieceSizeField(Integer):
    def to_internal_value(self, data: Any) -> int:
        size = super().to_internal_value(data)
        if not 128 <= size < 1 << 63 or size & (size - 1):
            raise serializers.ValidationError("must be a power of two from 128 bytes to 2**62")
        return size


def provider_address(value: str) -> None:
    """A validator: a storage provider's ID address, f0 and its actor id (or nothing)."""
    if value and not PROVIDER_ADDRESS.fullmatch(value):
        raise serializers.ValidationError("must be a storage provider id address like f01234")


@extend_schema_field({"type": "string", "pattern": r"^f0\d{1,20}$"})
class ProviderField(Text):
    """A storage provider's ID address, f0 and its actor id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(provider_address)


class DataCapField(Integer):
    """A DataCap amount: bytes, or text with a unit ("32 GiB") that the moderation service
    reads as the pages' form does."""

    def to_internal_value(self, data: Any) -> int | str:  # type: ignore[override]
        if isinstance(data, str):
            if not storable_text(data):
                raise serializers.ValidationError("must not contain NUL or a lone surrogate")
            return data
        return super().to_internal_value(data)

    def run_validators(self, value: Any) -> None:
        if not isinstance(value, str):  # min_value compares numbers
            super().run_validators(value)
