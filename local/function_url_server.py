"""A Lambda handler served as its function URL would serve it, over local HTTP.

Each request becomes a payload-format-2.0 event (`local.lambda_events.function_url_event`),
the handler runs with a context that counts down its timeout, and its result becomes the
HTTP answer the way Lambda turns it into one: a dict with `statusCode` is taken as it is,
anything else is a 200 with the result as JSON; an exception is a 502 as in AWS.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.lambda_events import LocalLambdaContext, function_url_event, is_utf8

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    Handler = Callable[[dict[str, Any], LocalLambdaContext], Any]

logger = logging.getLogger(__name__)

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def function_url_app(handler: Handler, *, function_name: str, timeout_seconds: float) -> Starlette:
    """An ASGI app that serves every path and method through `handler`."""

    async def invoke(request: Request) -> Response:
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        event = function_url_event(
            request.method,
            body,
            dict(request.headers),
            path=request.url.path,
            query=request.url.query,
            # Lambda base64-encodes bodies it does not know to be text, and bodies that are
            # not text whatever their type says (a JSON string cannot hold invalid UTF-8).
            base64_encoded=bool(body)
            and not (content_type.startswith(_TEXT_TYPES) and is_utf8(body)),
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        context = LocalLambdaContext(function_name, timeout_seconds)
        try:
            result = await asyncio.wait_for(
                run_in_threadpool(handler, event, context), timeout=timeout_seconds
            )
        except TimeoutError:
            logger.error("%s timed out after %ss", function_name, timeout_seconds)
            return JSONResponse({"Message": "Internal Server Error"}, status_code=502)
        except Exception:
            logger.exception("%s raised", function_name)
            return JSONResponse({"Message": "Internal Server Error"}, status_code=502)
        return _to_response(result)

    return Starlette(routes=[Route("/{path:path}", invoke, methods=_METHODS)])


def _to_response(result: Any) -> Response:
    if not (isinstance(result, dict) and "statusCode" in result):
        return JSONResponse(result)
    raw = result.get("body") or ""
    content = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    headers = dict(result.get("headers") or {})
    response = Response(content, status_code=int(result["statusCode"]), headers=headers)
    for cookie in result.get("cookies") or []:
        response.raw_headers.append((b"set-cookie", str(cookie).encode()))
    return response
