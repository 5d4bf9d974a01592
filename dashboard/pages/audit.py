"""The audit log: every decision, revocation, key change and award, newest first."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse

from dashboard.pages import selectors
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import AuditFilterForm


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def changes(before: Any, after: Any) -> list[tuple[str, str | None, str | None]]:
    """An event's before and after as (field, old, new) lines a person reads: fields that
    changed, in the order the event wrote them (a value that is not an object is one line)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [("value", _shown(before), _shown(after))]
    fields = list(after) + [k for k in before if k not in after]
    return [
        (field, _shown(before.get(field)), _shown(after.get(field)))
        for field in fields
        if before.get(field) != after.get(field)
    ]


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
    for event in page.object_list:
        event.changes = changes(event.before, event.after)
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
