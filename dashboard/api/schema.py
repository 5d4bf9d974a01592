"""How our authentication classes appear in the OpenAPI schema (loaded by DashboardConfig)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
