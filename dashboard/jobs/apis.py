"""Jobs API views (docs/api.md): thin; the rules live in dashboard.jobs.services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.access import DECIDERS, require_role
from dashboard.api.permissions import (
    ModeratorKey,
    NodeKey,
    SubmitOrReadJobs,
    SubmitterOrNodeKey,
    api_key,
)
from dashboard.api.serializers import error_responses, rendered
from dashboard.errors import job_not_found
from dashboard.jobs import serializers as js
from dashboard.jobs import services as jobs
from dashboard.jobs.selectors import DEFAULT_LIMIT, MAX_LIMIT, job_page
from dashboard.models import Job
from dashboard.moderation import services as moderation
from dashboard.reexecution import services as reexecution

NO_NUL = {"type": "string", "pattern": "^[^\\x00]*$"}
LIST_PARAMETERS = [
    OpenApiParameter("state", str, enum=[s.value for s in Job.State]),
    OpenApiParameter("engine", str, enum=[e.value for e in Job.Engine]),
    # Text without NUL, which no stored name or annotation holds (PostgreSQL refuses it).
    OpenApiParameter("node", NO_NUL, description="name of the compute node's key"),
    OpenApiParameter("annotation", NO_NUL),
    OpenApiParameter("blessed", str, enum=["true", "false"], description="all inputs blessed"),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}",
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "format": "job-cursor"},
        description="opaque: from the previous page's next link",
    ),
]


class JobsView(APIView):
    permission_classes = [SubmitOrReadJobs]

    @extend_schema(
        operation_id="jobs_list",
        summary="Jobs you may see, newest first",
        parameters=LIST_PARAMETERS,
        responses={200: js.JobPageSerializer, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        query = js.JobListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = job_page(api_key(request), **query.validated_data)
        next_url = None
        if page.next_cursor is not None:
            params = request.query_params.copy()
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(rendered(js.JobPageSerializer, {"next": next_url, "results": page.jobs}))

    @extend_schema(
        operation_id="jobs_submit",
        summary="Submit a job to the bundled executor, or register an external one",
        request=js.JobSubmitSerializer,
        responses={
            201: js.JobSerializer,
            200: js.JobSerializer,
            **error_responses(400, 401, 403, 409, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        key = api_key(request)
        assert key is not None  # the permission admits keys only
        body = js.JobSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job, created = jobs.submit_job(key=key, **body.validated_data)
        job = jobs.visible_jobs(key).get(id=job.id)
        return Response(rendered(js.JobSerializer, job), status=201 if created else 200)


def _visible(request: Request, job_id: str) -> Job:
    job = jobs.visible_jobs(api_key(request)).filter(id=job_id).first()
    if job is None:
        raise job_not_found(job_id)
    return job


class JobView(APIView):
    permission_classes = [SubmitOrReadJobs]

    @extend_schema(
        operation_id="job_detail",
        summary="One job: state, inputs with blessed status at run time, result, moderation",
        responses={200: js.JobDetailSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, job_id: str) -> Response:
        return Response(rendered(js.JobDetailSerializer, _visible(request, job_id)))


class JobResultsView(APIView):
    permission_classes = [NodeKey]

    @extend_schema(
        operation_id="job_results",
        summary="A compute node reports the result of a job it ran (idempotent)",
        request=js.JobResultSerializer,
        responses={
            201: js.JobSerializer,
            200: js.JobSerializer,
            **error_responses(400, 401, 403, 404, 409, 415, 429),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        key = api_key(request)
        assert key is not None
        # Who may report is settled before the body is read: 404, then 403.
        jobs.check_writer(_visible(request, job_id), key)
        body = js.JobResultSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = jobs.ResultIn.reported(body.validated_data, default_provider=key.provider)
        _, created = jobs.record_result(job_id=job_id, result=result, key=key)
        job = _visible(request, job_id)
        return Response(rendered(js.JobSerializer, job), status=201 if created else 200)


class JobCancelView(APIView):
    permission_classes = [SubmitterOrNodeKey]

    @extend_schema(
        operation_id="job_cancel",
        summary="Cancel a queued job now, or ask the worker to stop a running one",
        request=None,
        responses={200: js.JobSerializer, **error_responses(401, 403, 404, 429)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        key = api_key(request)
        assert key is not None
        job = jobs.cancel_job(job_id=job_id, key=key)
        return Response(rendered(js.JobSerializer, _visible(request, job.id)))


class JobDecisionView(APIView):
    permission_classes = [ModeratorKey]

    @extend_schema(
        operation_id="job_decision",
        summary="Verify a job with a DataCap amount, or reject it (the pages' decision, by script)",
        request=js.DecisionSerializer,
        responses={200: js.JobSerializer, **error_responses(400, 401, 403, 404, 409, 415, 429)},
    )
    def post(self, request: Request, job_id: str) -> Response:
        key = api_key(request)
        assert key is not None and key.user is not None  # moderator keys are bound to a user
        _visible(request, job_id)  # who may decide is settled before the body is read
        require_role(key.user, *DECIDERS)
        body = js.DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        moderation.decide(job_id=job_id, user=key.user, **body.validated_data)
        return Response(rendered(js.JobSerializer, _visible(request, job_id)))


class JobReexecutionView(APIView):
    permission_classes = [ModeratorKey]

    @extend_schema(
        operation_id="job_reexecute",
        summary="Re-run a completed job on the bundled executor and compare its result CID",
        request=None,
        responses={
            201: js.JobSerializer,
            200: js.JobSerializer,
            **error_responses(401, 403, 404, 409, 429),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        key = api_key(request)
        assert key is not None and key.user is not None  # moderator keys are bound to a user
        _, created = reexecution.request(job_id=job_id, user=key.user)
        job = _visible(request, job_id)
        return Response(rendered(js.JobSerializer, job), status=201 if created else 200)
