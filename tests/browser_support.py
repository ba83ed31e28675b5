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
        """The value of a JavaScript expression in the page; None while the page is navigating
        (a reload in progress answers "Inspected target navigated or closed": not a failure,
        the caller's wait_until asks again)."""
        try:
            return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")
        except RuntimeError as err:
            if "navigated or closed" in str(err) or "Cannot find context" in str(err):
                return None
            raise

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

    def press(self, key: str) -> None:
        """Press and release one key (``"u"``, ``"ArrowRight"``, ``"Enter"``) in the focused frame,
        as a person's keyboard would: the key goes wherever the keyboard focus is."""
        named = {"ArrowLeft": 37, "ArrowRight": 39, "Enter": 13, "Escape": 27}
        code = named[key] if key in named else ord(key.upper())
        base = {"key": key, "code": key if key in named else f"Key{key.upper()}",
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        self.call("Input.dispatchKeyEvent", type="keyDown", **base, **({} if key in named else {"text": key}))
        self.call("Input.dispatchKeyEvent", type="keyUp", **base)

    def button(self, text: str) -> tuple[float, float]:
        """Viewport centre of the button whose label (a line of its text, icons aside) is ``text``,
        scrolled into view; AssertionError when there is none."""
        got = self.eval(f"""(() => {{ const e = [...document.querySelectorAll('button')].find(
            e => e.innerText.split('\\n').map(s => s.trim()).includes({text!r}));
          if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
          return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        assert got, f"no button {text!r} on the page"
        return got

    def icons_drawn(self) -> list[tuple[str, float]]:
        """(name, width in CSS px) of every Material icon on the page. A drawn icon is one glyph
        about as wide as the font size; an icon whose font did not load shows its name as text."""
        return [tuple(x) for x in self.eval("""[...document.querySelectorAll('[data-testid="stIconMaterial"]')]
            .map(e => [e.textContent, e.getBoundingClientRect().width])""") or []]

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


class CpuMeter:
    """CPU seconds (user + system) of process trees, e.g. the server and the browser.

    Wall times on a shared machine measure the other jobs too; the CPU an action costs the
    server and the browser does not depend on them (much). On a quiet 2-core machine an action
    takes about its CPU time (server and browser work mostly in turn) plus a few polling delays.
    """

    def __init__(self, **pids: int) -> None:
        import psutil

        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}

    def now(self) -> dict[str, float]:
        """CPU seconds used so far by each tree (children that already exited are not counted)."""
        import psutil

        out = {}
        for name, proc in self._procs.items():
            total = 0.0
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    continue
            out[name] = total
        return out

    @staticmethod
    def since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: after[k] - before[k] for k in before}


class Timings:
    """Wall and CPU seconds of the actions of a browser test, printed as one table.

    ``timed(name, action, done)`` runs ``action()``, waits until ``done()`` is truthy and
    records the wall time and the CPU the server and the browser spent meanwhile.
    """

    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.rows: dict[str, tuple[float, dict[str, float]]] = {}

    def timed(self, name: str, action, done, timeout_s: float = 60):
        before = self.meter.now()
        t0 = time.perf_counter()
        action()
        got = wait_until(done, timeout_s)
        self.rows[name] = (time.perf_counter() - t0, CpuMeter.since(before, self.meter.now()))
        return got

    def record(self, name: str, wall_s: float, cpu_before: dict[str, float]) -> None:
        """Record an action timed by the caller (``cpu_before`` = ``meter.now()`` at its start)."""
        self.rows[name] = (wall_s, CpuMeter.since(cpu_before, self.meter.now()))

    def wall(self, name: str) -> float:
        return self.rows[name][0]

    def cpu(self, name: str) -> float:
        """CPU seconds of the server and the browser together."""
        return sum(self.rows[name][1].values())

    def table(self, load: str = "") -> str:
        lines = [f"{'action':34s} {'wall s':>7s} {'CPU server':>10s} {'CPU browser':>11s}" + (f"   ({load})" if load else "")]
        for name, (wall, cpu) in self.rows.items():
            lines.append(f"{name:34s} {wall:7.2f} {cpu.get('server', 0):10.2f} {cpu.get('browser', 0):11.2f}")
        return "\n".join(lines)


def sidebar_link_centre(browser: Browser, text: str) -> tuple[float, float]:
    """CSS-pixel centre of the Streamlit sidebar page link whose label is ``text``."""
    got = browser.eval(f"""(() => {{ const a = [...document.querySelectorAll('[data-testid="stSidebarNavLink"]')]
        .find(a => a.innerText.split('\\n').map(s => s.trim()).includes({text!r}));
      if (!a) return null; const r = a.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
    assert got, f"no sidebar link {text!r}"
    return got


def dashboard_fixtures():
    """``tests/dashboard/dashboard_fixtures.py`` as a module (tests/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "dashboard_fixtures", Path(__file__).resolve().parent / "dashboard" / "dashboard_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_average() -> str:
    """The machine's 1-minute load average and core count, for the printed timings."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def shots_dir() -> Path:
    """Where the browser tests save screenshots (``$ETHOPOSE_SCREENSHOT_DIR``, else /tmp/dashboard_shots)."""
    d = Path(os.environ.get("ETHOPOSE_SCREENSHOT_DIR", "/tmp/dashboard_shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def serve(cmd: list[str], env: dict | None = None, *, log: Path | None = None) -> subprocess.Popen:
    """Start a server command in its own process group (stop it with :func:`stop`); its output
    goes to ``log`` when given (a failing test can print why the page broke), else nowhere."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    try:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if log is not None else out,
                                start_new_session=True)
    finally:
        if log is not None:
            out.close()


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
