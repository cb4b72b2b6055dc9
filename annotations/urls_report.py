from django.urls import path

from annotations import views_report

urlpatterns = [
    path("campaigns/", views_report.campaign_list, name="campaign-list"),
    path("campaigns/<int:pk>/report/", views_report.campaign_report_page, name="campaign-report"),
    path(
        "api/campaigns/<int:pk>/report/", views_report.CampaignReportAPI.as_view(), name="api-campaign-report"
    ),
    path(
        "api/campaigns/<int:pk>/report.json",
        views_report.CampaignReportAPI.as_view(download=True),
        name="api-campaign-report-download",
    ),
    path(
        "api/campaigns/<int:pk>/export.csv",
        views_report.CampaignExportAPI.as_view(fmt="csv"),
        name="api-campaign-export-csv",
    ),
    path(
        "api/campaigns/<int:pk>/export.jsonl",
        views_report.CampaignExportAPI.as_view(fmt="jsonl"),
        name="api-campaign-export-jsonl",
    ),
]
