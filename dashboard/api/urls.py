from django.urls import path

from dashboard.api import views

urlpatterns = [
    # path: multibase base64 CIDs (m…) may contain "/"
    path("cids/<path:cid>", views.CidView.as_view(), name="api-cid"),
    path("eligibility", views.EligibilityView.as_view(), name="api-eligibility"),
    path("scanner", views.ScannerView.as_view(), name="api-scanner"),
]
