"""`POST /api/v1/content` uploads and the read-only `GET /ipfs/{cid}[/path]` gateway, a
trustless one too (`dashboard.content.trustless`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils.encoding import escape_uri_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.fields import CID_SCHEMA
from dashboard.api.permissions import AnyKeyOrSession, SubmitterOrNodeKey, api_key
from dashboard.api.renderers import JsonRenderer
from dashboard.api.serializers import error_responses, rendered
from dashboard.content import index, trustless
from dashboard.content import services as content
from dashboard.errors import DomainError
from dashboard.models import IndexedContent
from executor.cids import InvalidCID, normalize_cid
from executor.storage import ContentNotFound, StorageError

CAR_TYPE = trustless.CAR_TYPE


class UploadedSerializer(serializers.Serializer):
    cid = serializers.CharField(help_text="canonical CIDv1; a CAR's root")


class ContentView(APIView):
    permission_classes = [SubmitterOrNodeKey]

    @extend_schema(
        operation_id="content_upload",
        summary="Upload a file (raw body) or a CAR into the dashboard's IPFS store",
        request={"application/octet-stream": bytes, CAR_TYPE: bytes},
        responses={
            201: UploadedSerializer,
            **error_responses(400, 401, 403, 411, 413, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        car = request.content_type.split(";")[0].strip() == CAR_TYPE
        read, declared = _body(request)
        cid = content.store_upload(read, declared=declared, car=car)
        index.note([cid], IndexedContent.Origin.UPLOAD)  # fingerprinted later, off this request
        return Response(rendered(UploadedSerializer, {"cid": cid}), status=201)


def _body(request: Request) -> tuple[Callable[[int], bytes], int | None]:
    """The raw body's reader and its declared length (never request.body, held in memory).

    Django reads a body only as far as its Content-Length. A chunked body has none: it is
    read when the server has already de-chunked it (gunicorn says so with
    `wsgi.input_terminated`), and refused with 411 otherwise, since it would read as empty.
    A request with neither header has an empty body, as HTTP/1.1 says."""
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not chunked:
        declared = meta.get("CONTENT_LENGTH") or "0"
        return request._request.read, int(declared) if declared.isdigit() else 0
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"].read, None
    raise DomainError(
        "length_required",
        "this server does not read chunked bodies: send the upload with a Content-Length",
        status=411,
    )


class _Bounded:
    """A file that refuses to grow past what one gateway answer may hold (a CAR being
    exported to a temporary file, which would otherwise fill the disk first)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.size = out, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        content.check_answer_size(self.size)
        return self.out.write(data)


def _car(write: Callable[[BinaryIO], list[str]], caller: str) -> tuple[list[str], int, BinaryIO]:
    """A CAR written in full by `write` before its first byte is given (so that a DAG that
    turns out incomplete or too large is an error, not a cut-off 200), and charged: the
    path's CIDs `write` returns, its size and the spooled file."""
    # Closed by _chunks once the response has sent it, or here on an error.
    spool = tempfile.TemporaryFile(prefix="filplus-car-")  # noqa: SIM115
    try:
        bounded = _Bounded(spool)
        roots = write(bounded)  # type: ignore[arg-type]
        content.charge_egress(caller, bounded.size)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return roots, bounded.size, spool


def _chunks(spool: BinaryIO) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(1 << 20):
            yield chunk


def _caller(request: Request) -> str:
    """Whom the gateway's bytes are counted to: the key, or the moderator's account."""
    key = api_key(request)
    return f"key:{key.prefix}" if key is not None else f"user:{request.user.pk}"


GATEWAY_DESCRIPTION = (
    "Outside /api/v1 (docs/api.md). A trustless gateway too: a CAR (`format=car` or "
    f"`Accept: {trustless.CAR_TYPE}`), always `{trustless.CAR_CONTENT_TYPE}`, or "
    f"one raw block (`format=raw` or `Accept: {trustless.RAW_TYPE}`, no path)."
)


def _format(*forms: str) -> OpenApiParameter:
    return OpenApiParameter(
        "format",
        {"type": "string", "enum": list(forms)},
        description="a CAR (or, with no path, one raw block) instead of the content; beats Accept",
    )


# A CID in the path: "/" would start the path under it, so no base64 CID that holds one
# (base64url, `u…`, is what URLs are for).
IPFS_CID_SCHEMA = {**CID_SCHEMA, "pattern": "^[^/]+$"}
GATEWAY_PARAMETERS = [
    OpenApiParameter("cid", IPFS_CID_SCHEMA, OpenApiParameter.PATH),
    OpenApiParameter(
        "dag-scope",
        {"type": "string", "enum": list(trustless.SCOPES), "default": "all"},
        description="a CAR's blocks: the whole DAG, the file or folder itself, or one block",
    ),
    OpenApiParameter("car-version", {"type": "string", "enum": ["1"]}),
    OpenApiParameter("car-order", {"type": "string", "enum": ["dfs", "unk"]}),
    OpenApiParameter("car-dups", {"type": "string", "enum": ["n"]}),
]
GATEWAY_RESPONSES: dict[Any, Any] = {  # keys: a status, or (status, media type)
    (200, trustless.CAR_TYPE): OpenApiTypes.BINARY,
    (200, trustless.RAW_TYPE): OpenApiTypes.BINARY,
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    (200, "text/html"): OpenApiTypes.STR,
    304: OpenApiResponse(description="If-None-Match names this answer's Etag"),
    **error_responses(400, 401, 403, 404, 406, 413, 429, 503),
}


