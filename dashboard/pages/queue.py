"""The jobs list: by default the moderation queue (completed jobs awaiting a decision, blessed
inputs first); a state filter and a search find decided and failed jobs too."""

from __future__ import annotations

from django.conf import settings
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse

from dashboard.models import Job
from dashboard.moderation.risks import job_risks
from dashboard.pages import selectors
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import QueueFilterForm


def _filters(form: QueueFilterForm) -> selectors.QueueFilters:
    # Fields that did not validate (a malformed date) are left out and shown as errors.
    form.is_valid()
    data = {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}
    return selectors.QueueFilters(**data)


@role_required()
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None, nodes=selectors.node_choices())
    filters = _filters(form) if request.GET else selectors.QueueFilters()
    page = selectors.queue_page(filters, request.GET.get("page"))
    flagged = selectors.flagged_jobs()
    rest = request.GET.copy()
    rest.pop("page", None)
    elsewhere = None
    if filters.q and not page.object_list:
        # Searching for a job that is not in the state asked for: say where it is.
        found = Job.objects.filter(id=filters.q.strip())
        elsewhere = found.only("id", "state", "moderation_state").first()
    caught = selectors.caught_nodes()
    # The risks behind each row's badges: two queries for the page, not a few per row.
    rows: list[Job] = list(page.object_list)
    prefetch_related_objects(rows, "inputs", "reexecutions")
    for row in rows:
        row.risks = job_risks(row, caught=row.node_id in caught)  # type: ignore[attr-defined]
    return render_page(
        request,
        "dashboard/queue.html",
        {
            "form": form,
            "page": page,
            "filtered": any(v not in (None, "") for v in vars(filters).values()),
            "list_state": selectors.list_state(filters),
            "query": rest.urlencode(),
            "elsewhere": elsewhere,
            "flagged": [job for job in flagged if job.chain_flags],
            "review": [job for job in flagged if job.mismatch_review],
            "caught": caught,
            "novelty_min": settings.NOVELTY_MIN_PERCENT,
            "awaiting": selectors.awaiting_approval(),
        },
    )
