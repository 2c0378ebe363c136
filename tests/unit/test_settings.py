"""p4f.settings: environment readers whose errors say what to fix."""

from __future__ import annotations

import pytest

from p4f.settings import ConfigurationError, boolean


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"FLAG": ""}, False), ({"FLAG": "true"}, True), ({"FLAG": " FALSE "}, False)],
)
def test_boolean_reads_true_or_false_with_a_default(env: dict[str, str], expected: bool) -> None:
    assert boolean(env, "FLAG", default=False) is expected


def test_boolean_refuses_anything_else_and_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="FLAG must be true or false, not 'yes'"):
        boolean({"FLAG": "yes"}, "FLAG", default=False)
