"""Helpers shared by the real-browser tests: a free local port and waiting for a URL."""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout_s: float) -> bytes:
    """GET ``url`` until it answers (retrying every 0.3 s) or ``timeout_s`` runs out."""
    end = time.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.3)
