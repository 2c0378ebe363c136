"""The p4f-bridge command line: send-event and verify, round trip, and their errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.cli import main
from local.moto_server import free_port
from p4f.models import EventType, WebhookEvent
from p4f.signing import sign
from tests.http_recorder import Receiver, Reply

SECRET = "whsec_cli_test_secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()
    yield recorder
    recorder.close()


def test_send_event_delivers_a_signed_sample_that_verify_accepts(
    receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send-event", "payout_failed", "--url", receiver.url, "--secret", SECRET]) == 0
    [delivery] = receiver.received
    event = WebhookEvent.model_validate_json(delivery.body)
    assert event.type is EventType.PAYOUT_FAILED
    assert delivery.headers["p4f-event-id"] == event.id
    assert delivery.headers["user-agent"] == "Pay4Feedback-Webhooks/1.0"
    assert "200 OK" in capsys.readouterr().out

    body = tmp_path / "body.json"
    body.write_bytes(delivery.body)
    header = delivery.headers["p4f-signature"]
    assert main(["verify", "--secret", SECRET, "--header", header, "--body-file", str(body)]) == 0
    assert "valid: signed with this secret" in capsys.readouterr().out

    forged = ["verify", "--secret", "whsec_other", "--header", header, "--body-file", str(body)]
    assert main(forged) == 1
    assert "no v1 signature matches" in capsys.readouterr().err


def test_verify_refuses_an_old_capture_unless_told_to_ignore_its_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(b'{"id":"evt_1","type":"ping","data":{}}')
    an_hour_ago = int(time.time()) - 3600
    header = sign(body.read_bytes(), SECRET, an_hour_ago)
    args = ["verify", "--secret", SECRET, "--header", header, "--body-file", str(body)]
    assert main(args) == 1
    assert "at most 300s is accepted" in capsys.readouterr().err
    assert main([*args, "--ignore-age"]) == 0
    assert main([*args, "--tolerance", "7200"]) == 0


def test_send_event_says_when_the_receiver_refuses(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.script(Reply(status=401))
    assert main(["send-event", "ping", "--url", receiver.url, "--secret", SECRET]) == 1
    assert "401" in capsys.readouterr().out


def test_send_event_says_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    assert main(["send-event", "ping", "--url", url, "--secret", SECRET]) == 2
    assert f"no answer from {url}" in capsys.readouterr().err


def test_an_unknown_event_type_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["send-event", "reward_paid", "--url", "http://x", "--secret", SECRET])
    assert exited.value.code == 2
    assert "payout_completed" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["send-event"], ["verify"]])
def test_every_command_has_help(command: list[str]) -> None:
    script = Path(sys.executable).with_name("p4f-bridge")
    shown = subprocess.run(  # noqa: S603 (our own console script)
        [str(script), *command, "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith("usage: p4f-bridge")
