from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

admin.site.site_header = "Custos administration"
admin.site.site_title = "Custos"
admin.site.index_title = "Governance and audit of regulated models"

api_v1 = [
    path("", views.api_root, name="root"),
    path("schema/", SpectacularAPIView.as_view(api_version="1"), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include("audit.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("governance.monitoring.api")),
    path("", include("reports.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("admin/", admin.site.urls),
]

handler404 = "config.views.handler404"
handler500 = "config.views.handler500"
