"""The audit log: every decision, revocation, key change and award, newest first."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard import selectors
from dashboard.views.access import render_page, role_required
from dashboard.views.forms import AuditFilterForm


@role_required()
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, actions=selectors.audit_actions())
    filters = selectors.AuditFilters()
    if request.GET:
        form.is_valid()
        data = form.cleaned_data
        filters = selectors.AuditFilters(
            actor=(data.get("actor") or "").strip(),
            action=data.get("action") or "",
            since=data.get("since"),
            until=data.get("until"),
        )
    page = selectors.audit_page(filters, request.GET.get("page"))
    rest = request.GET.copy()
    rest.pop("page", None)
    return render_page(
        request,
        "dashboard/audit.html",
        {
            "form": form,
            "page": page,
            "filtered": any(vars(filters).values()),
            "query": rest.urlencode(),
        },
    )
