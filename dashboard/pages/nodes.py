"""Compute nodes' records: jobs reported, re-executed, matched and mismatched."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard.jobs import reexecution
from dashboard.pages.base import render_page, role_required


@role_required()
def nodes(request: HttpRequest) -> HttpResponse:
    return render_page(request, "dashboard/nodes.html", {"nodes": reexecution.node_records()})
