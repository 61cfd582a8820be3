"""Governance API routes; each area keeps its views in its own module (access, registry, …)."""

from django.urls import path

from . import access

urlpatterns = [
    path("me", access.MeView.as_view(), name="me"),
]
