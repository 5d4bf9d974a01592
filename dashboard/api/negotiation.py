"""Content negotiation with a fast path for the Accept headers machines send."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

JSON = "application/json"
# What wrk, httpx and curl send (nothing or */*), or a client that asks for JSON. For these
# DRF's parser would pick the first renderer that produces JSON anyway, and it was ~6 % of a
# single-CID GET's time under cProfile (bench_api's requests, in-process).
_PLAIN_ACCEPT = (None, "*/*", JSON)


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered directly when the view renders JSON first and the client
    accepts it without parameters or preferences; anything else goes to DRF's parser."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        if (
            renderers
            and renderers[0].media_type == JSON
            and not format_suffix
            and request._request.META.get("HTTP_ACCEPT") in _PLAIN_ACCEPT
            # no query string, so no ?format= override (and no QueryDict to build)
            and not request._request.META.get("QUERY_STRING")
        ):
            return renderers[0], JSON
        return super().select_renderer(request, renderers, format_suffix)
