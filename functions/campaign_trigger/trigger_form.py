"""What no-code tools send: a trigger's body however it is encoded, made the JSON the
trigger reads (`trigger_body.TriggerBody`).

    Content-Type                          a body such as
    application/json                      {"name": "...", "reward": {"amount": "5.00", ...}}
    application/x-www-form-urlencoded     name=...&reward__amount=5.00        (Zapier's default)
    multipart/form-data                   fields reward[amount], reward.amount (Make, n8n)

Flattened keys are made nested again in the three conventions tools use, list indices
included: `reward__amount` (Zapier, "Unflatten" off), `reward.amount` (n8n, "fields below"),
`reward[amount]` (Make's forms); `questions__0__prompt`, `questions.0.prompt`,
`questions[0][prompt]`. A JSON body may use them too. A one-element array (Zapier's "wrap
request in array") is its element. Which convention a body used is kept (`Convention`), so
that an error can say what the tool should send instead.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import parse_qsl

from pydantic import JsonValue

from p4f.fanout import deeper_than

if TYPE_CHECKING:
    from collections.abc import Iterable


class UnreadableBodyError(ValueError):
    """The body cannot be read as fields; the message says why and what to send instead."""


class Convention(StrEnum):
    """How a body's field names are written, and which tool writes them so."""

    NESTED = "nested"
    """JSON objects: {"reward": {"amount": ...}}."""
    DOUBLE_UNDERSCORE = "double underscore"
    """reward__amount: Zapier with Unflatten off."""
    DOTS = "dots"
    """reward.amount: n8n's "Using Fields Below"."""
    BRACKETS = "brackets"
    """reward[amount]: Make's form bodies."""

    def spell(self, path: str) -> str:
        """A field path (`questions[0].prompt`) as this convention writes its key."""
        parts: list[str] = _PATH_PART.findall(path)
        if self is Convention.DOUBLE_UNDERSCORE:
            return "__".join(parts)
        if self is Convention.BRACKETS:
            return parts[0] + "".join(f"[{part}]" for part in parts[1:])
        return ".".join(parts) if self is Convention.DOTS else path


@dataclass(frozen=True)
class Fields:
    """A body read as JSON, and how its keys were written."""

    value: JsonValue
    convention: Convention
    encoding: str
    """The content type it came as: json, form or multipart."""


MAX_DEPTH = 32
"""The deepest a body nests (a campaign needs 3 levels: questions[0].prompt); deeper is
refused before it is walked, so that no body can exhaust the recursion limit."""
_TOO_DEEP = (
    f"is nested deeper than {MAX_DEPTH} levels; a campaign's fields nest 3 deep at most "
    "(questions[0].prompt)"
)
_PATH_PART = re.compile(r"[^.\[\]]+")
_KEY_PART = re.compile(r"\[([^\[\]]*)\]|([^.\[\]]+)")
_JSON_TYPES = ("application/json", "text/json")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


