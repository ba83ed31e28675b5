"""Helpers shared by the real-browser tests: a free local port, waiting for a URL, and a
headless Chromium driven over the DevTools protocol (``websockets`` comes with streamlit, so
no selenium is needed)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

#: the Chromium (or Chrome) on PATH; None when there is none (the browser tests then skip)
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
SKIP_REASON = "headless Chromium is not installed (apt-get install chromium)"


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


def wait_until(predicate, timeout_s: float, poll_s: float = 0.05):
    """Call ``predicate`` until it returns something truthy; return it (None on timeout)."""
    end = time.perf_counter() + timeout_s
    while time.perf_counter() < end:
        got = predicate()
        if got:
            return got
        time.sleep(poll_s)
    return None


class Browser:
    """Headless Chromium driven over the DevTools protocol: open a URL, evaluate, click, screenshot."""

    def __init__(self, tmp: Path, *, window: tuple[int, int] = (1280, 900)) -> None:
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--remote-debugging-port={port}", f"--user-data-dir={tmp / 'chromium'}",
             f"--window-size={window[0]},{window[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        targets = json.loads(wait_http(f"http://127.0.0.1:{port}/json/list", 30))
        self._conn = connect(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"],
                             max_size=2**26)
        self.ws = self._conn.__enter__()
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def text(self) -> str:
        return self.eval("document.body ? document.body.innerText : ''") or ""

    def running(self) -> bool:
        """True while Streamlit shows its 'running' status widget."""
        return bool(self.eval("!!document.querySelector('[data-testid=\"stStatusWidget\"]')"))

    def open(self, url: str, texts: list[str], timeout_s: float = 180, settle_s: float = 1.5) -> str:
        """Navigate, wait until every text is shown and the script stopped running, and still
        is ``settle_s`` later (a loaded machine can rerun a page once more)."""
        self.call("Page.navigate", url=url)
        end = time.time() + timeout_s
        txt = ""
        while time.time() < end:
            txt = self.text()
            if all(t in txt for t in texts) and not self.running():
                time.sleep(settle_s)  # let plots draw
                txt = self.text()
                if all(t in txt for t in texts) and not self.running():
                    return txt
            time.sleep(0.2)
        return txt

    def drawn(self) -> bool:
        """True when no element is a loading placeholder and every plotly figure has drawn."""
        return bool(self.eval("""(() => {
          if (document.querySelector('[data-testid="stSkeleton"], .stSkeleton')) return false;
          const plots = [...document.querySelectorAll('.js-plotly-plot')];
          return plots.every(g => g._fullLayout && g.querySelector('.main-svg')); })()"""))

    def mouse(self, kind: str, x: float, y: float) -> None:
        extra = {"button": "left", "clickCount": 1} if kind != "mouseMoved" else {"button": "left"}
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def click(self, x: float, y: float) -> None:
        """A left click at viewport position ``(x, y)`` (CSS px, fractional allowed)."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.mouse(kind, x, y)

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        """Press at ``start``, move in ``steps`` to ``end``, release there."""
        self.mouse("mouseMoved", *start)
        self.mouse("mousePressed", *start)
        for i in range(1, steps + 1):
            f = i / steps
            self.call("Input.dispatchMouseEvent", type="mouseMoved", button="left", buttons=1,
                      x=start[0] + f * (end[0] - start[0]), y=start[1] + f * (end[1] - start[1]))
        self.mouse("mouseReleased", *end)

    def screenshot(self, png: Path, *, full_page: bool = False, settle_s: float = 1.0) -> None:
        """Save a PNG of the viewport, or (``full_page``) of the whole page: the window is made as
        tall as the content (Streamlit scrolls inside its main block, not the document)."""
        if full_page:
            w, h = self.eval("""[window.innerWidth, Math.max(document.documentElement.scrollHeight,
                ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarContent"]')]
                .map(e => e.scrollHeight))]""")
            self.call("Emulation.setDeviceMetricsOverride", width=int(w), height=int(min(h + 40, 5000)),
                      deviceScaleFactor=1, mobile=False)
            time.sleep(settle_s)
            wait_until(self.drawn, 60, poll_s=0.3)
        try:
            png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        finally:
            if full_page:
                self.call("Emulation.clearDeviceMetricsOverride")
                time.sleep(0.5)

    def close(self) -> None:
        self._conn.__exit__(None, None, None)
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=20)


def shots_dir() -> Path:
    """Where the browser tests save screenshots (``$ETHOPOSE_SCREENSHOT_DIR``, else /tmp/dashboard_shots)."""
    d = Path(os.environ.get("ETHOPOSE_SCREENSHOT_DIR", "/tmp/dashboard_shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def serve(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    """Start a server command in its own process group (stop it with :func:`stop`)."""
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
