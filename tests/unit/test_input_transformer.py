"""A rule target's input as EventBridge makes it: what the local Firehose hop applies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.input_transformer import TargetInput, TransformError

EVENT: dict[str, Any] = {
    "id": "7bf73129",
    "detail-type": "reward_rejected",
    "source": "pay4feedback",
    "detail": {
        "id": "evt_1",
        "data": {
            "reason": 'He said "no" \\ twice\nthen left 👋',
            "quality": None,
            "reward": {"amount": "5.00", "currency": "EUR"},
            "answers": [{"value": 3}],
            "score": 87,
        },
    },
}


def transformer(template: str, **paths: str) -> dict[str, Any]:
    return {"InputTransformer": {"InputPathsMap": paths, "InputTemplate": template}}


def test_each_placeholder_becomes_the_json_of_its_value() -> None:
    target = TargetInput.of(
        transformer(
            '{"r": <reason>, "q": <quality>, "m": <reward>, "a": <answers>, "s": <score>, "k": 1}',
            reason="$.detail.data.reason",
            quality="$.detail.data.quality",
            reward="$.detail.data.reward",
            answers="$.detail.data.answers",
            score="$.detail.data.score",
        )
    )
    text = target.apply(EVENT)
    assert json.loads(text) == {
        "r": EVENT["detail"]["data"]["reason"],  # quoted and escaped
        "q": None,
        "m": {"amount": "5.00", "currency": "EUR"},
        "a": [{"value": 3}],
        "s": 87,
        "k": 1,
    }
    assert "\n" not in text  # minified, one line


def test_a_path_the_event_lacks_is_an_error_not_a_guess() -> None:
    target = TargetInput.of(transformer('{"x": <x>}', x="$.detail.reconciled_at"))
    with pytest.raises(TransformError, match=r"\$\.detail\.reconciled_at"):
        target.apply(EVENT)
    through_a_value = TargetInput.of(transformer('{"x": <x>}', x="$.detail.data.reason.length"))
    with pytest.raises(TransformError):
        through_a_value.apply(EVENT)


def test_input_path_hands_on_a_part_of_the_event() -> None:
    assert json.loads(TargetInput.of({"InputPath": "$.detail"}).apply(EVENT)) == EVENT["detail"]
    assert json.loads(TargetInput.of({}).apply(EVENT)) == EVENT


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (transformer('{"x": "id <x>"}', x="$.id"), "a value of its own"),
        (transformer('"<x> happened"', x="$.id"), "a value of its own"),
        (transformer('{"x": <y>}', x="$.id"), "undefined placeholders"),
        (transformer('{"x": <x>', x="$.id"), "not JSON"),
        (transformer('{"x": <x>}', x="$.detail[0]"), "dot notation"),
        ({"Input": "{}"}, "constant Input"),
    ],
)
def test_forms_the_local_stack_cannot_apply_faithfully_are_refused_up_front(
    target: dict[str, Any], problem: str
) -> None:
    with pytest.raises(TransformError, match=problem):
        TargetInput.of(target)


def test_escaped_quotes_in_the_template_do_not_hide_a_placeholder() -> None:
    assert TargetInput.of(transformer('{"a\\"b": <x>}', x="$.id")).apply(EVENT) == (
        '{"a\\"b":"7bf73129"}'
    )
