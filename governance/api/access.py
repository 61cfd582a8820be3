from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ..selectors.access import business_units_for


class MeView(APIView):
    """Who the caller is, their roles and the business units they may work in."""

    class MeSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        business_units = serializers.ListField(child=serializers.CharField())
        token = serializers.CharField(allow_null=True, help_text="Prefix of the token used, if any.")

    @extend_schema(responses=MeSerializer, operation_id="me")
    def get(self, request):
        user = request.user
        data = {
            "username": user.get_username(),
            "roles": sorted(user.groups.values_list("name", flat=True)),
            "business_units": list(business_units_for(user).values_list("slug", flat=True)),
            "token": getattr(request.auth, "prefix", None),
        }
        return Response(self.MeSerializer(data).data)
