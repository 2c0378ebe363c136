"""A rule target's InputPath or InputTransformer applied to an event, as EventBridge does.

moto delivers no event to a Firehose target (and writes strings of a transformer's values
without quotes), so the local stack applies the template's own transformation here. Only
the forms template.yaml uses are accepted, and they are checked up front:

- `InputPath` with a dot-notation JSON path (`$.detail`);
- an `InputTransformer` whose template is a JSON object in which every `<placeholder>`
  stands alone as a value: each becomes the JSON of the value its path selects (a string
  quoted and escaped, an object or array whole, null as null).

A path the event does not have is an error here: EventBridge leaves such a variable out,
and the template is written so that it reads only paths every event has.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_MARKED = re.compile(r'"\\u0000([A-Za-z0-9_.-]+)\\u0000"')
"""A placeholder's stand-in in the minified template."""
_MISSING = object()
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""Minified JSON, as EventBridge writes values (one encoder: json.dumps makes one a call)."""


class TransformError(ValueError):
    """An event could not be transformed (a path it lacks), or a target's form is unknown."""


def _select(event: Any, path: str) -> Any:
    """The value at a dot-notation JSON path (`$.detail.data.id`), or _MISSING."""
    node = event
    for key in path.split(".")[1:]:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _placeholders_in_strings(template: str) -> bool:
    """Whether a <placeholder> is inside a JSON string literal of the template."""
    in_string = escaped = False
    for index, char in enumerate(template):
        if not in_string:
            in_string = char == '"'
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_string = False
        elif char == "<" and _PLACEHOLDER.match(template, index):
            return True
    return False


def _check_path(path: str) -> None:
    if path != "$" and not re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)+", path):
        raise TransformError(f"the JSON path {path!r} is not dot notation ($.a.b)")


@dataclass(frozen=True)
class TargetInput:
    """What a rule target hands its target: the event, a part of it, or a template's fill."""

    input_path: str | None = None
    paths: dict[str, str] | None = None
    pieces: tuple[str, ...] = ()
    """The minified template cut at its placeholders: text, name, text, name, ..., text."""

    @classmethod
    def of(cls, target: dict[str, Any]) -> TargetInput:
        """The input of a rule target as template.yaml declares it (checked here)."""
        if "Input" in target:
            raise TransformError("a constant Input is not supported locally")
        if "InputPath" in target:
            _check_path(target["InputPath"])
            return cls(input_path=target["InputPath"])
        transformer = target.get("InputTransformer")
        if transformer is None:
            return cls()
        template = transformer["InputTemplate"]
        paths = dict(transformer.get("InputPathsMap", {}))
        for path in paths.values():
            _check_path(path)
        if _placeholders_in_strings(template) or not template.lstrip().startswith("{"):
            raise TransformError(
                "only a JSON object template with each <placeholder> a value of its own is "
                "supported locally"
            )
        unknown = set(_PLACEHOLDER.findall(template)) - set(paths)
        if unknown:
            raise TransformError(f"the template uses undefined placeholders {sorted(unknown)}")
        # Minified once, as EventBridge passes the template on: each placeholder stands in
        # as a marked string while the template is parsed and written again.
        marked = _PLACEHOLDER.sub(lambda match: json.dumps(f"\0{match.group(1)}\0"), template)
        try:
            minified = json.dumps(json.loads(marked), separators=(",", ":"), ensure_ascii=False)
        except json.JSONDecodeError as exc:
            raise TransformError(f"the template is not JSON once filled: {exc}") from exc
        return cls(paths=paths, pieces=tuple(_MARKED.split(minified)))

    def apply(self, event: dict[str, Any]) -> str:
        """The text the target receives for `event` (an EventBridge event)."""
        if self.input_path is not None:
            selected = _select(event, self.input_path)
            if selected is _MISSING:
                raise TransformError(f"the event has no {self.input_path}")
            return json.dumps(selected, separators=(",", ":"))
        if self.paths is None:
            return json.dumps(event, separators=(",", ":"))
        filled = list(self.pieces)
        for index in range(1, len(filled), 2):
            name = filled[index]
            value = _select(event, self.paths[name])
            if value is _MISSING:
                raise TransformError(f"the event has no {self.paths[name]} (placeholder <{name}>)")
            filled[index] = _COMPACT.encode(value)
        return "".join(filled)
