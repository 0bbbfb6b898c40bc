"""Is the Hugging Face Hub reachable? Asked once per process, in about two seconds, before the
first Hub call: offline, huggingface_hub retries each request for ~30 s and prints every retry
before failing, while a one-line error with the way out (HF_HUB_OFFLINE=1, which uses what is
cached) is what a user needs."""
from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

TIMEOUT_S = 2.0
OFFLINE_ENV = "HF_HUB_OFFLINE"


def offline_mode() -> bool:
    """HF_HUB_OFFLINE is set: the Hub libraries use their caches only, nothing to probe."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=None)
def _probe(endpoint: str) -> str | None:
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=TIMEOUT_S):
            return None
    except OSError as e:
        return f"no connection to {url.hostname}:{port} ({e.strerror or type(e).__name__})"


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached (one phrase), or None when it can or when HF_HUB_OFFLINE
    is set (then the libraries themselves answer from their caches)."""
    if offline_mode():
        return None
    from huggingface_hub import constants

    return _probe(constants.ENDPOINT)


def unreachable_hint(why: str) -> str:
    return (f"the Hugging Face Hub is unreachable ({why}); to use what is already cached, set "
            f"{OFFLINE_ENV}=1")
