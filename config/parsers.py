"""Request parsers shared by every API view."""

import json
import re
from itertools import accumulate

from rest_framework import exceptions, parsers
from rest_framework.parsers import get_encoding
from rest_framework.utils.json import strict_constant

MAX_JSON_DEPTH = 64  # no Custos document nests deeper; json's recursive decoder fails near 1,000

# A JSON string, or an unterminated one up to the end: each match starts at a quote and always
# succeeds, so the scan is linear however the quotes and backslashes are arranged.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """Return how deeply the arrays and objects of the JSON TEXT nest (0 for a scalar), without recursion.

    Exact for valid JSON; for invalid JSON, exact up to the first error, which is where a
    decoder stops anyway. Brackets inside strings do not count.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def holds_nul(value) -> bool:
    """Return True if a NUL character is in any string (key or value) of the decoded JSON VALUE."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JSONParser(parsers.JSONParser):
    """JSON, refusing with a 400 NUL characters (\\u0000) anywhere in it and nesting past 64 levels.

    PostgreSQL can store NUL neither in text nor in jsonb, so such a body would otherwise
    reach the database and fail there as a 500 (and SQLite would keep it: the two disagreed).
    Python's json decoder recurses once per level and raised RecursionError, a 500, on a body
    of 800 bytes; the depth is measured without recursion before the body is decoded.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if json_depth(text) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON may nest arrays and objects at most {MAX_JSON_DEPTH} levels deep.")
        try:
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:  # unreachable after the depth check; never a 500 all the same
            raise exceptions.ParseError("JSON nests too deeply.") from None
        if holds_nul(data):
            raise exceptions.ParseError("JSON strings may not contain NUL (\\u0000) characters.")
        return data