class GatewayView(APIView):
    """Stored content, read-only: files as bytes, folders as a listing; and as a trustless
    gateway, a CAR (`?format=car` or `Accept: application/vnd.ipld.car`) or one raw block
    (`?format=raw` or `Accept: application/vnd.ipld.raw`) that a client verifies itself.

    Any API key or a moderator's session may read; the store is not an open gateway.
    """

    permission_classes = [AnyKeyOrSession]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple:
        # The body is bytes, HTML, a CAR or a block whatever the Accept header says (the
        # view reads it itself); only errors are rendered, and always as JSON.
        return (JsonRenderer(), JsonRenderer.media_type)

    @extend_schema(
        operation_id="ipfs_content",
        summary="Stored content: a file's bytes, a folder's page, a CAR or one raw block",
        description=GATEWAY_DESCRIPTION,
        parameters=[*GATEWAY_PARAMETERS, _format("car", "raw")],
        responses=GATEWAY_RESPONSES,
    )
    def get(self, request: Request, cid: str, path: str = "") -> HttpResponseBase:
        answer = trustless.wanted(request.query_params, request.headers.get("Accept", ""), path)
        if answer is not None:
            # HEAD comes here too (Django's View): with no path it reads one block and sends
            # no body; otherwise the whole answer is made and its body left unsent.
            head = request.method == "HEAD" and not path.strip("/")
            return _verifiable(request, cid, path, answer, head=head)
        target, is_dir, entries = content.resolve(cid, path)
        headers = {"X-Content-Type-Options": "nosniff", "X-Ipfs-Roots": target, "Vary": "Accept"}
        caller = _caller(request)
        if is_dir:
            page = render_to_string(
                "dashboard/ipfs_folder.html",
                {"cid": target, "entries": entries or [], "base": request.path.rstrip("/")},
            )
            content.charge_egress(caller, len(page.encode()))
            return HttpResponse(page, content_type="text/html; charset=utf-8", headers=headers)
        # Only content that is all here gets a 200, and its length: a stream that breaks
        # off later (a block damaged on disk) cannot pass for the whole file.
        size, chunks = content.open_file(target)
        content.charge_egress(caller, size)
        return StreamingHttpResponse(
            chunks,
            content_type="application/octet-stream",
            headers={**headers, "Content-Length": str(size)},
        )


class GatewayPathView(GatewayView):
    """`/ipfs/{cid}/{path}`: the same, at a path under the CID (an operation of its own)."""

    @extend_schema(
        operation_id="ipfs_content_path",
        summary="Stored content at a path under a CID (a CAR starts with the path's blocks)",
        description=GATEWAY_DESCRIPTION,
        parameters=[
            *GATEWAY_PARAMETERS,
            _format("car"),
            OpenApiParameter("path", OpenApiTypes.STR, OpenApiParameter.PATH),
        ],
        responses=GATEWAY_RESPONSES,
    )
    def get(self, request: Request, cid: str, path: str = "") -> HttpResponseBase:
        return super().get(request, cid, path)


# Content under a CID never changes; the answers are for one key's eyes, so no shared cache.
IMMUTABLE = "private, max-age=29030400, immutable"


def _verifiable(
    request: Request, cid: str, path: str, answer: trustless.Wanted, *, head: bool = False
) -> HttpResponseBase:
    """A CAR or a raw block, as the trustless gateway spec has them; for a HEAD with no path,
    only whether the block of `cid` is here (404 otherwise), at no cost to the caller."""
    try:
        canonical = normalize_cid(cid)
    except InvalidCID:
        raise DomainError("invalid_cid", f"{cid!r} is not a CID", fields={"cid": cid}) from None
    etag = answer.etag(canonical, path)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": IMMUTABLE,
        "Etag": etag,
        "Vary": "Accept",
    }
    if answer.negotiated:
        query = request.query_params.copy()
        query["format"] = answer.format
        headers["Content-Location"] = f"{escape_uri_path(request.path)}?{query.urlencode()}"
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=304, headers=headers)
    caller = _caller(request)
    store = content.storage()
    named = {"X-Ipfs-Roots": canonical, "Content-Disposition": _attachment(canonical, answer)}
    try:
        if head:
            block = trustless.read_block(store, canonical)
            if answer.format == "raw":
                return HttpResponse(
                    content_type=trustless.RAW_TYPE,
                    headers={**headers, **named, "Content-Length": str(len(block))},
                )
            # Streaming: no Content-Length, which only writing the CAR would tell.
            return StreamingHttpResponse(
                iter(()), content_type=trustless.CAR_CONTENT_TYPE, headers={**headers, **named}
            )
        if answer.format == "raw":
            block = trustless.read_block(store, canonical)
            content.charge_egress(caller, len(block))
            return HttpResponse(
                block,
                content_type=trustless.RAW_TYPE,
                headers={**headers, **named},
            )
        roots, size, spool = _car(
            lambda out: trustless.write_car(store, canonical, path, answer.scope, out), caller
        )
    except ContentNotFound as exc:
        raise DomainError("not_found", str(exc), status=404) from None
    except StorageError as exc:
        raise DomainError("storage_unavailable", str(exc), status=503) from None
    return StreamingHttpResponse(
        _chunks(spool),
        content_type=trustless.CAR_CONTENT_TYPE,
        headers={
            **headers,
            "Content-Length": str(size),
            **named,
            "X-Ipfs-Roots": ",".join(roots),
        },
    )


def _attachment(cid: str, answer: trustless.Wanted) -> str:
    return f'attachment; filename="{cid}.{"bin" if answer.format == "raw" else "car"}"'
