from django.urls import path

from dashboard.api import content, jobs, notary, views

urlpatterns = [
    # any text: multibase base64 CIDs (m…) may contain "/"
    path("cids/<cid_text:cid>", views.CidView.as_view(), name="api-cid"),
    path("eligibility", views.EligibilityView.as_view(), name="api-eligibility"),
    path("scanner", views.ScannerView.as_view(), name="api-scanner"),
    path("jobs", jobs.JobsView.as_view(), name="api-jobs"),
    path("jobs/<job_id:job_id>", jobs.JobView.as_view(), name="api-job"),
    path("jobs/<job_id:job_id>/results", jobs.JobResultsView.as_view(), name="api-job-results"),
    path("jobs/<job_id:job_id>/cancel", jobs.JobCancelView.as_view(), name="api-job-cancel"),
    path("jobs/<job_id:job_id>/decision", jobs.JobDecisionView.as_view(), name="api-job-decision"),
    path("jobs/<job_id:job_id>/pieces", notary.JobPiecesView.as_view(), name="api-job-pieces"),
    path("content", content.ContentView.as_view(), name="api-content"),
    path(
        "notary/verifications/<cid_text:cid>",
        notary.VerificationView.as_view(),
        name="api-notary-verification",
    ),
    path("notary/awards", notary.AwardsView.as_view(), name="api-notary-awards"),
]
