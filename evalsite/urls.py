from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponseBase
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request

from . import views
from .access import login_redirect, may_use_django_admin
from .api_root import ApiRootView
from .auth import RateLimitedLoginView

# The Django admin's door reads the role like every other page (evalsite.access), not `is_staff`.
admin.site.has_permission = may_use_django_admin


class ApiDocsView(SpectacularSwaggerSplitView):
    """`/api/docs/`: Swagger UI for signed-in users. Its files come from drf-spectacular-sidecar (served
    by this site: the page works without internet) and its start-up script from `?script` (no inline
    script), so the site's content security policy applies to it unchanged."""

    template_name = "api_docs/swagger_ui.html"
    permission_classes = [AllowAny]  # checked in get(), so a visitor is sent to log in, not given a 403

    @extend_schema(exclude=True)
    def get(self, request: Request, *args, **kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return login_redirect(request._request)
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # the admin's own login form would bypass the rate limit: send it through the same view
    path("admin/login/", RateLimitedLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/", ApiRootView.as_view(), name="api-root"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("", include("annotations.urls")),
    path("", include("reports.urls")),
    path("", include("generation.urls")),
]
