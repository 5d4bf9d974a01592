"""How our authentication classes and request bodies appear in the OpenAPI schema (loaded by
DashboardConfig)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.keys.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A scoped API key: `Authorization: Bearer fpk_…`",
        }


class ModeratorSessionScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.keys.auth.ModeratorSessionAuthentication"
    name = "ModeratorSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class BodySchema(OpenApiSerializerExtension):
    """A request body read by an input serializer refuses fields it does not declare
    (dashboard.api.fields.Body): the schema says so."""

    target_class = "dashboard.api.fields.Body"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request" and not self.target.ignores_unknown:
            schema["additionalProperties"] = False
        return schema


class TextSchema(OpenApiSerializerFieldExtension):
    """Text in a request refuses NUL (dashboard.api.fields.Text): the schema says so, unless
    the field states a pattern of its own. (Lone surrogates cannot be said in a pattern.)"""

    target_class = "dashboard.api.fields.Text"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer_field(
            self.target, direction, bypass_extensions=True
        )
        if direction == "request" and "pattern" not in schema:
            schema["pattern"] = "^[^\\x00]*$"
        return schema
