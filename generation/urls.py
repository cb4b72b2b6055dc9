from django.urls import path

from . import api, views

urlpatterns = [
    path("api/jobs/", api.JobListAPI.as_view(), name="api-job-list"),
    path("api/jobs/<int:pk>/", api.JobDetailAPI.as_view(), name="api-job-detail"),
    path("api/jobs/<int:pk>/cancel/", api.JobCancelAPI.as_view(), name="api-job-cancel"),
    path("jobs/", views.job_list_page, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail_page, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_page, name="job-cancel"),
    path("jobs/new/", views.job_new_page, name="job-new"),
    path("datasets/upload/", views.dataset_upload_page, name="dataset-upload"),
    path("api/finetune-runs/", api.FinetuneRunListAPI.as_view(), name="api-run-list"),
    path("api/finetune-runs/<int:pk>/", api.FinetuneRunDetailAPI.as_view(), name="api-run-detail"),
    path("api/datasets/", api.DatasetListAPI.as_view(), name="api-dataset-list"),
]
