"""Validation errors worded as the API words its 400s: `<field>: <what is wrong>`.

The API names the field in every 400 (`reward.amount: must be a positive decimal string
such as "5.00"`, `questions[1].prompt: is required`). The bridge's own endpoints and the
local sandbox word theirs the same way, from pydantic's errors, through `describe`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

RULE = "p4f_rule"
"""Error type of a model's own checks (`rule(...)`): their message is shown as it is."""

_MESSAGES: dict[str, str] = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "string_unicode": "holds half a character (a lone surrogate); send whole characters",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number (not NaN or Infinity)",
    "decimal_type": "must be a decimal number",
    "decimal_parsing": "must be a decimal number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "too_short": "must have at least {min_length} item",
    "too_long": "must have at most {max_length} items",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "enum": "must be one of {expected}",
}
"""Pydantic's error types (strict and lax), worded like the rest of the API's messages."""


def rule(message: str) -> PydanticCustomError:
    """The error a model's own check raises; `describe` shows `message` after the field."""
    return PydanticCustomError(RULE, message)


def describe(exc: ValidationError) -> str:
    """The first error of `exc`, as the API would word it."""
    error: ErrorDetails = exc.errors(include_url=False)[0]
    where = location(error["loc"])
    if error["type"] == RULE:
        return f"{where}: {error['msg']}" if where else error["msg"]
    if not where:
        return "body: must be a JSON object"
    template = _MESSAGES.get(error["type"])
    what = template.format(**error.get("ctx", {})) if template else error["msg"]
    return f"{where}: {what}"


def location(loc: Sequence[int | str]) -> str:
    """`("questions", 1, "prompt")` as `questions[1].prompt`."""
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else part
    return where
