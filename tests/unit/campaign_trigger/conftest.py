"""The campaign trigger's fixtures: a sandbox per test module, a fresh stack per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from local.sandbox import SandboxServer, running_sandbox
from tests.conftest import LoadFunction
from tests.unit.campaign_trigger.stack import KEYS, Stack, trigger_stack


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox(KEYS) as server:
        yield server


@pytest.fixture
def stack(load_function: LoadFunction, sandbox: SandboxServer) -> Iterator[Stack]:
    with mock_aws(), trigger_stack(load_function, sandbox) as built:
        yield built
