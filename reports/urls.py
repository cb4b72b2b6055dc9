from django.urls import path

from reports import pairs, runs, views

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/<int:pk>/report/", views.campaign_report_page, name="campaign-report"),
    path("campaigns/<int:campaign_id>/pairs/<int:pk>/", pairs.pair_detail_page, name="campaign-pair"),
    path("api/campaigns/<int:pk>/report/", views.CampaignReportAPI.as_view(), name="api-campaign-report"),
    path(
        "api/campaigns/<int:pk>/report.json",
        views.CampaignReportAPI.as_view(download=True),
        name="api-campaign-report-download",
    ),
    path(
        "api/campaigns/<int:pk>/export.csv",
        views.CampaignExportAPI.as_view(fmt="csv"),
        name="api-campaign-export-csv",
    ),
    path(
        "api/campaigns/<int:pk>/export.jsonl",
        views.CampaignExportAPI.as_view(fmt="jsonl"),
        name="api-campaign-export-jsonl",
    ),
    path(
        "api/campaigns/<int:pk>/export.parquet",
        views.CampaignParquetExportAPI.as_view(),
        name="api-campaign-export-parquet",
    ),
    path("runs/", runs.run_list_page, name="run-list"),
    path("runs/<int:pk>/", runs.run_detail_page, name="run-detail"),
]
