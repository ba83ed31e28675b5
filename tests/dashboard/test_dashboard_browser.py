"""One real browser session: ``streamlit run`` on 127.0.0.1, every page in headless Chromium.

Chromium is driven over the DevTools protocol (``websockets`` comes with streamlit) so the
test waits in real time until each page has finished running, instead of guessing with
``--virtual-time-budget``. CI needs the Debian package ``chromium``; without it the test
is skipped. Set ``ETHOPOSE_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dashboard.cli import dashboard_command
from tests.browser_support import CHROMIUM, SKIP_REASON, Browser, free_port, wait_http

pytestmark = pytest.mark.browser

_spec = importlib.util.spec_from_file_location("dashboard_fixtures", Path(__file__).with_name("dashboard_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

#: url path -> texts that must be in the rendered page
PAGES = {
    "": ["Cohort overview", "Animals analysed", "Tracking quality", "🔴 fail", "Per-animal endpoints", "open_field"],
    "animal_qc": ["Animal QC", "frames at 25 fps", "Trajectory", "Occupancy", "Confidence per keypoint",
                  "Tracking QC: fail", "Worst frames"],
    "ethogram": ["Ethogram", "rearing", "in_centre"],
    "endpoints": ["Endpoints by group", "Welch t-test", "Hedges g"],
    "validation": ["Validation against human scoring", "Human scoring file", "Cohen"],
    "run": ["Run a protocol", "Cohort table", "Output folder", "Worker processes"],
    "labelling": ["Labelling", "No pose project"],
}




def _js(browser: Browser, expression: str):
    return browser.eval(expression)


def _check_red_flag(browser: Browser) -> None:
    """The badly tracked mouse's traffic light is a red cell on the cohort page."""
    cells = _js(browser, "[...document.querySelectorAll('td, th')].filter(c => c.innerText.includes('🔴'))"
                         ".map(c => [c.innerText, getComputedStyle(c).backgroundColor, c.parentElement.innerText])")
    assert cells, "no 'fail' cell in the tracking-quality table"
    text, colour, row = cells[0]
    print(f"QC light of the bad mouse: {text!r} on {colour}")
    assert "bad01" in row and colour == "rgb(215, 48, 39)", cells
    ok = _js(browser, "[...document.querySelectorAll('td')].filter(c => c.innerText.includes('🟢'))"
                      ".map(c => getComputedStyle(c).backgroundColor)")
    assert len(ok) == 4 and set(ok) == {"rgb(166, 217, 106)"}, ok


_TRAJ_JS = """(() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
      g => g.layout && g.layout.title && String(g.layout.title.text || '').includes('Trajectory'));
  if (!gd) return null;
  gd.scrollIntoView();
  const lines = [...gd.querySelectorAll('.scatterlayer .trace path.js-line')];
  const fl = gd._fullLayout;
  return {n_lines: lines.length, boxes: lines.map(p => p.getBBox().height), axis_px: fl.yaxis._length,
          range: fl.yaxis.range, gl: gd.querySelectorAll('canvas.gl-canvas').length};
})()"""


def _check_trajectory_extent(browser: Browser, root: Path, shots: Path) -> None:
    """The drawn path spans as many screen pixels as the data's y-extent (a flat line fails)."""
    import pandas as pd

    got = _js(browser, _TRAJ_JS)
    assert got is not None, "no trajectory figure on the Animal QC page"
    y = pd.read_parquet(root / "results" / "animals" / "bad01_1" / "frames.parquet")["y_px"].dropna()
    r0, r1 = got["range"]
    assert r0 > r1, f"y axis not reversed: {got['range']}"
    expected_px = (y.max() - y.min()) / (r0 - r1) * got["axis_px"]
    arena_px, path_px = got["boxes"][0], got["boxes"][1]
    print(f"trajectory: path {path_px:.0f} px tall on screen, data extent -> {expected_px:.0f} px; "
          f"arena outline {arena_px:.0f} of {got['axis_px']:.0f} px")
    assert got["n_lines"] >= 2 and abs(path_px - expected_px) < 0.05 * got["axis_px"] + 2, got
    assert arena_px > 0.85 * got["axis_px"], got
    time.sleep(1.0)
    browser.screenshot(shots / "dashboard_animal_qc_plots.png")


def _non_blank(png: Path) -> tuple[float, float]:
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    return float(img.std()), float((np.abs(img - 1.0).max(axis=2) > 0.1).mean())


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_every_page_in_chromium(tmp_path: Path):
    root = fixtures.make_results_root(tmp_path / "root", bad_animal=True)
    port = free_port()
    env = dict(os.environ, ETHOPOSE_DASHBOARD_ROOT=str(root))
    server = subprocess.Popen(  # the locked-down launch of 'ethopose dashboard'
        dashboard_command(root, port, browser=False),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shots = Path(os.environ.get("ETHOPOSE_SCREENSHOT_DIR", "/tmp/dashboard_shots"))
    shots.mkdir(parents=True, exist_ok=True)
    browser = None
    try:
        base = f"http://127.0.0.1:{port}/"
        assert wait_http(base + "_stcore/health", 90) == b"ok"
        browser = Browser(tmp_path)
        for page, texts in PAGES.items():
            png = shots / f"dashboard_{page or 'overview'}.png"
            t0 = time.perf_counter()
            txt = browser.open(base + page, texts)
            print(f"page /{page}: shown in {time.perf_counter() - t0 - 1.5:.1f} s (wall, loaded machine)")
            missing = [t for t in texts if t not in txt]
            assert not missing, f"page /{page}: {missing} not shown; page text: {txt[:500]!r}"
            assert "Traceback" not in txt, f"page /{page} shows an exception"
            browser.screenshot(png)
            std, ink = _non_blank(png)
            assert std > 0.05 and ink > 0.02, f"/{page} screenshot looks blank (std {std:.3f}, ink {ink:.3f})"
            if page == "":
                _check_red_flag(browser)
            if page == "animal_qc":
                _check_trajectory_extent(browser, root, shots)
    finally:
        if browser is not None:
            browser.close()
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
