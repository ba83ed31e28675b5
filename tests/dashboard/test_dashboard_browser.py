"""One real browser session: ``streamlit run`` on 127.0.0.1, every page in headless Chromium.

Chromium is driven over the DevTools protocol (``websockets`` comes with streamlit) so the
test waits in real time until each page has finished running, instead of guessing with
``--virtual-time-budget``. CI needs the Debian package ``chromium``; without it the test
is skipped. Set ``ETHOPOSE_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser_support import free_port, wait_http

pytestmark = pytest.mark.browser

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
_spec = importlib.util.spec_from_file_location("dashboard_fixtures", Path(__file__).with_name("dashboard_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

#: url path -> texts that must be in the rendered page
PAGES = {
    "": ["Cohort overview", "Animals analysed", "Per-animal endpoints", "open_field"],
    "animal_qc": ["Animal QC", "frames at 25 fps", "Confidence", "Occupancy"],
    "ethogram": ["Ethogram", "rearing", "in_centre"],
    "endpoints": ["Endpoints by group", "Welch t-test", "Hedges g"],
    "validation": ["Validation against human scoring", "Human scoring file", "Cohen"],
    "run": ["Run a protocol", "Cohort table", "Output folder", "Worker processes"],
    "labelling": ["Labelling", "No pose project"],
}




class _Browser:
    """Headless Chromium driven over the DevTools protocol: open a URL, wait, screenshot."""

    def __init__(self, tmp: Path) -> None:
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--remote-debugging-port={port}", f"--user-data-dir={tmp / 'chromium'}",
             "--window-size=1280,900", "about:blank"],
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
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.n:
                return msg.get("result", {})

    def text(self) -> str:
        res = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                        returnByValue=True)
        return res.get("result", {}).get("value") or ""

    def open(self, url: str, texts: list[str], timeout_s: float = 90) -> str:
        """Navigate, wait until every text is shown and the script stopped running."""
        self.call("Page.navigate", url=url)
        end = time.time() + timeout_s
        txt = ""
        while time.time() < end:
            txt = self.text()
            running = self.call("Runtime.evaluate", returnByValue=True, expression=(
                "!!document.querySelector('[data-testid=\"stStatusWidget\"]')"))["result"]["value"]
            if all(t in txt for t in texts) and not running:
                time.sleep(1.5)  # let plots draw
                return self.text()
            time.sleep(0.5)
        return txt

    def screenshot(self, png: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        png.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self._conn.__exit__(None, None, None)
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=20)




def _non_blank(png: Path) -> tuple[float, float]:
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    return float(img.std()), float((np.abs(img - 1.0).max(axis=2) > 0.1).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_every_page_in_chromium(tmp_path: Path):
    root = fixtures.make_results_root(tmp_path / "root")
    port = free_port()
    env = dict(os.environ, ETHOPOSE_DASHBOARD_ROOT=str(root))
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--", str(root)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shots = Path(os.environ.get("ETHOPOSE_SCREENSHOT_DIR", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    browser = None
    try:
        base = f"http://127.0.0.1:{port}/"
        assert wait_http(base + "_stcore/health", 90) == b"ok"
        browser = _Browser(tmp_path)
        for page, texts in PAGES.items():
            png = shots / f"dashboard_{page or 'overview'}.png"
            txt = browser.open(base + page, texts)
            missing = [t for t in texts if t not in txt]
            assert not missing, f"page /{page}: {missing} not shown; page text: {txt[:500]!r}"
            assert "Traceback" not in txt, f"page /{page} shows an exception"
            browser.screenshot(png)
            std, ink = _non_blank(png)
            assert std > 0.05 and ink > 0.02, f"/{page} screenshot looks blank (std {std:.3f}, ink {ink:.3f})"
    finally:
        if browser is not None:
            browser.close()
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
