"""The trigger's time budget is read after the token check, which can wait on Secrets Manager."""

from __future__ import annotations

import json
from typing import Any, cast

from trigger import CampaignTrigger, TriggerRequest, TriggerResult, refused
from trigger_http import TriggerEndpoint

from local.lambda_events import function_url_event
from p4f.function_url import HttpRequest
from p4f.secrets import TriggerToken


class Clock:
    now = 0.0


class SlowToken:
    """A token check that took 4 s (the secret was read from Secrets Manager)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def matches(self, presented: str) -> bool:
        self._clock.now += 4
        return True


class RecordingTrigger:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def trigger(self, request: TriggerRequest, seconds: float) -> TriggerResult:
        self.seconds.append(seconds)
        return refused(400, "recorded")


def test_the_trigger_gets_the_time_left_after_the_token_check() -> None:
    clock, trigger = Clock(), RecordingTrigger()
    endpoint = TriggerEndpoint(
        cast("CampaignTrigger", trigger), cast("TriggerToken", SlowToken(clock))
    )
    body: dict[str, Any] = {"name": "x", "reward": {"amount": "1.00", "currency": "USD"}}
    request = HttpRequest.from_event(
        function_url_event(
            "POST",
            json.dumps(body).encode(),
            {"Authorization": "Bearer t", "Content-Type": "application/json"},
            path="/triggers/campaigns",
        )
    )
    endpoint.receive(request, lambda: 25 - clock.now)
    assert trigger.seconds == [21]
