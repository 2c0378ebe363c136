"""Hypothesis profiles for the fuzz tests: `quick` in `make test`, `chaos` in `make chaos`
(pytest --hypothesis-profile=chaos); both without deadlines (moto's first calls are slow)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quick",
    max_examples=50,
    deadline=None,
    # The fixtures (AWS in moto, a loaded function) are built once per test, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("chaos", settings.get_profile("quick"), max_examples=1_500)
settings.load_profile("quick")
