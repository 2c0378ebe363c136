"""Validation errors worded as the API words them, whatever pydantic's mode."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, PlainValidator, ValidationError

from p4f.field_errors import describe, rule


def _positive(value: object) -> int:
    if isinstance(value, int) and value > 0:
        return value
    raise rule("must be a positive integer")


class Item(BaseModel):
    prompt: str


class Body(BaseModel):
    name: str
    amount: Decimal = Decimal(1)
    count: int = 1
    live: bool = False
    items: list[Item] = []
    size: Annotated[int, PlainValidator(_positive)] = 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{}", "name: is required"),
        ('{"name": 1}', "name: must be a string"),
        ('{"name": "x", "amount": "five"}', "amount: must be a decimal number"),
        ('{"name": "x", "count": "ten"}', "count: must be an integer"),
        ('{"name": "x", "count": 1.5}', "count: must be an integer"),
        ('{"name": "x", "live": "maybe"}', "live: must be true or false"),
        ('{"name": "x", "items": "a"}', "items: must be a list"),
        ('{"name": "x", "items": [{}, {}]}', "items[0].prompt: is required"),
        ('{"name": "x", "items": [{"prompt": "p"}, 3]}', "items[1]: must be an object"),
        ('{"name": "x", "size": -1}', "size: must be a positive integer"),
        ("[]", "body: must be a JSON object"),
        ("not json", "body: must be a JSON object"),
    ],
)
def test_each_error_names_its_field(raw: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Body.model_validate_json(raw)
    assert describe(raised.value) == message