def read_body(content_type: str | None, raw: bytes) -> Fields:
    """An HTTP body as fields, by its Content-Type (JSON when it names none)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == _FORM:
        if _looks_like_json(raw):
            raise UnreadableBodyError(
                f"body: is JSON, but its Content-Type says {kind}; send it as "
                "application/json (in Zapier, Payload Type json; in Make, Body type Raw "
                "with Content type JSON; in n8n, Body Content Type JSON)"
            )
        try:
            # errors="strict": a %-escaped byte that is not UTF-8 is refused, as a raw one is.
            pairs = parse_qsl(_text(raw, "form"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise UnreadableBodyError("form: a %-escaped value is not UTF-8 text") from None
        return _fields(pairs, "form")
    if kind == _MULTIPART:
        return _fields(_multipart(content_type or "", raw), "multipart")
    if kind and kind not in _JSON_TYPES and not (kind == "text/plain" and _looks_like_json(raw)):
        raise UnreadableBodyError(
            f"body: a {kind} body cannot be read; send JSON, a form "
            "(application/x-www-form-urlencoded) or multipart/form-data. In Zapier pick "
            "Payload Type json or form (not xml or raw); in Make, Body type Raw with Content "
            "type JSON, or a form; in n8n, Body Content Type JSON or Form"
        )
    try:
        value: JsonValue = json.loads(raw)
    except RecursionError:
        raise UnreadableBodyError(f"body: {_TOO_DEEP}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableBodyError(
            f"body: is not valid JSON ({_reason(exc)}); check the JSON body in your tool, or "
            "send the fields as a form instead (Zapier: Payload Type form)"
        ) from None
    return read_value(value, "json")


def read_value(value: JsonValue, encoding: str = "json") -> Fields:
    """A body already parsed (an EventBridge event's detail, a JSON body) with its flattened
    keys made nested, and a one-element array made its element."""
    if deeper_than(MAX_DEPTH, value):
        raise UnreadableBodyError(f"body: {_TOO_DEEP}")
    if isinstance(value, list):
        if len(value) != 1:
            raise UnreadableBodyError(
                f"body: is a list of {len(value)} items; send one campaign per request (in "
                "Zapier, turn Wrap Request In Array off)"
            )
        [value] = value
    if isinstance(value, dict):
        return _fields(value.items(), encoding)
    return Fields(value, Convention.NESTED, encoding)


def _fields(pairs: Iterable[tuple[str, JsonValue]], encoding: str) -> Fields:
    nested: dict[str, JsonValue] = {}
    seen: set[Convention] = set()
    for key, value in pairs:
        convention, path = _split(key)
        seen.add(convention)
        _put(nested, path, value, key)
    flattened = seen - {Convention.NESTED}
    convention = flattened.pop() if len(flattened) == 1 else Convention.NESTED
    return Fields(_lists(nested), convention, encoding)


def _split(key: str) -> tuple[Convention, list[str]]:
    """A key's path (an empty segment: append, as in `questions[]`), and its convention."""
    if "__" in key:
        convention = Convention.DOUBLE_UNDERSCORE
    elif "[" in key:
        convention = Convention.BRACKETS
    elif "." in key:
        convention = Convention.DOTS
    else:
        return Convention.NESTED, _checked([key], key)
    tokens = _KEY_PART.findall(key.replace("__", "."))
    path = [bracketed if plain == "" else plain for bracketed, plain in tokens]
    return convention, _checked(path, key)


def _checked(path: list[str], key: str) -> list[str]:
    if not path or not path[0]:  # "__", ".", "[]" or "": no field to put the value in
        raise UnreadableBodyError(
            f"{key or '(an empty key)'}: is not a field name; name each field as in "
            "name, reward.amount or questions[0].prompt"
        )
    if len(path) > MAX_DEPTH:
        raise UnreadableBodyError(f"{key[:64]}...: {_TOO_DEEP}")
    return path


def _put(into: dict[str, JsonValue], path: list[str], value: JsonValue, key: str) -> None:
    """Set `value` at `path`; a plain key given again collects its values in a list."""
    *parents, last = path
    node = into
    for depth, part in enumerate(parents):
        child = node.setdefault(part or str(len(node)), {})
        if not isinstance(child, dict):
            _both(".".join(path[: depth + 1]), key)
        node = child
    slot = last or str(len(node))
    if slot not in node:
        node[slot] = value
    elif isinstance(node[slot], dict):
        _both(slot, key)
    elif len(path) == 1:  # name=a&name=b: a list, as the form says
        earlier = node[slot]
        node[slot] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
    else:
        raise UnreadableBodyError(f"{key}: is given twice; send it once")


def _both(field: str, key: str) -> NoReturn:
    raise UnreadableBodyError(
        f"{field}: is given both as a value and as fields ({key}); send one of them"
    )


def _lists(value: JsonValue) -> JsonValue:
    """Objects whose keys are all list indices made lists, in index order."""
    if not isinstance(value, dict):
        return value
    items = {key: _lists(child) for key, child in value.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _multipart(content_type: str, raw: bytes) -> list[tuple[str, JsonValue]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw
    )
    if not message.is_multipart():
        raise UnreadableBodyError("body: is not multipart/form-data as its Content-Type says")
    pairs: list[tuple[str, JsonValue]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise UnreadableBodyError("body: a multipart part has no field name")
        if part.get_filename() is not None:
            raise UnreadableBodyError(
                f"{name}: is a file; send campaign fields as text, not as files"
            )
        payload = part.get_payload(decode=True)
        pairs.append((name, _text(payload if isinstance(payload, bytes) else b"", name)))
    return pairs


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableBodyError(f"{where}: is not UTF-8 text") from None


def _looks_like_json(raw: bytes) -> bool:
    return raw.lstrip()[:1] in (b"{", b"[")


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return "a number has more than 4,300 digits"  # Python's limit for int(str)
