"""The audit log: every decision, revocation, key change and award, newest first."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from dashboard.pages import selectors
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import AuditFilterForm


def _shown(value: Any) -> str:
    """A value as a person reads it: objects as `key: value, …` and lists as `a, b`, never
    JSON; None (absent or empty) as a dash."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value) or "—"
    return str(value)


def changes(before: Any, after: Any) -> list[tuple[str, str | None, str]]:
    """An event's before and after as (field, old, new) lines a person reads, shown as
    `field: old → new`: the fields that changed, in the order the event wrote them. Old is
    None when there was no before (a creation: `field: new`); a value that is not an object
    is one line, "value"."""
    if before is None and after is None:
        return []
    if isinstance(after, dict) and before is None:
        return [(field, None, _shown(value)) for field, value in after.items()]
    if isinstance(before, dict) and after is None:
        return [(field, _shown(value), "—") for field, value in before.items()]
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [("value", None if before is None else _shown(before), _shown(after))]
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
            # as typed, or as the Target column shows it ("job:…")
            job=(data.get("job") or "").strip().removeprefix("job:"),
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
