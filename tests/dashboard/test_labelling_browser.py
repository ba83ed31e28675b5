"""One real browser session: headless Chromium clicks on the frame, the label lands on disk.

Drives Chromium through the Chrome DevTools Protocol over a websocket (``websockets`` comes
with streamlit); no selenium needed. CI needs the Debian packages ``chromium`` (the
``chromium-driver`` package is not needed by this test).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.browser_support import free_port, wait_http

pytestmark = pytest.mark.browser

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
APP = Path(__file__).resolve().parents[2] / "dashboard" / "labelling" / "app.py"
_spec = importlib.util.spec_from_file_location(
    "refine_helpers", Path(__file__).resolve().parents[1] / "pose" / "refine_helpers.py"
)
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)






class _Cdp:
    """Minimal Chrome DevTools Protocol client (one page target)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            extra = {"button": "left", "clickCount": 1} if kind != "mouseMoved" else {}
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)
            time.sleep(0.05)


_PLOT_JS = "var _plot = () => Array.from(document.querySelectorAll('.js-plotly-plot')).pop();"
_PIXEL_JS = _PLOT_JS + """
(() => {
  const gd = _plot();
  if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis) return null;
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  return [r.left + fl.xaxis._offset + fl.xaxis.l2p(%f),
          r.top + fl.yaxis._offset + fl.yaxis.l2p(%f)];
})()
"""


_LABELS_JS = _PLOT_JS + """
(() => {
  const gd = _plot();
  const t = gd && gd._fullData && gd._fullData.find(d => d.name === 'labels');
  return t ? Array.from(t.x).map((x, i) => [t.customdata[i], x, t.y[i]]) : null;
})()
"""


def _wait_for_labels(cdp: _Cdp, n: int, timeout_s: float = 60) -> list:
    """Wait until the redrawn figure shows ``n`` labels; return them ([index, x, y])."""
    end = time.time() + timeout_s
    while time.time() < end:
        got = cdp.eval(_LABELS_JS)
        if got is not None and len(got) == n:
            cdp.eval(_PLOT_JS + "_plot().scrollIntoView({block: 'center'})")
            time.sleep(1.0)  # let the chart settle (layout, hover layer)
            return got
        time.sleep(0.3)
    raise AssertionError(f"the figure never showed {n} labels (last: {got})")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
def test_click_in_headless_chromium_saves_label(tmp_path: Path) -> None:
    from websockets.sync.client import connect

    project = fixtures.make_project(tmp_path, size=(160, 120))
    port, cdp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "ETHOPOSE_LABEL_PROJECT"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--", str(project)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--remote-debugging-port={cdp_port}", f"--user-data-dir={tmp_path / 'chrome'}",
         "--window-size=1400,1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60)
        wait_http(f"http://127.0.0.1:{cdp_port}/json/version", 30)
        targets = json.loads(wait_http(f"http://127.0.0.1:{cdp_port}/json/list", 10))
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
            _click_and_check(_Cdp(ws), port, project)
    finally:
        for proc in (browser, server):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _row(project: Path):
    h5 = project / "labeled-data" / "vidA" / "CollectedData_tester.h5"
    return pd.read_hdf(h5).loc[("labeled-data", "vidA", "img000.png"), "tester"]


def _click_and_check(cdp: _Cdp, port: int, project: Path) -> None:
    cdp.call("Page.enable")
    cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
    end = time.time() + 90
    while cdp.eval(_PIXEL_JS % (0.0, 0.0)) is None and time.time() < end:
        time.sleep(0.5)
        cdp.eval(_PLOT_JS + "_plot()?.scrollIntoView({block: 'center'})")
    _wait_for_labels(cdp, 0)
    # 1. a click places the current body part (snout) at the clicked pixel
    cdp.click(*cdp.eval(_PIXEL_JS % (60.0, 40.0)))
    _wait_for_labels(cdp, 1)
    h5 = project / "labeled-data" / "vidA" / "CollectedData_tester.h5"
    assert h5.exists(), "clicking the frame saved no CollectedData file"
    row = _row(project)
    assert np.hypot(row["snout"]["x"] - 60, row["snout"]["y"] - 40) <= 1.5, row
    # 2. the next body part (left_ear) is now current: a second click places it
    cdp.click(*cdp.eval(_PIXEL_JS % (100.0, 80.0)))
    _wait_for_labels(cdp, 2)
    row = _row(project)
    assert np.hypot(row["left_ear"]["x"] - 100, row["left_ear"]["y"] - 80) <= 1.5, row
    # 3. move the snout: click its label (snout becomes current), then click the new place
    cdp.click(*cdp.eval(_PIXEL_JS % (row["snout"]["x"], row["snout"]["y"])))
    time.sleep(2.0)
    _wait_for_labels(cdp, 2)
    cdp.click(*cdp.eval(_PIXEL_JS % (30.0, 90.0)))
    end = time.time() + 30
    while time.time() < end and abs(_row(project)["snout"]["x"] - 60) < 3:
        time.sleep(0.3)
    row = _row(project)
    assert np.hypot(row["snout"]["x"] - 30, row["snout"]["y"] - 90) <= 1.5, row
    assert np.hypot(row["left_ear"]["x"] - 100, row["left_ear"]["y"] - 80) <= 1.5, row
    assert np.isnan(row["right_ear"]["x"]) and np.isnan(row["tail_base"]["x"]), row
