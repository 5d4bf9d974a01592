"""Compute nodes' records: jobs reported, re-executed, matched and mismatched; and what nodes
reported of fetching inputs from each storage provider."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from dashboard.jobs.provenance import retrieval_records
from dashboard.pages.base import render_page, role_required
from dashboard.reexecution.selectors import node_records


@role_required()
def nodes(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "dashboard/nodes.html",
        {"nodes": node_records(), "retrievals": retrieval_records()},
    )
