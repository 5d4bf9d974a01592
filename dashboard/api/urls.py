from django.urls import path

from dashboard.api import views

urlpatterns = [
    path("cids/<str:cid>", views.CidView.as_view(), name="api-cid"),
    path("eligibility", views.EligibilityView.as_view(), name="api-eligibility"),
    path("scanner", views.ScannerView.as_view(), name="api-scanner"),
]
