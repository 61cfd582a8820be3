"""The API's OpenAPI schema generator: each operation documents the problem documents it may send.

Its own module, not config.api: drf-spectacular's AutoSchema imports DRF's generic views, which
read the pagination setting (config.api.Pagination) at import.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from .api import problem_responses


class ProblemAutoSchema(AutoSchema):
    """The OpenAPI schema of every operation, with the problem documents it may answer with.

    Every operation may be refused as 400 (a bad query or body), 401, 403 (a permission, or a
    session's CSRF check), 406 and 429; one with path parameters or a paginated list also 404;
    a POST also 409, 411 (a chunked body), 413 and 415. A view names further codes in
    ``problem_codes`` (one that honours Idempotency-Key: 422). A code an ``extend_schema`` gives
    without a body gets the problem document's (its description kept)."""

    def problem_codes(self) -> set[int]:
        codes = {400, 401, 403, 406, 429, *getattr(self.view, "problem_codes", ())}
        if "{" in self.path or self._get_paginator() is not None:
            codes.add(404)
        if self.method == "POST":
            codes |= {409, 411, 413, 415}
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for (code, media_type), response in problem_responses(*self.problem_codes()).items():
            given = responses.get(str(code))
            if given and given.get("content"):
                continue  # a view's own description of this answer
            if given and given.get("description"):
                response = OpenApiResponse(response=response.response, description=given["description"])
            responses[str(code)] = self._get_response_for_code(response, str(code), [media_type], direction)
        return dict(sorted(responses.items()))
