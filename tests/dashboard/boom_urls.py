"""A URLconf with one view that fails, to see where a production 500 is logged."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom: a bug in a view")


urlpatterns = [path("boom", boom)]
