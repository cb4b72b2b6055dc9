from django.urls import path

from . import run_pages, views

urlpatterns = [
    path("api/jobs/", views.JobListAPI.as_view(), name="api-job-list"),
    path("api/jobs/<int:pk>/", views.JobDetailAPI.as_view(), name="api-job-detail"),
    path("api/jobs/<int:pk>/cancel/", views.JobCancelAPI.as_view(), name="api-job-cancel"),
    path("jobs/", views.job_list_page, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail_page, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_page, name="job-cancel"),
    path("api/finetune-runs/", views.FinetuneRunListAPI.as_view(), name="api-run-list"),
    path("api/finetune-runs/<int:pk>/", views.FinetuneRunDetailAPI.as_view(), name="api-run-detail"),
    path("runs/", run_pages.run_list_page, name="run-list"),
    path("runs/<int:pk>/", run_pages.run_detail_page, name="run-detail"),
]
