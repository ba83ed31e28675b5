"""Start Streamlit with a loopback-only gate in front of it (DNS rebinding, metrics).

``python -m dashboard.serve run APP.py [streamlit options] -- ARGS`` is ``streamlit run``
with :class:`LocalOnlyMiddleware` placed first in Streamlit's ASGI middleware stack. Why a
gate of our own: Streamlit answers any ``Host`` header on plain HTTP, and its websocket
check accepts an ``Origin`` equal to the ``Host`` -- which is exactly what a DNS-rebinding
page (``evil.example.com`` resolving to 127.0.0.1) sends. Streamlit's
``server.allowedHosts`` covers the websocket only; the gate refuses every request
(HTTP and websocket) whose ``Host`` is not a loopback name or whose ``Origin`` is not a
loopback origin, and answers 404 on ``/_stcore/metrics``. :func:`secure_options` adds the
matching Streamlit options (allowedHosts, CORS and XSRF on, no error details, minimal
toolbar so there is no Deploy button, no static serving).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

#: host names a browser on this machine uses for the dashboard
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: paths answered 404 whatever the Host (Streamlit's metrics endpoint)
BLOCKED_SUFFIXES = ("/_stcore/metrics",)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def _hostname(netloc: str) -> str | None:
    try:
        parts = urlsplit(f"//{netloc}")
        _ = parts.port  # validates the port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or parts.path or not parts.hostname:
        return None
    return parts.hostname.lower().rstrip(".")


def refusal(host: str | None, origin: str | None, path: str) -> tuple[int, str] | None:
    """Why a request must be refused, as ``(http status, reason)``; None when it may pass.

    Parameters
    ----------
    host
        The ``Host`` header (None when absent: refused).
    origin
        The ``Origin`` header (None when absent, e.g. a plain page load: allowed).
    path
        The request path.
    """
    if any(path.rstrip("/").endswith(s) for s in BLOCKED_SUFFIXES):
        return 404, "not served"
    if host is None or _hostname(host) not in LOOPBACK_HOSTS:
        return 403, "this dashboard only answers requests for 127.0.0.1 / localhost"
    if origin is not None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or _hostname(parts.netloc) not in LOOPBACK_HOSTS:
            return 403, "cross-origin requests are refused"
    return None


class LocalOnlyMiddleware:
    """ASGI middleware: refuse requests :func:`refusal` refuses (HTTP 403/404, websocket closed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        why = refusal(headers.get("host"), headers.get("origin"), scope.get("path", ""))
        if why is None:
            await self.app(scope, receive, send)
            return
        status, reason = why
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        body = reason.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def secure_options() -> list[str]:
    """Streamlit command-line options of a locked-down local server."""
    return ["--server.allowedHosts", "127.0.0.1", "--server.allowedHosts", "localhost",
            "--server.enableCORS", "true", "--server.enableXsrfProtection", "true",
            "--server.enableStaticServing", "false", "--client.toolbarMode", "minimal",
            "--client.showErrorDetails", "none", "--browser.gatherUsageStats", "false"]


def install() -> None:
    """Put :class:`LocalOnlyMiddleware` first in Streamlit's middleware stack."""
    from starlette.middleware import Middleware
    from streamlit.web.server.starlette import starlette_app

    original = starlette_app.create_streamlit_middleware
    if getattr(original, "_ethopose_gate", False):
        return

    def gated() -> list:
        return [Middleware(LocalOnlyMiddleware), *original()]

    gated._ethopose_gate = True  # type: ignore[attr-defined]
    starlette_app.create_streamlit_middleware = gated


def main() -> None:  # pragma: no cover - exercised by the browser/server tests in a child
    install()
    from streamlit.web.cli import main as streamlit_main

    sys.exit(streamlit_main(prog_name="streamlit"))


if __name__ == "__main__":  # pragma: no cover
    main()
