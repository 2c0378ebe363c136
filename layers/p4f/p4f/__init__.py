"""p4f: the shared layer of p4f-bridge (Pay4Feedback client, models, signing, secrets).

Modules are imported where they are used, never from here, so that a handler loads only
what it needs (cold start).
"""

__version__ = "0.1.0"
