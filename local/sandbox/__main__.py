"""`python -m local.sandbox --port 8080 --api-key KEY [--api-key KEY2 ...] [--api-version 1.1]`:
a local Pay4Feedback to develop and test the bridge against. Ctrl-C (or SIGTERM) stops it."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence

from pydantic import ValidationError

from local.sandbox.server import SandboxServer
from local.sandbox.settings import THREE_DAYS, SandboxSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.sandbox",
        description="Serve the Pay4Feedback REST API (/api/v1) and its signed webhooks "
        "locally, with admin endpoints under /_sandbox. Each API key is a tenant of its own.",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free)")
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        required=True,
        metavar="KEY",
        help="an API key; repeat for more tenants",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--api-version",
        choices=["1.0", "1.1"],
        default="1.0",
        help="1.0: the API as the reference is today (default); 1.1: as its changelog plans "
        "it (cursor pagination, Idempotency-Key on POSTs, filters on /responses)",
    )
    parser.add_argument(
        "--page-size", type=int, default=100, help="rows a page of a 1.1 list holds"
    )
    parser.add_argument("--rate-limit", type=int, default=60, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window in seconds")
    parser.add_argument(
        "--webhook-retry-base",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="wait before the first retry of a failed delivery; doubled each time",
    )
    parser.add_argument(
        "--webhook-retry-for",
        type=float,
        default=THREE_DAYS,
        metavar="SECONDS",
        help="how long after an event failed deliveries are retried (default: 3 days)",
    )
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a delivery waits for the receiver's answer",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = SandboxSettings(
            api_keys=tuple(args.api_keys),
            api_version=args.api_version,
            page_size=args.page_size,
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            webhook_retry_base=args.webhook_retry_base,
            webhook_retry_for=args.webhook_retry_for,
            webhook_timeout=args.webhook_timeout,
        )
    except ValidationError as exc:
        # Only locations and messages: an input echoed back could be a key.
        parser.error(
            "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
        )
    # SIGTERM (a test, a process manager) stops as cleanly as Ctrl-C; SIGINT is set too, as
    # a shell starting a background job makes the child ignore it.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        with SandboxServer(settings, host=args.host, port=args.port) as server:
            tenants = len(settings.api_keys)
            print(
                f"Pay4Feedback sandbox (API v{settings.api_version}) listening on {server.url} "
                f"({tenants} tenant{'s' if tenants > 1 else ''})",
                flush=True,
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
