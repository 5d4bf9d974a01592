"""The API's JSON parser: DRF's, with nesting too deep for Python's parser as a 400."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JsonParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json.loads recurses once a nesting level ([[[[…): DRF lets this escape as a 500.
            raise ParseError("JSON parse error - nested too deeply") from None
