"""Reading a function's settings from its environment, once, with errors that say what to fix.

Each function declares its settings as one frozen dataclass with a `from_env` built from
these readers; no other code reads `os.environ`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or invalid: a deployment error."""


def required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set (see template.yaml)")
    return value


def optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def integer(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = optional(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} must be a whole number") from None
    if value < minimum:
        raise ConfigurationError(f"environment variable {name} must be at least {minimum}")
    return value


def boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """`true` or `false` (any case), as template Parameters give them."""
    raw = optional(env, name)
    if raw is None:
        return default
    if raw.lower() not in {"true", "false"}:
        raise ConfigurationError(f"environment variable {name} must be true or false, not {raw!r}")
    return raw.lower() == "true"
