"""The JSON renderer: DRF's, but a lone UTF-16 surrogate echoed from a request (a field's
value in an error, say) is sent as U+FFFD instead of failing to encode into a 500."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer

# Python keeps a lone surrogate as one code point, and a valid pair as one character
# above U+FFFF, so this matches lone surrogates only.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _mend(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_mend(k): _mend(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mend(v) for v in value]
    return value


class JsonRenderer(JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(_mend(data), accepted_media_type, renderer_context)
