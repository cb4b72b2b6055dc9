from django.urls import path

from . import api, campaign_admin_views, campaign_list_api, views

urlpatterns = [
    # HTML (annotators)
    path("annotate/", views.AnnotateHomeView.as_view(), name="annotate-home"),
    path(
        "annotate/campaigns/<int:campaign_id>/",
        views.CampaignAnnotateView.as_view(),
        name="annotate-campaign",
    ),
    path(
        "annotate/campaigns/<int:campaign_id>/ratings/",
        views.MyRatingsView.as_view(),
        name="annotate-my-ratings",
    ),
    path(
        "annotate/assignments/<int:assignment_id>/",
        views.AssignmentRateView.as_view(),
        name="annotate-assignment",
    ),
    path(
        "annotate/assignments/<int:assignment_id>/skip/",
        views.AssignmentSkipView.as_view(),
        name="annotate-skip",
    ),
    # HTML (admins): open a campaign from a finished job
    path("jobs/<int:pk>/campaign/new/", campaign_admin_views.campaign_new_page, name="campaign-new"),
    path(
        "jobs/campaign/guidelines-preview/",
        campaign_admin_views.guidelines_preview,
        name="campaign-guidelines-preview",
    ),
    # API
    path("api/campaigns/<int:campaign_id>/next/", api.CampaignNextApi.as_view(), name="api-campaign-next"),
    path(
        "api/assignments/<int:assignment_id>/rating/",
        api.AssignmentRatingApi.as_view(),
        name="api-assignment-rating",
    ),
    path(
        "api/assignments/<int:assignment_id>/skip/",
        api.AssignmentSkipApi.as_view(),
        name="api-assignment-skip",
    ),
    path("api/campaigns/", campaign_list_api.CampaignListApi.as_view(), name="api-campaign-list"),
]
