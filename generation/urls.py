from django.urls import path

from . import views

urlpatterns = [
    path("api/jobs/", views.JobListAPI.as_view(), name="api-job-list"),
    path("api/jobs/<int:pk>/", views.JobDetailAPI.as_view(), name="api-job-detail"),
    path("api/jobs/<int:pk>/cancel/", views.JobCancelAPI.as_view(), name="api-job-cancel"),
    path("jobs/", views.job_list_page, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail_page, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_page, name="job-cancel"),
]
