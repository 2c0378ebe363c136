"""A local Pay4Feedback: the REST API of the reference and its signed webhooks, in memory.

    python -m local.sandbox --port 8080 --api-key p4f_test_key_1 --api-key p4f_test_key_2

or, in tests and the local stack, `with running_sandbox([...]) as sandbox: sandbox.url`.
Each API key is a tenant. Besides /api/v1, admin endpoints under /_sandbox (same keys)
simulate what the API alone cannot: respondents submitting feedback, the AI scorer, the
payment provider, injected faults, key rotation and revocation, the rate limit, and a log
of the events and webhook delivery attempts.
"""

from local.sandbox.admin import SandboxAdmin, SandboxAdminError
from local.sandbox.app import create_app
from local.sandbox.server import SandboxServer, running_sandbox
from local.sandbox.settings import SandboxSettings

__all__ = [
    "SandboxAdmin",
    "SandboxAdminError",
    "SandboxServer",
    "SandboxSettings",
    "create_app",
    "running_sandbox",
]
