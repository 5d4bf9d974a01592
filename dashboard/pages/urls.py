"""The moderator pages. Included at the site root from dashboard/urls.py."""

from __future__ import annotations

from django.urls import path

from dashboard.pages import audit, auth, awards, jobs, keys, nodes, overview, queue

app_name = "dashboard"

urlpatterns = [
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("", queue.queue, name="queue"),
    path("jobs/<job_id:job_id>/", jobs.job, name="job"),
    path("jobs/<job_id:job_id>/decide", jobs.decide, name="decide"),
    path("jobs/<job_id:job_id>/revoke", jobs.revoke, name="revoke"),
    path("jobs/<job_id:job_id>/confirm", jobs.confirm, name="confirm"),
    path("jobs/<job_id:job_id>/reexecute", jobs.reexecute, name="reexecute"),
    path("nodes/", nodes.nodes, name="nodes"),
    path("audit/", audit.audit, name="audit"),
    path("awards/", awards.awards, name="awards"),
    path("overview/", overview.overview, name="overview"),
    path("scanner/", overview.scanner, name="scanner"),
    path("keys/", keys.keys, name="keys"),
    path("keys/<str:prefix>/revoke", keys.revoke_key, name="revoke-key"),
]
