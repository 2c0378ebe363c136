"""How the sandbox's lists answer, in each API version.

v1.0 (the reference today): up to 500 rows, newest first; query parameters are ignored.
v1.1 (the reference's plan): `page_size` rows a page, newest first, and a `next` cursor in
the envelope while more rows remain (absent on the last page); `?cursor=<next>` gives the
following page. A cursor names the last row it follows, so rows created between two pages
never shift a page (they are newer than every page already given). `/responses` takes the
filters `campaign_id`, `status` and `since` (submitted at or after, ISO 8601).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from local.sandbox.errors import InvalidRequestError
from p4f.models import Response, ResponseStatus

type ApiVersion = Literal["1.0", "1.1"]

LIST_LIMIT = 500
"""Rows a v1.0 list returns at most (the reference: "up to 500 rows, newest first")."""


@dataclass(frozen=True)
class ListQuery:
    """Which page of a list a request asks for."""

    size: int = LIST_LIMIT
    after: str | None = None
    """The id of the row the page follows (from the cursor); None: the first page."""
    paged: bool = False
    """Whether the answer carries `next` (v1.1)."""

    @classmethod
    def parse(
        cls, params: Mapping[str, str], *, api_version: ApiVersion, page_size: int
    ) -> ListQuery:
        if api_version == "1.0":
            return cls()
        cursor = params.get("cursor")
        return cls(page_size, _decode(cursor) if cursor else None, paged=True)


@dataclass(frozen=True)
class ResponseFilters:
    """The filters of `GET /api/v1/responses` (v1.1; v1.0 has none)."""

    campaign_id: str | None = None
    status: ResponseStatus | None = None
    since: datetime | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], *, api_version: ApiVersion) -> ResponseFilters:
        if api_version == "1.0":
            return cls()
        return cls(
            _uuid(params.get("campaign_id")),
            _status(params.get("status")),
            _since(params.get("since")),
        )

    def __call__(self, response: Response) -> bool:
        return (
            (self.campaign_id is None or response.campaign_id == self.campaign_id)
            and (self.status is None or response.status == self.status)
            and (self.since is None or response.submitted_at >= self.since)
        )


@dataclass(frozen=True)
class Page[R]:
    rows: list[R]
    next: str | None
    """The cursor of the next page, when there is one and the version pages."""


def paginate[R](
    newest_first: Sequence[R],
    query: ListQuery,
    id_of: Callable[[R], str],
    wanted: Callable[[R], bool] = lambda _: True,
) -> Page[R]:
    """The page of `newest_first` that `query` asks for, of the rows `wanted` keeps."""
    start = 0
    if query.after is not None:
        ids = [id_of(row) for row in newest_first]
        if query.after not in ids:
            raise InvalidRequestError(_INVALID_CURSOR)
        start = ids.index(query.after) + 1
    rows: list[R] = []
    more = False
    for row in newest_first[start:]:
        if not wanted(row):
            continue
        if len(rows) == query.size:
            more = True
            break
        rows.append(row)
    cursor = _encode(id_of(rows[-1])) if query.paged and more else None
    return Page(rows, cursor)


_INVALID_CURSOR = "cursor: is not a cursor this list gave; start again without it"


def _encode(row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": row_id}).encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequestError(_INVALID_CURSOR) from None
    after = decoded.get("after") if isinstance(decoded, dict) else None
    if not isinstance(after, str):
        raise InvalidRequestError(_INVALID_CURSOR)
    return after


def _uuid(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequestError("campaign_id: must be a UUID") from None


def _status(value: str | None) -> ResponseStatus | None:
    if value is None:
        return None
    try:
        return ResponseStatus(value)
    except ValueError:
        allowed = ", ".join(ResponseStatus)
        raise InvalidRequestError(f"status: must be one of {allowed}") from None


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise InvalidRequestError(
            "since: must be an ISO 8601 time with a time zone, e.g. 2026-04-19T14:22:51Z"
        )
    return since
