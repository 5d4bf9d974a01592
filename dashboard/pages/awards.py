"""The awards page: every award the notary took, newest first, and what the chain made of it."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse

from dashboard.notary.awards import AwardFilters, filtered
from dashboard.notary.selectors import notary_names
from dashboard.pages.base import render_page, role_required
from dashboard.pages.forms import AwardFilterForm

AWARDS_PAGE_SIZE = 50


@role_required()
def awards(request: HttpRequest) -> HttpResponse:
    form = AwardFilterForm(request.GET or None, notaries=notary_names())
    filters = AwardFilters()
    if request.GET:
        form.is_valid()  # a field that does not validate shows its error and filters nothing
        data = form.cleaned_data
        filters = AwardFilters(
            state=data.get("state") or "",
            provider=data.get("provider") or "",
            notary=data.get("notary") or "",
        )
    page = Paginator(filtered(filters).prefetch_related("shares"), AWARDS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rest = request.GET.copy()
    rest.pop("page", None)
    return render_page(
        request,
        "dashboard/awards.html",
        {
            "form": form,
            "page": page,
            "filtered": any(vars(filters).values()),
            "query": rest.urlencode(),
        },
    )
