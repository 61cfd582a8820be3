"""Request parsers shared by every API view."""

from rest_framework import exceptions, parsers


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


class JSONParser(parsers.JSONParser):
    """JSON, refusing NUL characters (\\u0000) anywhere in it with a 400.

    PostgreSQL can store NUL neither in text nor in jsonb, so such a body would otherwise
    reach the database and fail there as a 500 (and SQLite would keep it: the two disagreed).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if _holds_nul(data):
            raise exceptions.ParseError("JSON strings may not contain NUL (\\u0000) characters.")
        return data
